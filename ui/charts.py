"""Plotly figures (pure: plans in, figures out)."""
from __future__ import annotations

import math

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
    if target:  # drawn only when set, and only inside the curve's own range (it never rescales the curve)
        pad0 = (hi - lo) * 0.1 or hi * 0.1 or 1.0
        if lo - pad0 <= target <= hi + pad0:
            fig.add_hline(y=target, line=dict(color="#9467bd", dash="dash"),
                          annotation_text=f"competitor target ${target:,.4g}/M tokens", annotation_position="top left")
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="competitor target",
                                     line=dict(color="#9467bd", dash="dash")))
        else:
            where = "above" if target > hi else "below"
            fig.add_annotation(xref="paper", yref="paper", x=0.99, y=0.98 if target > hi else 0.02,
                               xanchor="right", yanchor="top" if target > hi else "bottom", showarrow=False,
                               text=f"competitor target ${target:,.4g}/M tokens: {where} this range "
                                    + ("(every plan beats it)" if target > hi else "(no plan reaches it)"),
                               font=dict(color="#9467bd"))
    pad = (hi - lo) * 0.1 or hi * 0.1 or 1.0
    basis = "output tokens" if token_basis == "output" else "tokens (input + output)"
    fig.update_layout(
        xaxis_title="budget ($ per hour)", yaxis_title=f"$ per million {basis}", font=FONT, height=430,
        yaxis=dict(range=[max(0.0, lo - pad), hi + pad], tickprefix="$"), xaxis=dict(tickprefix="$"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=60, b=50),
        hovermode="closest")
    return fig


def frontier_figure(points: list[dict], pick: int | None, weight: float, scaling: str) -> go.Figure:
    """The cost/throughput Pareto frontier ($/h against tokens/s) with the cost weight's pick marked.
    `points`: dicts with cost_usd_per_hour, tokens_per_s, usd_per_million_tokens (ttft_ms, tpot_ms if known)."""
    fig = go.Figure()
    xs = [q["cost_usd_per_hour"] for q in points]
    ys = [q["tokens_per_s"] for q in points]
    data = [[q["usd_per_million_tokens"], q.get("ttft_ms", float("nan")), q.get("tpot_ms", float("nan"))]
            for q in points]
    hover = ("$%{x:,.2f}/h<br>%{y:,.0f} tokens/s<br>$%{customdata[0]:.4f} per million tokens<br>"
             "first token %{customdata[1]:,.0f} ms, %{customdata[2]:,.1f} ms per token<extra></extra>")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="Pareto frontier (exact)", customdata=data,
                             line=dict(color="#1f77b4", width=2), marker=dict(size=7), hovertemplate=hover))
    if pick is not None and 0 <= pick < len(points):
        fig.add_trace(go.Scatter(
            x=[xs[pick]], y=[ys[pick]], mode="markers+text", name=f"pick for cost weight {weight:g}",
            marker=dict(symbol="star", size=20, color="#d62728", line=dict(width=1, color="black")),
            text=[f"w = {weight:g}"], textposition="top center", customdata=[data[pick]], hovertemplate=hover))
    fig.update_layout(
        xaxis=dict(title="cost ($ per hour)", tickprefix="$", separatethousands=True),
        yaxis=dict(title="throughput (tokens/s)", separatethousands=True), font=FONT, height=330,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), margin=dict(l=60, r=20, t=40, b=50),
        hovermode="closest", meta={"scaling": scaling, "pick": pick})
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
                 f"{s.memory_gb_per_gpu:.1f}/{s.capacity_gb:.1f} GB<br>{s.tokens_per_s:,.0f} tok/s")
        fig.add_trace(go.Bar(
            y=["pipeline"], x=[s.num_layers], base=[s.first_layer - 0.5], orientation="h",
            name=s.gpu_type, legendgroup=s.gpu_type, showlegend=False,
            marker=dict(color=colors[s.gpu_type], line=dict(color="#d62728" if is_b else "white",
                                                            width=5 if is_b else 1)),
            text=[label], textposition="inside", insidetextanchor="middle", textfont=dict(color="white"),
            hovertemplate=(f"stage {s.index}{' (bottleneck)' if is_b else ''}<br>layers {s.first_layer}-"
                           f"{s.last_layer} ({s.num_layers})<br>{s.gpu_type} ({s.sku}) × {s.tp} (TP {s.tp})<br>"
                           f"memory {s.memory_gb_per_gpu:.2f} of {s.capacity_gb:.1f} GB per GPU<br>"
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
                  annotation_text=f"capacity {capacity:.1f} GB", annotation_position="top")
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


ACCURACY_COLORS = {2: "#1f77b4", 4: "#ff7f0e", 8: "#2ca02c", 16: "#9467bd"}


def accuracy_figure(rows: list[dict], quantity: str, unit: str, band: float = 0.15,
                    reference: list[dict] | None = None) -> go.Figure:
    """Predicted against measured on log-log axes with the y = x line and a ±`band` band.

    `rows` are planner.calibration.comparison_rows of one phase; one trace per model and TP/PP layout,
    excluded rows as grey crosses. `reference` (the same rows under other engine factors) is drawn as
    faint open circles so that a what-if shows where the points moved from."""
    fig = go.Figure()
    points = [r for r in rows if r["predicted"] == r["predicted"]]
    values = [v for r in points for v in (r["measured"], r["predicted"])]
    values += [r["predicted"] for r in reference or () if r["predicted"] == r["predicted"]]
    if not values:
        fig.add_annotation(text="no predictions to show", showarrow=False)
        return fig
    lo, hi = min(values) / 1.4, max(values) * 1.4
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo * (1 - band), hi * (1 - band)], mode="lines", line=dict(width=0),
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo * (1 + band), hi * (1 + band)], mode="lines", line=dict(width=0),
                             fill="tonexty", fillcolor="rgba(120,120,120,0.15)", hoverinfo="skip",
                             name=f"±{band:.0%} band"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x (exact)",
                             line=dict(color="#444", dash="dash", width=1.5), hoverinfo="skip"))
    if reference:
        ref = [r for r in reference if r["predicted"] == r["predicted"] and not r["excluded"]]
        fig.add_trace(go.Scatter(
            x=[r["measured"] for r in ref], y=[r["predicted"] for r in ref], mode="markers",
            name="fitted factors", marker=dict(symbol="circle-open", size=7, color="rgba(90,90,90,0.45)"),
            hoverinfo="skip"))

    def group(r: dict) -> str:
        return f"{r['model']} TP{r['tp']}" + (f"×PP{r['pp']}" if r["pp"] > 1 else "")

    hover = (f"%{{customdata[0]}}<br>%{{customdata[1]}}<br>measured %{{x:,.4~r}} {unit}<br>predicted "
             f"%{{y:,.4~r}} {unit} (%{{customdata[2]:+.1f}} %)<br>model bound: %{{customdata[3]}}<extra></extra>")
    groups = sorted({group(r) for r in points if not r["excluded"]}, key=lambda g: (g.split()[0], len(g), g))
    models = sorted({r["model"] for r in points})
    for g in groups:
        gr = [r for r in points if group(r) == g and not r["excluded"]]
        fig.add_trace(go.Scatter(
            x=[r["measured"] for r in gr], y=[r["predicted"] for r in gr], mode="markers", name=g,
            marker=dict(size=7, color=ACCURACY_COLORS.get(gr[0]["tp"], "#7f7f7f"), symbol=_symbol(gr[0], models),
                        line=dict(width=0.5, color="white")),
            customdata=[[_config_text(r), _lengths_text(r), r["error_pct"], r["bound"]] for r in gr],
            hovertemplate=hover))
    excluded = [r for r in points if r["excluded"]]
    if excluded:
        fig.add_trace(go.Scatter(
            x=[r["measured"] for r in excluded], y=[r["predicted"] for r in excluded], mode="markers",
            name="excluded (inconsistent run)", marker=dict(symbol="x", size=9, color="#7f7f7f"),
            customdata=[[_config_text(r), _lengths_text(r) + "<br>" + r["excluded"], r["error_pct"], r["bound"]]
                        for r in excluded], hovertemplate=hover))
    ticks = log_ticks(lo, hi)
    axis = dict(type="log", range=[math.log10(lo), math.log10(hi)], showgrid=True, gridcolor="#e5e5e5",
                tickvals=ticks, ticktext=[_short(v) for v in ticks], automargin=True)
    fig.update_layout(
        height=440, font=dict(size=12), hovermode="closest", margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title=f"measured ({unit})", **axis),
        yaxis=dict(title=f"predicted {quantity} ({unit})", scaleanchor="x", scaleratio=1, **axis),
        legend=dict(orientation="h", yanchor="top", y=-0.16, x=0, font=dict(size=11)))
    return fig


def log_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round tick values for a log axis from lo to hi: 1-2-5 per decade, thinned to at most `most`."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for mults in ((1, 2, 3, 4, 5, 6, 8), (1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in decades for m in mults if lo <= m * 10.0 ** k <= hi]
        if len(ticks) <= most:
            return ticks
    return ticks


def _short(v: float) -> str:
    return f"{v / 1e3:g}k" if v >= 1e4 else f"{v:g}"


def _symbol(r: dict, models: list[str]) -> str:
    """Colour says TP; the symbol says the model, or a pipeline."""
    return "triangle-up" if r["pp"] > 1 else ("circle", "diamond", "square")[models.index(r["model"]) % 3]


def _config_text(r: dict) -> str:
    layout = f"TP{r['tp']}" + (f" × PP{r['pp']}" if r["pp"] > 1 else "")
    load = f"batch {r['batch']}" if r["batch"] is not None else f"{r['concurrency']} sequences in flight (predicted)"
    return f"{r['model']} on {r['gpu']} {layout}, {load}"


def _lengths_text(r: dict) -> str:
    return f"{r['input_len']:,} input + {r['output_len']:,} output tokens per request"
