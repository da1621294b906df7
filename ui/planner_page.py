"""The Planner page (the app's main page) and its solve state machine.

The state is the scenario's file texts (config.csv, gpu_pool.csv, network file); every widget edit is
written back into them and parsed by planner.scenario_from_texts. Results are shared by every session
(solver.results, keyed on the texts).

The answer comes first, in the order the browser receives it: when the headline can be had at once (a
cached result, or the exact solve of a small problem, solved here in a fraction of a second), it is drawn
before the inputs, and the heavy modules (Plotly, the charts) are imported only after it is sent. Other
solves run in worker processes, at most PLANNER_MAX_SOLVERS at once server-wide (the rest queued, their
place in line shown), shared by every session that asks for the same one; Cancel lets go of a solve (its
worker ends when no session waits for it).
"""
from __future__ import annotations

import logging
import time

import streamlit as st

# above BIG_PROBLEM_OPTIONS stage options, solve only on request (the command line's --allow-large limit)
from planner.candidates import LARGE_PROBLEM_OPTIONS as BIG_PROBLEM_OPTIONS
from planner.candidates import QUANTIZATION_LEVELS

from . import keys as K
from . import scenario_texts as T
from . import first_view, prewarm, solve_slots, solver, state
from .headline import render_head
from .text import md, md_lines, ordinal

log = logging.getLogger(__name__)
POLL_S = 0.25  # how often a running solve is checked; each check is also where a Cancel click lands
# On a session's first view, the script waits this long after sending the headline, so that the browser draws
# it before the rest of the page (inputs, grids, charts) arrives and keeps its main thread busy for seconds
# (longer while other browsers are still on their way to their headline: ui.first_view).
# Measured on 2 loaded cores with chromium (benchmarks/first_screen.py): headline 5.6 s after opening the
# page with the pause, 15-21 s without; a second session 2.8 s against 9-20 s. PLANNER_FIRST_VIEW_PAUSE_S
# overrides it (0: no pause).
FIRST_VIEW_PAUSE_S = 1.0


def first_view_pause_s() -> float:
    return first_view.seconds_setting("PLANNER_FIRST_VIEW_PAUSE_S", FIRST_VIEW_PAUSE_S, 10.0)


def show_last(reason: str, details=None, frontier_box=None) -> None:
    from . import inputs, results

    last = st.session_state.get(K.LAST_GOOD)
    if last is not None:
        results.render(last["outcome"], last["exact"], last.get("frontier"), last["scenario"], last["name"],
                       stale=f"{reason} Result shown: scenario '{md(last['name'])}'.", details=details,
                       use_case_note=inputs.use_case_warning(last["outcome"].result.plan),
                       frontier_box=frontier_box)


def settle_job(want: tuple) -> solve_slots.Ticket | None:
    """The session's running solve if it is still wanted; a Cancel click or changed settings end it."""
    s = st.session_state
    held = s.get(K.JOB)
    if held is None:
        return None
    job_want, job = held
    if s.get(K.CANCEL_SOLVE) or job_want != want:
        job.cancel()
        if s.get(K.CANCEL_SOLVE) and job.state == "cancelled":
            s[K.CANCELLED] = (job_want, job.elapsed_s)
        del s[K.JOB]
        return None
    return job


def drop_job(job) -> None:
    """Forget the session's solve once it has ended (if it is still the one held)."""
    s = st.session_state
    if s.get(K.JOB, (None, None))[1] is job:
        del s[K.JOB]


def wait_for(job: solve_slots.Ticket, time_limit_s: float, status=None, label: str = "", until: tuple[str, ...] = (),
             cancellable: bool = True) -> None:
    """Poll the solve until it finishes (or, with `until`, until those methods are solved), with a Cancel
    button beside the elapsed time; while it waits for one of the server's solve slots, its place in the
    queue. A click reruns the script: this run is stopped at its next element update and the new run lets
    go of the solve (ended if no other session waits)."""
    cancel_slot = st.empty()
    if cancellable:
        cancel_slot.button("Cancel solve", key=K.CANCEL_SOLVE, icon=":material/stop_circle:",
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
            running, queued = solve_slots.solve_pool().counts()
            text = f"Queued: {ordinal(pos)} in line"
            if status is not None and shown != text:
                status.update(label=f"{text} — {label}", state="running", expanded=True)
            bar.info(f"**{text}.** This server runs at most {solve_slots.solve_pool().limit} solve(s) at a time "
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


def may_solve_unasked(want: tuple) -> bool:
    """Whether this run may solve without a Solve-now click: automatic solving on, and this setting not
    cancelled (a cancelled setting waits for Solve now)."""
    s = st.session_state
    if s.get(K.SOLVE_BUTTON):
        return True
    if not s.get(K.AUTO_SOLVE, True) or s.get(K.CANCEL_SOLVE):
        return False
    return s.get(K.CANCELLED, (None, None))[0] != want


def begin_solve(sc, err, key, ckey, cs=None) -> None:
    """Start the worker solve as soon as the scenario is known, before the inputs and the problem-size
    preview are drawn, so that it runs on the other core meanwhile. Only for automatic solves of problems
    known (or, going by the last one seen, likely) to be small; result_section decides everything else.
    With `cs` (built here already) the worker does not build the candidates again."""
    s = st.session_state
    if sc is None or err is not None or not s.get(K.AUTO_SOLVE, True) or s.get(K.SOLVE_BUTTON) \
            or s.get(K.CANCEL_SOLVE):
        return
    want = (key, ckey, s[K.METHOD])
    running = s.get(K.JOB, (None, None))[0] == want
    cancelled = s.get(K.CANCELLED, (None, None))[0] == want
    if running or cancelled:
        return
    missing = tuple(m for m in methods_for(s[K.METHOD]) if solver.results().get((key, ckey, m)) is None)
    known = solver.option_count(key, ckey)
    if not missing or (known if known is not None else 2 * s.get(K.OPTIONS_SEEN, 0)) > BIG_PROBLEM_OPTIONS:
        return
    settle_job(want)  # stops a solve of other settings
    s[K.JOB] = (want, solve_slots.submit(sc, cs, key, ckey, missing, max_options=BIG_PROBLEM_OPTIONS))


def instant_outcomes(sc, err, key, ckey, name: str) -> tuple[dict, bool] | None:
    """The headline's outcomes if they can be had without waiting: from the shared cache, or by solving
    the exact method of a small problem here. Returns (outcomes by method, whether all came from the cache),
    or None (the worker path in result_section decides)."""
    s = st.session_state
    if sc is None or err is not None:
        return None
    method = s[K.METHOD]
    want = (key, ckey, method)
    head = headline_methods(method)
    outcomes = {m: solver.results().get((key, ckey, m)) for m in head}
    cached = all(o is not None for o in outcomes.values())
    if not cached:
        if not may_solve_unasked(want):
            return None
        cs = solver.candidates(key, name, ckey)
        if not all(o is not None or solver.inline_ok(m, cs) for m, o in outcomes.items()):
            return None
        for m, o in outcomes.items():
            if o is None:
                outcomes[m] = solver.solve_inline(sc, cs, key, ckey, m, deadline_s=solver.INLINE_DEADLINE_S)
                if outcomes[m] is None:  # not done in time: a worker solves it (result_section)
                    return None
    if any(o.error is not None for o in outcomes.values()):
        return None  # errors are drawn by result_section, with the last good result beside them
    if s.get(K.FIRST_VIEW_DONE) and solver.results().get((key, ckey, solver.FRONTIER)) is None \
            and may_solve_unasked(want) and solve_slots.solve_pool().counts() == (0, 0) \
            and not solve_slots.prefetcher().live():
        # a small frontier is solved here too, before anything is sent (solver.INLINE_FRONTIER_MAX_OPTIONS),
        # when no other solve runs: under load it waits for a worker slot like any other (the server-wide
        # cap), and does not hold this process's interpreter from other sessions; not on the first view,
        # whose headline comes first
        cs = solver.candidates(key, name, ckey)
        if solver.inline_ok(solver.FRONTIER, cs):  # (given up after a deadline: then a worker solves it)
            solver.solve_inline(sc, cs, key, ckey, solver.FRONTIER, deadline_s=solver.INLINE_FRONTIER_DEADLINE_S)
    return outcomes, cached


def solved_status(outcome, method: str, cached: bool, status=None) -> None:
    """The solve's one-line status (complete), with the budget curve points inside."""
    r = outcome.result
    label = (f"Solved ({method}): {r.status}, {r.solve_seconds + r.build_seconds:.2f} s"
             + (" — from cache" if cached else ""))
    # A new st.status sleeps 50 ms in the script (for its spinner) and this one is drawn before the headline,
    # on every run: an expander with the same check mark looks the same and costs nothing.
    box = st.expander(label, expanded=False, icon=":material/check_circle:") if status is None else status
    with box:
        for p in (r.curve if r else ()):
            tail = (f"{p.tokens_per_s:,.0f} tokens/s at ${p.cost_usd_per_hour:.2f}/h, "
                    f"${p.usd_per_million_tokens:.4f}/M tokens" if p.plan else "")
            st.write(f"budget ${p.budget_usd_per_hour:.2f}/h: {p.status} {tail}")
    if status is not None:
        status.update(label=label, state="complete")


def draw_head(outcome, exact, sc, defer_range: bool = False, use_case: str | None = None):
    from .inputs import use_case_warning

    return render_head(outcome, exact, use_case_note=use_case_warning(outcome.result.plan, use_case), sc=sc,
                       defer_range=defer_range)


def draw_instant(top, outcomes: dict, method: str, cached: bool, sc, use_case: str | None = None):
    """An answer had at once, into `top`: its status line and the headline (range deferred); returns the
    function that draws the range."""
    with top.container():
        solved_status(outcomes[method], method, cached)
        return draw_head(outcomes[method], outcomes["exact"], sc, defer_range=True, use_case=use_case)


def early_headline(top) -> tuple[tuple, object] | None:
    """A fresh session's headline, drawn into `top` before the session's state exists, when it opens on the
    default scenario and the server's warm-up has its answer (ui.prewarm, waited for while it is being
    solved). Building the state makes the GPU pool's tables, and the first table of a server process
    imports pandas (0.5-0.7 s of a cold server's first screen); the answer needs none of it.

    Drawn as the page would draw it (draw_instant) from what loading the scenario sets (its
    method and use case). Returns ((texts key, catalogue key, method), the headline's deferred range), or
    None (nothing drawn: the page draws the headline as usual)."""
    if K.BASE_TEXTS in st.session_state:
        return None
    asked = st.query_params.get("scenario", "")
    if asked in T.bundled_names() and asked != T.DEFAULT_SCENARIO:
        return None
    prewarm.wait_for_default()
    key, name, ckey = prewarm.default_texts()
    sc = solver.scenario(key, name, ckey)
    if isinstance(sc, Exception):
        return None
    method = sc.settings.method
    outcomes = {m: solver.results().get((key, ckey, m)) for m in headline_methods(method)}
    if any(o is None or o.error is not None for o in outcomes.values()):
        return None
    return (key, ckey, method), draw_instant(top, outcomes, method, True, sc, use_case=T.use_case_of(sc.settings))


def too_large(cs, sc, details=None, frontier_box=None) -> None:
    st.info(f"Large problem ({len(cs.options):,} stage options): it is not solved automatically, as a solve can "
            f"take up to the time limit ({sc.settings.time_limit_s:g} s). Press **Solve now** in the sidebar.",
            icon=":material/pause_circle:")
    show_last("Showing the last result; the settings have changed since.", details, frontier_box)


def result_section(sc, err, key, ckey, name: str, details=None, frontier_box=None, head_drawn: bool = False) -> None:
    """The solve and its headline, here; the result's charts and tables into `details`. With `head_drawn`
    the headline of these settings is on the page already (`instant_outcomes`): only the details follow."""
    from . import results

    s = st.session_state
    method = s[K.METHOD]
    want = (key, ckey, method)
    job = settle_job(want)
    methods = methods_for(method)
    outcomes = {m: solver.results().get((key, ckey, m)) for m in methods}
    cached = all(o is not None for o in outcomes.values())
    pressed = s.get(K.SOLVE_BUTTON)
    if pressed:
        s.pop(K.CANCELLED, None)
    cancelled = s.get(K.CANCELLED)
    stale = "Showing the last result; the settings have changed since."
    head = headline_methods(method)

    if err is not None:
        results.show_error(err)
        show_last("Showing the last valid result (before the invalid edit); fix the problems above to re-solve.",
                  details, frontier_box)
        return
    cs = solver.candidates(key, name, ckey)
    if head_drawn:
        big = isinstance(cs, Exception) or len(cs.options) > BIG_PROBLEM_OPTIONS
        if job is None and not cached and may_solve_unasked(want) and (pressed or not big):
            # the frontier for the curve, in a worker (cancellable, below the answer)
            job = solve_slots.submit(sc, cs, key, ckey, tuple(m for m in methods if outcomes[m] is None))
            s[K.JOB] = (want, job)
    elif not cached and job is None:
        if cancelled is not None and cancelled[0] == want:
            st.warning(f"Solve cancelled after {cancelled[1]:.1f} s. Your inputs are kept; press **Solve now** "
                       "in the sidebar to run it again.", icon=":material/cancel:")
            show_last("Showing the last result; the solve of the current settings was cancelled.", details,
                      frontier_box)
            return
        if not pressed and not s.get(K.AUTO_SOLVE, True):
            st.info("Automatic solving is off: press **Solve now** in the sidebar.", icon=":material/pause_circle:")
            show_last(stale, details, frontier_box)
            return
        if not pressed and not isinstance(cs, Exception) and len(cs.options) > BIG_PROBLEM_OPTIONS:
            too_large(cs, sc, details, frontier_box)
            return
        if isinstance(cs, Exception):
            results.show_error(cs)
            show_last("Showing the last result that solved.", details, frontier_box)
            return
        missing = tuple(m for m in methods if outcomes[m] is None)
        job = solve_slots.submit(sc, cs, key, ckey, missing)  # joins the same solve if it is queued or running
        s[K.JOB] = (want, job)

    if not head_drawn:
        label = f"Solving {md(name)} with the {method} method…"
        with st.status(label, expanded=False) as status:
            if not isinstance(cs, Exception):
                st.write(f"{len(cs.options):,} stage options usable, {len(cs.excluded):,} excluded; "
                         f"{len(cs.levels)} pipeline level(s).")
            if job is not None:
                status.update(expanded=True)
                wait_for(job, sc.settings.time_limit_s, status, label, until=head)
                if job.skipped and pressed:  # a worker that found the problem too large to solve unasked
                    job = solve_slots.submit(sc, cs, key, ckey, job.methods)
                    s[K.JOB] = (want, job)
                    wait_for(job, sc.settings.time_limit_s, status, label, until=head)
                if job.poll():
                    drop_job(job)
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
                if outcomes[method].error is not None:
                    status.update(label=f"{method}: {type(outcomes[method].error).__name__}", state="error")
                else:
                    solved_status(outcomes[method], method, cached, status)
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
        if outcomes[method].error is not None:
            results.show_error(outcomes[method].error)
            show_last("Showing the last result that solved.", details, frontier_box)
            return
    outcome, exact = outcomes[method], outcomes["exact"]
    if not head_drawn:
        draw_head(outcome, exact, sc)
    frontier = outcomes.get(solver.FRONTIER)
    with details:
        if frontier is None and job is not None:  # the answer is on screen; the curve's frontier follows
            with st.spinner("Computing the cost/throughput frontier for the $/token curve…"):
                wait_for(job, sc.settings.time_limit_s, cancellable=False)
            drop_job(job)
            frontier = job.outcomes.get(solver.FRONTIER)
    s[K.LAST_GOOD] = {"outcome": outcome, "exact": exact, "frontier": frontier, "scenario": sc, "name": name}
    results.render_details(outcome, exact, frontier, sc, name, details=details, frontier_box=frontier_box)
    presolve_neighbours(ckey, name, methods)


def presolve_neighbours(ckey, name: str, methods: tuple[str, ...]) -> None:
    """With the result on screen, pre-solve the quantization slider's two neighbours (solve_slots.Prefetcher),
    so that moving the slider one step is answered from the cache."""
    s = st.session_state
    if not (s.get(K.AUTO_SOLVE, True) and s.get(K.PRESOLVE, True)) or s.get(K.CUSTOM_SIZES):
        return
    levels = list(QUANTIZATION_LEVELS)
    if s.get(K.QUANTIZATION) not in levels:
        return
    here = levels.index(s[K.QUANTIZATION])
    memo = (T.texts_key(s[K.TEXTS]), ckey, methods)
    if s.get(K.NEIGHBOURS, (None,))[0] != memo:  # rebuilt only when the settings change, not on every rerun
        tasks = []
        for q in (levels[i] for i in (here + 1, here - 1) if 0 <= i < len(levels)):
            texts = state.texts_with(quantization=q)
            nsc = None if texts is None else solver.scenario(T.texts_key(texts), name, ckey)
            if nsc is not None and not isinstance(nsc, Exception):
                tasks.append((nsc, T.texts_key(texts), ckey, methods))
        s[K.NEIGHBOURS] = (memo, tasks)
    tasks = s[K.NEIGHBOURS][1]
    if tasks:
        solve_slots.prefetcher().request(tasks, max_options=BIG_PROBLEM_OPTIONS)


def render() -> None:
    st.set_page_config(page_title="GPU pipeline planner", page_icon="🧮", layout="wide")
    st.title("GPU pipeline planner")
    # The answer first: the headline is drawn into this box, above the inputs, whichever input tab is open.
    # It is also the first thing sent to the browser when it can be had at once.
    top = st.empty()
    early = early_headline(top)
    state.ensure(widgets=True)
    state.process_uploads()
    state.process_pick()
    texts = state.prepare()
    s = st.session_state
    first_key, ckey, name = T.texts_key(texts), state.cat_key(), s[K.SCENARIO_NAME]
    sc, err = state.current_scenario()
    instant = instant_outcomes(sc, err, first_key, ckey, name)
    if instant is not None:
        outcomes, cached = instant
        method = s[K.METHOD]
        if early is not None and early[0] == (first_key, ckey, method):
            finish_head = early[1]  # this very headline is on the page already
        else:
            finish_head = draw_instant(top, outcomes, method, cached, sc)
    cs = solver.candidates(first_key, name, ckey) if sc is not None else None
    begin_solve(sc, err, first_key, ckey, cs if cs is not None and not isinstance(cs, Exception) else None)
    if instant is not None:
        prewarm.first_headline_sent.set()  # the server's warm-up may go on with the rest of the first view
    if not s.get(K.FIRST_VIEW_DONE):
        first_view.first_views.headline_sent()  # (or none could be had at once: not waited for either way)
        if instant is not None:  # the frontier's worker, just started, uses the pause too
            pause = first_view_pause_s()
            first_view.first_views.hold(pause, max(pause, first_view.max_wait_s()), sleep=time.sleep)
    s[K.FIRST_VIEW_DONE] = True

    from . import inputs, uncertainty_view  # after the headline: what only the inputs need

    with st.sidebar:
        inputs.scenario_source()
        uncertainty_view.pessimistic_switch()

    tab_work, tab_pool, tab_search = st.tabs(["Workload & model", "GPU pool & network", "Search settings"])
    with tab_work:
        inputs.workload_and_model()
    with tab_pool:
        inputs.pool_and_network()
    with tab_search:
        preview_box, frontier_box = inputs.search_settings()

    texts = state.rebuild_texts()
    key = T.texts_key(texts)
    sc, err = state.current_scenario()
    begin_solve(sc, err, key, ckey)  # texts changed by drawing the inputs: the solve started early is replaced
    cs = solver.candidates(key, name, ckey) if sc else err
    if not isinstance(cs, Exception):
        s[K.OPTIONS_SEEN] = len(cs.options)
    inputs.problem_size_preview(preview_box, cs, solver.sizes_for(key, name, ckey) if sc else ())
    details = st.container()
    if sc is not None and sc.warnings:
        with details.expander(f"Loading notes ({len(sc.warnings)}): what the loader assumed or ignored"):
            st.markdown(md_lines(sc.warnings))
    if instant is not None and key == first_key:
        result_section(sc, err, key, ckey, name, details, frontier_box, head_drawn=True)
        finish_head()
    else:
        with top.container():
            result_section(sc, err, key, ckey, name, details, frontier_box)
