"""Plotly figures of the what-if analyses (pure: library results in, figures out)."""
from __future__ import annotations

import plotly.graph_objects as go

from planner.plan import Plan
from planner.whatif import Baselines, Frontier, same
from planner.whatif_prices import PriceSweep, Tornado

from .charts import FONT, type_colors

GREEN, RED, BLUE, GREY, PURPLE = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f", "#9467bd"


def usd_m(x: float) -> str:
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"


def tokens_axis(token_basis: str) -> str:
    return "output tokens" if token_basis == "output" else "tokens"


def stage_summary(plan: Plan) -> str:
    """The layout for a hover box: one line per run of identical stages."""
    lines, run = [], None
    for s in plan.stages:
        key = (s.gpu_type, s.tp, s.num_layers)
        if run and run[0] == key:
            run[1] += 1
        else:
            run = [key, 1]
            lines.append(run)
    return "<br>".join(f"{'%d× ' % n if n > 1 else ''}{g} TP{tp}, {layers} layers" for (g, tp, layers), n in lines)


def frontier_figure(fr: Frontier, selected: int | None = None) -> go.Figure:
    """Cost ($/h) against tokens/s: every frontier plan (the staircase of the best throughput within a
    budget), the minimum-$/token point, the line of that $/token, and the enumeration's grid plans."""
    pts = fr.points
    fig = go.Figure()
    hover = ("plan %{customdata[0]}: $%{x:,.2f}/h, %{y:,.0f} tokens/s<br>$%{customdata[1]:.4f} per million "
             f"{tokens_axis(fr.token_basis)}<br>%{{customdata[2]}} stages, %{{customdata[3]}} GPUs "
             "(%{customdata[4]})<br>TTFT %{customdata[5]:.2f} s, TPOT %{customdata[6]:.1f} ms<br>"
             "%{customdata[7]}<extra></extra>")

    def data(i: int) -> list:
        p = pts[i]
        return [i + 1, p.usd_per_million_tokens, p.stages, p.gpus, ", ".join(f"{g} ×{n}" for g, n in p.gpus_by_type),
                p.plan.ttft_s, p.plan.tpot_s * 1e3, stage_summary(p.plan)]

    fig.add_trace(go.Scatter(
        x=[p.cost_usd_per_hour for p in pts], y=[p.tokens_per_s for p in pts], mode="lines+markers",
        line_shape="hv", name="Pareto frontier (exact)", line=dict(color=BLUE, width=2.5), marker=dict(size=9),
        customdata=[data(i) for i in range(len(pts))], hovertemplate=hover))
    best = fr.best
    x_end = max(p.cost_usd_per_hour for p in pts) * 1.08
    rate = best.tokens_per_s / best.cost_usd_per_hour  # tokens/s per $/h: constant along a line of equal $/token
    fig.add_trace(go.Scatter(
        x=[0.0, x_end], y=[0.0, rate * x_end], mode="lines", name=f"equal $/token: {usd_m(best.usd_per_million_tokens)}/M",
        line=dict(color=GREY, dash="dot", width=1.5), hoverinfo="skip"))
    grid = [g for g in fr.grid if g.cost_usd_per_hour is not None]
    if grid:
        fig.add_trace(go.Scatter(
            x=[g.cost_usd_per_hour for g in grid], y=[g.tokens_per_s for g in grid], mode="markers",
            name="enumeration grid plans", marker=dict(symbol="circle-open", size=17, color="#ff7f0e",
                                                       line=dict(width=2.5)),
            customdata=[[g.budget_usd_per_hour, g.usd_per_million_tokens,
                         "on the frontier" if g.frontier_index is not None else "off the frontier (MIP gap)"]
                        for g in grid],
            hovertemplate=("grid budget $%{customdata[0]:,.2f}/h → plan at $%{x:,.2f}/h, %{y:,.0f} tokens/s<br>"
                           "$%{customdata[1]:.4f} per million tokens, %{customdata[2]}<extra></extra>")))
    fig.add_trace(go.Scatter(
        x=[best.cost_usd_per_hour], y=[best.tokens_per_s], mode="markers", name="minimum $/token (exact optimum)",
        marker=dict(symbol="star", size=20, color=RED, line=dict(width=1, color="black")),
        customdata=[data(fr.best_index)], hovertemplate="minimum $/token<br>" + hover))
    if selected is not None and 0 <= selected < len(pts):
        p = pts[selected]
        fig.add_trace(go.Scatter(
            x=[p.cost_usd_per_hour], y=[p.tokens_per_s], mode="markers", name=f"shown below: plan {selected + 1}",
            marker=dict(symbol="square-open", size=24, color=PURPLE, line=dict(width=3)),
            customdata=[data(selected)], hovertemplate=hover))
    fig.update_layout(
        xaxis=dict(title="cost ($ per hour)", tickprefix="$", rangemode="tozero"),
        yaxis=dict(title="throughput (tokens per second, input + output)", rangemode="tozero"),
        font=FONT, height=460, hovermode="closest", margin=dict(l=70, r=20, t=60, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def baselines_figure(b: Baselines) -> go.Figure:
    """$/million tokens of the mixed optimum and of each GPU type alone."""
    rows = [b.mixed, *b.singles]
    labels = ["mixed pool" if r.gpu_type == "mixed" else f"{r.gpu_type} only" for r in rows]
    ok = [r.headline is not None for r in rows]
    ys = [r.headline.usd_per_million_tokens if r.headline else 0.0 for r in rows]
    texts = []
    for r in rows:
        if r.headline is None:
            texts.append("cannot host<br>the model alone")
        elif r.gpu_type == "mixed":
            texts.append(usd_m(r.headline.usd_per_million_tokens))
        else:
            texts.append(f"{usd_m(r.headline.usd_per_million_tokens)}<br>{r.vs_mixed_pct:+.1f}% vs mixed")
    fig = go.Figure(go.Bar(
        x=labels, y=ys, text=texts, textposition="outside", cliponaxis=False, textfont=dict(size=13),
        marker=dict(color=[GREEN if r.gpu_type == "mixed" else (BLUE if k else GREY) for r, k in zip(rows, ok)]),
        customdata=[[r.headline.tokens_per_s if r.headline else 0, r.headline.cost_usd_per_hour if r.headline else 0,
                     r.headline.layout if r.headline else r.reason[:200]] for r in rows],
        hovertemplate=("%{x}<br>$%{y:.4f} per million tokens<br>%{customdata[0]:,.0f} tokens/s at "
                       "$%{customdata[1]:,.2f}/h<br>%{customdata[2]}<extra></extra>")))
    top = max(ys) if any(ok) else 1.0
    fig.update_layout(yaxis=dict(title="$ per million tokens (best plan)", tickprefix="$", range=[0, top * 1.3]),
                      xaxis=dict(title="GPUs the plan may use"), font=FONT, height=380, showlegend=False,
                      margin=dict(l=70, r=20, t=30, b=50))
    return fig


def tornado_figure(t: Tornado) -> go.Figure:
    """Optimal $/million tokens when one type's price moves by -p% (green) and +p% (red), widest on top."""
    base = t.base.usd_per_million_tokens
    rows = list(t.rows)[::-1]  # plotly draws the first category at the bottom
    names = [r.gpu_type + (" (no change)" if r.low and r.high
                           and same(r.low.usd_per_million_tokens, r.high.usd_per_million_tokens) else "")
             for r in rows]
    fig = go.Figure()
    for side, color, sign in (("low", GREEN, "−"), ("high", RED, "+")):
        heads = [getattr(r, side) for r in rows]
        prices = [getattr(r, f"{side}_price_usd_per_hour") for r in rows]
        changed = [getattr(r, f"{side}_plan_changed") for r in rows]
        fig.add_trace(go.Bar(
            y=names, x=[(h.usd_per_million_tokens - base) if h else 0.0 for h in heads], base=base, orientation="h",
            name=f"price {sign}{t.percent:g}%", marker_color=color,
            text=[("" if same(h.usd_per_million_tokens, base) else usd_m(h.usd_per_million_tokens)) if h else "no plan"
                  for h in heads], textposition="outside",
            cliponaxis=False,
            customdata=[[p, h.usd_per_million_tokens if h else None, "plan changes" if c else "same plan",
                         h.layout if h else "no feasible plan"] for p, h, c in zip(prices, heads, changed)],
            hovertemplate=(f"%{{y}} at $%{{customdata[0]:.3f}}/h ({sign}{t.percent:g}%)<br>optimum "
                           "$%{customdata[1]:.4f} per million tokens<br>%{customdata[2]}: %{customdata[3]}"
                           "<extra></extra>")))
    values = [base] + [h.usd_per_million_tokens for r in rows for h in (r.low, r.high) if h]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.35 or base * 0.05
    fig.add_vline(x=base, line=dict(color="black", width=1.5),
                  annotation_text=f"now {usd_m(base)}/M", annotation_position="top")
    fig.update_layout(
        barmode="overlay", font=FONT, height=max(260, 70 * len(rows) + 120), margin=dict(l=20, r=40, t=60, b=50),
        xaxis=dict(title="optimal $ per million tokens (re-solved exactly)", tickprefix="$", range=[lo - pad, hi + pad]),
        yaxis=dict(title="GPU type whose price moves", automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.08, x=0))
    return fig


def sweep_figure(s: PriceSweep, current_price: float) -> go.Figure:
    """Optimal $/million tokens against one type's price; plan changes marked (exact prices as lines,
    bracketed ones as bands)."""
    pts = s.points
    ok = [p for p in pts if p.headline is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[p.price_usd_per_hour for p in ok], y=[p.headline.usd_per_million_tokens for p in ok], mode="lines+markers",
        name="optimal $/M tokens", line=dict(color=BLUE, width=2.5),
        marker=dict(size=[13 if p.plan_changed else 8 for p in ok],
                    symbol=["diamond" if p.plan_changed else "circle" for p in ok]),
        customdata=[[p.gpus_of_type, p.headline.tokens_per_s, p.headline.layout,
                     "plan changed since the previous price" if p.plan_changed else "same plan as the previous price"]
                    for p in ok],
        hovertemplate=(f"{s.gpu_type} at $%{{x:.3f}}/h<br>$%{{y:.4f}} per million tokens<br>%{{customdata[0]}} "
                       f"{s.gpu_type} GPUs, %{{customdata[1]:,.0f}} tokens/s<br>%{{customdata[3]}}<br>"
                       "%{customdata[2]}<extra></extra>")))
    colors = type_colors([s.gpu_type])
    for k, c in enumerate(s.changes):
        if c.price_usd_per_hour is not None:
            fig.add_vline(x=c.price_usd_per_hour, line=dict(color=RED, dash="dash", width=1.5),
                          annotation_text=f"{k + 1}", annotation_position="top")
        else:  # a tie, or located only between two sweep points: the band they span
            fig.add_vrect(x0=c.low_usd_per_hour, x1=c.high_usd_per_hour, fillcolor=RED, opacity=0.08,
                          line=dict(color=RED, width=0.5), annotation_text=f"{k + 1}", annotation_position="top")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="optimal plan changes (numbered as in the table)",
                             line=dict(color=RED, dash="dash")))
    fig.add_vline(x=current_price, line=dict(color=colors[s.gpu_type], width=2),
                  annotation_text=f"now ${current_price:.3f}/h", annotation_position="bottom right")
    fig.update_layout(
        xaxis=dict(title=f"{s.gpu_type} price ($ per GPU-hour)", tickprefix="$"),
        yaxis=dict(title="optimal $ per million tokens", tickprefix="$"), font=FONT, height=420,
        margin=dict(l=70, r=20, t=70, b=50), hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.1, x=0))
    return fig
