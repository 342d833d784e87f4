"""Starts the hubspot-sandbox binary once per session and resets it before every test."""

import json
import os
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SPEC_DIR = REPO.parent / "shared" / "specs" / "hubspot"
COMPANIES = 250


def _binary() -> Path:
    bin_dir = Path(os.environ.get("SYNC_BIN_DIR") or REPO / "target" / "debug")
    path = bin_dir / "hubspot-sandbox"
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build -p hubspot-sandbox`")
    return path


@pytest.fixture(scope="session")
def sandbox_url():
    process = subprocess.Popen(
        [str(_binary()), "--port", "0", "--exit-on-stdin-eof", "--seed", "42",
         "--companies", str(COMPANIES), "--no-auto-deliver", "--retry-scale", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    first = process.stdout.readline().strip()
    if not first.startswith("listening on "):
        process.kill()
        pytest.fail(f"sandbox did not start: {first!r}")
    try:
        yield first.removeprefix("listening on ")
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Control:
    """The sandbox's /_sandbox control API."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def token(self, scopes=None):
        return self.call("POST", "/tokens", {} if scopes is None else {"scopes": scopes})


@pytest.fixture
def control(sandbox_url):
    control = Control(sandbox_url)
    control.call("POST", "/reset", {})
    return control


@pytest.fixture
def app():
    """The sandbox's default OAuth app (SandboxConfig::default())."""
    return {
        "client_id": "6a3b7c1e-2f4d-4e8a-9b0c-1d2e3f4a5b6c",
        "client_secret": "8f14e45f-ceea-467a-9575-3ba3a9d1a2b3",
        "portal_id": 62515,
        "app_id": 54321,
    }


@pytest.fixture
def client(sandbox_url, control):
    import hubspot

    return hubspot.Client.create(access_token=control.token()["access_token"], host=sandbox_url)


@pytest.fixture
def receiver():
    """A loopback webhook endpoint: its URL and the (headers, body) of each POST it got."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers, body))  # case-insensitive, as HTTP headers are
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/hubspot", received
    finally:
        server.shutdown()
        server.server_close()
