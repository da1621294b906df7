"""What-if analyses over the exact planner: Pareto frontier rows, single-type baselines, quantization
loss, spot prices and availability caps, and scenario comparison.

Every function is pure (scenario in, frozen rows out) and re-solves with `Planner(...).exact()`, so each
figure is a proven optimum of a changed scenario, never an extrapolation. `cancel` (an object with
is_set(), e.g. a threading.Event) is handed to every Planner: once set, the next MILP solve raises
CancelledError. Price sensitivity lives in
`whatif_prices`. Nothing here edits a Scenario in place: the transforms return new ones.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from typing import Mapping

from .candidates import QUANTIZATION_LEVELS, CandidateSet, build_candidates, segment_sizes
from .domain import Scenario
from .errors import InfeasibleError, InputError, Problem
from .plan import Plan, Result
from .search import Planner
from .units import SAME_FIGURE_REL

log = logging.getLogger(__name__)
REL_TOL = SAME_FIGURE_REL  # two figures closer than this (relative) are the same figure


# ------------------------------------------------------------------ shared helpers
def layout(plan: Plan) -> str:
    """One line per pipeline: runs of identical consecutive stages are merged, e.g.
    'A100 TP2 x20 layers > 2x V100 TP4 x10 layers'."""
    runs: list[list] = []
    for s in plan.stages:
        key = (s.gpu_type, s.tp, s.num_layers)
        if runs and runs[-1][0] == key:
            runs[-1][1] += 1
        else:
            runs.append([key, 1])
    parts = []
    for (g, tp, layers), n in runs:
        parts.append(f"{n}x {g} TP{tp} x{layers} layers" if n > 1 else f"{g} TP{tp} x{layers} layers")
    return " > ".join(parts)


def signature(plan: Plan) -> tuple:
    """What makes two plans the same plan: the multiset of stage shapes and the concurrency."""
    return tuple(sorted((s.gpu_type, s.tp, s.num_layers) for s in plan.stages)), plan.concurrency


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL)  # relative only: an absolute tolerance breaks at small prices


def pct_change(new: float, ref: float) -> float:
    return (new - ref) / ref * 100.0


def _check_types(sc: Scenario, names, what: str) -> None:
    unknown = [n for n in names if n not in sc.pool.types]
    if unknown:
        raise InputError([Problem(f"unknown GPU type '{n}' (the pool has {', '.join(sc.pool.types)})", what,
                                  column="gpu_type") for n in unknown])


# ------------------------------------------------------------------ candidates reused across what-ifs
# A what-if re-solves the same scenario with other prices or with fewer GPU types. Neither changes which
# stage options exist, their throughput, memory or latency, nor the dominance between them (it compares
# options of one type, whose costs all scale with the same price), only each option's cost (TP x price).
# So the options are built once and re-priced / filtered for each re-solve: the same CandidateSet that
# build_candidates would return (tests/test_whatif.py checks it), without re-evaluating ~30,000 options.
_CANDIDATES: "OrderedDict[tuple, CandidateSet]" = OrderedDict()
_CANDIDATES_LOCK = threading.Lock()
CANDIDATE_CACHE_SIZE = 4


def _shape_key(sc: Scenario) -> tuple:
    """Everything the options depend on except the pool's types and prices (and the links between types,
    which only the plan's check uses: options see the pool's default inter-node figure)."""
    return sc.model, sc.workload, sc.engine, sc.settings, sc.pool.default_link_gb_per_s


def _entry_key(e) -> tuple:
    return e.name, e.count, replace(e.spec, price_usd_per_hour=1.0, price_source="", price_date="")


def candidates_for(sc: Scenario) -> CandidateSet:
    """build_candidates(sc), derived from a cached build of the same scenario at other prices or with
    more GPU types (the same types otherwise unchanged) when there is one."""
    shape = _shape_key(sc)
    entries = {_entry_key(e) for e in sc.pool.entries}
    with _CANDIDATES_LOCK:
        base = next((cs for (k, ents), cs in reversed(_CANDIDATES.items()) if k == shape and entries <= ents), None)
    if base is None:
        base = build_candidates(sc)
        with _CANDIDATES_LOCK:
            _CANDIDATES[(shape, frozenset(entries))] = base
            while len(_CANDIDATES) > CANDIDATE_CACHE_SIZE:
                _CANDIDATES.popitem(last=False)
        return base
    return derive_candidates(base, sc)


def derive_candidates(base: CandidateSet, sc: Scenario) -> CandidateSet:
    """`base`'s options for `sc`, a scenario with the same settings whose pool keeps some of base's GPU
    types (same counts and specs) at possibly other prices: options of dropped types go, the others are
    re-priced. The caller vouches for the sameness (`candidates_for` checks it)."""
    price = {e.name: e.spec.price_usd_per_hour for e in sc.pool.entries}
    old = {e.name: e.spec.price_usd_per_hour for e in base.scenario.pool.entries}

    def keep(options):
        return tuple(o if price[o.gpu_type] == old[o.gpu_type] else
                     replace(o, cost_usd_per_hour=o.tp * price[o.gpu_type])
                     for o in options if o.gpu_type in price)

    if price == old and len(price) == len(old):
        return replace(base, scenario=sc)
    notes = tuple(n for n in base.tp_notes if n.split(":", 1)[0] in price)
    return replace(base, scenario=sc, tp_degrees={g: t for g, t in base.tp_degrees.items() if g in price},
                   tp_notes=notes, options=keep(base.options), excluded=keep(base.excluded))


def planner_for(sc: Scenario, cancel=None) -> Planner:
    """A Planner over `candidates_for(sc)`."""
    return Planner(sc, candidates_for(sc), cancel=cancel)


# ------------------------------------------------------------------ scenario transforms
def restrict_pool(sc: Scenario, types) -> Scenario:
    """The scenario with only `types` left in the pool (and only the links among them)."""
    types = tuple(types)
    _check_types(sc, types, "pool restriction")
    entries = tuple(e for e in sc.pool.entries if e.name in types)
    links = tuple(k for k in sc.pool.link_gb_per_s if k[0] in types and k[1] in types)
    return replace(sc, pool=replace(sc.pool, entries=entries, link_gb_per_s=links))


def with_prices(sc: Scenario, prices: Mapping[str, float], source: str = "what-if") -> Scenario:
    """The scenario with the hourly price of some GPU types replaced."""
    _check_types(sc, prices, "price what-if")
    bad = [Problem(f"price must be a positive number, got {p!r}", "price what-if", column=g)
           for g, p in prices.items() if not (isinstance(p, (int, float)) and math.isfinite(p) and p > 0)]
    if bad:
        raise InputError(bad)
    entries = tuple(replace(e, spec=replace(e.spec, price_usd_per_hour=float(prices[e.name]), price_source=source))
                    if e.name in prices else e for e in sc.pool.entries)
    return replace(sc, pool=replace(sc.pool, entries=entries))


def effective_spot_price(spot_usd_per_hour: float, preemption_overhead: float) -> float:
    """Price per productive GPU-hour of a spot GPU: spot / (1 - overhead).

    `preemption_overhead` is the fraction of paid spot time that yields no tokens (draining and
    re-running interrupted requests, restarting the engine, reloading weights after a preemption).
    Paying `spot` for an hour of which only (1 - overhead) serves, the planner's throughput figures
    (productive time) must be bought at spot / (1 - overhead) per hour. It prices lost time only, not
    the latency spikes or the capacity gaps a preemption also causes."""
    if not 0.0 <= preemption_overhead < 1.0:
        raise InputError(Problem(f"preemption overhead must be in [0, 1), got {preemption_overhead}", "spot what-if",
                                 column="overhead"))
    return spot_usd_per_hour / (1.0 - preemption_overhead)


def with_spot(sc: Scenario, spot_usd_per_hour: Mapping[str, float],
              preemption_overhead: float | Mapping[str, float] = 0.0) -> Scenario:
    """Listed types bought on the spot market at their effective price (`effective_spot_price`);
    the others stay on demand. The overhead is one figure for all, or one per listed type."""
    over = preemption_overhead if isinstance(preemption_overhead, Mapping) else \
        {g: preemption_overhead for g in spot_usd_per_hour}
    missing = [g for g in spot_usd_per_hour if g not in over]
    if missing:
        raise InputError(Problem(f"no preemption overhead given for {', '.join(missing)}", "spot what-if",
                                 column="overhead"))
    _check_types(sc, list(spot_usd_per_hour) + list(over), "spot what-if")
    prices = {}
    for g, spot in spot_usd_per_hour.items():
        if not (math.isfinite(spot) and spot > 0):
            raise InputError(Problem(f"spot price must be positive, got {spot!r}", "spot what-if", column=g))
        prices[g] = effective_spot_price(spot, over[g])
    out = with_prices(sc, prices, source="spot")
    entries = tuple(replace(e, spec=replace(e.spec, price_source=f"spot ${spot_usd_per_hour[e.name]:g}/h with "
                                                             f"{over[e.name]:.0%} preemption overhead"))
                    if e.name in prices else e for e in out.pool.entries)
    return replace(out, pool=replace(out.pool, entries=entries))


def with_caps(sc: Scenario, caps: Mapping[str, int]) -> Scenario:
    """Availability caps: count = min(count, cap) per listed type; a cap of 0 removes the type."""
    _check_types(sc, caps, "availability what-if")
    bad = [Problem(f"cap must be a whole number >= 0, got {c!r}", "availability what-if", column=g)
           for g, c in caps.items() if isinstance(c, bool) or not isinstance(c, int) or c < 0]
    if bad:
        raise InputError(bad)
    entries = tuple(replace(e, count=min(e.count, caps.get(e.name, e.count))) for e in sc.pool.entries
                    if caps.get(e.name, 1) > 0)
    if not entries:
        raise InputError(Problem("the caps leave no GPU in the pool", "availability what-if"))
    return restrict_pool(replace(sc, pool=replace(sc.pool, entries=entries)), [e.name for e in entries])


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


# ------------------------------------------------------------------ figures of one solve
@dataclass(frozen=True)
class Headline:
    """The figures of one plan that a comparison puts side by side."""

    usd_per_million_tokens: float
    tokens_per_s: float
    cost_usd_per_hour: float
    stages: int
    gpus: int
    gpus_by_type: tuple[tuple[str, int], ...]
    concurrency: int
    layout: str
    proven_optimal: bool
    plan: Plan
    gap: float = 0.0  # proven bound on how far $/token can be above the minimum (Result.gap)
    limits: tuple[str, ...] = ()  # what stopped a solve, or why the plan is not proven (a link)

    @classmethod
    def of(cls, result: Result) -> "Headline":
        p = result.plan
        why = tuple(result.extra.get("limits", ()))
        if not result.proven_optimal and not why:
            why = (result.how,)
        return cls(p.usd_per_million_tokens, p.tokens_per_s, p.cost_usd_per_hour, len(p.stages), p.num_gpus,
                   tuple(sorted(p.gpus_by_type().items())), p.concurrency, layout(p), result.proven_optimal, p,
                   result.gap, why)


HEADLINE_FIGURES = ("usd_per_million_tokens", "tokens_per_s", "cost_usd_per_hour", "stages", "gpus", "concurrency")


def headline_row(h: Headline | None) -> dict:
    if h is None:
        return {}
    return {**{k: getattr(h, k) for k in HEADLINE_FIGURES}, "gpus_by_type": dict(h.gpus_by_type),
            "layout": h.layout, "proven_optimal": h.proven_optimal, "gap": h.gap}


def proof(items) -> dict:
    """Whether every solve behind an analysis was proven: `items` are (what, Headline or None) pairs;
    returns {"proven_optimal": bool, "not_proven": [{"what", "gap", "limits"}...]} for its JSON and text."""
    bad = [{"what": what, "gap": h.gap, "limits": list(h.limits)} for what, h in items
           if h is not None and not h.proven_optimal]
    return {"proven_optimal": not bad, "not_proven": bad}


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


# ------------------------------------------------------------------ 7. scenario comparison
@dataclass(frozen=True)
class Difference:
    section: str  # model | workload | engine | settings | pool | network
    item: str
    a: str
    b: str


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _field_diffs(section: str, a, b, skip=()) -> list[Difference]:
    return [Difference(section, f.name, _fmt(getattr(a, f.name)), _fmt(getattr(b, f.name)))
            for f in fields(a) if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)]


def scenario_differences(a: Scenario, b: Scenario) -> tuple[Difference, ...]:
    """Every input that differs between two scenarios, by section (GPU types by name)."""
    out = _field_diffs("model", a.model, b.model) + _field_diffs("workload", a.workload, b.workload)
    out += _field_diffs("engine", a.engine, b.engine, skip=("source",))
    out += _field_diffs("settings", a.settings, b.settings)
    for name in dict.fromkeys(a.pool.types + b.pool.types):
        ea = a.pool.entry(name) if name in a.pool.types else None
        eb = b.pool.entry(name) if name in b.pool.types else None
        if ea is None or eb is None:
            present = ea or eb
            text = f"{present.count} x {present.spec.sku}"
            out.append(Difference("pool", name, text if ea else "absent", text if eb else "absent"))
            continue
        if ea.count != eb.count:
            out.append(Difference("pool", f"{name} count", str(ea.count), str(eb.count)))
        for d in _field_diffs("pool", ea.spec, eb.spec, skip=("price_source", "price_date", "datasheet_source")):
            out.append(replace(d, item=f"{name} {d.item}"))
    shared = [t for t in a.pool.types if t in b.pool.types]
    for i, x in enumerate(shared):
        for y in shared[i:]:
            la, lb = a.pool.link(x, y), b.pool.link(x, y)
            if la != lb:
                out.append(Difference("network", f"{x} <-> {y} GB/s", _fmt(la), _fmt(lb)))
    return tuple(out)


@dataclass(frozen=True)
class Comparison:
    name_a: str
    name_b: str
    differences: tuple[Difference, ...]
    a: Headline | None  # None: infeasible (see reason)
    b: Headline | None
    reason_a: str
    reason_b: str

    def proof(self) -> dict:
        return proof([(self.name_a, self.a), (self.name_b, self.b)])

    def figure_rows(self) -> list[dict]:
        """Headline figures side by side, with B's change against A in percent."""
        rows = []
        for k in HEADLINE_FIGURES:
            va = getattr(self.a, k) if self.a else None
            vb = getattr(self.b, k) if self.b else None
            change = pct_change(vb, va) if va and vb is not None else None
            rows.append({"figure": k, "a": va, "b": vb, "change_pct": change})
        rows.append({"figure": "layout", "a": self.a.layout if self.a else self.reason_a,
                     "b": self.b.layout if self.b else self.reason_b, "change_pct": None})
        return rows


def _headline_or_reason(sc: Scenario, result: Result | None, cancel=None) -> tuple[Headline | None, str]:
    if result is not None:
        return Headline.of(result), ""
    try:
        return Headline.of(planner_for(sc, cancel).exact()), ""
    except InfeasibleError as exc:
        return None, str(exc)


def compare_scenarios(a: Scenario, b: Scenario, result_a: Result | None = None,
                      result_b: Result | None = None, cancel=None) -> Comparison:
    """Inputs that differ and the headline figures side by side (each solved exactly unless given)."""
    ha, ra = _headline_or_reason(a, result_a, cancel)
    hb, rb = _headline_or_reason(b, result_b, cancel)
    return Comparison(a.name, b.name, scenario_differences(a, b), ha, hb, ra, rb)


def compare_scenario_files(data_a: str | bytes, data_b: str | bytes) -> Comparison:
    """Compare two exported scenario files (the app's `.json`, `scenario_io.scenario_texts_to_json`)."""
    from .scenario_io import scenario_from_texts, scenario_texts_from_json

    scs = []
    for data, label in ((data_a, "scenario A"), (data_b, "scenario B")):
        name, texts = scenario_texts_from_json(data, label)
        scs.append(scenario_from_texts(texts, name=name))
    return compare_scenarios(*scs)


# ------------------------------------------------------------------ 6. spot and availability
@dataclass(frozen=True)
class SpotComparison:
    prices: tuple[tuple[str, float, float], ...]  # (type, on-demand $/h, effective spot $/h)
    comparison: Comparison  # A = on demand (as given), B = the spot / capped what-if
    savings_pct: float | None  # per token, spot what-if against on demand


def spot_comparison(sc: Scenario, spot_usd_per_hour: Mapping[str, float],
                    preemption_overhead: float | Mapping[str, float] = 0.0,
                    caps: Mapping[str, int] | None = None, on_demand: Result | None = None,
                    cancel=None) -> SpotComparison:
    """On-demand plan against the plan with spot prices (and availability caps) switched on."""
    whatif = with_spot(sc, spot_usd_per_hour, preemption_overhead)
    if caps:
        whatif = with_caps(whatif, caps)
    whatif = replace(whatif, name=f"{sc.name} (spot)")
    comp = compare_scenarios(sc, whatif, result_a=on_demand, cancel=cancel)
    prices = tuple((g, sc.pool.entry(g).spec.price_usd_per_hour, whatif.pool.entry(g).spec.price_usd_per_hour)
                   for g in spot_usd_per_hour if g in whatif.pool.types)
    savings = None
    if comp.a and comp.b:
        savings = -pct_change(comp.b.usd_per_million_tokens, comp.a.usd_per_million_tokens)
    return SpotComparison(prices, comp, savings)
