"""Catalogue page: the GPU, model and engine catalogues, editable for this session."""
from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from planner import InputError

from . import scenario_texts as T
from . import solver, state

TABLES = (("gpus.csv", "cat_gpus", "GPUs", "Prices are on-demand $/GPU-hour from the named source and date; check "
           "the source before relying on a cost result."),
          ("models.csv", "cat_models", "Models", "Dense decoder-only transformers; values from each model's "
           "Hugging Face config.json."),
          ("engines.csv", "cat_engines", "Engine profiles", "Efficiency factors of the serving engine relative to "
           "the datasheet."))


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
               "catalogue (a pool row without its own price or datasheet values takes them from here).")
    if st.button("Reset to the bundled catalogues", key="cat_reset"):
        for file, key, _, _ in TABLES:
            s[key] = s[f"{key}_base"].copy()
            s[f"_{key}_ver"] = s.get(f"_{key}_ver", 0) + 1
    for file, key, title, note in TABLES:
        state.fold_pending(key)
    for file, key, title, note in TABLES:
        df = s[key]
        s["catalog_texts"][file] = (T.bundled_catalog_texts()[file] if df.equals(s[f"{key}_base"])
                                    else T.frame_text(df, list(df.columns)))
    cat = solver.catalog_from_texts(state.cat_key())
    if isinstance(cat, InputError):
        lines = "\n".join(f"- {p}" for p in cat.problems)
        st.error(f"**The edited catalogue has problems** ({len(cat.problems)}); the bundled catalogue is used "
                 f"until they are fixed:\n{lines}", icon="🚫")
    tabs = st.tabs([t[2] for t in TABLES])
    for tab, (file, key, title, note) in zip(tabs, TABLES):
        with tab:
            st.caption(f"{file}: {note}")
            config = {}
            if key == "cat_gpus":
                config = {"price_usd_per_hour": st.column_config.TextColumn("price ($/GPU-h)"),
                          "memory_gb": st.column_config.TextColumn("memory (GB)"),
                          "fp16_dense_tflops": st.column_config.TextColumn("FP16 dense (TFLOP/s)"),
                          "hbm_gb_per_s": st.column_config.TextColumn("HBM (GB/s)"),
                          "intra_link_gb_per_s": st.column_config.TextColumn("intra link (GB/s)"),
                          "price_source": st.column_config.TextColumn("price source", width="large"),
                          "price_date": st.column_config.TextColumn("price date"),
                          "datasheet_source": st.column_config.TextColumn("datasheet source", width="large")}
            state.folded_editor(key, num_rows="dynamic", hide_index=True, width="stretch", column_config=config)
