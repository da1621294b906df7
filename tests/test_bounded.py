"""Bounded time (issue 11, item 3): inputs inside the documented limits finish in seconds or are refused
before heavy work, naming the size and the limit; the command line has the app's problem-size guard.
Pathological inputs are written to tmp_path; the tests assert behaviour, not wall times."""
import json
import random
import shutil
from pathlib import Path

import pytest

import planner.candidates as candidates
import planner.domain as domain
from planner import InputError
from planner.candidates import can_tile, exact_counts, stage_counts
from planner.cli import main
from planner.domain import Pool, PoolEntry
from tests.helpers import gpu

ROOT = Path(__file__).resolve().parent.parent


def _scenario_dir(tmp_path, config_extra: str = "", layers: int = 12, pool: str | None = None) -> Path:
    d = tmp_path / "sc"
    d.mkdir()
    cfg = (ROOT / "config/small/config.csv").read_text().replace("num_decoder_layers,12",
                                                                 f"num_decoder_layers,{layers}")
    (d / "config.csv").write_text(cfg.rstrip("\n") + "\n" + config_extra)
    if pool is None:
        shutil.copy(ROOT / "config/small/gpu_pool.csv", d / "gpu_pool.csv")
        shutil.copy(ROOT / "config/small/network_bandwidth.csv", d / "network_bandwidth.csv")
    else:
        (d / "gpu_pool.csv").write_text(pool)
    return d


def test_100000_gpu_types_are_refused_naming_the_count_and_the_limit(tmp_path, capsys):
    rows = "".join(f"G{i},1,80,2.0,8,nvlink,300,2000,600\n" for i in range(100_000))
    pool = ("gpu_type,count,memory_gb,price_usd_per_hour,gpus_per_node,intra_link,fp16_dense_tflops,hbm_gb_per_s,"
            "intra_link_gb_per_s\n" + rows)
    d = _scenario_dir(tmp_path, pool=pool)
    assert main(["solve", "--config-dir", str(d), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {d / 'gpu_pool.csv'}, gpu_type: 100,000 GPU types, above the limit of "
                   f"{domain.MAX_GPU_TYPES} types in one pool"]


def test_pool_duplicate_check_is_linear_on_100000_types(monkeypatch):
    """It counted every name in the whole list for every name (quadratic: hours at 100,000 types)."""
    monkeypatch.setattr(domain, "MAX_GPU_TYPES", 10**6)
    g = gpu("G", 80, 1.0)
    entries = [PoolEntry(f"G{i}", 1, g) for i in range(100_000)] + [PoolEntry("G77", 1, g)]
    with pytest.raises(InputError, match="lists G77 more than once"):
        Pool(tuple(entries))
    monkeypatch.setattr(domain, "MAX_GPU_TYPES", 100)
    with pytest.raises(InputError, match="100,001 GPU types, above the limit of 100"):
        Pool(tuple(entries))


def test_10000_layers_with_full_sizes_are_refused_before_any_option_is_evaluated(tmp_path, capsys, monkeypatch):
    d = _scenario_dir(tmp_path, "quantization,full\nlayer_weight_memory_gb,0.001\n", layers=10_000)
    (d / "config.csv").write_text((d / "config.csv").read_text().replace("layer_weight_memory_gb,0.5\n", ""))

    def never(*a, **k):
        raise AssertionError("an option was evaluated")

    monkeypatch.setattr(candidates, "_compute", never)
    assert main(["solve", "--config-dir", str(d), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stage options to evaluate" in err and "10,000 segment sizes" in err
    assert f"above the limit of {candidates.MAX_OPTION_EVALUATIONS:,}" in err


def test_stage_counts_of_10000_layers_are_immediate():
    """The coin-change DP over 10,000 layers x 10,000 sizes took minutes; contiguous sizes are intervals."""
    full = tuple(range(1, 10_001))
    assert stage_counts(full, 10_000, 8) == tuple(range(1, 9))
    assert can_tile(full[:-1], 10_000, 8) and not can_tile(full[:-1], 10_000, 1)
    even = tuple(sorted({1, *range(2, 10_001, 2)}))
    assert stage_counts(even, 10_000, 8) == tuple(range(1, 9))
    assert stage_counts(tuple(range(2, 10_001, 2)), 9_999, 8) == ()  # odd total from even sizes
    with pytest.raises(InputError, match="steps to find the stage counts"):
        stage_counts(even, 10_000, 10_000)


def _reference_counts(sizes, total, k):
    reach, out = {0}, []
    for p in range(1, k + 1):
        reach = {t + s for t in reach for s in sizes if t + s <= total}
        if total in reach:
            out.append(p)
    return tuple(out)


def test_stage_counts_match_the_set_dp_on_random_sets():
    rng = random.Random(11)
    for _ in range(2000):
        total, k = rng.randint(1, 60), rng.randint(1, 12)
        if rng.random() < 0.3:
            a = rng.randint(1, total)
            sizes = list(range(a, rng.randint(a, total) + 1))
        else:
            sizes = rng.sample(range(1, total + 1), rng.randint(1, min(total, 8)))
        assert exact_counts(sizes, total, k) == _reference_counts(sizes, total, k), (sizes, total, k)


@pytest.mark.parametrize("command", [["solve"], ["pareto"], ["baselines"], ["sensitivity", "--no-break-even"],
                                     ["spot", "--spot", "A100=1"]], ids=lambda c: c[0])
def test_cli_refuses_a_large_problem_before_the_milp_unless_allow_large(command, tmp_path, capsys, monkeypatch):
    """The app's guard (above 10,000 stage options a solve waits for "Solve now"): the command line exits 2
    naming the option count and the limit, before any MILP is built; --allow-large goes on."""
    import planner.search as search

    monkeypatch.setattr(candidates, "LARGE_PROBLEM_OPTIONS", 20)  # config/small has more: a large problem here
    built = []
    real_model = search.Planner.model
    monkeypatch.setattr(search.Planner, "model", lambda self, unit: built.append(unit) or real_model(self, unit))
    out = ["--out", str(tmp_path / "out")] if command[0] == "solve" else []
    args = [*command, "--config-dir", "config/small", *out, "--json"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "large problem:" in err and "stage options, above the limit of 20" in err and "--allow-large" in err
    assert built == []
    assert main([*args, "--allow-large"]) == 0
    assert json.loads(capsys.readouterr().out) and built
