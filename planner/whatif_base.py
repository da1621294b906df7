"""What the what-if analyses share: figures compared to rounding, the candidate cache reused across
what-ifs (a price change re-prices options instead of rebuilding them), scenario transforms (prices, spot,
caps, a restricted pool) and the headline figures of one solve. Re-exported by planner.whatif.
"""
from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Mapping

from .candidates import CandidateSet, build_candidates
from .domain import Scenario
from .errors import InputError, Problem
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
