"""`python -m planner calibrate` (the `--engines FILE` flag it shares with the other commands is in cli_common)."""
from __future__ import annotations

import json
from pathlib import Path

from .cli_common import add_engines_flag, catalog_for
from .errors import InputError, Problem
from .units import DEFAULT_INTER_NODE_GBPS


def add_subcommands(sub) -> None:
    c = sub.add_parser("calibrate", help="fit an engine profile to your own benchmark runs; writes engines.csv "
                                         "(+ engine_gpus.csv) and calibration.json")
    c.add_argument("--measurements", required=True, metavar="FILE",
                   help="CSV of measured runs (model, gpu, tp, pp, nodes, inter_node_gbps, input_len, output_len, "
                        "batch or concurrency, precision; measured: total_tokens_per_s, output_tokens_per_s, "
                        "prefill_ms, decode_step_ms, ttft_ms, tpot_ms) or a vLLM benchmark --save-result JSON")
    c.add_argument("--base", default="vllm", help="engine profile to start from (default vllm)")
    c.add_argument("--name", required=True, help="name of the new profile")
    c.add_argument("--out", default="calibrated", help="output folder (default ./calibrated)")
    c.add_argument("--date", help="date written in the profile's source (default today)")
    c.add_argument("--no-loo", action="store_true", help="skip the leave-one-out refits (faster)")
    add_engines_flag(c)
    g = c.add_argument_group("layout of a vLLM result JSON (ignored for a CSV)")
    g.add_argument("--model")
    g.add_argument("--gpu")
    g.add_argument("--tp", type=int, default=1)
    g.add_argument("--pp", type=int, default=1)
    g.add_argument("--nodes", type=int, default=1)
    g.add_argument("--inter-node-gbps", type=float, default=DEFAULT_INTER_NODE_GBPS,
                   help=f"gigabits per second (default {DEFAULT_INTER_NODE_GBPS:g})")
    g.add_argument("--precision", default="")
    g.add_argument("--input-len", type=int, help="default: total_input_tokens / completed")
    g.add_argument("--output-len", type=int, help="default: total_output_tokens / completed")
    g.add_argument("--concurrency", type=int, help="default: max_concurrency, else num_prompts")
    c.add_argument("--json", action="store_true", help="print calibration.json to stdout")


def cmd_calibrate(args) -> int:
    from .calibrate import Layout, calibrate, format_report, read_runs, source_text, write_calibration
    from .cli_out import check_out as _check_out, write_out as _write

    out = _check_out(args)
    cat = catalog_for(args)
    base = cat.engine(args.base)
    if not args.name.strip() or "," in args.name or '"' in args.name:
        raise InputError(Problem(f"'{args.name}' is not a usable profile name (no commas or quotes)",
                                 "command line", column="--name"))
    for flag in ("tp", "pp", "nodes", "input_len", "output_len", "concurrency"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise InputError(Problem(f"must be positive, got {value}", "command line", column=f"--{flag.replace('_', '-')}"))
    layout = None
    if args.model and args.gpu:
        layout = Layout(args.model, args.gpu, args.tp, args.pp, args.nodes, args.inter_node_gbps,
                        (args.precision or "").lower(), args.input_len, args.output_len, args.concurrency)
    runs = read_runs(args.measurements, cat, base.name, layout)
    result = calibrate(runs, base, args.name, cat, source_text(args.measurements, args.date),
                       with_loo=not args.no_loo)
    written = []
    _write(out, lambda: written.extend(write_calibration(Path(out), result["profile"], result["report"])))
    if args.json:
        print(json.dumps(result["report"], indent=1))
    else:
        print(format_report(result["report"]))
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


CALIBRATE_COMMANDS = {"calibrate": cmd_calibrate}


def added_profiles_report(path: str) -> dict:
    """For `validate --engines FILE`: each added profile's source, and the errors its calibration.json
    (written beside FILE by `calibrate`) measured on the user's runs, before, after and left out."""
    from .catalog import read_engine_file

    profiles = read_engine_file(path)
    out = {"profiles": {n: e.source for n, e in profiles.items()}, "calibration": None, "lines": []}
    lines = [f"added profiles from {path}:"] + [f"  {n}: {e.source}" for n, e in profiles.items()]
    cal = Path(path).parent / "calibration.json"
    if cal.is_file():
        from .csvio import read_text

        try:
            data = json.loads(read_text(cal))
        except json.JSONDecodeError as exc:
            raise InputError(Problem(f"not JSON ({exc.msg}, line {exc.lineno})", str(cal))) from exc
        keys = ("name", "base", "runs", "mape_before_pct", "mape_after_pct", "mape_leave_one_out_pct")
        out["calibration"] = {k: data.get(k) for k in keys}
        fmt = lambda v: "n/a" if v is None else f"{v:.1f}%"  # noqa: E731
        lines.append(f"  {data.get('name')} on its {data.get('runs')} calibration run(s) ({cal}): MAPE base "
                     f"'{data.get('base')}' {fmt(data.get('mape_before_pct'))}, fitted "
                     f"{fmt(data.get('mape_after_pct'))}, leave-one-out {fmt(data.get('mape_leave_one_out_pct'))}")
    else:
        lines.append(f"  (no calibration.json beside {path}: no errors on the runs it was fitted to)")
    out["lines"] = lines
    return out


def calibration_points(args, profile):
    """The error points behind `profile` when it comes from `--engines FILE` (or a scenario folder's
    engines.csv) with `calibrate`'s calibration.json beside it; None = the catalogue's validation points."""
    from .catalog import load_catalog
    from .csvio import read_text
    from .uncertainty import points_from_calibration

    folders = [Path(p).parent for p in (getattr(args, "engines", None),) if p]
    if getattr(args, "config_dir", None):
        folders.append(Path(args.config_dir))
    for folder in folders:
        cal = folder / "calibration.json"
        if (folder / "engines.csv").is_file() and cal.is_file():
            try:
                data = json.loads(read_text(cal))
            except json.JSONDecodeError as exc:
                raise InputError(Problem(f"not JSON ({exc.msg}, line {exc.lineno})", str(cal))) from exc
            if data.get("name") == profile.name:
                return points_from_calibration(data)
    if load_catalog().engines.get(profile.name) != profile:
        return []  # a profile from a file with no calibration.json: no validation data behind it
    return None
