"""Honest status: "optimal" only when proven, the gap is a proven bound on $/token, tolerances scale with
the numbers, and the explanation names the limit that bound (issue 11, item 4)."""
from dataclasses import replace

import pytest

import planner.milp as milp
from planner import Planner, load_config_dir, perf
from tests.helpers import CAT, gpu, scenario, tiny_model


def _scaled(sc, factor):
    entries = tuple(replace(e, spec=replace(e.spec, price_usd_per_hour=e.spec.price_usd_per_hour * factor))
                    for e in sc.pool.entries)
    st = sc.settings
    budget = None if st.max_usd_per_hour is None else st.max_usd_per_hour * factor
    return replace(sc, pool=replace(sc.pool, entries=entries), settings=replace(st, max_usd_per_hour=budget))


@pytest.fixture(scope="module")
def realistic():
    return load_config_dir("config/realistic")


@pytest.fixture(scope="module")
def realistic_exact(realistic):
    r = Planner(realistic).exact(with_frontier=True)
    assert r.proven_optimal and r.gap == 0.0 and r.status == "optimal" and r.extra["limits"] == []
    return r


@pytest.mark.parametrize("factor", [1e-6, 1e3])
def test_scaled_prices_give_the_same_plan_proven_with_no_gap(realistic, realistic_exact, factor):
    """All prices x 1e-6 made HiGHS's absolute tolerances (gap 1e-6, feasibility 1e-7) larger than the costs:
    a plan 7.9% off was "optimal" and the frontier lost a point. Costs are now scaled inside the MILP."""
    r = Planner(_scaled(realistic, factor)).exact(with_frontier=True)
    assert r.proven_optimal and r.status == "optimal"
    assert r.gap <= 1e-9
    assert r.plan.usd_per_million_tokens / factor == pytest.approx(realistic_exact.plan.usd_per_million_tokens,
                                                                   rel=1e-9)
    assert len(r.frontier) == len(realistic_exact.frontier)
    for p, q in zip(r.frontier, realistic_exact.frontier):
        assert p.cost_usd_per_hour / factor == pytest.approx(q.cost_usd_per_hour, rel=1e-9)
        assert p.tokens_per_s == pytest.approx(q.tokens_per_s, rel=1e-9)


def _stop_after(monkeypatch, n_proven: int, bound_fraction: float):
    """Every HiGHS run after the first `n_proven` reports a time limit, with its best bound at
    `bound_fraction` of the plan it found (as a stopped branch and bound does)."""
    real = milp.run_highs
    calls = [0]

    def fake(model, time_limit, gap, scale=1.0):
        out = real(model, time_limit, gap, scale)
        calls[0] += 1
        if out is None or calls[0] <= n_proven:
            return out
        status, objective, bound, _, seconds = out
        return "time_limit", objective, objective * bound_fraction, 1 - bound_fraction, seconds

    monkeypatch.setattr(milp, "run_highs", fake)
    return calls


@pytest.mark.parametrize("with_frontier", [False, True])
def test_a_solve_stopped_by_a_limit_is_not_proven_and_its_gap_bounds_usd_per_token(
        realistic, realistic_exact, monkeypatch, with_frontier):
    _stop_after(monkeypatch, 1, 0.5)
    r = Planner(realistic).exact(with_frontier=with_frontier)
    assert not r.proven_optimal and r.status == "time_limit"
    assert r.extra["limits"] and "stopped at its time limit" in r.extra["limits"][0]
    assert "not proven optimal" in r.how and "time limit" in r.how
    # the gap is a valid bound on $/token: the true minimum is no lower than plan x (1 - gap)
    best = realistic_exact.plan.usd_per_million_tokens
    assert r.plan.usd_per_million_tokens * (1 - r.gap) <= best * (1 + 1e-9)
    assert 0 < r.gap <= 1


def test_a_real_tiny_time_limit_reports_a_valid_gap_on_usd_per_token(realistic, realistic_exact):
    sc = replace(realistic, settings=replace(realistic.settings, time_limit_s=0.001))
    r = Planner(sc).exact()
    best = realistic_exact.plan.usd_per_million_tokens
    if r.proven_optimal:  # only if what was left open cannot beat the plan
        assert r.plan.usd_per_million_tokens == pytest.approx(best, rel=1e-9)
    else:
        assert r.status == "time_limit" and r.extra["limits"]
        assert any("time limit (0.001 s)" in x for x in r.extra["limits"])
        assert r.plan.usd_per_million_tokens * (1 - r.gap) <= best * (1 + 1e-9)


def test_limits_that_leave_nothing_better_open_still_prove_the_optimum(realistic, realistic_exact, monkeypatch):
    """A stopped solve whose bound cannot beat the incumbent does not cost the proof: the gap is on $/token."""
    _stop_after(monkeypatch, 0, 1.0)  # every run "stopped", but at a bound equal to its plan (gap 0)
    r = Planner(realistic).exact()
    assert r.proven_optimal and r.gap <= 1e-9 and r.extra["limits"]
    assert "cannot beat this plan" in r.how
    assert r.plan.usd_per_million_tokens == pytest.approx(realistic_exact.plan.usd_per_million_tokens, rel=1e-9)


def test_a_link_bound_plan_names_the_link_not_the_time_limit():
    """Two GPUs, each holding half the model, joined by a near-zero link: the plan is bounded by the link
    (which the MILP does not model), found in well under the time limit. The explanation must say so."""
    m = tiny_model(layers=4, hidden=4096)
    e = CAT.engine("vllm")

    def need(layers, first, last):  # GB a stage needs besides the engine's reserve
        # 8 sequences of 256 + 64 tokens hold 256 + 32 = 288 KV tokens each on average
        mem = perf.stage_memory(m, gpu("X", 1000, 1), e, layers, 1, first, last, 8, 288)
        return mem.total_gb - mem.reserve_gb

    usable = (max(need(2, True, False), need(2, False, True)) + min(need(3, True, False), need(3, False, True))) / 2
    # each GPU holds half the model, not more: usable (GB) = capacity (GiB) x utilisation - reserve (GiB)
    cap = (usable * 1e9 + e.runtime_reserve_gib * 2 ** 30) / e.memory_utilization / 2 ** 30
    sc = scenario(m, [(gpu("A", cap, 1.0), 1), (gpu("B", cap, 3.0), 1)], concurrency=8, quantization="full",
                  time_limit_s=60)
    sc = replace(sc, pool=replace(sc.pool, link_gb_per_s=(("A", "B", 1e-6),)))
    r = Planner(sc).exact()
    assert len(r.plan.stages) == 2
    assert r.plan.link_bound
    assert not r.proven_optimal and r.status == "link_bound"
    assert "time limit" not in r.how and "link after stage 1" in r.how
    assert "A -> B" in r.how or "B -> A" in r.how
    assert r.extra["limits"] == []
    assert r.gap > 0.5  # the link makes the plan far slower than its stages: the bound says so


WHATIF = [("pareto",), ("baselines",), ("quantization", "--levels", "coarse,full"),
          ("sensitivity", "--no-break-even"), ("spot", "--spot", "A100=0.6")]


@pytest.mark.parametrize("command", WHATIF, ids=[c[0] for c in WHATIF])
def test_whatif_commands_report_not_proven_when_a_limit_hit(command, capsys):
    """`pareto --time-limit 0.001` printed "13 Pareto-optimal plans (exact)" 39% above the optimum on xl.
    On medium a 1 ms limit stops every sweep after its first solve: each command must say so."""
    import json

    from planner.cli import main

    assert main([command[0], "--config-dir", "config/medium", *command[1:], "--time-limit", "0.001", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["proven_optimal"] is False and doc["not_proven"]
    assert all(b["limits"] for b in doc["not_proven"])
    assert any("time limit (0.001 s)" in x for b in doc["not_proven"] for x in b["limits"])
    assert main([command[0], "--config-dir", "config/medium", *command[1:], "--time-limit", "0.001"]) == 0
    text = capsys.readouterr().out
    assert "NOT proven optimal" in text and "(exact)" not in text


def test_whatif_commands_say_proven_when_they_are(capsys):
    import json

    from planner.cli import main

    assert main(["pareto", "--config-dir", "config/medium", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["proven_optimal"] is True and doc["not_proven"] == [] and doc["gap"] <= 1e-9
    assert main(["baselines", "--config-dir", "config/medium"]) == 0
    assert "NOT proven" not in capsys.readouterr().out


def test_a_solve_stopped_before_any_plan_leaves_its_level_open_instead_of_failing(realistic, realistic_exact,
                                                                                  monkeypatch):
    """A MILP that a limit stops before it finds a plan used to fail the whole command (exit 4); the other
    levels' plans stand, the stopped level stays open in the gap."""
    real = milp.run_highs
    calls = [0]

    def fake(model, time_limit, gap, scale=1.0):
        calls[0] += 1
        if calls[0] == 2:
            raise milp.StoppedWithoutPlan("stopped", "time_limit", 0.0)
        return real(model, time_limit, gap, scale)

    monkeypatch.setattr(milp, "run_highs", fake)
    r = Planner(realistic).exact()
    assert not r.proven_optimal and r.status == "time_limit" and r.gap > 0
    assert any("before finding a plan" in x for x in r.extra["limits"])
    assert r.plan.usd_per_million_tokens * (1 - r.gap) <= realistic_exact.plan.usd_per_million_tokens * (1 + 1e-9)


def test_every_solve_stopped_before_a_plan_is_a_solver_failure_not_infeasible(monkeypatch):
    """With no plan found because a limit stopped every solve, "no plan exists" (exit 3) would be a claim
    the search did not prove: it is a solver failure naming the limit (exit 4)."""
    from planner import InfeasibleError, SolverError

    def fake(model, time_limit, gap, scale=1.0):
        raise milp.StoppedWithoutPlan("stopped", "time_limit", 0.0)

    monkeypatch.setattr(milp, "run_highs", fake)
    sc = load_config_dir("config/small")
    with pytest.raises(SolverError, match="no plan found within the time limit") as info:
        Planner(sc).exact()
    assert not isinstance(info.value, InfeasibleError)
