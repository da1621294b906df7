"""Performance model: small pure functions returning times, memory and what bounds them.

Conventions: times in seconds unless the name says otherwise; bytes are bytes; GB = 1e9 bytes.
A stage holds `layers` consecutive decoder layers on `tp` GPUs of one type; `first` adds the
embedding table, `last` adds the LM head (and its matmul).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .domain import EngineProfile, GpuSpec, ModelSpec, Workload

GB = 1e9


# ---------------------------------------------------------------- parameters and bytes
def layer_params(m: ModelSpec) -> float:
    """Weights of one decoder layer with grouped-query attention.

    q and o projections: 2 * d * (h * hd); k and v: 2 * d * (kv * hd);
    MLP: 3 * d * ffn when gated (gate, up, down), 2 * d * ffn otherwise.
    Norms and biases are below 0.1% and left out.
    """
    d, h, kv, hd, f = m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.ffn_size
    attn = 2 * d * (h * hd) + 2 * d * (kv * hd)
    mlp = (3 if m.gated_mlp else 2) * d * f
    return float(attn + mlp)


def layer_weight_bytes(m: ModelSpec) -> float:
    if m.layer_weight_gb_override is not None:
        return m.layer_weight_gb_override * GB
    return layer_params(m) * m.bytes_per_param


def embedding_bytes(m: ModelSpec) -> float:
    return m.vocab_size * m.hidden_size * m.bytes_per_param


def total_params(m: ModelSpec) -> float:
    head = 0 if m.tied_embeddings else m.vocab_size * m.hidden_size
    return m.num_layers * layer_params(m) + m.vocab_size * m.hidden_size + head


def kv_bytes_per_token_per_layer(m: ModelSpec) -> float:
    """K and V of one token in one layer, whole model (all KV heads)."""
    return 2 * m.num_kv_heads * m.head_dim * m.bytes_per_param


def kv_share_per_gpu(m: ModelSpec, tp: int) -> float:
    """Fraction of a layer's KV cache one GPU of a TP group holds.

    KV heads are split across the group; past `num_kv_heads` GPUs they are replicated,
    so a GPU never holds less than one KV head.
    """
    return max(m.num_kv_heads / tp, 1.0) / m.num_kv_heads


# ---------------------------------------------------------------- memory
@dataclass(frozen=True)
class MemoryBreakdown:
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


def stage_weight_bytes_per_gpu(m: ModelSpec, layers: int, tp: int, first: bool, last: bool) -> float:
    extra = (embedding_bytes(m) if first else 0.0) + (embedding_bytes(m) if last else 0.0)
    return (layers * layer_weight_bytes(m) + extra) / tp


def stage_kv_bytes_per_sequence_per_gpu(m: ModelSpec, layers: int, tp: int, context_tokens: int) -> float:
    """KV cache one sequence of `context_tokens` needs on one GPU of the stage (once per layer held)."""
    return layers * context_tokens * kv_bytes_per_token_per_layer(m) * kv_share_per_gpu(m, tp)


def activation_bytes_per_gpu(m: ModelSpec, e: EngineProfile, tp: int, last: bool) -> float:
    """Peak transient activations for one prefill chunk: residual stream, attention and MLP
    intermediates (split by tp), plus fp32 logits on the last stage."""
    tokens = e.prefill_chunk_tokens
    per_token = (4 * m.hidden_size + 2 * m.ffn_size / tp) * m.bytes_per_param
    logits = (m.vocab_size / tp) * 4 * min(tokens, e.max_num_seqs) if last else 0.0
    return tokens * per_token + logits


def reserve_bytes(g: GpuSpec, e: EngineProfile) -> float:
    return g.memory_gb * GB * (1 - e.memory_utilization) + e.runtime_reserve_gb * GB


def stage_memory(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    concurrency: int, context_tokens: int,
) -> MemoryBreakdown:
    """Memory on each GPU of a stage holding `concurrency` sequences of `context_tokens`."""
    return MemoryBreakdown(
        weights_gb=stage_weight_bytes_per_gpu(m, layers, tp, first, last) / GB,
        kv_cache_gb=concurrency * stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, context_tokens) / GB,
        activations_gb=activation_bytes_per_gpu(m, e, tp, last) / GB,
        reserve_gb=reserve_bytes(g, e) / GB,
        capacity_gb=g.memory_gb,
    )


def max_concurrency(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    context_tokens: int, engine_cap: bool = True,
) -> int:
    """Most sequences whose KV cache fits next to the weights (0 if even the weights do not fit),
    capped by the engine's limit unless `engine_cap` is False (a pipeline of P stages runs P
    microbatches, each up to the engine's limit)."""
    empty = stage_memory(m, g, e, layers, tp, first, last, 0, context_tokens)
    room = (empty.capacity_gb - empty.total_gb) * GB
    if room < 0:
        return 0
    per_seq = stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, context_tokens)
    fit = room // per_seq if per_seq > 0 else float("inf")
    return int(min(e.max_num_seqs, fit)) if engine_cap else int(min(fit, 1 << 40))


# ---------------------------------------------------------------- time
@dataclass(frozen=True)
class PhaseTime:
    """Time of one phase on one stage and what bounds it."""

    seconds: float
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def bound(self) -> str:
        parts = {"compute": self.compute_s, "memory": self.memory_s, "link": self.comm_s}
        return max(parts, key=parts.get)


def allreduce_seconds(message_bytes: float, tp: int, g: GpuSpec, e: EngineProfile) -> float:
    """Ring all-reduce of `message_bytes` across `tp` GPUs over the intra-node link."""
    if tp <= 1:
        return 0.0
    wire = 2 * (tp - 1) / tp * message_bytes / (g.intra_link_gb_per_s * GB * e.link_efficiency)
    return wire + e.allreduce_latency_us * 1e-6


def host_overhead_seconds(m: ModelSpec, e: EngineProfile, layers: int) -> float:
    """Host time to issue one forward step of a stage: `step_overhead_ms` is the engine's figure for a
    whole-model step (kernel launches, Python dispatch, scheduling); a stage of `layers` of the model's
    layers spends that share of it."""
    return e.step_overhead_ms * 1e-3 * layers / m.num_layers


def _phase(compute_flops_per_gpu: float, bytes_per_gpu: float, comm_s: float, g: GpuSpec, e: EngineProfile,
           overhead_s: float) -> PhaseTime:
    """Roofline of one forward step: the GPU is busy for max(compute, memory); the host issues the
    kernels asynchronously, so its time overlaps the GPU's and only bounds the step when it is longer
    (launch-bound small batches in eager mode). All-reduces are synchronisation points and add."""
    compute_s = compute_flops_per_gpu / (g.fp16_dense_tflops * 1e12 * e.compute_efficiency)
    memory_s = bytes_per_gpu / (g.hbm_gb_per_s * GB * e.hbm_efficiency)
    return PhaseTime(max(compute_s, memory_s, overhead_s) + comm_s, compute_s, memory_s, comm_s, overhead_s)


def prefill_time(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    num_sequences: int, prompt_tokens: int,
) -> PhaseTime:
    """Prefill of `num_sequences` prompts of `prompt_tokens` each on one stage.

    FLOPs: 2 * params * tokens for the matmuls, plus causal attention 2 * n^2 * h * hd per layer
    per sequence; the LM head runs on the last token of each sequence only. Weights are read once.
    Two all-reduces per layer of the tokens' hidden states.
    """
    tokens = num_sequences * prompt_tokens
    attn = 2.0 * prompt_tokens * prompt_tokens * m.num_heads * m.head_dim * num_sequences
    flops = layers * (2 * layer_params(m) * tokens + attn)
    if last:
        flops += 2 * m.vocab_size * m.hidden_size * num_sequences
    weights = stage_weight_bytes_per_gpu(m, layers, tp, first, last)
    kv_write = num_sequences * stage_kv_bytes_per_sequence_per_gpu(m, layers, tp, prompt_tokens)
    comm = layers * 2 * allreduce_seconds(tokens * m.hidden_size * m.bytes_per_param, tp, g, e)
    return _phase(flops / tp, weights + kv_write, comm, g, e, host_overhead_seconds(m, e, layers))


def decode_step_time(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    batch: int, context_tokens: float,
) -> PhaseTime:
    """One decode step (one new token for each of `batch` sequences at mean context `context_tokens`).

    Reads the stage's weights once and each sequence's KV cache; FLOPs 2 * params per token plus
    attention 4 * context * h * hd per layer per token.
    """
    attn = 4.0 * context_tokens * m.num_heads * m.head_dim * batch
    flops = layers * (2 * layer_params(m) * batch + attn)
    if last:
        flops += 2 * m.vocab_size * m.hidden_size * batch
    weights = stage_weight_bytes_per_gpu(m, layers, tp, first, last)
    kv_read = batch * context_tokens * layers * kv_bytes_per_token_per_layer(m) * kv_share_per_gpu(m, tp)
    comm = layers * 2 * allreduce_seconds(batch * m.hidden_size * m.bytes_per_param, tp, g, e)
    return _phase(flops / tp, weights + kv_read, comm, g, e, host_overhead_seconds(m, e, layers))


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
        pre = self.prefill
        dec = self.decode_step
        out = self.concurrency and (self.wave_s - pre.seconds) / max(dec.seconds, 1e-30)
        totals = {
            "compute": pre.compute_s + out * dec.compute_s,
            "memory": pre.memory_s + out * dec.memory_s,
            "link": pre.comm_s + out * dec.comm_s,
        }
        return max(totals, key=totals.get)


def stage_perf(
    m: ModelSpec, g: GpuSpec, e: EngineProfile, layers: int, tp: int, first: bool, last: bool,
    w: Workload, concurrency: int, microbatches: int = 1,
) -> StagePerf:
    """Continuous batching as a wave: `concurrency` requests are prefilled and then decoded for
    `output_tokens` steps at mean context input + output/2. Every stage of a pipeline processes every
    token, so the pipeline's rate is the slowest stage's.

    `microbatches`: a sequence's next token needs its previous one to have left the last stage, so a
    pipeline of P stages keeps every stage busy only by cycling P microbatches of concurrency/P
    sequences; each forward step then carries ceil(concurrency / microbatches) sequences (and reads the
    stage's weights once for them). The default 1 is the single-stage case."""
    microbatches = max(1, microbatches)
    batch = max(1, math.ceil(concurrency / microbatches))
    pre = prefill_time(m, g, e, layers, tp, first, last, batch, w.input_tokens)
    dec = decode_step_time(m, g, e, layers, tp, first, last, batch, w.input_tokens + w.output_tokens / 2)
    wave = pre.seconds + w.output_tokens * dec.seconds
    # a stage's step runs at the largest microbatch but carries concurrency / microbatches sequences on
    # average (C = 32 over 3 stages: microbatches of 11, 11, 10)
    total = concurrency / microbatches * w.context_tokens / wave
    return StagePerf(total, total * w.output_tokens / w.context_tokens, wave, pre, dec, concurrency)


def link_tokens_per_s(m: ModelSpec, gb_per_s: float) -> float:
    """Tokens per second a stage-to-stage link carries: each token's hidden state crosses once."""
    return gb_per_s * GB / (m.hidden_size * m.bytes_per_param)
