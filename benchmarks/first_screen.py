"""How fast a cold server shows the default headline, in a real browser (issue 14, item 8: <= 5 s).

    python benchmarks/first_screen.py [--rounds 3] [--second]

Each round starts a fresh `streamlit run app.py` (empty caches, nothing imported yet) and opens one page in
Debian's chromium (/usr/bin/chromium) at 1400x900. Times, from the start of the server process:
* "server up": the health endpoint answers (polled every 0.05 s);
then from the navigation:
* "shell": Streamlit's app frame is in the page;
* "first metric": any st.metric is drawn;
* "headline": the "$ per million" metric shows its value (the default scenario's answer).
With --second, a second page (a new session on the same, now warm server) is opened after the first and
timed to its headline too: what every later visitor waits.
Prints one line per round and a table of medians. The server warms itself up from its start (ui.prewarm);
PLANNER_PREWARM=0 in the environment measures it without.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from app_latency import free_port, start_server  # noqa: E402  (same folder: one way to start the app)

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 120_000
HEADLINE = "$ per million"


def page_times(browser, url: str) -> dict[str, float]:
    """Seconds from navigation to the shell, the first metric and the headline's value."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.get_by_test_id("stApp").wait_for(timeout=TIMEOUT_MS)
        shell = time.perf_counter() - t0
        page.get_by_test_id("stMetric").first.wait_for(timeout=TIMEOUT_MS)
        metric = time.perf_counter() - t0
        page.get_by_test_id("stMetric").filter(has_text=HEADLINE).get_by_test_id("stMetricValue").first.wait_for(
            timeout=TIMEOUT_MS)
        head = time.perf_counter() - t0
    finally:
        page.close()
    return {"shell": shell, "first metric": metric, "headline": head}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--second", action="store_true", help="also time a second session on the warm server")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    rows: list[dict[str, float]] = []
    with open(ROOT / "benchmarks" / "first_screen.log", "w") as log, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for r in range(args.rounds):
            port = free_port()
            t0 = time.perf_counter()
            proc = start_server(port, log, wait_s=120.0)
            up = time.perf_counter() - t0
            try:
                row = {"server up": up, **page_times(browser, f"http://127.0.0.1:{port}")}
                row["server start -> headline"] = up + row["headline"]
                if args.second:
                    row["second session headline"] = page_times(browser, f"http://127.0.0.1:{port}")["headline"]
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print(f"note: the server on port {port} did not stop within 30 s of SIGTERM; killed",
                          file=sys.stderr)
                    proc.kill()
                    proc.wait(timeout=30)
            rows.append(row)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items()), flush=True)
        browser.close()
    print(f"\n{'measure (s)':<30} {'median':>8} {'min':>8} {'max':>8}   ({len(rows)} cold servers)")
    for k in rows[0]:
        vals = [row[k] for row in rows]
        print(f"{k:<30} {statistics.median(vals):>8.2f} {min(vals):>8.2f} {max(vals):>8.2f}")
    print("target (issue 14 item 8): server start -> headline <= 5 s on an idle 2-core machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
