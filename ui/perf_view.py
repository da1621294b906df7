"""Performance page: the measured solve times (benchmarks/*.csv) and where solving stops being interactive.

The figures come from the benchmark scripts, not from this page: re-running a benchmark inside the
app would compete with the solves it measures."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .charts import FONT, PALETTE, log_ticks

# Benchmark CSV column -> (header shown, number format); a column not listed is shown with its words spaced.
COLUMNS = {
    "case": ("scenario", None), "method": ("method", None), "series": ("series", None),
    "quantization": ("segment sizes", None), "formulation": ("formulation", None),
    "options": ("stage options", "localized"), "binaries": ("binaries", "localized"), "rows": ("rows", "localized"),
    "size": ("segments", "localized"), "pairs": ("segment pairs", "localized"),
    "build_s": ("build (s)", "%.3f"), "highs_s": ("HiGHS (s)", "%.3f"), "total_s": ("total (s)", "%.3f"),
    "runs": ("runs", "%d"), "solves": ("MILP solves", "%d"), "repeats": ("repeats", "%d"),
    "usd_per_million_tokens": ("$ per million tokens", "$%.4f"), "tokens_per_s": ("tokens/s", "localized"),
    "usd_per_hour": ("$ per hour", "$%.2f"), "budget_usd_per_hour": ("budget ($/h)", "$%.2f"),
    "budget_factor": ("budget factor", "%.2f"), "proven_optimal": ("proven optimal", None),
    "status": ("status", None), "statuses": ("statuses", None), "speedup": ("ours faster by (×)", None),
    "agree": ("same answer", None), "gpus": ("GPUs", "localized"), "gpu_types": ("GPU types", "%d"),
    "catalogue": ("replica kinds", "%d"), "catalogue_s": ("replica catalogue (s)", "%.3f"),
    "capacity_tokens_per_s": ("pool capacity (tokens/s)", "localized"), "capacity_s": ("capacity (s)", "%.3f"),
    "milp_s_median": ("fleet MILP median (s)", "%.3f"), "milp_s_max": ("fleet MILP max (s)", "%.3f"),
    "layers": ("layers", "%d"),
}


def _times(v: str) -> str:
    """A speed-up cell: '12.3' for a number, the text itself otherwise (e.g. 'seed did not finish')."""
    try:
        return f"{float(v):,.1f}"
    except ValueError:
        return v.replace("_", " ")


def table(df: pd.DataFrame, key: str) -> None:
    """A benchmark CSV as a readable table: headers in words, units, thousands separators, blanks as "–"."""
    shown = df.copy()
    config = {}
    for c in shown.columns:
        label, fmt = COLUMNS.get(c, (c.replace("_", " "), None))
        if fmt is not None and pd.api.types.is_numeric_dtype(shown[c]):
            config[c] = st.column_config.NumberColumn(label, format=fmt, width="small" if len(label) < 10 else None)
        else:
            shown[c] = shown[c].map(lambda v: "–" if pd.isna(v) else ("yes" if v is True else "no" if v is False
                                                                     else str(v)))
            if c == "speedup":
                shown[c] = shown[c].map(_times)
            config[c] = st.column_config.TextColumn(label)
    st.dataframe(shown, hide_index=True, width="stretch", placeholder="–", column_config=config, key=key)

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
    # round tick values, few enough that their labels do not run into each other on a third of the page
    y_ticks = log_ticks(y_low, y_high, most=5)
    x_axis = dict(type="log" if series == "gpus" else "linear", range=x_range)
    if series == "gpus":
        x_ticks = log_ticks(lo, hi, most=4)
        x_axis.update(tickvals=x_ticks, ticktext=[f"{v:,.0f}" for v in x_ticks])
    fig.update_layout(xaxis_title=SERIES_AXES[series], yaxis_title="total solve time (s, log)", font=FONT, height=380,
                      xaxis=x_axis,
                      yaxis=dict(type="log", range=[math.log10(y_low), math.log10(y_high)], tickvals=y_ticks,
                                 ticktext=[f"{v:g}" for v in y_ticks]),
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def limit_note(df: pd.DataFrame, series: str) -> str:
    """One phrase per segment-size set: at which measured values a solve is not interactive."""
    notes = []
    for quant, part in df.groupby("quantization", sort=False):
        slow = part[(part["total_s"].isna()) | (part["total_s"] > INTERACTIVE_S)][series].sort_values()
        if slow.empty:
            notes.append(f"{quant}: interactive at every value measured (up to {part[series].max():,.10g})")
        elif len(slow) == len(part):
            notes.append(f"{quant}: over {INTERACTIVE_S:g} s at every value measured")
        else:
            notes.append(f"{quant}: over {INTERACTIVE_S:g} s at {', '.join(f'{v:,.10g}' for v in slow)}")
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
        table(results, "perf_results")
    if seed is not None:
        st.subheader("Seed-style formulation beside ours")
        st.caption("Same input and question: the highest throughput within a budget (ties toward lower cost). "
                   "The seed-style model has a binary per segment on each GPU partition and per pair of "
                   "consecutive segments, and a big-M bottleneck (the seed-style benchmark script).")
        table(seed, "perf_seed")
    with st.expander("Commands that produce these figures"):
        st.code(REPRODUCE, language="bash")


def fleet_figure(df: pd.DataFrame) -> go.Figure:
    """Fleet solve time against pool size: the build (once per scenario) and the median fleet solve."""
    part = df[df["series"] == "gpus"].sort_values("gpus")
    fig = go.Figure()
    for k, (col, name) in enumerate((("build_s", "candidates and pricers (once per scenario)"),
                                     ("solve_s_median", "fleet solve with its proof (median)"), ("total_s", "total"))):
        fig.add_trace(go.Scatter(x=part["gpus"], y=part[col], mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)], width=2.5)))
    xt = log_ticks(float(part["gpus"].min()), float(part["gpus"].max()), most=6)
    ys = part[["build_s", "solve_s_median", "total_s"]].to_numpy().ravel()
    ys = ys[ys > 0]
    yt = log_ticks(float(ys.min()), float(ys.max()), most=6) if len(ys) else []
    fig.update_layout(xaxis_title="GPUs in the pool", yaxis_title="seconds (log)", font=FONT, height=360,
                      xaxis=dict(type="log", tickvals=xt, ticktext=[f"{v:,.0f}" for v in xt]),
                      yaxis=dict(type="log", tickvals=yt, ticktext=[f"{v:g}" for v in yt]), margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def fleet_section(df: pd.DataFrame) -> None:
    st.subheader("Fleet mode: solve time against pool size and GPU types")
    st.caption("Fleet benchmark: Llama-3-8B, 64 sequences in flight, at most 4 stages, coarse sizes; "
               "demands at 10/50/90% of the pool's capacity; medians.")
    st.plotly_chart(fleet_figure(df), width="stretch", key="fleet_scaling")
    table(df, "perf_fleet")
