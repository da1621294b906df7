"""Predicted vs measured on the calibration data (`data/measurements/`), with errors.

* `splitwise_a100.csv` (DGX-A100, static batches, engine profile `splitwise`): medians over the
  repeated rows of each (model, tp, prompt_size, batch_size, token_size); compared are the prefill time
  of the batch (`prompt_time`) and one decode step of the batch (`token_time`, at the mean context
  prompt + output/2).
* `vllm_l40s.csv` (vLLM 0.10 eager on L40S, engine profile `vllm-eager`): end-to-end tokens/s of
  throughput runs (every request submitted at once), predicted as continuous batching at the concurrency
  whose KV cache fits at the full context (`burst_concurrency`, capped by the engine's max_num_seqs), plus
  the prefill of the tokens the engine recomputes after preempting sequences (`perf.burst_tokens_per_s`);
  pp = 2 rows are two stages in one node.
* `aiconfigurator_vllm.csv` (NVIDIA AIConfigurator's vLLM backend, a profiled-kernel model; engine
  profile `vllm`): static batches; prefill, decode step at mid-output, tokens/s and memory fit per
  (model, GPU, TP, batch, lengths) - `reference_rows`, `reference_summary`.

Both go through `planner.evaluate.evaluate_layout`, i.e. through the same `planner.perf` functions the
planner uses.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

from .catalog import CONFIG_DIR, Catalog, load_catalog
from .csvio import Cells, parse_table, read_text
from .domain import EngineProfile
from .errors import InputError, Problem
from . import perf
from .evaluate import evaluate_layout, split_layers

log = logging.getLogger(__name__)

DEFAULT_DATA_DIRS = (
    Path(__file__).resolve().parent.parent / "data" / "measurements",
)
DGX_FILE = "splitwise_a100.csv"
VLLM_FILE = "vllm_l40s.csv"
MODEL_NAMES = {"llama2-70b": "llama-2-70b", "bloom-176b": "bloom-176b", "llama-3-70b": "llama-3-70b"}
GPU_NAMES = {"a100-80gb": "A100-80GB-SXM", "L40S": "L40S"}
FILE_ENGINES = {DGX_FILE: "splitwise", VLLM_FILE: "vllm-eager"}  # vllm_l40s.csv measured vLLM 0.10 in eager mode
# Configurations left out of the fit and the summary (shown in the table, flagged):
# llama2-70b TP2, batch 64: prompt_time 0.79 s is 8x below batch 32's 6.6 s while e2e_time is 160 s
# (9x batch 32's) - the run did something else (the publisher's notes suspect a memory fallback).
EXCLUDED = {(DGX_FILE, "llama2-70b", 2, 512, 64, 128):
            "llama2-70b TP2 batch 64: prompt_time 8x below batch 32 with e2e_time 9x above; inconsistent run"}


def data_dir() -> Path:
    """The measurements folder: $PLANNER_MEASUREMENTS, else the copy shipped in data/measurements."""
    env = os.environ.get("PLANNER_MEASUREMENTS")
    candidates = [Path(env)] if env else []
    candidates += list(DEFAULT_DATA_DIRS)
    for d in candidates:
        if os.path.lexists(d / DGX_FILE) and os.path.lexists(d / VLLM_FILE):  # reading them checks the rest
            return d
    raise InputError(Problem(f"calibration data ({DGX_FILE}, {VLLM_FILE}) not found in "
                             f"{', '.join(str(d) for d in candidates)}; set PLANNER_MEASUREMENTS to the folder "
                             "that holds them", "PLANNER_MEASUREMENTS"))


def _read(path: Path, text_columns: tuple[str, ...], numbers: dict[str, type]) -> list[dict]:
    """The rows of a measurements CSV with `numbers` converted; a problem names the file, row and column."""
    file = str(path)
    reader = csv.DictReader(io.StringIO(read_text(path)))
    out = []
    try:
        header = reader.fieldnames or []
        missing = [c for c in (*text_columns, *numbers) if c not in header]
        if missing:
            raise InputError(Problem(f"missing column(s) {', '.join(missing)}", file, 1))
        for r in reader:
            for col, kind in numbers.items():
                value = (r.get(col) or "").strip()
                try:
                    r[col] = kind(value)
                except ValueError:
                    r[col] = None
                if r[col] is None or not math.isfinite(r[col]):
                    raise InputError(Problem(f"'{value}' is not a {'whole ' if kind is int else ''}number", file,
                                             reader.line_num, col))
            out.append(r)
    except csv.Error as exc:
        raise InputError(Problem(f"cannot be read as CSV: {exc}", file, reader.line_num)) from exc
    return out


def dgx_measurements(directory: Path | None = None) -> list[dict]:
    """Median prompt_time and token_time per (model, tp, prompt, batch, tokens) of the DGX file."""
    directory = directory or data_dir()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in _read(directory / DGX_FILE, ("model", "hardware"),
                   {"tensor_parallel": int, "prompt_size": int, "batch_size": int, "token_size": int,
                    "prompt_time": float, "token_time": float}):
        key = (r["model"], r["hardware"], r["tensor_parallel"], r["prompt_size"], r["batch_size"], r["token_size"])
        groups[key].append(r)
    out = []
    for (model, hw, tp, prompt, batch, tokens), rows in sorted(groups.items()):
        out.append({
            "file": DGX_FILE, "model": model, "hardware": hw, "tp": tp, "pp": 1, "input_len": prompt,
            "batch": batch, "output_len": tokens, "runs": len(rows),
            "prefill_ms": statistics.median(float(r["prompt_time"]) for r in rows),
            "decode_step_ms": statistics.median(float(r["token_time"]) for r in rows),
            "excluded": EXCLUDED.get((DGX_FILE, model, tp, prompt, batch, tokens), ""),
        })
    return out


def vllm_measurements(directory: Path | None = None) -> list[dict]:
    directory = directory or data_dir()
    out = []
    for r in _read(directory / VLLM_FILE, ("model", "gpu", "source"),
                   {"num_nodes": int, "tp": int, "pp": int, "input_len": int, "output_len": int,
                    "total_tokens_per_s": float, "runs": int}):
        out.append({
            "file": VLLM_FILE, "model": r["model"], "hardware": r["gpu"], "source": r["source"],
            "nodes": r["num_nodes"], "tp": r["tp"], "pp": r["pp"],
            "input_len": r["input_len"], "output_len": r["output_len"],
            "tokens_per_s": r["total_tokens_per_s"], "runs": r["runs"], "excluded": "",
        })
    return out


def predict_dgx(row: dict, engine: EngineProfile, cat: Catalog) -> dict:
    return evaluate_layout(cat.model(MODEL_NAMES[row["model"]]), cat.gpu(GPU_NAMES[row["hardware"]]), engine,
                           row["tp"], row["pp"], row["input_len"], row["output_len"], batch=row["batch"])


def burst_concurrency(row: dict, engine: EngineProfile, cat: Catalog) -> int:
    """Sequences in flight in a throughput run that submits every request at once: they start and grow
    together, so the engine keeps those whose KV cache fits at the full context (prompt + output) on every
    stage; the ones it admitted beyond that are preempted and recomputed as the others grow. (A server with
    staggered arrivals holds the prompt and half the output on average: perf.kv_tokens_per_sequence.)"""
    m, g = cat.model(MODEL_NAMES[row["model"]]), cat.gpu(GPU_NAMES[row["hardware"]])
    sizes = split_layers(m.num_layers, row["pp"])
    full = row["input_len"] + row["output_len"]
    return max(1, min(perf.max_concurrency(m, g, engine, n, row["tp"], i == 0, i == len(sizes) - 1, full)
                      for i, n in enumerate(sizes)))


# Per profile, the share of each request's output that a burst throughput run prefills again after
# preemption (perf.burst_recompute_tokens); written by benchmarks/fit_engines.py. Kept out of engines.csv:
# it describes how a benchmark that submits every request at once runs, not a server (the planner never uses it).
BURST_FILE = CONFIG_DIR / "engines_burst.csv"
BURST_COLUMNS = ("engine", "preempt_recompute_share", "source")


def burst_recompute_shares(path: Path = BURST_FILE) -> dict[str, float]:
    """{profile: preempt_recompute_share} from config/engines_burst.csv; a profile without a row (or no
    file) recomputes nothing. A bad cell names the file, row and column."""
    if not path.exists():
        return {}
    table = parse_table(read_text(path), str(path), required=BURST_COLUMNS[:2], optional=BURST_COLUMNS[2:])
    problems: list[Problem] = []
    out = {}
    for lineno, row in table.rows:
        c = Cells(table, lineno, row, problems)
        name, share = c.text("engine"), c.number("preempt_recompute_share", positive=False, maximum=10.0)
        if name is not None and share is not None:
            out[name] = share
    if problems:
        raise InputError(problems)
    return out


def predict_vllm(row: dict, engine: EngineProfile, cat: Catalog, recompute_share: float | None = None) -> dict:
    """evaluate_layout at the burst concurrency; `tokens_per_s` then adds, per stage, the prefill of the
    tokens the engine recomputes after preempting sequences (perf.burst_tokens_per_s with `recompute_share`,
    default the profile's row of config/engines_burst.csv; the steady-state figure stays in
    `tokens_per_s_steady`)."""
    if recompute_share is None:
        recompute_share = burst_recompute_shares().get(engine.name, 0.0)
    p = evaluate_layout(cat.model(MODEL_NAMES[row["model"]]), cat.gpu(GPU_NAMES[row["hardware"]]), engine,
                        row["tp"], row["pp"], row["input_len"], row["output_len"], nodes=row["nodes"],
                        concurrency=burst_concurrency(row, engine, cat))
    if not p["feasible"] or not recompute_share:
        return p
    context, micro = row["input_len"] + row["output_len"], max(1, row["pp"])
    rates = [perf.burst_tokens_per_s(s["tokens_per_s"], p["concurrency"] / micro * context / s["tokens_per_s"],
                                     s["prefill_ms"] / 1e3, recompute_share, row["input_len"], row["output_len"])
             for s in p["stages"]] + [k["tokens_per_s"] for k in p["links"]]
    tokens_per_s = min(rates)
    return {**p, "tokens_per_s_steady": p["tokens_per_s"], "tokens_per_s": tokens_per_s,
            "output_tokens_per_s": tokens_per_s * row["output_len"] / context}


def _err(pred: float, meas: float) -> float:
    return 100.0 * (pred - meas) / meas if pred == pred and meas else math.nan


def comparison_rows(engines: dict[str, EngineProfile], cat: Catalog | None = None,
                    directory: Path | None = None, recompute_share: float | None = None) -> list[dict]:
    """One dict per compared quantity: file, model, gpu, tp, pp, phase, batch/concurrency, lengths,
    measured, predicted, error_pct (and `excluded` with a reason for flagged configurations).
    `recompute_share`: of the vLLM file's burst runs (predict_vllm; default the profile's)."""
    cat = cat or load_catalog()
    rows = []
    if DGX_FILE in engines:
        for r in dgx_measurements(directory):
            p = predict_dgx(r, engines[DGX_FILE], cat)
            for phase, key in (("prefill", "prefill_ms"), ("decode", "decode_step_ms")):
                rows.append({
                    "file": DGX_FILE, "engine": engines[DGX_FILE].name, "model": r["model"],
                    "gpu": GPU_NAMES[r["hardware"]], "tp": r["tp"], "pp": 1, "phase": phase,
                    "batch": r["batch"], "concurrency": None, "input_len": r["input_len"],
                    "output_len": r["output_len"], "unit": "ms", "measured": r[key],
                    "predicted": p[key] if p["feasible"] else math.nan,
                    "error_pct": _err(p[key], r[key]) if p["feasible"] else math.nan,
                    "bound": p["bound"], "excluded": r["excluded"],
                })
    if VLLM_FILE in engines:
        if recompute_share is None:
            recompute_share = burst_recompute_shares().get(engines[VLLM_FILE].name, 0.0)
        for r in vllm_measurements(directory):
            p = predict_vllm(r, engines[VLLM_FILE], cat, recompute_share)
            rows.append({
                "file": VLLM_FILE, "engine": engines[VLLM_FILE].name, "model": r["model"],
                "gpu": GPU_NAMES[r["hardware"]], "tp": r["tp"], "pp": r["pp"], "phase": "throughput",
                "batch": None, "concurrency": p["concurrency"], "input_len": r["input_len"],
                "output_len": r["output_len"], "unit": "tokens/s", "measured": r["tokens_per_s"],
                "predicted": p["tokens_per_s"] if p["feasible"] else math.nan,
                "error_pct": _err(p["tokens_per_s"], r["tokens_per_s"]) if p["feasible"] else math.nan,
                "bound": p["bound"], "excluded": r["excluded"],
            })
    return rows


def summarize(rows: list[dict]) -> dict:
    """MAPE and worst absolute error (%) per phase, and per phase and TP (excluded rows left out)."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r["excluded"]:
            continue
        e = abs(r["error_pct"]) if r["error_pct"] == r["error_pct"] else math.inf
        groups[(r["phase"], None)].append(e)
        groups[(r["phase"], f"{r['model']} TP{r['tp']}" + (f" PP{r['pp']}" if r["pp"] > 1 else ""))].append(e)
        groups[(r["phase"], f"TP{r['tp']}" + (f" PP{r['pp']}" if r["pp"] > 1 else ""))].append(e)
    by_phase, by_tp = {}, {}
    for (phase, sub), errs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        stats = {"n": len(errs), "mape_pct": sum(errs) / len(errs), "worst_abs_pct": max(errs)}
        if sub is None:
            by_phase[phase] = stats
        else:
            by_tp.setdefault(phase, {})[sub] = stats
    return {"by_phase": by_phase, "by_tp": by_tp}


def validate_report(engine_names: dict[str, str] | None = None, cat: Catalog | None = None,
                    directory: Path | None = None) -> dict:
    """Predicted vs measured for both files with the catalogue's engine profiles.

    `engine_names` maps a file name to an engine profile name (default: splitwise_a100.csv ->
    `splitwise`, vllm_l40s.csv -> `vllm`)."""
    cat = cat or load_catalog()
    names = dict(FILE_ENGINES)
    names.update(engine_names or {})
    engines = {f: cat.engine(n) for f, n in names.items()}
    rows = comparison_rows(engines, cat, directory)
    return {
        "engines": {f: {"name": e.name, "source": e.source} for f, e in engines.items()},
        "rows": rows,
        "summary": summarize(rows),
        "excluded": sorted({r["excluded"] for r in rows if r["excluded"]}),
        "assumptions": [
            "DGX: static batch; decode step at mean context prompt + output/2; medians over repeated runs",
            "vLLM: throughput run (all requests at once): continuous batching at the concurrency whose full "
            "input+output KV fits, capped by max_num_seqs, plus the prefill of the tokens recomputed after "
            "preemption (preempt_recompute_share x output per request); lengths are the configured maxima; "
            "pp=2 in one node",
        ],
    }


def _fmt(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:,.{digits}f}"
    return str(v)


def format_report(report: dict) -> str:
    """A readable text table: every compared row, then MAPE / worst error per phase and per TP."""
    head = ("file", "model", "tp", "pp", "phase", "B/C", "in", "out", "measured", "predicted", "err %")
    lines = ["Calibration: predicted vs measured", ""]
    for f, e in report["engines"].items():
        lines.append(f"  {f}: engine '{e['name']}' ({e['source']})")
    lines.append("")
    table = [head]
    for r in report["rows"]:
        bc = r["batch"] if r["batch"] is not None else (f"C={r['concurrency']}" if r["concurrency"] else "-")
        table.append((r["file"].split("_")[0], r["model"], str(r["tp"]), str(r["pp"]), r["phase"], str(bc),
                      str(r["input_len"]), str(r["output_len"]), _fmt(r["measured"]), _fmt(r["predicted"]),
                      _fmt(r["error_pct"]) + (" (excluded)" if r["excluded"] else "")))
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for t in table:
        lines.append("  ".join(c.rjust(w) if i >= 8 else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))))
    lines += ["", "Summary (absolute percentage errors, excluded rows left out)"]
    for phase, s in report["summary"]["by_phase"].items():
        lines.append(f"  {phase:<10} n={s['n']:<3} MAPE {s['mape_pct']:5.1f}%  worst {s['worst_abs_pct']:5.1f}%")
        for sub, t in report["summary"]["by_tp"].get(phase, {}).items():
            lines.append(f"      {sub:<22} n={t['n']:<3} MAPE {t['mape_pct']:5.1f}%  worst {t['worst_abs_pct']:5.1f}%")
    for reason in report["excluded"]:
        lines.append(f"  excluded: {reason}")
    return "\n".join(lines)


# ---------------------------------------------------------------- AIConfigurator reference (data, not a dependency)
REFERENCE_FILE = "aiconfigurator_vllm.csv"
REFERENCE_DIRS = (
    Path(__file__).resolve().parent.parent / "data" / "reference",
)


def reference_file(backend: str = "vllm") -> str:
    """The reference file of one AIConfigurator backend (vllm, sglang, trtllm)."""
    return f"aiconfigurator_{backend}.csv"


def reference_path(directory: Path | None = None, file: str = REFERENCE_FILE) -> Path:
    """An AIConfigurator reference CSV (`file`, default the vLLM backend's): `directory`, $PLANNER_REFERENCE,
    else data/reference/."""
    env = os.environ.get("PLANNER_REFERENCE")
    dirs = ([Path(directory)] if directory else []) + ([Path(env)] if env else []) + list(REFERENCE_DIRS)
    for d in dirs:
        if (d / file).exists():
            return d / file
    raise FileNotFoundError(f"{file} not found in {', '.join(str(d) for d in dirs)}; set PLANNER_REFERENCE")


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "y")


def reference_measurements(directory: Path | None = None, file: str = REFERENCE_FILE) -> list[dict]:
    """Rows of an AIConfigurator reference file (default the vLLM backend's): model and gpu are catalogue
    names."""
    out = []
    numbers = {"tp": int, "pp": int, "batch": int, "isl": int, "osl": int, "prefill_ms": float,
               "decode_step_ms": float, "tokens_per_s": float}
    for r in _read(reference_path(directory, file), ("gpu", "model", "fits"), numbers):
        def num(key: str) -> float:
            v = r.get(key, "")
            return float(v) if v not in ("", None) else math.nan

        out.append({
            "file": file, "source": r.get("source", ""), "backend": r.get("backend", ""),
            "backend_version": r.get("backend_version", ""), "system": r.get("system", ""),
            "gpu": r["gpu"], "model": r["model"], "tp": int(r["tp"]), "pp": int(r.get("pp") or 1),
            "batch": int(r["batch"]), "input_len": int(r["isl"]), "output_len": int(r["osl"]),
            "prefill_ms": num("prefill_ms"), "decode_step_ms": num("decode_step_ms"),
            "tokens_per_s": num("tokens_per_s"), "fits": _truthy(r.get("fits", "true")),
            "memory_gib": num("memory_gib"),
        })
    return out


def reference_rows(engine: EngineProfile, cat: Catalog | None = None, directory: Path | None = None,
                   rows: list[dict] | None = None) -> list[dict]:
    """Every reference configuration predicted with `engine` (static batch, as the reference): our
    prefill, decode step, tokens/s (computed even where memory does not fit, for the timing errors) and
    our memory verdict next to the reference's."""
    cat = cat or load_catalog()
    out = []
    for r in rows if rows is not None else reference_measurements(directory):
        m, g = cat.model(r["model"]), cat.gpu(r["gpu"])
        p = evaluate_layout(m, g, engine, r["tp"], r["pp"], r["input_len"], r["output_len"], batch=r["batch"],
                            check_memory=False)
        fits = evaluate_layout(m, g, engine, r["tp"], r["pp"], r["input_len"], r["output_len"],
                               batch=r["batch"])["feasible"] if p["feasible"] else False
        out.append({**r, "engine": engine.name, "pred_prefill_ms": p["prefill_ms"],
                    "pred_decode_step_ms": p["decode_step_ms"], "pred_tokens_per_s": p["tokens_per_s"],
                    "pred_fits": fits, "pred_memory_gb": p["memory_gb_per_gpu"], "bound": p["bound"],
                    "usd_per_hour": r["tp"] * r["pp"] * g.price_usd_per_hour})
    return out


def _stats(pairs: list[tuple[float, float]]) -> dict:
    pairs = [(p, m) for p, m in pairs if p == p and m == m and m > 0 and p > 0]
    if not pairs:
        return {"n": 0, "mape_pct": math.nan, "worst_ratio": math.nan, "median_ratio": math.nan}
    errs = [abs(p - m) / m * 100 for p, m in pairs]
    ratios = [p / m for p, m in pairs]
    return {"n": len(pairs), "mape_pct": sum(errs) / len(errs),
            "worst_ratio": max(max(ratios), 1 / min(ratios)), "median_ratio": statistics.median(ratios)}


def best_gpu_agreement(rows: list[dict]) -> dict:
    """Per (model, lengths, batch) group: the GPU type with the most tokens per dollar (best TP of each
    type, among configurations that fit) by the reference and by us; share of groups that agree."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["input_len"], r["output_len"], r["batch"])].append(r)
    agree, total, detail = 0, 0, []
    for key, rs in sorted(groups.items()):
        ref = [(r["tokens_per_s"] / r["usd_per_hour"], r["gpu"]) for r in rs if r["fits"] and r["tokens_per_s"] > 0]
        ours = [(r["pred_tokens_per_s"] / r["usd_per_hour"], r["gpu"]) for r in rs if r["pred_fits"]]
        if not ref:
            continue
        total += 1
        best_ref = max(ref)[1]
        best_ours = max(ours)[1] if ours else ""
        agree += best_ref == best_ours
        detail.append({"group": key, "reference": best_ref, "predicted": best_ours})
    return {"groups": total, "agree": agree, "share": agree / total if total else math.nan, "detail": detail}


def reference_summary(rows: list[dict]) -> dict:
    """MAPE and worst ratio of prefill, decode step and tokens/s on the configurations the reference
    says fit; memory verdicts that agree; best-GPU-per-dollar agreement."""
    ok = [r for r in rows if r["fits"]]
    out = {
        "prefill": _stats([(r["pred_prefill_ms"], r["prefill_ms"]) for r in ok]),
        "decode": _stats([(r["pred_decode_step_ms"], r["decode_step_ms"]) for r in ok]),
        "throughput": _stats([(r["pred_tokens_per_s"], r["tokens_per_s"]) for r in ok]),
    }
    same = sum(r["fits"] == r["pred_fits"] for r in rows)
    out["memory"] = {"n": len(rows), "agree": same, "share": same / len(rows) if rows else math.nan,
                     "wrongly_infeasible": sum(r["fits"] and not r["pred_fits"] for r in rows),
                     "wrongly_feasible": sum(r["pred_fits"] and not r["fits"] for r in rows)}
    out["best_gpu"] = {k: v for k, v in best_gpu_agreement(rows).items() if k != "detail"}
    return out
