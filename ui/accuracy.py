"""Model-accuracy page: predicted against measured on the calibration data, the errors, the assumptions,
and what-if scaling of the engine factors (how the errors and the current scenario's optimal plan move)."""
from __future__ import annotations

import time
from dataclasses import replace


import pandas as pd
import streamlit as st

from planner import EngineProfile, InputError, Plan, Planner, PlannerError, Scenario, load_catalog
from planner.calibration import DGX_FILE, FILE_ENGINES, VLLM_FILE, comparison_rows, summarize
from planner.candidates import LARGE_PROBLEM_OPTIONS as BIG_PROBLEM_OPTIONS  # the main page's and CLI's limit
from planner.validation import validation_report

from . import charts, results, solver, state
from . import scenario_texts as T
from .accuracy_sources import render_sources
from .text import md

BAND = 0.15
# (widget key, factor, label, help)
SCALES = (
    ("acc_compute", "compute", "Compute efficiency ×",
     "scales compute_efficiency: the achieved fraction of the datasheet dense FP16 TFLOP/s (prefill is compute-bound)"),
    ("acc_hbm", "hbm", "Memory-bandwidth (HBM) efficiency ×",
     "scales hbm_efficiency: the achieved fraction of the datasheet HBM GB/s (decode reads every weight each step)"),
    ("acc_link", "link", "Link efficiency ×",
     "scales the NVLink, PCIe and network efficiencies: the achieved fraction of the link GB/s in all-reduces "
     "and stage hand-offs"),
    ("acc_overhead", "overhead", "Host time per step ×",
     "scales launch_us_per_layer, scheduler_ms and scheduler_us_per_seq: the host's time to issue a step's "
     "kernels and the engine's scheduling and sampling per step"),
)
IDENTITY = (1.0, 1.0, 1.0, 1.0)
PHASES = ((DGX_FILE, "prefill", "DGX-A100 prefill", "prefill time of the batch", "ms"),
          (DGX_FILE, "decode", "DGX-A100 decode step", "decode-step time of the batch", "ms"),
          (VLLM_FILE, "throughput", "vLLM on L40S throughput", "throughput", "tokens/s"))

ASSUMPTIONS = """
**What the performance model computes** (`planner/perf.py`, one pipeline stage of *k* layers on a
tensor-parallel group of *t* GPUs of one type):

- **Memory per GPU**: the stage's weights (grouped-query attention and the MLP from the model's dimensions;
  the embedding on the first stage, the LM head on the last) divided by *t*; the KV cache of every sequence in
  flight at its full context (input + output tokens), split across the group up to the number of KV heads;
  activations for one prefill chunk; and what the engine keeps back (1 − memory utilisation, plus a runtime
  reserve). The number of sequences in flight is what fits in the rest, capped by the engine (256).
- **Time of one forward step** = max(compute, memory traffic, host time) + all-reduces:
  compute = FLOPs ÷ (datasheet dense FP16 TFLOP/s × *compute efficiency*); memory traffic = bytes read ÷
  (datasheet HBM GB/s × *HBM efficiency*); host time = *host time per step* × *k* / layers of the model (the
  host issues kernels while the GPU works, so it only matters when it is the longest part); two ring
  all-reduces per layer over NVLink or PCIe at the link's GB/s × *link efficiency*, plus a fixed latency.
- **Serving** (continuous batching) as waves: the *C* requests in flight are prefilled, then decoded for
  *output* steps at the mean context input + output/2; tokens/s = *C* × (input + output) ÷ wave time.
  A pipeline of *P* stages cycles *P* microbatches of *C*/*P* sequences (a sequence's next token needs its
  previous one to have left the last stage), while every stage holds the KV cache of all *C*. It runs at
  its slowest stage, or its slowest stage-to-stage link if that is slower.
- **Calibration**: four factors per engine profile (plus a fixed all-reduce latency), fitted by least squares
  on the measured timings (`benchmarks/fit_engines.py`): `splitwise` on the DGX-A100 file, `vllm` (the
  default) on the L40S file. Other GPUs are predicted from their datasheet figures with the same factors.

**What it does not model**: requests of different lengths (every request has the configured input and
output length); scheduling details of chunked prefill, prefix caching, speculative decoding, CUDA graphs;
quantised weights or KV cache (the model's bytes per parameter throughout); mixture-of-experts models;
overlap of all-reduces with compute; a tensor-parallel group across nodes; contention on shared links;
the per-sequence slowdown the DGX data shows at batch 64 (decode under-predicted by 25-33 % there);
queueing (latencies are steady-state figures, without the stage-to-stage transfer in the time to first
token).

**How far to trust it**: every vLLM measurement is bound by the PCIe all-reduce, so that file pins the
link efficiency but not the compute or HBM efficiency or the host time of the `vllm` profile (those sit at
their bounds or starting values); for NVLink GPUs served by vLLM they are extrapolations. The sliders above
show how much the plan depends on them. Details: `docs/calibration.md`.
"""


# ------------------------------------------------------------------ pure helpers
def scaled_profile(e: EngineProfile, scale: tuple[float, float, float, float]) -> EngineProfile:
    """`e` with compute, HBM and link efficiency and the host time per step scaled (identity: `e` itself)."""
    compute, hbm, link, overhead = scale
    if tuple(scale) == IDENTITY:
        return e
    return e.scaled(compute=compute, hbm=hbm, link=link, overhead=overhead)


def layout_text(plan: Plan) -> str:
    return " → ".join(f"{s.gpu_type}×{s.tp} (layers {s.first_layer}-{s.last_layer})" for s in plan.stages)


def short_layout(plan: Plan) -> str:
    return " → ".join(f"{s.gpu_type}×{s.tp}" for s in plan.stages)


def usd_m(x: float) -> str:
    return results.fmt_usd_m(x)


def plan_rows(base: Plan, new: Plan) -> list[dict]:
    """The comparison table: one row per figure, fitted and scaled side by side."""
    def pct(a: float, b: float) -> str:
        return f"{(b / a - 1) * 100:+.1f} %" if a else "n/a"

    def same(a, b) -> str:
        return "same" if a == b else "changed"

    basis = "output tokens" if base.token_basis == "output" else "tokens"

    def bottleneck(p: Plan) -> str:
        s = p.stages[p.bottleneck - 1]
        return f"stage {s.index}: {s.gpu_type} TP{s.tp}, {s.bound}-bound"

    def gpus(p: Plan) -> str:
        return f"{p.num_gpus} (" + ", ".join(f"{k} {v}" for k, v in p.gpus_by_type().items()) + ")"

    return [
        {"figure": f"$ per million {basis}", "fitted profile": usd_m(base.usd_per_million_tokens),
         "scaled profile": usd_m(new.usd_per_million_tokens),
         "change": pct(base.usd_per_million_tokens, new.usd_per_million_tokens)},
        {"figure": "tokens/s (input + output)", "fitted profile": f"{base.tokens_per_s:,.0f}",
         "scaled profile": f"{new.tokens_per_s:,.0f}", "change": pct(base.tokens_per_s, new.tokens_per_s)},
        {"figure": "cost ($/h)", "fitted profile": f"${base.cost_usd_per_hour:,.2f}/h",
         "scaled profile": f"${new.cost_usd_per_hour:,.2f}/h",
         "change": pct(base.cost_usd_per_hour, new.cost_usd_per_hour)},
        {"figure": "GPUs", "fitted profile": gpus(base), "scaled profile": gpus(new),
         "change": same(gpus(base), gpus(new))},
        {"figure": "pipeline stages", "fitted profile": str(len(base.stages)), "scaled profile": str(len(new.stages)),
         "change": same(len(base.stages), len(new.stages))},
        {"figure": "sequences in flight", "fitted profile": str(base.concurrency),
         "scaled profile": str(new.concurrency), "change": same(base.concurrency, new.concurrency)},
        {"figure": "bottleneck", "fitted profile": bottleneck(base), "scaled profile": bottleneck(new),
         "change": same(bottleneck(base), bottleneck(new))},
        {"figure": "layout (GPU type × TP per stage)", "fitted profile": short_layout(base),
         "scaled profile": short_layout(new), "change": same(layout_text(base), layout_text(new))},
    ]


# ------------------------------------------------------------------ cached planner calls
def _catalog(cat_key: solver.TextsKey):
    cat = solver.catalog_from_texts(cat_key)
    return load_catalog() if isinstance(cat, InputError) else cat


@st.cache_data(max_entries=128, show_spinner=False)
def calibration(cat_key: solver.TextsKey, scale: tuple[float, float, float, float]) -> dict:
    """planner.calibration's rows and summary with both files' engine profiles scaled by `scale`."""
    cat = _catalog(cat_key)
    try:
        engines = {f: scaled_profile(cat.engine(name), scale) for f, name in FILE_ENGINES.items()}
        rows = comparison_rows(engines, cat)
    except (InputError, FileNotFoundError) as exc:
        return {"error": str(exc)}
    return {"engines": engines, "rows": rows, "summary": summarize(rows)}


@st.cache_data(max_entries=8, show_spinner=False)
def sources_report(cat_key: solver.TextsKey) -> dict:
    """planner.validation's report (every source) with the session's catalogue: what `validate --json` gives
    under "sources" for the bundled one."""
    try:
        return validation_report(_catalog(cat_key))
    except (InputError, FileNotFoundError) as exc:
        return {"error": str(exc)}


@st.cache_resource(max_entries=64, show_spinner=False)
def exact_plan(texts: solver.TextsKey, name: str, cat_key: solver.TextsKey,
               scale: tuple[float, float, float, float]) -> solver.Outcome:
    """The exact min-$/token plan of the scenario with its engine profile scaled by `scale`."""
    sc = solver.scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return solver.Outcome(error=sc)
    t0 = time.perf_counter()
    try:
        if tuple(scale) == IDENTITY:
            cs = solver.candidates(texts, name, cat_key)
            if isinstance(cs, InputError):
                return solver.Outcome(error=cs)
            planner = Planner(sc, cs)
        else:
            planner = Planner(replace(sc, engine=scaled_profile(sc.engine, scale)))
        result = planner.exact()
    except PlannerError as exc:
        return solver.Outcome(error=exc, seconds=time.perf_counter() - t0)
    return solver.Outcome(result, None, time.perf_counter() - t0)


# ------------------------------------------------------------------ rendering
def _reset() -> None:
    for key, *_ in SCALES:
        st.session_state[key] = 1.0


def scale_inputs() -> tuple[float, float, float, float]:
    s = st.session_state
    saved = s.setdefault("_accuracy", {})
    for key, *_ in SCALES:
        if key not in s:  # Streamlit drops a widget's value while another page is shown
            s[key] = saved.get(key, 1.0)
    cols = st.columns([1, 1, 1, 1, 0.6])
    for col, (key, _, label, help_) in zip(cols, SCALES):
        col.slider(label, 0.5, 1.5, step=0.05, key=key, help=help_, format="%.2f")
    cols[-1].button("Reset to fitted", key="acc_reset", on_click=_reset, width="stretch")
    for key, *_ in SCALES:
        saved[key] = s[key]
    return tuple(round(float(s[key]), 4) for key, *_ in SCALES)


def profile_table(engines: dict[str, EngineProfile], fitted: dict[str, EngineProfile], scenario_engine: str) -> None:
    rows = []
    for f, e in engines.items():
        rows.append({"profile": fitted[f].name + (" (scenario's)" if fitted[f].name == scenario_engine else ""),
                     "fitted on": f, "compute eff.": e.compute_efficiency, "HBM eff.": e.hbm_efficiency,
                     "NVLink eff.": e.nvlink_efficiency, "PCIe eff.": e.pcie_efficiency,
                     "launch per layer (µs)": e.launch_us_per_layer, "scheduler per step (ms)": e.scheduler_ms,
                     "scheduler per sequence (µs)": e.scheduler_us_per_seq})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        **{c: st.column_config.NumberColumn(format="%.4g") for c in ("compute eff.", "HBM eff.", "NVLink eff.",
                                                                      "PCIe eff.")},
        "launch per layer (µs)": st.column_config.NumberColumn(format="%.1f"),
        "scheduler per step (ms)": st.column_config.NumberColumn(format="%.2f"),
        "scheduler per sequence (µs)": st.column_config.NumberColumn(format="%.1f"),
    })
    over = [f"{e.name}: {k} {v:.3g}" for e in engines.values()
            for k, v in (("compute efficiency", e.compute_efficiency), ("HBM efficiency", e.hbm_efficiency),
                         ("NVLink efficiency", e.nvlink_efficiency), ("PCIe efficiency", e.pcie_efficiency))
            if v > 1]
    if over:
        st.warning("Scaled above the datasheet peak (efficiency > 1), which no GPU reaches: " + "; ".join(over),
                   icon="⚠️")


def error_metrics(summary: dict, fitted: dict | None) -> None:
    cols = st.columns(len(PHASES))
    for col, (_, phase, label, _, _) in zip(cols, PHASES):
        s = summary["by_phase"].get(phase)
        if s is None:
            col.metric(f"{label} MAPE", "n/a")
            continue
        delta = None
        if fitted is not None:
            delta = f"{s['mape_pct'] - fitted['by_phase'][phase]['mape_pct']:+.1f} points vs fitted"
        col.metric(f"{label} MAPE", f"{s['mape_pct']:.1f} %", delta=delta, delta_color="inverse",
                   help=f"mean absolute percentage error over {s['n']} measurements; worst {s['worst_abs_pct']:.1f} %")


def error_table(summary: dict, fitted: dict | None) -> pd.DataFrame:
    """MAPE and worst error per phase, then per TP (and per model and TP)."""
    rows = []
    for _, phase, label, _, _ in PHASES:
        groups = [("all", summary["by_phase"].get(phase))]
        by_tp = summary["by_tp"].get(phase, {})
        groups += sorted(by_tp.items(), key=lambda kv: (not kv[0].startswith("TP"), kv[0]))
        for group, s in groups:
            if s is None or _same_as_tp_group(group, s, by_tp):
                continue
            row = {"quantity": label, "group": group, "rows": s["n"], "MAPE (%)": s["mape_pct"],
                   "worst (%)": s["worst_abs_pct"]}
            if fitted is not None:
                f = fitted["by_phase"][phase] if group == "all" else fitted["by_tp"][phase][group]
                row["MAPE, fitted (%)"] = f["mape_pct"]
                row["worst, fitted (%)"] = f["worst_abs_pct"]
            rows.append(row)
    return pd.DataFrame(rows)


def _same_as_tp_group(group: str, stats: dict, by_tp: dict) -> bool:
    """A "model TPn" group that holds exactly the rows of its "TPn" group (one model at that TP) repeats it."""
    model, _, layout = group.partition(" ")
    return bool(layout) and by_tp.get(layout) == stats


def comparison_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "model": r["model"],
        "layout": f"TP{r['tp']}" + (f"×PP{r['pp']}" if r["pp"] > 1 else ""), "quantity": f"{r['phase']} ({r['unit']})",
        "batch / in flight": r["batch"] if r["batch"] is not None else r["concurrency"],
        "in (tokens)": r["input_len"], "out (tokens)": r["output_len"],
        "measured": r["measured"], "predicted": r["predicted"], "error (%)": r["error_pct"],
        "bound": r["bound"], "excluded": bool(r["excluded"])} for r in rows])


def render_accuracy(cal: dict, base: dict | None) -> None:
    scaled = base is not None
    error_metrics(cal["summary"], base["summary"] if scaled else None)
    cols = st.columns(len(PHASES))
    for i, (col, (file, phase, label, quantity, unit)) in enumerate(zip(cols, PHASES)):
        rows = [r for r in cal["rows"] if r["file"] == file and r["phase"] == phase]
        ref = [r for r in base["rows"] if r["file"] == file and r["phase"] == phase] if scaled else None
        with col:
            st.markdown(f"**{label}** · profile {md(cal['engines'][file].name)}")
            st.plotly_chart(charts.accuracy_figure(rows, quantity, unit, BAND, ref), width="stretch",
                            key=f"acc_chart_{i}")
    st.caption(f"Each point is one measured configuration (medians over repeated runs); hover for the model, "
               f"layout, batch and lengths. Dashed: predicted = measured; grey band: within ±{BAND:.0%}. "
               "Colour: tensor-parallel degree; symbol: model (triangle: a TP×PP pipeline)."
               + (" Open grey circles: the same rows with the fitted factors." if scaled else ""))
    missing = [r for r in cal["rows"] if r["predicted"] != r["predicted"]]
    if missing:
        st.caption("Not plotted, as the model predicts that the configuration does not fit in GPU memory: "
                   + "; ".join(f"{r['model']} TP{r['tp']} {r['phase']}, "
                               + (f"batch {r['batch']}" if r["batch"] is not None else "")
                               + f" ({r['input_len']:,} + {r['output_len']:,} tokens)"
                               + (" — excluded from the errors" if r["excluded"]
                                  else " — counted as an infinite error")
                               for r in missing) + ".")
    st.subheader("Errors per quantity and tensor-parallel degree")
    df = error_table(cal["summary"], base["summary"] if scaled else None)
    pct = {c: st.column_config.NumberColumn(format="%.1f") for c in df.columns if "(%)" in c}
    st.dataframe(df, hide_index=True, width="stretch", height=35 * (len(df) + 1) + 3, column_config={
        "quantity": st.column_config.TextColumn(width="medium"), "group": st.column_config.TextColumn(width="medium"),
        "rows": st.column_config.NumberColumn(format="%d"), **pct}, key="acc_errors")
    st.caption("MAPE: mean absolute percentage error; worst: the largest absolute error; excluded rows left out "
               "(computed by `planner.calibration.summarize`, as in `python -m planner validate`).")
    with st.expander(f"Every compared measurement ({len(cal['rows'])} rows)"):
        st.dataframe(comparison_frame(cal["rows"]), hide_index=True, width="stretch", height=420, column_config={
            "measured": st.column_config.NumberColumn(format="%.4g"),
            "predicted": st.column_config.NumberColumn(format="%.4g"),
            "error (%)": st.column_config.NumberColumn(format="%+.1f"),
            "batch / in flight": st.column_config.NumberColumn(
                "B or C", format="%d", help="static batch B (DGX) or sequences in flight C (vLLM, predicted)"),
            "in (tokens)": st.column_config.NumberColumn(format="%d"),
            "out (tokens)": st.column_config.NumberColumn(format="%d"),
            "excluded": st.column_config.CheckboxColumn(),
        })
        for reason in sorted({r["excluded"] for r in cal["rows"] if r["excluded"]}):
            st.caption(f"Excluded from the errors and the fit: {reason}.")


def render_plans(sc: Scenario, scale: tuple[float, ...]) -> None:
    s = st.session_state
    key, name, ckey = T.texts_key(s["texts"]), s["scenario_name"], state.cat_key()
    st.caption(f"Scenario **{md(name)}** · {md(sc.model.name)} · {sc.workload.input_tokens:,} input + "
               f"{sc.workload.output_tokens:,} output tokens per request · engine profile {md(sc.engine.name)} "
               "· exact method (proven minimum $/token), whatever method the main page uses.")
    cs = solver.candidates(key, name, ckey)
    solved = s.setdefault("_acc_solved", set())
    wanted = [(key, ckey, IDENTITY), (key, ckey, scale)]
    if (not isinstance(cs, Exception) and len(cs.options) > BIG_PROBLEM_OPTIONS
            and not all(w in solved for w in wanted) and not s.get("acc_solve")):
        st.info(f"Large problem ({len(cs.options):,} stage options): each solve can take up to the time limit "
                f"({sc.settings.time_limit_s:g} s).", icon="⏸️")
        st.button("Solve both plans now", key="acc_solve", type="primary")
        return
    with st.spinner("Solving the scenario with the fitted and the scaled profile…"):
        base = exact_plan(key, name, ckey, IDENTITY)
        new = exact_plan(key, name, ckey, scale)
    solved.update(wanted)
    for outcome, label in ((base, "fitted"), (new, "scaled")):
        if outcome.error is not None:
            st.markdown(f"**With the {label} profile:**")
            results.show_error(outcome.error)
    if base.error is not None or new.error is not None:
        return
    bp, np_ = base.result.plan, new.result.plan
    moved = tuple(scale) != IDENTITY
    m = st.columns(3)
    basis = "output tokens" if np_.token_basis == "output" else "tokens"
    m[0].metric(f"$ per million {basis}, scaled profile", usd_m(np_.usd_per_million_tokens),
                delta=f"{(np_.usd_per_million_tokens / bp.usd_per_million_tokens - 1) * 100:+.1f} % vs fitted"
                if moved else None, delta_color="inverse")
    m[1].metric("Tokens per second, scaled profile", f"{np_.tokens_per_s:,.0f}",
                delta=f"{(np_.tokens_per_s / bp.tokens_per_s - 1) * 100:+.1f} % vs fitted" if moved else None)
    m[2].metric("Layout", "unchanged" if layout_text(bp) == layout_text(np_) else "changed",
                help="whether the optimal stages (GPU type, TP degree, layers) differ between the two profiles")
    st.dataframe(pd.DataFrame(plan_rows(bp, np_)), hide_index=True, width="stretch", key="acc_plans",
                 column_config={"change": st.column_config.TextColumn(width="small")})
    c1, c2 = st.columns(2)
    scaled_name = scaled_profile(sc.engine, scale).name
    for col, plan, label, outcome, tag in ((c1, bp, f"fitted profile `{sc.engine.name}`", base, "base"),
                                           (c2, np_, f"scaled profile `{scaled_name}`", new, "scaled")):
        with col:
            st.markdown(f"**Layout with the {label}**")
            st.plotly_chart(charts.layout_figure(plan, sc.model.num_layers), width="stretch",
                            key=f"acc_layout_{tag}")
            st.caption(f"{md(layout_text(plan))}. Solver status: {md(outcome.result.status)}, {outcome.seconds:.2f} s.")


def render() -> None:
    st.title("Model accuracy")
    st.caption("How close the performance model's predictions are to measured timings, what it assumes, and how "
               "the optimal plan of the current scenario moves if the engine's efficiency factors are off.")
    st.subheader("What if the engine factors were different?")
    scale = scale_inputs()
    st.caption("Each slider multiplies a fitted factor of every engine profile (both calibration profiles and the "
               "current scenario's). At 1.00 everything is as fitted.")
    cal = calibration(state.cat_key(), scale)
    if "error" in cal:
        st.error(f"**Calibration data or profiles unavailable**: {md(cal['error'])}", icon="🚫")
        return
    scaled = scale != IDENTITY
    base = calibration(state.cat_key(), IDENTITY) if scaled else None
    sc, err = state.current_scenario()
    profile_table(cal["engines"], (base or cal)["engines"], sc.engine.name if sc is not None else "")

    st.header("Predicted against measured")
    render_accuracy(cal, base)

    st.header("The current scenario's optimal plan: fitted against scaled profile")
    if err is not None:
        st.warning("The current scenario does not parse, so its plan cannot be compared; fix it on the main page.",
                   icon="⚠️")
        results.show_error(err)
    else:
        if not scaled:
            st.info("Move a slider above to see how the optimal plan moves; at the fitted factors both are the same.",
                    icon="ℹ️")
        render_plans(sc, scale)

    st.header("Validation across sources")
    st.caption("The fitted profiles against every source: the shared measurement files (rows used for the fit "
               "and rows held out), the AIConfigurator reference and published measurements of other stacks.")
    render_sources(sources_report(state.cat_key()))

    st.header("Assumptions")
    st.markdown(ASSUMPTIONS)
