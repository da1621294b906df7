"""What-if commands as a user runs them: wall and CPU time of whole `python -m planner ...` commands.

Issue 14's targets on config/realistic: `sensitivity` <= 15 s, `quantization` (all four levels) <= 20 s,
`baselines` <= 10 s. Each command runs `--repeat` times in its own process (imports, scenario loading,
candidates, every solve, printing); the table gives the median wall time and the median CPU time of the
child (user + sys: on a shared machine the wall time also holds the time other processes had the cores,
while the CPU time is what the command itself needs). The 1-minute load average before and after the
runs says how busy the machine was.

    python benchmarks/whatif_speed.py                      # config/realistic, 3 runs each
    python benchmarks/whatif_speed.py --repeat 5 --config-dir config/llama70b-chat
    python benchmarks/whatif_speed.py --only sensitivity
    python benchmarks/whatif_speed.py --root /path/to/other/checkout   # the same commands on another version
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {  # name -> (extra arguments, target seconds)
    "sensitivity": ((), 15.0),
    "quantization": (("--levels", "coarse,fine,even,full"), 20.0),
    "baselines": ((), 10.0),
}


def run_once(command: str, config_dir: str, extra: tuple[str, ...], root: Path = ROOT) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, last line of its output); raises if the command fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "planner", command, "--config-dir", config_dir, *extra], cwd=root,
                         capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{command} failed (exit {out.returncode}): {out.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout.strip().splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config-dir", default="config/realistic")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=tuple(COMMANDS), action="append")
    ap.add_argument("--root", type=Path, default=ROOT,
                    help="the checkout whose planner runs (e.g. another worktree, for before/after figures)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = []
    for name in args.only or COMMANDS:
        extra, target = COMMANDS[name]
        runs = [run_once(name, args.config_dir, extra, args.root) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rows.append((name, wall, cpu, target, runs[-1][2]))
    load1 = os.getloadavg()[0]
    print(f"{args.root}: {args.config_dir}, median of {args.repeat} runs; load average {load0:.1f} before, {load1:.1f} after "
          f"({os.cpu_count()} cores)")
    print(f"{'command':<13} {'wall s':>7} {'CPU s':>7} {'target s':>8}  met  first line of output")
    for name, wall, cpu, target, line in rows:
        print(f"{name:<13} {wall:7.2f} {cpu:7.2f} {target:8.0f}  {'yes' if wall <= target else 'NO ':>3}  {line[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
