"""Issue 16's three fleet speed targets, measured as whole commands (a fresh process each, as a user runs them).

- `python -m planner fleet --config-dir config/realistic --demand D`, target <= 2 s at any D;
- the same on `config/xl`, target <= 10 s at any D (1%, 50% and 99% of the pool's capacity here);
- `python -m planner fleet --config-dir config/realistic --curve`, target <= 10 s;
- the same curve for a request mix (the issue's example, `--mix` MIX below): the issue sets no target of its
  own, the curve's 10 s is shown; it runs under `--curve-time-limit 60` (MIX_CURVE_SECONDS) and its status
  says how far it got when that stopped it.

Each command runs --repeat times; the table shows the median wall time, the median CPU time of the process
(user + system: on a shared, loaded machine the wall time also counts the time other processes held the
cores, the CPU time does not), the ratio of the median wall time to the target, and every run's status
(proven optimal or not; for the curve, whether it completed). The capacity that sets the demands is computed
in this process first (not timed).

    python benchmarks/fleet_speed.py                 # 3 repeats (a few minutes)
    python benchmarks/fleet_speed.py --repeat 5 --only realistic
    python benchmarks/fleet_speed.py --no-mix         # without the mix curve (3 x 60 s)

Writes benchmarks/fleet_speed.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRACTIONS = (0.01, 0.5, 0.99)
MIX = "chat:0.7:512:256,docs:0.3:8192:512"
MIX_CURVE_SECONDS = 60
CASES = (("realistic", "demand", 2.0, ()), ("xl", "demand", 10.0, ()), ("realistic", "curve", 10.0, ()),
         ("realistic", "mix curve", 10.0, ("--mix", MIX, "--curve-time-limit", str(MIX_CURVE_SECONDS))))
COLUMNS = ["scenario", "question", "demand_fraction", "demand_tokens_per_s", "target_s", "wall_s_median",
           "cpu_s_median", "ratio_to_target", "wall_s_runs", "cpu_s_runs", "statuses", "cost_usd_per_hour", "repeats"]


def capacity(name: str) -> float:
    from planner import load_config_dir
    from planner.fleet import Fleet

    cap, status, _ = Fleet(load_config_dir(ROOT / "config" / name)).capacity()
    if status != "optimal":
        raise SystemExit(f"{name}: capacity not proven ({status})")
    return cap


def run(args: list[str]) -> tuple[float, float, dict]:
    """One whole command: (wall s, CPU s of the child, its --json output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "planner", "fleet", *args, "--out", out, "--json"], cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"fleet {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=("realistic", "xl"), help="one scenario only")
    ap.add_argument("--no-mix", action="store_true", help="skip the request mix's curve")
    a = ap.parse_args()
    rows = []
    caps: dict[str, float] = {}
    for name, question, target, extra in CASES:
        if (a.only and name != a.only) or (a.no_mix and question == "mix curve"):
            continue
        points = [(f, None) for f in FRACTIONS] if question == "demand" else [(None, None)]
        for fraction, _ in points:
            args = ["--config-dir", f"config/{name}", *extra]
            demand = None
            if fraction is not None:
                if name not in caps:
                    caps[name] = capacity(name)
                demand = round(fraction * caps[name], 1)
                args += ["--demand", str(demand)]
            else:
                args += ["--curve"]
            walls, cpus, statuses, cost = [], [], [], None
            for _ in range(a.repeat):
                wall, cpu, out = run(args)
                walls.append(wall)
                cpus.append(cpu)
                if fraction is not None:
                    statuses.append(out["status"] + ("" if out["proven_optimal"] else " (not proven)"))
                    cost = out["cost_usd_per_hour"]
                else:
                    c = out["curve"]
                    statuses.append("complete" if c["complete"] else "stopped: " + "; ".join(c["stopped"]))
            wall_m = statistics.median(walls)
            rows.append({"scenario": name, "question": question, "demand_fraction": fraction if fraction else "",
                         "demand_tokens_per_s": demand if demand else "", "target_s": target,
                         "wall_s_median": round(wall_m, 2), "cpu_s_median": round(statistics.median(cpus), 2),
                         "ratio_to_target": round(wall_m / target, 2), "wall_s_runs": " ".join(f"{w:.2f}" for w in walls),
                         "cpu_s_runs": " ".join(f"{c:.2f}" for c in cpus), "statuses": "; ".join(sorted(set(statuses))),
                         "cost_usd_per_hour": round(cost, 4) if cost is not None else "", "repeats": a.repeat})
            r = rows[-1]
            print(f"{name:10} {question:9} {str(r['demand_fraction']):>5} target {target:5.1f} s | wall median "
                  f"{r['wall_s_median']:6.2f} s (x{r['ratio_to_target']:.2f} of target) | CPU median {r['cpu_s_median']:6.2f} s "
                  f"| {r['statuses']} | runs {r['wall_s_runs']}", flush=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    path = ROOT / "benchmarks" / ("fleet_speed.csv" if not a.only else f"fleet_speed_{a.only}.csv")
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
