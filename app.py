"""GPU pipeline planner: Streamlit dashboard. Entry point: `streamlit run app.py`.

This file is the navigation (main page "Planner", then every pages/*.py) and, run again by it, the main
page. The state is the scenario's file texts (config.csv, gpu_pool.csv, network file); every widget edit
is written back into them and parsed by planner.scenario_from_texts. Solves run in worker processes,
at most PLANNER_MAX_SOLVERS at once server-wide (the rest queued, their place in line shown), shared by
every session that asks for the same one; Cancel lets go of a solve (its worker ends when no session
waits for it); finished solves are cached on the texts for every session.
"""

import streamlit as st

# above BIG_PROBLEM_OPTIONS stage options, solve only on request (the command line's --allow-large limit)
from planner.candidates import LARGE_PROBLEM_OPTIONS as BIG_PROBLEM_OPTIONS
from planner.candidates import QUANTIZATION_LEVELS
from ui import inputs, results, solver, state, uncertainty_view
from ui import scenario_texts as T
from ui.text import md, md_lines, ordinal

POLL_S = 0.25  # how often a running solve is checked; each check is also where a Cancel click lands


def show_last(reason: str, details=None, frontier_box=None) -> None:
    last = st.session_state.get("last_good")
    if last is not None:
        results.render(last["outcome"], last["exact"], last.get("frontier"), last["scenario"], last["name"],
                       stale=f"{reason} Result shown: scenario '{md(last['name'])}'.", details=details,
                       use_case_note=inputs.use_case_warning(last["outcome"].result.plan),
                       frontier_box=frontier_box)



def settle_job(want: tuple) -> solver.Ticket | None:
    """The session's running solve if it is still wanted; a Cancel click or changed settings end it."""
    s = st.session_state
    held = s.get("_job")
    if held is None:
        return None
    job_want, job = held
    if s.get("cancel_solve") or job_want != want:
        job.cancel()
        if s.get("cancel_solve") and job.state == "cancelled":
            s["_cancelled"] = (job_want, job.elapsed_s)
        del s["_job"]
        return None
    return job


def wait_for(job: solver.Ticket, time_limit_s: float, status=None, label: str = "", until: tuple[str, ...] = (),
             cancellable: bool = True) -> None:
    """Poll the solve until it finishes (or, with `until`, until those methods are solved), with a Cancel
    button beside the elapsed time; while it waits for one of the server's solve slots, its place in the
    queue. A click reruns the script: this run is stopped at its next element update and the new run lets
    go of the solve (ended if no other session waits)."""
    cancel_slot = st.empty()
    if cancellable:
        cancel_slot.button("Cancel solve", key="cancel_solve", icon=":material/stop_circle:",
                           help="Stop the solver; the inputs and the last result are kept")
    bar, ticker = st.empty(), st.empty()
    shown = None
    while not job.poll():
        if until and all(m in job.outcomes for m in until):
            break
        pos = job.position
        others = (f" {job.shared_with} other session(s) wait for the same solve and will get its result too."
                  if job.shared_with else "")
        if pos:
            running, queued = solver.solve_pool().counts()
            text = f"Queued: {ordinal(pos)} in line"
            if status is not None and shown != text:
                status.update(label=f"{text} — {label}", state="running", expanded=True)
            bar.info(f"**{text}.** This server runs at most {solver.solve_pool().limit} solve(s) at a time "
                     f"({running} running, {queued} queued); yours starts when a slot frees up.{others}",
                     icon=":material/hourglass_top:")
            ticker.caption(f"Waiting for {job.elapsed_s:.1f} s.")
        else:
            if status is not None and shown != label:
                status.update(label=label, state="running", expanded=True)
            text = label
            if job.progress is not None:
                _, fraction, message = job.progress
                bar.progress(min(1.0, max(0.0, fraction)), text=message)
            done = ", ".join(job.outcomes) or "nothing"
            ticker.caption(f"Solving for {job.elapsed_s:.1f} s (time limit {time_limit_s:g} s per method; "
                           f"finished: {done}).{others}")
        shown = text
        job.wait(POLL_S)
    for slot in (bar, ticker, cancel_slot):
        slot.empty()


def headline_methods(method: str) -> tuple[str, ...]:
    """What the headline needs: the chosen method, and the exact optimum to compare a heuristic with."""
    return (method,) if method == "exact" else (method, "exact")


def methods_for(method: str) -> tuple[str, ...]:
    """What the page solves, in this order: the headline's methods, then the frontier for the curve."""
    return headline_methods(method) + (solver.FRONTIER,)


def begin_solve(sc, err, key, ckey) -> None:
    """Start the solve as soon as the scenario is known, before the inputs and the problem-size preview
    are drawn: the worker builds its own candidates, so the ones built here for the preview are built at
    the same time on the other core. Only for automatic solves of problems known (or, going by the last
    one seen, likely) to be small; result_section decides everything else."""
    s = st.session_state
    if sc is None or err is not None or not s.get("auto_solve", True) or s.get("solve_button") \
            or s.get("cancel_solve"):
        return
    want = (key, ckey, s["method"])
    running = s.get("_job", (None, None))[0] == want
    cancelled = s.get("_cancelled", (None, None))[0] == want
    if running or cancelled:
        return
    missing = tuple(m for m in methods_for(s["method"]) if solver.results().get((key, ckey, m)) is None)
    known = solver.option_count(key, ckey)
    if not missing or (known if known is not None else 2 * s.get("_options_seen", 0)) > BIG_PROBLEM_OPTIONS:
        return
    settle_job(want)  # stops a solve of other settings
    s["_job"] = (want, solver.submit(sc, None, key, ckey, missing, max_options=BIG_PROBLEM_OPTIONS))


def too_large(cs, sc, details=None, frontier_box=None) -> None:
    st.info(f"Large problem ({len(cs.options):,} stage options): it is not solved automatically, as a solve can "
            f"take up to the time limit ({sc.settings.time_limit_s:g} s). Press **Solve now** in the sidebar.",
            icon=":material/pause_circle:")
    show_last("Showing the last result; the settings have changed since.", details, frontier_box)


def result_section(sc, err, key, ckey, name: str, details=None, frontier_box=None) -> None:
    """The solve and its headline, here; the result's charts and tables into `details`."""
    s = st.session_state
    method = s["method"]
    want = (key, ckey, method)
    job = settle_job(want)
    methods = methods_for(method)
    outcomes = {m: solver.results().get((key, ckey, m)) for m in methods}
    cached = all(o is not None for o in outcomes.values())
    pressed = s.get("solve_button")
    if pressed:
        s.pop("_cancelled", None)
    cancelled = s.get("_cancelled")
    stale = "Showing the last result; the settings have changed since."

    if err is not None:
        results.show_error(err)
        show_last("Showing the last valid result (before the invalid edit); fix the problems above to re-solve.",
                  details, frontier_box)
        return
    if not cached and job is None:
        if cancelled is not None and cancelled[0] == want:
            st.warning(f"Solve cancelled after {cancelled[1]:.1f} s. Your inputs are kept; press **Solve now** "
                       "in the sidebar to run it again.", icon=":material/cancel:")
            show_last("Showing the last result; the solve of the current settings was cancelled.", details,
                      frontier_box)
            return
        if not pressed and not s.get("auto_solve", True):
            st.info("Automatic solving is off: press **Solve now** in the sidebar.", icon=":material/pause_circle:")
            show_last(stale, details, frontier_box)
            return
        cs = solver.candidates(key, name, ckey)
        if not pressed and not isinstance(cs, Exception) and len(cs.options) > BIG_PROBLEM_OPTIONS:
            too_large(cs, sc, details, frontier_box)
            return
        if isinstance(cs, Exception):
            results.show_error(cs)
            show_last("Showing the last result that solved.", details, frontier_box)
            return
        missing = tuple(m for m in methods if outcomes[m] is None)
        job = solver.submit(sc, cs, key, ckey, missing)  # joins the same solve if it is queued or running
        s["_job"] = (want, job)

    label = f"Solving {md(name)} with the {method} method…"
    with st.status(label, expanded=False) as status:
        cs = solver.candidates(key, name, ckey)
        if not isinstance(cs, Exception):
            st.write(f"{len(cs.options):,} stage options usable, {len(cs.excluded):,} excluded; "
                     f"{len(cs.levels)} pipeline level(s).")
        head = headline_methods(method)
        if job is not None:
            status.update(expanded=True)
            wait_for(job, sc.settings.time_limit_s, status, label, until=head)
            if job.skipped and pressed:  # a worker that found the problem too large to solve unasked
                job = solver.submit(sc, cs, key, ckey, job.methods)
                s["_job"] = (want, job)
                wait_for(job, sc.settings.time_limit_s, status, label, until=head)
            finished = job.poll()
            if finished and s.get("_job", (None, None))[1] is job:
                del s["_job"]
            outcomes.update(job.outcomes)
            if job.skipped:
                status.update(label=f"{method}: waiting for Solve now (too many stage options to solve unasked)",
                              state="complete", expanded=False)
                outcomes = None
            elif any(outcomes.get(m) is None for m in head):
                status.update(label=f"{method}: {job.state}", state="error", expanded=False)
                outcomes = None
            else:
                status.update(expanded=False)
        if outcomes is not None:
            outcome = outcomes[method]
            for p in (outcome.result.curve if outcome.result else ()):
                tail = (f"{p.tokens_per_s:,.0f} tokens/s at ${p.cost_usd_per_hour:.2f}/h, "
                        f"${p.usd_per_million_tokens:.4f}/M tokens" if p.plan else "")
                st.write(f"budget ${p.budget_usd_per_hour:.2f}/h: {p.status} {tail}")
            if outcome.error is not None:
                status.update(label=f"{method}: {type(outcome.error).__name__}", state="error")
            else:
                r = outcome.result
                status.update(label=(f"Solved ({method}): {r.status}, {r.solve_seconds + r.build_seconds:.2f} s"
                                     + (" — from cache" if cached else "")), state="complete")
    if job is not None and job.skipped:
        too_large(cs, sc, details, frontier_box)
        return
    if outcomes is None:
        if job.state == "cancelled":  # ended by a newer run of this session
            st.warning("Solve cancelled.", icon=":material/cancel:")
        else:
            st.error(f"**The solve did not finish**: {job.failure}", icon=":material/error:")
        show_last("Showing the last result that solved.", details, frontier_box)
        return
    outcome, exact = outcomes[method], outcomes["exact"]
    if outcome.error is not None:
        results.show_error(outcome.error)
        show_last("Showing the last result that solved.", details, frontier_box)
        return
    note = inputs.use_case_warning(outcome.result.plan)
    results.render_head(outcome, exact, use_case_note=note, sc=sc)
    frontier = outcomes.get(solver.FRONTIER)
    with details:
        if frontier is None and job is not None:  # the answer is on screen; the curve's frontier follows
            with st.spinner("Computing the cost/throughput frontier for the $/token curve…"):
                wait_for(job, sc.settings.time_limit_s, cancellable=False)
            if s.get("_job", (None, None))[1] is job:
                del s["_job"]
            frontier = job.outcomes.get(solver.FRONTIER)
    s["last_good"] = {"outcome": outcome, "exact": exact, "frontier": frontier, "scenario": sc, "name": name}
    results.render_details(outcome, exact, frontier, sc, name, details=details, frontier_box=frontier_box)
    presolve_neighbours(ckey, name, methods)


def presolve_neighbours(ckey, name: str, methods: tuple[str, ...]) -> None:
    """With the result on screen, pre-solve the quantization slider's two neighbours (solver.Prefetcher),
    so that moving the slider one step is answered from the cache."""
    s = st.session_state
    if not (s.get("auto_solve", True) and s.get("presolve", True)) or s.get("custom_sizes"):
        return
    levels = list(QUANTIZATION_LEVELS)
    if s.get("quantization") not in levels:
        return
    here = levels.index(s["quantization"])
    memo = (T.texts_key(s["texts"]), ckey, methods)
    if s.get("_neighbours", (None,))[0] != memo:  # rebuilt only when the settings change, not on every rerun
        tasks = []
        for q in (levels[i] for i in (here + 1, here - 1) if 0 <= i < len(levels)):
            texts = state.texts_with(quantization=q)
            nsc = None if texts is None else solver.scenario(T.texts_key(texts), name, ckey)
            if nsc is not None and not isinstance(nsc, Exception):
                tasks.append((nsc, T.texts_key(texts), ckey, methods))
        s["_neighbours"] = (memo, tasks)
    tasks = s["_neighbours"][1]
    if tasks:
        solver.prefetcher().request(tasks, max_options=BIG_PROBLEM_OPTIONS)


def planner_page() -> None:
    st.set_page_config(page_title="GPU pipeline planner", page_icon="🧮", layout="wide")
    state.ensure(widgets=True)
    state.process_uploads()
    state.process_pick()
    texts = state.prepare()
    s = st.session_state
    sc, err = state.current_scenario()
    begin_solve(sc, err, T.texts_key(texts), state.cat_key())

    with st.sidebar:
        inputs.scenario_source()
        uncertainty_view.pessimistic_switch()

    st.title("GPU pipeline planner")
    # The answer first: the headline is drawn into this box (after the inputs below are read), so it is on
    # the first screen whichever input tab is open.
    top = st.container()

    tab_work, tab_pool, tab_search = st.tabs(["Workload & model", "GPU pool & network", "Search settings"])
    with tab_work:
        inputs.workload_and_model()
    with tab_pool:
        inputs.pool_and_network()
    with tab_search:
        preview_box, frontier_box = inputs.search_settings()

    texts = state.rebuild_texts()
    key = T.texts_key(texts)
    name = s["scenario_name"]
    ckey = state.cat_key()
    sc, err = state.current_scenario()
    begin_solve(sc, err, key, ckey)  # texts changed by drawing the inputs: the solve started early is replaced
    cs = solver.candidates(key, name, ckey) if sc else err
    if not isinstance(cs, Exception):
        s["_options_seen"] = len(cs.options)
    inputs.problem_size_preview(preview_box, cs, solver.sizes_for(key, name, ckey) if sc else ())
    details = st.container()
    if sc is not None and sc.warnings:
        with details.expander(f"Loading notes ({len(sc.warnings)}): what the loader assumed or ignored"):
            st.markdown(md_lines(sc.warnings))
    with top:
        result_section(sc, err, key, ckey, name, details, frontier_box)


if not state.route(__file__, "Planner"):
    planner_page()
