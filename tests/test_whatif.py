"""What-if analyses against values derived another way: brute force over every pipeline of small random
scenarios (re-priced by hand), direct re-solves, and hand arithmetic; the CLI's exit codes and JSON keys."""
import json
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import InfeasibleError, InputError, Planner, build_candidates, load_config_dir
from planner import whatif as W
from planner import whatif_prices as P
from planner.cli import main
from planner.errors import CancelledError
from planner.scenario_io import scenario_texts_to_json
from tests import brute
from tests.helpers import gpu, scenario, tiny_model, with_host_ms

ROOT = Path(__file__).resolve().parent.parent
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ brute force, priced by hand
def priced_plans(sc):
    """Every feasible plan as (GPUs by type, tokens/s): prices left out, so any price vector applies."""
    out = set()
    for _, t, opts in brute.all_plans(sc):
        n = {}
        for o in opts:
            n[o.gpu_type] = n.get(o.gpu_type, 0) + o.tp
        out.add((tuple(sorted(n.items())), t))
    return [(dict(n), t) for n, t in out]


def prices_of(sc, **changed):
    return {e.name: changed.get(e.name, e.spec.price_usd_per_hour) for e in sc.pool.entries}


def usd_per_m(n, t, prices):
    return sum(k * prices[g] for g, k in n.items()) / (3600 * t) * 1e6


def best(plans, prices, keep=lambda n: True, cap=None):
    """(min $/M total tokens, GPUs by type, tokens/s) over the plans `keep` accepts, or None."""
    out = None
    for n, t in plans:
        if not keep(n) or (cap is not None and sum(k * prices[g] for g, k in n.items()) > cap * (1 + 1e-12)):
            continue
        v = usd_per_m(n, t, prices)
        if out is None or v < out[0]:
            out = (v, n, t)
    return out


def envelope_kinks(plans, gpu_type, base_prices, lo, hi):
    """Prices in (lo, hi) where the lower envelope of the plans' $/M lines in one price bends."""
    lines = set()
    for n, t in plans:
        k = 1e6 / (3600 * t)
        other = sum(c * base_prices[g] for g, c in n.items() if g != gpu_type)
        lines.add((other * k, n.get(gpu_type, 0) * k))
    cur = min(lines, key=lambda ln: (ln[0] + ln[1] * lo, ln[1]))
    x, kinks = lo, []
    while True:
        steeper = [((a - cur[0]) / (cur[1] - b), b, (a, b)) for a, b in lines if b < cur[1] - 1e-15]
        steeper = [s for s in steeper if s[0] > x * (1 + 1e-12)]
        if not steeper:
            return kinks
        x, _, cur = min(steeper)
        if x >= hi:
            return kinks
        kinks.append(x)


gpu_st = st.builds(lambda mem, price, tflops, hbm, per_node: gpu("X", mem, price, tflops, hbm, per_node),
                   st.sampled_from([2.0, 3.0, 4.0, 8.0, 16.0]), st.sampled_from([0.5, 1.0, 1.7, 3.0]),
                   st.sampled_from([30.0, 100.0, 300.0]), st.sampled_from([300.0, 1000.0, 3000.0]),
                   st.sampled_from([1, 2, 4]))


@st.composite
def small_scenarios(draw, min_types=1):
    layers = draw(st.integers(2, 5))
    gpus = [(replace(draw(gpu_st), sku=f"T{i}"), draw(st.integers(1, 4)))
            for i in range(draw(st.integers(min_types, 3)))]
    m = tiny_model(layers=layers, hidden=draw(st.sampled_from([1024, 2048, 4096])))
    sc = scenario(m, gpus, concurrency=draw(st.sampled_from([1, 4, 16, None])), max_stages=draw(st.integers(1, 4)),
                  quantization=draw(st.sampled_from(["full", "coarse"])))
    # the engine's per-step overhead flattens tiny models' frontiers to one point; without it GPUs matter
    return with_host_ms(sc, draw(st.sampled_from([0.0, 40.0])))


def two_types():
    """A pool where neither type dominates: A cheap and slow, B dear and fast; both hold the model."""
    sc = scenario(tiny_model(layers=4), [(gpu("A", 16, 1.0, tflops=100, hbm=1000), 4),
                                         (gpu("B", 16, 2.5, tflops=300, hbm=3000), 4)], concurrency=16)
    return with_host_ms(sc, 0.0)


# ------------------------------------------------------------------ 1. frontier
@settings(max_examples=15, **SLOW)
@given(small_scenarios())
def test_frontier_rows_match_brute_force(sc):
    want = brute.frontier(sc)
    if not want:
        with pytest.raises(InfeasibleError):
            W.pareto(sc, with_grid=False)
        return
    fr = W.pareto(sc, with_grid=True)
    assert [p.cost_usd_per_hour for p in fr.points] == pytest.approx([c for c, _ in want], rel=1e-9)
    assert [p.tokens_per_s for p in fr.points] == pytest.approx([t for _, t in want], rel=1e-9)
    ratio, _, _ = brute.best_ratio(sc)
    marked = [p for p in fr.points if p.min_usd_per_token]
    assert len(marked) == 1 and marked[0] is fr.best
    assert fr.best.cost_usd_per_hour / fr.best.tokens_per_s == pytest.approx(ratio, rel=1e-9)
    for p in fr.points:  # each row's figures and layout describe its own plan
        assert p.usd_per_million_tokens == pytest.approx(p.cost_usd_per_hour / (3600 * p.tokens_per_s) * 1e6)
        assert p.gpus == sum(n for _, n in p.gpus_by_type) == p.plan.num_gpus and p.stages == len(p.plan.stages)
    for g in fr.grid:  # a grid point sits on the frontier point with its (cost, throughput), if any
        if g.frontier_index is not None:
            p = fr.points[g.frontier_index]
            assert (p.cost_usd_per_hour, p.tokens_per_s) == pytest.approx((g.cost_usd_per_hour, g.tokens_per_s))
            assert g.budget_usd_per_hour in p.grid_budgets_usd_per_hour
            assert g.cost_usd_per_hour <= g.budget_usd_per_hour * (1 + 1e-9)
        elif g.cost_usd_per_hour is not None:
            assert all(not (W.same(p.cost_usd_per_hour, g.cost_usd_per_hour) and W.same(p.tokens_per_s, g.tokens_per_s))
                       for p in fr.points)


def test_min_point_inside_the_frontier():
    """Here the cheapest plan is not the cheapest per token: the marked point must be the brute force's."""
    sc = two_types()
    fr = W.pareto(sc, with_grid=False)
    ratio, cost, rate = brute.best_ratio(sc)
    marked = [p for p in fr.points if p.min_usd_per_token]
    assert len(marked) == 1 and marked[0] is fr.best and fr.best_index > 0
    assert (marked[0].cost_usd_per_hour, marked[0].tokens_per_s) == pytest.approx((cost, rate))


# ------------------------------------------------------------------ 2. baselines
@settings(max_examples=15, **SLOW)
@given(small_scenarios(min_types=2))
def test_baselines_match_brute_force_per_type(sc):
    plans = priced_plans(sc)
    prices = prices_of(sc)
    mixed = best(plans, prices)
    if mixed is None:
        with pytest.raises(InfeasibleError):
            W.baselines(sc)
        return
    b = W.baselines(sc)
    assert b.mixed.headline.usd_per_million_tokens == pytest.approx(mixed[0], rel=1e-9)
    singles = {}
    for row in b.singles:
        want = best(plans, prices, keep=lambda n, g=row.gpu_type: set(n) == {g})
        singles[row.gpu_type] = want
        if want is None:
            assert row.headline is None and row.reason  # says why, from the InfeasibleError
        else:
            assert row.headline.usd_per_million_tokens == pytest.approx(want[0], rel=1e-9)
            assert set(dict(row.headline.gpus_by_type)) == {row.gpu_type}
            assert row.vs_mixed_pct == pytest.approx((want[0] - mixed[0]) / mixed[0] * 100, abs=1e-6)
    feasible = [v[0] for v in singles.values() if v is not None]
    if not feasible:
        assert b.savings_pct is None and "only the mixed pool" in b.verdict
    else:
        want = (min(feasible) - mixed[0]) / min(feasible) * 100
        assert b.savings_pct == pytest.approx(want, abs=1e-6)
        assert ("mixing saves" in b.verdict) == (want > 1e-7)


def test_mixing_saves_by_hand():
    """A and B are the same GPU at $0.2 and $1/h; one GPU holds two of the four layers, and A has one GPU.
    B alone needs two B stages ($2/h); one B stage and the A stage give the same throughput (same GPUs, same
    split) for $1.2/h: mixing saves 1 - 1.2 / 2 = 40%. One GPU per node (no TP, which would otherwise hold
    the model on two B GPUs in one faster stage). 4 GiB: the engine has 0.9 x 4 GiB less 1.5 GiB and
    0.81 GB of activations = 1.45 GB; two layers (2 x 0.54 GB with their KV cache) fit, three do not."""
    sc = scenario(tiny_model(layers=4, hidden=4096), [(gpu("A", 4, 0.2, per_node=1), 1),
                                                       (gpu("B", 4, 1.0, per_node=1), 4)], concurrency=4)
    b = W.baselines(sc)
    a_alone, b_alone = b.singles
    assert a_alone.headline is None and "No plan" in a_alone.reason
    assert b_alone.headline.cost_usd_per_hour == pytest.approx(2.0) and b.mixed.headline.cost_usd_per_hour == 1.2
    assert b_alone.headline.tokens_per_s == pytest.approx(b.mixed.headline.tokens_per_s, rel=1e-12)
    assert b.savings_pct == pytest.approx(40.0) and b.verdict.startswith("mixing saves 40.0%")


def test_baseline_of_a_type_too_small_says_why():
    sc = scenario(tiny_model(layers=4, hidden=4096), [(gpu("Big", 80, 2.0), 2), (gpu("Tiny", 0.5, 0.1), 2)])
    b = W.baselines(sc)
    tiny = next(x for x in b.singles if x.gpu_type == "Tiny")
    assert tiny.headline is None and "memory" in tiny.reason
    assert b.best_single == "Big" and "does not help" in b.verdict and b.savings_pct == 0.0


# ------------------------------------------------------------------ 3. price sensitivity
@settings(max_examples=10, **SLOW)
@given(small_scenarios(min_types=2), st.sampled_from([10.0, 25.0, 50.0]), st.sampled_from([None, 1.0, 1.5]))
def test_tornado_and_break_even_match_brute_force(sc, percent, cap_factor):
    plans = priced_plans(sc)
    base_prices = prices_of(sc)
    cheapest = min((sum(k * base_prices[g] for g, k in n.items()) for n, _ in plans), default=None)
    if cheapest is None:
        return
    cap = None if cap_factor is None else cheapest * cap_factor
    sc = replace(sc, settings=replace(sc.settings, max_usd_per_hour=cap))
    base = best(plans, base_prices, cap=cap)
    t = P.tornado(sc, percent)
    assert t.base.usd_per_million_tokens == pytest.approx(base[0], rel=1e-9)
    for row in t.rows:
        for side, factor in ((row.low, 1 - percent / 100), (row.high, 1 + percent / 100)):
            want = best(plans, prices_of(sc, **{row.gpu_type: base_prices[row.gpu_type] * factor}), cap=cap)
            if want is None:
                assert side is None
            else:
                assert side.usd_per_million_tokens == pytest.approx(want[0], rel=1e-9)
    swings = [r.swing_usd_per_million_tokens for r in t.rows if r.swing_usd_per_million_tokens is not None]
    assert swings == sorted(swings, reverse=True)

    for be in P.break_evens(sc):
        g = be.gpu_type

        def inside(price):  # the best plan with g beats every plan without it
            prices = prices_of(sc, **{g: price})
            with_g = best(plans, prices, keep=lambda n: g in n, cap=cap)
            without = best(plans, prices, keep=lambda n: g not in n, cap=cap)
            return with_g is not None and (without is None or with_g[0] < without[0] * (1 - 1e-9))

        assert be.in_plan_now == inside(base_prices[g])
        without = best(plans, base_prices, keep=lambda n: g not in n, cap=cap)
        if be.break_even_usd_per_hour is None:
            if be.in_plan_now:
                assert without is None
            else:
                assert not inside(base_prices[g] * P.ENTER_PROBE)
            continue
        x = be.break_even_usd_per_hour
        assert be.exact
        above = 1e-4 if "budget cap" in be.meaning else 1e-6  # a cap jump is located to CAP_STEP
        assert inside(x * (1 - 1e-6)) and not inside(x * (1 + above))
        assert be.without_usd_per_million_tokens == pytest.approx(without[0], rel=1e-9)
        with_g = best(plans, prices_of(sc, **{g: x}), keep=lambda n: g in n, cap=cap)
        if "budget cap" in be.meaning:  # the last plan with g leaves the budget there: $/token jumps
            assert with_g is not None and with_g[0] < without[0] and sum(with_g[1][h] * (x if h == g else base_prices[h])
                                                                        for h in with_g[1]) == pytest.approx(cap)
        else:  # the lines cross there: the best plan with g costs what the best without it does
            assert with_g[0] == pytest.approx(without[0], rel=1e-9)


def test_break_even_solving_just_below_and_above():
    """The planner itself (not the brute force) flips at the break-even price."""
    sc = two_types()
    for be in P.break_evens(sc):
        assert be.break_even_usd_per_hour is not None and be.exact
        for factor, expect_in in ((1 - 1e-6, True), (1 + 1e-6, False)):
            plan = P.solve_at(sc, be.gpu_type, be.break_even_usd_per_hour * factor).plan
            assert (plan.gpus_by_type().get(be.gpu_type, 0) > 0) == expect_in


def test_break_even_at_a_budget_cap_jump_by_hand():
    """T1 is the faster of two one-GPU options at $0.5/h each, and the budget cap is $0.5/h: any higher T1
    price puts its plan over the cap, so T1 leaves the optimum right there (a jump, not a crossing)."""
    sc = scenario(tiny_model(layers=2), [(gpu("T0", 2, 0.5, 30, 300, 1), 1), (gpu("T1", 2, 0.5, 30, 1000, 1), 1)],
                  concurrency=1, max_stages=1, max_usd_per_hour=0.5)
    sc = with_host_ms(sc, 0.0)  # else both are overhead-bound: a tie
    be = P.break_even(sc, "T1")
    assert be.in_plan_now and be.exact and "budget cap" in be.meaning
    assert be.break_even_usd_per_hour == pytest.approx(0.5, rel=1e-12)
    assert P.solve_at(sc, "T1", 0.5 * (1 + 1e-4)).plan.gpus_by_type() == {"T0": 1}


@settings(max_examples=10, **SLOW)
@given(small_scenarios(min_types=2), st.integers(0, 2), st.sampled_from([(0.25, 2.0, 5), (0.5, 1.5, 3)]))
def test_sweep_points_and_exact_changes_match_brute_force(sc, which, span):
    plans = priced_plans(sc)
    if not plans:
        return
    g = sc.pool.types[which % len(sc.pool.types)]
    p0 = sc.pool.entry(g).spec.price_usd_per_hour
    lo, hi, n = span[0] * p0, span[1] * p0, span[2]
    s = P.price_sweep(sc, g, lo, hi, n)
    assert s.exact_changes and [p.price_usd_per_hour for p in s.points] == pytest.approx(
        [lo + (hi - lo) * i / (n - 1) for i in range(n)])
    for p in s.points:
        assert p.headline.usd_per_million_tokens == pytest.approx(
            best(plans, prices_of(sc, **{g: p.price_usd_per_hour}))[0], rel=1e-9)
    # a bend exactly at an end of the range is a tie there, which either plan may win: compare the inside
    inside = lambda x: lo * (1 + 1e-9) < x < hi * (1 - 1e-9)  # noqa: E731
    found = sorted(c.price_usd_per_hour for c in s.changes if c.price_usd_per_hour is not None)
    assert [x for x in found if inside(x)] == pytest.approx(
        [x for x in envelope_kinks(plans, g, prices_of(sc), lo, hi) if inside(x)], rel=1e-7)


def test_sweep_finds_two_changes_between_two_sweep_points():
    """Two identical single GPUs (found by searching random scenarios for an envelope with two bends): as
    T0's price falls, the optimum moves from T1 alone to T0 + T1 to T0 alone; with only the two ends of the
    range solved, both bends must come from the crossings and the confirming re-solves. (2.5 GiB each,
    re-found by the same search when memory became GiB with vLLM's reserve: with 2 GiB nothing fits.)"""
    sc = scenario(tiny_model(layers=2, hidden=2048), [(gpu("T0", 2.5, 0.5, 30, 300, 1), 1),
                                                       (gpu("T1", 2.5, 0.5, 30, 300, 1), 1)],
                  concurrency=None, max_stages=2)
    sc = with_host_ms(sc, 0.0)
    plans = priced_plans(sc)
    want = envelope_kinks(plans, "T0", prices_of(sc), 0.1, 2.0)
    assert len(want) == 2
    s = P.price_sweep(sc, "T0", 0.1, 2.0, 2)
    assert [c.price_usd_per_hour for c in s.changes] == pytest.approx(want, rel=1e-7)


def test_sweep_with_a_binding_cap_only_brackets_changes():
    sc = two_types()
    sc = replace(sc, settings=replace(sc.settings, max_usd_per_hour=5.0))  # the whole pool costs $16/h
    s = P.price_sweep(sc, "B", 0.5, 6.0, 4)
    assert not s.exact_changes
    assert all(c.price_usd_per_hour is None for c in s.changes)


def test_cancel_stops_every_analysis():
    stop = threading.Event()
    stop.set()
    sc = two_types()
    for run_it in (lambda: P.tornado(sc, 20, cancel=stop), lambda: P.break_evens(sc, cancel=stop),
                   lambda: P.price_sweep(sc, "A", 0.5, 2.0, 3, cancel=stop), lambda: W.pareto(sc, cancel=stop),
                   lambda: W.baselines(sc, cancel=stop), lambda: W.quantization_loss(sc, cancel=stop)):
        with pytest.raises(CancelledError):
            run_it()


def test_sensitivity_inputs_are_checked():
    sc = two_types()
    with pytest.raises(InputError, match="percent"):
        P.tornado(sc, 100)
    with pytest.raises(InputError, match="unknown GPU type 'C'"):
        P.break_even(sc, "C")
    with pytest.raises(InputError, match="low < high"):
        P.price_sweep(sc, "A", 2.0, 1.0, 5)


# ------------------------------------------------------------------ 4. quantization
def test_quantization_rows_match_direct_solves_and_brute_force():
    sc = scenario(tiny_model(layers=5, hidden=4096), [(gpu("A", 4, 1.0), 4), (gpu("B", 8, 2.5, tflops=300), 2)],
                  concurrency=4, max_stages=4)
    q = W.quantization_loss(sc)
    assert [r.level for r in q.rows] == ["coarse", "fine", "even", "full"] and q.reference == "full"
    for r in q.rows:
        lsc = replace(sc, settings=replace(sc.settings, quantization=r.level, sizes=None))
        assert r.status == "solved" and r.options == len(build_candidates(lsc).options)
        assert r.headline.usd_per_million_tokens == pytest.approx(Planner(lsc).exact().plan.usd_per_million_tokens)
        ratio = brute.best_ratio(lsc)[0]
        assert r.headline.usd_per_million_tokens == pytest.approx(ratio / 3600 * 1e6, rel=1e-9)
    full = q.rows[-1].headline.usd_per_million_tokens
    for r in q.rows:
        assert r.loss_pct == pytest.approx((r.headline.usd_per_million_tokens - full) / full * 100, abs=1e-9)
        assert r.loss_pct >= -1e-9  # full holds every other set


def test_quantization_size_cap_skips_and_says_so():
    sc = load_config_dir(ROOT / "config/small")
    full_options = len(build_candidates(replace(sc, settings=replace(sc.settings, quantization="full"))).options)
    q = W.quantization_loss(sc, ("coarse", "full"), max_options=full_options - 1)
    coarse, full = q.rows
    assert full.status == "skipped" and str(full_options) in full.note and full.headline is None
    assert q.reference == "coarse" and coarse.loss_pct == 0.0 and "full skipped" in q.summary
    with pytest.raises(InputError, match="unknown quantization"):
        W.quantization_loss(sc, ("medium",))


# ------------------------------------------------------------------ 6. spot and availability
def test_spot_price_and_caps_by_hand():
    sc = two_types()
    assert W.effective_spot_price(1.2, 0.25) == pytest.approx(1.6)  # 1.2 / 0.75
    spot = W.with_spot(sc, {"B": 1.2}, 0.25)
    assert spot.pool.entry("B").spec.price_usd_per_hour == pytest.approx(1.6)
    assert spot.pool.entry("A").spec.price_usd_per_hour == 1.0 and "spot" in spot.pool.entry("B").spec.price_source
    capped = W.with_caps(sc, {"A": 2, "B": 9})
    assert capped.pool.entry("A").count == 2 and capped.pool.entry("B").count == 4
    assert W.with_caps(sc, {"A": 0}).pool.types == ("B",)
    with pytest.raises(InputError, match="overhead"):
        W.with_spot(sc, {"B": 1.0}, 1.0)
    with pytest.raises(InputError, match="no GPU"):
        W.with_caps(sc, {"A": 0, "B": 0})

    comp = W.spot_comparison(sc, {"B": 1.2}, 0.25, caps={"A": 1})
    plans = priced_plans(sc)
    on_demand = best(plans, prices_of(sc))
    whatif = best(plans, prices_of(sc, B=1.6), keep=lambda n: n.get("A", 0) <= 1)
    assert comp.comparison.a.usd_per_million_tokens == pytest.approx(on_demand[0], rel=1e-9)
    assert comp.comparison.b.usd_per_million_tokens == pytest.approx(whatif[0], rel=1e-9)
    assert comp.savings_pct == pytest.approx((on_demand[0] - whatif[0]) / on_demand[0] * 100)
    assert comp.prices == (("B", 2.5, pytest.approx(1.6)),)
    items = {d.item for d in comp.comparison.differences}
    assert {"A count", "B price_usd_per_hour"} <= items


# ------------------------------------------------------------------ 7. scenario comparison
def test_scenario_differences_list_exactly_what_changed():
    a = two_types()
    b = W.with_prices(W.with_caps(a, {"B": 2}), {"A": 1.5})
    b = replace(b, workload=replace(b.workload, concurrency=8), model=replace(b.model, num_layers=6))
    got = {(d.section, d.item, d.a, d.b) for d in W.scenario_differences(a, b)}
    assert got == {("model", "num_layers", "4", "6"), ("workload", "concurrency", "16", "8"),
                   ("pool", "B count", "4", "2"), ("pool", "A price_usd_per_hour", "1", "1.5")}
    assert W.scenario_differences(a, a) == ()
    c = W.compare_scenarios(a, b)
    rows = {r["figure"]: r for r in c.figure_rows()}
    for figure in ("usd_per_million_tokens", "tokens_per_s", "cost_usd_per_hour"):
        va, vb = getattr(Planner(a).exact().plan, figure), getattr(Planner(b).exact().plan, figure)
        assert (rows[figure]["a"], rows[figure]["b"]) == pytest.approx((va, vb))
        assert rows[figure]["change_pct"] == pytest.approx((vb - va) / va * 100)


def test_compare_exported_scenario_files():
    texts = {name: (ROOT / "config/small" / name).read_text() for name in ("config.csv", "gpu_pool.csv")}
    other = dict(texts, **{"gpu_pool.csv": texts["gpu_pool.csv"].replace("H100,2,80", "H100,1,80")})
    assert other != texts
    c = W.compare_scenario_files(scenario_texts_to_json(texts, "small"), scenario_texts_to_json(other, "fewer"))
    assert (c.name_a, c.name_b) == ("small", "fewer")
    assert [(d.item, d.a, d.b) for d in c.differences] == [("H100 count", "2", "1")]
    with pytest.raises(InputError, match="scenario B"):
        W.compare_scenario_files(scenario_texts_to_json(texts, "small"), "not json")


# ------------------------------------------------------------------ CLI
def run(*args, capsys):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_pareto_json(capsys):
    code, out, _ = run("pareto", "--config-dir", "config/small", "--json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    points = doc["points"]
    for key in ("cost_usd_per_hour", "tokens_per_s", "usd_per_million_tokens", "stages", "layout", "min_usd_per_token"):
        assert all(key in p for p in points)
    assert [p["min_usd_per_token"] for p in points].count(True) == 1
    marked = next(p for p in points if p["min_usd_per_token"])
    assert marked["usd_per_million_tokens"] == min(p["usd_per_million_tokens"] for p in points)
    assert marked["usd_per_million_tokens"] == pytest.approx(
        Planner(load_config_dir("config/small")).exact().plan.usd_per_million_tokens)
    costs = [p["cost_usd_per_hour"] for p in points]
    rates = [p["tokens_per_s"] for p in points]
    assert costs == sorted(costs) and rates == sorted(rates) and doc["grid"]


def test_cli_baselines_and_sensitivity_json(capsys):
    code, out, _ = run("baselines", "--config-dir", "config/small", "--json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    assert set(doc["baselines"]) == {"A100", "V100", "H100"} and doc["verdict"]
    assert all("usd_per_million_tokens" in r for r in doc["baselines"].values() if r["feasible"])
    code, out, _ = run("sensitivity", "--config-dir", "config/small", "--percent", "10", "--sweep", "V100",
                       "--range", "1:3.5:6", "--json", capsys=capsys)
    assert code == 0
    doc = json.loads(out)
    prices = {r["gpu_type"]: r["price_usd_per_hour"] for r in doc["rows"]}
    for r in doc["rows"]:
        assert r["low_price_usd_per_hour"] == pytest.approx(prices[r["gpu_type"]] * 0.9)
        assert r["high_price_usd_per_hour"] == pytest.approx(prices[r["gpu_type"]] * 1.1)
        for key in ("low_usd_per_million_tokens", "high_usd_per_million_tokens", "swing_usd_per_million_tokens"):
            assert key in r
    assert {b["gpu_type"] for b in doc["break_even"]} == set(prices)
    assert [p["price_usd_per_hour"] for p in doc["sweep"]["points"]] == pytest.approx([1, 1.5, 2, 2.5, 3, 3.5])


def test_cli_tables_quantization_and_spot(capsys):
    code, out, _ = run("baselines", "--config-dir", "config/small", capsys=capsys)
    assert code == 0 and "mixed" in out and "$/M tokens" in out
    code, out, _ = run("quantization", "--config-dir", "config/small", "--levels", "coarse,even", "--json",
                       capsys=capsys)
    assert code == 0 and [r["level"] for r in json.loads(out)["rows"]] == ["coarse", "even"]
    code, out, _ = run("spot", "--config-dir", "config/small", "--spot", "H100=1.0", "--overhead", "0.2", "--json",
                       capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["prices"][0]["effective_spot_usd_per_hour"] == pytest.approx(1.25)


def test_cli_bad_input_exits_2(capsys):
    assert run("sensitivity", "--config-dir", "config/small", "--sweep", "A999", capsys=capsys)[:1] == (2,)
    code, _, err = run("sensitivity", "--config-dir", "config/small", "--percent", "150", capsys=capsys)
    assert code == 2 and "percent" in err
    code, _, err = run("sensitivity", "--config-dir", "config/small", "--sweep", "V100", "--range", "3:1:5",
                       capsys=capsys)
    assert code == 2 and "low < high" in err
    code, _, err = run("pareto", "--config-dir", "config/nope", capsys=capsys)
    assert code == 2 and "config/nope" in err
    with pytest.raises(SystemExit) as info:  # argparse: malformed TYPE=VALUE
        main(["spot", "--config-dir", "config/small", "--spot", "H100"])
    assert info.value.code == 2


def test_cli_infeasible_exits_3(tmp_path, capsys):
    folder = tmp_path / "poor"
    shutil.copytree(ROOT / "config/small", folder)
    with open(folder / "config.csv", "a") as f:
        f.write("\nmax_hourly_cost,0.1\n")
    for cmd in ("pareto", "baselines", "sensitivity"):
        code, _, err = run(cmd, "--config-dir", str(folder), capsys=capsys)
        assert code == 3 and "budget" in err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "planner", "pareto", "--config-dir", "config/tiny",
                          "--no-grid", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["points"]


# ------------------------------------------------------------------ 8. reused candidates (what-if speed)
def _same_candidates(a, b):
    key = lambda o: (o.size, o.role, o.gpu_type, o.tp, o.level)  # noqa: E731
    assert sorted(a.options, key=key) == sorted(b.options, key=key)
    assert sorted(a.excluded, key=key) == sorted(b.excluded, key=key)
    assert (a.sizes, a.levels, a.tp_degrees, a.tp_notes) == (b.sizes, b.levels, b.tp_degrees, b.tp_notes)


@settings(max_examples=25, **SLOW)
@given(small_scenarios(min_types=2), st.sampled_from([0.01, 0.5, 1.3, 7.0]), st.data())
def test_candidates_derived_for_other_prices_and_fewer_types_equal_a_fresh_build(sc, factor, data):
    """The what-ifs re-price / filter one build instead of rebuilding: the result must be the very
    CandidateSet that build_candidates gives for the changed scenario."""
    base = build_candidates(sc)
    moved = sc.pool.types[data.draw(st.integers(0, len(sc.pool.types) - 1), label="type")]
    priced = W.with_prices(sc, {moved: sc.pool.entry(moved).spec.price_usd_per_hour * factor})
    _same_candidates(W.derive_candidates(base, priced), build_candidates(priced))
    kept = [t for t in sc.pool.types if t != moved]
    fewer = W.restrict_pool(priced, kept)
    _same_candidates(W.derive_candidates(base, fewer), build_candidates(fewer))
    # and through the cache, which must not hand a set of another shape (other settings) back
    assert W.candidates_for(fewer).scenario is fewer
    _same_candidates(W.candidates_for(fewer), build_candidates(fewer))
    other = replace(sc, settings=replace(sc.settings, max_stages=sc.settings.max_stages + 1))
    _same_candidates(W.candidates_for(other), build_candidates(other))


def test_price_what_ifs_through_the_cache_equal_fresh_solves():
    """Tornado and break-even on a two-type pool with the cache equal fresh Planner solves."""
    sc = two_types()
    base = Planner(sc).exact()
    t = P.tornado(sc, 30.0, base)
    for r in t.rows:
        p = sc.pool.entry(r.gpu_type).spec.price_usd_per_hour
        for price, h in ((p * 0.7, r.low), (p * 1.3, r.high)):
            fresh = Planner(W.with_prices(sc, {r.gpu_type: price})).exact().plan
            assert h.usd_per_million_tokens == pytest.approx(fresh.usd_per_million_tokens, rel=1e-12)
    for b in P.break_evens(sc, base):
        if b.break_even_usd_per_hour is None:
            continue
        x = b.break_even_usd_per_hour
        lo = Planner(W.with_prices(sc, {b.gpu_type: x * 0.99})).exact().plan
        hi = Planner(W.with_prices(sc, {b.gpu_type: x * 1.01})).exact().plan
        assert (lo.gpus_by_type().get(b.gpu_type, 0) > 0) != (hi.gpus_by_type().get(b.gpu_type, 0) > 0)
