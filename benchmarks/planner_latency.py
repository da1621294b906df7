"""Planner-side time of the app's cold slider move: candidate build and exact solve (with its frontier, as the
app asks), per segment-size setting, in a fresh process per run (no warm caches from an earlier run).

    python benchmarks/planner_latency.py [--repeat 5] [--root DIR] [--scenarios medium,realistic]

`--root` runs another checkout's planner (e.g. an older commit unpacked with `git archive`) for a
before/after comparison on the same machine. For medium, each run builds the settings in the order a user
moving the quantization slider does (coarse, then fine, even, full), so later settings reuse what the
process computed for earlier ones; the first build of each run is cold. Prints medians (and min/max) of wall
time over the runs and the median CPU time of the process, in seconds. Wall times are noisy on a loaded
machine (CPU times less so): compare medians taken back to back.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEQUENCES = {"medium": ("coarse", "fine", "even", "full"), "realistic": (None,)}

CHILD = r"""
import json, sys, time
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
from planner import Planner, build_candidates, load_config_dir
out = []
base = load_config_dir(sys.argv[1] + "/config/" + sys.argv[2])
for q in json.loads(sys.argv[3]):
    sc = base if q is None else replace(base, settings=replace(base.settings, quantization=q))
    t0, c0 = time.perf_counter(), time.process_time()
    cs = build_candidates(sc)
    t1, c1 = time.perf_counter(), time.process_time()
    Planner(sc, cs).exact(with_frontier=True)
    t2, c2 = time.perf_counter(), time.process_time()
    out.append({"setting": q or "default", "candidates_s": t1 - t0, "exact_s": t2 - t1, "options": len(cs.options),
                "candidates_cpu_s": c1 - c0, "exact_cpu_s": c2 - c1})
print(json.dumps(out))
"""


def run_once(root: Path, scenario: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), scenario, json.dumps(SEQUENCES[scenario])],
                          capture_output=True, text=True, check=True, cwd=root)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose planner is timed")
    ap.add_argument("--scenarios", default="medium,realistic")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    print(f"planner at {root}; medians over {args.repeat} fresh processes (s)")
    print(f"{'scenario':<10} {'setting':<8} {'options':>7} {'candidates wall':>22} {'exact+frontier wall':>22} "
          f"{'candidates CPU':>15} {'exact CPU':>10}")
    for scenario in args.scenarios.split(","):
        runs = [run_once(root, scenario) for _ in range(args.repeat)]
        for i, first in enumerate(runs[0]):
            c = [r[i]["candidates_s"] for r in runs]
            e = [r[i]["exact_s"] for r in runs]
            cc = statistics.median(r[i]["candidates_cpu_s"] for r in runs)
            ec = statistics.median(r[i]["exact_cpu_s"] for r in runs)
            print(f"{scenario:<10} {first['setting']:<8} {first['options']:>7} "
                  f"{statistics.median(c):>8.3f} ({min(c):.3f}-{max(c):.3f}) "
                  f"{statistics.median(e):>8.3f} ({min(e):.3f}-{max(e):.3f}) {cc:>15.3f} {ec:>10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
