"""Model accuracy page, "Calibrate from your own runs": upload measured runs, fit an engine profile
(planner.calibrate), see predicted against measured before and after the fit, and use the profile for
the session's scenario (it then travels in the exported scenario file as engines.csv)."""
from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from planner import InputError, PlannerError
from planner.calibrate import (Layout, calibrate, engine_gpus_csv, engines_csv, runs_from_text, source_text)
from planner.csvio import decode
from planner.uncertainty import points_from_calibration

from . import scenario_texts as T
from . import state
from .text import md, md_lines
from .uncertainty_view import POINTS_KEY

RESULT_KEY = "calib_result"


def fit_chart(rows: list[dict]) -> go.Figure:
    """Predicted against measured, before and after the fit, log-log with y = x (one panel per unit)."""
    fig = go.Figure()
    vals = [v for r in rows for v in (r["measured"], r["predicted_before"], r["predicted_after"])
            if v is not None and v == v and v > 0]
    for key, name, symbol in (("predicted_before", "before (base profile)", "circle-open"),
                              ("predicted_after", "after the fit", "circle")):
        pts = [r for r in rows if r[key] is not None and r[key] == r[key] and r[key] > 0]
        fig.add_trace(go.Scatter(
            x=[r["measured"] for r in pts], y=[r[key] for r in pts], mode="markers", name=name,
            marker={"symbol": symbol, "size": 9},
            customdata=[[r["run"], r["quantity"], r["error_before_pct" if "before" in key else "error_after_pct"]]
                        for r in pts],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}: measured %{x:.4g}, predicted %{y:.4g} "
                          "(%{customdata[2]:+.1f}%)<extra></extra>"))
    if vals:
        lo, hi = min(vals) / 1.3, max(vals) * 1.3
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x (exact)",
                                 line={"dash": "dash", "color": "grey"}, hoverinfo="skip"))
    fig.update_xaxes(type="log", title="measured")
    fig.update_yaxes(type="log", title="predicted")
    fig.update_layout(height=420, margin={"t": 30, "b": 10}, legend={"orientation": "h"})
    return fig


def _layout_inputs(cat) -> Layout:
    c = st.columns(5)
    model = c[0].selectbox("Model", sorted(cat.models), key="calib_model")
    gpu = c[1].selectbox("GPU", sorted(cat.gpus), key="calib_gpu")
    tp = c[2].number_input("TP", 1, 64, 1, key="calib_tp")
    pp = c[3].number_input("PP", 1, 256, 1, key="calib_pp")
    nodes = c[4].number_input("Nodes", 1, 256, 1, key="calib_nodes")
    return Layout(model, gpu, int(tp), int(pp), int(nodes))


def render() -> None:
    st.header("Calibrate from your own runs")
    st.markdown("Upload the runs you measured on your hardware: a CSV with one run per row (`model, gpu, tp, pp, "
                "nodes, input_len, output_len`, `batch` or `concurrency`, and one or more of "
                "`total_tokens_per_s, output_tokens_per_s, prefill_ms, decode_step_ms, ttft_ms, tpot_ms`) or "
                "the JSON that vLLM's serving benchmark writes with `--save-result`. The parameters of the base "
                "profile that your runs can pin down are fitted; the others are kept, each with the reason.")
    cat = state.catalog()
    if isinstance(cat, Exception):
        st.error(f"The session's catalogue has problems: {md(cat)}")
        return
    up = st.file_uploader("Measured runs (.csv or vLLM .json)", type=["csv", "json", "jsonl"], key="calib_upload")
    c1, c2 = st.columns(2)
    base = c1.selectbox("Base profile", list(cat.engines), key="calib_base")
    name = c2.text_input("New profile name", "my-profile", key="calib_name").strip()
    layout = None
    if up is not None and up.name.lower().endswith((".json", ".jsonl")):
        st.caption("A vLLM result does not say the layout it ran on: give it here.")
        layout = _layout_inputs(cat)
    if st.button("Fit the profile", key="calib_fit", disabled=up is None or not name, type="primary"):
        try:
            if not name or "," in name or '"' in name:
                raise InputError(f"'{name}' is not a usable profile name (no commas or quotes)")
            text = decode(up.getvalue(), up.name)
            runs = runs_from_text(text, up.name, cat, base, layout)
            out = calibrate(runs, cat.engine(base), name, cat, source_text(up.name))
            st.session_state[RESULT_KEY] = {"profile": out["profile"], "report": out["report"]}
        except InputError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(f"**The runs cannot be used** ({len(exc.problems)}):\n{md_lines(exc.problems)}", icon="🚫")
        except PlannerError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(md(exc), icon="🚫")
    res = st.session_state.get(RESULT_KEY)
    if res:
        show_result(res)


def show_result(res: dict) -> None:
    rep, profile = res["report"], res["profile"]
    c = st.columns(3)
    for col, key, label in zip(c, ("mape_before_pct", "mape_after_pct", "mape_leave_one_out_pct"),
                               (f"MAPE with '{rep['base']}'", "MAPE after the fit", "MAPE left out (leave-one-out)")):
        v = rep[key]
        col.metric(label, "n/a" if v is None else f"{v:.1f}%")
    st.plotly_chart(fit_chart(rep["rows"]), width="stretch", key="calib_chart")
    st.markdown("**Fitted** (the runs vary what these multiply)")
    st.dataframe(pd.DataFrame(rep["fitted"]), hide_index=True)
    st.markdown("**Kept** at the base profile's value")
    st.dataframe(pd.DataFrame(rep["kept"]), hide_index=True)
    with st.expander(f"Every run ({len(rep['rows'])} figures)"):
        cols = ["run", "quantity", "measured", "predicted_before", "predicted_after", "error_before_pct",
                "error_after_pct", "error_leave_one_out_pct"]
        st.dataframe(pd.DataFrame(rep["rows"])[cols], hide_index=True)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download engines.csv", engines_csv(profile), "engines.csv", "text/csv",
                       key="calib_dl_engines", on_click="ignore")
    d2.download_button("Download engine_gpus.csv", engine_gpus_csv(profile), "engine_gpus.csv", "text/csv",
                       key="calib_dl_gpus", on_click="ignore")
    d3.download_button("Download calibration.json", json.dumps(rep, indent=1), "calibration.json", "application/json",
                       key="calib_dl_json", on_click="ignore")
    if st.button(f"Use profile '{profile.name}' for the session's scenario", key="calib_use"):
        use_profile(profile, rep)
        st.success(f"The scenario now uses engine profile '{md(profile.name)}'; it is carried in the exported "
                   "scenario file (engines.csv).", icon="✅")


def use_profile(profile, report: dict) -> None:
    """Put the profile into the session's scenario texts (engines.csv, engine_gpus.csv, config engine)."""
    s = st.session_state
    texts = dict(s["texts"])
    texts["engines.csv"] = engines_csv(profile)
    texts["engine_gpus.csv"] = engine_gpus_csv(profile)
    texts[T.CONFIG] = T.set_params(texts.get(T.CONFIG, "parameter,value\n"), {"engine": profile.name})
    s.setdefault(POINTS_KEY, {})[profile.name] = points_from_calibration(report)
    state.load(texts, s["scenario_name"], pick=s.get("loaded_pick", state.UPLOADED))
