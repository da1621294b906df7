"""Solve-time benchmark: prints a table (and writes benchmarks/results.csv) of problem size, Pyomo build
time, HiGHS time, total wall time (median of --repeats runs, whole method including candidate generation
and model build) and the $/million tokens found, per scenario and method.

    python benchmarks/run.py                      # medium coarse/full, hal, realistic, xl full
    python benchmarks/run.py --scenarios medium --repeats 5
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import Planner, load_config_dir  # noqa: E402
from planner.candidates import _evaluate  # noqa: E402

CASES = {
    "medium-coarse": ("medium", "coarse"),
    "medium-full": ("medium", "full"),
    "hal": ("hal", None),
    "realistic": ("realistic", None),
    "xl-full": ("xl", "full"),
}


def run_once(name: str, method: str) -> dict:
    folder, quant = CASES[name]
    sc = load_config_dir(ROOT / "config" / folder)
    if quant:
        sc = replace(sc, settings=replace(sc.settings, quantization=quant, sizes=None))
    _evaluate.cache_clear()  # cold: no performance-model results carried over between runs
    t0 = time.perf_counter()
    planner = Planner(sc)
    result = getattr(planner, method)()
    total = time.perf_counter() - t0
    size = result.problem_size
    return {"case": name, "method": method, "options": size["options"], "binaries": size["binaries"],
            "rows": size["rows"], "build_s": result.build_seconds, "highs_s": result.solve_seconds,
            "total_s": total, "usd_per_million_tokens": result.plan.usd_per_million_tokens,
            "proven_optimal": result.proven_optimal}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default=",".join(CASES))
    p.add_argument("--methods", default="exact,enumeration,weighted")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results.csv"))
    args = p.parse_args()
    rows = []
    print(f"{'case':14s} {'method':11s} {'options':>7s} {'binaries':>8s} {'rows':>6s} {'build s':>8s} "
          f"{'HiGHS s':>8s} {'total s':>8s} {'$/M tok':>9s} proven")
    for name in args.scenarios.split(","):
        for method in args.methods.split(","):
            runs = [run_once(name, method) for _ in range(args.repeats)]
            row = dict(runs[0])
            for key in ("build_s", "highs_s", "total_s"):
                row[key] = statistics.median(r[key] for r in runs)
            rows.append(row)
            print(f"{name:14s} {method:11s} {row['options']:7d} {row['binaries']:8d} {row['rows']:6d} "
                  f"{row['build_s']:8.2f} {row['highs_s']:8.2f} {row['total_s']:8.2f} "
                  f"{row['usd_per_million_tokens']:9.4f} {row['proven_optimal']}", flush=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
