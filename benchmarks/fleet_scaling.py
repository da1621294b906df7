"""Fleet solve time against pool size (10 to 10,000 GPUs) and the number of GPU types.

Synthetic scenarios (Llama-3-8B on vLLM, 2048 in / 512 out tokens, 64 sequences in flight, at most 2
stages, coarse sizes, catalogue GPUs and prices, the GPUs split evenly over the types). Per point: the
replica catalogue's enumeration (once per scenario) and the fleet MILP at demands of 10%, 50% and 90% of
the pool's capacity (medians over the repeats); every MILP's status is recorded.

    python benchmarks/fleet_scaling.py                # both series (a few minutes)
    python benchmarks/fleet_scaling.py --quick        # a few points
    python benchmarks/fleet_scaling.py --repeat 5

Prints a table and writes benchmarks/fleet_scaling.csv; the app's Performance page plots it.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import scenario_from_texts  # noqa: E402
from planner.fleet import Fleet  # noqa: E402

GPU_TYPES = ("H100-SXM", "A100-80GB-SXM", "L40S", "A10G", "H200", "H100-PCIe", "A100-40GB", "L4")
SERIES = {"gpus": ("gpus", (10, 30, 100, 300, 1000, 3000, 10000)), "gpu_types": ("gpu_types", (1, 2, 4, 6, 8))}
QUICK = {"gpus": (10, 1000, 10000), "gpu_types": (1, 4)}
BASE = {"gpus": 1000, "gpu_types": 4}
FRACTIONS = (0.1, 0.5, 0.9)
COLUMNS = ["series", "gpus", "gpu_types", "catalogue", "catalogue_s", "capacity_tokens_per_s", "capacity_s",
           "milp_s_median", "milp_s_max", "total_s", "statuses", "repeats"]


def scenario(gpus: int, gpu_types: int):
    counts = [gpus // gpu_types + (1 if i < gpus % gpu_types else 0) for i in range(gpu_types)]
    config = "\n".join(["parameter,value", "model,llama-3-8b", "input_tokens,2048", "output_tokens,512",
                        "concurrency,64", "token_basis,total", "engine,vllm", "max_pipeline_stages,2",
                        "min_layers_per_stage,1", "quantization,coarse", "time_limit_seconds,120"])
    pool = "\n".join(["gpu_type,count"] + [f"{g},{n}" for g, n in zip(GPU_TYPES, counts) if n > 0])
    return scenario_from_texts({"config.csv": config, "gpu_pool.csv": pool}, name=f"fleet-{gpus}x{gpu_types}")


def measure(gpus: int, gpu_types: int, repeat: int) -> dict:
    sc = scenario(gpus, gpu_types)
    t0 = time.perf_counter()
    fleet = Fleet(sc)
    cat_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    cap, cap_status, _ = fleet.capacity()
    cap_s = time.perf_counter() - t1
    times, statuses = [], set()
    for _ in range(repeat):
        for f in FRACTIONS:
            t = time.perf_counter()
            plan = fleet.solve(f * cap)
            times.append(time.perf_counter() - t)
            statuses.add(plan.status)
    statuses.add(cap_status)
    return {"gpus": gpus, "gpu_types": gpu_types, "catalogue": fleet.catalogue_size, "catalogue_s": round(cat_s, 4),
            "capacity_tokens_per_s": round(cap, 1), "capacity_s": round(cap_s, 4),
            "milp_s_median": round(statistics.median(times), 4), "milp_s_max": round(max(times), 4),
            "total_s": round(cat_s + cap_s + statistics.median(times), 4), "statuses": "|".join(sorted(statuses)),
            "repeats": repeat}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "fleet_scaling.csv"))
    args = p.parse_args()
    rows = []
    for series, (param, values) in SERIES.items():
        for v in (QUICK[series] if args.quick else values):
            point = dict(BASE, **{param: v})
            if point["gpus"] < point["gpu_types"]:
                continue
            row = {"series": series, **measure(point["gpus"], point["gpu_types"], args.repeat)}
            rows.append(row)
            print("  ".join(f"{k}={row[k]}" for k in COLUMNS), flush=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
