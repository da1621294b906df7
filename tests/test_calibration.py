"""Calibration: hand-derived numbers, the fitted accuracy as regression guards, evaluate_layout."""
import pytest

from planner import perf
from planner.calibration import format_report, validate_report
from planner.catalog import load_catalog
from planner.domain import Workload
from planner.evaluate import evaluate_layout, split_layers

CAT = load_catalog()
VLLM_EAGER_GUARD = 11.5  # achieved 11.1% (target 15%); held-out rows 13.9% (docs/calibration.md)


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
    ceff, heff, _ = e.efficiencies(g)
    layer = 855_638_016
    weights = (80 * layer + 2 * 32000 * 8192) * 2 / 2  # bytes per GPU
    kv = 576 * 80 * (2 * 8 * 128 * 2) / 2  # K and V of 576 tokens, 4 of the 8 KV heads per GPU
    memory_s = (weights + kv) / (2039e9 * heff)
    flops = (80 * (2 * layer + 4 * 576 * 64 * 128) + 2 * 32000 * 8192) / 2
    compute_s = flops / (312e12 * ceff)
    launch_s = 80 * e.launch_us_per_layer * 1e-6  # the host issues 80 layers' kernels, overlapping the GPU
    scheduler_s = e.scheduler_ms / 1e3 + 1 * e.scheduler_us_per_seq * 1e-6  # once per step, after it
    allreduce = 1 / 1 * 8192 * 2 / (300e9 * e.nvlink_efficiency) + e.nvlink_latency_us * 1e-6  # 2(tp-1)/tp = 1
    expected = max(memory_s, compute_s, launch_s) + 80 * 2 * allreduce + scheduler_s
    t = perf.decode_step_time(m, g, e, 80, 2, True, True, 1, 576)
    assert t.seconds == pytest.approx(expected, rel=1e-9)
    r = evaluate_layout(m, g, e, 2, 1, 512, 128, batch=1)
    assert r["decode_step_ms"] == pytest.approx(expected * 1e3, rel=1e-9)
    # measured median 54.9 ms; the fit is +15.5% here (the scheduler's ~10 ms per step, fitted on all
    # batch sizes, comes on top of the 53 ms of HBM reads) - within the file's worst ratio of 1.18
    assert r["decode_step_ms"] == pytest.approx(54.86, rel=0.18)


def test_scheduler_is_paid_once_per_pipeline_step():
    """The engine's scheduler is not divided away by deep pipelines: a static batch through P stages pays
    it once per step in total (1/P per stage); a continuous pipeline's period is at least all of it."""
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("H100-SXM"), CAT.engine("vllm")
    sched = e.scheduler_ms / 1e3 + 8 * e.scheduler_us_per_seq * 1e-6
    one = evaluate_layout(m, g, e, 2, 4, 1024, 128, batch=8)
    parts = [perf.decode_step_time(m, g, e, n, 2, i == 0, i == 3, 8, 1024 + 64, stages=4).scheduler_s
             for i, n in enumerate(split_layers(80, 4))]
    assert sum(parts) == pytest.approx(sched)
    assert one["feasible"]
    tiny = perf.decode_step_time(m, g, e, 1, 8, False, False, 8, 1088, stages=8, pipelined=True)
    assert tiny.seconds >= sched


def test_split_layers():
    assert split_layers(80, 1) == [80]
    assert split_layers(80, 3) == [26, 27, 27]  # extra layers: middle stages first, the embedding stage last
    assert split_layers(70, 4) == [17, 18, 18, 17]
    assert sum(split_layers(81, 8)) == 81


# ---------------------------------------------------------------- (b) calibration targets as regression guards
# Figures of benchmarks/fit_engines.py (2026-11-30); each guard sits a little above the achieved figure.
def test_dgx_decode_mape(report):
    assert report["summary"]["by_phase"]["decode"]["mape_pct"] <= 3.5  # target 10%, achieved 3.3% (5.4% before)


def test_dgx_prefill_mape(report):
    # target 10%, achieved 7.5% with the large all-reduce term (10.6% before; docs/calibration.md)
    assert report["summary"]["by_phase"]["prefill"]["mape_pct"] <= 8.0


def test_burst_row_pays_the_recompute_by_hand():
    """A vllm_l40s.csv row (32000 + 8192 tokens, TP4) is the steady-state wave at the burst concurrency C
    plus the prefill of share x 8192 recomputed tokens per request at the wave's prefill cost per prompt
    token: C x (I + O) / (prefill + (O - 1) x decode step + prefill x share x O / I)."""
    from planner.calibration import burst_concurrency, burst_recompute_shares, predict_vllm, vllm_measurements

    row = next(r for r in vllm_measurements() if (r["tp"], r["input_len"], r["output_len"]) == (4, 32000, 8192))
    e = CAT.engine("vllm-eager")
    c = burst_concurrency(row, e, CAT)
    plain = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("L40S"), e, 4, 1, 32000, 8192, concurrency=c)
    pre, dec = plain["prefill_ms"] / 1e3, plain["decode_step_ms"] / 1e3
    wave = pre + 8191 * dec
    assert plain["tokens_per_s"] == pytest.approx(c * 40192 / wave)
    share = burst_recompute_shares()["vllm-eager"]
    extra = pre * share * 8192 / 32000
    p = predict_vllm(row, e, CAT)
    assert p["tokens_per_s"] == pytest.approx(c * 40192 / (wave + extra))
    assert p["tokens_per_s_steady"] == pytest.approx(plain["tokens_per_s"])
    assert p["tokens_per_s"] < plain["tokens_per_s"]


def test_burst_recompute_shares_file(tmp_path):
    """config/engines_burst.csv: only vllm-eager (fitted on vllm_l40s.csv's burst runs) recomputes; no file
    means none; a bad cell names the file, row and column."""
    from planner.calibration import burst_recompute_shares
    from planner.errors import InputError

    shares = burst_recompute_shares()
    assert set(shares) == {"vllm-eager"} and 0 < shares["vllm-eager"] <= 3
    assert burst_recompute_shares(tmp_path / "none.csv") == {}
    bad = tmp_path / "engines_burst.csv"
    bad.write_text("engine,preempt_recompute_share,source\nvllm-eager,0.5,x\nsplitwise,lots,y\n")
    with pytest.raises(InputError) as err:
        burst_recompute_shares(bad)
    assert "engines_burst.csv" in str(err.value) and "row 3" in str(err.value)
    assert "preempt_recompute_share" in str(err.value)


def test_vllm_eager_throughput_mape(report):
    # target 15%: see docs/calibration.md for why vllm_l40s.csv is not reproduced better
    assert report["engines"]["vllm_l40s.csv"]["name"] == "vllm-eager"
    assert report["summary"]["by_phase"]["throughput"]["mape_pct"] <= VLLM_EAGER_GUARD


@pytest.fixture(scope="module")
def reference():
    from planner.calibration import reference_rows, reference_summary

    return reference_summary(reference_rows(CAT.engine("vllm"), CAT))


def test_reference_timing_mape(reference):
    """Against AIConfigurator's vLLM backend (768 configurations; timings on the 590 that fit)."""
    for phase, achieved in (("prefill", 8.6), ("decode", 5.9), ("throughput", 5.1)):
        assert reference[phase]["mape_pct"] <= 20.0
        assert reference[phase]["mape_pct"] <= achieved + 1.5, phase
        assert reference[phase]["worst_ratio"] <= 2.0, phase


def test_reference_memory_verdicts(reference):
    assert reference["memory"]["share"] >= 0.95  # achieved 98.6%
    assert reference["memory"]["wrongly_infeasible"] == 0  # nothing that runs is refused


def test_reference_best_gpu_per_dollar(reference):
    # target 90% of the 48 (model, lengths, batch) groups; achieved 43/48 (89.6%): the misses are H100
    # against H200 on 70B, within a few % of each other in tokens per dollar
    assert reference["best_gpu"]["agree"] >= 43


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
    assert r["memory_gb_per_gpu"] <= 48 * 2 ** 30 / 1e9  # 48 GiB = 51.5 GB
    assert r["bound"] in ("compute", "memory", "link", "host")
    assert r["output_tokens_per_s"] == pytest.approx(r["tokens_per_s"] * 512 / 2560)


def test_70b_on_eight_a10g_tp4_pp2_feasible():
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("A10G"), CAT.engine("vllm"), 4, 2, 1024, 256)
    assert r["feasible"], r["reason"]
    assert len(r["stages"]) == 2 and [s["layers"] for s in r["stages"]] == [40, 40]
    assert r["stages"][0]["first"] and r["stages"][1]["last"]
    assert r["memory_gb_per_gpu"] <= 24 * 2 ** 30 / 1e9  # 24 GiB = 25.8 GB


@pytest.mark.parametrize("gpu", ["H100-SXM", "A100-80GB-SXM"])
def test_70b_at_tp2_on_80gb_gpus_fits(gpu):
    """It runs in practice (vLLM, bf16): weights 70.6e9 x 2 / 2 = 70.6 GB per GPU of 85.9 GB (80 GiB);
    90% of it for the engine = 77.3 GB, less 1.07 GB of activations and 1.5 GiB (1.61 GB) leaves 4.07 GB
    of KV cache: 10 sequences of 2048 + 512/2 = 2304 tokens at 80 x 2 x 8 x 128 x 2 / 2 = 163,840 bytes
    per token per GPU (377 MB each)."""
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu(gpu), CAT.engine("vllm"), 2, 1, 2048, 512)
    assert r["feasible"], r["reason"]
    assert r["concurrency"] == 10


def test_70b_on_one_t4_infeasible_with_reason():
    r = evaluate_layout(CAT.model("llama-3-70b"), CAT.gpu("T4"), CAT.engine("vllm"), 1, 1, 512, 128)
    assert not r["feasible"]
    assert "GB" in r["reason"] and "T4" in r["reason"]


def test_two_nodes_pay_the_inter_node_link():
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm")
    one = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=32, nodes=1)
    # 25 Gbit/s = 3.125 GB/s between the nodes, slower than the node's PCIe
    two = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=32, nodes=2, inter_node_gb_per_s=3.125)
    assert two["feasible"] and two["links"][0]["inter_node"]
    assert two["prefill_ms"] > one["prefill_ms"] and two["decode_step_ms"] > one["decode_step_ms"]
    assert two["links"][0]["tokens_per_s"] == pytest.approx(3.125e9 / (8192 * 2))


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
    # continuous batching: each sequence holds its prompt and half its output on average (2048 + 256)
    assert auto["concurrency"] == perf.max_concurrency(m, g, e, 80, 4, True, True, 2304)


def test_pipeline_rate_is_the_slowest_stage():
    m, g, e = CAT.model("llama-3-70b"), CAT.gpu("L40S"), CAT.engine("vllm")
    r = evaluate_layout(m, g, e, 4, 2, 2048, 512, concurrency=64)
    w = Workload(2048, 512)
    # stage 1 hands its activations to stage 2 over the node's PCIe
    rates = [perf.stage_perf(m, g, e, 40, 4, i == 0, i == 1, w, 64, microbatches=2,
                             handoff=(25.0, "pcie") if i == 0 else None).tokens_per_s for i in (0, 1)]
    assert r["tokens_per_s"] == pytest.approx(min(rates), rel=1e-12)
