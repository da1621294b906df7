"""The headline: the answer at a glance (cost, throughput, $/h, latency, proven or not, which GPUs, layout).

Kept apart from ui.results (charts, tables) and free of Plotly and pandas, so that the first screen's
answer is drawn before those load."""
from __future__ import annotations

import math
import threading
from typing import Callable

import streamlit as st

from planner import Result, Scenario

from . import uncertainty_view
from .solver import Outcome
from .text import TPOT_HELP, TTFT_HELP, md

_range_lock = threading.Lock()


def fmt_usd_m(x: float) -> str:
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"


def gpus_line(p) -> str:
    """'4 × H100-SXM + 16 × A100-80GB-SXM': which GPUs and how many, per type."""
    return " + ".join(f"{n} × {t}" for t, n in p.gpus_by_type().items())


def layout_line(p) -> str:
    """The layout in one line: '8 stages × TP2' when every stage is alike, else per stage."""
    kinds = {(s.gpu_type, s.tp) for s in p.stages}
    n = len(p.stages)
    if len({s.tp for s in p.stages}) == 1 and len(kinds) == 1:
        return f"{n} stage{'s' if n > 1 else ''} × TP{p.stages[0].tp}"
    return " → ".join(f"{s.gpu_type} TP{s.tp} (layers {s.first_layer}-{s.last_layer})" for s in p.stages)


def gap_text(gap: float) -> str:
    """A gap as a person reads it: '0.00 %' for a solver's 1.8e-14, 'unknown' when there is none."""
    if not math.isfinite(gap):
        return "unknown"
    return f"{max(gap, 0.0) * 100:.2f} %"


def optimality_text(r: Result) -> tuple[str, str]:
    """(short metric value, one-line explanation) of whether the plan is proven optimal."""
    on = "gap on $/token" if r.extra.get("gap_on") == "usd_per_token" else "MIP gap"
    if r.proven_optimal:
        return "proven", f"Proven optimal: solver status {r.status}, {on} {gap_text(r.gap)}."
    return "not proven", f"Not proven optimal: {r.method} method, solver status {r.status}, {on} {gap_text(r.gap)}."


def headline(outcome: Outcome, exact: Outcome | None) -> None:
    """The answer at a glance: cost, throughput, $/h, latency, optimality; then which GPUs and the layout."""
    r = outcome.result
    p = r.plan
    basis = "output tokens" if p.token_basis == "output" else "tokens"
    ttft_ms, tpot_ms = p.ttft_s * 1e3, p.tpot_s * 1e3
    c = st.columns([1.25, 1.1, 1, 1, 1, 1])
    c[0].metric(f"$ per million {basis}", fmt_usd_m(p.usd_per_million_tokens), help="cost per hour / billable "
                "tokens per hour × 10⁶")
    c[1].metric("Tokens per second", f"{p.tokens_per_s:,.0f}",
                help=f"input + output tokens per second; {p.output_tokens_per_s:,.0f} output tokens/s")
    c[2].metric("Cost per hour", f"${p.cost_usd_per_hour:,.2f}/h")
    c[3].metric("Time to first token", f"{ttft_ms:,.0f} ms", help=TTFT_HELP)
    c[4].metric("Time per token", f"{tpot_ms:,.1f} ms", help=TPOT_HELP)
    short, line = optimality_text(r)
    c[5].metric("Optimal", short, help=line if r.proven_optimal else f"{line} {md(r.how)}")
    st.markdown(f"**{md(gpus_line(p))}** ({p.num_gpus} GPUs) · layout **{md(layout_line(p))}** · "
                f"{p.concurrency:,} sequences in flight, microbatches of {p.microbatch:,}  \n{md(line)}")
    if r.method != "exact" and exact is not None:
        if exact.result is not None:
            best = exact.result.plan
            gap = (p.usd_per_million_tokens / best.usd_per_million_tokens - 1) * 100
            st.markdown(f"The {r.method} method is a heuristic for $/token: its plan costs **{gap:+.2f} %** "
                        f"against the exact method's proven minimum of {fmt_usd_m(best.usd_per_million_tokens)} "
                        f"per million tokens ({best.tokens_per_s:,.0f} tokens/s at "
                        f"${best.cost_usd_per_hour:,.2f}/h).".replace("$", "\\$"))
        elif exact.error is not None:
            st.caption(f"Exact optimum not available: {md(exact.error)}")


def render_head(outcome: Outcome, exact: Outcome | None, use_case_note: str | None = None,
                sc: Scenario | None = None, defer_range: bool = False) -> Callable[[], None] | None:
    """The headline with its prediction range (± band, issue 15), the plain warning for a plan beyond the
    use case's latency (`use_case_note`), and the result's own warnings. With `defer_range` the range gets
    its place under the headline but is drawn by the returned function, called once the rest of the page
    is out: the first time in a server process it loads the validation data (about a second)."""
    headline(outcome, exact)
    later = None
    if defer_range:
        slot = st.empty()

        def later() -> None:
            with slot.container():
                prediction_range(outcome, sc)
    else:
        prediction_range(outcome, sc)
    if use_case_note and use_case_note.startswith("Batch use case"):
        st.info(md(use_case_note), icon=":material/timer_off:")
    elif use_case_note:
        st.warning(md(use_case_note), icon=":material/timer_off:")
    for w in outcome.result.warnings:
        st.warning(md(w), icon=":material/warning:")
    return later


def prediction_range(outcome: Outcome, sc: Scenario | None) -> None:
    with _range_lock:  # sessions opening at once: the first loads the validation data, the others reuse it
        uncertainty_view.render_prediction_range(outcome.result, sc)
