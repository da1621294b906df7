"""The seed-style formulation (benchmarks/seed_formulation.py: per-GPU-partition segment binaries, a
binary per pair of consecutive segments, big-M bottleneck) against the planner's aggregated MILP.

The two share only the option numbers; their variables, rows and solve paths are independent, so
agreement on the optimum (max throughput under a budget, ties toward lower cost) cross-checks both."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import seed_formulation as sf
from planner import Planner, load_config_dir
from tests.helpers import gpu, scenario, tiny_model


def assert_same_optimum(sc, budget):
    ours = Planner(sc).max_throughput(budget)
    seed = sf.max_throughput(sc, budget, time_limit_s=120)
    if ours is None:
        assert seed.status == "infeasible"
        return
    assert seed.status == "optimal"
    assert not ours.link_bound  # the planner checks links afterwards; the seed model has them as rows
    assert math.isclose(seed.tokens_per_s, ours.tokens_per_s, rel_tol=1e-9)
    assert math.isclose(seed.cost_usd_per_hour, ours.cost_usd_per_hour, rel_tol=1e-9)
    assert math.isclose(seed.usd_per_million_tokens, ours.usd_per_million_tokens, rel_tol=1e-9)
    assert_valid_pipeline(sc, seed.chosen)


def assert_valid_pipeline(sc, chosen):
    """The seed model's answer is a real plan: layers 1..L covered in order, no GPU used twice,
    one level, and as many stages as that level allows."""
    layer = 1
    for s in chosen:
        assert s.first_layer == layer
        layer = s.last_layer + 1
    assert layer == sc.model.num_layers + 1
    gpus = [g for s in chosen for g in range(s.gpu_lo, s.gpu_hi)]
    assert len(gpus) == len(set(gpus))
    levels = {s.option.level for s in chosen}
    assert len(levels) == 1
    (level,) = levels
    assert len(chosen) in level.stage_counts
    assert all(len(chosen) <= s.option.max_stages for s in chosen)


@pytest.mark.parametrize("name, factor", [("tiny", 0.5), ("tiny", 1.0), ("tiny", 2.5), ("tiny", 6.0), ("small", 1.0)])
def test_seed_folders_same_optimum(name, factor):
    """Budgets as multiples of the cheapest plan's cost (0.5: infeasible for both). small above 1x takes
    the seed-style model minutes (its big-M relaxation is weak): benchmarks/run.py measures that."""
    sc = load_config_dir(f"config/{name}")
    cheapest = Planner(sc).min_cost(None, 1e-9)
    assert_same_optimum(sc, factor * cheapest.cost_usd_per_hour)


def toy(layers, fast, slow, concurrency, fast_memory_gb=2.0, max_stages=4):
    fast_gpu = gpu("FAST", memory_gb=fast_memory_gb, price=1.0, tflops=200.0, hbm=2000.0)
    slow_gpu = gpu("SLOW", memory_gb=2.0, price=0.3, tflops=60.0, hbm=600.0)
    return scenario(tiny_model(layers, hidden=512), [(fast_gpu, fast), (slow_gpu, slow)], concurrency=concurrency,
                    max_stages=max_stages)


@pytest.mark.parametrize("layers, fast, slow", [(4, 1, 1), (2, 2, 1), (3, 1, 2)])
@pytest.mark.parametrize("factor", [1.0, 3.0])
def test_auto_concurrency_same_optimum(layers, fast, slow, factor):
    """Concurrency auto: levels with several stage counts, options that fit only up to some count."""
    sc = toy(layers, fast, slow, None)
    assert any(len(level.stage_counts) > 1 for level in Planner(sc).candidates.levels)
    assert_same_optimum(sc, factor * Planner(sc).min_cost(None, 1e-9).cost_usd_per_hour)


@st.composite
def small_scenarios(draw):
    # kept small: the seed-style model needs seconds where ours needs milliseconds
    return toy(draw(st.integers(2, 4)), draw(st.integers(1, 2)), draw(st.integers(1, 2)),
               draw(st.sampled_from([4, 16])), draw(st.sampled_from([2.0, 40.0])), draw(st.integers(1, 4)))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=small_scenarios(), factor=st.sampled_from([0.9, 1.0, 1.7, 3.0, 10.0]))
def test_random_scenarios_same_optimum(sc, factor):
    cheapest = Planner(sc).min_cost(None, 1e-9) if Planner(sc).levels else None
    if cheapest is None:
        return  # nothing fits: the planner's own tests cover that
    assert_same_optimum(sc, factor * cheapest.cost_usd_per_hour)


def test_seed_model_size_by_hand():
    """tiny: 4 layers, A100 x2 and V100 x2, sizes {1, 4}. The formulation has one segment per
    (option, position, TP partition): a count checked against the options directly."""
    sc = load_config_dir("config/tiny")
    p = sf.generate(sc)
    expected = 0
    for o in sf.stage_options(sc):
        positions = 1 if o.role in ("first", "last", "only") else 4 - o.size - 1
        expected += positions * (sc.pool.entry(o.gpu_type).count // o.tp)
    assert len(p.segments) == expected
    # every pair joins a segment ending at l to one starting at l + 1 on other GPUs, at the same level
    for i, j, _ in p.pairs:
        a, b = p.segments[i], p.segments[j]
        assert a.last_layer + 1 == b.first_layer and a.level == b.level
        assert a.gpu_hi <= b.gpu_lo or b.gpu_hi <= a.gpu_lo


def test_too_large_is_reported_before_building():
    sc = load_config_dir("config/small")
    with pytest.raises(sf.TooLarge) as err:
        sf.generate(sc, max_pairs=10)
    assert err.value.pairs > 10 and err.value.segments > 0
