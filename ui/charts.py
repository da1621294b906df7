"""Plotly figures (pure: plans in, figures out)."""
from __future__ import annotations

import plotly.graph_objects as go

from planner import CurvePoint, Plan
from planner.report import gpu_rows

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#d62728")
FONT = dict(size=13)


def type_colors(types) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in types:
        if t not in out:
            out[t] = PALETTE[len(out) % len(PALETTE)]
    return out


def step_points(frontier: list[Plan], x_end: float | None = None) -> tuple[list[float], list[Plan]]:
    """The exact plateau curve: for budget B the best plan is the frontier plan of max throughput among
    those costing <= B. Returns the budgets where the best plan changes and the plan from there on."""
    xs: list[float] = []
    plans: list[Plan] = []
    for p in sorted(frontier, key=lambda p: p.cost_usd_per_hour):
        if plans and p.tokens_per_s <= plans[-1].tokens_per_s:
            continue
        xs.append(p.cost_usd_per_hour)
        plans.append(p)
    return xs, plans


def best_at_budget(frontier: list[Plan], budget: float) -> Plan | None:
    fits = [p for p in frontier if p.cost_usd_per_hour <= budget * (1 + 1e-12)]
    return max(fits, key=lambda p: (p.tokens_per_s, -p.cost_usd_per_hour)) if fits else None


def budget_curve(frontier: list[Plan], chosen: Plan | None, exact_best: Plan | None,
                 target: float | None = None, grid: tuple[CurvePoint, ...] = (), token_basis: str = "total") -> go.Figure:
    """$/million tokens of the best plan at each budget ($/h): a step curve, with markers."""
    xs, plans = step_points(frontier)
    fig = go.Figure()
    if not plans:
        fig.add_annotation(text="no frontier to show", showarrow=False)
        return fig
    budgets = [p.budget_usd_per_hour for p in grid]
    x_end = max([xs[-1] * 1.15] + [b * 1.05 for b in budgets])
    cx = xs + [x_end]
    cplans = plans + [plans[-1]]
    ys = [p.usd_per_million_tokens for p in cplans]
    fig.add_trace(go.Scatter(
        x=cx, y=ys, mode="lines+markers", line_shape="hv", name="best plan within budget (exact)",
        line=dict(color="#1f77b4", width=2.5), marker=dict(size=6),
        customdata=[[p.tokens_per_s, p.cost_usd_per_hour, p.num_gpus, len(p.stages)] for p in cplans],
        hovertemplate=("budget ≥ $%{x:.2f}/h<br>$%{y:.4f} per million tokens<br>throughput %{customdata[0]:,.0f} "
                       "tokens/s<br>plan cost $%{customdata[1]:.2f}/h, %{customdata[2]} GPUs, %{customdata[3]} "
                       "stages<extra></extra>")))
    y_all = list(ys)
    solved = [p for p in grid if p.plan is not None]
    if solved:
        y_all += [p.usd_per_million_tokens for p in solved]
        fig.add_trace(go.Scatter(
            x=[p.budget_usd_per_hour for p in solved], y=[p.usd_per_million_tokens for p in solved], mode="markers",
            name="enumeration grid points", marker=dict(symbol="circle-open", size=13, color="#ff7f0e",
                                                           line=dict(width=2.5)),
            customdata=[[p.tokens_per_s, p.cost_usd_per_hour] for p in solved],
            hovertemplate=("grid budget $%{x:.2f}/h<br>$%{y:.4f} per million tokens<br>%{customdata[0]:,.0f} "
                           "tokens/s at $%{customdata[1]:.2f}/h<extra></extra>")))
    if exact_best is not None:
        y_all.append(exact_best.usd_per_million_tokens)
        fig.add_trace(go.Scatter(
            x=[exact_best.cost_usd_per_hour], y=[exact_best.usd_per_million_tokens], mode="markers",
            name="exact optimum (min $/token)", marker=dict(symbol="diamond-open", size=24, color="#2ca02c",
                                                            line=dict(width=3)),
            customdata=[[exact_best.tokens_per_s]],
            hovertemplate="exact optimum<br>$%{x:.2f}/h<br>$%{y:.4f} per million tokens<br>%{customdata[0]:,.0f} "
                          "tokens/s<extra></extra>"))
    if chosen is not None:
        y_all.append(chosen.usd_per_million_tokens)
        fig.add_trace(go.Scatter(
            x=[chosen.cost_usd_per_hour], y=[chosen.usd_per_million_tokens], mode="markers", name="chosen plan",
            marker=dict(symbol="star", size=17, color="#d62728", line=dict(width=1, color="black")),
            customdata=[[chosen.tokens_per_s]],
            hovertemplate="chosen plan<br>$%{x:.2f}/h<br>$%{y:.4f} per million tokens<br>%{customdata[0]:,.0f} "
                          "tokens/s<extra></extra>"))
    lo, hi = min(y_all), max(y_all)
    unsolved = [p for p in grid if p.plan is None]
    if unsolved:
        fig.add_trace(go.Scatter(
            x=[p.budget_usd_per_hour for p in unsolved], y=[lo] * len(unsolved), mode="markers",
            name="grid points without a plan", marker=dict(symbol="x", size=11, color="#7f7f7f"),
            text=[p.status for p in unsolved], hovertemplate="grid budget $%{x:.2f}/h: %{text}<extra></extra>"))
    if target is not None:
        if target <= hi * 3:
            fig.add_hline(y=target, line=dict(color="#9467bd", dash="dash"),
                          annotation_text=f"competitor target ${target:g}/M tokens", annotation_position="top left")
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="competitor target",
                                     line=dict(color="#9467bd", dash="dash")))
            hi = max(hi, target)
        else:
            fig.add_annotation(xref="paper", yref="paper", x=0.99, y=0.98, xanchor="right", showarrow=False,
                               text=f"competitor target ${target:g}/M tokens is far above this range",
                               font=dict(color="#9467bd"))
    pad = (hi - lo) * 0.1 or hi * 0.1 or 1.0
    basis = "output tokens" if token_basis == "output" else "tokens (input + output)"
    fig.update_layout(
        xaxis_title="budget ($ per hour)", yaxis_title=f"$ per million {basis}", font=FONT, height=430,
        yaxis=dict(range=[max(0.0, lo - pad), hi + pad], tickprefix="$"), xaxis=dict(tickprefix="$"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=60, b=50),
        hovermode="closest")
    return fig


def layout_figure(plan: Plan, num_layers: int) -> go.Figure:
    """Layers along x; each stage a block coloured by GPU type; bottleneck stage outlined."""
    colors = type_colors(s.gpu_type for s in plan.stages)
    bottleneck = plan.bottleneck
    fig = go.Figure()
    shown: set[str] = set()
    for s in plan.stages:
        is_b = s.index == bottleneck
        label = (f"{'⚠ ' if is_b else ''}S{s.index} {s.gpu_type} TP{s.tp}<br>"
                 f"{s.memory_gb_per_gpu:.1f}/{s.capacity_gb:g} GB<br>{s.tokens_per_s:,.0f} tok/s")
        fig.add_trace(go.Bar(
            y=["pipeline"], x=[s.num_layers], base=[s.first_layer - 0.5], orientation="h",
            name=s.gpu_type, legendgroup=s.gpu_type, showlegend=False,
            marker=dict(color=colors[s.gpu_type], line=dict(color="#d62728" if is_b else "white",
                                                            width=5 if is_b else 1)),
            text=[label], textposition="inside", insidetextanchor="middle", textfont=dict(color="white"),
            hovertemplate=(f"stage {s.index}{' (bottleneck)' if is_b else ''}<br>layers {s.first_layer}-"
                           f"{s.last_layer} ({s.num_layers})<br>{s.gpu_type} ({s.sku}) × {s.tp} (TP {s.tp})<br>"
                           f"memory {s.memory_gb_per_gpu:.2f} of {s.capacity_gb:g} GB per GPU<br>"
                           f"{s.tokens_per_s:,.0f} tokens/s, {s.bound}-bound<br>${s.cost_usd_per_hour:.2f}/h"
                           "<extra></extra>")))
        shown.add(s.gpu_type)
    for t, color in colors.items():  # legend entries (plain colour swatches)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=t, legendgroup=t,
                                 marker=dict(symbol="square", size=12, color=color)))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="bottleneck stage",
                             marker=dict(symbol="square-open", size=12, color="#d62728", line=dict(width=3))))
    fig.update_layout(
        barmode="overlay", height=240, font=FONT, showlegend=True, uniformtext=dict(minsize=9, mode="hide"),
        xaxis=dict(title="decoder layer", range=[0.5, num_layers + 0.5], dtick=max(1, num_layers // 20)),
        yaxis=dict(showticklabels=False), legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0,
                                                       title_text="GPU type: "),
        margin=dict(l=20, r=20, t=50, b=50))
    return fig


def gpu_figure(plan: Plan, num_layers: int) -> go.Figure:
    """Which physical GPU holds which layers."""
    rows = gpu_rows(plan)
    colors = type_colors(r["gpu_type"] for r in rows)
    fig = go.Figure()
    shown: set[str] = set()
    order = [f"{r['gpu_id']} ({r['gpu_type']})" for r in rows]
    for r, ylab in zip(rows, order):
        fig.add_trace(go.Bar(
            y=[ylab], x=[r["last_layer"] - r["first_layer"] + 1], base=[r["first_layer"] - 0.5], orientation="h",
            name=r["gpu_type"], legendgroup=r["gpu_type"], showlegend=r["gpu_type"] not in shown,
            marker=dict(color=colors[r["gpu_type"]]),
            hovertemplate=(f"{r['gpu_id']} ({r['gpu_type']}, {r['node']})<br>stage {r['stage']}, TP rank "
                           f"{r['tp_rank']}<br>layers {r['first_layer']}-{r['last_layer']}<extra></extra>")))
        shown.add(r["gpu_type"])
    fig.update_layout(
        barmode="overlay", height=max(260, 24 * len(rows) + 110), font=FONT,
        xaxis=dict(title="decoder layer", range=[0.5, num_layers + 0.5]),
        yaxis=dict(title="physical GPU", categoryorder="array", categoryarray=order[::-1], automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, title_text="GPU type: "),
        margin=dict(l=20, r=20, t=40, b=50))
    return fig


def memory_figure(weights: float, kv: float, activations: float, reserve: float, capacity: float) -> go.Figure:
    parts = (("weights", weights, "#1f77b4"), ("KV cache", kv, "#ff7f0e"), ("activations", activations, "#2ca02c"),
             ("reserve (engine + runtime)", reserve, "#7f7f7f"))
    fig = go.Figure()
    for name, value, color in parts:
        fig.add_trace(go.Bar(y=["per GPU"], x=[value], name=f"{name}", orientation="h", marker_color=color,
                             text=[f"{value:.1f} GB"], textposition="inside",
                             hovertemplate=f"{name}: %{{x:.2f}} GB<extra></extra>"))
    total = weights + kv + activations + reserve
    fig.add_vline(x=capacity, line=dict(color="#d62728", width=3, dash="dash"),
                  annotation_text=f"capacity {capacity:g} GB", annotation_position="top")
    fig.update_layout(barmode="stack", height=230, font=FONT, xaxis=dict(title="memory per GPU (GB)",
                      range=[0, max(total, capacity) * 1.08]), yaxis=dict(showticklabels=False),
                      legend=dict(orientation="h", yanchor="bottom", y=1.15, x=0), margin=dict(l=20, r=20, t=70, b=50))
    return fig


def time_figure(rows: list[dict]) -> go.Figure:
    """Grouped bars: compute / memory / link / overhead time per phase (ms)."""
    fig = go.Figure()
    for part, color in (("compute", "#1f77b4"), ("memory", "#ff7f0e"), ("link", "#2ca02c"), ("overhead", "#7f7f7f")):
        fig.add_trace(go.Bar(x=[r["phase"] for r in rows], y=[r[f"{part}_ms"] for r in rows], name=part,
                             marker_color=color, hovertemplate=f"{part}: %{{y:.3f}} ms<extra></extra>"))
    fig.update_layout(barmode="group", height=320, font=FONT, yaxis=dict(title="time (ms, log scale)", type="log", dtick=1),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=40, b=40))
    return fig
