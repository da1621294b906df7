"""Performance page: the measured solve times (benchmarks/*.csv) and where solving stops being interactive.

The figures come from the benchmark scripts, not from this page: re-running a benchmark inside the
app would compete with the solves it measures."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .charts import FONT, PALETTE

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
INTERACTIVE_S = 1.5  # a slider change should give an updated chart within this
SERIES_AXES = {"layers": "decoder layers", "gpu_types": "GPU types in the pool", "gpus": "GPUs in the pool"}
SEED_CLAIMS = "30-90 s per solve and 4-12 min per budget enumeration (published, with Gurobi; never logged)"
REPRODUCE = ("python benchmarks/run.py          # results.csv and seed_vs_ours.csv\n"
             "python benchmarks/scaling.py      # scaling.csv\n"
             "python benchmarks/fleet_scaling.py  # fleet_scaling.csv")


@st.cache_data(show_spinner=False)
def _read(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def load(name: str) -> pd.DataFrame | None:
    """A benchmark CSV, re-read when the file changes; None if it has not been produced yet."""
    path = BENCH / name
    return _read(str(path), path.stat().st_mtime) if path.exists() else None


def scaling_figure(df: pd.DataFrame, series: str) -> go.Figure:
    """Total time vs one parameter, one line per segment-size set; the band above the interactive
    limit is shaded, and runs that did not finish are crosses at the top."""
    x = series
    done_all = df[df["total_s"].notna()]
    y_low = min([INTERACTIVE_S / 3] + list(done_all["total_s"] * 0.7))
    y_high = max([INTERACTIVE_S * 3] + list(done_all["total_s"] * 2))
    fig = go.Figure()
    for k, (quant, part) in enumerate(df.groupby("quantization", sort=False)):
        part = part.sort_values(x)
        done = part[part["total_s"].notna()]
        color = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=done[x], y=done["total_s"], mode="lines+markers", name=f"{quant} segment sizes",
            line=dict(color=color, width=2.5), marker=dict(size=8),
            customdata=done[["options", "binaries", "usd_per_million_tokens"]].to_numpy(),
            hovertemplate=(f"{SERIES_AXES[series]} %{{x}}<br>%{{y:.2f}} s<br>%{{customdata[0]:,}} options, "
                           "%{customdata[1]:,} binaries<br>$%{customdata[2]:.4f} per million tokens<extra></extra>")))
        failed = part[part["total_s"].isna()]
        if not failed.empty:
            fig.add_trace(go.Scatter(
                x=failed[x], y=[y_high / 1.3] * len(failed), mode="markers", name=f"{quant}: did not finish",
                marker=dict(symbol="x", size=12, color=color), text=failed["status"],
                hovertemplate="%{x}: %{text}<extra></extra>"))
    xs = df[x]
    lo, hi = (xs.min() / 1.3, xs.max() * 1.3) if series == "gpus" else \
        (xs.min() - 0.05 * (xs.max() - xs.min() or 1), xs.max() + 0.05 * (xs.max() - xs.min() or 1))
    fig.add_hrect(y0=INTERACTIVE_S, y1=y_high, fillcolor="#d62728", opacity=0.07, line_width=0)
    # a trace rather than add_hline: its annotation lands in the wrong place on a log axis
    fig.add_trace(go.Scatter(x=[lo, hi], y=[INTERACTIVE_S] * 2, mode="lines", hoverinfo="skip",
                             name=f"interactive limit {INTERACTIVE_S:g} s", line=dict(color="#d62728", dash="dash")))
    x_range = [math.log10(lo), math.log10(hi)] if series == "gpus" else [lo, hi]
    fig.update_layout(xaxis_title=SERIES_AXES[series], yaxis_title="total solve time (s, log)", font=FONT, height=380,
                      xaxis=dict(type="log" if series == "gpus" else "linear", range=x_range),
                      yaxis=dict(type="log", range=[math.log10(y_low), math.log10(y_high)]),
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def limit_note(df: pd.DataFrame, series: str) -> str:
    """One phrase per segment-size set: at which measured values a solve is not interactive."""
    notes = []
    for quant, part in df.groupby("quantization", sort=False):
        slow = part[(part["total_s"].isna()) | (part["total_s"] > INTERACTIVE_S)][series].sort_values()
        if slow.empty:
            notes.append(f"{quant}: interactive at every value measured (up to {part[series].max():g})")
        elif len(slow) == len(part):
            notes.append(f"{quant}: over {INTERACTIVE_S:g} s at every value measured")
        else:
            notes.append(f"{quant}: over {INTERACTIVE_S:g} s at {', '.join(f'{v:g}' for v in slow)}")
    return "; ".join(notes)


def render() -> None:
    st.title("Performance")
    st.caption("How long a whole solve takes (scenario in, proven plan out), measured by the benchmark scripts "
               f"on the machine that ran them. The seed tool claimed {SEED_CLAIMS}.")
    results, seed, scaling = load("results.csv"), load("seed_vs_ours.csv"), load("scaling.csv")
    if results is None and seed is None and scaling is None:
        st.info("No benchmark results yet. Produce them with:")
        st.code(REPRODUCE, language="bash")
        return

    if scaling is not None:
        st.subheader("Scaling: where it stops being interactive")
        st.caption("Exact method on synthetic scenarios (Llama-3-70B, catalogue GPUs and prices); each series "
                   "varies one parameter: layers at 4 GPU types and 64 GPUs, GPU types at 80 layers and 64 "
                   "GPUs, pool size at 80 layers and 4 types.")
        cols = st.columns(len(SERIES_AXES))
        for col, series in zip(cols, SERIES_AXES):
            part = scaling[scaling["series"] == series]
            with col:
                if part.empty:
                    st.caption(f"{SERIES_AXES[series]}: not measured")
                else:
                    st.plotly_chart(scaling_figure(part, series), width="stretch", key=f"scaling_{series}")
                    st.caption(limit_note(part, series))

    fleet = load("fleet_scaling.csv")
    if fleet is not None:
        fleet_section(fleet)

    if results is not None:
        st.subheader("Bundled scenarios, per method")
        st.dataframe(results, hide_index=True, width="stretch")
    if seed is not None:
        st.subheader("Seed-style formulation beside ours")
        st.caption("Same input and question: the highest throughput within a budget (ties toward lower cost). "
                   "The seed-style model has a binary per segment on each GPU partition and per pair of "
                   "consecutive segments, and a big-M bottleneck (benchmarks/seed_formulation.py).")
        st.dataframe(seed, hide_index=True, width="stretch")
    st.caption("Reproduce:")
    st.code(REPRODUCE, language="bash")


def fleet_figure(df: pd.DataFrame) -> go.Figure:
    """Fleet solve time against pool size: the build (once per scenario) and the median fleet solve."""
    part = df[df["series"] == "gpus"].sort_values("gpus")
    fig = go.Figure()
    for k, (col, name) in enumerate((("build_s", "candidates and pricers (once per scenario)"),
                                     ("solve_s_median", "fleet solve with its proof (median)"), ("total_s", "total"))):
        fig.add_trace(go.Scatter(x=part["gpus"], y=part[col], mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)], width=2.5)))
    fig.update_layout(xaxis_title="GPUs in the pool", yaxis_title="seconds (log)", font=FONT, height=360,
                      xaxis=dict(type="log"), yaxis=dict(type="log"), margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def fleet_section(df: pd.DataFrame) -> None:
    st.subheader("Fleet mode: solve time against pool size and GPU types")
    st.caption("benchmarks/fleet_scaling.py: Llama-3-8B, 64 sequences in flight, at most 4 stages, coarse sizes; "
               "demands at 10/50/90% of the pool's capacity; medians.")
    st.plotly_chart(fleet_figure(df), width="stretch", key="fleet_scaling")
    st.dataframe(df, hide_index=True, width="stretch")
