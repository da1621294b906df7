"""The input widgets of the main page: scenario source, workload and model, GPU pool and network,
search settings. Every widget has a key; its value is written back into the scenario texts."""
from __future__ import annotations

import streamlit as st

from planner import InputError
from planner.scenario_io import scenario_texts_to_json
from planner.usecases import UseCase, interactive_warning, load_use_cases

from . import cell_check
from . import scenario_texts as T
from . import state
from .text import TPOT_HELP, TTFT_HELP, md, md_lines
from .state import stable_editor, sync_editor  # noqa: F401 (the catalogue page uses them through here)


def sync_grids() -> None:
    """Fold the GPU-pool and network grid edits into the scenario texts before anything uses them."""
    sync_editor("pool")
    sync_editor("net")
    state.reconcile_net()
    state.rebuild_texts()


def _keep(key: str) -> None:
    """Remember a toggle's value outside its widget key: Streamlit drops widget keys while another page is
    shown, and `state.ensure` restores the toggle from the copy."""
    st.session_state["_" + key] = st.session_state[key]


def scenario_source() -> None:
    """Sidebar: bundled scenario picker, upload of CSVs or a scenario JSON, solve controls."""
    s = st.session_state
    # state.prepare() ran before this and does not see the grids' edits (stable_editor), and the scenario
    # export below must hold the latest one.
    sync_grids()
    options = T.bundled_names()
    if s.get("loaded_pick") == state.UPLOADED:
        options = options + [state.UPLOADED]
    st.selectbox("Bundled scenario", options, key="scenario_pick",
                 help="The default first, then the other realistic scenarios, then the seed project's examples")
    desc = T.config_dict(s["texts"].get(T.CONFIG, "")).get("description", "")
    if desc:
        st.caption(md(desc))
    elif s["scenario_name"] in T.SEED_SCENARIOS:
        st.caption("An example from the seed project (illustrative GPUs and prices, no stated use case).")
    use_case_inputs()
    with st.expander("Upload or export a scenario"):
        st.file_uploader("Upload config CSVs or a scenario .json", type=["csv", "json"], accept_multiple_files=True,
                         key="upload", help="config.csv + gpu_pool.csv (+ network_bandwidth.csv or "
                         "network_by_type.csv) in the seed's format or ours; or a scenario .json exported by this "
                         "app. Single CSVs replace that file of the current scenario.")
        st.caption(f"Loaded: **{md(s['scenario_name'])}** ({len(s['texts'])} files)")
        st.download_button("Export scenario (.json)", scenario_texts_to_json(s["texts"], s["scenario_name"]),
                           file_name=f"{s['scenario_name']}.scenario.json", mime="application/json",
                           key="download_scenario", on_click="ignore", width="stretch",
                           help="All files of the current (edited) scenario in one file; upload it to restore "
                                "this state")
    problems = s.get("upload_problems")
    if problems:
        show_problems(problems, "The upload was not loaded")
    st.divider()
    st.toggle("Solve automatically on every change", key="auto_solve", on_change=_keep, args=("auto_solve",))
    st.toggle("Pre-solve the quantization slider's neighbours", key="presolve", on_change=_keep, args=("presolve",),
              help="While you look at a result, the settings one step left and right on the quantization slider "
                   "are solved in the background (at low priority), so moving the slider answers from the cache")
    st.button("Solve now", key="solve_button", type="primary", width="stretch")


def use_cases() -> dict[str, UseCase]:
    return {u.key: u for u in load_use_cases()}


def _limits(uc: UseCase) -> tuple[float, float]:
    return float(uc.max_ttft_ms or 0.0), float(uc.max_tpot_ms or 0.0)


def _pick_use_case() -> None:
    """A use case was chosen: its limits go into the two limit inputs (custom keeps what is there)."""
    s = st.session_state
    uc = use_cases()[s["use_case"]]
    if uc.key != "custom":
        s["max_ttft_ms"], s["max_tpot_ms"] = _limits(uc)


def _edit_limit() -> None:
    """A limit was typed: it is the chosen use case's only if it still equals its limits, else custom."""
    s = st.session_state
    ucs = use_cases()
    if s.get("use_case") in ucs and _limits(ucs[s["use_case"]]) != (s["max_ttft_ms"], s["max_tpot_ms"]):
        s["use_case"] = "custom"


def use_case_inputs() -> None:
    """Sidebar: what the deployment is for, and the latency limits that follow (visible and editable)."""
    ucs = use_cases()
    st.selectbox("Use case", list(ucs), key="use_case", format_func=lambda k: ucs[k].label, on_change=_pick_use_case,
                 help="Interactive chat plans within its latency limits; batch / offline has none; custom: "
                      "your own limits")
    uc = ucs.get(st.session_state["use_case"])
    t1, t2 = st.columns(2)
    t1.number_input("Max time to first token (ms)", min_value=0.0, step=50.0, format="%.0f", key="max_ttft_ms",
                    on_change=_edit_limit, help=f"0 = no limit. The {TTFT_HELP}.")
    t2.number_input("Max time per output token (ms)", min_value=0.0, step=5.0, format="%.1f", key="max_tpot_ms",
                    on_change=_edit_limit, help=f"0 = no limit. The {TPOT_HELP}.")
    if uc is not None:
        st.caption(md(uc.rationale), help=md(f"Source: {uc.source}"))


def use_case_warning(plan, use_case: str | None = None) -> str | None:
    """The plain sentence for a plan too slow for interactive use, None when it is fast enough. Said for
    the batch use case too (as a note there): a batch plan is often unusable for a person waiting.
    `use_case`: the use case's key (default: the one chosen on the page)."""
    uc = use_cases().get(st.session_state.get("use_case", "") if use_case is None else use_case)
    ttft_ms, tpot_ms = plan.ttft_s * 1e3, plan.tpot_s * 1e3
    if uc is not None and uc.key == "batch":
        note = interactive_warning(ttft_ms, tpot_ms, None)
        return None if note is None else f"Batch use case: {note[0].lower()}{note[1:]}"
    return interactive_warning(ttft_ms, tpot_ms, uc)


def show_problems(err: InputError, title: str = "The scenario has problems") -> None:
    lines = md_lines(err.problems) if err.problems else md_lines([err])
    st.error(f"**{title}** ({len(err.problems)}):\n{lines}", icon=":material/error:")


def workload_and_model() -> None:
    cat = state.catalog()
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Input tokens per request", min_value=1, max_value=_max("input_tokens"), step=128, key="input_tokens")
    c2.number_input("Output tokens per request", min_value=1, max_value=_max("output_tokens"), step=64, key="output_tokens")
    with c3:
        st.checkbox("Concurrency: auto (best level)", key="concurrency_auto",
                    help="auto: the planner tries 1, 2, 4 ... up to the engine cap and keeps the best")
        st.number_input("Sequences in flight", min_value=1, max_value=_max("concurrency"), step=1, key="concurrency",
                        disabled=st.session_state["concurrency_auto"],
                        help="Used when auto is off. With auto on, the level the plan uses is in the line under the "
                             "headline figures (\"N sequences in flight\").")
    c4.radio("Token basis for $/token", T.parameter("token_basis").choices, key="token_basis", horizontal=True,
             help="total: input + output tokens count; output: only generated tokens are billed")
    st.radio("Model", ("catalogue", "dimensions"), key="model_source", horizontal=True,
             format_func=lambda x: "from the catalogue" if x == "catalogue" else "by dimensions")
    if st.session_state["model_source"] == "catalogue":
        names = list(cat.models)
        if st.session_state.get("model_name") not in names:
            st.session_state["model_name"] = names[0]
        st.selectbox("Catalogue model", names, key="model_name")
        m = cat.models[st.session_state["model_name"]]
        st.caption(f"{m.num_layers} layers, d_model {m.hidden_size}, FFN {m.ffn_size}, {m.num_heads} heads "
                   f"({m.num_kv_heads} KV), vocab {m.vocab_size:,}; source: {md(cat.model_sources.get(m.name, ''))}")
    else:
        d = st.columns(7)
        d[0].number_input("Layers", min_value=1, max_value=_max("num_layers"), key="num_layers")
        d[1].number_input("d_model", min_value=1, max_value=_max("hidden_size"), step=256, key="hidden_size")
        d[2].number_input("FFN size", min_value=1, max_value=_max("ffn_size"), step=256, key="ffn_size")
        d[3].number_input("Attention heads", min_value=1, max_value=_max("num_heads"), key="num_heads")
        d[4].number_input("KV heads", min_value=1, max_value=_max("num_kv_heads"), key="num_kv_heads")
        d[5].number_input("Vocabulary", min_value=1, max_value=_max("vocab_size"), step=1000, key="vocab_size")
        d[6].number_input("Layer weights (GB, 0 = from dims)", min_value=0.0, max_value=10_000.0, step=0.1,
                          key="layer_weight_gb", format="%.3f")


def pool_and_network() -> None:
    s = st.session_state
    st.markdown("**GPU pool** (add or delete rows; the datasheet columns override the catalogue)")
    stable_editor(
        "pool", num_rows="dynamic", width="stretch", hide_index=True, placeholder="⚠ empty",
        column_config={
            "gpu_type": st.column_config.TextColumn("GPU type", help="catalogue SKU or alias, or a custom name "
                                                    "with every datasheet column filled in"),
            "count": st.column_config.NumberColumn("count", help="GPUs available", format="%d"),
            "memory_gb": st.column_config.NumberColumn("mem (GB)", format="%g"),
            "price_usd_per_hour": st.column_config.NumberColumn("$/GPU-hour", format="%.3f"),
            "gpus_per_node": st.column_config.NumberColumn("per node", format="%d"),
            "fp16_dense_tflops": st.column_config.NumberColumn("TFLOP/s fp16", format="%g"),
            "hbm_gb_per_s": st.column_config.NumberColumn("HBM GB/s", format="%g"),
            "intra_link": st.column_config.SelectboxColumn("link", options=["nvlink", "pcie"]),
            "intra_link_gb_per_s": st.column_config.NumberColumn("link GB/s", format="%g"),
        })
    pool_cell_errors()
    state.reconcile_net()
    st.markdown("**Stage-to-stage bandwidth by GPU-type pair** (GB/s)")
    stable_editor(
        "net", num_rows="fixed", width="stretch", hide_index=True,
        disabled=["gpu_type_a", "gpu_type_b"],
        column_config={"gpu_type_a": st.column_config.TextColumn("GPU type A"),
                       "gpu_type_b": st.column_config.TextColumn("GPU type B"),
                       "gb_per_s": st.column_config.NumberColumn("bandwidth (GB/s)", format="%g")})
    st.caption(f"Pairs not listed use the default inter-node bandwidth of {s['net_default']:g} GB/s. A per-GPU "
               "bandwidth matrix is shown reduced to its slowest link per type pair; an edit here replaces it with "
               "this by-type table.")


def pool_cell_errors() -> None:
    """Next to the pool table: every bad cell by table, row and column as shown, and a copy of the table
    with those cells marked (the editor cannot colour a single cell)."""
    s = st.session_state
    state.sync_editor("pool")
    state.current_scenario()  # sets _pool_marks from the current table
    marks = s.get("_pool_marks") or []
    filled = s.pop("_pool_filled", None)
    if filled:
        st.info("Filled from the catalogue:\n" + md_lines(filled), icon=":material/input:")
    if not marks:
        return
    err = cell_check.as_input_error(marks, s["pool"])
    st.error(f"**{len(marks)} cell(s) of the GPU pool table need a value** (nothing is taken from the "
             f"catalogue silently):\n{md_lines(err.problems)}", icon=":material/error:")
    if any(m.message.startswith("empty: enter a value") for m in marks):
        st.button("Fill empty cells from the catalogue", key="fill_pool", on_click=state.fill_pool_from_catalogue,
                  icon=":material/input:")
    st.caption("The GPU pool table with the cells to fix marked:")
    st.dataframe(cell_check.marked_frame(s["pool"], marks), width="stretch", key="pool_marked", placeholder="–")


def _max(widget: str) -> int | float:
    """The widget's upper limit: the parameter's own (planner/parameters.py), as the CLI and config.csv check it."""
    p = T.parameter(widget)
    return int(p.maximum) if p.integer else float(p.maximum)


def search_settings():
    """Returns the containers the live problem-size preview and the weighted pick's frontier chart are
    drawn into."""
    s = st.session_state
    c1, c2 = st.columns([1, 1])
    with c1:
        st.radio("Method", [str(m) for m in T.parameter("method").choices], key="method", horizontal=True,
                 help=T.parameter("method").help)
        weighted = s["method"] == "weighted"
        st.slider("Cost weight (weighted method: 0 = fastest plan, 1 = cheapest plan)", 0.0, 1.0, step=0.05,
                  key="cost_weight", disabled=not weighted,
                  help="normalised: 0..1 spans the Pareto frontier, from the fastest to the cheapest plan; the "
                       "pick is marked on the frontier chart under the result")
        st.radio("Cost-weight scaling", T.parameter("weight_scaling").choices, key="weight_scaling", horizontal=True,
                 disabled=not weighted,
                 format_func=lambda x: ("normalised over the frontier" if x == "normalised"
                                        else "seed (tokens/s ÷ 10,000 against $/h)"),
                 help="seed: the original project's scaling, kept for its users; with it most weights pick "
                      "the same plan")
        st.select_slider("Layer-split quantization", options=list(T.parameter("quantization").choices), key="quantization",
                         help="coarse/fine: the seed's size sets; even: 1 and every even size; full: every size 1..L")
        st.checkbox("Custom segment sizes", key="custom_sizes",
                    help="edit the list of allowed stage sizes (layers) instead of using the quantization's set")
        st.text_input("Segment sizes (layers per stage, ;-separated)", key="segment_sizes_text",
                      disabled=not s["custom_sizes"])
        st.text_input("Budget factors (enumeration: × ballpark $/h, ;-separated, increasing)",
                      key="budget_factors_text", disabled=s["method"] != "enumeration")
        frontier_box = st.container()
    with c2:
        st.number_input("Competitor target ($ per million tokens, 0 = none)", min_value=0.0, step=0.05,
                        format="%.4f", key="target")
        a, b = st.columns(2)
        a.number_input("Max pipeline stages", min_value=1, max_value=_max("max_stages"), key="max_stages")
        b.number_input("Min layers per stage", min_value=1, max_value=_max("min_layers"), key="min_layers")
        st.number_input("Solver time limit (s)", min_value=1.0, max_value=_max("time_limit"), step=10.0, key="time_limit")
        return st.container(), frontier_box


def problem_size_preview(box, cs, sizes) -> None:
    """Live: options usable / excluded for the current texts."""
    with box:
        if isinstance(cs, InputError):
            st.warning("Problem size: " + "; ".join(md(p) for p in cs.problems))
            return
        levels = ", ".join(str(c) for c in cs.levels)
        st.metric("Stage options usable (in the MILP)", f"{len(cs.options):,}",
                  help="option = size × role × GPU type × TP × pipeline level (microbatch, stage count), after the "
                       "memory filter and dominance")
        tp = "; ".join(f"{md(t)}: {', '.join(str(d) for d in ds)}" for t, ds in dict(cs.tp_degrees).items())
        st.caption(f"{len(cs.excluded):,} options excluded (memory or latency limit does not fit, or dominated) · "
                   f"segment sizes (layers): {', '.join(str(x) for x in sizes)} · TP degrees: {tp} · pipeline "
                   f"levels: {levels}")
