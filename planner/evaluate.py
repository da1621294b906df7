"""Predict one uniform layout: a model on `tp x pp` GPUs of one type, optionally over several nodes.

Built only from the pure functions of `planner.perf`, so that it agrees with the planner: in
continuous-batching mode the pipeline's rate is the minimum over its stages of `perf.stage_perf`
(exactly what the MILP uses per stage option) and over its inter-node links of
`perf.link_tokens_per_s`.

Two modes:
* static batch (`batch=B`, as in the DGX measurements): the B prompts are prefilled together and then
  decoded together; with pp > 1 every step passes through all stages one after the other.
  `prefill_ms` is the prefill of all B prompts, `decode_step_ms` one decode step of the batch, and the
  throughput is B * (input + output) / (prefill + output * decode step).
* continuous batching (`concurrency=C`, or neither: as many as memory and `max_num_seqs` allow on the
  tightest stage): each stage serves waves of C requests (`perf.stage_perf`); `prefill_ms` and
  `decode_step_ms` are the times of the C-request prefill and of one decode step summed over the stages
  (the latency through the pipeline), while the throughput is the slowest stage's (or link's) rate;
  `ttft_ms` and `tpot_ms` are a server's steady state, requests arriving staggered
  (`perf.serving_latency`), not the C-request wave.
"""
from __future__ import annotations

import logging
import math

from . import perf
from .domain import EngineProfile, GpuSpec, ModelSpec, Workload
from .errors import InputError
from .units import DEFAULT_LINK_GB_PER_S, usd_per_million_tokens

log = logging.getLogger(__name__)



def split_layers(num_layers: int, pp: int) -> list[int]:
    """Layers per stage, as even as possible; the extra layers go to the middle stages first, since the
    first stage also holds the embedding and the last one the LM head."""
    base, extra = divmod(num_layers, pp)
    sizes = [base] * pp
    order = list(range(1, pp - 1)) + [pp - 1, 0] if pp > 2 else list(range(pp))[::-1]
    for i in order[:extra]:
        sizes[i] += 1
    return sizes


def stage_nodes(pp: int, nodes: int) -> list[int]:
    """Node index of each stage: consecutive stages share a node, spread evenly."""
    return [s * nodes // pp for s in range(pp)]


def _infeasible(reason: str, **extra) -> dict:
    out = {"feasible": False, "reason": reason, "prefill_ms": math.nan, "decode_step_ms": math.nan,
           "tokens_per_s": 0.0, "output_tokens_per_s": 0.0, "concurrency": 0, "memory_gb_per_gpu": math.nan,
           "bound": "memory", "stages": []}
    out.update(extra)
    return out


def evaluate_layout(
    model: ModelSpec, gpu: GpuSpec, engine: EngineProfile, tp: int, pp: int, input_len: int, output_len: int,
    batch: int | None = None, concurrency: int | None = None, nodes: int = 1, inter_node_gb_per_s: float = DEFAULT_LINK_GB_PER_S,
    precision: str | None = None, kv_precision: str | None = None, check_memory: bool = True,
) -> dict:
    """Prediction for one uniform layout (see the module docstring). Never raises for a layout that does
    not fit: returns feasible=False and a reason. `inter_node_gb_per_s` is in GB/s (bytes);
    `precision` / `kv_precision` serve the model at another precision (perf.apply_precision).
    `check_memory` False predicts the times even where memory does not fit (for comparisons)."""
    for name, value in (("tp", tp), ("pp", pp), ("input_len", input_len), ("output_len", output_len),
                        ("nodes", nodes)):
        if not isinstance(value, int) or value <= 0:
            return _infeasible(f"{name} must be a positive integer, got {value!r}")
    if batch is not None and concurrency is not None:
        return _infeasible("give either batch (static) or concurrency (continuous batching), not both")
    for name, value in (("batch", batch), ("concurrency", concurrency)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            return _infeasible(f"{name} must be a positive integer, got {value!r}")
    try:
        model = perf.apply_precision(model, precision, kv_precision)
    except InputError as exc:
        return _infeasible(str(exc))
    if not inter_node_gb_per_s > 0:
        return _infeasible(f"inter-node bandwidth must be positive, got {inter_node_gb_per_s}")
    if pp > model.num_layers:
        return _infeasible(f"{pp} pipeline stages for {model.num_layers} layers")
    if model.num_heads % tp:
        return _infeasible(f"TP {tp} does not divide the {model.num_heads} attention heads")
    if tp > gpu.gpus_per_node:
        return _infeasible(f"TP {tp} exceeds the {gpu.gpus_per_node} GPUs of a {gpu.sku} node "
                           f"(a tensor-parallel group runs on one node's {gpu.intra_link})")
    if nodes > pp:
        return _infeasible(f"{nodes} nodes for {pp} stages: a stage (TP group) cannot span nodes")
    node_of = stage_nodes(pp, nodes)
    per_node = max(node_of.count(n) for n in range(nodes)) * tp
    if per_node > gpu.gpus_per_node:
        return _infeasible(f"{per_node} GPUs on one node > {gpu.gpus_per_node} per {gpu.sku} node "
                           f"(use more nodes)")

    sizes = split_layers(model.num_layers, pp)
    roles = [(i == 0, i == pp - 1) for i in range(pp)]
    static = batch is not None
    # KV tokens per sequence: a static batch grows together to the full context; continuous batching
    # holds on average the prompt and half the output (vLLM allocates blocks as tokens arrive)
    kv_tokens = perf.kv_tokens_per_sequence(input_len, output_len, static=static)
    caps = [perf.max_concurrency(model, gpu, engine, n, tp, f, la, kv_tokens) for n, (f, la) in zip(sizes, roles)]
    if static:
        c = batch
    elif concurrency is not None:
        c = concurrency
    else:
        c = min(caps)
    mems = [perf.stage_memory(model, gpu, engine, n, tp, f, la, max(c, 0), kv_tokens)
            for n, (f, la) in zip(sizes, roles)]
    mem_gb = max(mm.total_gb for mm in mems)
    if c <= 0 or (check_memory and any(not mm.fits for mm in mems)):
        worst = max(range(pp), key=lambda i: mems[i].total_gb - mems[i].capacity_gb)
        mm = mems[worst]
        what = f"{max(c, 1)} sequence(s) of {kv_tokens} KV tokens" if c > 0 else "the weights alone"
        if c <= 0:
            mm = perf.stage_memory(model, gpu, engine, sizes[worst], tp, *roles[worst], 1, kv_tokens)
        return _infeasible(
            f"stage {worst + 1} ({sizes[worst]} layers, TP {tp}) does not fit {what} on {gpu.sku}: needs "
            f"{mm.total_gb:.1f} GB per GPU > {mm.capacity_gb:.1f} GB ({gpu.memory_gb:g} GiB; weights "
            f"{mm.weights_gb:.1f}, KV {mm.kv_cache_gb:.1f}, activations {mm.activations_gb:.1f}, reserve "
            f"{mm.reserve_gb:.1f})", memory_gb_per_gpu=mm.total_gb, max_concurrency_per_stage=caps)

    w = Workload(input_len, output_len, c)
    # stage-to-stage hand-offs: within a node over the intra-node link, between nodes over the network
    links = []
    for i in range(pp - 1):
        inter = node_of[i] != node_of[i + 1]
        bw = inter_node_gb_per_s if inter else gpu.intra_link_gb_per_s
        kind = "network" if inter else gpu.intra_link
        links.append({"after_stage": i + 1, "inter_node": inter, "kind": kind, "gb_per_s": bw,
                      "tokens_per_s": perf.link_tokens_per_s(model, bw),
                      "latency_us": engine.link(kind)[1]})
    micro = 1 if static else pp
    stages = []
    phases = []
    for i, (n, (first, last)) in enumerate(zip(sizes, roles)):
        hand = (links[i]["gb_per_s"], links[i]["kind"]) if i < pp - 1 else None
        if static:
            # one batch passes through the stages in turn: each stage pays 1/pp of the scheduler's step
            pre = perf.prefill_time(model, gpu, engine, n, tp, first, last, c, input_len, stages=pp, handoff=hand)
            dec = perf.decode_step_time(model, gpu, engine, n, tp, first, last, c, input_len + output_len / 2,
                                        stages=pp, handoff=hand)
            wave = pre.seconds + (output_len - 1) * dec.seconds
            rate = c * w.context_tokens / wave
            sp = perf.StagePerf(rate, rate * output_len / w.context_tokens, wave, pre, dec, c)
            lat = (pre.seconds, dec.seconds)  # a static batch: all prompts first, then decode steps
        else:
            sp = perf.stage_perf(model, gpu, engine, n, tp, first, last, w, c, microbatches=micro, handoff=hand)
            own = perf.prefill_time(model, gpu, engine, n, tp, first, last, 1, input_len, stages=micro,
                                    pipelined=micro > 1, handoff=hand)
            lat = perf.serving_latency(sp, own.seconds, w, engine, micro)
        phases.append(sp)
        stages.append({
            "stage": i + 1, "layers": n, "first": first, "last": last, "node": node_of[i] + 1,
            "prefill_ms": sp.prefill.seconds * 1e3, "decode_step_ms": sp.decode_step.seconds * 1e3,
            "prefill_bound": sp.prefill.bound, "decode_bound": sp.decode_step.bound,
            "ttft_share_ms": lat[0] * 1e3, "tpot_step_ms": lat[1] * 1e3,
            "tokens_per_s": sp.tokens_per_s, "output_tokens_per_s": sp.output_tokens_per_s, "bound": sp.bound,
            "memory_gb_per_gpu": mems[i].total_gb, "weights_gb_per_gpu": mems[i].weights_gb,
            "kv_cache_gb_per_gpu": mems[i].kv_cache_gb, "max_concurrency": caps[i],
        })
    prefill_ms = sum(s["prefill_ms"] for s in stages)
    decode_ms = sum(s["decode_step_ms"] for s in stages)
    if static:
        wave_s = (prefill_ms + (output_len - 1) * decode_ms) / 1e3
        tokens_per_s = c * w.context_tokens / wave_s
        parts = {"compute": 0.0, "memory": 0.0, "link": 0.0, "host": 0.0}
        for sp in phases:
            pre, dec = sp.prefill.contributions(), sp.decode_step.contributions()
            for k in parts:
                parts[k] += pre[k] + (output_len - 1) * dec[k]
        bound = max(parts, key=parts.get)
        tpot_ms = decode_ms
        ttft_ms = prefill_ms
    else:
        rates = [(s["tokens_per_s"], s["bound"]) for s in stages] + [(k["tokens_per_s"], "link") for k in links]
        tokens_per_s, bound = min(rates, key=lambda r: r[0])
        # a sequence gets one token per cycle of pp microbatch steps; its prompt passes every stage once
        # (continuous batching in the steady state: perf.serving_latency)
        tpot_ms = pp * max(s["tpot_step_ms"] for s in stages)
        ttft_ms = sum(s["ttft_share_ms"] for s in stages)
    note = perf.precision_note(model, gpu)
    result = {
        "feasible": True, "reason": "", "mode": "static batch" if static else "continuous batching",
        "model": model.name, "gpu": gpu.sku, "engine": engine.name, "tp": tp, "pp": pp, "nodes": nodes,
        "gpus": tp * pp, "input_len": input_len, "output_len": output_len,
        "batch": c if static else None, "concurrency": c,
        "prefill_ms": prefill_ms, "decode_step_ms": decode_ms, "ttft_ms": ttft_ms, "tpot_ms": tpot_ms,
        "precision": model.precision, "note": note,
        "tokens_per_s": tokens_per_s, "output_tokens_per_s": tokens_per_s * output_len / (input_len + output_len),
        "memory_gb_per_gpu": mem_gb, "bound": bound,
        "usd_per_hour": tp * pp * gpu.price_usd_per_hour,
        "usd_per_million_tokens": usd_per_million_tokens(tp * pp * gpu.price_usd_per_hour, tokens_per_s),
        "layers_per_stage": sizes, "stages": stages, "links": links,
    }
    log.debug("evaluate %s on %s TP%d x PP%d: %.0f tokens/s", model.name, gpu.sku, tp, pp, tokens_per_s)
    return result
