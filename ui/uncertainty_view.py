"""How sure the headline is: the plan's prediction range (± band) and extrapolations, and the
pessimistic switch (the plan against the low end of each option's range, beside the nominal one).

The numbers are planner.uncertainty's and planner.pessimistic's; this module only renders them."""
from __future__ import annotations

import streamlit as st

from planner import PlannerError, Planner
from planner.candidates import build_candidates
from planner.pessimistic import pessimistic_candidates
from planner.uncertainty import plan_range

from .text import md

PESSIMISTIC_KEY = "pessimistic"
POINTS_KEY = "calib_points"  # profile name -> error points of a profile calibrated in this session


def pessimistic_switch() -> bool:
    """The sidebar switch; returns whether it is on."""
    return st.toggle("Plan against the low end (pessimistic)", key=PESSIMISTIC_KEY,
                     help="Scale each stage option's tokens/s by the low end of its range (the engine profile's "
                          "errors on the closest measured data) and solve again: does the GPU choice change?")


def session_points(sc):
    """Error points of the scenario's profile when it was calibrated in this session, else None (the
    catalogue's validation points)."""
    return st.session_state.get(POINTS_KEY, {}).get(sc.engine.name) if sc is not None else None


def _pct(lo: float, mid: float, hi: float) -> str:
    return f"{(lo / mid - 1) * 100:+.0f}% / {(hi / mid - 1) * 100:+.0f}%"


def range_text(s: dict, figures: dict[str, float]) -> str:
    parts = []
    for key, label, fmt in (("tokens_per_s", "tokens/s", "{:,.0f}"), ("ttft_ms", "TTFT", "{:,.0f} ms"),
                            ("tpot_ms", "TPOT", "{:,.1f} ms")):
        lo, hi, mid = s.get(f"{key}_low"), s.get(f"{key}_high"), figures.get(key)
        if lo is not None and hi is not None and mid:
            parts.append(f"{label} {fmt.format(lo)} – {fmt.format(hi)} ({_pct(lo, mid, hi)})")
    return " · ".join(parts)


def render_prediction_range(summary_or_result, sc=None) -> dict | None:
    """The ± band under the headline and the extrapolations; `summary_or_result`: a summary dict with the
    range keys (summary.json), or a Result with its Scenario `sc`. Returns the range dict shown."""
    if isinstance(summary_or_result, dict):
        s = summary_or_result
        figures = {k: s.get(k) for k in ("tokens_per_s", "ttft_ms", "tpot_ms")}
    else:
        plan = summary_or_result.plan
        if sc is None or not plan.stages:
            return None
        try:
            s = plan_range(plan, sc, session_points(sc))
        except PlannerError as exc:
            st.caption(f"No prediction range: {md(exc)}")
            return None
        figures = {"tokens_per_s": plan.tokens_per_s, "ttft_ms": plan.ttft_s * 1e3, "tpot_ms": plan.tpot_s * 1e3}
    text = range_text(s, figures)
    if text:
        st.caption(f"**Likely range** (the profile's errors on the closest measured data): {text}",
                   help="planner/uncertainty.py: 10th-90th percentile of measured/predicted over the closest "
                        "held-out validation points (same layout, else same GPU and TP, else same GPU, else any)")
    else:
        st.caption("**No range**: no measured data behind this engine profile covers these figures.")
    for e in s.get("extrapolations", []):
        st.caption(f"⚠️ Extrapolation: {md(e)}")
    if sc is not None and not isinstance(summary_or_result, dict) and st.session_state.get(PESSIMISTIC_KEY):
        render_pessimistic(summary_or_result, sc)
    return s


def _pessimistic_solve(sc):
    cache = st.session_state.setdefault("_pessimistic_cache", {})
    try:
        key = hash(sc)
    except TypeError:
        key = None
    if key is not None and key in cache:
        return cache[key]
    try:
        cs, factors = pessimistic_candidates(build_candidates(sc), session_points(sc))
        out = (Planner(sc, cs).exact(), factors, None)
    except PlannerError as exc:
        out = (None, [], exc)
    if key is not None:
        cache.clear()  # one scenario at a time: the key holds a whole scenario
        cache[key] = out
    return out


def _gpus(plan) -> str:
    return ", ".join(f"{n} × {md(t)}" for t, n in plan.gpus_by_type().items())


def render_pessimistic(result, sc) -> None:
    """The plan against each option's low end, beside the nominal plan's GPU choice."""
    low, factors, err = _pessimistic_solve(sc)
    if err is not None:
        st.warning(f"Pessimistic plan: {md(err)}", icon="⚠️")
        return
    same = result.plan.gpus_by_type() == low.plan.gpus_by_type()
    verdict = "the same GPUs" if same else "**different GPUs**"
    st.info(f"**Pessimistic plan** (each option's tokens/s at the low end of its range): {verdict} — "
            f"{_gpus(low.plan)}, {len(low.plan.stages)} stage(s), ${low.plan.usd_per_million_tokens:,.4f} per "
            f"million tokens at {low.plan.tokens_per_s:,.0f} tokens/s (nominal plan: {_gpus(result.plan)}).",
            icon="🛡️")
    if factors:
        st.caption("Low-end factors: " + ", ".join(f"{md(r['gpu_type'])} TP{r['tp']} ×{r['low_factor']:.2f}"
                                                   for r in factors))
