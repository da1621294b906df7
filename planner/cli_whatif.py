"""What-if subcommands: `pareto`, `baselines`, `sensitivity`, `quantization`, `spot`.

Registered in `planner.cli` (`add_subcommands(sub)`; `main` dispatches to `WHATIF_COMMANDS`), so they run
as `python -m planner pareto ...` with the usual exit statuses (0 ok, 2 bad input, 3 infeasible, 4 solver
failure). `--json` prints one JSON document; without it, a readable table.
"""
from __future__ import annotations

import argparse
import logging
import sys

from .candidates import QUANTIZATION_LEVELS
from .cli_common import add_engines_flag
from .cli_common import add_allow_large, add_sizing_args, check_flag_number, emit, print_table, scenario_from_args
from .domain import MIN_PRICE_USD_PER_GPU_HOUR, USE_CASE_KEYS
from .errors import InputError

log = logging.getLogger("planner")


# ------------------------------------------------------------------ argument types
def _pairs(kind):
    def parse(text: str) -> dict:
        out = {}
        for item in (x.strip() for x in text.split(",")):
            if not item:
                continue
            name, sep, value = item.rpartition("=")
            try:
                if not sep or not name:
                    raise ValueError
                out[name.strip()] = kind(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected TYPE=VALUE[,TYPE=VALUE...], got '{item}'") from None
        return out
    return parse


def _range(text: str) -> tuple[float, float, int]:
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        return float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else 11
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI[:N] ($/GPU-hour, N points), got '{text}'") from None


def _levels(text: str) -> tuple[str, ...]:
    levels = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in levels if x not in QUANTIZATION_LEVELS]
    if bad or not levels:
        raise argparse.ArgumentTypeError(f"levels must be among {', '.join(QUANTIZATION_LEVELS)}, got '{text}'")
    return levels


def add_subcommands(sub) -> None:
    """Add the what-if subcommands to `planner.cli`'s subparsers."""
    p = sub.add_parser("pareto", help="exact cost/throughput Pareto frontier, min-$/token point and the budget grid")
    add_sizing_args(p)
    p.add_argument("--no-grid", action="store_true", help="skip the enumeration's budget grid")
    _common(p)

    b = sub.add_parser("baselines", help="best plan on each GPU type alone beside the mixed optimum")
    add_sizing_args(b)
    _common(b)

    s = sub.add_parser("sensitivity", help="tornado of $/token under price moves, break-even prices, price sweep")
    add_sizing_args(s)
    s.add_argument("--percent", type=float, default=20.0, help="price move for the tornado, in percent (default 20)")
    s.add_argument("--no-break-even", action="store_true", help="skip the break-even prices")
    s.add_argument("--sweep", metavar="TYPE", help="sweep this GPU type's price")
    s.add_argument("--range", type=_range, metavar="LO:HI[:N]",
                   help="sweep range in $/GPU-hour and points (default 50%%-150%% of the price, 11 points)")
    _common(s)

    q = sub.add_parser("quantization", help="coarse / fine / even / full segment sizes side by side")
    q.add_argument("--config-dir", required=True, help="scenario folder (config.csv, gpu_pool.csv, ...)")
    q.add_argument("--levels", type=_levels, default=QUANTIZATION_LEVELS, help="comma-separated levels to compare")
    q.add_argument("--max-options", type=int,
                   help="skip a level with more stage options than this (default 50000, "
                        "whatif.QUANTIZATION_MAX_OPTIONS; 0 = no cap)")
    q.add_argument("--max-stages", type=int, help="max pipeline stages")
    q.add_argument("--concurrency", help="sequences in flight, or 'auto'")
    q.add_argument("--token-basis", choices=("total", "output"), help="what a token is in $/token")
    q.add_argument("--engine", help="engine profile from config/engines.csv")
    add_engines_flag(q)
    _common(q)

    o = sub.add_parser("spot", help="on-demand plan against spot prices (with preemption overhead) and caps")
    add_sizing_args(o)
    o.add_argument("--spot", type=_pairs(float), required=True, metavar="TYPE=$/h,...", help="spot prices per type")
    o.add_argument("--overhead", type=float, default=0.0,
                   help="fraction of paid spot time lost to preemptions, 0..1 (effective price = spot / (1 - overhead))")
    o.add_argument("--cap", type=_pairs(int), metavar="TYPE=N,...", help="availability caps (count = min(count, N))")
    _common(o)


def _common(p) -> None:
    p.add_argument("--time-limit", type=float, help="solver time limit per solve, in seconds")
    p.add_argument("--use-case", choices=USE_CASE_KEYS,
                   help="chat: the interactive latency limits of config/use_cases.csv; batch: none; custom: the file's")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON document")
    if p.prog.split()[-1] != "quantization":  # it has its own per-level cap, --max-options
        add_allow_large(p)


def _load(args):
    for flag in ("time_limit", "percent", "overhead"):  # denormal or absurdly small numbers are out of range
        if isinstance(getattr(args, flag, None), float):
            check_flag_number(getattr(args, flag), "--" + flag.replace("_", "-"))
    for name, price in (getattr(args, "spot", None) or {}).items():
        check_flag_number(price, f"--spot {name}", MIN_PRICE_USD_PER_GPU_HOUR, "$ per GPU-hour")
    for price in (getattr(args, "range", None) or ())[:2]:
        check_flag_number(price, "--range", MIN_PRICE_USD_PER_GPU_HOUR, "$ per GPU-hour")
    sc = scenario_from_args(args)
    for w in sc.warnings:
        print(f"note: {w}", file=sys.stderr)
    if args.command != "quantization" and not args.allow_large:
        from .candidates import check_problem_size
        from .whatif import candidates_for

        check_problem_size(candidates_for(sc))  # the problem-size guard, before any MILP; the build is reused
    return sc


# ------------------------------------------------------------------ handlers
def cmd_pareto(args) -> int:
    from .whatif import frontier_rows, grid_rows, pareto

    sc = _load(args)
    fr = pareto(sc, with_grid=not args.no_grid)
    doc = {"scenario": sc.name, "token_basis": fr.token_basis, "points": frontier_rows(fr), "grid": grid_rows(fr),
           "min_usd_per_million_tokens": fr.best.usd_per_million_tokens, "seconds": fr.seconds,
           "proven_optimal": fr.proven_optimal, "gap": fr.gap,
           "not_proven": [] if fr.proven_optimal else [{"what": "the frontier sweep (min $/token point)",
                                                        "gap": fr.gap, "limits": list(fr.limits)}]}

    def show(d):
        what = ("Pareto-optimal plans (exact)" if d["proven_optimal"] else
                "plans found (NOT proven: the frontier may miss plans, see below)")
        print(f"{d['scenario']}: {len(d['points'])} {what}; * = min $/token, "
              f"grid = enumeration budgets landing on the point")
        rows = [{**r, "mark": "*" if r["min_usd_per_token"] else "",
                 "grid": ", ".join(f"{b:.4g}" for b in r["grid_budgets_usd_per_hour"])} for r in d["points"]]
        print_table(rows, [("mark", ""), ("cost_usd_per_hour", "$/h"), ("tokens_per_s", "tokens/s"),
                      ("usd_per_million_tokens", f"$/M {d['token_basis']} tokens"), ("stages", "stages"),
                      ("gpus", "GPUs"), ("layout", "layout"), ("grid", "grid $/h")])
        off = [g for g in d["grid"] if g["frontier_index"] is None and g["cost_usd_per_hour"] is not None]
        if off:
            print(f"  {len(off)} grid point(s) off the frontier (solved to the configured MIP gap): "
                  + ", ".join(f"${g['budget_usd_per_hour']:.4g}/h" for g in off))
    return emit(args, doc, show)


def cmd_baselines(args) -> int:
    from .whatif import baseline_rows, baselines, proof

    sc = _load(args)
    b = baselines(sc)
    rows = baseline_rows(b)
    doc = {"scenario": sc.name, "token_basis": sc.workload.token_basis, "mixed": rows[0],
           "baselines": {r["gpu_type"]: r for r in rows[1:]}, "best_single": b.best_single,
           "savings_pct": b.savings_pct, "verdict": b.verdict,
           **proof([("mixed pool", b.mixed.headline)] + [(f"{x.gpu_type} alone", x.headline) for x in b.singles])}

    def show(d):
        print(f"{d['scenario']}: {d['verdict']}")
        print_table([d["mixed"], *d["baselines"].values()],
               [("gpu_type", "pool"), ("count", "count"), ("usd_per_million_tokens", "$/M tokens"),
                ("tokens_per_s", "tokens/s"), ("cost_usd_per_hour", "$/h"), ("vs_mixed_pct", "vs mixed %"),
                ("layout", "layout")])
        for r in d["baselines"].values():
            if not r["feasible"]:
                print(f"  {r['gpu_type']} alone: {r['reason']}")
    return emit(args, doc, show)


def cmd_sensitivity(args) -> int:
    from .whatif import planner_for, proof
    from .whatif_prices import (break_even_rows, break_evens, change_rows, price_sweep, sweep_rows, tornado,
                                tornado_rows)

    sc = _load(args)
    if args.sweep is not None and args.sweep not in sc.pool.types:
        raise InputError(f"--sweep: unknown GPU type '{args.sweep}' (the pool has {', '.join(sc.pool.types)})")
    if args.range is not None and args.sweep is None:
        raise InputError("--range needs --sweep TYPE")
    base = planner_for(sc).exact()
    t = tornado(sc, args.percent, base)
    doc = {"scenario": sc.name, "token_basis": sc.workload.token_basis, "percent": args.percent,
           "base_usd_per_million_tokens": t.base.usd_per_million_tokens, "rows": tornado_rows(t)}
    solved = [("base optimum", t.base)]
    for r in t.rows:
        solved += [(f"{r.gpu_type} at ${r.low_price_usd_per_hour:.4g}/h", r.low),
                   (f"{r.gpu_type} at ${r.high_price_usd_per_hour:.4g}/h", r.high)]
    extra = []
    if not args.no_break_even:
        bes = break_evens(sc, base)
        doc["break_even"] = break_even_rows(bes)
        extra += [{"what": f"break-even of {b.gpu_type}", "gap": None, "limits": ["a re-solve stopped at a limit"]}
                  for b in bes if not b.exact]
    if args.sweep:
        price = sc.pool.entry(args.sweep).spec.price_usd_per_hour
        lo, hi, n = args.range or (0.5 * price, 1.5 * price, 11)
        s = price_sweep(sc, args.sweep, lo, hi, n)
        doc["sweep"] = {"gpu_type": s.gpu_type, "exact_changes": s.exact_changes and not s.not_proven,
                        "solves": s.solves, "points": sweep_rows(s), "changes": change_rows(s)}
        solved += [(f"sweep: {s.gpu_type} at ${p.price_usd_per_hour:.4g}/h", p.headline) for p in s.points]
        extra += [{"what": f"sweep of {s.gpu_type}", "gap": None, "limits": [x]} for x in s.not_proven]
    doc.update(proof(solved))
    if extra:
        doc["proven_optimal"] = False
        doc["not_proven"] += extra

    def show(d):
        print(f"{d['scenario']}: optimum ${d['base_usd_per_million_tokens']:.4g}/M {d['token_basis']} tokens; "
              f"each type's price moved by -/+{d['percent']:g}% (widest swing first)")
        rows = [{**r, "changed": ("low " if r["low_plan_changed"] else "") + ("high" if r["high_plan_changed"] else "")}
                for r in d["rows"]]
        print_table(rows, [("gpu_type", "type"), ("price_usd_per_hour", "$/h"), ("low_usd_per_million_tokens", "$/M low"),
                      ("high_usd_per_million_tokens", "$/M high"), ("swing_usd_per_million_tokens", "swing"),
                      ("changed", "plan changes")])
        if "break_even" in d:
            print("break-even prices:")
            for r in d["break_even"]:
                print(f"  {r['meaning']}" + ("" if r["exact"] else " [not exact]"))
        if "sweep" in d:
            sw = d["sweep"]
            print(f"sweep of {sw['gpu_type']}'s price ({'exact' if sw['exact_changes'] else 'bracketed'} change "
                  f"points, {sw['solves']} solves); * = plan changed")
            rows = [{**r, "mark": "*" if r["plan_changed"] else ""} for r in sw["points"]]
            print_table(rows, [("mark", ""), ("price_usd_per_hour", "$/h"), ("usd_per_million_tokens", "$/M tokens"),
                          ("gpus_of_type", f"{sw['gpu_type']} GPUs"), ("layout", "layout")])
            for c in sw["changes"]:
                print(f"  {c['from_layout']}  ->  {c['to_layout']}: {c['how']}")
    return emit(args, doc, show)


def cmd_quantization(args) -> int:
    from .whatif import QUANTIZATION_MAX_OPTIONS, proof, quantization_loss, quantization_rows

    if args.max_options is not None and args.max_options < 0:
        raise InputError(f"--max-options: must be >= 0, got {args.max_options}")
    sc = _load(args)
    cap = QUANTIZATION_MAX_OPTIONS if args.max_options is None else args.max_options or None
    q = quantization_loss(sc, args.levels, cap)
    doc = {"scenario": sc.name, "token_basis": sc.workload.token_basis, "reference": q.reference,
           "summary": q.summary, "rows": quantization_rows(q),
           **proof([(f"{r.level} sizes", r.headline) for r in q.rows])}

    def show(d):
        print(f"{d['scenario']}: {d['summary']}")
        rows = [{**r, "sizes": len(r["sizes"])} for r in d["rows"]]
        print_table(rows, [("level", "level"), ("sizes", "sizes"), ("options", "options"), ("status", "status"),
                      ("usd_per_million_tokens", "$/M tokens"), ("tokens_per_s", "tokens/s"),
                      ("milp_integers", "integers"), ("seconds", "seconds"), ("loss_pct", "loss %"),
                      ("note", "note")])
    return emit(args, doc, show)


def cmd_spot(args) -> int:
    from .whatif import spot_comparison

    sc = _load(args)
    s = spot_comparison(sc, args.spot, args.overhead, args.cap)
    c = s.comparison
    doc = {"scenario": sc.name, "overhead": args.overhead,
           "prices": [{"gpu_type": g, "on_demand_usd_per_hour": a, "effective_spot_usd_per_hour": b}
                      for g, a, b in s.prices],
           "differences": [{"section": d.section, "item": d.item, "on_demand": d.a, "spot": d.b}
                           for d in c.differences],
           "figures": [{"figure": r["figure"], "on_demand": r["a"], "spot": r["b"], "change_pct": r["change_pct"]}
                       for r in c.figure_rows()],
           "savings_pct": s.savings_pct, **c.proof()}

    def show(d):
        s = d["savings_pct"]
        verdict = ("one of the two has no feasible plan" if s is None else f"saves {s:.1f}% per token" if s > 0
                   else f"costs {-s:.1f}% more per token" if s < 0 else "does not change the cost per token")
        print(f"{d['scenario']}: the spot what-if {verdict} (effective price = spot / (1 - {d['overhead']:g}))")
        for r in d["prices"]:
            print(f"  {r['gpu_type']}: on demand ${r['on_demand_usd_per_hour']:.4g}/h, spot effective "
                  f"${r['effective_spot_usd_per_hour']:.4g}/h")
        print_table(d["figures"], [("figure", ""), ("on_demand", "on demand"), ("spot", "spot"),
                              ("change_pct", "change %")])
    return emit(args, doc, show)


WHATIF_COMMANDS = {"pareto": cmd_pareto, "baselines": cmd_baselines, "sensitivity": cmd_sensitivity,
                   "quantization": cmd_quantization, "spot": cmd_spot}

