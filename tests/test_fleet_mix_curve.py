"""The demand curve of a request mix against brute force: every replica plan per class, then every multiset
of replicas within the pool (tests/test_fleet), the least $/hour at each demand read off directly; and the
max-min combination of the classes' lattices (fleet_knapsack) against its definition."""
import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.fleet import Fleet, RequestClass, class_demands, class_scenario
from planner.fleet_curve import CurveStep, demand_curve
from planner.fleet_knapsack import curve_of, dual_bound, maxmin, mix_steps, mixed_curve
from tests import brute
from tests.test_fleet import _served_by_usage, fleet_scenarios, replica_table

TWO = (RequestClass("short", 0.6, 64, 32), RequestClass("long", 0.4, 256, 64))
THREE = TWO + (RequestClass("mid", 0.5, 128, 128),)


def brute_served(sc, mix, types=None):
    """GPU usage u -> the most demand D (billable tokens/s of the mix) that fleets on exactly those GPUs can
    serve, every class q getting its share D_q = f_q D; `types`: only replicas of these pool types."""
    tables = [replica_table(class_scenario(sc, c)) for c in mix]
    if types is not None:
        tables = [[r for r in t if all(n == 0 or g in types for g, n in enumerate(r[1]))] for t in tables]
    f = class_demands(sc, mix, 1.0)
    counts = tuple(sc.pool.entry(g).count for g in sc.pool.types)
    return {u: max(min(s / fq for s, fq in zip(v, f)) for v in served)
            for u, served in _served_by_usage(tables, counts).items()}


def brute_cost(sc, served, demand):
    """The least $/hour of a fleet serving `demand`, None when none can."""
    prices = [sc.pool.entry(g).spec.price_usd_per_hour for g in sc.pool.types]
    costs = [sum(p * x for p, x in zip(prices, u)) for u, d in served.items() if d >= demand * (1 - 1e-9)]
    return min(costs) if costs else None


def curve_cost(steps, demand):
    for s in steps:
        if s.demand_from < demand <= s.demand_to * (1 + 1e-9):
            return s.cost_usd_per_hour
    return None


def demands_to_check(served, cap):
    """A grid, and just above and at every breakpoint of the brute force's curve."""
    points = {cap * k / 17 for k in range(1, 18)}
    for d in set(served.values()):
        if d > 0:
            points |= {d, d * (1 + 1e-6)}
    return sorted(p for p in points if p > 0)


def check_series(sc, steps, served, name):
    top = max(served.values())
    if top <= 0:
        assert steps == [], name
        return
    assert steps, name
    assert steps[-1].demand_to == pytest.approx(top, rel=1e-9), name
    assert all(s.status == "optimal" for s in steps), name
    for d in demands_to_check(served, top):
        want = brute_cost(sc, served, d)
        got = curve_cost(steps, d)
        if want is None:
            assert got is None, (name, d)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (name, d, steps)


def bigger_pools(sc, extra, most=6):
    """More GPUs per type (up to `most`): fleets of several replicas, so that classes compete for the pool."""
    pool = sc.pool
    entries = tuple(replace(e, count=min(most, e.count + extra)) for e in pool.entries)
    return replace(sc, pool=replace(pool, entries=entries))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.integers(0, 3), st.sampled_from([None, 0.8]))
def test_two_class_curve_matches_brute_force(sc, extra, ttft_factor):
    sc = bigger_pools(sc, extra)
    mix = TWO
    if ttft_factor is not None:  # the long class under a TTFT limit near its cheapest pipeline's
        plans = list(brute.all_plans(class_scenario(sc, mix[1])))
        if plans:
            _, _, opts = min(plans, key=lambda p: p[0] / p[1])
            mix = (mix[0], replace(mix[1], max_ttft_ms=sum(o.ttft_s for o in opts) * 1e3 / ttft_factor))
    fleet = Fleet(sc, mix)
    cap, status, _ = fleet.capacity()
    assert status == "optimal"
    curve = demand_curve(fleet, copies=False)
    assert not curve.stopped
    served = brute_served(sc, mix)
    if cap > 0:
        assert "knapsack" in curve.how, curve.how
        # the master's capacity is HiGHS's (within its feasibility tolerance); the brute force checks it exactly
        assert curve.series("mixed")[-1].demand_to == pytest.approx(cap, rel=1e-6)
    check_series(sc, curve.series("mixed"), served, "mixed")
    for i, g in enumerate(sc.pool.types):
        check_series(sc, curve.series(f"only {g}"), brute_served(sc, mix, {i}), f"only {g}")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.integers(0, 2))
def test_three_class_curve_matches_brute_force(sc, extra):
    sc = bigger_pools(sc, extra, 4)  # the brute force's Pareto sets of three classes grow fast
    fleet = Fleet(sc, THREE)
    cap, status, _ = fleet.capacity()
    assert status == "optimal"
    curve = demand_curve(fleet, copies=False)
    assert not curve.stopped
    if cap > 0:
        # the master's capacity is HiGHS's (within its feasibility tolerance); the brute force checks it exactly
        assert curve.series("mixed")[-1].demand_to == pytest.approx(cap, rel=1e-6)
    check_series(sc, curve.series("mixed"), brute_served(sc, THREE), "mixed")


def _monotone(rng, shape):
    X = rng.integers(0, 3, size=shape) * rng.choice([0.5, 1.0, 1.5], size=shape)
    for axis in range(len(shape)):
        X = np.cumsum(X, axis=axis)
    return X


def _maxmin_by_definition(A, B):
    G = np.zeros(A.shape)
    for u in np.ndindex(A.shape):
        for v in itertools.product(*[range(x + 1) for x in u]):
            G[u] = max(G[u], min(A[v], B[tuple(a - b for a, b in zip(u, v))]))
    return G


def test_maxmin_and_pair_points_match_the_definition():
    """G[u] = max over v <= u of min(A[v], B[u - v]) on random monotone lattices (ties included: values are
    multiples of 0.5), and the pair points' step curve is the step curve of that G, at random prices."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        shape = tuple(int(x) for x in rng.integers(1, 5, size=rng.integers(1, 4)))
        A, B = _monotone(rng, shape), _monotone(rng, shape)
        G = _maxmin_by_definition(A, B)
        assert np.array_equal(maxmin(A, B), G)
        prices = rng.choice([0.5, 1.0, 1.7, 3.0], size=len(shape))
        assert mix_steps([A, B], [1.0, 1.0], prices) == curve_of(G, prices)
        C = _monotone(rng, shape)
        want = curve_of(_maxmin_by_definition(G, C), prices)
        assert mix_steps([A, B, C], [1.0, 1.0, 1.0], prices) == want


def two_class_fleet(sc, extra):
    """The scenario with `extra` GPUs more per type, its two-class fleet and its proven capacity."""
    sc = bigger_pools(sc, extra)
    fleet = Fleet(sc, TWO)
    cap, status, _ = fleet.capacity()
    assert status == "optimal"
    return sc, fleet, cap


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.integers(1, 3))
def test_proof_from_the_capacity_fleet_alone(sc, extra):
    """The knapsack starts from the replicas of one capacity fleet only (not every column the master found),
    so that the steps must be proven by the LP duals and the replicas their enumeration adds: the curve is
    still the brute force's."""
    sc, fleet, cap = two_class_fleet(sc, extra)
    if cap <= 0:
        return
    m = fleet.master
    m.allow(None)
    m.ask_capacity(None)
    res = m.optimise(60)
    assert res.proven
    seed = [m.replica(j) for j in res.y]
    got = mixed_curve(fleet, cap, 60, float("inf"), seed=seed)
    assert got is not None
    steps = [CurveStep("mixed", lo, hi, c, "optimal") for lo, hi, c in got[0]]
    check_series(sc, steps, brute_served(sc, TWO), "mixed")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.integers(0, 3), st.sampled_from([0.2, 0.6, 0.95]))
def test_dual_bound_is_below_every_fleet(sc, extra, at):
    """The proof's L(D) = (sum_q pi_q f_q) D + mu.N from the LP duals at one demand is at most the least cost
    of a fleet serving D, at every demand D (the brute force's), as weak duality says."""
    sc, fleet, cap = two_class_fleet(sc, extra)
    if cap <= 0:
        return
    m = fleet.master
    got = m.lp_duals(fleet.demands(at * cap), 60)
    assert got is not None
    slope, intercept = dual_bound(m, got[0])
    served = brute_served(sc, TWO)
    for d in demands_to_check(served, max(served.values())):
        want = brute_cost(sc, served, d)
        if want is not None:
            assert slope * d + intercept <= want + 1e-7 * (1 + want), (d, want)
