"""What planner.highs_direct.SPEED_OPTIONS change: the exact method and the frontier on the bundled scenarios,
with HiGHS's defaults and with those options, alternating, each run in this process on fresh models.

    python benchmarks/highs_options.py [--rounds 3] [--xl]

Prints per case the median seconds of both and their ratio, the MILP solves, and whether the optimum
($/M tokens) and the frontier (every plan's cost and throughput) are the same.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import Planner, build_candidates, load_config_dir  # noqa: E402
from planner import highs_direct  # noqa: E402

CASES = [("llama70b-chat", None), ("realistic", None), ("realistic", "full"), ("medium", "coarse"),
         ("medium", "fine"), ("medium", "even"), ("medium", "full"), ("large", None), ("small", "full"), ("hal", None)]


def run(sc, cs, with_frontier: bool):
    p = Planner(sc, cs)
    t0 = time.perf_counter()
    r = p.exact(with_frontier=with_frontier)
    seconds = time.perf_counter() - t0
    shape = tuple((round(x.cost_usd_per_hour, 9), round(x.tokens_per_s, 6)) for x in r.frontier)
    return seconds, r.extra["solves"], (round(r.plan.usd_per_million_tokens, 9), shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--xl", action="store_true", help="add the XL scenario's exact method (about 1 s a run)")
    args = ap.parse_args()
    speed = dict(highs_direct.SPEED_OPTIONS)
    cases = CASES + ([("xl", None)] if args.xl else [])
    print(f"{'case':24} {'what':9} {'defaults s':>10} {'options s':>10} {'ratio':>6} {'solves':>9} same")
    for name, q in cases:
        sc = load_config_dir(ROOT / "config" / name)
        if q is not None:
            sc = replace(sc, settings=replace(sc.settings, quantization=q))
        cs = build_candidates(sc)
        for with_frontier in ((False,) if name == "xl" else (False, True)):
            times = {"defaults": [], "options": []}
            out = {}
            for _ in range(args.rounds):
                for label, opts in (("defaults", {}), ("options", speed)):
                    highs_direct.SPEED_OPTIONS = opts
                    s, n, answer = run(sc, cs, with_frontier)
                    times[label].append(s)
                    out[label] = (n, answer)
            highs_direct.SPEED_OPTIONS = speed
            a, b = statistics.median(times["defaults"]), statistics.median(times["options"])
            print(f"{name + ' ' + (q or ''):24} {'frontier' if with_frontier else 'exact':9} {a:10.3f} {b:10.3f} "
                  f"{b / a:6.2f} {out['defaults'][0]:>4}/{out['options'][0]:<4} "
                  f"{'yes' if out['defaults'][1] == out['options'][1] else 'NO'}")


if __name__ == "__main__":
    main()
