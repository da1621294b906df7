"""Fleet solve time against pool size (10 to 10,000 GPUs) and the number of GPU types.

Synthetic scenarios (Llama-3-8B on vLLM, 2048 in / 512 out tokens, 64 sequences in flight, at most 4
stages, coarse sizes, catalogue GPUs and prices, the GPUs split evenly over the types). Per point: the
build (candidates and the per-level replica pricers, once per scenario), the pool's capacity, and the fleet
solve (column generation and its reduced-cost proof) at demands of 10%, 50% and 90% of the capacity, each
on a fresh Fleet (no columns carried over), medians over the repeats; every solve's status is recorded.

    python benchmarks/fleet_scaling.py                # both series (a few minutes)
    python benchmarks/fleet_scaling.py --quick        # a few points
    python benchmarks/fleet_scaling.py --repeat 5
    python benchmarks/fleet_scaling.py --bundled      # realistic and xl at their own settings (below)

Prints a table and writes benchmarks/fleet_scaling.csv; the app's Performance page plots it. `--bundled`
measures `fleet` on the bundled realistic and xl scenarios (build + solve in one process, median of the
repeats, per demand) and the single-pipeline exact solve of the same scenario as a reference, and writes
benchmarks/fleet_bundled.csv.
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
COLUMNS = ["series", "gpus", "gpu_types", "max_stages", "columns", "build_s", "capacity_tokens_per_s", "capacity_s",
           "solve_s_median", "solve_s_max", "total_s", "statuses", "repeats"]
MAX_STAGES = 4


def scenario(gpus: int, gpu_types: int):
    counts = [gpus // gpu_types + (1 if i < gpus % gpu_types else 0) for i in range(gpu_types)]
    config = "\n".join(["parameter,value", "model,llama-3-8b", "input_tokens,2048", "output_tokens,512",
                        "concurrency,64", "token_basis,total", "engine,vllm", f"max_pipeline_stages,{MAX_STAGES}",
                        "min_layers_per_stage,1", "quantization,coarse", "time_limit_seconds,120"])
    pool = "\n".join(["gpu_type,count"] + [f"{g},{n}" for g, n in zip(GPU_TYPES, counts) if n > 0])
    return scenario_from_texts({"config.csv": config, "gpu_pool.csv": pool}, name=f"fleet-{gpus}x{gpu_types}")


def measure(gpus: int, gpu_types: int, repeat: int) -> dict:
    sc = scenario(gpus, gpu_types)
    builds, caps, times, statuses, columns = [], [], [], set(), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fleet = Fleet(sc)
        builds.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        cap, cap_status, _ = fleet.capacity()
        caps.append(time.perf_counter() - t1)
        statuses.add(cap_status)
        catalogues = fleet.catalogues
        for f in FRACTIONS:
            fresh = Fleet(sc, catalogues=catalogues)  # no columns carried over from other questions
            t = time.perf_counter()
            plan = fresh.solve(f * cap)
            times.append(time.perf_counter() - t)
            statuses.add(plan.status if plan.proven_optimal else f"{plan.status} (not proven)")
            columns = max(columns, fresh.catalogue_size)
    build, cap_s, solve = statistics.median(builds), statistics.median(caps), statistics.median(times)
    return {"gpus": gpus, "gpu_types": gpu_types, "max_stages": MAX_STAGES, "columns": columns,
            "build_s": round(build, 4), "capacity_tokens_per_s": round(cap, 1), "capacity_s": round(cap_s, 4),
            "solve_s_median": round(solve, 4), "solve_s_max": round(max(times), 4), "total_s": round(build + solve, 4),
            "statuses": "|".join(sorted(statuses)), "repeats": repeat}


BUNDLED = {"realistic": (0.01, 0.1, 0.5, 0.9, 0.99), "xl": (0.01, 0.5, 0.99)}
BUNDLED_COLUMNS = ["scenario", "max_stages", "demand_fraction", "demand_tokens_per_s", "fleet_s_median",
                   "fleet_s_runs", "cost_usd_per_hour", "status", "reference_solve_s_median", "ratio_to_reference"]


def bundled(repeat: int) -> list[dict]:
    """`fleet` (build + solve, one process, fresh each run) on the bundled scenarios at their own settings,
    beside the single-pipeline exact solve of the same scenario (candidates + MILPs) as a reference."""
    from planner import load_config_dir
    from planner.search import Planner

    rows = []
    for name, fractions in BUNDLED.items():
        sc = load_config_dir(ROOT / "config" / name)
        ref = []
        for _ in range(repeat):
            t = time.perf_counter()
            Planner(sc).exact()
            ref.append(time.perf_counter() - t)
        ref_s = statistics.median(ref)
        cap = Fleet(sc).capacity()[0]
        for f in fractions:
            runs, plan = [], None
            for _ in range(repeat):
                t = time.perf_counter()
                plan = Fleet(sc).solve(f * cap)
                runs.append(time.perf_counter() - t)
            med = statistics.median(runs)
            rows.append({"scenario": name, "max_stages": sc.settings.max_stages, "demand_fraction": f,
                         "demand_tokens_per_s": round(f * cap, 1), "fleet_s_median": round(med, 3),
                         "fleet_s_runs": " ".join(f"{x:.2f}" for x in runs),
                         "cost_usd_per_hour": round(plan.cost_usd_per_hour, 4),
                         "status": plan.status if plan.proven_optimal else f"{plan.status} (not proven)",
                         "reference_solve_s_median": round(ref_s, 3), "ratio_to_reference": round(med / ref_s, 2)})
            print("  ".join(f"{k}={rows[-1][k]}" for k in BUNDLED_COLUMNS), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--bundled", action="store_true", help="realistic and xl instead of the synthetic series")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.bundled:
        rows = bundled(args.repeat)
        out = args.out or str(ROOT / "benchmarks" / "fleet_bundled.csv")
        with open(out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=BUNDLED_COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {out}")
        return
    args.out = args.out or str(ROOT / "benchmarks" / "fleet_scaling.csv")
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
