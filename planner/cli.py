"""Command line: `python -m planner solve|candidates|evaluate|validate ...`.

Bad input exits with status 2 and one line per problem naming the file, row and column; an
infeasible scenario exits with status 3 and names the binding limits; no tracebacks.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from .candidates import build_candidates
from .cli_calibrate import calibration_points
from .cli_common import add_engines_flag, catalog_for
from .cli_common import (add_allow_large, add_parameter_flags, add_precision_args, add_sizing_args, check_flag_number,
                         guarded_candidates, scenario_from_args)
from .cli_out import check_out, write_out
from .domain import MIN_GB_PER_S
from .units import DEFAULT_INTER_NODE_GBPS
from .uncertainty_text import range_lines
from . import interrupt
from .errors import InfeasibleError, InputError, PlannerError, Problem, SolverError

log = logging.getLogger("planner")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): status 2 like any other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: command line: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m planner",
                                     description="Place an LLM's layers on a heterogeneous GPU pool at the lowest $/token.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the planner does")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="find a plan; writes plan.csv, summary.json (and curve.csv / frontier.csv)")
    add_sizing_args(s)
    add_parameter_flags(s, ("method", "cost_weight", "budget_factors", "max_usd_per_hour", "max_ttft_ms",
                            "max_tpot_ms", "use_case", "weight_scaling", "target_usd_per_million_tokens",
                            "min_tokens_per_s", "time_limit_s", "mip_gap"))
    s.add_argument("--frontier", action="store_true", help="exact: also write the full Pareto frontier")
    s.add_argument("--out", default="out", help="output folder (default ./out)")
    s.add_argument("--json", action="store_true", help="print summary.json to stdout")
    s.add_argument("--pessimistic", action="store_true",
                   help="plan against the low end of each option's predicted range (the profile's errors on the "
                        "closest measured data): does the GPU choice change?")
    add_allow_large(s)

    c = sub.add_parser("candidates", help="list every stage option with its numbers and why it is excluded")
    add_sizing_args(c)
    c.add_argument("--out", default="out", help="output folder (default ./out)")

    e = sub.add_parser("evaluate", help="predict one uniform layout (TP x PP) of a catalogue model on a catalogue GPU, "
                                        "or every row of a CSV (--from-csv)")
    e.add_argument("--from-csv", metavar="FILE",
                   help="evaluate every row of FILE (columns model, gpu, tp, pp, nodes, inter_node_gbps, input_len, "
                        "output_len, batch or concurrency, engine, precision; blank = default): one JSON object "
                        "per row, in order")
    e.add_argument("--model")
    e.add_argument("--gpu")
    e.add_argument("--tp", type=int)
    e.add_argument("--pp", type=int, default=1)
    e.add_argument("--nodes", type=int, default=1)
    e.add_argument("--inter-node-gbps", type=float, default=DEFAULT_INTER_NODE_GBPS,
                   help="network between nodes in gigabits per second, as clouds quote it (default 200 = 25 GB/s)")
    e.add_argument("--input-len", type=int)
    e.add_argument("--output-len", type=int)
    g = e.add_mutually_exclusive_group()
    g.add_argument("--batch", type=int, help="static batch of B requests")
    g.add_argument("--concurrency", type=int, help="continuous batching with C requests in flight")
    e.add_argument("--engine", default="vllm", help="engine profile (default vllm)")
    add_engines_flag(e)
    add_precision_args(e)
    e.add_argument("--json", action="store_true")

    v = sub.add_parser("validate", help="predicted vs measured on the calibration data, the AIConfigurator reference "
                                        "and published measurements: MAPE and worst ratio per source and profile")
    v.add_argument("--json", action="store_true")
    add_engines_flag(v)
    from .cli_whatif import add_subcommands
    add_subcommands(sub)
    from .cli_fleet import add_subcommands as add_fleet

    add_fleet(sub)
    from .cli_compare import add_subcommands as add_compare

    add_compare(sub)
    from .cli_calibrate import add_subcommands as add_calibrate

    add_calibrate(sub)
    return parser


def cmd_solve(args) -> int:
    from .report import write_result
    from .search import Planner

    out = check_out(args)
    sc = scenario_from_args(args)
    for w in sc.warnings:
        print(f"note: {w}", file=sys.stderr)
    cs = guarded_candidates(sc, args)
    points = calibration_points(args, sc.engine)
    factors = None
    if args.pessimistic:
        from .pessimistic import pessimistic_candidates

        cs, factors = pessimistic_candidates(cs, points)
    planner = Planner(sc, cs)
    method = sc.settings.method
    if method == "exact":
        result = planner.exact(with_frontier=args.frontier)
    elif method == "enumeration":
        result = planner.enumeration()
    else:
        result = planner.weighted()
    from .usecases import interactive_warning

    summary = {}
    if factors is not None:
        result.extra["pessimistic"] = {"factors": factors, "note": "each option's tokens/s at the low end of its "
                                       "range (planner/pessimistic.py); tokens_per_s is that low end"}
    write_out(out, lambda: summary.update(write_result(result, out, sc.name, sc, points)))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    slow = interactive_warning(summary["ttft_ms"], summary["tpot_ms"], sc.settings.use_case)
    if slow:
        print(f"warning: {slow}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_result(summary, Path(args.out))
    return 0


def _print_result(s: dict, out: Path) -> None:
    proven = "proven optimal" if s["proven_optimal"] else "NOT proven optimal for $/token"
    gap = "n/a" if s["mip_gap"] is None else f"{s['mip_gap']:.3%}"
    on = " on $/token" if s.get("gap_on") == "usd_per_token" else " (MIP)"
    print(f"{s['scenario']}: method {s['method']}, status {s['status']} ({proven}), gap{on} {gap}, "
          f"{s['solve_seconds']:.2f} s" + (" | PESSIMISTIC: planned on each option's low-end throughput "
                                            f"(nominal {s['tokens_per_s_nominal']:,.1f} tokens/s)"
                                            if s.get("pessimistic") else ""))
    print(f"  {s['how']}")
    print(f"  ${s['usd_per_million_tokens']:.4f} per million {s['token_basis']} tokens | "
          f"TTFT {_ms(s['ttft_ms'])} | TPOT {_ms(s['tpot_ms'])} | "
          f"{s['tokens_per_s']:.1f} tokens/s | ${s['cost_usd_per_hour']:.2f}/h | {s['num_gpus']} GPUs in "
          f"{s['num_stages']} stages | {s['concurrency']} sequences in flight")
    for line in range_lines(s):
        print(f"  {line}")
    for i, st in enumerate(s["stages"], start=1):
        print(f"  stage {i}: layers {st['first_layer']}-{st['last_layer']} on {st['gpu_type']} TP{st['tp']} "
              f"| {st['tokens_per_s']:.1f} tok/s ({st['bound']}-bound) | {st['memory_gb_per_gpu']:.1f}/"
              f"{st['memory_capacity_gb']:.1f} GB | ${st['cost_usd_per_hour']:.2f}/h")
    print(f"  wrote {out / 'plan.csv'}, {out / 'summary.json'}"
          + (f", {out / 'curve.csv'}" if "curve" in s else ""))


def _ms(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def cmd_candidates(args) -> int:
    from .report import CANDIDATE_COLUMNS, candidate_rows, to_csv, write_outputs

    out = check_out(args)
    sc = scenario_from_args(args)
    cs = build_candidates(sc)
    files = {"candidates.csv": to_csv(candidate_rows(cs), CANDIDATE_COLUMNS)}
    from . import perf

    pairs = sorted({tuple(sorted((a, b))) for a in sc.pool.types for b in sc.pool.types})
    links = [{"gpu_type_a": a, "gpu_type_b": b, "gb_per_s": sc.pool.link(a, b),
              "tokens_per_s": perf.link_tokens_per_s(sc.model, sc.pool.link(a, b))} for a, b in pairs]
    files["links.csv"] = to_csv(links, ("gpu_type_a", "gpu_type_b", "gb_per_s", "tokens_per_s"))
    limits = {"num_layers": sc.model.num_layers, "max_stages": sc.settings.max_stages,
              "min_layers_per_stage": sc.settings.min_layers_per_stage,
              "gpu_counts": {e.name: e.count for e in sc.pool.entries}, "sizes": list(cs.sizes),
              "size_notes": list(cs.size_notes), "tp_degrees": {k: list(v) for k, v in cs.tp_degrees.items()},
              "tp_notes": list(cs.tp_notes), "levels": [str(lv) for lv in cs.levels],
              "token_basis": sc.workload.token_basis,
              "plan_rule": "a plan's tokens_per_s is the minimum over its stages' rows (all of one level, "
                           "with a stage count within every row's max_stages) and its links' tokens_per_s in links.csv"}
    files["limits.json"] = json.dumps(limits, indent=2)
    write_out(out, lambda: write_outputs(out, files))
    print(f"{len(cs.options)} usable options, {len(cs.excluded)} excluded; wrote {out / 'candidates.csv'}, "
          f"{out / 'limits.json'}, {out / 'links.csv'}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate_csv import KNOWN_PRECISIONS, LayoutArgs, evaluate_args, evaluate_csv

    cat = catalog_for(args)
    if args.from_csv:
        given = [f"--{f.replace('_', '-')}" for f in ("model", "gpu", "tp", "input_len", "output_len", "batch",
                                                       "concurrency") if getattr(args, f) is not None]
        if given:
            raise InputError(Problem(f"--from-csv takes the layouts from the file; drop {', '.join(given)}",
                                     "command line", column="--from-csv"))
        for result in evaluate_csv(args.from_csv, cat):
            print(json.dumps(result, default=str) if args.json else _layout_line(result))
        return 0
    missing = [f"--{f.replace('_', '-')}" for f in ("model", "gpu", "tp", "input_len", "output_len")
               if getattr(args, f) is None]
    if missing:
        raise InputError([Problem("is required (or give --from-csv FILE)", "command line", column=m) for m in missing])
    precision = (args.precision or "").strip().lower()
    if precision and precision not in KNOWN_PRECISIONS:
        raise InputError(Problem(f"unknown precision '{precision}' (known: {', '.join(KNOWN_PRECISIONS)})",
                                 "command line", column="--precision"))
    for flag in ("tp", "pp", "nodes", "input_len", "output_len", "batch", "concurrency"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise InputError(Problem(f"must be positive, got {value}", "command line",
                                     column=f"--{flag.replace('_', '-')}"))
    check_flag_number(args.inter_node_gbps, "--inter-node-gbps", MIN_GB_PER_S, "Gbit/s")
    problem = cat.model(args.model).context_problem(args.input_len, args.output_len)
    if problem:
        raise InputError(Problem(problem.replace("input_tokens + output_tokens", "--input-len + --output-len"),
                                 "command line", column="--input-len"))
    result = evaluate_args(cat, LayoutArgs(args.model, args.gpu, args.tp, args.input_len, args.output_len,
                                           args.pp, args.nodes, args.inter_node_gbps, args.batch, args.concurrency,
                                           args.engine, precision,
                                           (getattr(args, "kv_precision", None) or "").strip().lower()))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for key, value in result.items():
            if not isinstance(value, (list, dict)):
                print(f"{key}: {value}")
        for note in result.get("notes", []):
            print(f"note: {note}")
    return 0


def _layout_line(r: dict) -> str:
    """One evaluated CSV row as one line of text."""
    head = f"row {r['row']}: "
    if not r["feasible"]:
        return head + f"infeasible: {r['reason']}"
    mode = f"batch {r['batch']}" if r["batch"] is not None else f"{r['concurrency']} in flight"
    notes = "".join(f" (note: {n})" for n in r.get("notes", []))
    return (head + f"{r['model']} on {r['gpus']} x {r['gpu']} TP{r['tp']} PP{r['pp']} ({r['engine']}), "
            f"{r['input_len']}+{r['output_len']} tokens, {mode}: {r['tokens_per_s']:,.1f} tokens/s, prefill "
            f"{r['prefill_ms']:,.1f} ms, decode step {r['decode_step_ms']:,.2f} ms, {r['bound']}-bound, "
            f"{r['memory_gb_per_gpu']:.1f} GB per GPU" + notes)


def cmd_validate(args) -> int:
    from .calibration import format_report, validate_report
    from .validation import format_sources, validation_report

    cat = catalog_for(args)
    report = validate_report(cat=cat)
    report["sources"] = validation_report(cat)
    if getattr(args, "engines", None):
        from .cli_calibrate import added_profiles_report

        report["added_profiles"] = added_profiles_report(args.engines)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_report(report))
        print()
        print(format_sources(report["sources"]))
        for line in report.get("added_profiles", {}).get("lines", []):
            print(line)
    return 0


COMMANDS = {"solve": cmd_solve, "candidates": cmd_candidates, "evaluate": cmd_evaluate, "validate": cmd_validate}


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status is 0, 2 (bad input), 3 (infeasible), 4 (solver or internal failure)
    or 130 (Ctrl-C), each failure with one line on stderr and never a traceback (except under -v)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    """Pyomo logs an ERROR for any exception raised while it builds a component, Ctrl-C included; the
    interrupt is the user's own act and main() reports it as "interrupted", so only that record is dropped."""
    return not (isinstance(record.args, tuple) and "KeyboardInterrupt" in record.args)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyomo.core").addFilter(_not_an_interrupt)
    try:
        from .cli_calibrate import CALIBRATE_COMMANDS
        from .cli_compare import COMPARE_COMMANDS
        from .cli_fleet import FLEET_COMMANDS
        from .cli_whatif import WHATIF_COMMANDS

        commands = {**COMMANDS, **WHATIF_COMMANDS, **FLEET_COMMANDS, **COMPARE_COMMANDS, **CALIBRATE_COMMANDS}
        return commands[args.command](args)
    except InputError as exc:
        for p in exc.problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
    except InfeasibleError as exc:
        print(f"infeasible: {exc}", file=sys.stderr)
        return 3
    except SolverError as exc:
        print(f"solver error: {exc}", file=sys.stderr)
        return 4
    except PlannerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug of ours: one line (the traceback with -v), and status 4, never silent
        if interrupt.seen():  # or what an extension made of a Ctrl-C (planner.interrupt)
            raise KeyboardInterrupt from exc
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(" ".join(f"internal error: {type(exc).__name__}: {exc}{hint}".split()), file=sys.stderr)
        return 4
