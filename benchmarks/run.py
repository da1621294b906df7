"""Solve-time benchmark: problem size, Pyomo build time, HiGHS time, total wall time (median of --repeat
runs, whole method from scenario to plan) and the $/million tokens found, per scenario and method; then
the seed-style formulation beside ours on the same question (see benchmarks/seed_formulation.py).

    python benchmarks/run.py                        # everything (several minutes on 2 cores)
    python benchmarks/run.py --quick                # small cases, one run each, short timeouts
    python benchmarks/run.py --cases medium-coarse,hal --methods exact --repeat 5 --no-seed

Writes benchmarks/results.csv (ours) and benchmarks/seed_vs_ours.csv (side by side). Each measurement
runs in its own process: a timeout or a memory limit is reported in the status column, never a hang.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import ours_budget, ours_method, run_isolated, seed_budget, summarise  # noqa: E402

CASES = {  # name -> scenario spec (bundled config folder, segment-size override)
    "medium-coarse": {"folder": "medium", "quantization": "coarse"},
    "medium-full": {"folder": "medium", "quantization": "full"},
    "hal": {"folder": "hal"},
    "realistic": {"folder": "realistic"},
    "xl-full": {"folder": "xl", "quantization": "full"},
}
SEED_CASES = {
    "tiny": {"folder": "tiny"},
    "small": {"folder": "small"},
    "small-full": {"folder": "small", "quantization": "full"},
    "medium-coarse": {"folder": "medium", "quantization": "coarse"},
}
METHODS = ("exact", "enumeration", "weighted")
QUICK = {"cases": "medium-coarse,hal,realistic", "seed_cases": "tiny,small", "repeat": 1, "timeout": 60.0,
         "seed_timeout": 60.0, "seed_budget_factors": "1"}
SEED_PUBLISHED = "seed (Gurobi, published, never logged): 30-90 s per solve, 4-12 min per enumeration"

RESULT_COLUMNS = ["case", "method", "options", "binaries", "rows", "build_s", "highs_s", "total_s", "runs",
                  "solves", "usd_per_million_tokens", "tokens_per_s", "usd_per_hour", "proven_optimal", "status"]
SEED_COLUMNS = ["case", "budget_factor", "formulation", "budget_usd_per_hour", "size", "pairs", "binaries", "rows", "build_s",
                "highs_s", "total_s", "runs", "tokens_per_s", "usd_per_hour", "usd_per_million_tokens", "status",
                "speedup", "agree"]


def pick(names: str, known: dict | tuple, what: str) -> list[str]:
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(known)})")
    return chosen


def fmt(value, spec: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        width = "".join(c for c in spec.split(".")[0] if c.isdigit())  # "8.2f" -> 8, "9," -> 9
        return "-".rjust(int(width or 0))
    return format(value, spec)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def machine() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("pyomo", "highspy"))
    return (f"{datetime.date.today()}, {os.cpu_count()} cores ({platform.machine()}), load {os.getloadavg()[0]:.1f}, "
            f"Python {platform.python_version()}, {versions}")


def run_ours(cases, methods, repeat, timeout) -> list[dict]:
    print(f"\nOurs: whole method from scenario to plan, median of up to {repeat} run(s), timeout {timeout:g} s per run")
    print(f"{'case':14s} {'method':11s} {'options':>7s} {'binaries':>8s} {'rows':>6s} {'build s':>8s} {'HiGHS s':>8s} "
          f"{'total s':>8s} {'runs':>4s} {'$/M tok':>9s} proven  status")
    rows = []
    for name in cases:
        for method in methods:
            runs, status = run_isolated(ours_method, (CASES[name], method, repeat), timeout)
            row = {"case": name, "method": method, **summarise(runs, status)}
            rows.append(row)
            print(f"{name:14s} {method:11s} {fmt(row.get('options'), '7d')} {fmt(row.get('binaries'), '8d')} "
                  f"{fmt(row.get('rows'), '6d')} {fmt(row.get('build_s'), '8.2f')} {fmt(row.get('highs_s'), '8.2f')} "
                  f"{fmt(row.get('total_s'), '8.2f')} {row['runs']:4d} {fmt(row.get('usd_per_million_tokens'), '9.4f')} "
                  f"{str(row.get('proven_optimal', '-')):6s}  {row.get('status')}", flush=True)
    return rows


def run_seed(cases, factors, repeat, timeout, seed_timeout, memory_gb, max_pairs) -> list[dict]:
    print(f"\nSeed-style formulation vs ours, same question: max throughput at budget B (ties toward lower cost),"
          f"\nB = factor x cost of the minimum-$/token plan. Seed: HiGHS time limit and timeout {seed_timeout:g} s, "
          f"memory limit {memory_gb:g} GB, at most {max_pairs:,} pair binaries.")
    print(f"{'case':14s} {'B x':>4s} {'model':5s} {'segments':>8s} {'pairs':>9s} {'binaries':>9s} {'rows':>9s} {'build s':>8s} "
          f"{'HiGHS s':>8s} {'total s':>8s} {'tokens/s':>10s} {'$/h':>7s} {'$/M tok':>8s} {'speed-up':>9s}  status")
    rows = []
    for name, factor in [(n, f) for n in cases for f in factors]:
        spec = SEED_CASES[name]
        runs, status = run_isolated(ours_budget, (spec, factor, repeat), timeout)
        ours = {"case": name, "budget_factor": factor, "formulation": "ours", **summarise(runs, status)}
        budget = ours.get("budget_usd_per_hour")
        if budget is None:
            seed = {"case": name, "budget_factor": factor, "formulation": "seed", "status": "not run (ours failed)",
                    "runs": 0}
        else:
            runs, status = run_isolated(seed_budget, (spec, budget, repeat, seed_timeout, max_pairs),
                                        seed_timeout + 60, memory_gb)
            seed = {"case": name, "budget_factor": factor, "formulation": "seed", **summarise(runs, status)}
        if seed.get("total_s") and ours.get("total_s"):
            seed["speedup"] = seed["total_s"] / ours["total_s"]
            exact = seed.get("status") == "optimal"
            seed["agree"] = exact and all(math.isclose(seed[k], ours[k], rel_tol=1e-6)
                                          for k in ("tokens_per_s", "usd_per_hour"))
        elif ours.get("total_s") and seed.get("status", "").startswith("timeout"):
            seed["speedup"] = f">{seed_timeout / ours['total_s']:.0f}"  # it ran longer than seed_timeout
        for row in (ours, seed):
            speed = row.get("speedup", "")
            speed = f"{speed:9.0f}x" if isinstance(speed, float) else f"{speed:>9s}"
            print(f"{name:14s} {factor:4g} {row['formulation']:5s} {fmt(row.get('size'), '8d')} {fmt(row.get('pairs'), '9,')} "
                  f"{fmt(row.get('binaries'), '9,')} {fmt(row.get('rows'), '9,')} {fmt(row.get('build_s'), '8.2f')} "
                  f"{fmt(row.get('highs_s'), '8.2f')} {fmt(row.get('total_s'), '8.2f')} "
                  f"{fmt(row.get('tokens_per_s'), '10.1f')} {fmt(row.get('usd_per_hour'), '7.2f')} "
                  f"{fmt(row.get('usd_per_million_tokens'), '8.4f')} {speed}  {row.get('status')}", flush=True)
            rows.append(row)
    return rows


def markdown(results: list[dict], seed_rows: list[dict]) -> str:
    """The README's performance table."""
    out = ["| case | method | options | binaries | total s (median) | $/M tokens | proven |", "|---|---|---|---|---|---|---|"]
    for r in results:
        total = fmt(r.get("total_s"), ".2f") if r.get("status") in ("optimal", "time_limit") else r.get("status")
        out.append(f"| {r['case']} | {r['method']} | {fmt(r.get('options'), ',')} | {fmt(r.get('binaries'), ',')} | "
                   f"{total} | {fmt(r.get('usd_per_million_tokens'), '.4f')} | "
                   f"{'yes' if r.get('proven_optimal') else 'no'} |")
    if seed_rows:
        out += ["", "| case | budget | formulation | binaries | rows | total s | $/M tokens | speed-up |",
                "|---|---|---|---|---|---|---|---|"]
        for r in seed_rows:
            total = fmt(r.get("total_s"), ".2f") if r.get("total_s") else r.get("status")
            speed = r.get("speedup", "")
            speed = f"{speed:.0f}x" if isinstance(speed, float) else (f"{speed}x" if speed else "")
            out.append(f"| {r['case']} | {r['budget_factor']:g} x | {r['formulation']} | "
                       f"{fmt(r.get('binaries'), ',')} | {fmt(r.get('rows'), ',')} | "
                       f"{total} | {fmt(r.get('usd_per_million_tokens'), '.4f')} | {speed} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SEED_PUBLISHED)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--repeat", "--repeats", type=int, default=3, help="timed runs per case and method (median)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run before it is killed and reported")
    p.add_argument("--quick", action="store_true", help="small cases, one run, 60 s timeouts (a smoke run)")
    p.add_argument("--seed-cases", default="tiny,small,small-full,medium-coarse",
                   help=f"comma list of {', '.join(SEED_CASES)}")
    p.add_argument("--seed-budget-factors", default="1,2.5",
                   help="budgets as multiples of the cost of the minimum-$/token plan")
    p.add_argument("--no-seed", action="store_true", help="skip the seed-style formulation")
    p.add_argument("--seed-timeout", type=float, default=600.0)
    p.add_argument("--seed-memory-gb", type=float, default=8.0, help="address-space limit of a seed-formulation run")
    p.add_argument("--seed-max-pairs", type=int, default=700_000,
                   help="do not build the seed formulation above this many pair binaries (reported as not built; "
                        "Pyomo needed about 8.5 KB per pair on small-full)")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks"))
    args = p.parse_args()
    if args.quick:
        defaults = {a.dest: a.default for a in p._actions}
        for key, value in QUICK.items():
            if getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    cases, methods = pick(args.cases, CASES, "case"), pick(args.methods, METHODS, "method")
    seed_cases = [] if args.no_seed else pick(args.seed_cases, SEED_CASES, "seed case")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {machine()}")
    results = run_ours(cases, methods, args.repeat, args.timeout) if cases and methods else []
    if results:
        write_csv(out / "results.csv", RESULT_COLUMNS, results)
    factors = [float(f) for f in args.seed_budget_factors.split(",") if f.strip()]
    seed_rows = run_seed(seed_cases, factors, args.repeat, args.timeout, args.seed_timeout, args.seed_memory_gb,
                         args.seed_max_pairs) if seed_cases else []
    if seed_rows:
        write_csv(out / "seed_vs_ours.csv", SEED_COLUMNS, seed_rows)
    print(f"\n{SEED_PUBLISHED}\n\nREADME table ({machine()}):\n")
    print(markdown(results, seed_rows))


if __name__ == "__main__":
    main()
