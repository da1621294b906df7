"""Calibration: hand-derived numbers, the fitted accuracy as regression guards, evaluate_layout."""
import pytest

from planner import perf
from planner.calibration import format_report, validate_report
from planner.catalog import load_catalog
from planner.domain import Workload
from planner.evaluate import evaluate_layout, split_layers

CAT = load_catalog()


@pytest.fixture(scope="module")
def report():
    return validate_report()


# ---------------------------------------------------------------- (a) numbers derived by hand
def test_llama2_70b_weights_per_gpu_at_tp2_by_hand():
    m = CAT.model("llama-2-70b")
    d, kv_dim, ffn, vocab = 8192, 8 * 128, 28672, 32000
    layer = 2 * d * d + 2 * d * kv_dim + 3 * d * ffn  # q,o + k,v + gate,up,down = 855,638,016
    whole = (80 * layer + 2 * vocab * d) * 2  # fp16, embedding + untied LM head
    assert perf.stage_weight_bytes_per_gpu(m, 80, 2, True, True) == pytest.approx(whole / 2)
    assert whole / 2 / 1e9 == pytest.approx(68.97, abs=0.01)  # ~69 GB on each of the two GPUs


def test_decode_step_by_hand_dgx_tp2():
    """llama-2-70b, TP 2 on A100-80GB SXM, batch 1, prompt 512, 128 output tokens (mean context 576)."""
    m, g, e = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM"), CAT.engine("splitwise")
    layer = 855_638_016
    weights = (80 * layer + 2 * 32000 * 8192) * 2 / 2  # bytes per GPU
    kv = 576 * 80 * (2 * 8 * 128 * 2) / 2  # K and V of 576 tokens, 4 of the 8 KV heads per GPU
    memory_s = (weights + kv) / (2039e9 * e.hbm_efficiency)
    flops = (80 * (2 * layer + 4 * 576 * 64 * 128) + 2 * 32000 * 8192) / 2
    compute_s = flops / (312e12 * e.compute_efficiency)
    host_s = e.step_overhead_ms / 1e3  # whole model on one stage
    allreduce = 1 / 1 * 8192 * 2 / (300e9 * e.link_efficiency) + e.allreduce_latency_us * 1e-6  # 2(tp-1)/tp = 1
    expected = max(memory_s, compute_s, host_s) + 80 * 2 * allreduce
    t = perf.decode_step_time(m, g, e, 80, 2, True, True, 1, 576)
    assert t.seconds == pytest.approx(expected, rel=1e-9)
    r = evaluate_layout(m, g, e, 2, 1, 512, 128, batch=1)
    assert r["decode_step_ms"] == pytest.approx(expected * 1e3, rel=1e-9)
    assert r["decode_step_ms"] == pytest.approx(54.86, rel=0.15)  # measured median 54.9 ms


def test_host_overhead_is_shared_by_stage_layers():
    m, e = CAT.model("llama-3-70b"), CAT.engine("vllm")
    assert perf.host_overhead_seconds(m, e, 20) == pytest.approx(e.step_overhead_ms / 1e3 / 4)


def test_split_layers():
    assert split_layers(80, 1) == [80]
    assert split_layers(80, 3) == [26, 27, 27]  # extra layers: middle stages first, the embedding stage last
    assert split_layers(70, 4) == [17, 18, 18, 17]
    assert sum(split_layers(81, 8)) == 81


# ---------------------------------------------------------------- (b) calibration targets as regression guards
def test_dgx_decode_mape(report):
    assert report["summary"]["by_phase"]["decode"]["mape_pct"] <= 10.0


def test_dgx_prefill_mape(report):
    assert report["summary"]["by_phase"]["prefill"]["mape_pct"] <= 10.0


def test_vllm_throughput_mape(report):
    assert report["summary"]["by_phase"]["throughput"]["mape_pct"] <= 15.0


def test_report_rows_and_table(report):
    rows = report["rows"]
    assert sum(r["phase"] == "prefill" for r in rows) == 76  # 76 DGX configurations (medians)
    assert sum(r["phase"] == "throughput" for r in rows) == 23
    assert sum(1 for r in rows if r["excluded"]) == 2  # one inconsistent configuration, both phases
    for r in rows:
        assert {"file", "model", "gpu", "tp", "pp", "phase", "input_len", "output_len", "measured", "predicted",
                "error_pct"} <= set(r)
        assert r["predicted"] > 0 or r["excluded"]
    text = format_report(report)
    assert "MAPE" in text and "throughput" in text and "TP8" in text


def test_dgx_medians():
    from planner.calibration import dgx_measurements

    rows = {(r["model"], r["tp"], r["input_len"], r["batch"], r["output_len"]): r for r in dgx_measurements()}
    r = rows[("llama2-70b", 2, 512, 1, 128)]
    assert r["runs"] == 15
    assert r["prefill_ms"] == pytest.approx(196.862379, rel=1e-6)  # median of the 15 repetitions


# ---------------------------------------------------------------- (c) evaluate_layout
def test_70b_on_four_l40s_tp4_feasible():
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm"), 4, 1, 2048, 512)
    assert r["feasible"], r["reason"]
    assert r["concurrency"] >= 1 and r["tokens_per_s"] > 0
    assert r["memory_gb_per_gpu"] <= 48
    assert r["bound"] in ("compute", "memory", "link")
    assert r["output_tokens_per_s"] == pytest.approx(r["tokens_per_s"] * 512 / 2560)


def test_70b_on_eight_a10g_tp4_pp2_feasible():
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("A10G"), CAT.engine("vllm"), 4, 2, 1024, 256)
    assert r["feasible"], r["reason"]
    assert len(r["stages"]) == 2 and [s["layers"] for s in r["stages"]] == [40, 40]
    assert r["stages"][0]["first"] and r["stages"][1]["last"]
    assert r["memory_gb_per_gpu"] <= 24


def test_70b_on_one_t4_infeasible_with_reason():
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("T4"), CAT.engine("vllm"), 1, 1, 512, 128)
    assert not r["feasible"]
    assert "GB" in r["reason"] and "T4" in r["reason"]


def test_two_nodes_pay_the_inter_node_link():
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm")
    one = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=32, nodes=1)
    two = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=32, nodes=2, inter_node_gb_per_s=12.5)
    assert two["feasible"] and two["links"][0]["inter_node"]
    assert two["prefill_ms"] > one["prefill_ms"] and two["decode_step_ms"] > one["decode_step_ms"]
    assert two["links"][0]["tokens_per_s"] == pytest.approx(12.5e9 / (8192 * 2))


def test_bad_layouts_are_infeasible_not_errors():
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm")
    assert not evaluate_layout(m, g, e, 16, 1, 512, 128)["feasible"]  # TP beyond one node
    assert not evaluate_layout(m, g, e, 3, 1, 512, 128)["feasible"]  # 64 heads do not split 3 ways
    assert not evaluate_layout(m, g, e, 4, 1, 512, 128, nodes=2)["feasible"]  # one stage on two nodes


# ---------------------------------------------------------------- (d) consistency with the planner's perf model
@pytest.mark.parametrize("engine", ["vllm", "splitwise"])
def test_pp1_agrees_with_stage_perf(engine):
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("A100-80GB-SXM"), CAT.engine(engine)
    r = evaluate_layout(m, g, e, 4, 1, 2048, 512, concurrency=64)
    sp = perf.stage_perf(m, g, e, 80, 4, True, True, Workload(2048, 512), 64)
    assert r["tokens_per_s"] == pytest.approx(sp.tokens_per_s, rel=1e-12)
    assert r["prefill_ms"] == pytest.approx(sp.prefill.seconds * 1e3, rel=1e-12)
    assert r["decode_step_ms"] == pytest.approx(sp.decode_step.seconds * 1e3, rel=1e-12)
    auto = evaluate_layout(m, g, e, 4, 1, 2048, 512)
    assert auto["concurrency"] == perf.max_concurrency(m, g, e, 80, 4, True, True, 2560)


def test_pipeline_rate_is_the_slowest_stage():
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm")
    r = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=64)
    w = Workload(2048, 512)
    rates = [perf.stage_perf(m, g, e, 40, 4, i == 0, i == 1, w, 64, microbatches=2).tokens_per_s for i in (0, 1)]
    assert r["tokens_per_s"] == pytest.approx(min(rates), rel=1e-12)
