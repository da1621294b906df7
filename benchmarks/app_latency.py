"""How fast the app answers a slider, and how much memory it holds on the XL scenario, in a real browser.

    python benchmarks/app_latency.py [--rounds 3] [--cold-rounds 1] [--out benchmarks/app_latency.csv] [--no-xl]

Starts `streamlit run app.py` (a fresh server for each part) and drives it with Playwright and Debian's
chromium (/usr/bin/chromium). Measured from the key press on the quantization slider to the moment the
plateau chart's data has changed in the page, on the bundled medium scenario:
* "new setting, cold": a setting not solved before, with the background pre-solve switched off
  (candidates, MILP solves in the worker, rendering): the worst case;
* "cached setting": going back to a setting solved before (the result comes from the cache);
* "new setting after a pause": as a user moves the slider, looking at each result for PAUSE_S seconds,
  with the pre-solve of the slider's neighbours on (the app's default).
Then it loads the XL scenario (240 GPUs, full segment sizes), presses "Solve now", waits for the result
and reports the peak resident memory (VmHWM) of the server process and of its solve workers.
Prints a table (medians over the rounds) and writes a CSV. The target (issue 6): <= 1.5 s slider to
chart, < 500 MB for the app process on XL.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PAUSE_S = 3.0  # how long a user looks at a result before moving the slider again
CHART_DATA = "() => { const p = document.querySelector('.js-plotly-plot'); return p && p.data ? p.data[0].x : null; }"
CHANGED = ("(b) => { const p = document.querySelector('.js-plotly-plot'); const x = p && p.data && p.data[0].x; "
           "return x && (x.length !== b.length || x.some((v, i) => Math.abs(v - b[i]) > 1e-9)); }")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, MB; 0 if it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return 0.0
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().split(") ")[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (FileNotFoundError, IndexError, ValueError):
                continue
    return out


def start_server(port: int, log, env: dict[str, str] | None = None, wait_s: float = 60.0,
                 cpus: set[int] | None = None, app_dir: Path | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on `port` (extra environment `env`), once its health endpoint answers; with
    `cpus`, the server and everything it forks run on those CPUs only (taskset); `app_dir`: another
    folder's app.py (many_users.py --floor)."""
    pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []
    proc = subprocess.Popen([*pin, sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"], cwd=app_dir or ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    deadline = time.perf_counter() + wait_s
    while time.perf_counter() < deadline:  # polled often: first_screen.py times the server's start with it
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("streamlit did not start")


@contextlib.contextmanager
def server(log):
    """A fresh `streamlit run app.py` (empty caches) on a free port: yields (port, process)."""
    port = free_port()
    proc = start_server(port, log)
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # seen once (2026-11-29) after the pre-solve part; reported, not hidden, and the run goes on
            print(f"note: the server on port {port} did not stop within 30 s of SIGTERM; killed", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=30)


def open_planner(browser, port: int):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://127.0.0.1:{port}/?scenario=medium")  # the app opens on llama70b-chat otherwise
    page.wait_for_function(CHART_DATA, timeout=300_000)
    page.get_by_role("tab", name="Search settings").click()
    return page


def row(measure: str, times: list[float]) -> dict:
    return {"measure": measure, "n": len(times), "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3)}


def slider_round(page, presses: list[str], pause_s: float = 0.0) -> list[float]:
    """Press each key on the quantization slider (after `pause_s`); seconds from the press to the chart's
    new data."""
    from playwright.sync_api import expect

    slider = page.get_by_test_id("stSlider").filter(has_text="Layer-split quantization").get_by_role("slider")
    times = []
    for key in presses:
        time.sleep(pause_s)
        before = page.evaluate(CHART_DATA)
        slider.focus()
        t0 = time.perf_counter()
        slider.press(key)
        page.wait_for_function(CHANGED, arg=before, timeout=300_000)
        times.append(time.perf_counter() - t0)
        expect(page.get_by_test_id("stException")).to_have_count(0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "app_latency.csv"))
    ap.add_argument("--cold-rounds", type=int, default=1,
                    help="fresh servers for the cold moves (three moves each); more give a steadier median")
    ap.add_argument("--no-xl", action="store_true", help="skip the XL memory measurement")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    rows = []
    log = open(ROOT / "benchmarks" / "app_latency.log", "w")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            # 1. cold: nothing pre-solved (the background pre-solve switched off), a fresh server each time
            fresh, cached = [], []
            for k in range(args.cold_rounds):
                with server(log) as (port, _):
                    page = open_planner(browser, port)
                    page.get_by_text("Pre-solve the quantization slider's neighbours").click()  # on by default
                    fresh += slider_round(page, ["ArrowRight"] * 3)  # coarse -> fine -> even -> full
                    for _ in range(args.rounds if k == 0 else 0):
                        cached += slider_round(page, ["ArrowLeft"] * 3 + ["ArrowRight"] * 3)
                    page.close()
            rows.append(row("slider to chart, new setting, cold (medium: fine, even, full)", fresh))
            rows.append(row("slider to chart, cached setting (medium)", cached))
            # 2. as a user moves it: a pause of PAUSE_S before each step, pre-solve on (the default)
            with server(log) as (port, _):
                page = open_planner(browser, port)
                paused = slider_round(page, ["ArrowRight"] * 3, pause_s=PAUSE_S)
                page.close()
            rows.append(row(f"slider to chart, new setting after a {PAUSE_S:g} s pause (pre-solved)", paused))
            if not args.no_xl:
                with server(log) as (port, proc):
                    page = open_planner(browser, port)
                    page.get_by_test_id("stSelectbox").filter(has_text="Bundled scenario").click()
                    page.get_by_role("option", name="xl", exact=True).click()
                    # xl is above the auto-solve size: wait until it is loaded and waiting for the button
                    page.get_by_text("Large problem").wait_for(timeout=300_000)
                    page.get_by_role("button", name="Solve now").click()
                    t0 = time.perf_counter()
                    peak_worker = 0.0
                    while time.perf_counter() - t0 < 600:
                        peak_worker = max([peak_worker] + [rss_mb(c) for c in children(proc.pid)])
                        if page.get_by_text("Solved (exact)").count():
                            break
                        time.sleep(0.5)
                    rows.append({"measure": "xl: Solve now to result (s)", "n": 1,
                                 "median_s": round(time.perf_counter() - t0, 2), "max_s": ""})
                    rows.append({"measure": "xl: app server process peak memory (MB)", "n": 1,
                                 "median_s": round(rss_mb(proc.pid), 1), "max_s": ""})
                    rows.append({"measure": "xl: solve worker peak memory (MB)", "n": 1,
                                 "median_s": round(peak_worker, 1), "max_s": ""})
            browser.close()
    finally:
        log.close()
    print(f"{'measure':<52} {'n':>3} {'median':>9} {'max':>8}")
    for r in rows:
        print(f"{r['measure']:<52} {r['n']:>3} {r['median_s']:>9} {r['max_s']:>8}")
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
