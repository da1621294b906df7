"""Scaling curve: total time of the exact method (scenario to proven plan) as the model's layers, the
number of GPU types and the pool size grow, on synthetic scenarios written as config-folder texts
(Llama-3-70B served by vLLM, 2048 in / 512 out tokens, concurrency auto, catalogue prices).

    python benchmarks/scaling.py                    # three series, coarse and full sizes (tens of minutes)
    python benchmarks/scaling.py --quick            # a few points, coarse sizes
    python benchmarks/scaling.py --series layers --quantizations full --repeat 3

Writes benchmarks/scaling.csv; the app's Performance page plots it with the 1.5 s interactive line.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import ours_method, run_isolated, summarise  # noqa: E402

# catalogue SKUs, most common first: a series with n types uses the first n
GPU_TYPES = ("H100-SXM", "A100-80GB-SXM", "L40S", "A10G", "H200", "H100-PCIe", "A100-40GB", "L4", "H100-NVL",
             "A100-80GB-PCIe", "L40", "L20", "A10", "V100-32GB", "V100", "T4")
BASE = {"layers": 80, "gpu_types": 4, "gpus": 64}
SERIES = {  # series -> the parameter it varies and its values (the others stay at BASE)
    "layers": ("layers", (20, 40, 60, 80, 120, 160)),
    "gpu_types": ("gpu_types", (2, 4, 8, 12, 16)),
    "gpus": ("gpus", (10, 30, 100, 300, 1000)),
}
QUICK = {"layers": (20, 80), "gpu_types": (2, 8), "gpus": (10, 100)}
COLUMNS = ["series", "quantization", "layers", "gpu_types", "gpus", "options", "binaries", "rows", "build_s",
           "highs_s", "total_s", "runs", "solves", "usd_per_million_tokens", "proven_optimal", "status"]


def scenario_texts(layers: int, gpu_types: int, gpus: int, quantization: str, time_limit_s: float) -> dict[str, str]:
    """Config-folder texts of one synthetic scenario; the GPUs are split evenly over the types."""
    if not 1 <= gpu_types <= len(GPU_TYPES):
        raise ValueError(f"gpu_types must be 1..{len(GPU_TYPES)}, got {gpu_types}")
    counts = [gpus // gpu_types + (1 if i < gpus % gpu_types else 0) for i in range(gpu_types)]
    config = "\n".join([
        "parameter,value", "model,llama-3-70b", f"num_decoder_layers,{layers}", "input_tokens,2048",
        "output_tokens,512", "concurrency,auto", "token_basis,total", "engine,vllm", "max_pipeline_stages,8",
        "min_layers_per_stage,1", f"quantization,{quantization}", f"time_limit_seconds,{time_limit_s:g}",
        "optimality_gap,0.0001", "inter_node_gb_per_s,25"])
    pool = "\n".join(["gpu_type,count"] + [f"{g},{n}" for g, n in zip(GPU_TYPES, counts) if n > 0])
    return {"config.csv": config, "gpu_pool.csv": pool}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", default=",".join(SERIES), help=f"comma list of {', '.join(SERIES)}")
    p.add_argument("--quantizations", default="coarse,full")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--timeout", type=float, default=180.0, help="seconds per run before it is killed and reported")
    p.add_argument("--quick", action="store_true", help="two points per series, coarse sizes")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "scaling.csv"))
    args = p.parse_args()
    series = [s.strip() for s in args.series.split(",") if s.strip()]
    unknown = [s for s in series if s not in SERIES]
    if unknown:
        sys.exit(f"unknown series: {', '.join(unknown)} (choose from {', '.join(SERIES)})")
    quants = ["coarse"] if args.quick else [q.strip() for q in args.quantizations.split(",") if q.strip()]
    rows = []
    print(f"{'series':10s} {'sizes':6s} {'layers':>6s} {'types':>5s} {'GPUs':>5s} {'options':>8s} {'binaries':>8s} "
          f"{'build s':>8s} {'HiGHS s':>8s} {'total s':>8s} {'$/M tok':>8s}  status")
    for name in series:
        param, values = SERIES[name]
        for quant in quants:
            for value in (QUICK[name] if args.quick else values):
                point = {**BASE, param: value}
                texts = scenario_texts(point["layers"], point["gpu_types"], point["gpus"], quant, args.timeout)
                spec = {"texts": texts, "name": f"{name}-{value}"}
                runs, status = run_isolated(ours_method, (spec, "exact", args.repeat), args.timeout + 30)
                row = {"series": name, "quantization": quant, **point, **summarise(runs, status)}
                rows.append(row)
                f = lambda k, s: "-" if row.get(k) in (None, "") else format(row[k], s)  # noqa: E731
                print(f"{name:10s} {quant:6s} {point['layers']:6d} {point['gpu_types']:5d} {point['gpus']:5d} "
                      f"{f('options', '8d')} {f('binaries', '8d')} {f('build_s', '8.2f')} {f('highs_s', '8.2f')} "
                      f"{f('total_s', '8.2f')} {f('usd_per_million_tokens', '8.4f')}  {row.get('status')}", flush=True)
                if not row.get("total_s"):
                    break  # larger values of this series would only fail the same way, later
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
