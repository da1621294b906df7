"""What-if page: the current scenario's Pareto frontier, single-type baselines, price sensitivity,
quantization loss, spot prices and availability caps, and latency SLOs.

Every figure is an exact re-solve by planner.whatif / planner.whatif_prices, run in a worker process
(ui/whatif_jobs.py) and stored by scenario texts and parameters. Only the open tab is computed: on small
scenarios at once, on larger ones when "Run analysis" is pressed."""
from __future__ import annotations

import math
from dataclasses import replace

import streamlit as st

from planner import InputError, Planner
from planner import whatif as W
from planner import whatif_prices as P
from planner.plan import Plan

from . import charts, results, solver, state
from . import scenario_texts as T
from . import whatif_charts as WC
from . import whatif_jobs as jobs
from .text import TPOT_HELP, TTFT_HELP, md
from .whatif_charts import usd_m
from .whatif_ctx import Ctx
from .whatif_spot import show_layouts, spot_tab
from .whatif_tables import (baseline_frame, break_even_frame, change_frame, figures_frame,
                            frontier_frame, ms, not_proven, plan_frame, quantization_frame, sections, sweep_frame, table,
                            tornado_frame)

# Above this many stage options an analysis waits for "Run analysis". The realistic scenarios (1,841 options
# on `realistic`) are below it: their analyses take seconds (each CLI command <= 20 s there) and show
# progress while they run; the 37,225-option stress test `xl` waits for the click.
AUTO_MAX_OPTIONS = 5000
TABS = ("Pareto frontier", "Single-type baselines", "Price sensitivity", "Quantization loss", "Spot & availability",
        "Latency SLOs")
# widget values kept across page switches (Streamlit drops the state of widgets that are not drawn)
KEYS = {"wf_tab": TABS[0], "wf_percent": 20, "wf_sweep_type": None, "wf_sweep_range": (50, 150),
        "wf_sweep_points": 11, "wf_ttft": None, "wf_tpot": None, "wf_spot_fill": 60}


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
    c[4].metric("TTFT", f"{plan.ttft_s:,.2f} s", help=TTFT_HELP)
    c[5].metric("TPOT", f"{ms(plan.tpot_s):,.1f} ms", help=TPOT_HELP)


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


# ------------------------------------------------------------------ 6. latency SLOs
def slo_tab(ctx: Ctx) -> None:
    s = st.session_state
    sc, base = ctx.sc, ctx.base
    st.caption("Limit the time to first token (TTFT) and the time per output token (TPOT), enforced inside the "
               "MILP, as a server under continuous batching sees them (hover the headline's figures for how each "
               "is estimated). Leave a box empty for no limit.")
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
