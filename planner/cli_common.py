"""What the command-line modules share: the scenario flags and their reading into a Scenario, number checks,
the problem-size guard and the table/JSON output of the analysis commands.

Its own module so that `cli` (solve, candidates, evaluate, validate) and the subcommand modules
(`cli_whatif`, `cli_compare`, `cli_fleet`) import it rather than each other.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

from .candidates import QUANTIZATION_LEVELS, build_candidates
from .csvio import check_number
from .errors import InputError, Problem
from .parameters import BY_FIELD, SETTINGS_PARAMETERS


def add_engines_flag(p: argparse.ArgumentParser) -> None:
    """--engines FILE: extra engine profiles (an engines.csv as `calibrate` writes; an engine_gpus.csv
    next to it adds their per-GPU rows)."""
    p.add_argument("--engines", metavar="FILE",
                   help="add the engine profiles in FILE (engines.csv format, e.g. written by 'calibrate'; an "
                        "engine_gpus.csv beside it is read too)")


def catalog_for(args):
    """The catalogue, with the profiles of --engines FILE added when given."""
    from .catalog import load_catalog, with_engine_file

    cat = load_catalog()
    path = getattr(args, "engines", None)
    return with_engine_file(cat, path) if path else cat


def floats_arg(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.replace(";", ",").split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from exc


def ints_arg(text: str) -> tuple[int, ...]:
    values = floats_arg(text)
    if any(int(v) != v for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got '{text}'")
    return tuple(int(v) for v in values)


def add_sizing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", required=True, help="scenario folder (config.csv, gpu_pool.csv, ...)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sizes", type=ints_arg, help="explicit segment sizes, e.g. 1,5,10,20,30,40")
    g.add_argument("--quantization", choices=QUANTIZATION_LEVELS,
                   help="named segment-size set: coarse (the seed's 1,5,10,20,30,40), fine, even, full (1..L)")
    add_parameter_flags(p, ("max_stages", "min_layers_per_stage"))
    add_parameter_flags(p, ("concurrency", "token_basis"))
    p.add_argument("--engine", help="engine profile from config/engines.csv (default vllm)")
    add_engines_flag(p)
    add_precision_args(p)


def add_parameter_flags(p: argparse.ArgumentParser, fields: tuple[str, ...]) -> None:
    """The flags of these settings fields, in this order, as `parameters.SETTINGS_PARAMETERS` declares them."""
    kinds = {"int": {"type": int}, "float": {"type": float}, "floats": {"type": floats_arg}, "text": {}}
    for field_name in fields:
        q = BY_FIELD[field_name]
        kind = {"choices": q.choices} if q.flag_type == "choice" else kinds[q.flag_type]
        p.add_argument(q.flag, **kind, help=q.help)


def add_precision_args(p: argparse.ArgumentParser) -> None:
    from .domain import KV_PRECISIONS, PRECISIONS

    p.add_argument("--precision", choices=tuple(PRECISIONS),
                   help="weight precision: bf16/fp16 (default), fp8 (FP8 tensor cores on Ada/Hopper/Blackwell; "
                        "weight-only on Ampere and older), int4 (weight-only, 16-bit compute)")
    p.add_argument("--kv-precision", choices=tuple(KV_PRECISIONS),
                   help="KV-cache precision (default: fp8 with --precision fp8, else 16-bit)")


def add_allow_large(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-large", action="store_true",
                   help="solve even above 10,000 stage options (refused by default, exit 2: such a solve can take "
                        "up to the time limit)")


def guarded_candidates(sc, args):
    """The scenario's candidates, refused above the problem-size limit unless --allow-large."""
    from .candidates import check_problem_size

    cs = build_candidates(sc)
    check_problem_size(cs, getattr(args, "allow_large", False))
    return cs


def scenario_from_args(args):
    from .scenario_io import load_config_dir, override_settings

    cat = catalog_for(args)
    sc = load_config_dir(args.config_dir, catalog=cat)
    changes = {}
    flags = {}  # settings field -> the flag that set it, so that a problem names the flag
    if getattr(args, "sizes", None):
        changes["sizes"] = args.sizes
        flags["sizes"] = "--sizes"
    if getattr(args, "quantization", None):
        changes.update(quantization=args.quantization, sizes=None)
    for q in SETTINGS_PARAMETERS:
        value = getattr(args, q.dest, None) if q.flag and q.field != "use_case" else None
        if value is not None:
            if isinstance(value, float):
                check_flag_number(value, q.flag, q.minimum if q.flag_floor else None, q.unit if q.flag_floor else "")
            changes[q.field] = value
            flags[q.field] = q.flag
    if getattr(args, "use_case", None):  # the use case's limits, unless a latency flag is given too
        from .usecases import apply_use_case

        uc = apply_use_case(sc.settings, args.use_case)
        changes.setdefault("max_ttft_ms", uc.max_ttft_ms)
        changes.setdefault("max_tpot_ms", uc.max_tpot_ms)
        changes["use_case"] = args.use_case
        flags["use_case"] = "--use-case"
    if changes:
        sc = override_settings(sc, changes, flags)
    w = sc.workload
    if getattr(args, "concurrency", None):
        conc = None if args.concurrency == "auto" else positive_int(args.concurrency, "--concurrency")
        w = replace(w, concurrency=conc)
    if getattr(args, "token_basis", None):
        w = replace(w, token_basis=args.token_basis)
    if w is not sc.workload:
        sc = replace(sc, workload=w)
    if getattr(args, "engine", None):
        engines = cat.engines
        if args.engine not in engines:
            raise InputError(Problem(f"unknown engine profile '{args.engine}' (known: {', '.join(engines)})",
                                     "command line", column="--engine"))
        sc = replace(sc, engine=engines[args.engine])
    if getattr(args, "precision", None) or getattr(args, "kv_precision", None):
        from . import perf

        sc = replace(sc, model=perf.apply_precision(sc.model, args.precision, args.kv_precision))
    return sc


def check_flag_number(value: float, flag: str, minimum: float | None = None, unit: str = "") -> None:
    """Refuse a denormal or absurdly small number given on the command line (as in the files)."""
    _, message = check_number(str(value), positive=False, minimum=minimum, unit=unit)
    if message and "negative" not in message:  # the sign is checked with the rest of the settings
        raise InputError(Problem(message, "command line", column=flag))


def positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise InputError(Problem(f"'{text}' is not a whole number or 'auto'", "command line", column=flag)) from exc
    if value <= 0:
        raise InputError(Problem(f"must be positive, got {value}", "command line", column=flag))
    return value


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[title for _, title in columns]] + [[_fmt(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def emit(args, doc: dict, show) -> int:
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        show(doc)
        _show_proof(doc)
    return 0


def _show_proof(doc: dict) -> None:
    """Say, after the table, which solves a limit stopped: their figures are the best found, not proven."""
    if doc.get("proven_optimal", True):
        return
    bad = doc.get("not_proven", [])
    print(f"NOT proven optimal: {len(bad)} of the solves behind these figures stopped at a limit "
          f"(raise --time-limit):")
    for b in bad:
        gap = b.get("gap")
        print(f"  {b['what']}: at most {gap:.2%} above the minimum $/token" if gap is not None else f"  {b['what']}",
              "-- " + "; ".join(b.get("limits", [])) if b.get("limits") else "")
