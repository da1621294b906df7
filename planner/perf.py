"""Performance model: small pure functions returning times, memory and what bounds them.

Conventions: times in seconds unless the name says otherwise; bytes are bytes; GB = 1e9 bytes,
GiB = 2^30 bytes. GPU capacities are the vendors' nominal "GB", which are GiB (GpuSpec.memory_bytes);
every memory figure reported here is in GB (1e9 bytes), the capacity included (80 GiB = 85.9 GB).
A stage holds `layers` consecutive decoder layers on `tp` GPUs of one type; `first` adds the
embedding table, `last` adds the LM head (and its matmul).

A forward step of a stage (`_phase`): the GPU is busy for max(compute, memory); the host issues the
kernels asynchronously (`launch_seconds`), so that overlaps; the all-reduces and the hand-off of the
activations to the next stage are synchronisation points and add; the engine's scheduler (scheduling,
sampling, output processing: `scheduler_seconds`) runs once per engine step between steps and adds.
In a pipeline of P stages cycling P microbatches, the scheduler works on one microbatch while the
stages run the others: each stage carries 1/P of it and the pipeline's period is at least the
scheduler's time (`stage_perf`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .domain import EngineProfile, GpuSpec, ModelSpec, Workload
from .perf_bytes import (  # noqa: F401  (re-exported: perf is the model's one entry point)
    apply_precision, compute_tflops, embedding_bytes, kv_bytes_per_element, kv_bytes_per_token_per_layer,
    kv_share_per_gpu, layer_params, layer_weight_bytes, precision_note, total_params)
from .units import GB, GIB

ACT_BYTES = 2.0  # activations, all-reduce messages and stage hand-offs are 16-bit at every weight precision
KV_BLOCK_TOKENS = 16  # vLLM allocates the KV cache in blocks of 16 tokens as tokens arrive

# Per-object memo of pure derived values (a candidate build evaluates thousands of options of one model on
# a few GPU types; hashing the frozen dataclasses per call cost more than the arithmetic). Keyed by the
# objects' ids; each entry keeps the objects alive and is checked by identity, so an id is never reused
# while its entry exists. The values are the same floats the functions return, so results do not change.
_MEMO_MAX = 1024


class _Memo(dict):
    def cache_clear(self) -> None:
        """Forget every entry (as functools caches do; benchmarks time cold runs with it)."""
        self.clear()


_model_memo = _Memo()
_eff_memo = _Memo()
del _Memo  # only the instances are module-level: measure.clear_caches calls every module-level cache_clear


def _model_terms(m: ModelSpec) -> tuple[float, float, float, float]:
    """(layer_params, layer_weight_bytes, embedding_bytes, kv_bytes_per_token_per_layer) of `m`, memoised."""
    hit = _model_memo.get(id(m))
    if hit is not None and hit[0] is m:
        return hit[1]
    if len(_model_memo) >= _MEMO_MAX:
        _model_memo.clear()
    terms = (layer_params(m), layer_weight_bytes(m), embedding_bytes(m), kv_bytes_per_token_per_layer(m))
    _model_memo[id(m)] = (m, terms)
    return terms


def _efficiencies(e: EngineProfile, g: GpuSpec) -> tuple[float, float, str]:
    """e.efficiencies(g), memoised per (profile, GPU) object pair."""
    key = (id(e), id(g))
    hit = _eff_memo.get(key)
    if hit is not None and hit[0] is e and hit[1] is g:
        return hit[2]
    if len(_eff_memo) >= _MEMO_MAX:
        _eff_memo.clear()
    value = e.efficiencies(g)
    _eff_memo[key] = (e, g, value)
    return value


# ---------------------------------------------------------------- memory
@dataclass(frozen=True)
class MemoryBreakdown:
    """Memory on one GPU, in GB (1e9 bytes); `capacity_gb` is the GPU's GiB in GB (80 GiB = 85.9 GB)."""

    weights_gb: float
    kv_cache_gb: float
    activations_gb: float
    reserve_gb: float
    capacity_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.kv_cache_gb + self.activations_gb + self.reserve_gb

    @property
    def fits(self) -> bool:
        return self.total_gb <= self.capacity_gb * (1 + 1e-12)


def kv_tokens_per_sequence(input_tokens: int, output_tokens: int, static: bool = False) -> int:
    """KV-cache tokens one sequence occupies, as vLLM allocates them (blocks of 16 as tokens arrive).

    Continuous batching: in steady state the sequences in flight are spread evenly over their output,
    so on average a sequence holds its prompt and half its output (rounded up to whole blocks); the
    engine admits sequences against the blocks actually free. A static batch grows together to the full
    context, so it needs input + output for every sequence."""
    if static:
        return input_tokens + output_tokens
    mean = input_tokens + output_tokens / 2
    return min(input_tokens + output_tokens, math.ceil(mean / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS)


def workload_kv_tokens(w: Workload) -> int:
    """KV tokens per sequence in flight for the planner (continuous batching)."""
    return kv_tokens_per_sequence(w.input_tokens, w.output_tokens)


def stage_weight_bytes_per_gpu(m: ModelSpec, layers: int, tp: int, first: bool, last: bool) -> float:
    _, layer_bytes, emb, _ = _model_terms(m)
    extra = (emb if first else 0.0) + (emb if last else 0.0)
    return (layers * layer_bytes + extra) / tp


def stage_kv_bytes_per_sequence_per_gpu(m: ModelSpec, layers: int, tp: int, context_tokens: float) -> float:
    """KV cache one sequence of `context_tokens` needs on one GPU of the stage (once per layer held)."""
    return layers * context_tokens * _model_terms(m)[3] * kv_share_per_gpu(m, tp)


def activation_bytes_per_gpu(m: ModelSpec, e: EngineProfile, tp: int, last: bool) -> float:
    """Peak transient activations for one prefill chunk: residual stream, attention and MLP
    intermediates (split by tp), plus fp32 logits on the last stage."""
    tokens = e.prefill_chunk_tokens
    per_token = (4 * m.hidden_size + 2 * m.ffn_size / tp) * ACT_BYTES
    logits = (m.vocab_size / tp) * 4 * min(tokens, e.max_num_seqs) if last else 0.0
    return tokens * per_token + logits


def reserve_bytes(g: GpuSpec, e: EngineProfile) -> float:
    """What the engine leaves to others ((1 - memory_utilization) of the GPU) plus its runtime reserve
    (CUDA context, CUDA graphs, non-torch allocations)."""
    return g.memory_bytes * (1 - e.memory_utilization) + e.runtime_reserve_gib * GIB


def stage_memory(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    concurrency: int, context_tokens: float,
) -> MemoryBreakdown:
    """Memory on each GPU of a stage holding `concurrency` sequences of `context_tokens` KV tokens each
    (`kv_tokens_per_sequence` says how many a sequence occupies). With an engine whose memory share is of
    the free memory (TensorRT-LLM), the part it leaves to others is (1 - share) of what weights,
    activations and its runtime reserve leave free, not of the whole GPU."""
    weights = stage_weight_bytes_per_gpu(m, layers, tp, first, last)
    activations = activation_bytes_per_gpu(m, e, tp, last)
    if e.memory_fraction_of == "free":
        runtime = e.runtime_reserve_gib * GIB
        reserve = max(0.0, g.memory_bytes - weights - activations - runtime) * (1 - e.memory_utilization) + runtime
    else:
        reserve = reserve_bytes(g, e)
    return MemoryBreakdown(
        weights_gb=weights / GB,
        kv_cache_gb=concurrency * stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, context_tokens) / GB,
        activations_gb=activations / GB,
        reserve_gb=reserve / GB,
        capacity_gb=g.memory_bytes / GB,
    )


def max_concurrency(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    context_tokens: float, engine_cap: bool = True,
) -> int:
    """Most sequences whose KV cache fits next to the weights (0 if even the weights do not fit),
    capped by the engine's limit unless `engine_cap` is False (a pipeline of P stages runs P
    microbatches, each up to the engine's limit)."""
    empty = stage_memory(m, g, e, layers, tp, first, last, 0, context_tokens)
    return concurrency_that_fits(empty, m, e, layers, tp, context_tokens, engine_cap)


def concurrency_that_fits(mem: MemoryBreakdown, m: ModelSpec, e: EngineProfile, layers: int, tp: int,
                          context_tokens: float, engine_cap: bool = True) -> int:
    """max_concurrency from a MemoryBreakdown of the same stage at any concurrency (its KV is left out),
    so that a caller holding one does not compute it again."""
    room = (mem.capacity_gb - (mem.weights_gb + mem.activations_gb + mem.reserve_gb)) * GB
    if room < 0:
        return 0
    per_seq = stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, context_tokens)
    fit = room // per_seq if per_seq > 0 else float("inf")
    return int(min(e.max_num_seqs, fit)) if engine_cap else int(min(fit, 1 << 40))


# ---------------------------------------------------------------- time
@dataclass(frozen=True)
class PhaseTime:
    """Time of one forward step (or prefill) on one stage, its parts, and what bounds it.

    seconds = max(compute_s, memory_s, overhead_s) + comm_s + handoff_s + scheduler_s, where
    overhead_s is the host's kernel launches (overlapping the GPU), comm_s the all-reduces, handoff_s
    sending the activations to the next stage and scheduler_s this stage's share of the engine step's
    scheduling and sampling; in a pipeline the step is at least the scheduler's whole time per step."""

    seconds: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float
    scheduler_s: float = 0.0
    handoff_s: float = 0.0

    def contributions(self) -> dict[str, float]:
        """Seconds each resource adds to the step: compute or memory (the GPU), host (launches when
        they outlast the GPU's work, plus the scheduler), link (all-reduces and hand-offs)."""
        gpu = max(self.compute_s, self.memory_s)
        host = (self.overhead_s if self.overhead_s > gpu else 0.0)
        host += max(self.scheduler_s, self.seconds - (max(gpu, self.overhead_s) + self.comm_s + self.handoff_s))
        return {
            "compute": self.compute_s if self.compute_s >= self.memory_s and gpu >= self.overhead_s else 0.0,
            "memory": self.memory_s if self.memory_s > self.compute_s and gpu >= self.overhead_s else 0.0,
            "link": self.comm_s + self.handoff_s,
            "host": host,
        }

    @property
    def bound(self) -> str:
        parts = self.contributions()
        return max(parts, key=parts.get)


def allreduce_seconds(message_bytes: float, tp: int, g: GpuSpec, e: EngineProfile) -> float:
    """Ring all-reduce of `message_bytes` across `tp` GPUs over the node's link (NVLink or PCIe, each
    with the engine's bandwidth efficiency and per-call latency on it); on NVLink the ring's time shrinks
    by (tp / 2) ** nvswitch_exponent past 2 GPUs (the switch reduces in-network)."""
    if tp <= 1:
        return 0.0
    eff, latency_us = e.link(g.intra_link)
    factor = 2 * (tp - 1) / tp  # ring: each GPU sends and receives 2(tp-1)/tp of the message
    if g.intra_link == "pcie":
        # no GPU-to-GPU fabric: the ring's traffic, 2(tp-1) messages in all, goes through the host's PCIe
        # root, which carries `pcie_root_gpus` links at full speed; past that the shared root limits it
        # (TP 8 on a root that carries 2: 4x the ring's time). AIConfigurator's L40S all-reduce data fit
        # a root of ~2 GPUs; vLLM on AWS g6e L40S nodes a larger one.
        factor *= max(1.0, tp / e.pcie_root_gpus)
    elif e.nvswitch_exponent and tp > 2:
        # NVSwitch: NCCL's bus bandwidth rises with the group (in-switch reduction on Hopper), so TP 8
        # all-reduces faster than a ring scaled from TP 2 (AIConfigurator's NCCL tables: ~1.4x on H100)
        factor /= (tp / 2) ** e.nvswitch_exponent
    wire = factor * message_bytes / (g.intra_link_gb_per_s * GB * eff)
    return large_allreduce_seconds(wire, message_bytes, e)[0] + latency_us * 1e-6


def large_allreduce_seconds(wire_s: float, message_bytes: float, e: EngineProfile) -> tuple[float, str]:
    """(seconds, bound) of an all-reduce whose bytes take `wire_s` at the link's rate for small messages:
    the bytes past `allreduce_large_mb` move at `allreduce_large_ratio` of that rate. The DGX-A100 prefills
    (splitwise) slow down per token where a layer's all-reduce message passes ~59-67 MB, at 2048-4096
    tokens for Llama-2-70B and 2048 for BLOOM (hidden 14336), not at one token count (docs/calibration.md)."""
    limit = e.allreduce_large_mb * 1e6
    if e.allreduce_large_ratio >= 1.0 or message_bytes <= limit:
        return wire_s, "link"
    small = wire_s * limit / message_bytes
    return small + (wire_s - small) / e.allreduce_large_ratio, "link"


def handoff_seconds(m: ModelSpec, e: EngineProfile, tokens: float, gb_per_s: float, kind: str) -> float:
    """Sending `tokens` hidden states (16-bit) to the next stage over a link of `gb_per_s` GB/s of kind
    nvlink / pcie (same node) or network (another node): bytes over the link plus its latency."""
    eff, latency_us = e.link(kind)
    return tokens * m.hidden_size * ACT_BYTES / (gb_per_s * GB * eff) + latency_us * 1e-6


def launch_seconds(e: EngineProfile, layers: int) -> float:
    """Host time to issue one forward step of a stage's kernels (its own worker issues them)."""
    return e.launch_us_per_layer * 1e-6 * layers


def scheduler_seconds(e: EngineProfile, batch: int) -> float:
    """The engine's time per engine step outside the GPU: scheduling, sampling, output processing."""
    return e.scheduler_ms * 1e-3 + e.scheduler_us_per_seq * 1e-6 * batch


Handoff = tuple[float, str]  # (GB/s, link kind) of a stage's outgoing hand-off


def _phase(m: ModelSpec, compute_flops_per_gpu: float, bytes_per_gpu: float, comm_s: float, g: GpuSpec,
           e: EngineProfile, layers: int, batch: int, handoff_s: float, stages: int,
           pipelined: bool) -> PhaseTime:
    """One forward step (see the module docstring)."""
    ceff, heff, _ = _efficiencies(e, g)
    compute_s = compute_flops_per_gpu / (compute_tflops(m, g) * 1e12 * ceff)
    memory_s = bytes_per_gpu / (g.hbm_gb_per_s * GB * heff)
    launch_s = launch_seconds(e, layers)
    sched = scheduler_seconds(e, batch)
    share = sched / max(1, stages)
    step = max(compute_s, memory_s, launch_s) + comm_s + handoff_s + share
    if pipelined:
        step = max(step, sched)
    return PhaseTime(step, compute_s, memory_s, comm_s, launch_s, share, handoff_s)


def prefill_time(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    num_sequences: int, prompt_tokens: int, stages: int = 1, pipelined: bool = False,
    handoff: Handoff | None = None,
) -> PhaseTime:
    """Prefill of `num_sequences` prompts of `prompt_tokens` each on one stage.

    FLOPs: 2 * params * tokens for the matmuls, plus causal attention 2 * n^2 * h * hd per layer
    per sequence; the LM head runs on the last token of each sequence only. Weights are read once.
    Two all-reduces per layer of the tokens' hidden states; `handoff` (GB/s, link kind) sends them on.
    `stages`: the pipeline's stage count (this stage pays 1/stages of the scheduler's step);
    `pipelined`: microbatches cycle through the stages (the step is at least the scheduler's time).
    """
    tokens = num_sequences * prompt_tokens
    attn = 2.0 * prompt_tokens * prompt_tokens * m.num_heads * m.head_dim * num_sequences
    flops = layers * (2 * _model_terms(m)[0] * tokens + attn)
    if last:
        flops += 2 * m.vocab_size * m.hidden_size * num_sequences
    weights = stage_weight_bytes_per_gpu(m, layers, tp, first, last)
    kv_write = num_sequences * stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, prompt_tokens)
    comm = layers * 2 * allreduce_seconds(tokens * m.hidden_size * ACT_BYTES, tp, g, e)
    hand = handoff_seconds(m, e, tokens, *handoff) if handoff else 0.0
    return _phase(m, flops / tp, weights + kv_write, comm, g, e, layers, num_sequences, hand, stages, pipelined)


def decode_step_time(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    batch: int, context_tokens: float, stages: int = 1, pipelined: bool = False,
    handoff: Handoff | None = None,
) -> PhaseTime:
    """One decode step (one new token for each of `batch` sequences at mean context `context_tokens`).

    Reads the stage's weights once and each sequence's KV cache; FLOPs 2 * params per token plus
    attention 4 * context * h * hd per layer per token. `stages`, `pipelined`, `handoff`: as prefill_time.
    """
    attn = 4.0 * context_tokens * m.num_heads * m.head_dim * batch
    flops = layers * (2 * _model_terms(m)[0] * batch + attn)
    if last:
        flops += 2 * m.vocab_size * m.hidden_size * batch
    weights = stage_weight_bytes_per_gpu(m, layers, tp, first, last)
    kv_read = batch * context_tokens * layers * _model_terms(m)[3] * kv_share_per_gpu(m, tp)
    comm = layers * 2 * allreduce_seconds(batch * m.hidden_size * ACT_BYTES, tp, g, e)
    hand = handoff_seconds(m, e, batch, *handoff) if handoff else 0.0
    return _phase(m, flops / tp, weights + kv_read, comm, g, e, layers, batch, hand, stages, pipelined)


@dataclass(frozen=True)
class StagePerf:
    """Steady-state serving speed of one stage at a given concurrency."""

    tokens_per_s: float  # input + output tokens per second
    output_tokens_per_s: float
    wave_s: float  # time for the stage to serve one wave of `concurrency` requests
    prefill: PhaseTime
    decode_step: PhaseTime
    concurrency: int

    @property
    def bound(self) -> str:
        pre, dec = self.prefill.contributions(), self.decode_step.contributions()
        out = self.concurrency and (self.wave_s - self.prefill.seconds) / max(self.decode_step.seconds, 1e-30)
        totals = {k: pre[k] + out * dec[k] for k in pre}
        return max(totals, key=totals.get)


def stage_perf(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    w: Workload, concurrency: int, microbatches: int = 1, handoff: Handoff | None = None,
) -> StagePerf:
    """Continuous batching as a wave: `concurrency` requests are prefilled (which yields each one's
    first token) and then decoded for `output_tokens` - 1 steps at mean context input + output/2.
    Every stage of a pipeline processes every
    token, so the pipeline's rate is the slowest stage's.

    `microbatches`: a sequence's next token needs its previous one to have left the last stage, so a
    pipeline of P stages keeps every stage busy only by cycling P microbatches of concurrency/P
    sequences; each forward step then carries ceil(concurrency / microbatches) sequences (and reads the
    stage's weights once for them). The stage pays 1/P of the scheduler's time per step and the
    pipeline's period is at least the scheduler's whole time: P x period >= the sum of the stages'
    times plus the scheduler's, exact for balanced pipelines. `handoff` (GB/s, link kind): the stage's
    outgoing hand-off (None for the last stage). The default 1 is the single-stage case."""
    microbatches = max(1, microbatches)
    batch = max(1, math.ceil(concurrency / microbatches))
    kw = dict(stages=microbatches, pipelined=microbatches > 1, handoff=handoff)
    pre = prefill_time(m, g, e, layers, tp, first, last, batch, w.input_tokens, **kw)
    dec = decode_step_time(m, g, e, layers, tp, first, last, batch, w.input_tokens + w.output_tokens / 2, **kw)
    wave = pre.seconds + (w.output_tokens - 1) * dec.seconds  # the prefill yields the first token
    # a stage's step runs at the largest microbatch but carries concurrency / microbatches sequences on
    # average (C = 32 over 3 stages: microbatches of 11, 11, 10)
    total = concurrency / microbatches * w.context_tokens / wave
    return StagePerf(total, total * w.output_tokens / w.context_tokens, wave, pre, dec, concurrency)


def burst_recompute_tokens(recompute_share: float, output_tokens: int) -> float:
    """Tokens one request has prefilled again in a throughput run that submits every request at once.

    vLLM admits requests while their current KV blocks fit, not their final ones, so a burst fills the cache
    with prompts; as the sequences grow together the cache overflows and the engine preempts the newest
    ones (freeing their blocks) and later prefills their prompt and generated tokens again. The KV freed
    for that growth is recomputed, so the recomputed tokens scale with the output: `recompute_share` x
    output, the share fitted per profile on such runs (config/engines_burst.csv). A server with staggered
    arrivals (stage_perf) does not pay it."""
    return recompute_share * output_tokens


def burst_tokens_per_s(tokens_per_s: float, wave_s: float, prefill_s: float, recompute_share: float,
                       input_tokens: int, output_tokens: int) -> float:
    """A stage's tokens/s in a burst throughput run: its wave (stage_perf: `tokens_per_s`, `wave_s`, the
    wave's prefill `prefill_s`) plus the prefill of each request's recomputed tokens
    (burst_recompute_tokens) at the wave's prefill time per prompt token."""
    extra = prefill_s * burst_recompute_tokens(recompute_share, output_tokens) / max(1, input_tokens)
    return tokens_per_s * wave_s / (wave_s + extra) if wave_s > 0 else tokens_per_s


def link_tokens_per_s(m: ModelSpec, gb_per_s: float) -> float:
    """Tokens per second a stage-to-stage link carries: each token's hidden state (16-bit) crosses once."""
    return gb_per_s * GB / (m.hidden_size * ACT_BYTES)


def serving_latency(sp: StagePerf, own_prefill_s: float, w: Workload, e: EngineProfile,
                    microbatches: int = 1) -> tuple[float, float]:
    """(this stage's share of the time to first token, its TPOT step) under continuous batching in the
    steady state, in seconds.

    In a serving engine requests arrive staggered, not as a wave: every step of a microbatch carries its
    b = ceil(C / P) decodes and, on average, b / O newly admitted prompts (chunked prefill mixes them in),
    so the average step takes wave / O -- the same work the throughput counts. A new request waits for its
    microbatch's next step (half a step at each stage on average: half a cycle over the pipeline), and
    its prompt is prefilled in ceil(I / chunk) steps that also carry the others' work:
        TTFT share = own prefill + (b - 1) / b x (1/2 + ceil(I / chunk)) x wave / O.
    A sequence gets a token per cycle, and the others' prompts slow the steps it decodes in:
        TPOT step = decode step + (b - 1) / b x (wave / O - decode step).
    With b = 1 nothing else runs, and these are the prompt's prefill and the decode step, as measured at
    concurrency 1; as b grows the others' share tends to all of it. (The static-batch wave -- all C
    prompts prefilled together before any decode -- describes a benchmark's static batches, not a
    server: with C = 128 it put a 17 s "time to first token" on plans a server runs at ~0.1 s.)"""
    b = max(1, math.ceil(sp.concurrency / max(1, microbatches)))
    others = (b - 1) / b
    step = sp.wave_s / max(1, w.output_tokens)
    dec = sp.decode_step.seconds
    chunks = math.ceil(w.input_tokens / max(1, e.prefill_chunk_tokens))
    ttft = own_prefill_s + others * (0.5 + chunks) * step
    return ttft, dec + others * max(0.0, step - dec)
