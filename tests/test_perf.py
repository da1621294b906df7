"""Performance model against numbers derived by hand.

Most checks use a made-up engine profile with round numbers (ROUND) so that every figure can be worked
out on paper; the derivation is in the comments."""

from dataclasses import replace

import pytest

from planner import perf
from planner.domain import EngineProfile, GpuEfficiency, GpuSpec, Workload
from planner.errors import InputError
from tests.helpers import CAT

ROUND = EngineProfile(
    name="round", compute_efficiency=0.5, hbm_efficiency=0.5, nvlink_efficiency=0.5, nvlink_latency_us=10.0,
    pcie_efficiency=0.5, pcie_latency_us=20.0, network_efficiency=0.5, network_latency_us=100.0,
    launch_us_per_layer=10.0, scheduler_ms=2.0, scheduler_us_per_seq=10.0, memory_utilization=0.9,
    runtime_reserve_gib=1.0, max_num_seqs=256, prefill_chunk_tokens=8192, pcie_root_gpus=2.0,
    gpu_efficiencies=(GpuEfficiency("H100-SXM", 0.8, 0.9), GpuEfficiency("arch:ampere", 0.6, 0.7)))


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


def test_efficiencies_per_gpu_then_architecture_then_default():
    assert ROUND.efficiencies(CAT.gpu("H100-SXM"))[:2] == (0.8, 0.9)  # its own row
    assert ROUND.efficiencies(CAT.gpu("A10G"))[:2] == (0.6, 0.7)  # Ampere: the arch:ampere row
    assert ROUND.efficiencies(CAT.gpu("L4"))[:2] == (0.5, 0.5)  # Ada: no row, the profile's default


def test_memory_in_gib_with_engine_share_by_hand():
    """llama-2-70b, 40 layers + embedding at TP2 on an 80 GB A100, 10 sequences of 1000 KV tokens."""
    m, g = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM")
    mem = perf.stage_memory(m, g, ROUND, layers=40, tp=2, first=True, last=False, concurrency=10, context_tokens=1000)
    weights = (40 * 855_638_016 * 2 + 32000 * 8192 * 2) / 2 / 1e9  # 34.487 GB
    kv = 10 * 1000 * 40 * (2 * 8 * 128 * 2) / 2 / 1e9  # 1.638 GB
    capacity = 80 * 2 ** 30 / 1e9  # the vendor's 80 GB are GiB: 85.899 GB
    reserve = capacity * (1 - 0.9) + 1 * 2 ** 30 / 1e9  # 10% left to others + 1 GiB runtime = 9.664 GB
    assert mem.weights_gb == pytest.approx(weights)
    assert mem.kv_cache_gb == pytest.approx(kv)
    assert mem.capacity_gb == pytest.approx(85.899, abs=1e-3)
    assert mem.reserve_gb == pytest.approx(reserve)


def test_memory_share_of_free_memory_by_hand():
    """TensorRT-LLM's share is of the memory left after weights, activations and the runtime (same stage as
    above): 0.9 of it goes to the KV cache, the other 0.1 is held back; the KV room follows."""
    m, g = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM")
    free_share = replace(ROUND, memory_fraction_of="free")
    mem = perf.stage_memory(m, g, free_share, layers=40, tp=2, first=True, last=False, concurrency=10,
                            context_tokens=1000)
    weights = (40 * 855_638_016 * 2 + 32000 * 8192 * 2) / 2 / 1e9  # 34.487 GB
    activations = 8192 * (4 * 8192 + 2 * 28672 / 2) * 2 / 1e9  # one 8192-token chunk: 1.007 GB
    capacity, runtime = 80 * 2 ** 30 / 1e9, 2 ** 30 / 1e9
    reserve = (capacity - weights - activations - runtime) * 0.1 + runtime  # 6.07 GB (vs 9.66 of the total)
    assert mem.activations_gb == pytest.approx(activations)
    assert mem.reserve_gb == pytest.approx(reserve)
    kv_per_seq = 1000 * 40 * (2 * 8 * 128 * 2) / 2  # bytes on one GPU
    room = 0.9 * (capacity - weights - activations - runtime) * 1e9
    assert perf.max_concurrency(m, g, free_share, 40, 2, True, False, 1000, engine_cap=False) == int(room // kv_per_seq)
    with pytest.raises(Exception, match="memory_fraction_of"):
        replace(ROUND, memory_fraction_of="half")


def test_concurrency_from_a_breakdown_equals_max_concurrency():
    m, g = CAT.model("llama-3-70b"), CAT.gpu("H100-SXM")
    for e in (ROUND, replace(ROUND, memory_fraction_of="free"), CAT.engine("vllm")):
        for layers, tp, first, last, conc in ((80, 2, True, True, 7), (20, 4, False, True, 300), (40, 1, True, False, 0)):
            mem = perf.stage_memory(m, g, e, layers, tp, first, last, conc, 2304)
            for cap in (True, False):
                assert perf.concurrency_that_fits(mem, m, e, layers, tp, 2304, cap) == \
                    perf.max_concurrency(m, g, e, layers, tp, first, last, 2304, engine_cap=cap)


def test_kv_tokens_as_vllm_allocates_them():
    # continuous batching: prompt + half the output on average, rounded up to 16-token blocks:
    # 2048 + 256 = 2304 = 144 blocks exactly; 100 + 7/2 = 103.5 -> 7 blocks = 112 tokens, capped at 107
    assert perf.kv_tokens_per_sequence(2048, 512) == 2304
    assert perf.kv_tokens_per_sequence(100, 7) == 107
    assert perf.kv_tokens_per_sequence(1000, 100) == 1056  # 1050 -> 66 blocks = 1056
    assert perf.kv_tokens_per_sequence(2048, 512, static=True) == 2560  # a static batch grows together


def test_decode_step_memory_bound_with_launch_and_scheduler_by_hand():
    """llama-2-70b whole model on one A100 (arch:ampere row: HBM efficiency 0.7), batch 1, context 1000."""
    m, g = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM")
    t = perf.decode_step_time(m, g, ROUND, layers=80, tp=1, first=True, last=True, batch=1, context_tokens=1000)
    weight_bytes = 80 * 855_638_016 * 2 + 2 * 32000 * 8192 * 2  # 137.95e9
    kv_bytes = 1000 * 80 * 2 * 8 * 128 * 2  # 0.328e9
    memory_s = (weight_bytes + kv_bytes) / (2039e9 * 0.7)  # 96.88 ms
    launch_s = 80 * 10e-6  # 0.8 ms: overlaps the GPU's 96.9 ms
    scheduler_s = 2e-3 + 1 * 10e-6  # 2.01 ms: after the step, adds
    assert t.memory_s == pytest.approx(memory_s)
    assert t.overhead_s == pytest.approx(launch_s)
    assert t.scheduler_s == pytest.approx(scheduler_s)
    assert t.seconds == pytest.approx(memory_s + scheduler_s)  # tp=1: no all-reduce, no hand-off
    assert t.bound == "memory"


def test_launch_bound_step_says_host():
    """llama-3-8b on an H100 with eager-like launches of 500 us per layer: 32 x 0.5 = 16 ms of launches
    against 16.06e9 bytes / (3350e9 x 0.9) = 5.3 ms of HBM reads: the host decides."""
    m, g = CAT.model("llama-3-8b"), CAT.gpu("H100-SXM")
    eager = replace(ROUND, launch_us_per_layer=500.0, scheduler_ms=0.0, scheduler_us_per_seq=0.0)
    t = perf.decode_step_time(m, g, eager, 32, 1, True, True, 1, 100)
    assert t.seconds == pytest.approx(0.016)
    assert t.bound == "host"


def test_allreduce_by_link_type_by_hand():
    """A 1 MB message: NVLink ring over 450 GB/s at 0.5 vs PCIe through the host root at 25 GB/s."""
    message = 1e6
    h100, l40s = CAT.gpu("H100-SXM"), CAT.gpu("L40S")
    # NVLink ring, tp 8: each GPU moves 2 x 7/8 of the message: 1.75e6 / 225e9 = 7.78 us, + 10 us latency
    assert perf.allreduce_seconds(message, 8, h100, ROUND) == pytest.approx(1.75e6 / 225e9 + 10e-6)
    # PCIe with a host root that carries 2 GPUs at full speed: tp 2 is a plain ring (2 x 1/2 = 1 message);
    # tp 8: the ring's 1.75 messages x 8/2 = 7 messages, at 12.5 GB/s: 80 us / 560 us, + 20 us
    assert perf.allreduce_seconds(message, 2, l40s, ROUND) == pytest.approx(1e6 / 12.5e9 + 20e-6)
    assert perf.allreduce_seconds(message, 8, l40s, ROUND) == pytest.approx(7e6 / 12.5e9 + 20e-6)
    assert perf.allreduce_seconds(message, 1, l40s, ROUND) == 0.0
    # a root carrying 8 GPUs: tp 8 is a plain ring again, 1.75 messages
    wide = replace(ROUND, pcie_root_gpus=8.0)
    assert perf.allreduce_seconds(message, 8, l40s, wide) == pytest.approx(1.75e6 / 12.5e9 + 20e-6)
    # NVSwitch exponent 0.5: the ring's time over 8 GPUs divided by (8/2)^0.5 = 2: 0.875e6 / 225e9 + 10 us;
    # TP 2 unchanged; PCIe unaffected
    switch = replace(ROUND, nvswitch_exponent=0.5)
    assert perf.allreduce_seconds(message, 8, h100, switch) == pytest.approx(0.875e6 / 225e9 + 10e-6)
    assert perf.allreduce_seconds(message, 2, h100, switch) == perf.allreduce_seconds(message, 2, h100, ROUND)
    assert perf.allreduce_seconds(message, 8, l40s, switch) == perf.allreduce_seconds(message, 8, l40s, ROUND)


def test_large_allreduce_slower_past_the_size_by_hand():
    """Past allreduce_large_mb the bytes move at allreduce_large_ratio of the rate: a 100 MB message, limit
    40 MB at ratio 0.5, NVLink ring over 2 H100s at 450 GB/s x 0.5 = 225 GB/s: 40 MB / 225 GB/s = 177.8 us
    + 60 MB at half that = 533.3 us, + 10 us latency; below the limit (and with ratio 1) unchanged."""
    h100 = CAT.gpu("H100-SXM")
    slow = replace(ROUND, allreduce_large_mb=40.0, allreduce_large_ratio=0.5)
    assert perf.allreduce_seconds(100e6, 2, h100, slow) == pytest.approx(40e6 / 225e9 + 60e6 / 112.5e9 + 10e-6)
    assert perf.allreduce_seconds(30e6, 2, h100, slow) == perf.allreduce_seconds(30e6, 2, h100, ROUND)
    assert perf.large_allreduce_seconds(1e-3, 100e6, ROUND) == (1e-3, "link")
    # a prefill that sends such messages says "link" when they dominate: 32768 tokens of an 8192-wide model
    # = 537 MB per all-reduce over PCIe
    m, l40s = CAT.model("llama-2-70b"), CAT.gpu("L40S")
    slower = replace(slow, allreduce_large_ratio=0.1)
    assert perf.prefill_time(m, l40s, slower, 80, 8, True, True, 64, 512).bound == "link"
    with pytest.raises(InputError, match="allreduce_large_ratio"):
        replace(ROUND, allreduce_large_ratio=0.0)


def test_nvswitch_exponent_from_the_nccl_tables_by_hand():
    """The fit script's exponent, recomputed for H100 from two rows of the NCCL table: TP 8 against TP 2 at
    the largest message, ring ratio 1.75, x = log(ring ratio / time ratio) / log 4; and the catalogue uses the
    pooled value."""
    import csv
    import math
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "benchmarks"))
    import fit_engines

    rows = list(csv.DictReader(open(root / "data" / "reference" / "nccl_aiconfigurator.csv", encoding="utf-8")))
    biggest = max(int(r["message_bytes"]) for r in rows)
    t = {n: [float(r["latency_us"]) for r in rows if r["gpu"] == "H100-SXM" and int(r["num_gpus"]) == n
             and int(r["message_bytes"]) == biggest] for n in (2, 8)}
    one = math.log(1.75 / (sum(t[8]) / len(t[8]) / (sum(t[2]) / len(t[2])))) / math.log(4)
    fitted = fit_engines.nvswitch_exponent()
    assert 0.1 < one < 0.4 and abs(fitted["H100-SXM"] - one) < 0.1  # one point vs the least squares of all
    assert fitted["A100-80GB-SXM"] < fitted["H100-SXM"]  # no in-switch reduction before Hopper
    for name in ("vllm", "sglang", "trtllm", "vllm-eager", "splitwise"):
        assert CAT.engine(name).nvswitch_exponent == fitted["pooled"]


def test_prefill_compute_bound_by_hand():
    """llama-2-70b, TP2 on A100 (arch:ampere: compute efficiency 0.6), 4 prompts of 2048 tokens."""
    m, g = CAT.model("llama-2-70b"), CAT.gpu("A100-80GB-SXM")
    t = perf.prefill_time(m, g, ROUND, layers=80, tp=2, first=True, last=True, num_sequences=4, prompt_tokens=2048)
    flops = 80 * (2 * 855_638_016 * 4 * 2048 + 2 * 2048 ** 2 * 64 * 128 * 4) + 2 * 32000 * 8192 * 4
    compute_s = flops / 2 / (312e12 * 0.6)  # 6.075 s
    assert t.compute_s == pytest.approx(compute_s)
    assert t.bound == "compute"
    message = 4 * 2048 * 8192 * 2  # 134 MB of 16-bit hidden states per all-reduce
    ring = 2 * (2 - 1) / 2 * message / (300e9 * 0.5) + 10e-6  # 0.905 ms per call over NVLink
    assert t.comm_s == pytest.approx(80 * 2 * ring)
    assert t.seconds == pytest.approx(compute_s + 80 * 2 * ring + 2e-3 + 4 * 10e-6)


def test_pipeline_pays_scheduler_once_per_step_not_per_stage():
    """Two stages of 16 layers of llama-3-8b on H100 (HBM efficiency 0.9), microbatch of 1, context 100.

    Each stage: weights 16 x 218,103,808 x 2 + 525,336,576 x 2 (embedding or LM head) = 8.03e9 bytes,
    KV 100 x 16 x 4096 B = 6.6 MB: 8.03e9 / (3350e9 x 0.9) = 2.665 ms; launches 16 x 10 us = 0.16 ms
    overlap. The scheduler (2.01 ms per engine step) is split: each stage carries 1.005 ms, so a token
    round of the two stages = 2 x (2.665 + 1.005) = 7.34 ms = both stages + one scheduler step."""
    m, g = CAT.model("llama-3-8b"), CAT.gpu("H100-SXM")
    w = Workload(100, 1)
    sp = perf.stage_perf(m, g, ROUND, 16, 1, True, False, w, 2, microbatches=2)
    weights = 16 * 218_103_808 * 2 + 128256 * 4096 * 2
    kv = 100.5 * 16 * 2 * 8 * 128 * 2  # mean context 100 + 1/2
    gpu_s = (weights + kv) / (3350e9 * 0.9)
    assert sp.decode_step.seconds == pytest.approx(gpu_s + (2e-3 + 10e-6) / 2)
    # the scheduler is a floor on the pipeline's period: a tiny stage (1 layer, no embedding) runs at
    # the scheduler's 2.01 ms per step, not at 1/2 of it plus its GPU time
    tiny = perf.stage_perf(m, g, ROUND, 1, 1, False, False, w, 2, microbatches=2)
    assert tiny.decode_step.seconds == pytest.approx(2e-3 + 10e-6)
    assert tiny.decode_step.bound == "host"


def test_handoff_within_node_and_across_by_hand():
    """64 tokens of llama-3-70b hidden states (8192 x 2 bytes = 16 KB each = 1.05 MB)."""
    m = CAT.model("llama-3-70b")
    bytes_ = 64 * 8192 * 2
    # across nodes at 25 GB/s x 0.5 + 100 us; over NVLink at 450 x 0.5 + 10 us
    assert perf.handoff_seconds(m, ROUND, 64, 25.0, "network") == pytest.approx(bytes_ / 12.5e9 + 100e-6)
    assert perf.handoff_seconds(m, ROUND, 64, 450.0, "nvlink") == pytest.approx(bytes_ / 225e9 + 10e-6)


def test_precision_changes_bytes_and_compute_rate():
    m = CAT.model("llama-3-70b")
    fp8 = perf.apply_precision(m, "fp8")
    int4 = perf.apply_precision(m, "int4")
    # weights: 1 byte (fp8), 0.5 + 2/128 (int4 with a 16-bit scale per 128); embedding stays 16-bit
    assert perf.layer_weight_bytes(fp8) == pytest.approx(perf.layer_params(m) * 1.0)
    assert perf.layer_weight_bytes(int4) == pytest.approx(perf.layer_params(m) * 0.515625)
    assert perf.embedding_bytes(fp8) == perf.embedding_bytes(m) == 128256 * 8192 * 2
    # KV: fp8 by default with fp8 weights, 16-bit with int4 unless asked
    assert perf.kv_bytes_per_token_per_layer(fp8) == 2 * 8 * 128 * 1
    assert perf.kv_bytes_per_token_per_layer(int4) == 2 * 8 * 128 * 2
    assert perf.kv_bytes_per_token_per_layer(perf.apply_precision(m, "int4", "fp8")) == 2 * 8 * 128 * 1
    # compute: FP8 tensor cores on H100 (1979 dense), none on A100 (stays 312, weight-only, with a note)
    assert perf.compute_tflops(fp8, CAT.gpu("H100-SXM")) == 1979
    assert perf.compute_tflops(fp8, CAT.gpu("A100-80GB-SXM")) == 312
    assert perf.compute_tflops(int4, CAT.gpu("H100-SXM")) == 989
    assert "no FP8 tensor cores" in perf.precision_note(fp8, CAT.gpu("A100-80GB-SXM"))
    assert perf.precision_note(fp8, CAT.gpu("L40S")) == ""


def test_layer_weight_override_sets_flops_and_bytes():
    """A user's 3.5 GB per layer at 2 bytes per weight = 1.75e9 parameters per layer, for FLOPs too."""
    m = replace(CAT.model("llama-2-70b"), layer_weight_gb_override=3.5)
    assert perf.layer_weight_bytes(m) == pytest.approx(3.5e9)
    assert perf.layer_params(m) == pytest.approx(1.75e9)
    g = CAT.gpu("H100-SXM")
    t = perf.prefill_time(m, g, ROUND, 1, 1, False, False, 1, 1000)
    flops = 2 * 1.75e9 * 1000 + 2 * 1000 ** 2 * 64 * 128  # matmuls + causal attention
    assert t.compute_s == pytest.approx(flops / (989e12 * 0.8))


def test_throughput_rises_with_concurrency():
    m, g, e = CAT.model("llama-3-8b"), CAT.gpu("L4"), CAT.engine("vllm")
    w = Workload(512, 128)
    rates = [perf.stage_perf(m, g, e, 32, 1, True, True, w, c).tokens_per_s for c in (1, 2, 4, 8, 16, 32)]
    assert all(b > a for a, b in zip(rates, rates[1:]))


def test_link_tokens_per_s():
    m = CAT.model("llama-3-70b")
    assert perf.link_tokens_per_s(m, 25.0) == pytest.approx(25e9 / (8192 * 2))


def test_gpu_without_fp8_column_loads():
    g = GpuSpec("X", 24, 100, 500, "pcie", 25, 8, 1.0)
    assert g.fp8_dense_tflops is None and g.memory_bytes == 24 * 2 ** 30


def test_candidate_memo_gives_what_a_fresh_build_gives():
    """Options reused from an earlier build (another segment-size setting of the same scenario) are the ones
    a build from scratch computes; another workload is never served from the first one's memo."""
    from planner import candidates as C
    from planner.scenario_io import load_config_dir

    base = load_config_dir("config/medium")
    coarse, fine = (replace(base, settings=replace(base.settings, quantization=q)) for q in ("coarse", "fine"))
    C._memos.clear()
    C.build_candidates(coarse)
    warm = C.build_candidates(fine)
    C._memos.clear()
    cold = C.build_candidates(fine)
    assert warm.options == cold.options and warm.excluded == cold.excluded
    for o in warm.options[::7]:
        assert C._compute(fine, o.size, o.role, o.gpu_type, o.tp, o.level) == o
    longer = replace(fine, workload=replace(fine.workload, input_tokens=fine.workload.input_tokens * 2))
    C._memos.clear()
    fresh = C.build_candidates(longer).options
    C._memos.clear()
    C.build_candidates(fine)
    assert C.build_candidates(longer).options == fresh


def test_engines_csv_without_the_new_columns_loads_and_a_bad_value_is_named():
    """An engines.csv written before memory_fraction_of and nvswitch_exponent existed loads with their
    defaults (share of the total memory, a plain ring); a bad value names file, row and column."""
    import csv
    import io

    from planner.catalog import parse_engines
    from planner.errors import InputError

    rows = list(csv.DictReader(open("config/engines.csv", encoding="utf-8")))
    old_cols = [c for c in rows[0] if c not in ("memory_fraction_of", "nvswitch_exponent")]

    def text(cols, row_list):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(row_list)
        return buf.getvalue()

    old = parse_engines(text(old_cols, rows), "engines.csv")
    assert old["trtllm"].memory_fraction_of == "total" and old["vllm"].nvswitch_exponent == 0.0
    new = parse_engines(text(list(rows[0]), rows), "engines.csv")
    assert new["trtllm"].memory_fraction_of == "free" and new["vllm"].nvswitch_exponent > 0
    for column, value in (("memory_fraction_of", "half"), ("nvswitch_exponent", "2")):
        bad = [dict(rows[0], **{column: value})]
        with pytest.raises(InputError) as err:
            parse_engines(text(list(rows[0]), bad), "engines.csv")
        assert column in str(err.value) and "engines.csv" in str(err.value) and "row 2" in str(err.value)



def test_burst_recompute_by_hand():
    """A burst throughput run re-prefills share x output tokens per request at the wave's prefill cost per
    prompt token: 1,000 tokens/s over a 10 s wave whose prefill of 1,000-token prompts took 2 s, 500 output
    tokens, share 1 -> 500 tokens again = 1 s more: 1,000 x 10 / 11; share 0 changes nothing."""
    assert perf.burst_recompute_tokens(1.0, 500) == 500.0
    assert perf.burst_recompute_tokens(0.5, 500) == 250.0
    assert perf.burst_tokens_per_s(1000.0, 10.0, 2.0, 1.0, 1000, 500) == pytest.approx(1000 * 10 / 11)
    assert perf.burst_tokens_per_s(1000.0, 10.0, 2.0, 0.0, 1000, 500) == 1000.0
