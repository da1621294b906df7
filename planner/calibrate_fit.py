"""Fit an engine profile's identifiable parameters to measured runs (the fitter behind `calibrate`).

Same method as benchmarks/fit_engines.py (bounded least squares on log(predicted / measured) with
scipy.optimize.least_squares, predictions from planner.evaluate.evaluate_layout, the code the planner
uses), but on whatever runs a user brings, so it first decides which parameters those runs can pin down:

* A parameter is identifiable only if the runs vary what it multiplies: its sensitivity, the change of
  log(prediction) for a change of 10% of the parameter's scale (its value, or a typical value when it
  is 0), must reach MIN_SENSITIVITY (0.2% of a prediction) on some measured figure. A parameter whose
  term never shows (no TP > 1 on NVLink, no multi-node run, launches hidden under GPU work, ...) is kept
  at the base profile's value, with that reason.
* Of the sensitive ones, a parameter whose sensitivity column is (nearly) a combination of those already
  chosen (the part of it outside their span below MIN_INDEPENDENT of its length) cannot be told apart
  from them and is kept; parameters are chosen strongest first.
* At most (measured figures - 1) parameters are fitted; the weakest beyond that are kept.
The selection is made at the base profile, refitted, and made again at the fitted point (the max() in a
step makes sensitivities depend on where the parameters are) until it stops changing (3 rounds at most).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from .catalog import Catalog
from .domain import EngineProfile, GpuEfficiency
from .evaluate import evaluate_layout

log = logging.getLogger(__name__)

# measured column -> key of evaluate_layout's result
QUANTITIES = {"total_tokens_per_s": "tokens_per_s", "output_tokens_per_s": "output_tokens_per_s",
              "prefill_ms": "prefill_ms", "decode_step_ms": "decode_step_ms", "ttft_ms": "ttft_ms",
              "tpot_ms": "tpot_ms"}
# shared parameter -> (lower, upper, typical scale, the term it multiplies, what runs must vary to show it)
SHARED = {
    "nvlink_efficiency": (0.01, 1.0, 0.5, "the NVLink all-reduce", "TP > 1 on an NVLink GPU, at several batch sizes"),
    "nvlink_latency_us": (0.0, 5000.0, 10.0, "the NVLink all-reduce's latency per call",
                          "TP > 1 on an NVLink GPU, with small batches"),
    "pcie_efficiency": (0.01, 1.0, 0.3, "the PCIe all-reduce", "TP > 1 on a PCIe GPU, at several batch sizes"),
    "pcie_latency_us": (0.0, 5000.0, 20.0, "the PCIe all-reduce's latency per call",
                        "TP > 1 on a PCIe GPU, with small batches"),
    "pcie_root_gpus": (1.0, 8.0, 4.0, "the PCIe root's limit on the all-reduce", "several TP degrees on a PCIe GPU"),
    "network_efficiency": (0.01, 1.0, 0.7, "hand-offs between nodes", "pipeline stages on several nodes"),
    "network_latency_us": (0.0, 1e5, 100.0, "the latency of hand-offs between nodes", "pipeline stages on several nodes"),
    "launch_us_per_layer": (0.0, 5000.0, 20.0, "kernel launches (where they outlast the GPU's work)",
                            "small batches of a small model"),
    "scheduler_ms": (0.0, 200.0, 1.0, "the engine's fixed time per step", "small batches (short decode steps)"),
    "scheduler_us_per_seq": (0.0, 2000.0, 20.0, "the engine's time per sequence per step",
                             "the batch size or concurrency"),
}
PER_GPU = {"compute": (0.01, 1.0, 0.6, "compute-bound work on {gpu}", "prompt lengths or batch sizes on {gpu}"),
           "hbm": (0.01, 1.0, 0.8, "memory-bound work (decode steps) on {gpu}", "batch sizes or contexts on {gpu}")}
STEP = 0.1  # relative step of the sensitivity (10% of the parameter's scale)
MIN_SENSITIVITY = 0.002
MIN_INDEPENDENT = 0.1
FAILED = 5.0  # log error of a run the profile cannot predict (pushes the fit away from there)


@dataclass(frozen=True)
class Run:
    """One measured run: where it was read, its layout (evaluate_layout's arguments) and its figures."""

    source: str  # "file, row N"
    model: str
    gpu: str
    tp: int
    pp: int
    nodes: int
    inter_node_gbps: float
    input_len: int
    output_len: int
    batch: int | None
    concurrency: int | None
    precision: str
    measured: tuple[tuple[str, float], ...]  # (column in QUANTITIES, value)


@dataclass(frozen=True)
class Param:
    name: str  # shared field, or "<GPU>:compute" / "<GPU>:hbm"
    lower: float
    upper: float
    scale: float
    multiplies: str  # the term of a step it multiplies
    varies: str  # what runs must vary for it to show


def candidate_params(base: EngineProfile, runs: list[Run], cat: Catalog) -> list[Param]:
    out = [Param(n, lo, hi, max(getattr(base, n), typ), term, vary) for n, (lo, hi, typ, term, vary) in SHARED.items()]
    for sku in sorted({cat.gpu(r.gpu).sku for r in runs}):
        ce, he, _ = base.efficiencies(cat.gpu(sku))
        for kind, value in (("compute", ce), ("hbm", he)):
            lo, hi, typ, term, vary = PER_GPU[kind]
            out.append(Param(f"{sku}:{kind}", lo, hi, max(value, typ), term.format(gpu=sku), vary.format(gpu=sku)))
    return out


def values_of(profile: EngineProfile, params: list[Param], cat: Catalog) -> np.ndarray:
    vals = []
    for p in params:
        if ":" in p.name:
            sku, kind = p.name.split(":")
            ce, he, _ = profile.efficiencies(cat.gpu(sku))
            vals.append(ce if kind == "compute" else he)
        else:
            vals.append(float(getattr(profile, p.name)))
    return np.array(vals, dtype=float)


def with_values(base: EngineProfile, params: list[Param], x, cat: Catalog, source: str | None = None
                ) -> EngineProfile:
    """`base` with the parameters set to `x`; a GPU's fitted efficiencies become (or replace) its own
    row (the one not fitted keeps what the base profile uses on that GPU: its row, its architecture's
    row or the default)."""
    shared = {p.name: float(v) for p, v in zip(params, x) if ":" not in p.name}
    effs = {g.gpu: g for g in base.gpu_efficiencies}
    per_gpu: dict[str, dict[str, float]] = {}
    for p, v in zip(params, x):
        if ":" in p.name:
            sku, kind = p.name.split(":")
            per_gpu.setdefault(sku, {})[kind] = float(v)
    for sku, kinds in per_gpu.items():
        old = effs.get(sku)
        ce0, he0, _ = base.efficiencies(cat.gpu(sku))
        ce, he = kinds.get("compute", ce0), kinds.get("hbm", he0)
        effs[sku] = GpuEfficiency(sku, ce, he, source if source is not None else (old.source if old else ""))
    return replace(base, gpu_efficiencies=tuple(effs.values()), **shared)


def predict(profile: EngineProfile, run: Run, cat: Catalog) -> dict:
    """evaluate_layout's result for the run (memory not checked: the run did fit, it was measured)."""
    return evaluate_layout(cat.model(run.model), cat.gpu(run.gpu), profile, run.tp, run.pp, run.input_len,
                           run.output_len, batch=run.batch, concurrency=run.concurrency, nodes=run.nodes,
                           inter_node_gb_per_s=run.inter_node_gbps / 8, precision=run.precision or None,
                           check_memory=False)


def predicted_figures(profile: EngineProfile, runs: list[Run], cat: Catalog) -> list[list[float]]:
    """Per run, the predicted value of each of its measured figures (nan where it cannot be predicted)."""
    out = []
    for run in runs:
        r = predict(profile, run, cat)
        out.append([float(r[QUANTITIES[q]]) if r["feasible"] else math.nan for q, _ in run.measured])
    return out


def log_errors(profile: EngineProfile, runs: list[Run], cat: Catalog) -> np.ndarray:
    errs = []
    for run, preds in zip(runs, predicted_figures(profile, runs, cat)):
        for (_, meas), pred in zip(run.measured, preds):
            errs.append(math.log(pred / meas) if pred == pred and pred > 0 else FAILED)
    return np.array(errs)


def sensitivities(base: EngineProfile, params: list[Param], runs: list[Run], cat: Catalog) -> np.ndarray:
    """Column j: change of each log prediction for a step of STEP x scale in parameter j (divided by STEP)."""
    x0 = values_of(base, params, cat)
    f0 = log_errors(base, runs, cat)
    cols = []
    for j, p in enumerate(params):
        h = STEP * max(p.scale, x0[j])
        x = x0.copy()
        x[j] = x0[j] + h if x0[j] + h <= p.upper else x0[j] - h
        sign = 1.0 if x[j] > x0[j] else -1.0
        f = log_errors(with_values(base, params, x, cat), runs, cat)
        cols.append(sign * (f - f0) / STEP)
    return np.array(cols).T


@dataclass(frozen=True)
class Selection:
    fitted: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]  # (parameter, why it is kept)


def select(params: list[Param], J: np.ndarray, n_figures: int) -> Selection:
    """Which parameters the runs identify (see the module docstring)."""
    strength = np.abs(J).max(axis=0) if J.size else np.zeros(len(params))
    order = sorted(range(len(params)), key=lambda j: -float(np.linalg.norm(J[:, j])))
    chosen: list[int] = []
    kept: list[tuple[str, str]] = []
    for j in order:
        p = params[j]
        if strength[j] < MIN_SENSITIVITY:
            kept.append((p.name, f"not identifiable: no run shows {p.multiplies} (a 10% change moves no "
                                 f"prediction by {MIN_SENSITIVITY:.1%}); it needs runs with {p.varies}"))
            continue
        col = J[:, j]
        if chosen:
            basis = J[:, chosen]
            coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
            resid = col - basis @ coef
            if np.linalg.norm(resid) < MIN_INDEPENDENT * np.linalg.norm(col):
                twin = max(chosen, key=lambda k: abs(float(np.dot(J[:, k], col)))
                           / (np.linalg.norm(J[:, k]) * np.linalg.norm(col) + 1e-30))
                kept.append((p.name, f"not identifiable: in these runs {p.multiplies} cannot be told apart from "
                                     f"{params[twin].name} ({params[twin].multiplies}); vary {p.varies} to separate them"))
                continue
        if len(chosen) >= n_figures - 1:
            kept.append((p.name, f"too few measurements: {n_figures} measured figures fit at most "
                                 f"{max(n_figures - 1, 0)} parameters (one is left to check the fit)"))
            continue
        chosen.append(j)
    return Selection(tuple(params[j].name for j in chosen), tuple(kept))


@dataclass(frozen=True)
class FitResult:
    profile: EngineProfile
    selection: Selection
    before: dict[str, float]  # fitted parameter -> base value
    after: dict[str, float]
    cost: float
    nfev: int


def _solve(base: EngineProfile, params: list[Param], runs: list[Run], cat: Catalog, x0: np.ndarray,
           max_nfev: int = 200):
    lower = np.array([p.lower for p in params])
    upper = np.array([p.upper for p in params])
    x0 = np.clip(x0, lower, upper)
    scale = np.array([p.scale for p in params])
    return least_squares(lambda x: log_errors(with_values(base, params, x, cat), runs, cat), x0,
                         bounds=(lower, upper), x_scale=scale, diff_step=1e-4, max_nfev=max_nfev)


def fit(base: EngineProfile, runs: list[Run], cat: Catalog, rounds: int = 3) -> FitResult:
    """Choose the identifiable parameters and fit them (see the module docstring)."""
    params = candidate_params(base, runs, cat)
    by_name = {p.name: p for p in params}
    n_figures = sum(len(r.measured) for r in runs)
    current = base
    selection = None
    res = None
    for _ in range(rounds):
        J = sensitivities(current, params, runs, cat)
        new = select(params, J, n_figures)
        if selection is not None and set(new.fitted) == set(selection.fitted):
            break
        selection = new
        if not selection.fitted:
            break
        chosen = [by_name[n] for n in selection.fitted]
        res = _solve(base, chosen, runs, cat, values_of(current, chosen, cat))
        current = with_values(base, chosen, res.x, cat)
    chosen = [by_name[n] for n in selection.fitted]
    before = dict(zip(selection.fitted, map(float, values_of(base, chosen, cat))))
    after = dict(zip(selection.fitted, map(float, values_of(current, chosen, cat))))
    return FitResult(current, selection, before, after, float(res.cost) if res is not None else 0.0,
                     int(res.nfev) if res is not None else 0)


def leave_one_out(base: EngineProfile, result: FitResult, runs: list[Run], cat: Catalog) -> list[list[float]]:
    """Per run, its figures predicted by the same parameters refitted without it (warm-started at the
    full fit; the set of parameters is the full fit's). Runs whose removal leaves fewer figures than
    parameters get nan."""
    params = {p.name: p for p in candidate_params(base, runs, cat)}
    chosen = [params[n] for n in result.selection.fitted]
    x_full = values_of(result.profile, chosen, cat)
    out = []
    for i, run in enumerate(runs):
        rest = runs[:i] + runs[i + 1:]
        if not chosen or sum(len(r.measured) for r in rest) < len(chosen):
            out.append([math.nan] * len(run.measured))
            continue
        res = _solve(base, chosen, rest, cat, x_full, max_nfev=50)
        out.append(predicted_figures(with_values(base, chosen, res.x, cat), [run], cat)[0])
    return out
