"""Runs the built sync-server binary as an operator would: configured from the environment,
its data in one file, against the HubSpot sandbox binary; stopped with SIGTERM."""

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("SYNC_BIN_DIR") or REPO / "target" / "debug")
# The sandbox's default OAuth app (SandboxConfig::default()).
CLIENT_ID = "6a3b7c1e-2f4d-4e8a-9b0c-1d2e3f4a5b6c"
CLIENT_SECRET = "8f14e45f-ceea-467a-9575-3ba3a9d1a2b3"


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build -p {name}`")
    return path


def call(method, url, body=None, token=None, follow=True):
    """(status, parsed JSON or text, headers)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(*([] if follow else [_NoRedirect()]))
    try:
        with opener.open(request, timeout=30) as response:
            status, text, got = response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as e:
        status, text, got = e.code, e.read().decode(), e.headers
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return status, parsed, got


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def eventually(check, timeout_s=60, every_s=0.25, what="the condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


def free_port() -> int:
    # The server must come back on the same port (OAuth redirect and webhook target).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    def __init__(self, url: str):
        self.url = url

    def control(self, method, path, body=None):
        status, parsed, _ = call(method, f"{self.url}/_sandbox{path}", body)
        assert 200 <= status < 300, (method, path, status, parsed)
        return parsed


@pytest.fixture(scope="module")
def sandbox():
    # A low rate limit so a full pass takes seconds: long enough to be stopped midway.
    process = subprocess.Popen(
        [str(binary("hubspot-sandbox")), "--port", "0", "--exit-on-stdin-eof", "--seed", "11",
         "--companies", "1200", "--contacts", "0", "--rate-limit", "4",
         "--rate-interval-ms", "1000", "--no-auto-deliver", "--retry-scale", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    first = process.stdout.readline().strip()
    if not first.startswith("listening on "):
        process.kill()
        pytest.fail(f"sandbox did not start: {first!r}")
    try:
        yield Sandbox(first.removeprefix("listening on "))
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Server:
    """One sync-server deployment: its environment and data file; started and stopped."""

    def __init__(self, sandbox: Sandbox, data: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "RUST_LOG": "info",
            "SYNC_DATA": str(data),
            "SYNC_LISTEN": f"127.0.0.1:{port}",
            "TOKEN_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ADMIN_TOKEN_SECRET": secrets.token_hex(32),
            "HUBSPOT_CLIENT_ID": CLIENT_ID,
            "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET,
            "HUBSPOT_REDIRECT_URI": f"{self.url}/oauth/hubspot/callback",
            "HUBSPOT_BASE_URL": sandbox.url,
            "PUBLIC_BASE_URL": self.url,
        }
        self.process = None
        # Beside the data folder, which the server creates itself.
        self.log = data.parent.parent / "server.log"

    def command(self, *args) -> str:
        done = subprocess.run([str(binary("sync-server")), *args], env=self.env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def start(self):
        assert self.process is None
        self.log_file = open(self.log, "a")
        self.process = subprocess.Popen(
            [str(binary("sync-server")), "--exit-on-stdin-eof"], env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file, text=True,
        )
        first = self.process.stdout.readline().strip()
        if first != f"listening on {self.url}":
            self.process.kill()
            pytest.fail(f"sync-server did not start: {first!r}\n{self.log.read_text()}")

    def stop(self, timeout_s=30) -> float:
        """SIGTERM; returns how long the clean stop took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        took = time.monotonic() - started
        self.process = None
        self.log_file.close()
        assert code == 0, f"exit {code}\n{self.log.read_text()}"
        return took

    def kill(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.log_file.close()


@pytest.fixture(scope="module")
def server(sandbox, tmp_path_factory):
    server = Server(sandbox, tmp_path_factory.mktemp("sync-server") / "data" / "sync.sqlite")
    yield server
    server.kill()
