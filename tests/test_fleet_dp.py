"""The fleet's exact shortcuts against brute force: the pricing's dynamic program (`fleet_dp`, through
`LevelPricer.price`) and the knapsack demand curves (`fleet_knapsack`, `fleet_curve.single_type_steps`)."""
import itertools
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.fleet import Fleet
from planner.fleet_curve import _steps, demand_curve
from planner.fleet_pricing import level_pricers
from tests import brute
from tests.test_fleet import fleet_scenarios
from tests.test_planner import small_scenarios


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


def _all_replicas(lp, p):
    """Every replica of the pricer's own options at P = p by brute force: (rc, rate, GPUs, key) with key
    (first, sorted middles, last) option indices, or ('only', i); within the TTFT limit and the pool."""
    roles, L, counts = lp.roles, lp.L, lp.counts
    tol = lp.ttft * (1 + 1e-9)

    def usable(role):
        r = roles[role]
        return [i for i in range(r["theta"].size) if r["lo"][i] <= p <= r["hi"][i]]

    def figures(steps):
        n = np.zeros(len(counts), dtype=np.int64)
        W = pre = 0.0
        th = np.inf
        for role, i in steps:
            r = roles[role]
            n[r["type"][i]] += r["tp"][i]
            W += r["w"][i]
            pre += r["pre"][i]
            th = min(th, r["theta"][i])
        if sum(roles[role]["size"][i] for role, i in steps) != L or np.any(n > counts) or pre > tol:
            return None
        return W - lp.pi * min(th, lp.cap), th, tuple(int(x) for x in n)

    out = []
    if p == 1:
        for i in usable("only"):
            f = figures([("only", i)])
            if f is not None:
                out.append((*f, ("only", i)))
        return out
    for a in usable("first"):
        for mids in itertools.combinations_with_replacement(usable("middle"), p - 2):
            for b in usable("last"):
                f = figures([("first", a)] + [("middle", m) for m in mids] + [("last", b)])
                if f is not None:
                    out.append((*f, (a, mids, b)))
    return out


def _key(lp, found):
    idx = {role: {id(o): i for i, o in enumerate(r["opts"])} for role, r in lp.roles.items()}
    os_ = found.options
    if len(os_) == 1:
        return ("only", idx["only"][id(os_[0])])
    return (idx["first"][id(os_[0])], tuple(idx["middle"][id(o)] for o in os_[1:-1]), idx["last"][id(os_[-1])])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_scenarios(), st.integers(0, 10_000), st.sampled_from([np.inf, 0.5]), st.sampled_from([None, 0.4, 1.0]),
       st.sampled_from([0.0, 0.2, 0.6, 1.0]))
def test_branch_and_bound_enumerates_exactly(sc, seed, cap_share, ttft_share, quantile):
    """The proof's enumeration (`LevelPricer.search`, collect) returns exactly the replicas of reduced cost
    <= a threshold (of those with the same GPUs only the fastest, when no TTFT limit makes prefill a third
    figure), and pricing the least one; against every first stage, multiset of middles and last stage of
    the pricer's own options, at random GPU weights and demand dual, up to 4 stages (2 middles, so the
    extension's pruning of middles by their parent's bound runs at two depths). The level's floor (its
    options' best rc per layer, times L) is below every replica's rc."""
    fleet = Fleet(sc)
    opts = [o for lp in fleet.catalogues[0] for r in lp.roles.values() for o in r["opts"]]
    if not opts:
        return
    rng = random.Random(seed)
    T = len(fleet.types)
    ttft = None if ttft_share is None else ttft_share * 2 * max(o.ttft_s for o in opts)
    counts = tuple(sc.pool.entry(g).count for g in fleet.types)
    pricers = level_pricers(opts, fleet.types, counts, sc.model.num_layers, ttft)
    w = np.array([rng.uniform(0.1, 5.0) for _ in range(T)])
    rates = [o.tokens_per_s for o in opts]
    pi = rng.uniform(0.2, 3.0) * float(np.median(w)) / float(np.median(rates))
    cap = cap_share * max(rates)
    for lp in pricers:
        if lp.empty:
            continue
        lp.prepare(w, pi, cap)
        for p in lp.level.stage_counts:
            every = _all_replicas(lp, p)
            if not every:
                assert lp.search(p, 1e18, True, 10**7)[0] == []
                continue
            # a threshold between two reduced costs that differ by more than rounding (a replica's figures
            # summed in another order may differ in the last digits)
            rcs = sorted(rc for rc, *_ in every)
            # the level's floor (which lets a search skip the level) is below every replica's rc
            assert lp.floor <= rcs[0]
            assert lp.search(p, rcs[0] - 1e-7 * (1 + abs(rcs[0])), True, 10**7) == ([], True)
            apart = [i for i in range(len(rcs) - 1) if rcs[i + 1] - rcs[i] > 1e-9 * (1 + abs(rcs[i]))]
            k = apart[min(int(quantile * len(apart)), len(apart) - 1)] if apart else len(rcs) - 1
            thr = (rcs[k] + rcs[k + 1]) / 2 if k + 1 < len(rcs) else rcs[k] + 1.0
            found, complete = lp.search(p, thr, True, 10**7)
            assert complete
            if ttft is None:  # the fastest replica of each GPU vector, if it is below the threshold
                fastest = {}
                for rc, th, n, _ in every:
                    if n not in fastest or th > fastest[n][1]:
                        fastest[n] = (rc, th)
                want = {n: th for n, (rc, th) in fastest.items() if rc <= thr}
                assert {f.gpus: f.theta for f in found} == want
                assert len(found) == len(want)
            else:
                assert sorted(_key(lp, f) for f in found) == sorted(key for rc, _, _, key in every if rc <= thr)
            best, _ = lp.search(p, thr, False, 10**7)
            if rcs[0] < thr:
                assert best and best[0].rc == pytest.approx(rcs[0], rel=1e-9, abs=1e-9)
            else:
                assert best == []
