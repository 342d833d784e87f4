"""sync-server as an operator runs it: a restart keeps its data, and SIGTERM loses no job
(a full pass checkpoints and resumes; record jobs taken before the stop are applied)."""

import urllib.parse

from conftest import call, eventually

COMPANIES = 1200
TENANT = "acme"


def runs(server, token, connection):
    status, page, _ = call("GET", f"{server.url}/admin/connections/{connection}/runs?limit=5",
                           token=token)
    assert status == 200, page
    return page["items"]


def customers(server, token):
    """Every active customer, paged."""
    found, cursor = [], None
    while True:
        query = "limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, page, _ = call("GET", f"{server.url}/admin/customers?{query}", token=token)
        assert status == 200, page
        found.extend(page["items"])
        cursor = page.get("next")
        if not cursor:
            return found


def connect(server, token):
    status, created, _ = call("POST", f"{server.url}/admin/connections",
                              {"provider": "hubspot"}, token=token)
    assert status == 201, created
    connection = created["id"]
    status, auth, _ = call("POST", f"{server.url}/admin/connections/{connection}/authorize",
                           token=token)
    assert status == 200, auth
    status, _, headers = call("GET", auth["authorize_url"], follow=False)
    assert status == 302
    status, body, _ = call("GET", headers["Location"])
    assert status == 200, body
    return connection


def test_admin_commands_print_credentials_the_server_accepts(server):
    server.start()
    try:
        token = server.command("admin-token", TENANT)
        status, page, _ = call("GET", f"{server.url}/admin/connections", token=token)
        assert status == 200 and page["connections"] == [], page
        link = server.command("sign-in-link", TENANT)
        assert link.startswith(f"{server.url}/console/sign-in/link?token=l1."), link
        status, _, headers = call("GET", link, follow=False)
        assert status == 303, status
        assert "console_session=" in headers["Set-Cookie"]
    finally:
        server.stop()


def test_a_pass_stopped_by_sigterm_resumes_after_the_restart(server, sandbox):
    server.start()
    token = server.command("admin-token", TENANT)
    connection = connect(server, token)
    # The initial pass runs at the sandbox's 4 requests a second: stop it midway.
    eventually(lambda: (r := runs(server, token, connection)) and r[0]["counters"]["seen"] > 0,
               what="the initial pass to start reading")
    took = server.stop()
    assert took < 15, f"the stop took {took:.1f} s"
    log = server.log.read_text()
    assert "stopping: finishing the jobs in hand" in log and "stopped" in log

    server.start()
    stopped_run = runs(server, token, connection)[0]
    assert stopped_run["status"] == "running", stopped_run
    assert stopped_run["counters"]["seen"] < COMPANIES, stopped_run
    run = eventually(
        lambda: (r := runs(server, token, connection)[0])["status"] != "running" and r,
        timeout_s=120, what="the resumed pass to end")
    assert run["id"] == stopped_run["id"], "the pass resumed instead of starting over"
    assert run["status"] == "completed", run
    assert run["invocations"] >= 2, run
    counters = run["counters"]
    # Every company once, across both processes; the seeded look-alikes wait as pending matches.
    assert counters["seen"] == COMPANIES, counters
    assert counters["applied"] + counters["held"] == COMPANIES, counters
    assert counters["failed"] == 0 and counters["archived"] == 0, counters
    assert len(customers(server, token)) == counters["applied"]
    status, shown, _ = call("GET", f"{server.url}/admin/connections/{connection}", token=token)
    assert status == 200 and shown["status"] == "connected", shown
    server.stop()


def test_changes_taken_before_a_stop_are_applied_after_the_restart(server, sandbox):
    sandbox.control("PUT", "/rate-limits", {"max_per_interval": 110, "interval_ms": 10000})
    sandbox.control("PUT", "/webhooks", {"target_url": f"{server.url}/webhooks/hubspot"})
    server.start()
    token = server.command("admin-token", TENANT)
    hubspot_token = sandbox.control("POST", "/tokens")["access_token"]
    status, listing, _ = call("GET", f"{sandbox.url}/crm/v3/objects/companies?limit=100",
                              token=hubspot_token)
    assert status == 200, listing
    # Companies with a customer: not the look-alikes waiting as pending matches.
    status, matches, _ = call("GET", f"{server.url}/admin/matches?limit=100", token=token)
    assert status == 200, matches
    held = {m["source_id"] for m in matches["items"]}
    mirrored = [c for c in listing["results"] if c["id"] not in held][:60]
    renamed = {}
    for n, company in enumerate(mirrored):
        name = f"Resumed Works {n}"
        sandbox.control("PATCH", f"/objects/companies/{company['id']}",
                        {"properties": {"name": name}})
        renamed[company["id"]] = name
    flushed = sandbox.control("POST", "/webhooks/flush")
    assert flushed["failed"] == 0 and flushed["pending"] == 0, flushed
    assert len(flushed["events"]) >= len(renamed), flushed
    # Every change is now a record job on the server's queue (or in hand): stop at once.
    server.stop()
    server.start()

    def all_renamed():
        for name in renamed.values():
            status, page, _ = call("GET", f"{server.url}/admin/customers?q={urllib.parse.quote(name)}",
                                   token=token)
            if status != 200 or len(page["items"]) != 1:
                return False
        return True

    eventually(all_renamed, timeout_s=60, what="every rename taken before the stop")
    server.stop()
