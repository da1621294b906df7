"""Parameters and bytes of a model: per layer, per embedding table, per KV-cache token, and the
weight/KV precision that changes them (part of the performance model; see planner/perf.py)."""
from __future__ import annotations

from dataclasses import replace

from .domain import KV_PRECISIONS, PRECISIONS, GpuSpec, ModelSpec
from .errors import InputError
from .units import GB


def layer_params(m: ModelSpec) -> float:
    """Weights of one decoder layer with grouped-query attention.

    q and o projections: 2 * d * (h * hd); k and v: 2 * d * (kv * hd);
    MLP: 3 * d * ffn when gated (gate, up, down), 2 * d * ffn otherwise.
    Norms and biases are below 0.1% and left out.
    With the seed's `layer_weight_memory_gb` (ModelSpec.layer_weight_gb_override) the layer holds that
    many bytes of weights, i.e. override / bytes_per_param parameters: the override sets the FLOPs and
    the bytes read per step as well as the memory.
    """
    if m.layer_weight_gb_override is not None:
        return m.layer_weight_gb_override * GB / m.bytes_per_param
    d, h, kv, hd, f = m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.ffn_size
    attn = 2 * d * (h * hd) + 2 * d * (kv * hd)
    mlp = (3 if m.gated_mlp else 2) * d * f
    return float(attn + mlp)


def layer_weight_bytes(m: ModelSpec) -> float:
    if m.layer_weight_gb_override is not None:
        return m.layer_weight_gb_override * GB
    return layer_params(m) * m.bytes_per_param


def embedding_bytes(m: ModelSpec) -> float:
    per = m.embedding_bytes_per_element if m.embedding_bytes_per_element is not None else m.bytes_per_param
    return m.vocab_size * m.hidden_size * per


def total_params(m: ModelSpec) -> float:
    head = 0 if m.tied_embeddings else m.vocab_size * m.hidden_size
    return m.num_layers * layer_params(m) + m.vocab_size * m.hidden_size + head


def kv_bytes_per_element(m: ModelSpec) -> float:
    return m.kv_bytes_per_element if m.kv_bytes_per_element is not None else m.bytes_per_param


def kv_bytes_per_token_per_layer(m: ModelSpec) -> float:
    """K and V of one token in one layer, whole model (all KV heads)."""
    return 2 * m.num_kv_heads * m.head_dim * kv_bytes_per_element(m)


def kv_share_per_gpu(m: ModelSpec, tp: int) -> float:
    """Fraction of a layer's KV cache one GPU of a TP group holds.

    KV heads are split across the group; past `num_kv_heads` GPUs they are replicated,
    so a GPU never holds less than one KV head.
    """
    return max(m.num_kv_heads / tp, 1.0) / m.num_kv_heads


def apply_precision(m: ModelSpec, precision: str | None = None, kv_precision: str | None = None) -> ModelSpec:
    """The model served at a weight precision (bf16, fp16, fp8, int4) and KV-cache precision (bf16, fp16,
    fp8; default: fp8 with fp8 weights, else 16-bit). Weights shrink to the precision's bytes (embedding
    and LM head stay 16-bit in quantised checkpoints); fp8 runs the matmuls on FP8 tensor cores where the
    GPU has them (perf.compute_tflops); int4 is weight-only. A user's per-layer weight figure is scaled
    by the same ratio. `precision` None keeps the model as it is."""
    if precision is None and kv_precision is None:
        return m
    precision = (precision or m.precision or "bf16").lower()
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    weight_bytes, default_kv, fp8 = PRECISIONS[precision]
    kv = (kv_precision or ("fp8" if precision == "fp8" else "bf16")).lower()
    if kv not in KV_PRECISIONS:
        raise InputError(f"KV-cache precision must be one of {', '.join(KV_PRECISIONS)}, got {kv!r}")
    base = m.bytes_per_param
    override = m.layer_weight_gb_override
    if override is not None:
        override = override * weight_bytes / base
    label = precision if kv == ("fp8" if precision == "fp8" else "bf16") else f"{precision} (KV {kv})"
    return replace(m, bytes_per_param=weight_bytes, kv_bytes_per_element=KV_PRECISIONS[kv],
                   embedding_bytes_per_element=2.0 if weight_bytes < 2 else None,
                   fp8_compute=fp8, precision=label, layer_weight_gb_override=override)


def compute_tflops(m: ModelSpec, g: GpuSpec) -> float:
    """Dense tensor TFLOP/s the matmuls run at: FP8 for an fp8 model on a GPU with FP8 tensor cores,
    else 16-bit (fp8 weights on Ampere run weight-only: 16-bit compute)."""
    if m.fp8_compute and g.fp8_dense_tflops:
        return g.fp8_dense_tflops
    return g.fp16_dense_tflops


def precision_note(m: ModelSpec, g: GpuSpec) -> str:
    """Why a precision does not get its compute rate on `g` (empty if it does)."""
    if m.fp8_compute and not g.fp8_dense_tflops:
        return (f"{g.sku} has no FP8 tensor cores: fp8 weights run weight-only (Marlin kernels in vLLM), "
                f"1 byte per weight but 16-bit compute")
    return ""
