"""The Model-accuracy page's cross-source section: per source and quantity, the mean and worst error of
the model against every independent reference (`python -m planner validate`)."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from planner.validation import UNITS



QUANTITY_LABELS = {"decode_step": "decode step", "prefill": "prefill", "ttft": "TTFT", "tpot": "TPOT",
                   "throughput": "throughput", "latency": "request latency"}
QUANTITY_COLORS = {"decode_step": "#1f77b4", "prefill": "#ff7f0e", "ttft": "#2ca02c", "tpot": "#9467bd",
                   "throughput": "#d62728", "latency": "#8c564b"}


def sources_frame(summary: list[dict]) -> pd.DataFrame:
    """The per-source table: the figures of `planner.validation.summarize_sources`, one row each."""
    return pd.DataFrame([{
        "source": s["source"], "group": s["group"], "profile": s["profile"],
        "quantity": f"{QUANTITY_LABELS[s['quantity']]} ({s['unit']})", "rows": s["n"], "MAPE (%)": s["mape_pct"],
        "worst ratio": s["worst_ratio"], "no prediction": s["no_prediction"]} for s in summary],
        columns=["source", "group", "profile", "quantity", "rows", "MAPE (%)", "worst ratio", "no prediction"])


def sources_figure(rows: list[dict]) -> go.Figure:
    """Predicted against measured for one source, log-log with the y = x line, one trace per quantity
    (excluded rows and rows without a prediction are not drawn)."""
    fig = go.Figure()
    points = [r for r in rows if not r["excluded"] and r["ratio"] == r["ratio"]]
    values = [v for r in points for v in (r["measured"], r["predicted"])]
    if not values:
        fig.add_annotation(text="no predictions to show", showarrow=False)
        return fig
    lo, hi = min(values) / 1.4, max(values) * 1.4
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x (exact)",
                             line=dict(color="#444", dash="dash", width=1.5), hoverinfo="skip"))
    for q in UNITS:
        qr = [r for r in points if r["quantity"] == q]
        if not qr:
            continue
        fig.add_trace(go.Scatter(
            x=[r["measured"] for r in qr], y=[r["predicted"] for r in qr], mode="markers",
            name=f"{QUANTITY_LABELS[q]} ({UNITS[q]})", marker=dict(size=7, color=QUANTITY_COLORS[q]),
            customdata=[[f"{r['model']} on {r['gpu']} TP{r['tp']}" + (f"×PP{r['pp']}" if r["pp"] > 1 else ""),
                         f"{r['group']} · {r['profile']} · " + (f"batch {r['batch']}" if r["batch"] is not None
                                                                 else f"C={r['concurrency']}")
                         + f" · {r['input_len']:,}+{r['output_len']:,} tokens", r["error_pct"]] for r in qr],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>measured %{x:,.4~r}<br>predicted %{y:,.4~r} "
                          "(%{customdata[2]:+.1f} %)<extra></extra>"))
    axis = dict(type="log", range=[math.log10(lo), math.log10(hi)], showgrid=True, gridcolor="#e5e5e5",
                automargin=True)
    fig.update_layout(height=400, font=dict(size=12), hovermode="closest", margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="measured (ms, or tokens/s for throughput)", **axis),
                      yaxis=dict(title="predicted", scaleanchor="x", scaleratio=1, **axis),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, font=dict(size=11)))
    return fig


def render_sources(report: dict) -> None:
    if "error" in report:
        st.error(f"**Validation sources unavailable**: {report['error']}", icon="🚫")
        return
    df = sources_frame(report["summary"])
    st.dataframe(df, hide_index=True, width="stretch", height=35 * (len(df) + 1) + 3, key="acc_sources",
                 column_config={"MAPE (%)": st.column_config.NumberColumn(format="%.1f"),
                                "worst ratio": st.column_config.NumberColumn(format="%.2f"),
                                "rows": st.column_config.NumberColumn(format="%d"),
                                "no prediction": st.column_config.NumberColumn(
                                    format="%d", help="configurations that ran but that the model calls infeasible "
                                                      "(not in the MAPE)")})
    st.caption("MAPE: mean absolute percentage error; worst ratio: the largest of predicted/measured and "
               "measured/predicted over the rows; held-out: rows kept out of the profile's fit ("
               + "; ".join(f"{k}: {v}" for k, v in report["held_out"].items())
               + "). Computed by `planner.validation`, as in `python -m planner validate --json`.")
    for backend, d in (report.get("decisions") or {}).items():
        c = st.columns(2)
        c[0].metric(f"Best GPU per tokens/$ agrees with AIConfigurator ({backend})", f"{d['best_gpu_agree_pct']:.0f} %",
                    help=f"{d['best_gpu_agree']} of {d['best_gpu_groups']} (model, lengths, batch) groups")
        c[1].metric(f"Memory feasibility agrees with AIConfigurator ({backend})", f"{d['memory_agree_pct']:.0f} %",
                    help=f"{d['memory_agree']} of {d['memory_configs']} configurations; wrongly infeasible "
                         f"{d['wrongly_infeasible']}, wrongly feasible {d['wrongly_feasible']}")
    sources = list(dict.fromkeys(r["source"] for r in report["rows"]))
    for start in range(0, len(sources), 2):  # two charts a row, in source order
        cols = st.columns(2)
        for i, (col, source) in enumerate(zip(cols, sources[start:start + 2]), start=start):
            with col:
                st.markdown(f"**{source}**")
                st.plotly_chart(sources_figure([r for r in report["rows"] if r["source"] == source]),
                                width="stretch", key=f"acc_source_chart_{i}")
    for note in report["notes"]:
        st.caption(f"Note: {note}")
