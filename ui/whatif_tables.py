"""The What-if page's tables: library results in, formatted DataFrames out (pure), and the one table
renderer with units in the column formats."""
from __future__ import annotations


import pandas as pd
import streamlit as st

from planner import whatif as W
from planner import whatif_prices as P
from planner.plan import Plan

from .stage_table import stage_frame
from .whatif_charts import usd_m


# ------------------------------------------------------------------ tables (pure: library rows in, frames out)
def ms(seconds: float) -> float:
    return seconds * 1e3


def plan_frame(plan: Plan) -> pd.DataFrame:
    return stage_frame(plan, phases=True)


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


def sections(n: int):
    return st.container(), [st.container() for _ in range(n)]


def not_proven(proof: dict) -> None:
    """A warning naming the solves a limit stopped (`whatif.proof`): their figures are not proven optimal."""
    if proof["proven_optimal"]:
        return
    lines = [f"- {b['what']}: " + (f"at most {b['gap']:.1%} above the minimum $/token; " if b.get("gap") is not None
                                   else "") + "; ".join(b["limits"]) for b in proof["not_proven"]]
    st.warning("**Not proven optimal**: a solve stopped at its time limit (raise it in the settings).\n"
               + "\n".join(lines), icon=":material/warning:")
