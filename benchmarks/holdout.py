"""Held-out check of the performance model: fit the engine factors on part of a measurement file and
predict the rest, so the error is measured on configurations the fit never saw.

    python benchmarks/holdout.py [--out benchmarks/holdout.csv]

Splits (each fitted with the same least-squares fit as benchmarks/fit_engines.py):
* DGX-A100 (splitwise): fit on TP 2 and 4, predict TP 8 (another parallel layout);
  fit on llama2-70b, predict bloom-176b (another model: MHA, 2.5x larger, 8x larger vocabulary);
  fit on prompts <= 1024 tokens, predict prompts >= 2048 (longer contexts).
* L40S (vLLM): fit on TP 4 single-stage rows, predict TP 8 and the TP4 x PP2 pipeline row;
  fit on inputs <= 4096, predict inputs >= 10000.
Prints a table (MAPE, worst, share of rows within 15%, rows more than 2x off) and writes a CSV.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fit_engines import FITTED, LOWER, PRIOR, PRIOR_WEIGHT, STARTS, UPPER, profile_from  # noqa: E402
from planner.calibration import DGX_FILE, VLLM_FILE, comparison_rows  # noqa: E402
from planner.catalog import load_catalog  # noqa: E402

SPLITS = [
    ("splitwise", DGX_FILE, "TP 2+4 -> TP 8", lambda r: r["tp"] in (2, 4), lambda r: r["tp"] == 8),
    ("splitwise", DGX_FILE, "llama2-70b -> bloom-176b", lambda r: r["model"] == "llama2-70b",
     lambda r: r["model"] == "bloom-176b"),
    ("splitwise", DGX_FILE, "prompts <= 1024 -> >= 2048", lambda r: r["input_len"] <= 1024,
     lambda r: r["input_len"] >= 2048),
    ("vllm", VLLM_FILE, "TP4 PP1 -> TP8 and TP4xPP2", lambda r: r["tp"] == 4 and r["pp"] == 1,
     lambda r: not (r["tp"] == 4 and r["pp"] == 1)),
    ("vllm", VLLM_FILE, "inputs <= 4096 -> >= 10000", lambda r: r["input_len"] <= 4096,
     lambda r: r["input_len"] >= 10000),
]


def _fit(base, file, cat, train):
    def residuals(x):
        rows = [r for r in comparison_rows({file: profile_from(base, x, "holdout")}, cat)
                if not r["excluded"] and train(r)]
        out = [math.log(r["predicted"] / r["measured"]) if r["predicted"] == r["predicted"] and r["predicted"] > 0
               else 5.0 for r in rows]
        out += [PRIOR_WEIGHT * math.log(x[FITTED.index(k)] / c) for k, c in PRIOR.items()]
        return np.array(out)

    best = min((least_squares(residuals, x0, bounds=(LOWER, UPPER), x_scale=np.array(UPPER) / 10) for x0 in STARTS),
               key=lambda res: res.cost)
    return profile_from(base, best.x, "holdout", rounded=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "holdout.csv"))
    args = ap.parse_args(argv)
    cat = load_catalog()
    out_rows = []
    print(f"{'split':<32} {'phase':<10} {'n':>3} {'MAPE %':>7} {'worst %':>8} {'<=15%':>6} {'>2x':>4}")
    for engine, file, name, train, test in SPLITS:
        prof = _fit(cat.engine(engine), file, cat, train)
        rows = [r for r in comparison_rows({file: prof}, cat) if not r["excluded"] and test(r)]
        for phase in sorted({r["phase"] for r in rows}):
            errs = [abs(r["error_pct"]) for r in rows if r["phase"] == phase]
            ratio = [max(r["predicted"] / r["measured"], r["measured"] / r["predicted"]) for r in rows
                     if r["phase"] == phase]
            rec = {"split": name, "engine": engine, "phase": phase, "n": len(errs),
                   "mape_pct": round(sum(errs) / len(errs), 1), "worst_pct": round(max(errs), 1),
                   "within_15_pct": round(100 * sum(e <= 15 for e in errs) / len(errs)),
                   "over_2x": sum(q > 2 for q in ratio),
                   "fitted": " ".join(f"{k}={getattr(prof, k):.3g}" for k in FITTED)}
            out_rows.append(rec)
            print(f"{name:<32} {phase:<10} {rec['n']:>3} {rec['mape_pct']:>7} {rec['worst_pct']:>8} "
                  f"{rec['within_15_pct']:>5}% {rec['over_2x']:>4}", flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out_rows[0]))
        w.writeheader()
        w.writerows(out_rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
