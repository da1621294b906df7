"""Fleet page: the cheapest set of replicas for a demand, its composition, the demand curve, price and spot
what-ifs. Heavy work (the candidates, the column generation and its MILPs) runs in the what-if worker
(ui/whatif_jobs); the per-level replica pricers are built once per scenario and mix and handed to the later
tasks (prices and demands do not change them).
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from planner import InputError
from planner.scenario_io import override_settings
from planner.fleet import Fleet, RequestClass, check_mix
from planner.fleet_curve import curve_rows, demand_curve
from planner.fleet_report import fleet_csv
from planner.fleet_whatif import price_sensitivity

from . import results, state
from . import scenario_texts as T
from . import whatif_jobs as jobs
from .charts import FONT, PALETTE

MIX_COLUMNS = ["name", "share", "input_tokens", "output_tokens", "max_ttft_ms", "max_tpot_ms"]


def mix_from_frame(df: pd.DataFrame) -> tuple[RequestClass, ...]:
    """The mix editor's rows as request classes (blank latency cells: the scenario's limits)."""
    out = []
    for i, row in df.reset_index(drop=True).iterrows():
        if pd.isna(row.get("name")) or str(row["name"]).strip() == "":
            continue

        def opt(key):
            v = row.get(key)
            return None if v is None or pd.isna(v) else float(v)
        try:
            out.append(RequestClass(str(row["name"]).strip(), float(row["share"]), int(row["input_tokens"]),
                                    int(row["output_tokens"]), opt("max_ttft_ms"), opt("max_tpot_ms")))
        except (TypeError, ValueError) as exc:
            raise InputError(f"mix row {i + 1}: {exc}") from exc
    return check_mix(tuple(out), "mix")


def composition(plan) -> pd.DataFrame:
    """One row per replica group: count, layout, one replica's figures."""
    rows = []
    for g in plan.groups:
        rows.append({"request class": g.request_class or "all", "replicas": g.count,
                     "layout (layers)": " → ".join(f"{s.gpu_type} TP{s.tp} [{s.first_layer}-{s.last_layer}]"
                                                   for s in g.stages),
                     "tokens/s per replica": g.tokens_per_s, "$/h per replica": g.cost_usd_per_hour,
                     "sequences in flight": g.concurrency, "TTFT (ms)": g.ttft_ms, "TPOT (ms)": g.tpot_ms})
    return pd.DataFrame(rows)


CURVE_HEADERS = {"series": "fleet", "demand_from_tokens_per_s": "demand from (tokens/s)",
                 "demand_to_tokens_per_s": "demand to (tokens/s)", "cost_usd_per_hour": "minimum $/h",
                 "usd_per_million_tokens": "$/M tokens at the step's end", "status": "status"}


def curve_frame(curve) -> pd.DataFrame:
    """The demand curve's steps with headers in words."""
    return pd.DataFrame(curve_rows(curve)).rename(columns=CURVE_HEADERS)


def formatted(df: pd.DataFrame, key: str) -> None:
    """A table with units and thousands separators: $/h to cents, $/M to 4 places, rates and times to one."""
    fmt = {}
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            continue
        if "$/M" in col:
            fmt[col] = st.column_config.NumberColumn(col, format="$%.4f")
        elif "$/h" in col or col == "price ($/GPU-hour)":
            fmt[col] = st.column_config.NumberColumn(col, format="dollar")
        elif "tokens/s" in col:
            df = df.assign(**{col: df[col].round(0)})  # whole tokens/s, shown with thousands separators
            fmt[col] = st.column_config.NumberColumn(col, format="localized")
        elif col.endswith("(ms)"):
            fmt[col] = st.column_config.NumberColumn(col, format="%.1f")
    st.dataframe(df, hide_index=True, width="stretch", placeholder="–", column_config=fmt, key=key)


def curve_figure(curve, demand: float | None = None) -> go.Figure:
    fig = go.Figure()
    for k, name in enumerate(curve.names):
        xs, ys = [], []
        for s in curve.series(name):
            xs += [s.demand_from, s.demand_to, None]
            ys += [s.cost_usd_per_hour, s.cost_usd_per_hour, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)], width=3 if name == "mixed" else 1.5,
                                           dash="solid" if name == "mixed" else "dot")))
    if demand is not None:
        fig.add_vline(x=demand, line=dict(color="#d62728", dash="dash"))
    fig.update_layout(xaxis_title="demand (tokens/s)", yaxis_title="minimum $/hour", font=FONT, height=420,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def _tasks_key(key, ckey, mix):
    return (key, ckey, "fleet", tuple(mix) if mix else None)


def render() -> None:
    s = st.session_state
    st.title("Fleet")
    st.caption("The cheapest set of replicas (each a pipeline as the Planner builds them) whose tokens/s add up to "
               "a demand, within the pool's GPU counts; proven optimal by column generation (replicas priced exactly "
               "from the stage options) and a reduced-cost argument that every replica an optimal fleet could use "
               "was in the final MILP.")
    sc, err = state.current_scenario()
    if err is not None:
        results.show_error(err)
        st.info("Fix the scenario on the **Planner** page.")
        return
    key, ckey = T.texts_key(s["texts"]), state.cat_key()
    st.caption(f"Scenario **{s['scenario_name']}** · {sc.model.name} · pool: "
               + ", ".join(f"{e.count}× {e.name}" for e in sc.pool.entries))
    max_stages = stage_inputs(sc)
    try:
        sc = override_settings(sc, {"max_stages": max_stages}, {"max_stages": "Max stages per replica"})
    except InputError as exc:
        results.show_error(exc)
        return
    use_mix = st.toggle("A mix of requests", key="fleet_use_mix",
                        help="Classes with their own lengths and latency limits; shares are shares of requests")
    mix = None
    if use_mix:
        if "fleet_mix" not in s:
            s["fleet_mix"] = pd.DataFrame([
                {"name": "chat", "share": 0.7, "input_tokens": 512, "output_tokens": 256, "max_ttft_ms": None,
                 "max_tpot_ms": None},
                {"name": "docs", "share": 0.3, "input_tokens": 8192, "output_tokens": 512, "max_ttft_ms": None,
                 "max_tpot_ms": None}], columns=MIX_COLUMNS)
        edited = st.data_editor(s["fleet_mix"], num_rows="dynamic", key="fleet_mix_editor", hide_index=True)
        try:
            mix = mix_from_frame(edited)
        except InputError as exc:
            results.show_error(exc)
            return
    base = _tasks_key(key, ckey, mix) + (max_stages,)
    cat_task = jobs.Task(base + ("catalogue",), "replica pricers and pool capacity",
                         lambda cancel, sc=sc, mix=mix: _catalogue(sc, mix, cancel))
    fresh = jobs.store().get(cat_task.key) is None
    got = dict(_run([cat_task], "fleet_cat"))
    done = got.get(cat_task.key)
    if done is None:
        return
    if fresh:  # one worker (and one Cancel button) per script run: start the fleet solves on a fresh run
        st.rerun()
    if done.error is not None:
        results.show_error(done.error)
        return
    catalogues, capacity, columns = done.value
    if capacity <= 0:
        st.error("No replica fits in this pool (with these limits): the pool can serve 0 tokens/s.")
        return
    st.caption(f"{columns:,} replicas generated for the capacity question; the pool can serve at most "
               f"**{capacity:,.1f} tokens/s**.")
    demand = st.slider("Demand (tokens/s)", 0.0, float(capacity), float(round(capacity / 2, 1)), format="%.0f",
                       key="fleet_demand")  # whole tokens/s on screen; the value keeps its decimals
    solve_task = jobs.Task(base + ("solve", demand), f"fleet for {demand:,.0f} tokens/s",
                           lambda cancel, sc=sc, mix=mix, c=catalogues, d=demand: Fleet(sc, mix, catalogues=c).solve(d))
    curve_task = jobs.Task(base + ("curve",), "demand curve",
                           lambda cancel, sc=sc, mix=mix, c=catalogues: demand_curve(Fleet(sc, mix, catalogues=c)))
    g, lo, hi = price_inputs(sc)
    price_task = None
    if lo < hi:
        p0 = sc.pool.entry(g).spec.price_usd_per_hour
        price_task = jobs.Task(base + ("prices", demand, g, lo, hi), f"price sensitivity of {g}",
                               lambda cancel, c=catalogues: price_sensitivity(Fleet(sc, mix, catalogues=c), demand,
                                                                              g, lo * p0, hi * p0))
    got = dict(_run([t for t in (solve_task, curve_task, price_task) if t is not None], "fleet_solve"))
    fdone = got.get(solve_task.key)
    if fdone is not None:
        if fdone.error is not None:
            results.show_error(fdone.error)
        else:
            show_fleet(fdone.value)
    cdone = got.get(curve_task.key)
    if cdone is not None and cdone.error is None:
        st.subheader("Demand curve")
        st.caption(cdone.value.how)
        st.plotly_chart(curve_figure(cdone.value, demand), width="stretch", key="fleet_curve")
        formatted(curve_frame(cdone.value), "fleet_curve_table")
    st.subheader("Price sensitivity and spot")
    if price_task is None:
        st.info("Pick a price range with two different ends.")
    elif price_task.key in got:
        show_prices(sc, g, got[price_task.key])


def _run(tasks, ident):
    return ((t.key, d) for t, d in jobs.run(tasks, st.container(), auto=True, ident=ident))


def stage_inputs(sc) -> int:
    """The fleet's own stage limit per replica (default: the scenario's)."""
    c = st.columns([1, 3])
    max_stages = int(c[0].number_input("Max stages per replica", 1, 64, sc.settings.max_stages,
                                       key="fleet_max_stages"))
    c[1].caption("Replicas are generated as the solve needs them (column generation), so the stage limit no longer "
                 "multiplies the work by a list of every replica.")
    return max_stages


def _catalogue(sc, mix, cancel):
    fleet = Fleet(sc, mix, cancel)
    return fleet.catalogues, fleet.capacity()[0], fleet.catalogue_size


def show_fleet(plan) -> None:
    st.subheader("Fleet")
    c = st.columns(5)
    c[0].metric("Cost", f"${plan.cost_usd_per_hour:,.2f}/h")
    c[1].metric("Serves (tokens/s)", f"{plan.tokens_per_s:,.0f}")
    c[2].metric("$/M tokens", f"${plan.usd_per_million_tokens:.4f}")
    c[3].metric("Replicas", f"{plan.num_replicas}")
    c[4].metric("Optimal", "proven" if plan.proven_optimal else "not proven",
                help=f"solver status {plan.status}, gap on $/hour {plan.gap:.2%}")
    st.caption(f"{plan.how} · gap on $/hour {plan.gap:.2%} · GPUs used: "
               + ", ".join(f"{n}× {g}" for g, n in plan.gpus_by_type().items()))
    formatted(composition(plan), "fleet_composition")
    st.download_button("Download fleet.csv", fleet_csv(plan), "fleet.csv", "text/csv", key="fleet_download")


def price_inputs(sc):
    """The price what-if's inputs, drawn in the sidebar so that they exist before the solves run."""
    with st.sidebar:
        st.markdown("**Fleet price what-if**")
        g = st.selectbox("GPU type", sc.pool.types, key="fleet_price_type")
        lo, hi = st.slider("Price range (× list price; spot prices are below 1)", 0.0, 4.0, (0.25, 2.0), 0.05,
                           key="fleet_price_range")
    return g, lo, hi


def show_prices(sc, g, done) -> None:
    if done.error is not None:
        results.show_error(done.error)
        return
    res = done.value
    p0 = sc.pool.entry(g).spec.price_usd_per_hour
    fig = go.Figure(go.Scatter(x=[p.price for p in res.points], y=[p.cost_usd_per_hour for p in res.points],
                               mode="lines+markers", name="minimum $/hour"))
    fig.add_vline(x=p0, line=dict(color="#7f7f7f", dash="dot"))
    fig.update_layout(xaxis_title=f"{g} $/GPU-hour (spot or list)", yaxis_title="fleet $/hour", font=FONT,
                      height=340, margin=dict(l=10, r=10, t=30, b=10))
    st.plotly_chart(fig, width="stretch", key="fleet_price_chart")
    be = ", ".join(f"${p:.3f}" for p in res.break_even) or "none in this range"
    st.caption(f"Fleet $/hour against the price of {g} at this demand: linear between break-even prices (where the "
               f"optimal fleet changes): {be}. {res.solves} exact solves; "
               + ("proven." if res.proven else "not all proven."))
    formatted(pd.DataFrame([{"price ($/GPU-hour)": p.price, "fleet $/h": p.cost_usd_per_hour, f"{g} GPUs": p.type_gpus}
                            for p in res.points]), "fleet_price_table")
