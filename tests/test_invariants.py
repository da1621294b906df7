"""Property tests (hypothesis) on random small scenarios: every plan any method returns keeps the rules
of a pipeline, its figures match a recomputation from planner.perf, and the optimum moves the right way
when the budget, a price or the pool changes."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import InfeasibleError, Planner, perf
from planner.candidates import MIN_STAGES, pipeline_levels, segment_sizes
from tests import brute
from tests.helpers import gpu, scenario, tiny_model

REL = 1e-9
# Each test stays under ~20 s on the shared 2-core machine (brute force grows as types^stages).
PROPS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_scenarios(draw, max_types: int = 3):
    layers = draw(st.integers(2, 5))
    gpus = []
    for i in range(draw(st.integers(1, max_types))):
        g = gpu(f"T{i}", memory_gb=draw(st.sampled_from([2.0, 3.0, 4.0, 8.0, 16.0])),
                price=draw(st.sampled_from([0.5, 1.0, 1.7, 3.0])), tflops=draw(st.sampled_from([30.0, 100.0, 300.0])),
                hbm=draw(st.sampled_from([300.0, 1000.0, 3000.0])), per_node=draw(st.sampled_from([1, 2, 4])))
        gpus.append((g, draw(st.integers(1, 4))))
    m = tiny_model(layers=layers, hidden=draw(st.sampled_from([1024, 2048, 4096])))
    return scenario(m, gpus, concurrency=draw(st.sampled_from([1, 4, 16, None])),
                    max_stages=draw(st.integers(1, 4)), quantization=draw(st.sampled_from(["full", "coarse"])))


def ratio(plan) -> float:
    return plan.usd_per_million_tokens


def exact_or_none(sc):
    try:
        return Planner(sc).exact().plan
    except InfeasibleError:
        return None


def check_plan(sc, plan) -> None:
    """The plan's rules, and its figures recomputed from the performance model: a pipeline of P stages
    cycles P microbatches of concurrency/P sequences (perf.stage_perf's `microbatches`), and every stage
    holds the KV cache of every sequence in flight."""
    m, w, e = sc.model, sc.workload, sc.engine
    stages = plan.stages
    P = len(stages)
    assert 1 <= P <= sc.settings.max_stages
    assert [s.index for s in stages] == list(range(1, P + 1))
    # each layer exactly once, in order
    layers = [layer for s in stages for layer in range(s.first_layer, s.last_layer + 1)]
    assert layers == list(range(1, m.num_layers + 1))
    sizes, _ = segment_sizes(sc)
    assert all(s.num_layers in sizes for s in stages)
    # GPUs: no type beyond its count, distinct physical GPUs of the stage's type, a TP group in one node
    used = Counter()
    for s in stages:
        used[s.gpu_type] += s.tp
    for g, n in used.items():
        assert n <= sc.pool.entry(g).count
    assert plan.gpus_by_type() == dict(used)
    first_id = {}
    start = 0
    for entry in sc.pool.entries:
        first_id[entry.name] = start
        start += entry.count
    ids = [i for s in stages for i in s.gpu_ids]
    assert len(ids) == len(set(ids)) == plan.num_gpus == sum(used.values())
    for s in stages:
        spec = sc.pool.entry(s.gpu_type).spec
        numbers = [int(i.removeprefix("gpu_")) - first_id[s.gpu_type] for i in s.gpu_ids]
        assert len(numbers) == s.tp
        assert all(0 <= k < sc.pool.entry(s.gpu_type).count for k in numbers)
        assert len({k // spec.gpus_per_node for k in numbers}) == 1
    if w.concurrency is not None:
        assert plan.concurrency == w.concurrency
    # memory and speed of every stage, recomputed
    for s in stages:
        spec = sc.pool.entry(s.gpu_type).spec
        first, last = s.index == 1, s.index == P
        # each sequence holds its prompt and half its output on average (KV blocks allocated as tokens arrive)
        mem = perf.stage_memory(m, spec, e, s.num_layers, s.tp, first, last, plan.concurrency,
                                perf.workload_kv_tokens(w))
        assert mem.fits, f"stage {s.index} needs {mem.total_gb:.2f} GB > {spec.memory_gb} GiB"
        assert s.memory_gb_per_gpu == pytest.approx(mem.total_gb, rel=REL)
        assert s.memory_gb_per_gpu <= s.capacity_gb == pytest.approx(spec.memory_gb * 2 ** 30 / 1e9)
        # the option's rate as the model defines it: the level's microbatch, the scheduler's share at the
        # fewest stages the role allows in the level (P itself for a fixed concurrency), a non-last stage's
        # hand-off over the pool's network
        role = "only" if P == 1 else "first" if first else "last" if last else "middle"
        level = next(lv for lv in pipeline_levels(sc) if lv.microbatch == plan.microbatch and P in lv.stage_counts)
        p0 = next(p for p in level.stage_counts if p >= MIN_STAGES[role])
        hand = None if last else (sc.pool.default_link_gb_per_s, "network")
        sp = perf.stage_perf(m, spec, e, s.num_layers, s.tp, first, last, w, level.concurrency(p0), microbatches=p0,
                             handoff=hand)
        assert s.tokens_per_s == pytest.approx(sp.tokens_per_s, rel=REL), \
            f"stage {s.index} of {P}: reported {s.tokens_per_s:.6g} tokens/s, perf gives {sp.tokens_per_s:.6g}"
        assert s.cost_usd_per_hour == pytest.approx(s.tp * spec.price_usd_per_hour, rel=REL)
    # pipeline figures: slowest stage or link, summed cost, $/token from both
    links = [perf.link_tokens_per_s(m, sc.pool.link(a.gpu_type, b.gpu_type)) for a, b in zip(stages, stages[1:])]
    tokens = min([s.tokens_per_s for s in stages] + links)
    cost = sum(s.tp * sc.pool.entry(s.gpu_type).spec.price_usd_per_hour for s in stages)
    assert plan.tokens_per_s == pytest.approx(tokens, rel=REL)
    assert plan.cost_usd_per_hour == pytest.approx(cost, rel=REL)
    assert plan.usd_per_million_tokens == pytest.approx(cost / (3600 * tokens * w.basis_fraction) * 1e6, rel=REL)


def with_price(sc, type_name: str, factor: float):
    entries = tuple(replace(e, spec=replace(e.spec, price_usd_per_hour=e.spec.price_usd_per_hour * factor))
                    if e.name == type_name else e for e in sc.pool.entries)
    return replace(sc, pool=replace(sc.pool, entries=entries))


def with_count(sc, type_name: str, extra: int):
    entries = tuple(replace(e, count=e.count + extra) if e.name == type_name else e for e in sc.pool.entries)
    return replace(sc, pool=replace(sc.pool, entries=entries))


# ---------------------------------------------------------------------------- every returned plan
@pytest.mark.parametrize("memory_gb, stages", [(3.5, 4), (4.0, 2), (8.0, 1)])
def test_multi_stage_plans_are_rated_with_one_microbatch_per_stage(memory_gb, stages):
    """Memory forces the stage count, so the microbatch recomputation is exercised whatever hypothesis
    draws: 16 sequences over P stages are P microbatches of 16/P. One GPU per node (no TP: with an
    efficient NVLink, TP 4 would hold the model in one stage). Per GPU the engine has 0.9 x M GiB less
    1.5 GiB and 0.81 GB of activations, about 0.97 M - 2.42 GB; a layer with its KV cache needs ~0.61 GB:
    M = 3.5 holds 1 layer (4 stages), 4.0 holds 2 (2 stages), 8.0 all 4 (one stage)."""
    sc = scenario(tiny_model(layers=4, hidden=4096), [(gpu("A", memory_gb, 1.0, per_node=1), 4)], concurrency=16,
                  max_stages=4)
    plan = Planner(sc).exact().plan
    assert len(plan.stages) == stages
    check_plan(sc, plan)


@PROPS
@given(small_scenarios(), st.floats(0.0, 1.0))
def test_every_method_returns_a_valid_plan_with_recomputable_figures(sc, weight):
    planner = Planner(sc)
    try:
        exact = planner.exact(with_frontier=True)
    except InfeasibleError:
        assert not any(True for _ in brute.all_plans(sc))
        return
    check_plan(sc, exact.plan)
    for plan in exact.frontier:
        check_plan(sc, plan)
    check_plan(sc, Planner(sc).weighted(weight).plan)
    enum = Planner(sc).enumeration()
    check_plan(sc, enum.plan)
    for point in enum.curve:
        if point.plan is not None:
            check_plan(sc, point.plan)
            assert point.plan.cost_usd_per_hour <= point.budget_usd_per_hour * (1 + REL)


@PROPS
@given(small_scenarios(), st.data())
def test_exact_is_never_worse_than_any_feasible_plan_or_the_grid_methods(sc, data):
    plans = list(brute.all_plans(sc))
    best = exact_or_none(sc)
    if not plans:
        assert best is None
        return
    assert best is not None
    basis = sc.workload.basis_fraction
    # a random feasible pipeline, and then every one
    cost, tokens, _ = plans[data.draw(st.integers(0, len(plans) - 1), label="random plan")]
    assert ratio(best) <= cost / (3600 * tokens * basis) * 1e6 * (1 + REL)
    assert ratio(best) <= min(c / (3600 * t * basis) * 1e6 for c, t, _ in plans) * (1 + REL)
    weight = data.draw(st.floats(0.0, 1.0), label="cost weight")
    assert ratio(best) <= ratio(Planner(sc).weighted(weight).plan) * (1 + REL)
    assert ratio(best) <= ratio(Planner(sc).enumeration().plan) * (1 + REL)


# ---------------------------------------------------------------------------- monotonicity
@PROPS
@given(small_scenarios(), st.lists(st.sampled_from([0.5, 0.9, 1.0, 1.3, 2.0, 4.0]), min_size=2, max_size=4))
def test_raising_the_budget_never_lowers_the_best_throughput(sc, factors):
    planner = Planner(sc)
    try:
        cheapest = planner.min_cost(None, 1e-9)
    except InfeasibleError:
        cheapest = None
    if cheapest is None:
        return
    previous = 0.0
    for budget in sorted(cheapest.cost_usd_per_hour * f for f in factors + [1.0]):
        plan = Planner(sc).max_throughput(budget)
        got = 0.0 if plan is None else plan.tokens_per_s
        if plan is not None:
            check_plan(sc, plan)
            assert plan.cost_usd_per_hour <= budget * (1 + REL)
        assert got >= previous * (1 - REL)
        previous = got
    assert previous > 0  # at the cheapest plan's cost a plan exists


@PROPS
@given(small_scenarios(), st.integers(0, 2), st.sampled_from([0.1, 0.5, 0.9, 1.0]))
def test_lowering_a_price_never_raises_the_optimal_usd_per_token(sc, which, factor):
    name = sc.pool.types[which % len(sc.pool.types)]
    before = exact_or_none(sc)
    after = exact_or_none(with_price(sc, name, factor))
    assert (before is None) == (after is None)  # prices do not change what is feasible
    if before is not None:
        assert ratio(after) <= ratio(before) * (1 + REL)


@PROPS
@given(small_scenarios(max_types=2), st.integers(0, 1), st.integers(1, 3))
def test_adding_gpus_never_makes_the_optimum_worse(sc, which, extra):
    name = sc.pool.types[which % len(sc.pool.types)]
    before = exact_or_none(sc)
    after = exact_or_none(with_count(sc, name, extra))
    if before is not None:
        assert after is not None
        assert ratio(after) <= ratio(before) * (1 + REL)
