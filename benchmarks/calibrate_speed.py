"""Time `calibrate` (fit + leave-one-out refits) on 20 synthetic runs and on the 23 measured L40S runs.

    python benchmarks/calibrate_speed.py [--repeat 3]

Target (issue 15): calibrate on 20 runs under 10 s. Prints one table row per case: runs, figures,
fitted parameters, median wall time of the fit alone and of fit + leave-one-out.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.calibrate import calibrate, read_runs  # noqa: E402
from planner.catalog import load_catalog  # noqa: E402
from tests.test_calibrate import CHANGED, _truth, synthetic_runs  # noqa: E402


def _l40s_runs(cat):
    rows = list(csv.DictReader((ROOT / "data" / "measurements" / "vllm_l40s.csv").open()))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "l40s.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["model", "gpu", "tp", "pp", "nodes", "input_len", "output_len", "total_tokens_per_s"])
            for r in rows:
                w.writerow([r["model"], r["gpu"], r["tp"], r["pp"], r["num_nodes"], r["input_len"],
                            r["output_len"], r["total_tokens_per_s"]])
        return read_runs(path, cat, "vllm")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cat = load_catalog()
    base = cat.engine("vllm")
    cases = {"synthetic H100 (20 runs)": synthetic_runs(cat, _truth(cat, base, CHANGED)),
             "vllm_l40s.csv (23 runs)": _l40s_runs(cat)}
    print(f"{'case':<26} {'runs':>4} {'figures':>7} {'fitted':>6} {'fit s':>7} {'fit+LOO s':>9}")
    for name, runs in cases.items():
        fit_t, all_t = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = calibrate(runs, base, "x", cat, "bench", with_loo=False)
            fit_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            calibrate(runs, base, "x", cat, "bench")
            all_t.append(time.perf_counter() - t)
        rep = out["report"]
        print(f"{name:<26} {len(runs):>4} {rep['figures']:>7} {len(rep['fitted']):>6} "
              f"{statistics.median(fit_t):>7.2f} {statistics.median(all_t):>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
