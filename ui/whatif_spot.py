"""The What-if page's spot-price and availability-cap tab, and the side-by-side layouts it shares with
the Compare page."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from planner import InputError, Problem, Scenario
from planner import whatif as W

from . import charts, results, state
from . import whatif_jobs as jobs
from .text import md
from .whatif_ctx import Ctx
from .whatif_tables import NUM, figures_frame, ms, not_proven, sections, table


# ------------------------------------------------------------------ 5. spot and availability
SPOT_COLUMNS = ("gpu_type", "count", "on_demand_usd_per_hour", "spot_usd_per_hour", "overhead_pct", "cap")


def spot_frame(sc: Scenario, old: pd.DataFrame | None) -> pd.DataFrame:
    """One row per pool type; what the user typed for a type is kept while the type stays in the pool."""
    kept = {} if old is None else {r["gpu_type"]: r for r in old.to_dict("records")}
    rows = []
    for e in sc.pool.entries:
        k = kept.get(e.name, {})
        rows.append({"gpu_type": e.name, "count": e.count, "on_demand_usd_per_hour": e.spec.price_usd_per_hour,
                     "spot_usd_per_hour": k.get("spot_usd_per_hour", math.nan),
                     "overhead_pct": k.get("overhead_pct", 10.0), "cap": k.get("cap", math.nan)})
    return pd.DataFrame(rows, columns=list(SPOT_COLUMNS)).astype({c: float for c in SPOT_COLUMNS[2:]})


def spot_inputs(df: pd.DataFrame) -> tuple[dict, dict, dict]:
    """(spot $/h, overhead fraction, caps) by type from the table; InputError naming row and column."""
    spot, over, caps, problems = {}, {}, {}, []
    where = "spot & availability table"
    for i, r in enumerate(df.to_dict("records"), start=1):
        g = r["gpu_type"]
        price, o, cap = r["spot_usd_per_hour"], r["overhead_pct"], r["cap"]
        if price is not None and not (isinstance(price, float) and math.isnan(price)):
            if not price > 0:
                problems.append(Problem(f"{g}: spot price must be positive, got {price:g}", where, i, "spot $/GPU-hour"))
            elif o is None or math.isnan(o) or not 0 <= o < 100:
                problems.append(Problem(f"{g}: preemption overhead must be in [0, 100) %, got {o}", where, i,
                                        "preemption overhead (%)"))
            else:
                spot[g], over[g] = float(price), float(o) / 100
        if cap is not None and not (isinstance(cap, float) and math.isnan(cap)):
            if cap < 0 or cap != int(cap):
                problems.append(Problem(f"{g}: a cap must be a whole number of GPUs >= 0, got {cap:g}", where, i,
                                        "cap (GPUs)"))
            else:
                caps[g] = int(cap)
    if problems:
        raise InputError(problems)
    return spot, over, caps


def spot_tab(ctx: Ctx) -> None:
    s = st.session_state
    sc, base = ctx.sc, ctx.base
    st.caption("Buy some GPU types on the spot market and cap how many of each you can get. A spot GPU loses a "
               "share of its paid time to preemptions (draining, restarting, reloading weights), so its tokens cost "
               "spot / (1 − overhead) per productive hour. Empty spot price: stays on demand; empty cap: no cap.")
    old = s.get("whatif_spot")
    if old is None or list(old["gpu_type"]) != list(sc.pool.types) or \
            list(old["on_demand_usd_per_hour"]) != [e.spec.price_usd_per_hour for e in sc.pool.entries]:
        s["whatif_spot"] = spot_frame(sc, old)
        s["_whatif_spot_ver"] = s.get("_whatif_spot_ver", 0) + 1
    f1, f2, _ = st.columns([1.2, 1, 3])
    f1.number_input("Spot price as % of on demand", min_value=1, max_value=100, key="wf_spot_fill")
    if f2.button("Fill every spot price", key="wf_spot_fill_button"):
        df = s["whatif_spot"].copy()
        df["spot_usd_per_hour"] = df["on_demand_usd_per_hour"] * s["wf_spot_fill"] / 100
        s["whatif_spot"] = df
        s["_whatif_spot_ver"] = s.get("_whatif_spot_ver", 0) + 1
    edited = state.folded_editor(
        "whatif_spot", hide_index=True, width="stretch", disabled=["gpu_type", "count", "on_demand_usd_per_hour"],
        column_config={
            "gpu_type": st.column_config.TextColumn("GPU type"), "count": NUM("GPUs in pool", format="%d"),
            "on_demand_usd_per_hour": NUM("on demand ($/GPU-hour)", format="$%.3f"),
            "spot_usd_per_hour": NUM("spot $/GPU-hour", format="$%.3f", min_value=0.0),
            "overhead_pct": NUM("preemption overhead (%)", format="%.1f", min_value=0.0, max_value=99.9),
            "cap": NUM("cap (GPUs)", format="%d", min_value=0, step=1)})
    try:
        spot, over, caps = spot_inputs(edited)
        if spot or caps:  # the transforms check the rest (a cap leaving no GPU, ...) before any worker starts
            W.with_caps(W.with_spot(sc, spot, over), caps) if caps else W.with_spot(sc, spot, over)
    except InputError as exc:
        results.show_error(exc)
        return
    if not spot and not caps:
        st.info("Enter a spot price or a cap (or fill every spot price) to compare with the on-demand plan.")
        return
    controls, (box,) = sections(1)
    params = (tuple(sorted(spot.items())), tuple(sorted(over.items())), tuple(sorted(caps.items())))
    task = jobs.Task(ctx.key("spot", *params), "On demand against spot / capped",
                     lambda c: W.spot_comparison(sc, spot, over, caps, on_demand=base.get(c), cancel=c))
    for _, done in jobs.run([task], controls, auto=ctx.auto, ident="spot", why_not_auto=ctx.why_not_auto):
        with box:
            show_spot(ctx, done, spot, over)


def show_spot(ctx: Ctx, done: jobs.Done, spot: dict, over: dict) -> None:
    if done.error is not None:
        results.show_error(done.error)
        return
    sp: W.SpotComparison = done.value
    c = sp.comparison
    not_proven(c.proof())
    if sp.savings_pct is None:
        st.warning("One of the two has no feasible plan (see below).")
    elif sp.savings_pct > 0:
        st.success(f"The spot / capped what-if **saves {sp.savings_pct:.1f}%** per token against on demand.",
                   icon=":material/savings:")
    elif sp.savings_pct < 0:
        st.warning(f"The what-if **costs {-sp.savings_pct:.1f}% more** per token than on demand.", icon=":material/warning:")
    else:
        st.info("The what-if does not change the cost per token.")
    if sp.prices:
        table(pd.DataFrame([{"GPU type": g, "$/GPU-hour on demand": a, "$/GPU-hour spot": spot[g],
                             "preemption overhead (%)": over[g] * 100, "$/productive GPU-hour": b}
                            for g, a, b in sp.prices]), key="wf_spot_prices", **{"preemption overhead (%)": "%.1f"})
    table(figures_frame(c, "on demand", "what-if"), key="wf_spot_figures")
    show_layouts(ctx, c, ("on demand", "what-if"), "spot")


def show_layouts(ctx: Ctx, c: W.Comparison, labels: tuple[str, str], key: str, num_layers=(None, None)) -> None:
    cols = st.columns(2)
    for col, label, h, reason, L in zip(cols, labels, (c.a, c.b), (c.reason_a, c.reason_b), num_layers):
        with col:
            st.markdown(f"**{md(label)}**")
            if h is None:
                st.error(f"No feasible plan: {md(reason)}", icon=":material/error:")
                continue
            st.caption(f"{md(h.layout)} · TTFT {h.plan.ttft_s:,.2f} s, TPOT {ms(h.plan.tpot_s):,.1f} ms")
            st.plotly_chart(charts.layout_figure(h.plan, L or ctx.sc.model.num_layers), width="stretch",
                            key=f"wf_{key}_layout_{label}")
