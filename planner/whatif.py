"""What-if analyses over the exact planner: Pareto frontier rows, single-type baselines, quantization
loss, spot prices and availability caps, and scenario comparison.

The shared helpers, candidate cache and scenario transforms are in `whatif_base`, the scenario comparison
and spot what-if in `whatif_compare`; all are importable from here. Every function is pure (scenario in,
frozen rows out) and re-solves with `Planner(...).exact()`, so each figure is a proven optimum of a changed
scenario, never an extrapolation. `cancel` (an object with is_set(), e.g. a threading.Event) is handed to
every Planner: once set, the next MILP solve raises CancelledError. Price sensitivity lives in
`whatif_prices`. Nothing here edits a Scenario in place: the transforms return new ones.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from .candidates import QUANTIZATION_LEVELS, build_candidates, segment_sizes
from .domain import Scenario
from .errors import InfeasibleError, InputError, Problem
from .plan import Plan, Result
from .search import Planner
from .whatif_base import (  # noqa: F401  (the what-if vocabulary is imported from planner.whatif)
    CANDIDATE_CACHE_SIZE, HEADLINE_FIGURES, REL_TOL, Headline, _check_types, candidates_for, derive_candidates,
    effective_spot_price, headline_row, layout, pct_change, planner_for, proof, restrict_pool, same, signature,
    with_caps, with_prices, with_spot)
from .whatif_compare import (  # noqa: F401
    Comparison, Difference, SpotComparison, compare_scenario_files, compare_scenarios, scenario_differences,
    spot_comparison)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ 1. Pareto frontier
@dataclass(frozen=True)
class FrontierPoint:
    cost_usd_per_hour: float
    tokens_per_s: float
    usd_per_million_tokens: float
    stages: int
    gpus: int
    gpus_by_type: tuple[tuple[str, int], ...]
    concurrency: int
    layout: str
    min_usd_per_token: bool  # the minimum-$/token point of the frontier (the exact optimum)
    grid_budgets_usd_per_hour: tuple[float, ...]  # enumeration budgets whose grid plan is this point
    plan: Plan


@dataclass(frozen=True)
class GridPoint:
    """One budget of the enumeration grid and where its plan falls."""

    budget_usd_per_hour: float
    status: str
    cost_usd_per_hour: float | None
    tokens_per_s: float | None
    usd_per_million_tokens: float | None
    frontier_index: int | None  # None: no plan, or the plan is off the frontier (solved to the MIP gap)


@dataclass(frozen=True)
class Frontier:
    points: tuple[FrontierPoint, ...]  # by increasing cost (and throughput)
    grid: tuple[GridPoint, ...]
    best_index: int
    token_basis: str
    seconds: float
    proven_optimal: bool = True  # every solve of the sweep proven: the frontier is complete and exact
    gap: float = 0.0  # proven bound on how far the best point's $/token can be above the minimum
    limits: tuple[str, ...] = ()  # the solves and sweeps a limit stopped

    @property
    def best(self) -> FrontierPoint:
        return self.points[self.best_index]


def pareto(sc: Scenario, with_grid: bool = True, cancel=None) -> Frontier:
    """The exact cost/throughput frontier (every non-dominated plan) as rows, the minimum-$/token point
    marked, and the enumeration's budget grid placed on it."""
    t0 = time.perf_counter()
    planner = planner_for(sc, cancel)
    plans = planner.frontier()
    if not plans:
        raise planner.explain_infeasible()
    best = min(range(len(plans)), key=lambda i: (plans[i].usd_per_million_tokens, plans[i].cost_usd_per_hour))
    grid: list[GridPoint] = []
    on_point: dict[int, list[float]] = {}
    if with_grid:
        for cp in planner.enumeration().curve:
            index = None
            if cp.plan is not None:
                index = next((i for i, p in enumerate(plans) if same(p.cost_usd_per_hour, cp.cost_usd_per_hour)
                              and same(p.tokens_per_s, cp.tokens_per_s)), None)
            if index is not None:
                on_point.setdefault(index, []).append(cp.budget_usd_per_hour)
            grid.append(GridPoint(cp.budget_usd_per_hour, cp.status, cp.cost_usd_per_hour, cp.tokens_per_s,
                                  cp.usd_per_million_tokens, index))
    points = tuple(FrontierPoint(p.cost_usd_per_hour, p.tokens_per_s, p.usd_per_million_tokens, len(p.stages),
                                 p.num_gpus, tuple(sorted(p.gpus_by_type().items())), p.concurrency, layout(p),
                                 i == best, tuple(on_point.get(i, ())), p) for i, p in enumerate(plans))
    log.info("%s: %d frontier points, %d grid points, %.2f s", sc.name, len(points), len(grid), time.perf_counter() - t0)
    planner._restore_frontier_proof()
    complete = not planner._limits
    return Frontier(points, tuple(grid), best, sc.workload.token_basis, time.perf_counter() - t0, complete,
                    planner.ratio_gap(plans[best]), tuple(planner._limits))


def frontier_rows(fr: Frontier) -> list[dict]:
    return [{"cost_usd_per_hour": p.cost_usd_per_hour, "tokens_per_s": p.tokens_per_s,
             "usd_per_million_tokens": p.usd_per_million_tokens, "stages": p.stages, "gpus": p.gpus,
             "gpus_by_type": dict(p.gpus_by_type), "concurrency": p.concurrency, "layout": p.layout,
             "min_usd_per_token": p.min_usd_per_token, "grid_budgets_usd_per_hour": list(p.grid_budgets_usd_per_hour)}
            for p in fr.points]


def grid_rows(fr: Frontier) -> list[dict]:
    return [{"budget_usd_per_hour": g.budget_usd_per_hour, "status": g.status,
             "cost_usd_per_hour": g.cost_usd_per_hour, "tokens_per_s": g.tokens_per_s,
             "usd_per_million_tokens": g.usd_per_million_tokens, "frontier_index": g.frontier_index}
            for g in fr.grid]


# ------------------------------------------------------------------ 2. single-type baselines
@dataclass(frozen=True)
class Baseline:
    gpu_type: str  # "mixed" for the whole pool
    count: int
    price_usd_per_hour: float | None  # None for the mixed pool
    headline: Headline | None  # None: this type alone cannot host the model
    reason: str  # why not (from the InfeasibleError), "" when feasible
    vs_mixed_pct: float | None  # how much dearer per token than the mixed optimum


@dataclass(frozen=True)
class Baselines:
    mixed: Baseline
    singles: tuple[Baseline, ...]  # in pool order
    best_single: str | None
    savings_pct: float | None  # (best single - mixed) / best single; None if no single type can host it
    verdict: str


def baselines(sc: Scenario, mixed: Result | None = None, cancel=None) -> Baselines:
    """The proven-best plan of each GPU type alone beside the mixed optimum. A single-type plan is also a
    plan of the mixed pool, so the mixed optimum is never dearer; the saving says by how much it is cheaper."""
    mixed = mixed or planner_for(sc, cancel).exact()
    mh = Headline.of(mixed)
    singles = []
    for e in sc.pool.entries:
        if set(dict(mh.gpus_by_type)) == {e.name}:  # the mixed optimum is already a plan of this type alone
            singles.append(Baseline(e.name, e.count, e.spec.price_usd_per_hour, mh, "", 0.0))
            continue
        try:
            h, reason = Headline.of(planner_for(restrict_pool(sc, [e.name]), cancel).exact()), ""
        except InfeasibleError as exc:
            h, reason = None, str(exc)
        vs = pct_change(h.usd_per_million_tokens, mh.usd_per_million_tokens) if h else None
        singles.append(Baseline(e.name, e.count, e.spec.price_usd_per_hour, h, reason, vs))
    feasible = [b for b in singles if b.headline is not None]
    best = min(feasible, key=lambda b: b.headline.usd_per_million_tokens, default=None)
    if len(singles) == 1:
        savings, verdict = 0.0, "only one GPU type in the pool: nothing to mix"
    elif best is None:
        savings, verdict = None, "no single GPU type can host the model alone: only the mixed pool can"
    else:
        ref = best.headline.usd_per_million_tokens
        savings = (ref - mh.usd_per_million_tokens) / ref * 100.0
        if savings <= REL_TOL * 100:
            savings, verdict = 0.0, f"mixing does not help here: {best.gpu_type} alone is as cheap per token"
        else:
            verdict = (f"mixing saves {savings:.1f}% per token against the best single type "
                       f"({best.gpu_type}, ${ref:.4g}/M tokens)")
    return Baselines(Baseline("mixed", sc.pool.total_gpus, None, mh, "", 0.0), tuple(singles),
                     best.gpu_type if best else None, savings, verdict)


def baseline_rows(b: Baselines) -> list[dict]:
    return [{"gpu_type": x.gpu_type, "count": x.count, "price_usd_per_hour": x.price_usd_per_hour,
             "feasible": x.headline is not None, **headline_row(x.headline), "vs_mixed_pct": x.vs_mixed_pct,
             "reason": x.reason} for x in (b.mixed, *b.singles)]


# ------------------------------------------------------------------ 4. quantization loss
# A level above this many stage options is skipped. High enough that `full` (every size 1..L) is solved
# on an 80-layer model over a few GPU types (config/realistic: 18,656 options, ~5 s): the loss of the
# coarser sets is then measured against the true optimum, not against another coarse set.
QUANTIZATION_MAX_OPTIONS = 50_000


@dataclass(frozen=True)
class QuantizationRow:
    level: str
    sizes: tuple[int, ...]
    options: int
    status: str  # solved | skipped | infeasible
    headline: Headline | None
    milp_integers: int | None
    seconds: float | None  # wall time of candidates + MILP build + solves
    loss_pct: float | None  # $/token above the reference level (negative: cheaper)
    note: str


@dataclass(frozen=True)
class QuantizationStudy:
    rows: tuple[QuantizationRow, ...]
    reference: str | None  # the finest solved level (most segment sizes)
    summary: str


def quantization_loss(sc: Scenario, levels: tuple[str, ...] = QUANTIZATION_LEVELS,
                      max_options: int | None = QUANTIZATION_MAX_OPTIONS, cancel=None) -> QuantizationStudy:
    """Each named segment-size set solved exactly, side by side. A level whose candidate set exceeds
    `max_options` is skipped (its MILP would be slow to build), and the row says so. The loss of each
    level is measured against the finest solved level; `full` (every size 1..L) contains every other
    set, so when it is solved no level can beat it."""
    bad = [lv for lv in levels if lv not in QUANTIZATION_LEVELS]
    if bad:
        raise InputError(Problem(f"unknown quantization level(s) {bad} (use {', '.join(QUANTIZATION_LEVELS)})",
                                 "quantization what-if"))
    rows: list[QuantizationRow] = []
    for level in levels:
        t0 = time.perf_counter()
        lsc = replace(sc, settings=replace(sc.settings, quantization=level, sizes=None))
        sizes = segment_sizes(lsc)[0]
        cs = build_candidates(lsc)
        n = len(cs.options)
        if max_options is not None and n > max_options:
            rows.append(QuantizationRow(level, sizes, n, "skipped", None, None, None, None,
                                        f"skipped: {n} options > cap {max_options}"))
            continue
        try:
            planner = Planner(lsc, cs, cancel=cancel)
            result = planner.exact()
        except InfeasibleError as exc:
            rows.append(QuantizationRow(level, sizes, n, "infeasible", None, None, time.perf_counter() - t0, None,
                                        str(exc)))
            continue
        note = "" if result.proven_optimal else \
            f"not proven optimal (at most {result.gap:.2%} above the minimum $/token): " + \
            "; ".join(result.extra.get("limits", ()) or (result.how,))
        log.info("%s: quantization %s, %d options, %.2f s", sc.name, level, n, time.perf_counter() - t0)
        rows.append(QuantizationRow(level, sizes, n, "solved", Headline.of(result),
                                    planner.problem_size().get("integers"), time.perf_counter() - t0, None, note))
    solved = [r for r in rows if r.headline is not None]
    ref = max(solved, key=lambda r: len(r.sizes), default=None)
    if ref is None:
        return QuantizationStudy(tuple(rows), None, "no level could be solved")
    ref_cost = ref.headline.usd_per_million_tokens
    rows = [replace(r, loss_pct=pct_change(r.headline.usd_per_million_tokens, ref_cost)) if r.headline else r
            for r in rows]
    parts = []
    for r in rows:
        if r.level == ref.level or r.loss_pct is None:
            continue
        if abs(r.loss_pct) <= REL_TOL * 100:
            parts.append(f"{r.level} is as good as {ref.level}")
        else:
            parts.append(f"{r.level} is {abs(r.loss_pct):.1f}% {'worse' if r.loss_pct > 0 else 'better'} than "
                         f"{ref.level}")
    skipped = [r.level for r in rows if r.status == "skipped"]
    summary = "; ".join(parts) or f"only {ref.level} was solved"
    if skipped:
        summary += f" ({', '.join(skipped)} skipped by the size cap)"
    return QuantizationStudy(tuple(rows), ref.level, summary)


def quantization_rows(q: QuantizationStudy) -> list[dict]:
    return [{"level": r.level, "sizes": list(r.sizes), "options": r.options, "status": r.status,
             **headline_row(r.headline), "milp_integers": r.milp_integers, "seconds": r.seconds,
             "loss_pct": r.loss_pct, "reference": r.level == q.reference, "note": r.note} for r in q.rows]


