"""Browser fixtures: a Streamlit server for the session and Playwright on Debian's chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a CI result can be reproduced and a red run is
# never luck; HYPOTHESIS_PROFILE=explore draws new ones (and keeps failures in .hypothesis/) when hunting.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
# explore: new random examples, HYPOTHESIS_MAX_EXAMPLES of them (default 1,000) in the tests that scale
# their count with `tests.helpers.examples` (the brute-force comparisons in tests/test_planner.py)
settings.register_profile("explore", derandomize=False,
                          max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "1000")))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright: use the system chromium (Playwright's own download does not work here)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}


@dataclass(frozen=True)
class AppServer:
    url: str
    pid: int  # the tests look at its solve workers (child processes)


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server.url


@pytest.fixture(scope="session")
def app_server():
    """`streamlit run app.py` on a free port, once /_stcore/health answers."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it")
    port = _free_port()
    log = open(ROOT / "out" / f"streamlit-test-{port}.log", "w") if (ROOT / "out").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start (exit code {proc.poll()})")
            time.sleep(0.3)
        yield AppServer(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log is not subprocess.DEVNULL:
            log.close()


@pytest.fixture
def downloads(monkeypatch):
    """AppTest download buttons: the bytes of every file offered for download, by file name."""
    from tests.apptest import RecordingStorage

    RecordingStorage.files = {}
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", RecordingStorage)
    return RecordingStorage.files
