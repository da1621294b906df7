"""Validation across sources: how far the performance model is from each independent source, per source,
per engine profile and per measured quantity.

Sources (each optional: a missing file is reported in `notes`, not an error):
* the shared measurement files (`planner.calibration`): DGX-A100 static batches (decode step, prefill) and
  vLLM on L40S (throughput), each split into the rows a profile may be fitted on (`fit`) and the rows kept
  out of the fit (`held-out`, see `HELD_OUT`; `held_out_flags(rows)` and `reference_held_out` are what a fitting script
  must skip);
* the AIConfigurator reference (`data/reference/aiconfigurator_vllm.csv`, one row per configuration:
  prefill, decode step, TTFT, TPOT, throughput, whether it fits, memory) for the stacks it models; plus two
  decision metrics: the share of (model, lengths, batch) groups in which the GPU type with the most tokens
  per dollar (catalogue prices) is the same, and the share of configurations whose memory feasibility
  agrees;
* published measurements (`data/published/measurements.csv`, one figure per row with its source, date,
  stack and version).

Figures per (source, group, profile, quantity): n, MAPE (%), worst ratio (max over rows of
max(predicted/measured, measured/predicted)) and `no_prediction` (rows that ran but that the model calls
infeasible; they are not in the MAPE, and a wrongly infeasible configuration is a failure in itself).
Every prediction goes through `planner.evaluate.evaluate_layout` (via `evaluate_csv.evaluate_args`), so
the figures follow whatever the performance model predicts.
"""
from __future__ import annotations

import csv
import logging
import math
import os
from collections import defaultdict
from pathlib import Path

from .calibration import DGX_FILE, FILE_ENGINES, VLLM_FILE, comparison_rows
from .catalog import Catalog, load_catalog
from .errors import InputError, Problem
from .evaluate_csv import LayoutArgs, evaluate_args, precision_modelled

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
AIC_DIR = ROOT / "data" / "reference"
AIC_FILE = AIC_DIR / "aiconfigurator_vllm.csv"  # one file per backend: aiconfigurator_<backend>.csv
PUBLISHED_FILE = ROOT / "data" / "published" / "measurements.csv"

SOURCE_DGX = "DGX-A100 (splitwise_a100.csv)"
SOURCE_VLLM = "vLLM on L40S (vllm_l40s.csv)"
SOURCE_AIC = "AIConfigurator"
SOURCE_PUBLISHED = "published"
SOURCE_OF_FILE = {DGX_FILE: SOURCE_DGX, VLLM_FILE: SOURCE_VLLM}
QUANTITIES = ("decode_step", "prefill", "ttft", "tpot", "throughput", "latency")
UNITS = {"decode_step": "ms", "prefill": "ms", "ttft": "ms", "tpot": "ms", "throughput": "tokens/s",
         "latency": "ms"}
PHASE_QUANTITY = {"decode": "decode_step", "prefill": "prefill", "throughput": "throughput"}

# Which rows a profile is fitted on and which are held out (the splits of benchmarks/fit_engines.py on the
# performance model v2 branch): in each shared file the configurations are numbered in the order
# planner.calibration lists them (both phases of a DGX configuration share a number), even numbers are
# fitted, odd ones held out; on the AIConfigurator reference the `vllm`, `sglang` and `trtllm` profiles are
# each fitted on their backend's batches 1, 4, 16, 64 and held out on 2, 8, 32, 128.
HELD_OUT = {
    DGX_FILE: "the odd-numbered configurations (fit on the even ones)",
    VLLM_FILE: "the odd-numbered rows (fit on the even ones)",
    "AIConfigurator vllm": "batches 2, 8, 32, 128 (fit on 1, 4, 16, 64)",
    "AIConfigurator sglang": "batches 2, 8, 32, 128 (fit on 1, 4, 16, 64)",
    "AIConfigurator trtllm": "batches 2, 8, 32, 128 (fit on 1, 4, 16, 64)",
}
# backend -> the batches its profile is fitted on (benchmarks/fit_engines.py fits each backend's profile on
# its own reference file with the same split)
REFERENCE_FIT_BATCHES = {"vllm": (1, 4, 16, 64), "sglang": (1, 4, 16, 64), "trtllm": (1, 4, 16, 64)}
# AIConfigurator system names -> catalogue GPUs; backends -> engine profiles
AIC_SYSTEMS = {"h100_sxm": "H100-SXM", "h200_sxm": "H200", "a100_sxm": "A100-80GB-SXM", "l40s": "L40S"}
AIC_BACKEND_PROFILES = {"vllm": "vllm", "sglang": "sglang", "trtllm": "trtllm"}
# the model's default precision: rows at these precisions are comparable even before precision is modelled
DEFAULT_PRECISIONS = ("", "fp16", "bf16")
PUBLISHED_COLUMNS = ("source_url", "citation", "published", "stack", "stack_version", "profile", "precision", "gpu",
                     "model", "tp", "pp", "batch", "concurrency", "input_len", "output_len", "quantity", "value",
                     "unit", "notes")
PUBLISHED_QUANTITIES = {"output_tokens_per_s": "throughput", "tokens_per_s": "throughput", "tpot_ms": "tpot",
                        "ttft_ms": "ttft", "decode_step_ms": "decode_step", "prefill_ms": "prefill",
                        "latency_ms": "latency"}


def config_index(rows: list[dict]) -> list[int]:
    """The number of each `planner.calibration.comparison_rows` row's configuration within its file, in the
    order the rows are listed (both phases of a configuration share it)."""
    keys: dict[tuple, int] = {}
    out = []
    for r in rows:
        key = (r["file"], r["model"], r["tp"], r["pp"], r["batch"], r["input_len"], r["output_len"])
        out.append(keys.setdefault(key, sum(1 for k in keys if k[0] == r["file"])))
    return out


def held_out_flags(rows: list[dict]) -> list[bool]:
    """Per comparison row of the shared files: whether it is held out of the fit (odd configuration number)."""
    return [i % 2 == 1 for i in config_index(rows)]


def reference_held_out(backend: str, batch: int) -> bool | None:
    """Whether a reference configuration is held out of its backend's profile fit (None: the profile is not
    fitted on the reference at all)."""
    fit = REFERENCE_FIT_BATCHES.get(backend)
    return None if fit is None else batch not in fit


# ---------------------------------------------------------------- predictions of one configuration
def predicted(result: dict, quantity: str, output_len: int, per_output: bool = False) -> float:
    """The model's figure for `quantity` from an evaluate_layout result (NaN when the layout does not fit).

    TTFT and TPOT: the result's own `ttft_ms`/`tpot_ms` when the model reports them, else the prefill of
    the batch and one decode step; latency: TTFT + (output - 1) x TPOT; throughput: tokens/s (output
    tokens/s with `per_output`)."""
    if not result.get("feasible"):
        return math.nan
    ttft = result.get("ttft_ms", result["prefill_ms"])
    tpot = result.get("tpot_ms", result["decode_step_ms"])
    return {
        "decode_step": result["decode_step_ms"], "prefill": result["prefill_ms"], "ttft": ttft, "tpot": tpot,
        "latency": ttft + (output_len - 1) * tpot,
        "throughput": result["output_tokens_per_s"] if per_output else result["tokens_per_s"],
    }[quantity]


def _row(source: str, group: str, profile: str, quantity: str, measured: float, pred: float, config: dict,
         excluded: str = "", **extra) -> dict:
    ratio = pred / measured if pred == pred and measured > 0 and pred > 0 else math.nan
    return {"source": source, "group": group, "profile": profile, "quantity": quantity,
            "unit": UNITS[quantity], "measured": measured, "predicted": pred,
            "error_pct": (ratio - 1) * 100 if ratio == ratio else math.nan, "ratio": ratio,
            "excluded": excluded, **config, **extra}


# ---------------------------------------------------------------- (a) the shared measurement files
def measurement_rows(cat: Catalog, directory: Path | None = None) -> list[dict]:
    """The calibration comparison with the catalogue's profiles, one row per compared figure, split into
    fit and held-out rows."""
    engines = {f: cat.engine(n) for f, n in FILE_ENGINES.items() if n in cat.engines}
    out = []
    compared = comparison_rows(engines, cat, directory)
    for r, held in zip(compared, held_out_flags(compared)):
        group = "held-out" if held else "fit"
        config = {k: r[k] for k in ("model", "gpu", "tp", "pp", "batch", "concurrency", "input_len", "output_len")}
        out.append(_row(SOURCE_OF_FILE[r["file"]], group, r["engine"], PHASE_QUANTITY[r["phase"]], r["measured"],
                        r["predicted"], config, r["excluded"], precision=""))
    return out


# ---------------------------------------------------------------- (b) the AIConfigurator reference
def _aic_model(cat: Catalog, name: str) -> str | None:
    """'meta-llama/Meta-Llama-3.1-70B' -> 'llama-3-70b' (through the catalogue's aliases)."""
    base = name.split("/")[-1].strip().lower().replace("_", "-")
    for candidate in (base, base.removeprefix("meta-"), base.removesuffix("-instruct"),
                      base.removeprefix("meta-").removesuffix("-instruct")):
        hit = cat.resolve_model(candidate)
        if hit:
            return hit[0]
    return None


def _aic_gpu(cat: Catalog, row: dict) -> str | None:
    for name in (row.get("gpu", ""), AIC_SYSTEMS.get(row.get("system", "").strip().lower(), "")):
        hit = cat.resolve_gpu(name) if name else None
        if hit:
            return hit[0]
    return None


def _rel(path: Path) -> str:
    """A path as shown in notes: relative to the repository when inside it (stable across checkouts)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes", "y")


def _float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def aic_files(directory: Path = AIC_DIR) -> list[Path]:
    """The reference files, one per backend (vllm first)."""
    return sorted(Path(directory).glob("aiconfigurator_*.csv"), key=lambda p: (p.stem != "aiconfigurator_vllm", p.name))


def aic_rows(cat: Catalog, path: Path | list[Path] = AIC_FILE) -> tuple[list[dict], list[dict], list[str]]:
    """(compared figures, one record per configuration for the decision metrics, notes), over one reference
    file or several."""
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    notes: list[str] = []
    raw = []
    for p in paths:
        if not p.exists():
            notes.append(f"AIConfigurator reference not found ({_rel(p)}): not compared")
            continue
        with open(p, newline="", encoding="utf-8") as fh:
            raw += list(csv.DictReader(fh))
    rows, configs = [], []
    skipped: dict[str, int] = defaultdict(int)
    for r in raw:
        model, gpu = _aic_model(cat, r["model"]), _aic_gpu(cat, r)
        backend = r.get("backend", "").strip().lower()
        profile = AIC_BACKEND_PROFILES.get(backend, backend)
        if model is None or gpu is None:
            skipped[f"model {r['model']} or GPU {r.get('gpu') or r.get('system')} not in the catalogue"] += 1
            continue
        if profile not in cat.engines:
            skipped[f"no engine profile '{profile}' for backend {backend}"] += 1
            continue
        tp, pp, batch = int(r["tp"]), int(r.get("pp") or 1), int(r["batch"])
        isl, osl = int(r["isl"]), int(r["osl"])
        res = evaluate_args(cat, LayoutArgs(model, gpu, tp, isl, osl, pp=pp, batch=batch, engine=profile))
        fits = _truthy(r.get("fits", "true"))
        held = reference_held_out(backend, batch)
        group = f"{backend} " + ("reference" if held is None else "held-out" if held else "fit")
        config = {"model": model, "gpu": gpu, "tp": tp, "pp": pp, "batch": batch, "concurrency": None,
                  "input_len": isl, "output_len": osl}
        configs.append({**config, "profile": profile, "group": group, "backend": backend, "reference_fits": fits,
                        "predicted_fits": bool(res["feasible"]),
                        "reference_tokens_per_s": _float(r.get("tokens_per_s")),
                        "predicted_tokens_per_s": res["tokens_per_s"] if res["feasible"] else math.nan,
                        "usd_per_hour": tp * pp * cat.gpu(gpu).price_usd_per_hour,
                        "reference_memory_gib": _float(r.get("memory_gib")),
                        "predicted_memory_gb": res.get("memory_gb_per_gpu", math.nan)})
        if not fits:
            continue  # timings of a configuration that does not run are not compared
        for quantity, column in (("prefill", "prefill_ms"), ("decode_step", "decode_step_ms"), ("ttft", "ttft_ms"),
                                 ("tpot", "tpot_ms"), ("throughput", "tokens_per_s")):
            value = _float(r.get(column))
            if value == value and value > 0:
                rows.append(_row(SOURCE_AIC, group, profile, quantity, value, predicted(res, quantity, osl),
                                 config, precision="", backend_version=r.get("backend_version", "")))
    notes += [f"AIConfigurator: {n} row(s) skipped: {why}" for why, n in sorted(skipped.items())]
    return rows, configs, notes


def decisions_by_backend(configs: list[dict]) -> dict[str, dict]:
    """decision_metrics per reference backend (each judged with its own engine profile)."""
    backends = list(dict.fromkeys(c["backend"] for c in configs))
    return {b: decision_metrics([c for c in configs if c["backend"] == b]) for b in backends}


def decision_metrics(configs: list[dict]) -> dict:
    """Agreement with the reference on the two decisions the planner makes from the model.

    best_gpu: per (model, input, output, batch) group, the GPU type whose best configuration (over TP/PP)
    gives the most tokens per dollar: by the reference among the configurations it says fit, by the model
    among those the model says fit (what the planner would choose; no feasible configuration = no choice,
    a disagreement); groups where nothing fits by the reference are not counted. memory: the share of
    configurations where fits/does not fit agree. (The same definitions as planner.calibration's
    best_gpu_agreement on the performance model v2 branch.)"""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in configs:
        groups[(c["model"], c["input_len"], c["output_len"], c["batch"])].append(c)
    decided, same, disagreements = 0, 0, []
    for key, cs in sorted(groups.items()):
        ref = [(c["reference_tokens_per_s"] / c["usd_per_hour"], c["gpu"]) for c in cs
               if c["reference_fits"] and c["reference_tokens_per_s"] > 0]
        ours = [(c["predicted_tokens_per_s"] / c["usd_per_hour"], c["gpu"]) for c in cs if c["predicted_fits"]]
        if not ref:
            continue
        decided += 1
        ref_best, pred_best = max(ref)[1], (max(ours)[1] if ours else "")
        if ref_best == pred_best:
            same += 1
        else:
            disagreements.append({"model": key[0], "input_len": key[1], "output_len": key[2], "batch": key[3],
                                  "reference_best": ref_best, "predicted_best": pred_best})
    mem_n = len(configs)
    mem_same = sum(c["reference_fits"] == c["predicted_fits"] for c in configs)
    return {
        "best_gpu_groups": decided, "best_gpu_agree": same,
        "best_gpu_agree_pct": 100.0 * same / decided if decided else math.nan,
        "memory_configs": mem_n, "memory_agree": mem_same,
        "memory_agree_pct": 100.0 * mem_same / mem_n if mem_n else math.nan,
        "wrongly_infeasible": sum(c["reference_fits"] and not c["predicted_fits"] for c in configs),
        "wrongly_feasible": sum(not c["reference_fits"] and c["predicted_fits"] for c in configs),
        "best_gpu_disagreements": disagreements,
    }


# ---------------------------------------------------------------- (c) published measurements
def published_points(path: Path = PUBLISHED_FILE) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def published_rows(cat: Catalog, path: Path = PUBLISHED_FILE) -> tuple[list[dict], list[str]]:
    points = published_points(path)
    if not points:
        return [], [f"published measurements not found ({_rel(path)}): not compared"]
    rows, notes, fallback = [], [], set()
    modelled = precision_modelled()
    problems: list[Problem] = []
    for i, p in enumerate(points, start=2):
        try:
            row, wanted = _published_row(cat, p, i, modelled)
        except (KeyError, ValueError, AttributeError, InputError) as exc:
            detail = "; ".join(str(q.message) for q in exc.problems) if isinstance(exc, InputError) else repr(exc)
            problems.append(Problem(f"cannot compare this point: {detail}", _rel(path), i))
            continue
        if wanted != row["profile"]:
            fallback.add(wanted)
        rows.append(row)
    if problems:
        raise InputError(problems)
    for name in sorted(fallback):
        notes.append(f"published: no engine profile '{name}' in the catalogue yet; those points are predicted "
                     f"with 'vllm'")
    n_prec = sum(1 for r in rows if r["excluded"])
    if n_prec:
        notes.append(f"published: {n_prec} point(s) at fp8/int4 left out of the figures until precision is modelled")
    return rows, notes


def _published_row(cat: Catalog, p: dict, i: int, modelled: bool) -> tuple[dict, str]:
    """One published point compared: (row, the profile the point asked for)."""
    wanted = profile = p["profile"].strip() or "vllm"
    if profile not in cat.engines:
        profile = "vllm" if "vllm" in cat.engines else next(iter(cat.engines))
    quantity = PUBLISHED_QUANTITIES[p["quantity"].strip()]
    precision = p["precision"].strip().lower()
    batch = int(p["batch"]) if p["batch"].strip() else None
    conc = int(p["concurrency"]) if p["concurrency"].strip() else None
    out_len = int(p["output_len"])
    args = LayoutArgs(p["model"], p["gpu"], int(p["tp"]), int(p["input_len"]), out_len, pp=int(p["pp"] or 1),
                      batch=batch, concurrency=conc, engine=profile,
                      precision=precision if precision not in DEFAULT_PRECISIONS else "")
    res = evaluate_args(cat, args)
    excluded = ""
    if precision not in DEFAULT_PRECISIONS and not modelled:
        excluded = f"precision {precision} is not modelled yet"
    config = {"model": cat.model(p["model"]).name, "gpu": cat.gpu(p["gpu"]).sku, "tp": args.tp, "pp": args.pp,
              "batch": batch, "concurrency": res.get("concurrency") if batch is None else None,
              "input_len": args.input_len, "output_len": out_len}
    pred = predicted(res, quantity, out_len, per_output=p["quantity"].strip() == "output_tokens_per_s")
    row = _row(SOURCE_PUBLISHED, p["stack"].strip(), profile, quantity, float(p["value"]), pred, config, excluded,
               precision=precision, line=i, figure=p["quantity"].strip(), stack_version=p["stack_version"],
               citation=p["citation"], source_url=p["source_url"], published=p["published"])
    return row, wanted


# ---------------------------------------------------------------- summaries
def figures(rows: list[dict]) -> dict:
    """n, MAPE (%), worst ratio and rows without a prediction, over the non-excluded rows given."""
    used = [r for r in rows if not r["excluded"]]
    ok = [r for r in used if r["ratio"] == r["ratio"]]
    errs = [abs(r["predicted"] - r["measured"]) / r["measured"] * 100 for r in ok]
    return {"n": len(ok), "mape_pct": sum(errs) / len(errs) if errs else math.nan,
            "worst_ratio": max((max(r["ratio"], 1 / r["ratio"]) for r in ok), default=math.nan),
            "no_prediction": len(used) - len(ok)}


def summarize_sources(rows: list[dict]) -> list[dict]:
    """One record per (source, group, profile, quantity), plus the whole source ('all') per (source,
    profile, quantity) when it has more than one group."""
    keyed: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        keyed[(r["source"], r["group"], r["profile"], r["quantity"])].append(r)
        keyed[(r["source"], "all", r["profile"], r["quantity"])].append(r)
    groups_of: dict[tuple, set] = defaultdict(set)
    for r in rows:
        if not r["excluded"]:
            groups_of[(r["source"], r["profile"], r["quantity"])].add(r["group"])
    order = {s: i for i, s in enumerate((SOURCE_DGX, SOURCE_VLLM, SOURCE_AIC, SOURCE_PUBLISHED))}
    out = []
    for (source, group, profile, quantity), rs in keyed.items():
        if group == "all" and len(groups_of[(source, profile, quantity)]) < 2:
            continue
        f = figures(rs)
        if f["n"] == 0 and f["no_prediction"] == 0:
            continue  # only excluded rows
        out.append({"source": source, "group": group, "profile": profile, "quantity": quantity,
                    "unit": UNITS[quantity], **f})
    out.sort(key=lambda s: (order.get(s["source"], 9), s["profile"], s["group"] == "all", s["group"],
                            QUANTITIES.index(s["quantity"])))
    return out


def validation_report(cat: Catalog | None = None, directory: Path | None = None,
                      aic_path: Path | None = None, published_path: Path | None = None) -> dict:
    """All sources: compared rows, the figures per source/group/profile/quantity, the decision metrics
    against the reference, and notes on what was not compared."""
    cat = cat or load_catalog()
    notes = []
    try:
        rows = measurement_rows(cat, directory)
    except FileNotFoundError as exc:
        rows = []
        notes.append(f"shared measurement files: {exc}")
    if aic_path is None and os.environ.get("PLANNER_AIC_REFERENCE"):
        aic_path = Path(os.environ["PLANNER_AIC_REFERENCE"])
    aic, configs, aic_notes = aic_rows(cat, aic_path or aic_files() or [AIC_FILE])
    pub, pub_notes = published_rows(cat, published_path or PUBLISHED_FILE)
    rows += aic + pub
    notes += aic_notes + pub_notes
    return {
        "summary": summarize_sources(rows),
        "decisions": decisions_by_backend(configs),
        "held_out": {SOURCE_OF_FILE.get(k, k): v for k, v in HELD_OUT.items()},
        "profiles": {n: e.source for n, e in cat.engines.items()},
        "notes": notes,
        "rows": rows,
        "configs": configs,
    }


def _num(v: float, digits: int = 1) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def format_sources(report: dict) -> str:
    """The per-source table (and the decision metrics) as text."""
    head = ("source", "group", "profile", "quantity", "n", "MAPE %", "worst ratio", "no prediction")
    table = [head] + [(s["source"], s["group"], s["profile"], s["quantity"], str(s["n"]), _num(s["mape_pct"]),
                       _num(s["worst_ratio"], 2), str(s["no_prediction"])) for s in report["summary"]]
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    lines = ["Validation across sources (worst ratio = max over rows of max(predicted/measured, measured/predicted))",
             ""]
    for t in table:
        lines.append("  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))))
    for backend, d in (report.get("decisions") or {}).items():
        lines += ["", f"Against AIConfigurator ({backend}): the GPU type with the most tokens per dollar agrees in "
                      f"{d['best_gpu_agree']} of {d['best_gpu_groups']} groups ({_num(d['best_gpu_agree_pct'])} %); "
                      f"memory feasibility agrees in {d['memory_agree']} of {d['memory_configs']} configurations "
                      f"({_num(d['memory_agree_pct'])} %; wrongly infeasible {d['wrongly_infeasible']}, wrongly "
                      f"feasible {d['wrongly_feasible']})"]
    for source, rule in report["held_out"].items():
        lines.append(f"  held-out rows of {source}: {rule}")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
