"""Starts the local stack (`make dev`'s binary, small data) once per session and drives
Debian's headless Chromium through its chromedriver with Selenium."""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or REPO / "target" / "console-screenshots")
STARTUP_TIMEOUT_S = 180


def _binary() -> Path:
    bin_dir = Path(os.environ.get("SYNC_BIN_DIR") or REPO / "target" / "debug")
    path = bin_dir / "local-stack"
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build -p local-stack`")
    return path


class Stack:
    """What the local stack printed: its URLs, the admin token, the sign-in links."""

    def __init__(self, printed: str):
        def find(pattern):
            found = re.search(pattern, printed, re.MULTILINE)
            if not found:
                pytest.fail(f"the local stack did not print {pattern!r}:\n{printed}")
            return found.group(1)

        self.base = find(r"^  console +(http://\S+)/console/$")
        self.sign_in_link = find(r"^  sign-in link +(http://\S+)$")
        self.other_tenant_link = find(r"sign-in link for tenant `other`: (http://\S+)$")
        self.token = find(r"export TOKEN='([^']+)'")
        self.sandbox = find(r"^  HubSpot sandbox +(http://\S+) ")

    def sandbox_call(self, method: str, path: str, body=None):
        return _call(method, f"{self.sandbox}/_sandbox{path}", body)

    def admin(self, method: str, path: str, body=None):
        return _call(method, f"{self.base}{path}", body, {"Authorization": f"Bearer {self.token}"})

    def post_form(self, path: str, fields: dict, headers=None):
        """A raw form POST (no browser): the status it got."""
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code


def _call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


@pytest.fixture(scope="session")
def stack():
    data = tempfile.mkdtemp(prefix="console-test-")
    process = subprocess.Popen(
        [str(_binary()), "--port", "0", "--sandbox-port", "0", "--stripe-port", "0",
         "--companies", "20", "--contacts", "30", "--unmatched", "3",
         "--data", f"{data}/sync.sqlite", "--exit-on-stdin-eof", "--sign-in-for", "other"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    printed = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            printed.append(line)
            if "sign-in link for tenant `other`" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(STARTUP_TIMEOUT_S) or process.poll() is not None:
        process.kill()
        pytest.fail("the local stack did not start:\n" + "".join(printed))
    try:
        yield Stack("".join(printed))
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1366,900",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='console-chromium-')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    # An element a page has not rendered yet is waited for, not missed.
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


TOKEN_SHAPE = re.compile(r"\b[vsl]1\.[a-z0-9_-]+\.\d+\.[0-9a-f]{64}\b")


@pytest.fixture(scope="session")
def shot(browser, stack):
    """Saves a screenshot of the current screen (the run's artifacts), after checking the
    screen shows no token: neither the admin token nor anything shaped like ours."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("*.png"):
        stale.unlink()
    taken = []

    def take(name: str):
        page = browser.page_source
        assert stack.token not in page, f"{name} shows the admin token"
        assert not TOKEN_SHAPE.search(page), f"{name} shows a token"
        path = SCREENSHOTS / f"{len(taken) + 1:02d}-{name}.png"
        browser.save_screenshot(str(path))
        taken.append(path)

    yield take
    print(f"\n{len(taken)} console screenshots in {SCREENSHOTS}")


def eventually(check, timeout_s=30, every_s=0.5, what="the condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # a page mid-reload, an element not there yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)
