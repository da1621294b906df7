"""Catalogue page: the GPU, model and engine catalogues, editable for this session."""
from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from planner import InputError

from . import inputs, solver, state
from . import scenario_texts as T
from .text import md_lines

TABLES = (("gpus.csv", "cat_gpus", "GPUs", "Prices are on-demand $/GPU-hour from the named source and date; check "
           "the source before relying on a cost result."),
          ("models.csv", "cat_models", "Models", "Dense decoder-only transformers; values from each model's "
           "Hugging Face config.json."),
          ("engines.csv", "cat_engines", "Engine profiles", "Efficiency factors of the serving engine relative to "
           "the datasheet."))


# Column groups shown together, so that no grid is wider than the page (a 1400-pixel window with the
# sidebar open leaves ~940 pixels); the name column is in every group.
VIEWS = {
    "cat_gpus": {"datasheet and price": ["sku", "memory_gib", "fp16_dense_tflops", "fp8_dense_tflops", "arch",
                                         "hbm_gb_per_s", "intra_link",
                                         "intra_link_gb_per_s", "gpus_per_node", "price_usd_per_hour", "price_date"],
                 "aliases and sources": ["sku", "aliases", "price_source", "price_date", "datasheet_source"]},
    "cat_models": {"dimensions": ["name", "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                                  "ffn_size", "gated_mlp", "vocab_size", "bytes_per_param", "tied_embeddings"],
                   "aliases and sources": ["name", "aliases", "max_position_embeddings", "source"]},
    "cat_engines": {"factors": ["name", "compute_efficiency", "hbm_efficiency", "nvlink_efficiency",
                                "nvlink_latency_us", "pcie_efficiency", "pcie_latency_us", "network_efficiency",
                                "network_latency_us", "launch_us_per_layer", "scheduler_ms", "scheduler_us_per_seq",
                                "memory_utilization", "runtime_reserve_gib", "max_num_seqs", "prefill_chunk_tokens"],
                    "source": ["name", "source"]},
}
# (short header, what it is): short headers keep a grid within the page; the help says it in full.
LABELS = {
    "memory_gib": ("mem GiB", "memory per GPU (the vendor's GB, which are GiB: 80 GB = 85.9e9 bytes)"),
    "fp8_dense_tflops": ("FP8 TFLOP/s", "dense FP8 tensor TFLOP/s (blank: no FP8 tensor cores)"),
    "arch": ("arch", "GPU architecture (per-architecture engine efficiencies apply to it)"),
    "fp16_dense_tflops": ("TFLOP/s", "dense FP16 tensor TFLOP/s (datasheet, without sparsity)"),
    "hbm_gb_per_s": ("HBM GB/s", "memory bandwidth (GB/s, datasheet)"),
    "intra_link": ("link", "what tensor parallelism inside a node runs over: nvlink or pcie"),
    "intra_link_gb_per_s": ("link GB/s", "intra-node link bandwidth per GPU (GB/s)"),
    "gpus_per_node": ("per node", "GPUs per node (a tensor-parallel group stays inside one node)"),
    "price_usd_per_hour": ("$/GPU-h", "default on-demand price ($ per GPU-hour)"),
    "price_date": ("price date", "when the price was read from its source"),
    "price_source": ("price source", "where the price comes from"),
    "datasheet_source": ("datasheet source", "where the datasheet figures come from"),
    "num_layers": ("layers", "decoder layers"), "hidden_size": ("d_model", "hidden size"),
    "num_heads": ("heads", "attention heads"),
    "num_kv_heads": ("KV heads", "key/value heads (grouped-query attention)"),
    "head_dim": ("head dim", "dimension per head"), "ffn_size": ("FFN", "MLP intermediate size"),
    "gated_mlp": ("gated", "gated MLP (three matrices: gate, up, down)"), "vocab_size": ("vocab", "vocabulary size"),
    "bytes_per_param": ("B/param", "bytes per parameter (2 = fp16/bf16)"),
    "tied_embeddings": ("tied", "input embedding and LM head share weights"),
    "max_position_embeddings": ("context", "context window: the most input + output tokens of one request "
                                           "(config.json max_position_embeddings)"),
    "compute_efficiency": ("compute", "achieved fraction of the datasheet dense FP16 TFLOP/s"),
    "hbm_efficiency": ("HBM", "achieved fraction of the datasheet memory bandwidth"),
    "nvlink_efficiency": ("NVLink", "achieved fraction of the NVLink bandwidth (all-reduce, hand-off)"),
    "nvlink_latency_us": ("NVL µs", "latency per NVLink all-reduce or hand-off (µs)"),
    "pcie_efficiency": ("PCIe", "achieved fraction of the PCIe bandwidth (all-reduce, hand-off)"),
    "pcie_latency_us": ("PCIe µs", "latency per PCIe all-reduce or hand-off (µs)"),
    "network_efficiency": ("net", "achieved fraction of the inter-node network bandwidth (hand-offs)"),
    "network_latency_us": ("net µs", "latency per inter-node hand-off (µs)"),
    "launch_us_per_layer": ("launch µs", "host time to issue one layer's kernels per step (µs; overlaps the GPU)"),
    "scheduler_ms": ("sched ms", "engine scheduling and sampling per engine step (ms)"),
    "scheduler_us_per_seq": ("sched µs/seq", "engine scheduling and sampling per sequence per step (µs)"),
    "memory_utilization": ("mem util", "fraction of GPU memory the engine may use"),
    "runtime_reserve_gib": ("res. GiB", "reserve: CUDA context, CUDA graphs and workspace per GPU (GiB)"),
    "max_num_seqs": ("max seqs", "engine cap on sequences in flight"),
    "prefill_chunk_tokens": ("chunk tok", "prefill chunk (tokens): activation workspace is sized for it"),
}
WIDTHS = {"aliases": "medium", "price_source": "medium", "datasheet_source": "medium", "source": "large"}
NARROW_VIEWS = ("dimensions", "factors")  # ten numeric columns: 80 pixels each


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def ensure() -> None:
    s = st.session_state
    bundled = T.bundled_catalog_texts()
    for file, key, _, _ in TABLES:
        if key not in s:
            s[key] = _frame(s["catalog_texts"][file])
            s[f"{key}_base"] = _frame(bundled[file])


def render() -> None:
    s = st.session_state
    ensure()
    st.title("Catalogues")
    st.caption("Edits apply to this browser session only: the main page re-parses the scenario with the edited "
               "catalogue (a scenario file's pool row without its own price or datasheet values, and the pool "
               "table's 'Fill empty cells from the catalogue', take them from here).")
    if st.button("Reset to the bundled catalogues", key="cat_reset"):
        for _file, key, _, _ in TABLES:
            s[key] = s[f"{key}_base"].copy()
            s[f"_{key}_ver"] = s.get(f"_{key}_ver", 0) + 1
    for _file, key, _title, _note in TABLES:
        inputs.sync_editor(key)
    for file, key, _title, _note in TABLES:
        df = s[key]
        s["catalog_texts"][file] = (T.bundled_catalog_texts()[file] if df.equals(s[f"{key}_base"])
                                    else T.frame_text(df, list(df.columns)))
    cat = solver.catalog_from_texts(state.cat_key())
    if isinstance(cat, InputError):
        lines = md_lines(cat.problems)
        st.error(f"**The edited catalogue has problems** ({len(cat.problems)}); the bundled catalogue is used "
                 f"until they are fixed:\n{lines}", icon=":material/error:")
    tabs = st.tabs([t[2] for t in TABLES])
    for tab, (_file, key, _title, note) in zip(tabs, TABLES):
        with tab:
            c1, c2 = st.columns([3, 2])
            c1.caption(note)
            views = VIEWS[key]
            view = c2.segmented_control("Columns", list(views), default=list(views)[0], key=f"{key}_view",
                                        label_visibility="collapsed") or list(views)[0]
            columns = [c for c in views[view] if c in s[key].columns]
            columns += [c for c in s[key].columns if not any(c in v for v in views.values())]  # unknown extras
            config = {c: st.column_config.TextColumn(LABELS.get(c, (c,))[0], help=LABELS.get(c, (c, None))[1],
                                                     width=WIDTHS.get(c, 80 if view in NARROW_VIEWS and
                                                                      c != columns[0] else None))
                      for c in columns}
            inputs.stable_editor(key, view=view.replace(" ", "_"), num_rows="dynamic", hide_index=True,
                                 width="stretch", column_order=columns, column_config=config)
