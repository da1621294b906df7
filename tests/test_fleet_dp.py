"""The fleet's exact shortcuts against brute force: the pricing's dynamic program (`fleet_dp`, through
`LevelPricer.price`) and the knapsack demand curves (`fleet_knapsack`, `fleet_curve.single_type_steps`)."""
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.fleet import Fleet
from planner.fleet_curve import _steps, demand_curve
from tests import brute
from tests.test_fleet import fleet_scenarios


def _least_rc(sc, w, pi, cap):
    """(level, stages) -> the least reduced cost W - pi min(rate, cap) over every feasible plan, by brute force."""
    index = {g: i for i, g in enumerate(sc.pool.types)}
    best = {}
    for _, rate, opts in brute.all_plans(sc):
        W = sum(w[index[o.gpu_type]] * o.tp for o in opts)
        key = (opts[0].level, len(opts))
        best[key] = min(best.get(key, np.inf), W - pi * min(rate, cap))
    return best


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios(), st.integers(0, 10_000), st.sampled_from([np.inf, 0.5]))
def test_dynamic_program_pricing_is_exact(sc, seed, cap_share):
    """At random GPU weights and demand dual, pricing finds a replica below a threshold just above the brute
    force's least reduced cost of each (level, stage count) and proves none below one just under it."""
    fleet = Fleet(sc)
    rng = random.Random(seed)
    T = len(fleet.types)
    w = np.array([rng.uniform(0.1, 5.0) for _ in range(T)])
    rates = [o.tokens_per_s for lp in fleet.catalogues[0] if not lp.empty for r in lp.roles.values() for o in r["opts"]]
    if not rates:
        return
    pi = rng.uniform(0.2, 3.0) * float(np.median(w)) / float(np.median(rates))
    cap = cap_share * max(rates)
    want = _least_rc(sc, w, pi, cap)
    for lp in fleet.catalogues[0]:
        if lp.empty:
            continue
        lp.prepare(w, pi, cap)
        for p in lp.level.stage_counts:
            best = want.get((lp.level, p))
            if best is None:
                assert lp.price(p, 1e18, 10**6)[0] == [] or lp.price(p, 1e18, 10**6)[0][0].rc < 1e18
                continue
            eps = 1e-7 * (1 + abs(best))
            found, complete = lp.price(p, best + eps, 10**6)
            assert complete and len(found) == 1
            assert found[0].rc < best + eps and found[0].rc >= best - eps
            assert sum(o.size for o in found[0].options) == sc.model.num_layers
            none, complete = lp.price(p, best - eps, 10**6)
            assert complete and none == []


def _series(curve, name):
    return [(round(s.demand_to, 6), round(s.cost_usd_per_hour, 9)) for s in curve.series(name)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet_scenarios())
def test_knapsack_curves_match_the_parametric_solves(sc):
    """The mixed curve (knapsack over GPU usage, proven by LP duals) and each single-type curve (knapsack over
    the type's replicas) are the step curves that the step-by-step exact solves give (min cost just above
    each breakpoint, then the most tokens/s at that cost; both tested against brute force in test_fleet)."""
    fleet = Fleet(sc)
    cap = fleet.capacity()[0]
    if cap <= 0:
        return
    curve = demand_curve(fleet, copies=False)
    assert "knapsack" in curve.how and not curve.stopped
    ref = Fleet(sc)
    for i, g in [(None, "mixed")] + list(enumerate(sc.pool.types)):
        name = "mixed" if i is None else f"only {g}"
        types = None if i is None else {i}
        want = [(round(s.demand_to, 6), round(s.cost_usd_per_hour, 9))
                for s in _steps(ref, name, types, 60, 2000, [0], float("inf"), [])]
        got = _series(curve, name)
        assert len(got) == len(want), name
        flat = [x for pair in got for x in pair]
        assert flat == pytest.approx([x for pair in want for x in pair], rel=1e-7, abs=1e-7), name
