"""Stage explorer: one stage's memory and time, and what bounds it, from the performance model."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from planner import perf
from planner.candidates import ROLES
from planner.kinds import holds_embedding, holds_lm_head

from . import charts, state
from .text import md

KEYS = {"ex_gpu": None, "ex_tp": 1, "ex_layers": 10, "ex_role": "middle", "ex_conc": 32}


@st.cache_data(max_entries=256, show_spinner=False)
def stage_numbers(texts_key, name: str, cat_key, gpu: str, tp: int, layers: int, role: str, concurrency: int) -> dict:
    """Memory breakdown, phase times and throughput of one stage (plain data, cached)."""
    from . import solver

    sc = solver.scenario(texts_key, name, cat_key)
    return _numbers(sc, gpu, tp, layers, role, concurrency)


def _numbers(sc, gpu: str, tp: int, layers: int, role: str, concurrency: int) -> dict:
    m, w, e = sc.model, sc.workload, sc.engine
    g = sc.pool.entry(gpu).spec
    first, last = holds_embedding(role), holds_lm_head(role)
    mem = perf.stage_memory(m, g, e, layers, tp, first, last, concurrency, w.context_tokens)
    sp = perf.stage_perf(m, g, e, layers, tp, first, last, w, concurrency)
    phases = []
    for label, ph in (("prefill (whole wave)", sp.prefill), ("decode step", sp.decode_step)):
        phases.append({"phase": label, "compute_ms": ph.compute_s * 1e3, "memory_ms": ph.memory_s * 1e3,
                       "link_ms": ph.comm_s * 1e3, "overhead_ms": ph.overhead_s * 1e3, "total_ms": ph.seconds * 1e3,
                       "bound": ph.bound})
    return {
        "weights_gb": mem.weights_gb, "kv_gb": mem.kv_cache_gb, "activations_gb": mem.activations_gb,
        "reserve_gb": mem.reserve_gb, "capacity_gb": mem.capacity_gb, "total_gb": mem.total_gb, "fits": mem.fits,
        "max_concurrency": perf.max_concurrency(m, g, e, layers, tp, first, last, w.context_tokens),
        "tokens_per_s": sp.tokens_per_s, "output_tokens_per_s": sp.output_tokens_per_s, "wave_s": sp.wave_s,
        "bound": sp.bound, "phases": phases, "cost_usd_per_hour": tp * g.price_usd_per_hour,
        "gpu": f"{gpu} ({g.sku}, {g.memory_gb:g} GB, {g.fp16_dense_tflops:g} TFLOP/s, {g.hbm_gb_per_s:g} GB/s, "
               f"{g.intra_link} {g.intra_link_gb_per_s:g} GB/s)",
        "workload": f"{w.input_tokens} input + {w.output_tokens} output tokens per request",
        "model": f"{m.name}: {m.num_layers} layers",
    }


def render() -> None:
    s = st.session_state
    st.title("Stage explorer")
    sc = state.last_good_scenario()
    if sc is None:
        st.error("The current scenario does not parse; fix it on the main page first.", icon=":material/error:")
        return
    _, err = state.current_scenario()
    if err is not None:
        st.warning("The current edits do not parse; exploring the last valid scenario.", icon=":material/warning:")
    texts_key = state.T.texts_key(s["texts"]) if err is None else None
    st.caption(f"Scenario **{md(s['scenario_name'])}** · model {md(sc.model.name)} ({sc.model.num_layers} layers) · "
               f"{sc.workload.input_tokens} input + {sc.workload.output_tokens} output tokens per request · "
               f"engine {md(sc.engine.name)}")
    saved = s.setdefault("_explorer", {})
    types = list(sc.pool.types)
    for k, default in KEYS.items():
        if k not in s:
            s[k] = saved.get(k, default if k != "ex_gpu" else types[0])
    if s["ex_gpu"] not in types:
        s["ex_gpu"] = types[0]
    c = st.columns(5)
    c[0].selectbox("GPU type (from the pool)", types, key="ex_gpu")
    spec = sc.pool.entry(s["ex_gpu"]).spec
    tps = [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= spec.gpus_per_node]
    if s["ex_tp"] not in tps:
        s["ex_tp"] = tps[0]
    c[1].selectbox("Tensor parallel (GPUs)", tps, key="ex_tp")
    L = sc.model.num_layers
    if not 1 <= s["ex_layers"] <= L:
        s["ex_layers"] = min(max(1, s["ex_layers"]), L)
    c[2].number_input(f"Layers (1-{L})", min_value=1, max_value=L, key="ex_layers")
    c[3].selectbox("Role", list(ROLES), key="ex_role",
                   help="first holds the embedding, last the LM head, only both")
    c[4].number_input("Sequences in flight", min_value=1, max_value=100_000, key="ex_conc")
    for k in KEYS:
        saved[k] = s[k]
    args = (s["ex_gpu"], int(s["ex_tp"]), int(s["ex_layers"]), s["ex_role"], int(s["ex_conc"]))
    if texts_key is not None:
        n = stage_numbers(texts_key, s["scenario_name"], state.cat_key(), *args)
    else:
        n = _numbers(sc, *args)
    st.caption(n["gpu"])
    m = st.columns(5)
    m[0].metric("Stage tokens/s", f"{n['tokens_per_s']:,.0f}",
                help=f"{n['output_tokens_per_s']:,.0f} output tokens/s; one wave takes {n['wave_s']:.2f} s")
    m[1].metric("Bound by", n["bound"])
    m[2].metric("Memory per GPU (GB)", f"{n['total_gb']:.1f} / {n['capacity_gb']:.1f}",
                delta="fits" if n["fits"] else "does not fit", delta_color="normal" if n["fits"] else "inverse")
    m[3].metric("Max sequences that fit", f"{n['max_concurrency']:,}")
    m[4].metric("Stage cost", f"${n['cost_usd_per_hour']:.2f}/h")
    st.subheader("Memory per GPU")
    st.plotly_chart(charts.memory_figure(n["weights_gb"], n["kv_gb"], n["activations_gb"], n["reserve_gb"],
                                         n["capacity_gb"]), width="stretch", key="memory_chart")
    st.subheader("Time per phase: compute, memory and link")
    st.plotly_chart(charts.time_figure(n["phases"]), width="stretch", key="time_chart")
    df = pd.DataFrame(n["phases"])
    st.dataframe(df, hide_index=True, width="stretch", placeholder="–", column_config={
        c: st.column_config.NumberColumn(c.replace("_ms", " (ms)"), format="%.3f")
        for c in ("compute_ms", "memory_ms", "link_ms", "overhead_ms", "total_ms")})
    st.caption("Total is the performance model's time for the phase (a roofline of compute and "
               "memory traffic, the tensor-parallel all-reduce over the intra-node link, and the engine's per-step "
               "overhead). The stage is bound by whichever of compute, memory or link dominates over a whole wave "
               "(prefill of every request, then one decode step per output token).")
