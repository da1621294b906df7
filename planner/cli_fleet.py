"""`python -m planner fleet`: the minimum-$/hour set of replicas for a demand, and the demand curve."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .errors import InputError, Problem


def add_subcommands(sub) -> None:
    from .cli_common import add_sizing_args as _sizing

    f = sub.add_parser("fleet", help="cheapest set of replicas serving a demand (tokens/s); --curve for the demand curve")
    _sizing(f)
    f.add_argument("--demand", type=float, help="tokens/s to serve, on the scenario's token basis")
    f.add_argument("--mix", help="request classes name:share:input:output[:ttft_ms[:tpot_ms]], comma-separated "
                                 "(share of requests); default: the scenario's demand.csv if present, else its workload")
    f.add_argument("--max-ttft-ms", type=float, help="latency SLO: time to first token (ms), every replica")
    f.add_argument("--max-tpot-ms", type=float, help="latency SLO: time per output token (ms), every replica")
    f.add_argument("--time-limit", type=float, help="solver time limit in seconds (per MILP)")
    f.add_argument("--curve", action="store_true", help="exact demand curve from 0 to the pool's capacity (curve.csv)")
    f.add_argument("--curve-time-limit", type=float, default=None, metavar="S",
                   help="stop the demand curve after S seconds (default 120); the steps found are exact and the "
                        "output says where each series stopped")
    f.add_argument("--price", action="append", default=[], metavar="GPU=USD",
                   help="what-if: solve again with this $/GPU-hour for a type (spot or a new price; repeatable) "
                        "and print both fleets")
    f.add_argument("--price-sensitivity", metavar="GPU[:LOW:HIGH]",
                   help="what-if: the exact fleet $/hour against GPU's price from LOW to HIGH x its list price "
                        "(default 0.25:2), with the break-even prices (prices.csv)")
    f.add_argument("--out", default="out", help="output folder (default ./out)")
    f.add_argument("--json", action="store_true", help="print the summary as JSON")


def _mix(args, sc):
    from .fleet import parse_mix, read_demand_csv

    if args.mix:
        return parse_mix(args.mix)
    path = Path(args.config_dir) / "demand.csv"
    return read_demand_csv(path) if path.is_file() else None


def cmd_fleet(args) -> int:
    from .cli_common import scenario_from_args as _scenario
    from .fleet import Fleet
    from .fleet_curve import CURVE_SECONDS, curve_rows, demand_curve
    from .fleet_report import CURVE_COLUMNS, fleet_summary, write_fleet
    from .fleet_whatif import price_sensitivity, spot
    from .report import to_csv

    if not args.curve and args.demand is None:
        raise InputError(Problem("give --demand (tokens/s) or --curve", "command line", column="--demand"))
    if args.demand is not None and not (args.demand >= 0):
        raise InputError(Problem(f"must be a non-negative number of tokens/s, got {args.demand}", "command line",
                                 column="--demand"))
    sc = _scenario(args)
    for w in sc.warnings:
        print(f"note: {w}", file=sys.stderr)
    prices = _prices(args.price, sc)
    sens = _sensitivity(args.price_sensitivity, sc)
    if (prices or sens) and args.demand is None:
        raise InputError(Problem("the price what-ifs need --demand", "command line", column="--demand"))
    mix = _mix(args, sc)
    fleet = Fleet(sc, mix)
    out = Path(args.out)
    result: dict = {}
    if args.curve:
        curve = demand_curve(fleet, args.time_limit, max_seconds=args.curve_time_limit or CURVE_SECONDS)
        out.mkdir(parents=True, exist_ok=True)
        rows = curve_rows(curve)
        (out / "curve.csv").write_text(to_csv(rows, CURVE_COLUMNS))
        result["curve"] = {"capacity_tokens_per_s": curve.capacity_tokens_per_s, "how": curve.how,
                           "seconds": curve.seconds, "solves": curve.solves, "complete": not curve.stopped,
                           "stopped": list(curve.stopped), "steps": rows}
    if args.demand is not None:
        plan = fleet.solve(args.demand, args.time_limit)
        from .fleet import class_scenario

        scenarios = {c.name: class_scenario(sc, c) for c in mix} if mix else {"": sc}
        result.update(write_fleet(plan, out, sc.name, scenarios))
        if prices:
            _, cheap = spot(fleet, args.demand, prices, args.time_limit)
            result["what_if_prices"] = {"prices_usd_per_gpu_hour": prices, **fleet_summary(cheap, sc.name)}
        if sens:
            g, lo, hi = sens
            p0 = sc.pool.entry(g).spec.price_usd_per_hour
            res = price_sensitivity(fleet, args.demand, g, lo * p0, hi * p0, args.time_limit)
            rows = [{"gpu_type": g, "price_usd_per_gpu_hour": pt.price, "fleet_cost_usd_per_hour": pt.cost_usd_per_hour,
                     "gpus_of_type": pt.type_gpus, "proven_optimal": pt.plan.proven_optimal} for pt in res.points]
            (out / "prices.csv").write_text(to_csv(rows, PRICE_COLUMNS))
            result["price_sensitivity"] = {"gpu_type": g, "list_price": p0, "break_even_prices": list(res.break_even),
                                           "proven": res.proven, "solves": res.solves, "points": rows}
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
        if s.get("tokens_per_s_low") is not None:
            short = "" if s["meets_demand_at_low_end"] else " (at the low end the fleet falls short of the demand)"
            print(f"  likely range (the profile's errors on the closest measured data): {s['tokens_per_s_low']:,.0f}-"
                  f"{s['tokens_per_s_high']:,.0f} tokens/s{short}")
        for x in s.get("extrapolations", []):
            print(f"  extrapolation: {x}")
        print(f"  wrote {out / 'fleet.csv'}, {out / 'gpus.csv'}")
    if "what_if_prices" in result:
        w = result["what_if_prices"]
        at = ", ".join(f"{g} ${p:g}" for g, p in w["prices_usd_per_gpu_hour"].items())
        proven = "proven optimal" if w["proven_optimal"] else f"NOT proven optimal (status {w['status']})"
        print(f"  at {at}/GPU-hour: ${w['cost_usd_per_hour']:.2f}/h ({proven}), {w['num_replicas']} replicas, "
              f"GPUs {w['gpus_by_type']} (list prices: ${result['cost_usd_per_hour']:.2f}/h, {result['gpus_by_type']})")
    if "price_sensitivity" in result:
        ps = result["price_sensitivity"]
        be = ", ".join(f"${p:.4f}" for p in ps["break_even_prices"]) or "none in the range"
        print(f"  {ps['gpu_type']} price sensitivity ({ps['solves']} solves, {'proven' if ps['proven'] else 'NOT proven'}): "
              f"the optimal fleet changes at {be}/GPU-hour; wrote {out / 'prices.csv'}")
    return 0


PRICE_COLUMNS = ("gpu_type", "price_usd_per_gpu_hour", "fleet_cost_usd_per_hour", "gpus_of_type", "proven_optimal")


def _prices(items: list[str], sc) -> dict[str, float]:
    out = {}
    for item in items:
        g, sep, val = item.partition("=")
        try:
            price = float(val)
        except ValueError:
            price = math.nan
        if not sep or not (price >= 0 and math.isfinite(price)):
            raise InputError(Problem(f"expected GPU=USD with a non-negative price, got '{item}'", "command line",
                                     column="--price"))
        if g not in sc.pool.types:
            raise InputError(Problem(f"unknown GPU type '{g}' (pool: {', '.join(sc.pool.types)})", "command line",
                                     column="--price"))
        out[g] = price
    return out


def _sensitivity(text: str | None, sc) -> tuple[str, float, float] | None:
    if text is None:
        return None
    parts = text.split(":")
    g = parts[0]
    try:
        lo, hi = (float(parts[1]), float(parts[2])) if len(parts) == 3 else (0.25, 2.0)
    except ValueError:
        lo = hi = math.nan
    if len(parts) not in (1, 3) or not (0 <= lo < hi and math.isfinite(hi)):
        raise InputError(Problem(f"expected GPU[:LOW:HIGH] with 0 <= LOW < HIGH (multiples of the list price), "
                                 f"got '{text}'", "command line", column="--price-sensitivity"))
    if g not in sc.pool.types:
        raise InputError(Problem(f"unknown GPU type '{g}' (pool: {', '.join(sc.pool.types)})", "command line",
                                 column="--price-sensitivity"))
    return g, lo, hi


FLEET_COMMANDS = {"fleet": cmd_fleet}
