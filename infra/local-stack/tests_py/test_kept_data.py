"""`make dev --keep-data`: a second start keeps the database and its keys, reauthorizes the
kept connection against the fresh sandbox, and its pass writes nothing."""

import re
import subprocess
import threading

from conftest import _binary

SYNC_LINE = re.compile(r"^initial sync (\w+) in [\d.]+ s: seen (\d+), applied (\d+), unchanged (\d+)")


def run_once(data, *flags):
    """Starts the stack, waits for it to serve, stops it; returns its initial sync line."""
    process = subprocess.Popen(
        [str(_binary()), "--port", "0", "--sandbox-port", "0", "--no-stripe",
         "--companies", "20", "--contacts", "20", "--data", str(data), "--exit-on-stdin-eof",
         *flags],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # Whatever happens, the stack is gone within two minutes (a hang fails, never blocks).
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    printed = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("The service is running"):
            break
    process.stdin.close()
    rest = process.stdout.read()
    process.wait(timeout=30)
    watchdog.cancel()
    printed.append(rest)
    assert process.returncode == 0, "".join(printed)
    assert "stopping: finishing the jobs in hand" in rest, rest
    matches = [m for line in printed for m in [SYNC_LINE.match(line)] if m]
    assert len(matches) == 1, "".join(printed)
    status, seen, applied, unchanged = matches[0].groups()
    return status, int(seen), int(applied), int(unchanged), "".join(printed)


def test_kept_data_survives_a_restart_and_the_reauthorized_pass_writes_nothing(tmp_path):
    data = tmp_path / "sync.sqlite"
    status, seen, applied, _, _ = run_once(data)
    assert status == "Completed" and seen == 40 and applied > 0
    status, seen, applied, unchanged, printed = run_once(data, "--keep-data")
    assert status == "Completed" and seen == 40, printed
    assert applied == 0 and unchanged > 0, printed
    assert "kept from the last run" in printed
    # Without the flag the next start begins afresh.
    status, seen, applied, _, printed = run_once(data)
    assert status == "Completed" and applied > 0, printed


def test_the_push_demo_pushes_a_lead_through_every_step(tmp_path):
    *_, printed = run_once(tmp_path / "sync.sqlite", "--push-demo")
    assert "push demo: tenant `leads-demo` connected the portal outbound and wrote a lead; pushed" in printed, printed
    steps = dict(re.findall(r"^  (contact|company|list)\s+(\w+)", printed, re.MULTILINE))
    assert steps == {"contact": "created", "company": "created", "list": "added"}, printed
    assert "export RECORDS_TOKEN='r1.leads-demo." in printed, printed
