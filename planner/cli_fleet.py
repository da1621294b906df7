"""`python -m planner fleet`: the minimum-$/hour set of replicas for a demand, and the demand curve."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import InputError, Problem


def add_subcommands(sub) -> None:
    from .cli import _sizing

    f = sub.add_parser("fleet", help="cheapest set of replicas serving a demand (tokens/s); --curve for the demand curve")
    _sizing(f)
    f.add_argument("--demand", type=float, help="tokens/s to serve, on the scenario's token basis")
    f.add_argument("--mix", help="request classes name:share:input:output[:ttft_ms[:tpot_ms]], comma-separated "
                                 "(share of requests); default: the scenario's demand.csv if present, else its workload")
    f.add_argument("--max-ttft-ms", type=float, help="latency SLO: time to first token (ms), every replica")
    f.add_argument("--max-tpot-ms", type=float, help="latency SLO: time per output token (ms), every replica")
    f.add_argument("--time-limit", type=float, help="solver time limit in seconds (per MILP)")
    f.add_argument("--curve", action="store_true", help="exact demand curve from 0 to the pool's capacity (curve.csv)")
    f.add_argument("--allow-large", action="store_true",
                   help="build the replica list even past its size guard (many stages: minutes or more)")
    f.add_argument("--out", default="out", help="output folder (default ./out)")
    f.add_argument("--json", action="store_true", help="print the summary as JSON")


def _mix(args, sc):
    from .fleet import parse_mix, read_demand_csv

    if args.mix:
        return parse_mix(args.mix)
    path = Path(args.config_dir) / "demand.csv"
    return read_demand_csv(path) if path.is_file() else None


def cmd_fleet(args) -> int:
    from .cli import _scenario
    from .fleet import Fleet
    from .fleet_curve import demand_curve, curve_rows
    from .fleet_report import CURVE_COLUMNS, write_fleet
    from .report import to_csv

    if not args.curve and args.demand is None:
        raise InputError(Problem("give --demand (tokens/s) or --curve", "command line", column="--demand"))
    if args.demand is not None and not (args.demand >= 0):
        raise InputError(Problem(f"must be a non-negative number of tokens/s, got {args.demand}", "command line",
                                 column="--demand"))
    sc = _scenario(args)
    for w in sc.warnings:
        print(f"note: {w}", file=sys.stderr)
    fleet = Fleet(sc, _mix(args, sc), allow_large=args.allow_large)
    out = Path(args.out)
    result: dict = {}
    if args.curve:
        curve = demand_curve(fleet, args.time_limit)
        out.mkdir(parents=True, exist_ok=True)
        rows = curve_rows(curve)
        (out / "curve.csv").write_text(to_csv(rows, CURVE_COLUMNS))
        result["curve"] = {"capacity_tokens_per_s": curve.capacity_tokens_per_s, "how": curve.how,
                           "seconds": curve.seconds, "solves": curve.solves, "steps": rows}
    if args.demand is not None:
        plan = fleet.solve(args.demand, args.time_limit)
        result.update(write_fleet(plan, out, sc.name))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    if "curve" in result:
        c = result["curve"]
        print(f"{sc.name}: demand curve to {c['capacity_tokens_per_s']:.1f} tokens/s, {len(c['steps'])} steps "
              f"in {c['seconds']:.2f} s ({c['how']}); wrote {out / 'curve.csv'}")
    if args.demand is not None:
        s = result
        proven = "proven optimal" if s["proven_optimal"] else "NOT proven optimal"
        print(f"{sc.name}: fleet for {s['demand_tokens_per_s']:.1f} tokens/s: status {s['status']} ({proven}), "
              f"gap {s['gap']:.3g}, {s['solve_seconds']:.2f} s")
        print(f"  {s['how']}")
        print(f"  {s['num_replicas']} replicas | {s['tokens_per_s']:.1f} tokens/s | ${s['cost_usd_per_hour']:.2f}/h | "
              f"${s['usd_per_million_tokens']:.4f} per million tokens")
        for r in s["replicas"]:
            layout = " -> ".join(f"{st['gpu_type']} TP{st['tp']} [{st['first_layer']}-{st['last_layer']}]"
                                 for st in r["stages"])
            cls = f" ({r['request_class']})" if r["request_class"] else ""
            print(f"  {r['count']} x{cls} {layout} | {r['tokens_per_s']:.1f} tok/s, ${r['cost_usd_per_hour']:.2f}/h, "
                  f"{r['concurrency']} in flight, TTFT {r['ttft_ms']:.0f} ms, TPOT {r['tpot_ms']:.1f} ms")
        print(f"  wrote {out / 'fleet.csv'}, {out / 'gpus.csv'}")
    return 0


FLEET_COMMANDS = {"fleet": cmd_fleet}
