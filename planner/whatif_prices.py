"""Price sensitivity: tornado rows, break-even prices and price sweeps, each figure an exact re-solve.

Why break-even prices and a sweep's change points can be exact rather than bisected: a GPU type's
price p changes neither which plans exist (memory, counts and throughput do not depend on prices) nor
their throughput, only their cost. A plan using n GPUs of the type, other GPUs costing C' per hour and
serving T billable tokens/s costs (C' + n p) / (3600 T) per token: a line in p. The optimum over all
plans is the lower envelope of these lines, a concave, piecewise-linear, nondecreasing function of p,
and the type is in the optimal plan exactly while the envelope of the plans that use it lies below c0,
the best $/token without the type (a constant). So:

- break-even: Newton's method on that envelope. From a price where the type is in the optimum, follow
  the optimal plan's line to where it reaches c0 and re-solve there; if some plan with the type is still
  cheaper, repeat from it, otherwise that price is the break-even (the lines cross there). Each step
  visits a new plan with a later crossing, so it ends after a few re-solves, exactly.
- sweep: between two sweep prices with different optimal plans, the change is where their lines cross;
  one re-solve there confirms no third plan is cheaper (by concavity the envelope then follows the two
  lines), otherwise the interval splits at the crossing.

An hourly budget cap makes plans drop out as the price rises, which breaks concavity but not the
monotonicity: a plan with the type is still "in" up to the first of its crossing with c0 and the price
at which it reaches the cap. The break-even step therefore goes to that price; at a cap it re-solves just
past it (by CAP_STEP, relative), where the plan itself is gone: if another plan with the type is in, the
steps continue from it, otherwise the type leaves there, with a jump in $/token. Sweep change points are
exact only when the whole pool at the highest swept price costs no more than the cap (the cap cannot
bind); otherwise they are located between sweep points.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .domain import Scenario
from .errors import InfeasibleError, InputError, Problem, SolverError
from .plan import Plan, Result
from .units import SAME_FIGURE_REL, at_most, usd_per_million_tokens_per_usd_per_hour
from .whatif_base import (REL_TOL, Headline, _check_types, headline_row, layout, planner_for, restrict_pool, same,
                          signature, with_prices)

log = logging.getLogger(__name__)
ENTER_PROBE = 1e-3  # a type absent from the optimum is tried at this fraction of its price ("almost free")
# A break-even at a budget-cap jump is located to within CAP_STEP (relative); the probe past the cap
# must also overshoot the budget row by far more than HiGHS's feasibility tolerance (1e-7 of the MILP's
# cost unit, `_cost_unit`), else the solver still accepts the plan that just left the budget.
CAP_STEP, CAP_ROW_STEP = 1e-6, 1e-5
MAX_STEPS = 100


def _price(sc: Scenario, gpu_type: str) -> float:
    return sc.pool.entry(gpu_type).spec.price_usd_per_hour


def solve_at(sc: Scenario, gpu_type: str, price: float, cancel=None) -> Result:
    """The exact optimum with one type's price changed (raises InfeasibleError)."""
    return planner_for(with_prices(sc, {gpu_type: price}), cancel).exact()


def line(plan: Plan, gpu_type: str) -> tuple[float, float]:
    """(intercept, slope) of the plan's $/million tokens as a function of the type's $/GPU-hour."""
    k = usd_per_million_tokens_per_usd_per_hour(plan.billable_tokens_per_s)
    other = sum(s.cost_usd_per_hour for s in plan.stages if s.gpu_type != gpu_type)
    return other * k, plan.gpus_by_type().get(gpu_type, 0) * k


def _cost_at(plan: Plan, gpu_type: str, price: float) -> float:
    """The plan's $/h with the type's price set to `price`."""
    return sum(s.cost_usd_per_hour for s in plan.stages if s.gpu_type != gpu_type) + \
        plan.gpus_by_type().get(gpu_type, 0) * price


def _cost_unit(sc: Scenario, gpu_type: str, price: float) -> float:
    """The $/h that the MILP's scaled cost 1 stands for, at most (`milp.cost_scale`: the dearest stage
    brought to [1, 2)), and at least 1: HiGHS's feasibility tolerance on the budget row is 1e-7 of it."""
    top = max((price if e.name == gpu_type else e.spec.price_usd_per_hour) * min(e.count, e.spec.gpus_per_node)
              for e in sc.pool.entries)
    return max(1.0, top)


def _cap_can_bind(sc: Scenario, gpu_type: str, price: float) -> bool:
    """Whether the hourly budget cap could exclude a plan: only if the whole pool would cost more."""
    cap = sc.settings.max_usd_per_hour
    if cap is None:
        return False
    whole = sum(e.count * (price if e.name == gpu_type else e.spec.price_usd_per_hour) for e in sc.pool.entries)
    return whole > cap * (1 - REL_TOL)


# ------------------------------------------------------------------ tornado
@dataclass(frozen=True)
class TornadoRow:
    gpu_type: str
    price_usd_per_hour: float
    low_price_usd_per_hour: float
    high_price_usd_per_hour: float
    low: Headline | None  # optimum with the price lowered by the percentage (None: infeasible)
    high: Headline | None  # ... raised
    low_plan_changed: bool
    high_plan_changed: bool
    note: str

    @property
    def swing_usd_per_million_tokens(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return self.high.usd_per_million_tokens - self.low.usd_per_million_tokens


@dataclass(frozen=True)
class Tornado:
    percent: float
    base: Headline
    rows: tuple[TornadoRow, ...]  # widest swing first


def tornado(sc: Scenario, percent: float = 20.0, base: Result | None = None, cancel=None) -> Tornado:
    """Optimal $/million tokens with each type's price moved by -percent and +percent, re-solved exactly."""
    if not (isinstance(percent, (int, float)) and 0 < percent < 100):
        raise InputError(Problem(f"percent must be between 0 and 100 (exclusive), got {percent!r}",
                                 "sensitivity", column="percent"))
    base_h = Headline.of(base or planner_for(sc, cancel).exact())
    rows = []
    for e in sc.pool.entries:
        p = e.spec.price_usd_per_hour
        moved: list[Headline | None] = []
        notes = []
        unused = base_h.plan.gpus_by_type().get(e.name, 0) == 0
        for factor in (1 - percent / 100, 1 + percent / 100):
            if factor > 1 and unused:
                # every plan's cost is nondecreasing in the price and the optimum's is unchanged: same optimum
                moved.append(base_h)
                continue
            try:
                moved.append(Headline.of(solve_at(sc, e.name, p * factor, cancel)))
            except InfeasibleError as exc:
                moved.append(None)
                notes.append(f"at ${p * factor:.4g}/h: {exc}")
        low, high = moved
        changed = [h is None or signature(h.plan) != signature(base_h.plan) for h in moved]
        rows.append(TornadoRow(e.name, p, p * (1 - percent / 100), p * (1 + percent / 100), low, high, *changed,
                               "; ".join(notes)))
    rows.sort(key=lambda r: (-(r.swing_usd_per_million_tokens if r.swing_usd_per_million_tokens is not None
                                else math.inf), r.gpu_type))
    return Tornado(percent, base_h, tuple(rows))


def tornado_rows(t: Tornado) -> list[dict]:
    return [{"gpu_type": r.gpu_type, "price_usd_per_hour": r.price_usd_per_hour,
             "low_price_usd_per_hour": r.low_price_usd_per_hour, "high_price_usd_per_hour": r.high_price_usd_per_hour,
             "base_usd_per_million_tokens": t.base.usd_per_million_tokens,
             "low_usd_per_million_tokens": r.low.usd_per_million_tokens if r.low else None,
             "high_usd_per_million_tokens": r.high.usd_per_million_tokens if r.high else None,
             "swing_usd_per_million_tokens": r.swing_usd_per_million_tokens,
             "low_layout": r.low.layout if r.low else None, "high_layout": r.high.layout if r.high else None,
             "low_plan_changed": r.low_plan_changed, "high_plan_changed": r.high_plan_changed, "note": r.note}
            for r in t.rows]


# ------------------------------------------------------------------ break-even
@dataclass(frozen=True)
class BreakEven:
    gpu_type: str
    price_usd_per_hour: float
    in_plan_now: bool
    break_even_usd_per_hour: float | None  # None: no price flips it (see meaning)
    without_usd_per_million_tokens: float | None  # best $/M tokens with the type removed (None: impossible)
    exact: bool  # False: a solve stopped at its time limit
    solves: int
    meaning: str


def break_even(sc: Scenario, gpu_type: str, base: Result | None = None, cancel=None) -> BreakEven:
    """The price of one GPU type at which it enters (below) or leaves (above) the optimal plan."""
    _check_types(sc, [gpu_type], "break-even")
    p0 = _price(sc, gpu_type)
    base = base or planner_for(sc, cancel).exact()
    solves = 0
    proven = base.proven_optimal
    others = [t for t in sc.pool.types if t != gpu_type]
    c0 = None
    if base.plan.gpus_by_type().get(gpu_type, 0) == 0:
        c0 = base.plan.usd_per_million_tokens  # the optimum does not use the type: it is the optimum without it
    elif others:
        try:
            without = planner_for(restrict_pool(sc, others), cancel).exact()
            c0, proven = without.plan.usd_per_million_tokens, proven and without.proven_optimal
        except InfeasibleError:
            pass
        solves += 1

    def is_in(plan: Plan) -> bool:
        return plan.gpus_by_type().get(gpu_type, 0) > 0 and (c0 is None or plan.usd_per_million_tokens < c0 * (1 - REL_TOL))

    in_now = is_in(base.plan)

    def result(price, exact, meaning):
        log.info("%s: break-even of %s after %d re-solves: %s", sc.name, gpu_type, solves, meaning)
        return BreakEven(gpu_type, p0, in_now, price, c0, exact and proven, solves, meaning)

    if c0 is None:
        budget = " (while some plan fits the hourly budget cap)" if sc.settings.max_usd_per_hour else ""
        return result(None, True, f"every plan needs {gpu_type}: it stays in the optimal plan at any price{budget}")
    if in_now:
        plan = base.plan
    else:
        p = p0 * ENTER_PROBE
        r = solve_at(sc, gpu_type, p, cancel)
        solves += 1
        proven = proven and r.proven_optimal
        if not is_in(r.plan):
            return result(None, True, f"stays out of the optimal plan even at ${p:.4g}/h ({ENTER_PROBE:.1%} of its "
                                      f"price): no plan with it beats ${c0:.4g}/M tokens")
        plan = r.plan
    cap = sc.settings.max_usd_per_hour
    for _ in range(MAX_STEPS):
        a, b = line(plan, gpu_type)
        x = (c0 - a) / b  # where this plan's line reaches c0
        n = plan.gpus_by_type()[gpu_type]
        x_cap = math.inf if cap is None else (cap - _cost_at(plan, gpu_type, 0.0)) / n  # where it reaches the cap
        # the plan is in up to min(x, x_cap); probe there, or just past x_cap where the plan itself is gone.
        # Where both coincide (to rounding) the lines cross at the cap: a crossing, not a jump.
        crossing = at_most(x, x_cap, SAME_FIGURE_REL)
        probe = x if crossing else x_cap + max(CAP_STEP * x_cap, CAP_ROW_STEP * _cost_unit(sc, gpu_type, x_cap) / n)
        try:
            r = solve_at(sc, gpu_type, probe, cancel)
            proven = proven and r.proven_optimal
            next_plan = r.plan if is_in(r.plan) else None
        except InfeasibleError:  # only a budget cap makes a price infeasible; the type is then out
            next_plan = None
        solves += 1
        if next_plan is not None:
            plan = next_plan
            continue
        if crossing:
            return result(x, True, _meaning(gpu_type, in_now, x, p0, c0))
        return result(x_cap, True, _meaning(gpu_type, in_now, x_cap, p0, c0) +
                      f" (where its last plan reaches the ${cap:g}/h budget cap)")
    raise SolverError(f"break-even of {gpu_type} did not settle in {MAX_STEPS} re-solves")


def _meaning(gpu_type, in_now, price, p0, c0) -> str:
    if in_now:
        return (f"{gpu_type} is in the optimal plan up to ${price:.4g}/h (now ${p0:.4g}/h); above it the best plan "
                f"without it (${c0:.4g}/M tokens) wins")
    return (f"{gpu_type} enters the optimal plan below ${price:.4g}/h (now ${p0:.4g}/h); above it the best plan "
            f"without it (${c0:.4g}/M tokens) wins")


def break_evens(sc: Scenario, base: Result | None = None, cancel=None) -> tuple[BreakEven, ...]:
    base = base or planner_for(sc, cancel).exact()
    return tuple(break_even(sc, g, base, cancel) for g in sc.pool.types)


def break_even_rows(rows) -> list[dict]:
    return [{"gpu_type": b.gpu_type, "price_usd_per_hour": b.price_usd_per_hour, "in_plan_now": b.in_plan_now,
             "break_even_usd_per_hour": b.break_even_usd_per_hour,
             "without_usd_per_million_tokens": b.without_usd_per_million_tokens, "exact": b.exact,
             "solves": b.solves, "meaning": b.meaning} for b in rows]


# ------------------------------------------------------------------ sweep
@dataclass(frozen=True)
class SweepPoint:
    price_usd_per_hour: float
    headline: Headline | None  # None: infeasible at this price (budget cap)
    gpus_of_type: int
    plan_changed: bool  # the optimal plan differs from the previous point's
    reason: str


@dataclass(frozen=True)
class PlanChange:
    low_usd_per_hour: float  # sweep prices around the change
    high_usd_per_hour: float
    price_usd_per_hour: float | None  # exact change price (None: only bracketed, or a tie)
    from_layout: str
    to_layout: str
    how: str


@dataclass(frozen=True)
class PriceSweep:
    gpu_type: str
    points: tuple[SweepPoint, ...]
    changes: tuple[PlanChange, ...]
    exact_changes: bool
    solves: int
    not_proven: tuple[str, ...] = ()  # change-point solves that a limit stopped (their points say so)


def price_sweep(sc: Scenario, gpu_type: str, low: float, high: float, n: int = 11, cancel=None) -> PriceSweep:
    """Re-solve at n evenly spaced prices of one type; mark where the optimal plan changes and, when the
    budget cap cannot bind, the exact price of each change (see the module docstring)."""
    _check_types(sc, [gpu_type], "price sweep")
    problems = []
    if not (math.isfinite(low) and low > 0 and math.isfinite(high) and high > low):
        problems.append(Problem(f"need 0 < low < high, got {low:g}:{high:g}", "price sweep", column="range"))
    if not (isinstance(n, int) and 2 <= n <= 500):
        problems.append(Problem(f"need 2 to 500 points, got {n!r}", "price sweep", column="range"))
    if problems:
        raise InputError(problems)
    prices = [low + (high - low) * i / (n - 1) for i in range(n)]
    solves = 0
    points: list[SweepPoint] = []
    plans: list[Plan | None] = []
    for price in prices:
        try:
            res = solve_at(sc, gpu_type, price, cancel)
            plan, head, reason = res.plan, Headline.of(res), ""
        except InfeasibleError as exc:
            plan, head, reason = None, None, str(exc)
        solves += 1
        prev = plans[-1] if plans else None
        changed = bool(plans) and (plan is None or prev is None or signature(plan) != signature(prev))
        plans.append(plan)
        points.append(SweepPoint(price, head,
                                 plan.gpus_by_type().get(gpu_type, 0) if plan else 0, changed, reason))
    exact = not _cap_can_bind(sc, gpu_type, high)
    changes: list[PlanChange] = []
    unproven: list[str] = []
    for i in range(1, n):
        if not points[i].plan_changed:
            continue
        a, b = plans[i - 1], plans[i]
        if a is None or b is None or not exact:
            changes.append(PlanChange(prices[i - 1], prices[i], None, _lay(a), _lay(b),
                                      "between these sweep points (the hourly budget cap can bind)"))
            continue
        found, k = _crossings(sc, gpu_type, prices[i - 1], a, prices[i], b, 0, cancel, unproven)
        solves += k
        changes.extend(found)
    log.info("%s: sweep of %s's price, %d points, %d changes, %d solves", sc.name, gpu_type, n, len(changes), solves)
    return PriceSweep(gpu_type, tuple(points), tuple(changes), exact, solves, tuple(unproven))


def _lay(plan: Plan | None) -> str:
    return layout(plan) if plan else "no feasible plan"


def _crossings(sc, gpu_type, pa, a: Plan, pb, b: Plan, depth: int, cancel,
               unproven: list[str] | None = None) -> tuple[list[PlanChange], int]:
    """Exact change prices between pa (optimum a) and pb (optimum b), by the crossing of their lines.
    A re-solve that a limit stopped is listed in `unproven` (its change point is then not exact)."""
    (ia, sa), (ib, sb) = line(a, gpu_type), line(b, gpu_type)
    if same(sa, sb):  # parallel: both optimal at pa and pb means identical lines, a tie throughout
        return [PlanChange(pa, pb, None, _lay(a), _lay(b), "tie: both plans cost the same per token here")], 0
    x = (ib - ia) / (sa - sb)
    value = ia + sa * x
    res = solve_at(sc, gpu_type, x, cancel)
    c = res.plan
    if not res.proven_optimal and unproven is not None:
        unproven.append(f"the re-solve at ${x:.4g}/h (change point between ${pa:.4g} and ${pb:.4g}/h): "
                        + "; ".join(res.extra.get("limits", ()) or (res.how,)))
    if c.usd_per_million_tokens >= value * (1 - REL_TOL):
        return [PlanChange(pa, pb, x, _lay(a), _lay(b), f"exact: both cost ${value:.4g}/M tokens at ${x:.4g}/h")], 1
    if depth >= MAX_STEPS:
        raise SolverError(f"price sweep of {gpu_type}: change points did not settle")
    left, n1 = _crossings(sc, gpu_type, pa, a, x, c, depth + 1, cancel, unproven)
    right, n2 = _crossings(sc, gpu_type, x, c, pb, b, depth + 1, cancel, unproven)
    return left + right, 1 + n1 + n2


def sweep_rows(s: PriceSweep) -> list[dict]:
    return [{"price_usd_per_hour": p.price_usd_per_hour, **headline_row(p.headline), "gpus_of_type": p.gpus_of_type,
             "plan_changed": p.plan_changed, "reason": p.reason} for p in s.points]


def change_rows(s: PriceSweep) -> list[dict]:
    return [{"low_usd_per_hour": c.low_usd_per_hour, "high_usd_per_hour": c.high_usd_per_hour,
             "price_usd_per_hour": c.price_usd_per_hour, "from_layout": c.from_layout, "to_layout": c.to_layout,
             "how": c.how} for c in s.changes]
