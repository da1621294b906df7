"""How sure a prediction is: a range for a plan's tokens/s, TTFT and TPOT from the engine profile's
validation errors on the measured data closest to the plan, and the extrapolations it rests on.

Error points. Each held-out validation row of the profile (planner.validation: the shared measurement
files, the AIConfigurator reference, published measurements; rows the profile was fitted on and rows the
model calls infeasible are left out) gives
one point: the configuration (GPU, TP, stages, nodes, lengths, precision), the quantity and the ratio
measured / predicted. A profile `calibrate` wrote brings its own points instead: the leave-one-out
predictions of its calibration.json (`points_from_calibration`). A profile with no points gets no range.

Closest data. For each quantity (tokens/s from `throughput`; TTFT from `ttft`, else `prefill`; TPOT from
`tpot`, else `decode_step`) and each distinct (GPU type, TP) among the plan's stages, the points are
taken at the first of these levels that has at least MIN_POINTS of them:
  1. same GPU, same TP, same stage count, same node count ("same layout");
  2. same GPU, same TP ("same GPU and TP");
  3. same GPU ("same GPU");
  4. any GPU ("any layout": every point of the profile for that quantity).
Range. Over the chosen points, the ratios' 10th and 90th percentiles (linear interpolation between
sorted values, numpy's default), or their minimum and maximum when there are fewer than 10 points.
The figure's low and high ends are the prediction times the low and high ratio. A plan with several
(GPU, TP) pairs takes the lowest low ratio and the highest high ratio among them (the widest range).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .domain import EngineProfile

log = logging.getLogger(__name__)

MIN_POINTS = 3
PERCENTILE_MIN_POINTS = 10
LEVELS = ("same layout", "same GPU and TP", "same GPU", "any layout")
# our figure -> the validation quantities that measure it, first choice first
FIGURES = {"tokens_per_s": ("throughput",), "ttft_ms": ("ttft", "prefill"), "tpot_ms": ("tpot", "decode_step")}


@dataclass(frozen=True)
class Point:
    """One measured figure against the profile's prediction of it."""

    gpu: str
    tp: int
    pp: int
    nodes: int
    context_tokens: int  # input + output
    precision: str  # "" = the model's 16-bit default
    quantity: str  # throughput, ttft, prefill, tpot, decode_step
    ratio: float  # measured / predicted


@dataclass(frozen=True)
class Layout:
    """What of a plan the closeness is judged on."""

    gpus: tuple[tuple[str, int], ...]  # distinct (GPU SKU, TP) of its stages
    stages: int
    nodes: int
    context_tokens: int
    precision: str


def _norm_precision(p: str | None) -> str:
    p = (p or "").lower().split(" ")[0]
    return "" if p in ("", "bf16", "fp16") else p


def points_from_rows(rows: list[dict], profile: str) -> list[Point]:
    """Points of `profile` from validation rows (planner.validation's row dicts)."""
    out = []
    for r in rows:
        ratio = r.get("ratio")
        if r.get("profile") != profile or r.get("excluded") or not (ratio and ratio == ratio and ratio > 0):
            continue
        if str(r.get("group", "")).endswith("fit"):  # rows the profile was fitted on understate its error
            continue
        out.append(Point(r["gpu"], int(r.get("tp") or 1), int(r.get("pp") or 1), int(r.get("nodes") or 1),
                         int((r.get("input_len") or 0) + (r.get("output_len") or 0)),
                         _norm_precision(r.get("precision")), r["quantity"], 1.0 / ratio))
    return out


CALIBRATE_QUANTITIES = {"total_tokens_per_s": "throughput", "output_tokens_per_s": "throughput",
                        "prefill_ms": "prefill", "decode_step_ms": "decode_step", "ttft_ms": "ttft", "tpot_ms": "tpot"}


def points_from_calibration(report: dict) -> list[Point]:
    """Points from `calibrate`'s calibration.json: each run's figure left out of the fit (leave-one-out),
    else (no leave-one-out) after the fit."""
    out = []
    for r in report.get("rows", []):
        pred = r.get("predicted_leave_one_out") or r.get("predicted_after")
        if not pred or pred != pred or pred <= 0 or r["quantity"] not in CALIBRATE_QUANTITIES:
            continue
        out.append(Point(r["gpu"], int(r["tp"]), int(r["pp"]), int(r["nodes"]),
                         int(r["input_len"]) + int(r["output_len"]), _norm_precision(r.get("precision")),
                         CALIBRATE_QUANTITIES[r["quantity"]], r["measured"] / pred))
    return out


@lru_cache(maxsize=1)
def _catalogue_rows() -> tuple[dict, ...]:
    from .validation import validation_report

    return tuple(validation_report()["rows"])


def catalogue_points(profile: EngineProfile) -> list[Point]:
    """The validation points of a catalogue profile; none when `profile` differs from the catalogue's
    profile of that name (a calibrated or edited profile: its own points must be given)."""
    from .catalog import load_catalog

    cat = load_catalog()
    if cat.engines.get(profile.name) != profile:
        return []
    return list(_catalogue_points(profile.name))


@lru_cache(maxsize=None)
def _catalogue_points(name: str) -> tuple[Point, ...]:
    # every rerun of the app's page asks for the plan's range: converting ~7,000 rows each time cost ~60 ms
    return tuple(points_from_rows(list(_catalogue_rows()), name))


def ratio_range(ratios: list[float]) -> tuple[float, float]:
    """(low, high) ratio: 10th and 90th percentile, or min and max below PERCENTILE_MIN_POINTS points."""
    if len(ratios) < PERCENTILE_MIN_POINTS:
        return min(ratios), max(ratios)
    lo, hi = np.percentile(np.array(ratios), [10, 90])
    return float(lo), float(hi)


def closest(points: list[Point], quantities: tuple[str, ...], gpu: str, tp: int, stages: int, nodes: int
            ) -> tuple[str, list[Point]]:
    """(level, points) at the first level with at least MIN_POINTS points (module docstring)."""
    for q in quantities:
        pts = [p for p in points if p.quantity == q]
        if not pts:
            continue
        tests = (lambda p: p.gpu == gpu and p.tp == tp and p.pp == stages and p.nodes == nodes,
                 lambda p: p.gpu == gpu and p.tp == tp,
                 lambda p: p.gpu == gpu,
                 lambda p: True)
        for level, test in zip(LEVELS, tests):
            sel = [p for p in pts if test(p)]
            if len(sel) >= MIN_POINTS:
                return level, sel
    return "", []


def figure_factors(points: list[Point], layout: Layout) -> dict[str, dict]:
    """Per figure: low and high ratio, and what they rest on (level, points, GPU/TP pairs)."""
    out = {}
    for figure, quantities in FIGURES.items():
        lows, highs, basis = [], [], []
        for gpu, tp in layout.gpus:
            level, sel = closest(points, quantities, gpu, tp, layout.stages, layout.nodes)
            if not sel:
                continue
            lo, hi = ratio_range([p.ratio for p in sel])
            lows.append(lo)
            highs.append(hi)
            basis.append({"gpu": gpu, "tp": tp, "level": level, "points": len(sel), "quantity": sel[0].quantity,
                          "low_factor": lo, "high_factor": hi})
        if lows:
            out[figure] = {"low_factor": min(lows), "high_factor": max(highs), "basis": basis}
    return out


def extrapolations(points: list[Point], layout: Layout, profile: EngineProfile, gpu_arch: dict[str, str]) -> list[str]:
    """What the plan asks of the profile that no measurement behind it covers, in plain words."""
    name = profile.name
    if not points:
        return [f"The engine profile '{name}' has no measured data behind it: its figures are the model's "
                f"alone, with no range."]
    out = []
    measured_gpus = {p.gpu for p in points}
    for gpu, tp in layout.gpus:
        if gpu not in measured_gpus:
            out.append(f"{gpu}: no measured run of profile '{name}' on this GPU type; its speed comes from the "
                       f"datasheet and efficiencies carried over ({_carried(profile, gpu, gpu_arch)}).")
        else:
            tps = sorted({p.tp for p in points if p.gpu == gpu})
            if tp not in tps:
                out.append(f"{gpu} with tensor parallelism {tp}: measured only at TP {', '.join(map(str, tps))}.")
    max_nodes = max(p.nodes for p in points)
    if layout.nodes > max_nodes:
        out.append(f"The plan's pipeline spans {layout.nodes} nodes; no measured run behind profile '{name}' "
                   f"spans more than {max_nodes}: the hand-offs between nodes are modelled, not measured.")
    max_pp = max(p.pp for p in points)
    if layout.stages > max_pp:
        out.append(f"{layout.stages} pipeline stages: the deepest measured pipeline has {max_pp}.")
    max_ctx = max(p.context_tokens for p in points)
    if layout.context_tokens > max_ctx:
        out.append(f"Requests of {layout.context_tokens:,} tokens (prompt + output) are longer than any measured "
                   f"run ({max_ctx:,} at most).")
    precisions = {p.precision for p in points}
    if layout.precision not in precisions:
        what = layout.precision or "16-bit (bf16/fp16)"
        out.append(f"Precision {what}: no measured run at this precision behind profile '{name}'.")
    return out


def _carried(profile: EngineProfile, gpu: str, gpu_arch: dict[str, str]) -> str:
    keys = {g.gpu.casefold(): g for g in profile.gpu_efficiencies}
    for key in (gpu.casefold(), f"arch:{gpu_arch.get(gpu, '')}".casefold()):
        if key in keys:
            return keys[key].source or key
    return f"the profile's default efficiencies, {profile.source}"


def plan_layout(plan, scenario) -> Layout:
    """The plan's layout as closeness judges it (plan: planner.plan.Plan; scenario: its Scenario)."""
    gpus = tuple(dict.fromkeys((s.sku, s.tp) for s in plan.stages))
    nodes = len({s.node for s in plan.stages if s.node}) or 1
    w = scenario.workload
    return Layout(gpus, len(plan.stages), nodes, w.input_tokens + w.output_tokens,
                  _norm_precision(getattr(scenario.model, "precision", "")))


def prediction_range(figures: dict[str, float], layout: Layout, profile: EngineProfile, points: list[Point],
                     gpu_arch: dict[str, str] | None = None) -> dict:
    """The summary keys: `<figure>_low`, `<figure>_high` for tokens_per_s, ttft_ms, tpot_ms (None where no
    point covers the figure), `prediction_range` (what each rests on) and `extrapolations`."""
    factors = figure_factors(points, layout)
    out: dict = {}
    for figure in FIGURES:
        value = figures.get(figure)
        f = factors.get(figure)
        ok = f is not None and value is not None and math.isfinite(value)
        out[f"{figure}_low"] = value * f["low_factor"] if ok else None
        out[f"{figure}_high"] = value * f["high_factor"] if ok else None
    out["prediction_range"] = {"profile": profile.name, "points": len(points), "figures": factors,
                               "method": "ratios measured/predicted of the closest validation points: 10th-90th "
                                         "percentile (min-max below 10 points); see planner/uncertainty.py"}
    out["extrapolations"] = extrapolations(points, layout, profile, gpu_arch or {})
    return out


def plan_range(plan, scenario, points: list[Point] | None = None, tokens_per_s: float | None = None) -> dict:
    """prediction_range for a solved plan of `scenario` (points: the profile's catalogue validation points
    unless given; `tokens_per_s`: the plan's nominal throughput when its own is not, as under --pessimistic)."""
    profile = scenario.engine
    pts = catalogue_points(profile) if points is None else points
    figures = {"tokens_per_s": plan.tokens_per_s if tokens_per_s is None else tokens_per_s,
               "ttft_ms": plan.ttft_s * 1e3, "tpot_ms": plan.tpot_s * 1e3}
    arch = {e.spec.sku: e.spec.arch for e in scenario.pool.entries}
    return prediction_range(figures, plan_layout(plan, scenario), profile, pts, arch)
