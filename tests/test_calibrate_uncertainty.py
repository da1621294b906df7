"""Prediction ranges and extrapolations (planner/uncertainty.py); the numbers are derived by hand."""
from __future__ import annotations

import json

import pytest

from planner.catalog import load_catalog
from planner.cli import main
from planner.uncertainty import (Layout, Point, closest, points_from_calibration, points_from_rows,
                                 prediction_range, ratio_range)


def P(gpu="L40S", tp=4, pp=1, nodes=1, ctx=2560, precision="", q="throughput", ratio=1.0):
    return Point(gpu, tp, pp, nodes, ctx, precision, q, ratio)


def test_ratio_range_min_max_below_ten_points_and_percentiles_from_ten():
    assert ratio_range([1.1, 0.8, 1.3, 1.0]) == (0.8, 1.3)
    # 0.1 .. 1.0: 10th percentile at position 0.9 of the sorted list -> 0.1 + 0.9 x 0.1 = 0.19;
    # 90th at position 8.1 -> 0.9 + 0.1 x 0.1 = 0.91
    lo, hi = ratio_range([i / 10 for i in range(1, 11)])
    assert lo == pytest.approx(0.19) and hi == pytest.approx(0.91)


def test_closest_takes_the_first_level_with_three_points():
    same = [P(ratio=r) for r in (0.9, 1.0, 1.1)]
    other_pp = [P(pp=2, ratio=2.0)]
    other_tp = [P(tp=8, ratio=3.0)]
    other_gpu = [P(gpu="H100-SXM", ratio=4.0)] * 5
    pts = same + other_pp + other_tp + other_gpu
    level, sel = closest(pts, ("throughput",), "L40S", 4, 1, 1)
    assert level == "same layout" and sorted(p.ratio for p in sel) == [0.9, 1.0, 1.1]
    # two points in the same layout: same GPU and TP (the pp=2 one joins)
    level, sel = closest(same[:2] + other_pp + other_tp, ("throughput",), "L40S", 4, 1, 1)
    assert level == "same GPU and TP" and len(sel) == 3
    level, sel = closest(same[:1] + other_pp + other_tp, ("throughput",), "L40S", 4, 1, 1)
    assert level == "same GPU" and len(sel) == 3
    level, sel = closest(other_gpu, ("throughput",), "L40S", 4, 1, 1)
    assert level == "any layout" and len(sel) == 5
    # TTFT falls back to prefill points when no ttft point exists
    level, sel = closest([P(q="prefill", ratio=1.2)] * 3, ("ttft", "prefill"), "L40S", 4, 1, 1)
    assert level == "same layout" and sel[0].quantity == "prefill"


def test_prediction_range_by_hand():
    e = load_catalog().engine("vllm")
    pts = [P(ratio=r) for r in (0.8, 0.9, 1.2)] + [P(q="prefill", ratio=r) for r in (1.0, 1.5, 1.1)]
    lay = Layout((("L40S", 4),), 1, 1, 2560, "")
    out = prediction_range({"tokens_per_s": 1000.0, "ttft_ms": 200.0, "tpot_ms": 30.0}, lay, e, pts)
    assert out["tokens_per_s_low"] == pytest.approx(800.0) and out["tokens_per_s_high"] == pytest.approx(1200.0)
    assert out["ttft_ms_low"] == pytest.approx(200.0) and out["ttft_ms_high"] == pytest.approx(300.0)
    assert out["tpot_ms_low"] is None and out["tpot_ms_high"] is None  # no tpot / decode-step point
    assert out["extrapolations"] == []


def test_mixed_plan_takes_the_widest_range_and_names_extrapolations():
    e = load_catalog().engine("vllm")
    pts = ([P(ratio=r) for r in (0.8, 1.0, 1.1)] + [P(gpu="H100-SXM", tp=2, ratio=r) for r in (0.9, 1.0, 1.3)])
    lay = Layout((("L40S", 4), ("H100-SXM", 2), ("A10G", 1)), 3, 2, 40_000, "fp8")
    out = prediction_range({"tokens_per_s": 100.0}, lay, e, pts, {"A10G": "ampere"})
    assert out["tokens_per_s_low"] == pytest.approx(80.0) and out["tokens_per_s_high"] == pytest.approx(130.0)
    text = " ".join(out["extrapolations"])
    assert "A10G: no measured run of profile 'vllm'" in text
    assert "carried over by architecture from A100-80GB-SXM" in text  # the profile's arch:ampere row
    assert "spans 2 nodes" in text
    assert "3 pipeline stages: the deepest measured pipeline has 1" in text
    assert "40,000 tokens" in text and "2,560 at most" in text
    assert "Precision fp8" in text


def test_no_points_no_range():
    e = load_catalog().engine("vllm")
    out = prediction_range({"tokens_per_s": 100.0}, Layout((("L40S", 4),), 1, 1, 100, ""), e, [])
    assert out["tokens_per_s_low"] is None
    assert "no measured data behind it" in out["extrapolations"][0]


def test_points_from_rows_skip_fitted_rows_and_invert_the_ratio():
    rows = [{"profile": "vllm", "group": "vllm fit", "ratio": 2.0, "gpu": "L40S", "tp": 4, "pp": 1, "quantity": "tpot",
             "input_len": 10, "output_len": 10, "excluded": ""},
            {"profile": "vllm", "group": "vllm held-out", "ratio": 2.0, "gpu": "L40S", "tp": 4, "pp": 1,
             "quantity": "tpot", "input_len": 10, "output_len": 10, "excluded": "", "precision": "bf16"},
            {"profile": "other", "group": "held-out", "ratio": 2.0, "gpu": "L40S", "tp": 4, "pp": 1,
             "quantity": "tpot", "input_len": 10, "output_len": 10, "excluded": ""}]
    (p,) = points_from_rows(rows, "vllm")
    assert p.ratio == 0.5 and p.context_tokens == 20 and p.precision == ""


def test_points_from_calibration_use_leave_one_out():
    rep = {"rows": [{"gpu": "L40S", "tp": 4, "pp": 1, "nodes": 1, "input_len": 100, "output_len": 20,
                     "quantity": "total_tokens_per_s", "measured": 500.0, "predicted_after": 450.0,
                     "predicted_leave_one_out": 400.0}]}
    (p,) = points_from_calibration(rep)
    assert p.ratio == pytest.approx(1.25) and p.quantity == "throughput"


def test_solve_summary_carries_the_range(tmp_path, capsys):
    assert main(["solve", "--config-dir", "config/realistic", "--out", str(tmp_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    f = s["prediction_range"]["figures"]["tokens_per_s"]
    assert s["tokens_per_s_low"] == pytest.approx(s["tokens_per_s"] * f["low_factor"])
    assert s["tokens_per_s_high"] == pytest.approx(s["tokens_per_s"] * f["high_factor"])
    assert f["low_factor"] <= f["high_factor"]
    for key in ("ttft_ms_low", "ttft_ms_high", "tpot_ms_low", "tpot_ms_high"):
        assert key in s
    assert isinstance(s["extrapolations"], list)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["tokens_per_s_low"] == s["tokens_per_s_low"]
