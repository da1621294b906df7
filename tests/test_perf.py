"""Performance model against numbers derived by hand."""

import pytest

from planner import perf
from tests.helpers import CAT


def test_llama2_70b_layer_params_by_hand():
    m = CAT.model("llama-2-70b")
    d, kv_dim, ffn = 8192, 8 * 128, 28672
    attn = 2 * d * d + 2 * d * kv_dim  # q, o full width; k, v at 8 KV heads
    mlp = 3 * d * ffn
    assert perf.layer_params(m) == attn + mlp == 855_638_016
    # whole model: 80 layers + embedding + untied LM head = the published 69.0B
    assert perf.total_params(m) == pytest.approx(68.98e9, rel=1e-3)


def test_kv_cache_per_token_and_sharding():
    m = CAT.model("llama-3-70b")
    assert perf.kv_bytes_per_token_per_layer(m) == 2 * 8 * 128 * 2  # K and V, 8 heads of 128, fp16
    assert perf.kv_share_per_gpu(m, 4) == pytest.approx(1 / 4)
    assert perf.kv_share_per_gpu(m, 16) == pytest.approx(1 / 8)  # past 8 GPUs the KV heads are replicated


def test_stage_memory_by_hand():
    m, g, e = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM"), CAT.engine("vllm")
    mem = perf.stage_memory(m, g, e, layers=40, tp=2, first=True, last=False, concurrency=10, context_tokens=1000)
    weights = (40 * 855_638_016 * 2 + 32000 * 8192 * 2) / 2 / 1e9
    kv = 10 * 1000 * 40 * (2 * 8 * 128 * 2) / 2 / 1e9
    assert mem.weights_gb == pytest.approx(weights)
    assert mem.kv_cache_gb == pytest.approx(kv)
    assert mem.reserve_gb == pytest.approx(80 * (1 - e.memory_utilization) + e.runtime_reserve_gb)


def test_decode_step_memory_bound_by_hand():
    m, g, e = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM"), CAT.engine("splitwise")
    t = perf.decode_step_time(m, g, e, layers=80, tp=1, first=True, last=True, batch=1, context_tokens=1000)
    weight_bytes = 80 * 855_638_016 * 2 + 2 * 32000 * 8192 * 2
    kv_bytes = 1000 * 80 * 2 * 8 * 128 * 2
    memory_s = (weight_bytes + kv_bytes) / (2039e9 * e.hbm_efficiency)
    assert t.memory_s == pytest.approx(memory_s)
    assert t.bound == "memory"
    # tp=1: no all-reduce; host work overlaps GPU work, so the step is the longer of the two
    assert t.seconds == pytest.approx(max(memory_s, e.step_overhead_ms / 1e3))


def test_prefill_compute_bound_by_hand():
    m, g, e = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM"), CAT.engine("splitwise")
    t = perf.prefill_time(m, g, e, layers=80, tp=2, first=True, last=True, num_sequences=4, prompt_tokens=2048)
    flops = 80 * (2 * 855_638_016 * 4 * 2048 + 2 * 2048 ** 2 * 64 * 128 * 4) + 2 * 32000 * 8192 * 4
    assert t.compute_s == pytest.approx(flops / 2 / (312e12 * e.compute_efficiency))
    assert t.bound == "compute"
    message = 4 * 2048 * 8192 * 2
    ring = 2 * (2 - 1) / 2 * message / (300e9 * e.link_efficiency) + e.allreduce_latency_us * 1e-6
    assert t.comm_s == pytest.approx(80 * 2 * ring)


def test_throughput_rises_with_concurrency():
    m, g, e = CAT.model("llama-3-8b"), CAT.gpu("L4"), CAT.engine("vllm")
    from planner.domain import Workload

    w = Workload(512, 128)
    rates = [perf.stage_perf(m, g, e, 32, 1, True, True, w, c).tokens_per_s for c in (1, 2, 4, 8, 16, 32)]
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_link_tokens_per_s():
    m = CAT.model("llama-3-70b")
    assert perf.link_tokens_per_s(m, 25.0) == pytest.approx(25e9 / (8192 * 2))
