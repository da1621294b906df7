"""The fleet demand curve: minimum $/hour (and $/M tokens) against demand, exact, as a step curve.

The minimum cost C(D) of a fleet serving D tokens/s is a non-decreasing step function of D: it stays at
C_k for D in (E_{k-1}, E_k], where E_k is the most tokens/s any fleet costing <= C_k serves. The steps
are found exactly by parametric solves, two MILPs per step: C_k = min cost at demand E_{k-1} + 1e-6 x
capacity (just above the last step, by more than the solver's tolerance; a fleet whose rate falls inside
that sliver would be the only thing missed), then E_k = max tokens/s at cost <= C_k. The
curve ends at the pool's capacity. No grid: every breakpoint is a solved optimum (statuses are kept;
a step whose solve stopped at the time limit says so).

Beside it: the same curve for fleets of one GPU type each, and "copies of the best single pipeline"
(the proven min-$/token pipeline of `solve`, repeated ceil(D / its rate) times while the pool holds them).

A fleet of one type is a 1-D knapsack, solved without MILPs (`single_type_steps`): the replicas of that
type are enumerated exactly (the pricing's branch and bound with every other type priced out, keeping per
GPU count the fastest replica: a fleet using a slower one with as many GPUs can swap it in), and
F[u] = max(F[u - 1], max_n best[n] + F[u - n]) is the most tokens/s of a fleet of at most u GPUs, so the
curve steps wherever F rises, at cost u x the price. For a request mix, each class's F is built so over the
type's GPUs and the classes combined as in the mixed pool (fleet_knapsack: max-min, class q serving f_q D).

The mixed pool (one class or a mix) is a knapsack over the lattice of GPU counts proven by LP duals
(`fleet_knapsack`). The parametric solves remain for a lattice above fleet_knapsack.LATTICE_LIMIT points or
a proof that does not complete, and for a type whose enumeration is too large (under a TTFT limit).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from .errors import InfeasibleError
from .fleet import Fleet
from .fleet_knapsack import LATTICE_LIMIT, mix_steps, mixed_curve
from .fleet_pricing import SearchLimit
from .units import usd_per_million_tokens

# partial replicas per depth the single-type enumeration may hold before the parametric solves take over
SINGLE_TYPE_NODES = 200_000

log = logging.getLogger(__name__)
# the next step's demand is just above the last step's right end: by 1e-6 of the capacity, well above HiGHS's
# feasibility tolerance (a smaller step would let y = 0 pass a row >= D)
STEP = 1e-6
# the curve's guard (seconds over all its series): each step is two exact solves, and a large pool has many
CURVE_SECONDS = 120.0


@dataclass(frozen=True)
class CurveStep:
    series: str  # "mixed", "only <type>", "copies of the best pipeline"
    demand_from: float  # exclusive
    demand_to: float  # inclusive: the most tokens/s this cost buys
    cost_usd_per_hour: float
    status: str

    @property
    def usd_per_million_tokens(self) -> float:
        """At the step's right end (the best $/M tokens of the step)."""
        return usd_per_million_tokens(self.cost_usd_per_hour, self.demand_to) if self.demand_to > 0 else math.nan


@dataclass(frozen=True)
class DemandCurve:
    steps: tuple[CurveStep, ...]
    capacity_tokens_per_s: float
    seconds: float
    solves: int
    how: str
    stopped: tuple[str, ...] = ()  # series cut by the time limit: "<series> at <demand> of <capacity> tokens/s"

    def series(self, name: str) -> list[CurveStep]:
        return [s for s in self.steps if s.series == name]

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(s.series for s in self.steps))


def _steps(fleet: Fleet, name: str, types: set[int] | None, time_limit: float, max_steps: int,
           counter: list[int], deadline: float, stopped: list[str]) -> list[CurveStep]:
    cap, _, _ = fleet.capacity(time_limit, types)
    counter[0] += 1
    steps: list[CurveStep] = []
    last = 0.0
    while last < cap * (1 - 1e-12) and len(steps) < max_steps:
        if time.perf_counter() > deadline:
            stopped.append(f"{name} at {last:,.1f} of {cap:,.1f} tokens/s")
            log.warning("%s: demand curve stopped at its time limit at %.1f of %.1f tokens/s", name, last, cap)
            break
        demand = min(cap, last + STEP * cap)
        try:
            plan = fleet.solve(demand, time_limit, types)
        except InfeasibleError:
            break
        counter[0] += 1
        top, status, _ = fleet.max_demand(plan.cost_usd_per_hour * (1 + 1e-12), time_limit, types)
        counter[0] += 1
        top = max(top, plan.tokens_per_s if not fleet.mix else demand)
        status = plan.status if plan.status != "optimal" else status
        steps.append(CurveStep(name, last, top, plan.cost_usd_per_hour, status))
        if top <= last:
            break
        last = top
    if len(steps) >= max_steps and last < cap * (1 - 1e-12):
        log.warning("%s: demand curve stopped after %d steps at %.1f of %.1f tokens/s", name, max_steps, last, cap)
    return steps


def demand_curve(fleet: Fleet, time_limit: float | None = None, single_types: bool = True,
                 copies: bool = True, max_steps: int = 2000, max_seconds: float | None = CURVE_SECONDS) -> DemandCurve:
    """The exact step curve (module docstring) of the mixed pool, of each type alone, and of copies of the
    best single pipeline (single-class fleets only). `max_seconds`: the guard; a series still running then
    stops where it is (its steps so far are exact; the rest is missing, and `how` says where each stopped)."""
    t0 = time.perf_counter()
    tl = time_limit or fleet.scenario.settings.time_limit_s
    deadline = t0 + (max_seconds if max_seconds is not None else math.inf)
    counter = [0]
    stopped: list[str] = []
    cap, cap_status, _ = fleet.capacity(tl)
    counter[0] += 1
    points = math.prod(c + 1 for c in fleet.master.counts)
    knap = mixed_curve(fleet, cap, tl, deadline) if cap_status == "optimal" and cap > 0 else None
    per_class = " per request class" if fleet.mix else ""
    if knap is not None:
        steps = [CurveStep("mixed", lo, hi, c, "optimal") for lo, hi, c in knap[0]]
        parts = [f"the mixed pool by a knapsack over GPU usage{per_class} proven by {knap[1]} LP dual set(s)"]
    else:
        steps = _steps(fleet, "mixed", None, tl, max_steps, counter, deadline, stopped)
        why = (f"its lattice of GPU counts has {points:,} points, above {LATTICE_LIMIT:,}" if points > LATTICE_LIMIT
               else "no capacity to start from" if cap_status != "optimal" or cap <= 0
               else "the knapsack's proof did not complete: the time, enumeration or dual-set limit, see the log")
        parts = [f"the mixed pool by parametric solves (min $/hour just above each breakpoint, then the most "
                 f"tokens/s at that cost; {why})"]
    if single_types:
        slow = []
        for i, g in enumerate(fleet.scenario.pool.types):
            own = single_type_steps(fleet, i)
            if own is None:
                slow.append(g)
                own = _steps(fleet, f"only {g}", {i}, tl, max_steps, counter, deadline, stopped)
            steps += own
        parts.append(f"each type alone by a knapsack over its replicas{per_class}" +
                     (f" (by parametric solves for {', '.join(slow)}: its replicas are too many to enumerate)"
                      if slow else ""))
    if copies and not fleet.mix:
        steps += copies_of_best(fleet)
    how = f"exact step curve: {', '.join(parts)}; {counter[0]} MILP{'' if counter[0] == 1 else 's'}"
    if any(s.status != "optimal" for s in steps):
        how += "; some solves stopped at the time limit (marked), so those steps are not proven"
    if stopped:
        how += (f"; the curve's time limit ({max_seconds:g} s) stopped it: " + "; ".join(stopped) +
                " (the steps shown are exact, the rest is not computed)")
    return DemandCurve(tuple(steps), cap, time.perf_counter() - t0, counter[0], how, tuple(stopped))


def single_type_steps(fleet: Fleet, i: int) -> list[CurveStep] | None:
    """The exact step curve of fleets of pool type i alone by the knapsack of the module docstring; None when
    the enumeration passes SINGLE_TYPE_NODES partial replicas at some depth. For a mix, each class's F over
    the type's GPU count, combined as the mixed pool's lattices are (fleet_knapsack.mix_steps)."""
    g = fleet.types[i]
    count, price = fleet.scenario.pool.entry(g).count, fleet.prices[g]
    F = []
    for q in range(len(fleet.scenarios)):
        best = type_replicas(fleet, i, q)
        if best is None:
            return None
        F.append(type_fleets(best, count))
    if len(F) > 1:
        return [CurveStep(f"only {g}", lo, hi, c, "optimal")
                for lo, hi, c in mix_steps(F, list(fleet.master.fractions), np.array([price]))]
    F = F[0]
    steps: list[CurveStep] = []
    last = 0.0
    for u in range(1, count + 1):
        if F[u] > last * (1 + 1e-12):
            if steps and price * u <= steps[-1].cost_usd_per_hour:  # free GPUs: one step at that cost
                steps.pop()
            steps.append(CurveStep(f"only {g}", steps[-1].demand_to if steps else 0.0, float(F[u]), price * u, "optimal"))
            last = F[u]
    return steps


def type_fleets(best: dict[int, float], count: int) -> np.ndarray:
    """F[u]: the most tokens/s of a fleet of at most u GPUs of one type, from its fastest replica per size."""
    F = np.zeros(count + 1)
    sizes = np.array(sorted(best), dtype=np.int64)
    rates = np.array([best[n] for n in sizes])
    for u in range(1, count + 1):
        fit = sizes <= u
        F[u] = max(F[u - 1], float(np.max(rates[fit] + F[u - sizes[fit]])) if fit.any() else 0.0)
    return F


def type_replicas(fleet: Fleet, i: int, q: int = 0) -> dict[int, float] | None:
    """GPUs -> the most billable tokens/s of a replica of class q on that many GPUs of type i (every level and
    stage count); None if the enumeration is too large."""
    w = np.full(len(fleet.types), 1e9)  # any other type makes a partial replica's weight exceed the threshold
    w[i] = 0.0
    beta = fleet.betas[q]
    best: dict[int, float] = {}
    for lp in fleet.catalogues[q]:
        if lp.empty:
            continue
        lp.prepare(w, 0.0)
        for p in lp.level.stage_counts:
            try:
                found, _ = lp.search(p, 1.0, True, SINGLE_TYPE_NODES, cancel=fleet.cancel)
            except SearchLimit:
                return None
            for f in found:
                n = f.gpus[i]
                best[n] = max(best.get(n, 0.0), f.theta * beta)
    return best


def copies_of_best(fleet: Fleet) -> list[CurveStep]:
    """k copies of the proven min-$/token single pipeline cost k c and serve k theta, for k up to what
    the pool holds; demand in ((k-1) theta, k theta] costs k c."""
    from .search import Planner

    sc = fleet.scenario
    try:
        plan = Planner(sc).exact().plan
    except InfeasibleError:
        return []
    rate = plan.billable_tokens_per_s
    use = plan.gpus_by_type()
    k_max = min(sc.pool.entry(g).count // n for g, n in use.items())
    name = "copies of the best pipeline"
    return [CurveStep(name, (k - 1) * rate, k * rate, k * plan.cost_usd_per_hour, "optimal")
            for k in range(1, k_max + 1)]


def curve_rows(curve: DemandCurve) -> list[dict]:
    return [{"series": s.series, "demand_from_tokens_per_s": s.demand_from, "demand_to_tokens_per_s": s.demand_to,
             "cost_usd_per_hour": s.cost_usd_per_hour, "usd_per_million_tokens": s.usd_per_million_tokens,
             "status": s.status} for s in curve.steps]
