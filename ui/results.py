"""Rendering a solve: headline metrics, plateau curve, layout views, stage table, downloads."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from planner import InfeasibleError, InputError, PlannerError, Result, Scenario, SolverError
from planner import report

from . import charts, uncertainty_view
from .solver import Outcome
from .text import md, md_lines


def plan_csv(result: Result) -> str:
    """Exactly what the CLI writes as plan.csv."""
    return report.to_csv(report.plan_rows(result.plan), report.PLAN_COLUMNS)


def fmt_usd_m(x: float) -> str:
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"


def show_error(err: PlannerError) -> None:
    if isinstance(err, InputError):
        lines = md_lines(err.problems)
        st.error(f"**The scenario has problems** ({len(err.problems)}):\n{lines}", icon="🚫")
    elif isinstance(err, InfeasibleError):
        msg = "**No plan satisfies the limits.**"
        if err.binding:
            msg += "\n\nBinding:\n" + md_lines(err.binding)
        if err.hints:
            msg += "\n\nTo make it feasible:\n" + md_lines(err.hints)
        st.error(msg, icon="🚫")
    elif isinstance(err, SolverError):
        st.error(f"**The solver failed** ({md(err.status or 'no status')}): {md(err)}", icon="🚫")
    else:
        st.error(f"**{type(err).__name__}**: {md(err)}", icon="🚫")


def headline(outcome: Outcome, exact: Outcome | None) -> None:
    r = outcome.result
    p = r.plan
    basis = "output tokens" if p.token_basis == "output" else "tokens"
    c = st.columns(6)
    c[0].metric(f"$ per million {basis}", fmt_usd_m(p.usd_per_million_tokens), help="cost per hour / billable "
                "tokens per hour × 10⁶")
    c[1].metric("Tokens per second", f"{p.tokens_per_s:,.0f}",
                help=f"input + output tokens per second; {p.output_tokens_per_s:,.0f} output tokens/s")
    c[2].metric("Cost per hour", f"${p.cost_usd_per_hour:,.2f}/h")
    c[3].metric("GPUs used", f"{p.num_gpus}", help=", ".join(f"{md(k)}: {v}" for k, v in p.gpus_by_type().items()))
    c[4].metric("Pipeline stages", f"{len(p.stages)}",
                help=f"{p.concurrency} sequences in flight, microbatches of {p.microbatch}; time to first token "
                     f"{p.ttft_s * 1e3:,.0f} ms, time per output token {p.tpot_s * 1e3:,.1f} ms (model estimates)")
    c[5].metric("Proven optimal", "yes" if r.proven_optimal else "no",
                help="exact method with every MILP solved to optimality" if r.proven_optimal else md(r.how))
    if r.method != "exact" and exact is not None:
        e1, e2, e3 = st.columns([1.3, 1.5, 3])
        if exact.result is not None:
            best = exact.result.plan
            gap = (p.usd_per_million_tokens / best.usd_per_million_tokens - 1) * 100
            e1.metric("Exact optimum", fmt_usd_m(best.usd_per_million_tokens),
                      help=f"{best.tokens_per_s:,.0f} tokens/s at ${best.cost_usd_per_hour:.2f}/h")
            e2.metric(f"{r.method.capitalize()} vs exact", f"{gap:+.2f} %",
                      delta=f"{p.usd_per_million_tokens - best.usd_per_million_tokens:+.4f} $/M",
                      delta_color="inverse")
            e3.caption(f"The {r.method} method is a heuristic for $/token; the exact method's proven minimum is "
                       f"{fmt_usd_m(best.usd_per_million_tokens)} per million tokens.")
        elif exact.error is not None:
            e3.caption(f"Exact optimum not available: {md(exact.error)}")


def solver_line(outcome: Outcome) -> str:
    r = outcome.result
    gap = "n/a" if not math.isfinite(r.gap) else f"{r.gap * 100:.3g} %"
    on = "gap on $/token (proven bound)" if r.extra.get("gap_on") == "usd_per_token" else "MIP gap"
    return (f"Solver status **{md(r.status)}**, {md(on)} {gap}, time {r.solve_seconds + r.build_seconds:.2f} s "
            f"(HiGHS {r.solve_seconds:.2f} s, model build {r.build_seconds:.2f} s; wall {outcome.seconds:.2f} s). "
            f"{md(r.how)}. Latency (model estimates): time to first token {r.plan.ttft_s * 1e3:,.0f} ms, time per "
            f"output token {r.plan.tpot_s * 1e3:,.1f} ms; {r.plan.concurrency} sequences in flight in microbatches "
            f"of {r.plan.microbatch}.")


def gpu_range(ids: tuple[str, ...]) -> str:
    """gpu_0 … gpu_7 for a consecutive run (a TP group of 8 ids does not fit a table cell)."""
    nums = [int(i.rsplit("_", 1)[1]) for i in ids if i.rsplit("_", 1)[-1].isdigit()]
    if len(nums) == len(ids) > 2 and nums == list(range(nums[0], nums[0] + len(nums))):
        return f"{ids[0]} … {ids[-1]}"
    return " ".join(ids)


def stage_frame(result: Result) -> pd.DataFrame:
    """The plan's stages in columns that fit the page; the download holds every plan.csv column."""
    p = result.plan
    return pd.DataFrame([{
        "stage": s.index, "layers": f"{s.first_layer}-{s.last_layer} ({s.num_layers})",
        "GPU type": s.gpu_type if s.gpu_type == s.sku else f"{s.gpu_type} ({s.sku})", "TP": s.tp,
        "GPUs (node)": f"{gpu_range(s.gpu_ids)} ({s.node})", "tokens/s": round(s.tokens_per_s),
        "memory (GB/GPU)": f"{s.memory_gb_per_gpu:.2f} of {s.capacity_gb:g}", "cost ($/h)": s.cost_usd_per_hour,
        "bound": s.bound, "bottleneck": s.index == p.bottleneck} for s in p.stages])


def stage_table(result: Result) -> None:
    st.dataframe(stage_frame(result), hide_index=True, width="stretch", column_config={
        "stage": st.column_config.NumberColumn(width=55),
        "TP": st.column_config.NumberColumn(width=45),
        "bound": st.column_config.TextColumn(width=75),
        "tokens/s": st.column_config.NumberColumn(format="localized"),
        "cost ($/h)": st.column_config.NumberColumn(format="$%.2f"),
        "bottleneck": st.column_config.CheckboxColumn(width=90),
    })
    st.caption("Every plan.csv column (SKU, GPU ids, memory capacity, …) is in the download above.")
    if result.plan.links:
        links = pd.DataFrame([{"after stage": l.after_stage, "from": l.from_type, "to": l.to_type,
                               "GB/s": l.gb_per_s, "tokens/s the link carries": round(l.tokens_per_s)}
                              for l in result.plan.links])
        st.caption("Stage-to-stage links")
        st.dataframe(links, hide_index=True, width="stretch", column_config={
            "GB/s": st.column_config.NumberColumn(format="%g"),
            "tokens/s the link carries": st.column_config.NumberColumn(format="localized")})


def render(outcome: Outcome, exact: Outcome | None, sc: Scenario, name: str, stale: str = "") -> None:
    """Everything about one result. `stale` explains why an older result is shown."""
    r = outcome.result
    if stale:
        st.info(stale, icon="ℹ️")
    headline(outcome, exact)
    uncertainty_view.render_prediction_range(r, sc)
    st.caption(solver_line(outcome))
    for w in r.warnings:
        st.warning(md(w), icon="⚠️")
    d1, d2, d3 = st.columns([1, 1, 3])
    d1.download_button("Download plan.csv", plan_csv(r), file_name=f"{name}_plan.csv", mime="text/csv",
                       key="download_plan", on_click="ignore", width="stretch")
    gpus_csv = report.to_csv(report.gpu_rows(r.plan), ("gpu_id", "gpu_type", "node", "stage", "tp_rank",
                                                       "first_layer", "last_layer"))
    d2.download_button("Download gpus.csv", gpus_csv, file_name=f"{name}_gpus.csv", mime="text/csv",
                       key="download_gpus", on_click="ignore", width="stretch")

    st.subheader("$/token against budget")
    frontier = list(exact.frontier) if exact is not None and exact.result is not None else []
    best = exact.result.plan if exact is not None and exact.result is not None else None
    if frontier:
        fig = charts.budget_curve(frontier, r.plan, best, sc.settings.target_usd_per_million_tokens, r.curve,
                                  r.plan.token_basis)
        st.plotly_chart(fig, width="stretch", key="curve_chart")
        xs, plans = charts.step_points(frontier)
        st.caption(f"Exact step curve from the cost/throughput frontier ({len(plans)} plateaus): for a budget B "
                   "the best plan is the frontier plan with the highest throughput costing at most B. Hover for "
                   "throughput.")
    else:
        st.caption("No frontier available for this scenario.")

    st.subheader("Layout")
    st.plotly_chart(charts.layout_figure(r.plan, sc.model.num_layers), width="stretch", key="layout_chart")
    b = r.plan.stages[r.plan.bottleneck - 1]
    st.caption(f"Bottleneck: stage {b.index} ({md(b.gpu_type)} TP{b.tp}, layers {b.first_layer}-{b.last_layer}, "
               f"{b.tokens_per_s:,.0f} tokens/s, {b.bound}-bound), outlined in red."
               + (" A stage-to-stage link is slower than every stage." if r.plan.link_bound else ""))
    t1, t2 = st.tabs(["Stage table", "Per-GPU view"])
    with t1:
        stage_table(r)
    with t2:
        st.plotly_chart(charts.gpu_figure(r.plan, sc.model.num_layers), width="stretch", key="gpu_chart")
        st.dataframe(pd.DataFrame(report.gpu_rows(r.plan)), hide_index=True, width="stretch")
