"""--pessimistic: each option's throughput at the low end of its range before the MILP; on a small
scenario the GPU choice provably changes (brute force over its single-stage options)."""
from __future__ import annotations

import json

import pytest

from planner.candidates import build_candidates
from planner.cli import main
from planner.pessimistic import nominal_tokens_per_s, pessimistic_candidates
from planner.scenario_io import load_config_dir
from planner.search import Planner
from planner.uncertainty import Point


def _scenario(tmp_path):
    (tmp_path / "config.csv").write_text("parameter,value\nmodel,llama-3.1-8b\ninput_tokens,512\noutput_tokens,128\n"
                                         "concurrency,32\ntoken_basis,total\nengine,vllm\nmax_pipeline_stages,1\n")
    (tmp_path / "gpu_pool.csv").write_text("gpu_type,count,price_usd_per_hour\nH100-SXM,1,3.00\nL40S,1,1.00\n")
    return load_config_dir(tmp_path)


def _cheapest(options):
    """Brute force: with one stage allowed, a plan is one 'only' option; $/token = cost / tokens."""
    only = [o for o in options if o.role == "only"]
    return min(only, key=lambda o: o.cost_usd_per_hour / o.tokens_per_s)


def test_low_end_changes_the_gpu_choice(tmp_path):
    sc = _scenario(tmp_path)
    cs = build_candidates(sc)
    # H100 measured at half the prediction (3 points), L40S as predicted: low factors 0.5 and 1.0
    points = ([Point("H100-SXM", 1, 1, 1, 640, "", "throughput", 0.5)] * 3
              + [Point("L40S", 1, 1, 1, 640, "", "throughput", r) for r in (1.0, 1.1, 1.2)])
    pess, factors = pessimistic_candidates(cs, points)
    assert {(r["gpu_type"], r["tp"]): r["low_factor"] for r in factors} == {("H100-SXM", 1): 0.5, ("L40S", 1): 1.0}
    for o, p in zip(cs.options, pess.options):
        assert p.tokens_per_s == pytest.approx(o.tokens_per_s * (0.5 if o.gpu_type == "H100-SXM" else 1.0))
    nominal_best, pess_best = _cheapest(cs.options), _cheapest(pess.options)
    assert nominal_best.gpu_type == "H100-SXM" and pess_best.gpu_type == "L40S"  # the premise of the test
    nominal = Planner(sc, cs).exact()
    low = Planner(sc, pess).exact()
    assert nominal.proven_optimal and low.proven_optimal
    assert [s.gpu_type for s in nominal.plan.stages] == ["H100-SXM"]
    assert [s.gpu_type for s in low.plan.stages] == ["L40S"]
    assert low.plan.tokens_per_s == pytest.approx(pess_best.tokens_per_s)
    assert nominal_tokens_per_s(low.plan, factors) == pytest.approx(pess_best.tokens_per_s)


def test_no_points_keeps_the_prediction(tmp_path):
    cs = build_candidates(_scenario(tmp_path))
    pess, factors = pessimistic_candidates(cs, [])
    assert [o.tokens_per_s for o in pess.options] == [o.tokens_per_s for o in cs.options]
    assert all(r["low_factor"] == 1.0 and r["points"] == 0 for r in factors)


def test_factor_never_above_one(tmp_path):
    cs = build_candidates(_scenario(tmp_path))
    points = [Point("H100-SXM", 1, 1, 1, 640, "", "throughput", 1.5)] * 3
    pess, _ = pessimistic_candidates(cs, points)
    assert [o.tokens_per_s for o in pess.options] == [o.tokens_per_s for o in cs.options]


def test_cli_pessimistic_summary(tmp_path, capsys):
    assert main(["solve", "--config-dir", "config/realistic", "--out", str(tmp_path), "--pessimistic", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["pessimistic"] is True
    assert s["tokens_per_s"] <= s["tokens_per_s_nominal"] + 1e-9
    assert s["extra"]["pessimistic"]["factors"]
    assert all(r["low_factor"] <= 1.0 for r in s["extra"]["pessimistic"]["factors"])
