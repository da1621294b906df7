"""More held-out checks of the performance model: refit a profile on one part of its data and predict
another part that differs in layout, model or length (benchmarks/fit_engines.py holds out every other
batch / configuration; these splits are harder).

    python benchmarks/holdout.py [--out benchmarks/holdout.csv] [--files-only]

`--files-only` refits only the measurement-file splits and keeps the reference splits' rows of the existing
CSV (for a change that leaves the `vllm` profile as it is; the reference splits take most of the time).

Splits (each fitted with benchmarks/fit_engines.py's parameters, bounds and prior):
* AIConfigurator reference (vllm): fit on TP 1 and 2, predict TP 4 and 8; fit on Llama-3.1-8B, predict
  70B; fit on 128/128 and 8192/256, predict 2048/512.
* DGX-A100 (splitwise): fit on TP 2 and 4, predict TP 8; fit on llama2-70b, predict bloom-176b.
* L40S (vllm-eager): fit on TP4 single-stage rows, predict TP8 and the TP4 x PP2 row.
Prints a table (MAPE, worst ratio, share within 15%, rows more than 2x off) and writes a CSV.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fit_engines import Space, file_residuals, fit, reference_residuals, _indexed  # noqa: E402
from planner.calibration import (DGX_FILE, VLLM_FILE, comparison_rows, reference_measurements,  # noqa: E402
                                 reference_rows)
from planner.catalog import load_catalog  # noqa: E402

REF_SPLITS = [
    ("reference TP 1+2 -> TP 4+8", lambda r: r["tp"] <= 2, lambda r: r["tp"] >= 4),
    ("reference 8B -> 70B", lambda r: r["model"].endswith("8b"), lambda r: r["model"].endswith("70b")),
    ("reference 128/128 + 8192/256 -> 2048/512", lambda r: r["input_len"] != 2048, lambda r: r["input_len"] == 2048),
]
FILE_SPLITS = [
    ("splitwise", DGX_FILE, "DGX TP 2+4 -> TP 8", lambda r: r["tp"] in (2, 4), lambda r: r["tp"] == 8),
    ("splitwise", DGX_FILE, "DGX llama2-70b -> bloom-176b", lambda r: r["model"] == "llama2-70b",
     lambda r: r["model"] == "bloom-176b"),
    ("vllm-eager", VLLM_FILE, "L40S TP4 PP1 -> TP8 and TP4xPP2", lambda r: r["tp"] == 4 and r["pp"] == 1,
     lambda r: not (r["tp"] == 4 and r["pp"] == 1)),
]


def _record(name: str, engine: str, phase: str, pairs: list[tuple[float, float]]) -> dict:
    errs = [abs(p - m) / m * 100 for p, m in pairs]
    ratios = [max(p / m, m / p) for p, m in pairs]
    return {"split": name, "engine": engine, "phase": phase, "n": len(pairs),
            "mape_pct": round(sum(errs) / len(errs), 1), "worst_ratio": round(max(ratios), 2),
            "within_15_pct": round(100 * sum(e <= 15 for e in errs) / len(errs)), "over_2x": sum(q > 2 for q in ratios)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "holdout.csv"))
    ap.add_argument("--files-only", action="store_true",
                    help="refit only the DGX and L40S splits; keep the reference rows of the existing --out CSV")
    args = ap.parse_args(argv)
    cat = load_catalog()
    out = []
    if args.files_only:
        with open(args.out, newline="") as f:
            out = [r for r in csv.DictReader(f) if r["engine"] == "vllm"]
    ref = [] if args.files_only else reference_measurements()
    for name, train, test in ([] if args.files_only else REF_SPLITS):
        space = Space("vllm", cat.engine("vllm"))
        res = fit(space, reference_residuals([r for r in ref if r["fits"] and train(r)], cat), starts=(1.0,))
        rows = [r for r in reference_rows(space.profile(res.x), cat, rows=ref) if r["fits"] and test(r)]
        for phase, key in (("prefill", "prefill_ms"), ("decode", "decode_step_ms"), ("throughput", "tokens_per_s")):
            out.append(_record(name, "vllm", phase, [(r[f"pred_{key}"], r[key]) for r in rows]))
            print(out[-1], flush=True)
    vllm = cat.engine("vllm")
    for engine, file, name, train, test in FILE_SPLITS:
        base = cat.engine(engine)
        if engine == "vllm-eager":
            base = replace(base, gpu_efficiencies=vllm.gpu_efficiencies)
        space = Space(engine, base, base.gpu_efficiencies)
        res = fit(space, file_residuals(file, cat, train, space), starts=(1.0,))
        prof = space.profile(res.x)  # sets space.extras (the burst recompute share of vllm-eager)
        rows = [r for r in _indexed(comparison_rows({file: prof}, cat,
                                                    recompute_share=space.extras.get("preempt_recompute_share")))
                if not r["excluded"] and test(r)]
        for phase in sorted({r["phase"] for r in rows}):
            out.append(_record(name, engine, phase, [(r["predicted"], r["measured"]) for r in rows
                                                     if r["phase"] == phase]))
            print(out[-1], flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
