"""The persistent HiGHS interface on models small enough to solve by hand."""
from __future__ import annotations

import itertools
import math

import pyomo.environ as pyo
import pytest

from planner.highs_direct import PersistentHighs


def knapsack(values, weights, capacity):
    """max sum v x, sum w x <= cap (a mutable parameter), x binary, written as min -sum v x."""
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, len(values) - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.cap = pyo.Param(mutable=True, initialize=capacity)
    m.w = pyo.Param(m.I, mutable=True, initialize=lambda _m, i: weights[i])
    m.weight = pyo.Constraint(expr=sum(m.w[i] * m.x[i] for i in m.I) <= m.cap)
    m.obj = pyo.Objective(expr=-sum(values[i] * m.x[i] for i in m.I), sense=pyo.minimize)
    return m


def brute(values, weights, capacity, fixed_zero=()):
    best = 0
    for pick in itertools.product((0, 1), repeat=len(values)):
        if any(pick[i] for i in fixed_zero):
            continue
        if sum(w * p for w, p in zip(weights, pick)) <= capacity:
            best = max(best, sum(v * p for v, p in zip(values, pick)))
    return best


VALUES, WEIGHTS = [10, 13, 7, 8, 4], [5, 6, 3, 4, 2]


def test_solves_and_follows_changed_bounds_parameters_and_coefficients():
    m = knapsack(VALUES, WEIGHTS, 10)
    hs = PersistentHighs(m, {"threads": 1})
    assert -hs.run(10, 0).objective == brute(VALUES, WEIGHTS, 10) == 21  # 13+8 (weights 6+4) or 10+7+4

    m.cap.value = 13  # a mutable bound
    hs.refresh_rows()
    assert -hs.run(10, 0).objective == brute(VALUES, WEIGHTS, 13)

    m.x[1].setub(0)  # a variable bound, pushed by its owner
    hs.set_col_bounds(m.x[1])
    r = hs.run(10, 0)
    assert -r.objective == brute(VALUES, WEIGHTS, 13, fixed_zero=(1,))
    assert r.values[hs.col(m.x[1])] == 0

    m.w[0].value = 1  # a mutable coefficient
    hs.refresh_rows()
    weights = [1] + WEIGHTS[1:]
    r = hs.run(10, 0)
    assert -r.objective == brute(VALUES, weights, 13, fixed_zero=(1,))
    chosen = [i for i in range(len(VALUES)) if round(r.values[hs.col(m.x[i])])]
    assert sum(VALUES[i] for i in chosen) == -r.objective and sum(weights[i] for i in chosen) <= 13
    assert r.status == "optimal" and r.gap == 0.0


def test_infeasible_has_no_values():
    m = knapsack(VALUES, WEIGHTS, 10)
    m.must = pyo.Constraint(expr=sum(m.x[i] for i in m.I) >= 5)  # all five weigh 20 > 10
    r = PersistentHighs(m, {}).run(10, 0)
    assert r.status == "infeasible" and r.values is None and math.isnan(r.objective)


def test_time_limit_is_per_run_not_summed_over_runs():
    """A sweep re-solves one instance many times with the time left: each run must get its own limit.
    HiGHS's run clock sums over runs (older HiGHS compared the limit with that sum, ERGO-Code/HiGHS#1331):
    a hard 120-item, 8-row knapsack run three times with a 0.3 s limit stops on the limit each time after
    about 0.3 s, neither at once nor later."""
    import random
    import time

    rng = random.Random(1)
    n, k = 120, 8
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, n - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.rows = pyo.ConstraintList()
    for _ in range(k):
        w = [rng.randint(20, 60) for _ in range(n)]
        m.rows.add(sum(w[i] * m.x[i] for i in m.I) <= sum(w) / 3)
    m.obj = pyo.Objective(expr=-sum(rng.randint(50, 100) * m.x[i] for i in m.I))
    hs = PersistentHighs(m, {"threads": 1})
    for _ in range(3):
        t0 = time.perf_counter()
        r = hs.run(0.3, 0)
        took = time.perf_counter() - t0
        assert r.status == "time_limit" and r.values is not None and r.gap > 0
        assert 0.25 < took < 1.5


def test_no_banner_on_stdout(capfd):
    """The CLI's --json output must stay parseable: HiGHS's banner must not reach file descriptor 1."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import pyomo.environ as pyo\n"
                          "from planner.highs_direct import PersistentHighs\n"
                          "m = pyo.ConcreteModel(); m.x = pyo.Var(bounds=(1, 2)); m.o = pyo.Objective(expr=m.x)\n"
                          "print(PersistentHighs(m, {}).run(5, 0).objective)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.0"


def test_rejects_a_nonlinear_row():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 2))
    m.c = pyo.Constraint(expr=m.x * m.x <= 1)
    m.o = pyo.Objective(expr=m.x)
    with pytest.raises(ValueError, match="not linear"):
        PersistentHighs(m, {})


def test_options_are_checked_and_the_speed_options_are_set():
    """A misspelt required option is an error (it used to be ignored); a speed option is set where HiGHS has
    it and skipped where it does not (older HiGHS versions have no feasibility jump to turn off)."""
    from planner import highs_direct
    from planner.errors import SolverError

    hs = PersistentHighs(knapsack(VALUES, WEIGHTS, 10), {"threads": 1})
    for key, value in highs_direct.SPEED_OPTIONS.items():
        assert hs.h.getOptionValue(key)[1] == value
    with pytest.raises(SolverError, match="no_such_option"):
        PersistentHighs(knapsack(VALUES, WEIGHTS, 10), {"no_such_option": 1})
    with pytest.raises(SolverError, match="threads"):
        PersistentHighs(knapsack(VALUES, WEIGHTS, 10), {"threads": "many"})
    highs_direct.set_option(hs.h, "no_such_option", True, required=False)  # skipped, not an error
    assert hs.run(10, 0).objective == -brute(VALUES, WEIGHTS, 10)


@pytest.mark.parametrize("name, quantization", [("medium", "fine"), ("realistic", None), ("small", "full")])
def test_the_speed_options_change_no_answer(monkeypatch, name, quantization):
    """The exact optimum and the whole frontier are the same with HiGHS's default options (only the order in
    which equally good plans turn up may differ, never a cost or a throughput)."""
    from dataclasses import replace

    from planner import Planner, build_candidates, highs_direct, load_config_dir

    sc = load_config_dir(f"config/{name}")
    if quantization:
        sc = replace(sc, settings=replace(sc.settings, quantization=quantization))
    cs = build_candidates(sc)

    def answer():
        r = Planner(sc, cs).exact(with_frontier=True)
        return r.plan.usd_per_million_tokens, [(p.cost_usd_per_hour, p.tokens_per_s) for p in r.frontier]

    fast = answer()
    monkeypatch.setattr(highs_direct, "SPEED_OPTIONS", {})
    plain = answer()
    assert fast[0] == pytest.approx(plain[0], rel=1e-9)
    assert len(fast[1]) == len(plain[1]) > 1
    for (c1, t1), (c2, t2) in zip(fast[1], plain[1]):
        assert c1 == pytest.approx(c2, rel=1e-9) and t1 == pytest.approx(t2, rel=1e-9)
