"""Fixtures of the browser tests: a real `ferry serve` per test (fresh data directory, its own
`--config` TOML, short worker timings) and Debian's Chromium driven by Playwright.

Run them with `scripts/browser-test`, which installs what they need and builds the binary.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
API_KEY = "browser-test-key-3f7c1e9a"


def ferry_binary() -> Path:
    """The binary under test: FERRY_BIN, else the debug build of the target directory."""
    if os.environ.get("FERRY_BIN"):
        return Path(os.environ["FERRY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "ferry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `ferry serve`."""
    base: str
    dir: Path
    token: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def origin(self) -> str:
        return self.base

    @property
    def local_db(self) -> Path:
        return self.dir / "local.db"

    def request(self, method: str, path: str, body=None):
        """One API call; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        return status, (json.loads(raw) if "json" in kind else raw.decode())

    def wait_final(self, kind: str, job_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, job = self.request("GET", f"/v1/{kind}s/{job_id}")
            assert status == 200, job
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise AssertionError(f"{kind} {job_id} did not finish in {timeout}s")


def start_server(tmp: Path, auth: str = "none", extra: str = "", top: str = "") -> Server:
    """`top`: top-level TOML keys; `extra`: whole tables, written last."""
    port = free_port()
    lines = [
        f'listen = "127.0.0.1:{port}"',
        f'data_dir = "{tmp}"',
        top,
        "[workers]",
        'lease = "2s"',
        'poll_interval = "200ms"',
        'backoff_base = "100ms"',
        'backoff_cap = "500ms"',
        'shutdown_grace = "2s"',
    ]
    token = None
    if auth == "api_keys":
        token = API_KEY
        lines += ["[auth]", 'mode = "api_keys"', "[[auth.api_keys]]",
                  f'key = "{API_KEY}"', 'tenant = "t1"', 'subject = "u1"', "scopes = []"]
    config = tmp / "ferry.toml"
    config.write_text("\n".join(lines) + "\n" + extra)
    log = open(tmp / "stderr.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env["FERRY_LOG"] = "warn"
    process = subprocess.Popen([str(ferry_binary()), "serve", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=log, env=env)
    server = Server(base=f"http://127.0.0.1:{port}", dir=tmp, token=token, process=process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"ferry serve exited: {(tmp / 'stderr.log').read_text()}")
        try:
            with urllib.request.urlopen(server.base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("ferry serve did not answer /healthz within 30 s")
        time.sleep(0.05)
    # The binary must be this tree's build (it embeds web/ at compile time).
    with urllib.request.urlopen(server.base + "/ferry.js", timeout=5) as response:
        served = response.read()
    assert served == (REPO / "web" / "ferry.js").read_bytes(), \
        f"{ferry_binary()} does not serve this tree's web/ferry.js: rebuild it"
    return server


def stop_server(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def make_server():
    """Starts servers (`make_server(auth="api_keys")`); all stopped with SIGTERM at the end."""
    started = []
    temps = []

    def make(auth: str = "none", prepare=None, extra: str = "", top: str = "") -> Server:
        tmp = tempfile.TemporaryDirectory(prefix="ferry-browser-")
        temps.append(tmp)
        path = Path(tmp.name)
        if prepare:
            prepare(path)
        server = start_server(path, auth, extra, top)
        started.append(server)
        return server

    yield make
    for server in started:
        stop_server(server)
    for tmp in temps:
        tmp.cleanup()


def s3_storage() -> str:
    """A `[storage]` table for the S3-compatible server of this run (scripts/browser-test starts
    one, or scripts/test's is used), under a prefix of its own."""
    missing = [v for v in ("FERRY_TEST_S3_ENDPOINT", "FERRY_TEST_S3_BUCKET") if v not in os.environ]
    assert not missing, f"{missing} not set: run the browser tests with scripts/browser-test"
    prefix = f"browser-{os.urandom(6).hex()}"
    return "\n".join([
        "[storage]",
        f'url = "s3://{os.environ["FERRY_TEST_S3_BUCKET"]}/{prefix}"',
        f'endpoint = "{os.environ["FERRY_TEST_S3_ENDPOINT"]}"',
        f'access_key_id = "{os.environ["FERRY_TEST_S3_ACCESS_KEY_ID"]}"',
        f'secret_access_key = "{os.environ["FERRY_TEST_S3_SECRET_ACCESS_KEY"]}"',
    ]) + "\n"


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Watched:
    """What a page did: every request's URL, console errors, uncaught exceptions."""
    requests: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def console(self, message) -> None:
        """Records a console error."""
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    def foreign_requests(self, *allowed_origins: str) -> list:
        allowed = {urlsplit(o).netloc for o in allowed_origins}
        return [u for u in self.requests
                if not u.startswith(("blob:", "data:", "about:")) and urlsplit(u).netloc not in allowed]


@pytest.fixture
def context(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def watched_page(context):
    """A page whose requests and console errors are recorded."""
    page = context.new_page()
    watched = Watched()
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("console", lambda message: watched.console(message))
    page.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    page.set_default_timeout(15_000)
    return page, watched
