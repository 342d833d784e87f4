"""Starts the stripe-sandbox binary once per test session on a free loopback port."""

import json
import os
import pathlib
import subprocess
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PLATFORM_KEY = "sk_test_sandbox_platform_key"
READ_ONLY_KEY = "rk_test_sandbox_read_only_key"
CLIENT_ID = "ca_SandboxPlatformClient0"


def _binary() -> pathlib.Path:
    bin_dir = pathlib.Path(os.environ.get("SYNC_BIN_DIR", ROOT / "target" / "debug"))
    path = bin_dir / "stripe-sandbox"
    if not path.exists():
        pytest.skip(f"{path} not built (cargo build -p stripe-sandbox)")
    return path


class Sandbox:
    def __init__(self, base_url: str):
        self.base_url = base_url

    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base_url}/_sandbox{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")


@pytest.fixture(scope="session")
def sandbox():
    proc = subprocess.Popen(
        [str(_binary()), "--port", "0", "--seed", "42", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield Sandbox(line.removeprefix("listening on "))
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def fresh(sandbox):
    """An empty sandbox with default faults and the official client pointed at it."""
    import stripe

    sandbox.control("POST", "/reset", {})
    sandbox.control("PUT", "/faults", {})
    sandbox.control("PUT", "/webhooks", {"url": "", "secrets": ["whsec_sandbox_default_secret"], "auto_deliver": True})
    stripe.api_key = PLATFORM_KEY
    stripe.api_base = sandbox.base_url
    stripe.connect_api_base = sandbox.base_url
    stripe.max_network_retries = 0
    return sandbox
