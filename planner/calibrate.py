"""`python -m planner calibrate`: fit an engine profile to a user's own benchmark runs.

Input: a CSV with one measured run per row (the layout columns of `evaluate --from-csv`: model, gpu, tp,
pp, nodes, inter_node_gbps, input_len, output_len, batch or concurrency, precision; and one or more
measured figures: total_tokens_per_s, output_tokens_per_s, prefill_ms, decode_step_ms, ttft_ms,
tpot_ms), or the result JSON of vLLM's serving benchmark (`benchmark_serving.py --save-result`, or
`vllm bench serve --save-result`: one object, a list of them or one per line), whose layout is given by
the caller (Layout). Output: the new profile (engines.csv and engine_gpus.csv in the catalogue's format)
and calibration.json (what was fitted and kept and why, every run's error before and after, and its
leave-one-out error). The fitting is planner.calibrate_fit's.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .calibrate_fit import QUANTITIES, Run, candidate_params, fit, leave_one_out, predict, predicted_figures
from .catalog import ENGINE_COLUMNS, ENGINE_GPU_COLUMNS, Catalog
from .csvio import Cells, Table, decode, parse_table, read_file
from .domain import EngineProfile
from .errors import InputError, Problem
from .evaluate_csv import DEFAULT_INTER_NODE, KNOWN_PRECISIONS, catalogue_names, layout_cells

log = logging.getLogger(__name__)

LAYOUT_COLUMNS = ("pp", "nodes", "inter_node_gbps", "batch", "concurrency", "engine", "precision")
REQUIRED = ("model", "gpu", "tp", "input_len", "output_len")
# The project's own measurement files (data/measurements/) describe runs with these; they are read as
# the user's notes (not fitted), except gpus_per_node, which checks that the layout fits the nodes.
INFO_COLUMNS = ("source", "runs", "gpus_per_node", "notes", "date")
ALIASES = {"num_nodes": "nodes"}
# vLLM serving-benchmark result keys -> our measured figures
VLLM_KEYS = {"total_token_throughput": "total_tokens_per_s", "output_throughput": "output_tokens_per_s",
             "mean_ttft_ms": "ttft_ms", "mean_tpot_ms": "tpot_ms"}


@dataclass(frozen=True)
class Layout:
    """What a vLLM result file does not say: the layout it ran on (the CLI's flags)."""

    model: str
    gpu: str
    tp: int = 1
    pp: int = 1
    nodes: int = 1
    inter_node_gbps: float = DEFAULT_INTER_NODE
    precision: str = ""
    input_len: int | None = None  # default: the file's total_input_tokens / completed
    output_len: int | None = None
    concurrency: int | None = None  # default: max_concurrency, or num_prompts when it is unlimited


def read_runs(path: Path | str, cat: Catalog, engine: str, layout: Layout | None = None) -> list[Run]:
    """The runs of a measurements file (CSV, or vLLM result JSON with `layout`); every unreadable cell
    is one Problem naming file, row and column, all raised together."""
    file = str(path)
    return runs_from_text(decode(read_file(path), file), file, cat, engine, layout)


def runs_from_text(text: str, file: str, cat: Catalog, engine: str, layout: Layout | None = None) -> list[Run]:
    """read_runs on a file's text (an upload); `file` names it in messages."""
    if Path(file).suffix.lower() in (".json", ".jsonl") or text.lstrip().startswith(("{", "[")):
        if layout is None:
            raise InputError(Problem("is a vLLM benchmark result (JSON): give its layout with --model and --gpu "
                                     "(and --tp, --pp, --nodes as it ran)", file))
        return _vllm_runs(text, file, cat, layout)
    return _csv_runs(text, file, cat, engine)


def _csv_runs(text: str, file: str, cat: Catalog, engine: str) -> list[Run]:
    problems: list[Problem] = []
    table = parse_table(text, file, required=REQUIRED,
                        optional=LAYOUT_COLUMNS + tuple(QUANTITIES) + INFO_COLUMNS + tuple(ALIASES),
                        problems=problems)
    table = _unalias(table, problems)
    if table.header and not any(q in table.header for q in QUANTITIES):
        problems.append(Problem(f"no measured figure: add one or more of the columns {', '.join(QUANTITIES)}",
                                file, 1))
    runs = []
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        before = len(problems)
        model, gpu = catalogue_names(c, cat)
        row_engine = c.text("engine", "")
        if row_engine and row_engine != engine:
            c._bad("engine", f"'{row_engine}' differs from the base profile '{engine}': calibrate the runs of one "
                             "serving stack at a time (blank = the base profile)")
        precision = c.text("precision", "").lower()
        if precision and precision not in KNOWN_PRECISIONS:
            c._bad("precision", f"unknown precision '{precision}' (known: {', '.join(KNOWN_PRECISIONS)})")
        tp, pp, nodes, gbps, input_len, output_len, batch, conc = layout_cells(c)
        per_node = c.integer("gpus_per_node", allow_missing=True, maximum=1024)
        if None not in (per_node, tp, pp, nodes) and tp * pp > nodes * per_node:
            c._bad("gpus_per_node", f"tp x pp = {tp * pp} GPUs do not fit on {nodes} node(s) of {per_node} GPUs")
        measured = []
        for q in QUANTITIES:
            value = c.number(q, allow_missing=True, maximum=1e12)
            if value is not None:
                measured.append((q, value))
        if not measured and all(not row.get(q) for q in QUANTITIES) and any(q in table.header for q in QUANTITIES):
            present = ', '.join(q for q in QUANTITIES if q in table.header)
            problems.append(Problem(f"no measured figure in this row (fill one of {present})",
                                    file, lineno))
        if len(problems) == before:
            runs.append(Run(f"{file}, row {lineno}", cat.model(model).name, cat.gpu(gpu).sku, tp, pp, nodes, gbps,
                            input_len, output_len, batch, conc, precision, tuple(measured)))
    if problems:
        raise InputError(problems)
    return runs


def _unalias(table: Table, problems: list[Problem]) -> Table:
    """Read an alias column (num_nodes) as its name (nodes); both at once is ambiguous."""
    header = list(table.header)
    for alias, name in ALIASES.items():
        if alias not in header:
            continue
        if name in header:
            problems.append(Problem(f"give either '{name}' or '{alias}' (the same thing), not both", table.file, 1,
                                    alias))
            continue
        header[header.index(alias)] = name
        rows = tuple((n, {(name if k == alias else k): v for k, v in row.items()}) for n, row in table.rows)
        table = replace(table, header=tuple(header), rows=rows)
    return table


def _vllm_runs(text: str, file: str, cat: Catalog, layout: Layout) -> list[Run]:
    try:
        data = json.loads(text)
        objects = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        objects = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    objects.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(Problem(f"not JSON ({exc.msg}, column {exc.colno})", file, i)) from exc
    cat.model(layout.model), cat.gpu(layout.gpu)  # unknown names: one clear InputError
    problems: list[Problem] = []
    runs = []
    for i, obj in enumerate(objects, start=1):
        where = f"result {i}" if len(objects) > 1 else ""
        if not isinstance(obj, dict):
            problems.append(Problem(f"{where or 'the file'} is not a JSON object of benchmark results", file))
            continue

        def num(key: str, required: bool = True):
            value = obj.get(key)
            if value is None:
                if required:
                    problems.append(Problem(f"{where + ': ' if where else ''}missing '{key}'", file, column=key))
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                problems.append(Problem(f"{where + ': ' if where else ''}'{key}' must be a positive number, "
                                        f"got {value!r}", file, column=key))
                return None
            return float(value)

        completed = num("completed", required=layout.input_len is None or layout.output_len is None)
        input_len = layout.input_len
        output_len = layout.output_len
        if input_len is None:
            total = num("total_input_tokens")
            input_len = round(total / completed) if total and completed else None
        if output_len is None:
            total = num("total_output_tokens")
            output_len = round(total / completed) if total and completed else None
        conc = layout.concurrency
        if conc is None:
            conc = num("max_concurrency", required=False) or num("num_prompts")
        measured = [(ours, v) for key, ours in VLLM_KEYS.items() if (v := num(key, required=False)) is not None]
        if not measured:
            problems.append(Problem(f"{where + ': ' if where else ''}no measured figure (expected one of "
                                    f"{', '.join(VLLM_KEYS)})", file))
        if None in (input_len, output_len, conc) or not measured:
            continue
        runs.append(Run(f"{file}{', ' + where if where else ''}", cat.model(layout.model).name,
                        cat.gpu(layout.gpu).sku, layout.tp, layout.pp, layout.nodes, layout.inter_node_gbps,
                        max(1, int(input_len)), max(1, int(output_len)), None, int(conc), layout.precision,
                        tuple(measured)))
    if problems:
        raise InputError(problems)
    return runs


def _pct(pred: float, meas: float) -> float | None:
    return round(100 * (pred / meas - 1), 3) if pred == pred and pred > 0 else None


def _mape(errors: list[float | None]) -> float | None:
    vals = [abs(e) for e in errors if e is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def calibrate(runs: list[Run], base: EngineProfile, name: str, cat: Catalog, source: str,
              with_loo: bool = True) -> dict:
    """Fit `base` to `runs`; returns the new profile and the report (calibration.json's content)."""
    if not runs:
        raise InputError("no measured runs: the file has no rows with a measured figure")
    if name in cat.engines and name != base.name:
        log.info("profile name %s shadows a catalogue profile", name)
    unpredictable = []
    for run in runs:
        r = predict(base, run, cat)
        if not r["feasible"]:
            unpredictable.append(Problem(f"the model cannot predict this layout: {r['reason']}", run.source))
    if unpredictable:
        raise InputError(unpredictable)
    result = fit(base, runs, cat)
    if not result.selection.fitted:
        why = "; ".join(f"{p}: {w}" for p, w in result.selection.kept)
        raise InputError(Problem(f"these {len(runs)} run(s) identify no parameter of profile '{base.name}' "
                                 f"({why}). Add runs that vary what a parameter multiplies (batch or "
                                 f"concurrency, TP, prompt length) or more runs", "measurements"))
    profile = replace(result.profile, name=name, source=source)
    profile = replace(profile, gpu_efficiencies=tuple(
        replace(g, source=source if any(k.startswith(g.gpu + ":") for k in result.selection.fitted)
                else f"as {base.name}: {g.source}") for g in profile.gpu_efficiencies))
    profile = rounded(profile)  # what engines.csv holds, so that "after" is the written profile's error
    before = predicted_figures(base, runs, cat)
    after = predicted_figures(profile, runs, cat)
    loo = leave_one_out(base, result, runs, cat) if with_loo else [[math.nan] * len(r.measured) for r in runs]
    rows = []
    for run, b, a, o in zip(runs, before, after, loo):
        for (q, meas), pb, pa, po in zip(run.measured, b, a, o):
            rows.append({"run": run.source, "model": run.model, "gpu": run.gpu, "tp": run.tp, "pp": run.pp,
                         "nodes": run.nodes, "input_len": run.input_len, "output_len": run.output_len,
                         "batch": run.batch, "concurrency": run.concurrency, "precision": run.precision or None,
                         "quantity": q, "measured": meas, "predicted_before": pb, "predicted_after": pa,
                         "predicted_leave_one_out": po if po == po else None,
                         "error_before_pct": _pct(pb, meas), "error_after_pct": _pct(pa, meas),
                         "error_leave_one_out_pct": _pct(po, meas)})
    kept = {p: w for p, w in result.selection.kept}
    bounds = {p.name: (p.lower, p.upper) for p in candidate_params(base, runs, cat)}

    def at_bound(param: str) -> str | None:
        lo, hi = bounds[param]
        v = result.after[param]
        if abs(v - hi) <= 1e-3 * max(abs(hi), 1e-9):
            return f"at its upper bound {hi:g}: the runs push it past the physical range (a term the model lacks?)"
        if abs(v - lo) <= 1e-3 * max(abs(lo), 1e-3):
            return f"at its lower bound {lo:g}: the runs push it past the physical range (a term the model lacks?)"
        return None
    return {
        "profile": profile,
        "report": {
            "name": name, "base": base.name, "source": source, "runs": len(runs),
            "figures": sum(len(r.measured) for r in runs),
            "method": "scipy.optimize.least_squares on log(predicted/measured), bounded; parameters chosen by "
                      "sensitivity and independence (planner/calibrate_fit.py)",
            "fitted": [{"parameter": p, "before": result.before[p], "after": result.after[p], "note": at_bound(p)}
                       for p in result.selection.fitted],
            "kept": [{"parameter": p, "value": _value(base, p, cat), "why": kept[p]} for p in kept],
            "mape_before_pct": _mape([r["error_before_pct"] for r in rows]),
            "mape_after_pct": _mape([r["error_after_pct"] for r in rows]),
            "mape_leave_one_out_pct": _mape([r["error_leave_one_out_pct"] for r in rows]),
            "rows": rows,
        },
    }


def rounded(profile: EngineProfile) -> EngineProfile:
    """The profile with its numbers at the 4 significant digits engines.csv is written with."""
    r = lambda v: float(f"{v:.4g}")  # noqa: E731
    floats = {k: r(v) for k, v in asdict(profile).items() if isinstance(v, float)}
    effs = tuple(replace(g, compute_efficiency=r(g.compute_efficiency), hbm_efficiency=r(g.hbm_efficiency))
                 for g in profile.gpu_efficiencies)
    return replace(profile, gpu_efficiencies=effs, **floats)


def _value(base: EngineProfile, param: str, cat: Catalog) -> float:
    if ":" in param:
        sku, kind = param.split(":")
        ce, he, _ = base.efficiencies(cat.gpu(sku))
        return ce if kind == "compute" else he
    return float(getattr(base, param))


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else v


def engines_csv(profile: EngineProfile) -> str:
    """One row in config/engines.csv's format."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ENGINE_COLUMNS)
    d = asdict(profile)
    w.writerow([_fmt(d[c]) for c in ENGINE_COLUMNS])
    return buf.getvalue()


def engine_gpus_csv(profile: EngineProfile) -> str:
    """The profile's per-GPU rows in config/engine_gpus.csv's format."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ENGINE_GPU_COLUMNS)
    for g in profile.gpu_efficiencies:
        w.writerow([profile.name, g.gpu, _fmt(g.compute_efficiency), _fmt(g.hbm_efficiency), g.source])
    return buf.getvalue()


def source_text(path: str, date: str | None = None) -> str:
    return f"calibrated by python -m planner calibrate on {Path(path).name}, {date or dt.date.today().isoformat()}"


def write_calibration(out: Path, out_profile: EngineProfile, report: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"engines.csv": engines_csv(out_profile), "calibration.json": json.dumps(report, indent=1) + "\n"}
    if out_profile.gpu_efficiencies:
        files["engine_gpus.csv"] = engine_gpus_csv(out_profile)
    written = []
    for fname, text in files.items():
        (out / fname).write_text(text)
        written.append(out / fname)
    return written


def format_report(report: dict) -> str:
    lines = [f"profile '{report['name']}' from '{report['base']}' on {report['runs']} run(s), "
             f"{report['figures']} measured figure(s)"]
    lines.append("fitted (the runs vary what these multiply):")
    for f in report["fitted"]:
        lines.append(f"  {f['parameter']}: {f['before']:.4g} -> {f['after']:.4g}"
                     + (f" ({f['note']})" if f.get("note") else ""))
    lines.append("kept at the base profile's value:")
    for k in report["kept"]:
        lines.append(f"  {k['parameter']} = {k['value']:.4g}: {k['why']}")

    def pct(v):
        return "n/a" if v is None else f"{v:.1f}%"
    lines.append(f"MAPE before {pct(report['mape_before_pct'])}, after {pct(report['mape_after_pct'])}, "
                 f"leave-one-out {pct(report['mape_leave_one_out_pct'])}")
    for r in report["rows"]:
        lines.append(f"  {r['run']}: {r['quantity']} measured {r['measured']:.4g}, error before "
                     f"{pct(r['error_before_pct'])}, after {pct(r['error_after_pct'])}, left out "
                     f"{pct(r['error_leave_one_out_pct'])}")
    return "\n".join(lines)
