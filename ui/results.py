"""Rendering a solve: headline metrics, plateau curve, layout views, stage table, downloads."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from planner import InfeasibleError, InputError, PlannerError, Result, Scenario, SolverError
from planner import report

from . import charts
from . import keys
from .headline import (fmt_usd_m, gap_text, gpus_line, headline, layout_line, optimality_text,  # noqa: F401 (re-exported)
                       render_head)
from .solver import Outcome
from .stage_table import stage_frame
from .text import md, md_lines


GPU_HEADERS = {"gpu_id": "GPU", "gpu_type": "GPU type", "node": "node", "stage": "stage", "tp_rank": "TP rank",
               "first_layer": "first layer", "last_layer": "last layer"}


def plan_csv(result: Result) -> str:
    """Exactly what the CLI writes as plan.csv."""
    return report.to_csv(report.plan_rows(result.plan), report.PLAN_COLUMNS)


def show_error(err: PlannerError) -> None:
    if isinstance(err, InputError):
        lines = md_lines(err.problems)
        st.error(f"**The scenario has problems** ({len(err.problems)}):\n{lines}", icon=":material/error:")
    elif isinstance(err, InfeasibleError):
        msg = "**No plan satisfies the limits.**"
        if err.binding:
            msg += "\n\nBinding:\n" + md_lines(err.binding)
        if err.hints:
            msg += "\n\nTo make it feasible:\n" + md_lines(err.hints)
        st.error(msg, icon=":material/error:")
    elif isinstance(err, SolverError):
        st.error(f"**The solver failed** ({md(err.status or 'no status')}): {md(err)}", icon=":material/error:")
    else:
        st.error(f"**{type(err).__name__}**: {md(err)}", icon=":material/error:")


def solver_line(outcome: Outcome) -> str:
    r = outcome.result
    on = "gap on $/token (proven bound)" if r.extra.get("gap_on") == "usd_per_token" else "MIP gap"
    return (f"Solver status **{md(r.status)}**, {md(on)} {gap_text(r.gap)}, time "
            f"{r.solve_seconds + r.build_seconds:.2f} s (HiGHS {r.solve_seconds:.2f} s, model build "
            f"{r.build_seconds:.2f} s; wall {outcome.seconds:.2f} s). {md(r.how[:1].upper() + r.how[1:])}.")


def stage_table(result: Result) -> None:
    st.dataframe(stage_frame(result.plan), hide_index=True, width="stretch", placeholder="–", column_config={
        "stage": st.column_config.NumberColumn(width=55),
        "TP": st.column_config.NumberColumn(width=45),
        "bound": st.column_config.TextColumn(width=75),
        "tokens/s": st.column_config.NumberColumn(format="localized"),
        "$/h": st.column_config.NumberColumn(format="$%.2f"),
        "bottleneck": st.column_config.CheckboxColumn(width=90),
    })
    st.caption("Every column of the plan (SKU, GPU ids, memory capacity, …) is in the plan download above.")
    if result.plan.links:
        links = pd.DataFrame([{"after stage": k.after_stage, "from": k.from_type, "to": k.to_type,
                               "GB/s": k.gb_per_s, "tokens/s the link carries": round(k.tokens_per_s)}
                              for k in result.plan.links])
        st.caption("Stage-to-stage links")
        st.dataframe(links, hide_index=True, width="stretch", placeholder="–", column_config={
            "GB/s": st.column_config.NumberColumn(format="%g"),
            "tokens/s the link carries": st.column_config.NumberColumn(format="localized")})


def _points(plans) -> list[dict]:
    return [{"cost_usd_per_hour": p.cost_usd_per_hour, "tokens_per_s": p.tokens_per_s,
             "usd_per_million_tokens": p.usd_per_million_tokens, "ttft_ms": p.ttft_s * 1e3,
             "tpot_ms": p.tpot_s * 1e3} for p in plans]


def frontier_chart(outcome: Outcome, exact: Outcome | None) -> None:
    """The weighted method's pick on the cost/throughput Pareto frontier (the normalised scaling's own
    frontier points; the exact frontier for the seed's scaling)."""
    r = outcome.result
    w = float(r.extra.get("weight", 0.0))
    scaling = str(r.extra.get("weight_scaling", "seed"))
    if "frontier_points" in r.extra:
        points, pick = list(r.extra["frontier_points"]), r.extra.get("pick_index")
    elif exact is not None and exact.result is not None and exact.frontier:
        front = sorted(exact.frontier, key=lambda p: p.cost_usd_per_hour)
        points = _points(front)
        pick = next((i for i, p in enumerate(front) if math.isclose(p.cost_usd_per_hour, r.plan.cost_usd_per_hour)
                     and math.isclose(p.tokens_per_s, r.plan.tokens_per_s)), None)
    else:
        st.caption("No frontier to mark the pick on.")
        return
    st.plotly_chart(charts.frontier_figure(points, pick, w, scaling), width="stretch", key="weight_frontier")
    if pick is None:
        st.caption(f"The pick (${r.plan.cost_usd_per_hour:,.2f}/h, {r.plan.tokens_per_s:,.0f} tokens/s) is not on "
                   "the exact frontier: the seed's scaling can pick a dominated plan.".replace("$", "\\$"))
    else:
        st.caption(f"Cost weight {w:g} ({'normalised over the frontier' if scaling == 'normalised' else 'seed scaling'}) "
                   f"picks frontier plan {pick + 1} of {len(points)}.")


def render(outcome: Outcome, exact: Outcome | None, frontier: Outcome | None, sc: Scenario, name: str,
           stale: str = "", details=None, use_case_note: str | None = None, frontier_box=None) -> None:
    """Everything about one result: `render_head` here, `render_details` into `details`. `stale` explains
    why an older result is shown."""
    if stale:
        st.info(stale, icon=":material/info:")
    render_head(outcome, exact, use_case_note, sc)
    render_details(outcome, exact, frontier, sc, name, details, frontier_box)


def render_details(outcome: Outcome, exact: Outcome | None, frontier: Outcome | None, sc: Scenario, name: str,
                   details=None, frontier_box=None) -> None:
    """The curve, layout and tables into `details` (here if None); for the weighted method its pick on the
    frontier into `frontier_box`. `frontier` is the exact method's outcome with its frontier."""
    if outcome.result.method == "weighted":
        with (frontier_box if frontier_box is not None else st.container()):
            frontier_chart(outcome, frontier)
    with (details if details is not None else st.container()):
        _details(outcome, frontier, sc, name)


def _details(outcome: Outcome, front: Outcome | None, sc: Scenario, name: str) -> None:
    r = outcome.result
    st.caption(solver_line(outcome))
    d1, d2, d3 = st.columns([1.2, 1.4, 2.4])
    d1.download_button("Download plan (CSV)", plan_csv(r), file_name=f"{name}_plan.csv", mime="text/csv",
                       key="download_plan", on_click="ignore", width="stretch")
    gpus_csv = report.to_csv(report.gpu_rows(r.plan), ("gpu_id", "gpu_type", "node", "stage", "tp_rank",
                                                       "first_layer", "last_layer"))
    d2.download_button("Download GPU list (CSV)", gpus_csv, file_name=f"{name}_gpus.csv", mime="text/csv",
                       key="download_gpus", on_click="ignore", width="stretch")

    st.subheader("$/token against budget")
    frontier = list(front.frontier) if front is not None and front.result is not None else []
    best = front.result.plan if front is not None and front.result is not None else None
    if frontier:
        fig = charts.budget_curve(frontier, r.plan, best, sc.settings.target_usd_per_million_tokens, r.curve,
                                  r.plan.token_basis)
        st.plotly_chart(fig, width="stretch", key="curve_chart")
        xs, plans = charts.step_points(frontier)
        st.caption(f"Exact step curve from the cost/throughput frontier ({len(plans)} plateaus): for a budget B "
                   "the best plan is the frontier plan with the highest throughput costing at most B. Hover for "
                   "throughput.")
    else:
        why = f": {md(front.error)}" if front is not None and front.error is not None else ""
        st.caption(f"No cost/throughput frontier available for this scenario{why}.")

    st.subheader("Layout")
    st.plotly_chart(charts.layout_figure(r.plan, sc.model.num_layers), width="stretch", key="layout_chart")
    b = r.plan.stages[r.plan.bottleneck - 1]
    st.caption(f"Bottleneck: stage {b.index} ({md(b.gpu_type)} TP{b.tp}, layers {b.first_layer}-{b.last_layer}, "
               f"{b.tokens_per_s:,.0f} tokens/s, {b.bound}-bound), outlined in red."
               + (" A stage-to-stage link is slower than every stage." if r.plan.link_bound else ""))
    # The per-GPU view is drawn only when its tab is opened: its chart is one of the page's heaviest for the
    # browser (Plotly), and it is below the fold.
    t1, t2 = st.tabs(["Stage table", "Per-GPU view"], key=keys.RESULT_VIEW, on_change="rerun")
    with t1:
        stage_table(r)
    if t2.open:
        t2.plotly_chart(charts.gpu_figure(r.plan, sc.model.num_layers), width="stretch", key="gpu_chart")
        gpus = pd.DataFrame(report.gpu_rows(r.plan)).rename(columns=GPU_HEADERS)
        t2.dataframe(gpus[[h for h in GPU_HEADERS.values() if h in gpus.columns]], hide_index=True, placeholder="–",
                     width="stretch")
