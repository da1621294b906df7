"""What-if analyses on a fleet: its cost against one GPU type's price, exact break-even prices, spot prices.

For a fixed fleet, $/hour is linear in a type's price p (slope: the fleet's GPUs of that type). The
minimum over fleets, C*(p), is therefore concave and piecewise linear, and its breakpoints are the
break-even prices where the optimal fleet changes. They are found exactly by the classical parametric
(Eisner-Severance) search: solve at both ends of the range, intersect the two fleets' cost lines; if the
optimum at the intersection costs what the lines say there, it is a breakpoint, otherwise the new
fleet's line splits the interval and both halves are searched. Replicas do not depend on prices, so the
columns generated so far are kept and every solve only re-prices them (and proves its own optimum).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .errors import InputError, Problem
from .fleet import Fleet, FleetPlan
from .units import SAME_FIGURE_REL

log = logging.getLogger(__name__)
TOL = SAME_FIGURE_REL  # the same reported figure across solves (planner/units.py)


@dataclass(frozen=True)
class PricePoint:
    price: float  # $/GPU-hour of the type
    cost_usd_per_hour: float  # the optimal fleet's at that price
    type_gpus: int  # GPUs of the type in that fleet
    plan: FleetPlan


@dataclass(frozen=True)
class PriceSensitivity:
    gpu_type: str
    base_price: float
    demand_tokens_per_s: float
    points: tuple[PricePoint, ...]  # at the range's ends and at every break-even price, by price
    break_even: tuple[float, ...]  # prices where the optimal fleet's use of the type changes
    proven: bool
    solves: int


def _solve_at(fleet: Fleet, gpu_type: str, price: float, demand: float, time_limit) -> PricePoint:
    fleet.set_prices({gpu_type: price})
    plan = fleet.solve(demand, time_limit)
    return PricePoint(price, plan.cost_usd_per_hour, plan.gpus_by_type().get(gpu_type, 0), plan)


def price_sensitivity(fleet: Fleet, demand: float, gpu_type: str, low: float, high: float,
                      time_limit: float | None = None, max_solves: int = 200) -> PriceSensitivity:
    """The exact cost-vs-price curve of `gpu_type` on [low, high] at `demand` (module docstring)."""
    if gpu_type not in fleet.scenario.pool.types:
        raise InputError(Problem(f"unknown GPU type '{gpu_type}' (pool: {', '.join(fleet.scenario.pool.types)})",
                                 "price sensitivity"))
    if not 0 <= low < high:
        raise InputError(Problem(f"need 0 <= low < high, got {low}, {high}", "price sensitivity"))
    base = fleet.scenario.pool.entry(gpu_type).spec.price_usd_per_hour
    solves = [0]
    points: dict[float, PricePoint] = {}

    def at(p: float) -> PricePoint:
        if p not in points:
            points[p] = _solve_at(fleet, gpu_type, p, demand, time_limit)
            solves[0] += 1
        return points[p]

    try:
        stack = [(at(low), at(high))]
        breaks: set[float] = set()
        while stack and solves[0] < max_solves:
            a, b = stack.pop()
            if a.type_gpus == b.type_gpus:  # parallel lines: one fleet is optimal on the whole interval
                continue
            # line_a(p) = a.cost + a.n (p - a.price); line_b likewise; they cross at p*
            p = (b.cost_usd_per_hour - a.cost_usd_per_hour + a.type_gpus * a.price - b.type_gpus * b.price) / (
                a.type_gpus - b.type_gpus)
            if not a.price < p < b.price:
                continue
            line = a.cost_usd_per_hour + a.type_gpus * (p - a.price)
            mid = at(p)
            if mid.cost_usd_per_hour >= line * (1 - TOL) - TOL:
                breaks.add(p)
            else:
                stack += [(a, mid), (mid, b)]
    finally:
        fleet.set_prices({gpu_type: base})
    proven = all(pt.plan.proven_optimal for pt in points.values()) and not stack
    return PriceSensitivity(gpu_type, base, demand, tuple(points[p] for p in sorted(points)), tuple(sorted(breaks)),
                            proven, solves[0])


def spot(fleet: Fleet, demand: float, spot_prices: dict[str, float], time_limit: float | None = None
         ) -> tuple[FleetPlan, FleetPlan]:
    """The optimal fleet at list prices and at the given spot prices ($/GPU-hour per type)."""
    bad = [g for g in spot_prices if g not in fleet.scenario.pool.types]
    if bad:
        raise InputError(Problem(f"unknown GPU type(s) {bad}", "spot"))
    base = fleet.solve(demand, time_limit)
    fleet.set_prices(spot_prices)
    try:
        cheap = fleet.solve(demand, time_limit)
    finally:
        fleet.set_prices({g: fleet.scenario.pool.entry(g).spec.price_usd_per_hour for g in spot_prices})
    return base, cheap
