"""What-if page: the current scenario's Pareto frontier, single-type baselines, price sensitivity,
quantization loss, spot prices and availability caps, and latency SLOs.

Every figure is an exact re-solve by planner.whatif / planner.whatif_prices, run in a worker process
(ui/whatif_jobs.py) and stored by scenario texts and parameters. Only the open tab is computed: on small
scenarios at once, on larger ones when "Run analysis" is pressed."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from planner import InputError, Planner, Problem, Scenario
from planner import whatif as W
from planner import whatif_prices as P
from planner.plan import Plan

from . import charts, results, solver, state
from . import scenario_texts as T
from . import whatif_charts as WC
from . import whatif_jobs as jobs
from .text import md
from .whatif_charts import usd_m

# Above this many stage options an analysis waits for "Run analysis". The realistic scenarios (1,841 options
# on `realistic`) are below it: their analyses take seconds (each CLI command <= 20 s there) and show
# progress while they run; the 37,225-option stress test `xl` waits for the click.
AUTO_MAX_OPTIONS = 5000
TABS = ("Pareto frontier", "Single-type baselines", "Price sensitivity", "Quantization loss", "Spot & availability",
        "Latency SLOs")
# widget values kept across page switches (Streamlit drops the state of widgets that are not drawn)
KEYS = {"wf_tab": TABS[0], "wf_percent": 20, "wf_sweep_type": None, "wf_sweep_range": (50, 150),
        "wf_sweep_points": 11, "wf_ttft": None, "wf_tpot": None, "wf_spot_fill": 60}


@dataclass(frozen=True)
class Ctx:
    sc: Scenario
    texts_key: tuple
    cat_key: tuple
    base: jobs.BaseResult
    auto: bool
    why_not_auto: str

    def key(self, *parts) -> tuple:
        return (self.texts_key, self.cat_key, *parts)


# ------------------------------------------------------------------ tables (pure: library rows in, frames out)
def ms(seconds: float) -> float:
    return seconds * 1e3


def plan_frame(plan: Plan) -> pd.DataFrame:
    return pd.DataFrame([{
        "stage": s.index, "layers": f"{s.first_layer}-{s.last_layer} ({s.num_layers})", "GPU type": s.gpu_type,
        "TP": s.tp, "tokens/s": round(s.tokens_per_s), "$/h": s.cost_usd_per_hour, "prefill (ms)": ms(s.prefill_s),
        "decode step (ms)": ms(s.decode_step_s), "memory (GB/GPU)": f"{s.memory_gb_per_gpu:.1f} of {s.capacity_gb:.1f}",
        "bound": s.bound} for s in plan.stages])


def frontier_frame(fr: W.Frontier) -> pd.DataFrame:
    return pd.DataFrame([{
        "plan": i + 1, "min $/token": p.min_usd_per_token, "$/h": p.cost_usd_per_hour, "tokens/s": round(p.tokens_per_s),
        "$/M tokens": p.usd_per_million_tokens, "stages": p.stages, "GPUs": p.gpus,
        "GPUs by type": ", ".join(f"{g} ×{n}" for g, n in p.gpus_by_type), "TTFT (s)": p.plan.ttft_s,
        "TPOT (ms)": ms(p.plan.tpot_s), "grid budgets ($/h)": ", ".join(f"{b:,.2f}" for b in p.grid_budgets_usd_per_hour),
        "layout": p.layout} for i, p in enumerate(fr.points)])


def baseline_frame(b: W.Baselines) -> pd.DataFrame:
    rows = []
    for x in (b.mixed, *b.singles):
        h = x.headline
        rows.append({
            "GPUs allowed": "mixed pool" if x.gpu_type == "mixed" else f"{x.gpu_type} only", "count": x.count,
            "$/GPU-hour": x.price_usd_per_hour, "$/M tokens": h.usd_per_million_tokens if h else None,
            "vs mixed (%)": x.vs_mixed_pct, "tokens/s": round(h.tokens_per_s) if h else None,
            "$/h": h.cost_usd_per_hour if h else None, "GPUs used": h.gpus if h else None,
            "TTFT (s)": h.plan.ttft_s if h else None, "TPOT (ms)": ms(h.plan.tpot_s) if h else None,
            "layout": h.layout if h else "cannot host the model alone"})
    return pd.DataFrame(rows)


def tornado_frame(t: P.Tornado) -> pd.DataFrame:
    p = f"{t.percent:g}%"
    return pd.DataFrame([{
        "GPU type": r.gpu_type, "$/GPU-hour now": r.price_usd_per_hour,
        f"$/GPU-hour at −{p}": r.low_price_usd_per_hour, f"$/M tokens at −{p}": r.low.usd_per_million_tokens if r.low else None,
        f"plan changes at −{p}": r.low_plan_changed,
        f"$/GPU-hour at +{p}": r.high_price_usd_per_hour,
        f"$/M tokens at +{p}": r.high.usd_per_million_tokens if r.high else None,
        f"plan changes at +{p}": r.high_plan_changed, "swing ($/M tokens)": r.swing_usd_per_million_tokens,
        "note": r.note} for r in t.rows])


def break_even_frame(rows) -> pd.DataFrame:
    return pd.DataFrame([{
        "GPU type": b.gpu_type, "$/GPU-hour now": b.price_usd_per_hour, "in the optimal plan now": b.in_plan_now,
        "break-even ($/GPU-hour)": b.break_even_usd_per_hour,
        "vs now (%)": (b.break_even_usd_per_hour / b.price_usd_per_hour - 1) * 100
        if b.break_even_usd_per_hour is not None else None,
        "best $/M tokens without it": b.without_usd_per_million_tokens, "exact": b.exact, "re-solves": b.solves,
        "meaning": b.meaning} for b in rows])


def sweep_frame(s: P.PriceSweep) -> pd.DataFrame:
    return pd.DataFrame([{
        f"{s.gpu_type} $/GPU-hour": p.price_usd_per_hour,
        "$/M tokens": p.headline.usd_per_million_tokens if p.headline else None,
        "tokens/s": round(p.headline.tokens_per_s) if p.headline else None,
        f"{s.gpu_type} GPUs": p.gpus_of_type, "plan changed": p.plan_changed,
        "layout": p.headline.layout if p.headline else p.reason} for p in s.points])


def change_frame(s: P.PriceSweep) -> pd.DataFrame:
    return pd.DataFrame([{
        "change": k + 1, "at ($/GPU-hour)": f"{c.price_usd_per_hour:.4f}" if c.price_usd_per_hour is not None else
        "tie" if c.how.startswith("tie") else "between the points", "between ($/GPU-hour)":
        f"{c.low_usd_per_hour:.3f} – {c.high_usd_per_hour:.3f}", "from": c.from_layout, "to": c.to_layout,
        "how": c.how} for k, c in enumerate(s.changes)])


def quantization_frame(q: W.QuantizationStudy) -> pd.DataFrame:
    return pd.DataFrame([{
        "level": r.level + (" (reference)" if r.level == q.reference else ""), "loss vs reference (%)": r.loss_pct,
        "$/M tokens": r.headline.usd_per_million_tokens if r.headline else None,
        "tokens/s": round(r.headline.tokens_per_s) if r.headline else None, "stage options": r.options,
        "MILP integers": r.milp_integers, "solve time (s)": r.seconds, "status": r.status,
        "segment sizes": len(r.sizes), "sizes (layers)": ", ".join(map(str, r.sizes)) if len(r.sizes) <= 12 else
        f"{', '.join(map(str, r.sizes[:10]))}, … {r.sizes[-1]}", "note": r.note} for r in q.rows])


FIGURES = {  # figure -> (label, how a value is shown)
    "usd_per_million_tokens": ("$ per million tokens", usd_m),
    "tokens_per_s": ("tokens per second", lambda v: f"{v:,.0f}"),
    "cost_usd_per_hour": ("cost per hour", lambda v: f"${v:,.2f}/h"),
    "stages": ("pipeline stages", str), "gpus": ("GPUs used", str), "concurrency": ("sequences in flight", str),
    "ttft_s": ("TTFT (time to first token)", lambda v: f"{v:,.2f} s"),
    "tpot_ms": ("TPOT (time per output token)", lambda v: f"{v:,.1f} ms"),
}


def figures_frame(c: W.Comparison, a_label: str, b_label: str) -> pd.DataFrame:
    """Headline figures side by side (the library's figure_rows) plus the plans' TTFT and TPOT; the layout
    (or why there is no plan) last."""
    rows = [r for r in c.figure_rows() if r["figure"] != "layout"]
    for fig, get in (("ttft_s", lambda h: h.plan.ttft_s), ("tpot_ms", lambda h: ms(h.plan.tpot_s))):
        va, vb = (get(h) if h else None for h in (c.a, c.b))
        rows.append({"figure": fig, "a": va, "b": vb,
                     "change_pct": W.pct_change(vb, va) if va and vb is not None else None})
    out = []
    for r in rows:
        label, show = FIGURES[r["figure"]]
        out.append({"figure": label, a_label: "no plan" if r["a"] is None else show(r["a"]),
                    b_label: "no plan" if r["b"] is None else show(r["b"]), "change (%)": r["change_pct"]})
    out.append({"figure": "layout", a_label: c.a.layout if c.a else c.reason_a,
                b_label: c.b.layout if c.b else c.reason_b, "change (%)": None})
    return pd.DataFrame(out)


def differences_frame(c: W.Comparison, a_label: str, b_label: str) -> pd.DataFrame:
    return pd.DataFrame([{"section": d.section, "input": d.item, a_label: d.a, b_label: d.b}
                         for d in c.differences], columns=["section", "input", a_label, b_label])


NUM = st.column_config.NumberColumn


def table(df: pd.DataFrame, key: str | None = None, **formats) -> None:
    """A dataframe whose columns named in `formats` get that printf format (e.g. usd='%.4f')."""
    config = {}
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            continue
        if "$/M" in col:
            config[col] = NUM(format="$%.4f")
        elif col == "$/h":
            config[col] = NUM(format="$%.2f")
        elif "$/" in col:
            config[col] = NUM(format="$%.3f")
        elif col == "tokens/s" or col in ("stage options", "MILP integers", "re-solves"):
            config[col] = NUM(format="localized")
        elif col.endswith("(%)"):
            config[col] = NUM(format="%+.2f")
        elif col.endswith("(s)"):
            config[col] = NUM(format="%.2f")
        elif col.endswith("(ms)"):
            config[col] = NUM(format="%.1f")
    config.update({c: NUM(format=f) for c, f in formats.items()})
    st.dataframe(df, hide_index=True, width="stretch", placeholder="–", column_config=config, key=key)


# ------------------------------------------------------------------ page
def render() -> None:
    s = st.session_state
    saved = s.setdefault("_whatif", {})
    for k, default in KEYS.items():
        if k not in s:
            s[k] = saved.get(k, default)
        saved[k] = s[k]  # now: a long analysis may be cut short by leaving the page
    st.title("What-if analysis")
    sc, err = state.current_scenario()
    texts, name = s["texts"], s["scenario_name"]
    if err is not None:
        good = s.get("_whatif_good")
        results.show_error(err)
        if good is None:
            st.info("Fix the scenario on the **Planner** page; the analyses run on it once it parses.")
            return
        texts, name = good
        st.warning(f"The current edits do not parse: analysing the last valid version of **{md(name)}**.",
                   icon=":material/warning:")
        sc = solver.scenario(T.texts_key(texts), name, state.cat_key())
        if isinstance(sc, InputError):  # the catalogue changed since
            results.show_error(sc)
            return
    else:
        s["_whatif_good"] = (texts, name)
    key, ckey = T.texts_key(texts), state.cat_key()
    pool = ", ".join(f"{e.count}× {e.name} (${e.spec.price_usd_per_hour:.3f}/h)" for e in sc.pool.entries)
    st.caption(f"Scenario **{name}** (the one the Planner page shows; edit it there) · model {sc.model.name}, "
               f"{sc.model.num_layers} layers · {sc.workload.input_tokens} input + {sc.workload.output_tokens} output "
               f"tokens per request · pool: {pool} · $/token counts {sc.workload.token_basis} tokens.")
    main = solver.results().get((key, ckey, "exact"))
    if main is not None and main.error is not None:
        results.show_error(main.error)
        st.info("The scenario has no feasible plan, so there is nothing to analyse: change it on the Planner page.")
        return
    if main is not None:
        headline(main.result.plan)
    else:
        st.caption("The Planner page has not solved this scenario yet; the analyses solve it themselves.")
    cs = solver.candidates(key, name, ckey)
    if isinstance(cs, InputError):
        results.show_error(cs)
        return
    n = len(cs.options)
    ctx = Ctx(sc, key, ckey, jobs.BaseResult(sc, main.result if main else None), n <= AUTO_MAX_OPTIONS,
              f"This scenario has {n:,} stage options (above {AUTO_MAX_OPTIONS:,}), so its analyses, each many exact "
              "re-solves, run on request.")
    tabs = st.tabs(TABS, key="wf_tab", on_change="rerun")
    for tab, draw in zip(tabs, (frontier_tab, baselines_tab, sensitivity_tab, quantization_tab, spot_tab, slo_tab)):
        with tab:
            if tab.open:
                draw(ctx)


def headline(plan: Plan) -> None:
    st.markdown("**Current optimum** (exact, as on the Planner page)")
    c = st.columns(6)
    c[0].metric("$ per million tokens", usd_m(plan.usd_per_million_tokens))
    c[1].metric("Tokens per second", f"{plan.tokens_per_s:,.0f}")
    c[2].metric("Cost per hour", f"${plan.cost_usd_per_hour:,.2f}/h")
    c[3].metric("GPUs used", f"{plan.num_gpus}")
    c[4].metric("TTFT", f"{plan.ttft_s:,.2f} s", help="time to first token: one microbatch's prefill through every "
                "stage (no queueing, no stage-to-stage transfer)")
    c[5].metric("TPOT", f"{ms(plan.tpot_s):,.1f} ms", help="time per output token: stages × the slowest decode step")


def not_proven(proof: dict) -> None:
    """A warning naming the solves a limit stopped (`whatif.proof`): their figures are not proven optimal."""
    if proof["proven_optimal"]:
        return
    lines = [f"- {b['what']}: " + (f"at most {b['gap']:.1%} above the minimum $/token; " if b.get("gap") is not None
                                   else "") + "; ".join(b["limits"]) for b in proof["not_proven"]]
    st.warning("**Not proven optimal**: a solve stopped at its time limit (raise it in the settings).\n"
               + "\n".join(lines), icon=":material/warning:")


def sections(n: int):
    return st.container(), [st.container() for _ in range(n)]


# ------------------------------------------------------------------ 1. frontier
def frontier_tab(ctx: Ctx) -> None:
    st.caption("Every plan that no other plan beats on both cost and throughput (exact, not a grid), the "
               "minimum-$/token plan, and where the enumeration method's budget grid lands. Click a point or "
               "pick a plan to see its layout.")
    controls, (box,) = sections(1)
    sc = ctx.sc
    task = jobs.Task(ctx.key("pareto"), "Pareto frontier and budget grid", lambda c: W.pareto(sc, cancel=c))
    for _, done in jobs.run([task], controls, auto=ctx.auto, ident="frontier", why_not_auto=ctx.why_not_auto):
        with box:
            show_frontier(ctx, done)


def _picked_point(fr: W.Frontier, event) -> int | None:
    """The frontier plan of a clicked point (any trace: grid plans and markers sit on frontier points)."""
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", []) or []
    for p in points:
        x, y = p.get("x"), p.get("y")
        for i, q in enumerate(fr.points):
            if x is not None and y is not None and math.isclose(q.cost_usd_per_hour, x, rel_tol=1e-6) \
                    and math.isclose(q.tokens_per_s, y, rel_tol=1e-6):
                return i
    return None


def show_frontier(ctx: Ctx, done: jobs.Done) -> None:
    s = st.session_state
    if done.error is not None:
        results.show_error(done.error)
        return
    fr: W.Frontier = done.value
    not_proven({"proven_optimal": fr.proven_optimal,
                "not_proven": [{"what": "the frontier sweep", "gap": fr.gap, "limits": list(fr.limits)}]})
    c = st.columns(4)
    c[0].metric("Frontier plans", f"{len(fr.points)}")
    c[1].metric("Minimum $ per million tokens", usd_m(fr.best.usd_per_million_tokens))
    c[2].metric("Cheapest plan ($/h)", f"${fr.points[0].cost_usd_per_hour:,.2f}",
                help=f"{fr.points[0].tokens_per_s:,.0f} tokens/s")
    c[3].metric("Fastest plan (tokens/s)", f"{fr.points[-1].tokens_per_s:,.0f}",
                help=f"${fr.points[-1].cost_usd_per_hour:,.2f}/h")
    picked = _picked_point(fr, s.get("wf_frontier_chart"))
    if picked is not None and picked != s.get("_wf_last_pick"):
        s["wf_point"] = picked
    s["_wf_last_pick"] = picked
    if s.get("wf_point") not in range(len(fr.points)):
        s["wf_point"] = fr.best_index
    st.plotly_chart(WC.frontier_figure(fr, s["wf_point"]), width="stretch", key="wf_frontier_chart",
                    on_select="rerun", selection_mode="points")
    on = [g for g in fr.grid if g.frontier_index is not None]
    off = [g for g in fr.grid if g.frontier_index is None and g.cost_usd_per_hour is not None]
    none = [g for g in fr.grid if g.cost_usd_per_hour is None]
    grid_text = (f"Enumeration grid: {len(fr.grid)} budgets, {len(on)} land on the frontier"
                 + (f", {len(off)} off it (solved to the MIP gap)" if off else "")
                 + (f", {len(none)} without a plan ({', '.join(f'${g.budget_usd_per_hour:,.2f}/h' for g in none)})"
                    if none else "") + ".") if fr.grid else "No enumeration grid."
    st.caption(f"{grid_text} The dotted line is every (cost, throughput) with the optimum's $/token: no plan lies "
               f"above it. The staircase is the best throughput within a budget. Found in {fr.seconds:.1f} s.")
    pts = fr.points
    st.selectbox("Frontier plan to show", list(range(len(pts))), key="wf_point", format_func=lambda i: (
        f"plan {i + 1}: ${pts[i].cost_usd_per_hour:,.2f}/h, {pts[i].tokens_per_s:,.0f} tokens/s, "
        f"{usd_m(pts[i].usd_per_million_tokens)}/M tokens" + (" — minimum $/token" if pts[i].min_usd_per_token else "")))
    p = pts[s["wf_point"]]
    st.markdown(f"**Plan {s['wf_point'] + 1}**: {md(p.layout)} · {p.stages} stages, {p.gpus} GPUs "
                f"({md(', '.join(f'{g} ×{n}' for g, n in p.gpus_by_type))}), {p.concurrency} sequences in flight · "
                f"TTFT {p.plan.ttft_s:,.2f} s, TPOT {ms(p.plan.tpot_s):,.1f} ms")
    st.plotly_chart(charts.layout_figure(p.plan, ctx.sc.model.num_layers), width="stretch", key="wf_layout_chart")
    table(plan_frame(p.plan))
    st.markdown("**All frontier plans**")
    table(frontier_frame(fr), key="wf_frontier_table")


# ------------------------------------------------------------------ 2. baselines
def baselines_tab(ctx: Ctx) -> None:
    st.caption("The proven-best plan on each GPU type alone beside the mixed-pool optimum. A single-type plan is "
               "also a plan of the mixed pool, so mixing is never dearer; this says by how much it is cheaper.")
    controls, (box,) = sections(1)
    sc, base = ctx.sc, ctx.base
    task = jobs.Task(ctx.key("baselines"), "Single-type baselines",
                     lambda c: W.baselines(sc, base.get(c), cancel=c))
    for _, done in jobs.run([task], controls, auto=ctx.auto, ident="baselines", why_not_auto=ctx.why_not_auto):
        with box:
            if done.error is not None:
                results.show_error(done.error)
                continue
            b: W.Baselines = done.value
            not_proven(W.proof([("mixed pool", b.mixed.headline)] + [(f"{x.gpu_type} alone", x.headline)
                                                                       for x in b.singles]))
            if b.savings_pct:
                st.success(md(b.verdict[0].upper() + b.verdict[1:]), icon=":material/savings:")
            else:
                st.info(md(b.verdict[0].upper() + b.verdict[1:]), icon=":material/info:")
            st.plotly_chart(WC.baselines_figure(b), width="stretch", key="wf_baselines_chart")
            table(baseline_frame(b), key="wf_baselines_table")
            for x in b.singles:
                if x.headline is None:
                    st.caption(f"**{md(x.gpu_type)} alone**: {md(x.reason)}")


# ------------------------------------------------------------------ 3. sensitivity
def sensitivity_tab(ctx: Ctx) -> None:
    s = st.session_state
    sc, base = ctx.sc, ctx.base
    types = list(sc.pool.types)
    if s.get("wf_sweep_type") not in types:
        s["wf_sweep_type"] = types[0]
    c1, c2, c3, c4 = st.columns([2, 1.3, 2, 1])
    c1.slider("Price move for the tornado (± %)", 1, 90, key="wf_percent",
              help="each GPU type's hourly price is moved down and up by this much, one type at a time, and the "
                   "optimum re-solved exactly")
    c2.selectbox("Sweep the price of", types, key="wf_sweep_type")
    c3.slider("Sweep range (% of its current price)", 5, 300, key="wf_sweep_range", step=5)
    c4.number_input("Sweep points", min_value=3, max_value=41, key="wf_sweep_points")
    pct, gt, (lo_pct, hi_pct), n = s["wf_percent"], s["wf_sweep_type"], s["wf_sweep_range"], int(s["wf_sweep_points"])
    price = sc.pool.entry(gt).spec.price_usd_per_hour
    lo, hi = price * lo_pct / 100, price * hi_pct / 100
    tasks = [jobs.Task(ctx.key("tornado", pct), f"Tornado (±{pct}%)",
                       lambda c: P.tornado(sc, pct, base.get(c), cancel=c))]
    tasks += [jobs.Task(ctx.key("break-even", g), f"Break-even price of {g}",
                        lambda c, g=g: P.break_even(sc, g, base.get(c), cancel=c)) for g in types]
    if hi > lo:
        tasks.append(jobs.Task(ctx.key("sweep", gt, lo, hi, n), f"Price sweep of {gt}",
                               lambda c: P.price_sweep(sc, gt, lo, hi, n, cancel=c)))
    controls = st.container()
    st.subheader("Tornado: optimal $/token when one price moves")
    tornado_box = st.container()
    st.subheader("Break-even prices")
    st.caption("The price at which a GPU type enters (below it) or leaves (above it) the optimal plan, found "
               "exactly: a plan's $/token is a straight line in one type's price.")
    be_box = st.empty()
    st.subheader(f"Sweep of {md(gt)}'s price")
    sweep_box = st.container()
    if hi <= lo:
        sweep_box.warning("The sweep range is empty: move its two ends apart.")
    bes = {}
    for task, done in jobs.run(tasks, controls, auto=ctx.auto, ident="sensitivity", why_not_auto=ctx.why_not_auto):
        kind = task.key[2]
        if kind == "tornado":
            with tornado_box:
                show_tornado(done)
        elif kind == "break-even":
            bes[task.key[3]] = done
            with be_box.container():
                show_break_evens(types, bes)
        else:
            with sweep_box:
                show_sweep(done, price)


def show_tornado(done: jobs.Done) -> None:
    if done.error is not None:
        results.show_error(done.error)
        return
    t: P.Tornado = done.value
    not_proven(W.proof([("base optimum", t.base)] + [(f"{r.gpu_type} {side}", h) for r in t.rows
                                                      for side, h in (("low", r.low), ("high", r.high))]))
    st.plotly_chart(WC.tornado_figure(t), width="stretch", key="wf_tornado_chart")
    st.caption(f"Optimum now {usd_m(t.base.usd_per_million_tokens)} per million tokens. Widest swing first; hover a "
               "bar for the plan at that price.")
    table(tornado_frame(t), key="wf_tornado_table")


def show_break_evens(types: list[str], bes: dict[str, jobs.Done]) -> None:
    rows = [bes[g].value for g in types if g in bes and bes[g].error is None]
    if rows:
        table(break_even_frame(rows), key="wf_break_even_table")
        for b in rows:
            st.markdown(f"- {md(b.meaning)}" + ("" if b.exact else " *(not exact: a solve stopped at its time limit)*"))
    for g in types:
        if g in bes and bes[g].error is not None:
            st.caption(f"{md(g)}:")
            results.show_error(bes[g].error)
    pending = [g for g in types if g not in bes]
    if pending:
        st.caption(f"Still to solve: {md(', '.join(pending))}.")


def show_sweep(done: jobs.Done, price: float) -> None:
    if done.error is not None:
        results.show_error(done.error)
        return
    sw: P.PriceSweep = done.value
    st.plotly_chart(WC.sweep_figure(sw, price), width="stretch", key="wf_sweep_chart")
    how = ("exact change prices (where two plans' lines cross)" if sw.exact_changes else
           "changes located between sweep points (the hourly budget cap can bind)")
    st.caption(f"{len(sw.points)} prices, {len(sw.changes)} plan change(s), {how}; {sw.solves} exact re-solves.")
    if sw.changes:
        table(change_frame(sw), key="wf_changes_table")
    with st.expander("Every sweep point"):
        table(sweep_frame(sw), key="wf_sweep_table")


# ------------------------------------------------------------------ 4. quantization
def quantization_tab(ctx: Ctx) -> None:
    st.caption("The scenario solved exactly with each named segment-size set (coarse = the seed's 1, 5, 10, 20, 30, "
               "40 layers; full = every size 1..L). The seed claims its coarse set gives \"<5% quality loss\" and "
               "\"95-98% of optimal\"; here is the real figure for this scenario.")
    sc = ctx.sc
    if sc.settings.sizes is not None:
        st.caption(f"This scenario sets its own segment sizes ({', '.join(map(str, sc.settings.sizes))}); each level "
                   "below replaces them.")
    controls, (box,) = sections(1)
    task = jobs.Task(ctx.key("quantization"), "Quantization levels coarse / fine / even / full",
                     lambda c: W.quantization_loss(sc, cancel=c))
    for _, done in jobs.run([task], controls, auto=ctx.auto, ident="quantization", why_not_auto=ctx.why_not_auto):
        with box:
            if done.error is not None:
                results.show_error(done.error)
                continue
            q: W.QuantizationStudy = done.value
            not_proven(W.proof([(f"{r.level} sizes", r.headline) for r in q.rows]))
            coarse = next((r for r in q.rows if r.level == "coarse" and r.loss_pct is not None), None)
            if coarse is not None and q.reference != "coarse":
                share = 100 / (1 + coarse.loss_pct / 100)
                exact = " (every size: the true optimum)" if q.reference == "full" else \
                    " (the finest level solved; full was skipped, so the true optimum may be lower still)"
                st.info(f"Coarse segment sizes cost **{coarse.loss_pct:+.2f}%** per token against **{md(q.reference)}**"
                        f"{exact}: coarse reaches **{share:.1f}%** of its tokens per dollar.", icon=":material/straighten:")
            st.markdown(f"**Summary:** {md(q.summary)}.")
            table(quantization_frame(q), key="wf_quantization_table")
            st.caption("Solve time = candidate generation + MILP build + every exact solve of that level, in the "
                       "analysis worker. Levels above 10,000 stage options are skipped (their MILP is slow to build).")


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


# ------------------------------------------------------------------ 6. latency SLOs
def slo_tab(ctx: Ctx) -> None:
    s = st.session_state
    sc, base = ctx.sc, ctx.base
    st.caption("Limit the time to first token (TTFT: one microbatch's prefill through every stage) and the time "
               "per output token (TPOT: stages × the slowest decode step), enforced inside the MILP. Queueing and "
               "stage-to-stage transfer are not included. Leave a box empty for no limit.")
    own = [f"{k} {v:g} ms" for k, v in (("TTFT", sc.settings.max_ttft_ms), ("TPOT", sc.settings.max_tpot_ms)) if v]
    if own:
        st.caption(f"The scenario itself already limits {', '.join(own)}; the values here replace them.")
    c1, c2, _ = st.columns([1, 1, 2])
    c1.number_input("Max TTFT (ms)", min_value=0.0, step=100.0, key="wf_ttft", placeholder="no limit")
    c2.number_input("Max TPOT (ms)", min_value=0.0, step=5.0, key="wf_tpot", placeholder="no limit")
    ttft, tpot = s["wf_ttft"], s["wf_tpot"]
    try:
        slo = replace(sc, name=f"{sc.name} (SLO)", settings=replace(sc.settings, max_ttft_ms=ttft or None,
                                                                     max_tpot_ms=tpot or None))
    except InputError as exc:
        results.show_error(exc)
        return
    controls, (box,) = sections(1)
    tasks, got = [], {}
    if base.result is not None:
        got["exact"] = jobs.Done(base.result)
    else:
        tasks.append(jobs.Task(ctx.key("exact"), "Current optimum", lambda c: base.get(c)))
    if ttft or tpot:
        tasks.append(jobs.Task(ctx.key("slo", ttft or None, tpot or None), "Optimum under the SLOs",
                               lambda c: Planner(slo, cancel=c).exact()))
    for task, done in jobs.run(tasks, controls, auto=ctx.auto, ident="slo", why_not_auto=ctx.why_not_auto):
        got[task.key[2]] = done
    with box:
        now = got.get("exact")
        if now is not None and now.error is not None:
            results.show_error(now.error)
            return
        if not (ttft or tpot):
            if now is not None:
                p = now.value.plan
                st.info(f"The current optimum has TTFT **{p.ttft_s:,.2f} s** and TPOT **{ms(p.tpot_s):,.1f} ms**. "
                        "Set a limit to see the cheapest plan that meets it.")
            return
        limited = got.get("slo")
        if limited is None or now is None:
            return
        if limited.error is not None:
            results.show_error(limited.error)
            return
        comp = W.Comparison(sc.name, slo.name, W.scenario_differences(sc, slo), W.Headline.of(now.value),
                            W.Headline.of(limited.value), "", "")
        ratio = W.pct_change(comp.b.usd_per_million_tokens, comp.a.usd_per_million_tokens)
        if W.same(comp.a.usd_per_million_tokens, comp.b.usd_per_million_tokens):
            st.success("The current optimum already meets these limits: they cost nothing.", icon=":material/check_circle:")
        else:
            st.warning(f"Meeting these limits costs **{ratio:+.1f}%** per token.", icon=":material/timer:")
        table(figures_frame(comp, "no SLO", "with SLO"), key="wf_slo_figures")
        show_layouts(ctx, comp, ("no SLO", "with SLO"), "slo")
