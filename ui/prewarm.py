"""Server start: warm the server up while the first browser is still loading the page (issue 14 item 8).

A cold `streamlit run app.py` answers its health check in about 1.5 s, but the first session's script only
starts about 2 s later, once the browser has loaded Streamlit's frontend; that script then spent ~1.6 s
importing pandas, Pyomo and the planner and ~0.5 s building and solving the default scenario before the
headline could be sent. `lifespan` (app.py hands it to Streamlit's st.App as its startup hook) does that work
in a background thread from the server's start instead, in the order the first view needs it:

1. the modules the Planner page imports (without pandas: see 2), and Streamlit's own once-per-process costs
   that the first session would otherwise pay before its headline (`streamlit_first_use`, ~0.5 s);
2. the default scenario's headline: parsed, its candidates built, its exact optimum solved into the shared
   result store (ui.solver), under the same keys a fresh session computes, so the first session (and every
   later one) takes it from the store — the solve itself is the same `solver.solve_inline`. A fresh session
   draws it before it builds its state (ui.planner_page.early_headline, which waits for this step), and so
   before it needs pandas for its tables;
3. once the first headline is out (or after `LATER_WAIT_S` without one), what the rest of the first view
   needs: pandas, the plotting and input modules and the prediction range's validation data
   (planner.uncertainty, about a second the first time in a process). Waiting keeps this off the GIL and
   the CPU while the browser loads Streamlit's frontend and a session builds its headline: with pandas
   (0.5-0.7 s) imported before the headline instead, a cold server's first headline came 0.4 s later
   (benchmarks/first_screen.py, alternating, 2 x 8 rounds, 2026-11-30: page open to headline 2.95 and 3.17 s
   against 3.33 and 3.51 s).
4. `gc.freeze()`: everything alive then lasts as long as the server, so the collector's full passes skip it.

Nothing here changes what a session shows: it only fills the same caches earlier. PLANNER_PREWARM=0 turns it
off (e.g. to measure a cold first session)."""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)
LATER_WAIT_S = 5.0  # stage 3 waits this long at most for a first headline

DEFAULT_WAIT_S = 5.0  # a fresh session waits this long at most for the default headline being solved here
first_headline_sent = threading.Event()  # set by the Planner page once a headline has been sent
default_tried = threading.Event()  # set once the default headline is solved into the store (or could not be)
done = threading.Event()  # set when the warm-up has finished (for tests and logs)
_started = threading.Lock()


def enabled() -> bool:
    return os.environ.get("PLANNER_PREWARM", "1").strip() != "0"


@asynccontextmanager
async def lifespan(_app):
    """st.App's startup hook: start the warm-up (once per process) and serve at once."""
    start()
    yield


def start() -> threading.Thread | None:
    """Start the warm-up thread, once per process; None if it is off or already started."""
    if not enabled() or not _started.acquire(blocking=False):
        return None
    thread = threading.Thread(target=warm, name="planner-prewarm", daemon=True)
    thread.start()
    return thread


def wait_for_default(timeout_s: float = DEFAULT_WAIT_S) -> None:
    """Until the warm-up has tried the default headline (at most `timeout_s`); at once without a warm-up."""
    if _started.locked():
        default_tried.wait(timeout_s)


def warm() -> None:
    t0 = time.perf_counter()
    try:
        from . import planner_page, state  # noqa: F401  (stage 1: what the page imports)

        streamlit_first_use()

        t1 = time.perf_counter()
        outcome = default_headline()
        default_tried.set()
        t2 = time.perf_counter()
        log.info("prewarm: imports %.2f s, default headline %.2f s (%s)", t1 - t0, t2 - t1,
                 "solved" if outcome is not None and outcome.error is None else "not solved")
        first_headline_sent.wait(LATER_WAIT_S)
        rest_of_first_view(outcome)
        log.info("prewarm: rest of the first view %.2f s", time.perf_counter() - t2)
        # What is alive now (the libraries, the catalogues, the default answer) lives as long as the server:
        # out of the collector's full passes, which otherwise walk it all (~0.2 s each, holding the GIL).
        gc.freeze()
    except Exception:  # a warm-up that fails must not take the server down: the sessions do the work then
        log.exception("prewarm failed; the first session does this work itself")
    finally:
        default_tried.set()  # (also when the warm-up failed: nobody waits for it then)
        done.set()


def streamlit_first_use() -> None:
    """What Streamlit does once per process on a session's first elements, done here instead: the emoji
    table behind st.set_page_config's emoji icon (one large regular expression compiled on first use) and,
    on the first element sent, the check whether Streamlit runs in a REPL (`inspect.stack()`, which resolves
    the path of every loaded module). Measured in a first session's run (profiled, 2026-11-30): 0.72 s and
    0.36 s before its headline. The check is a private function: without it (another Streamlit) the session
    pays for it as before."""
    from streamlit import delta_generator, string_util

    string_util.is_emoji("🧮")
    check = getattr(delta_generator, "_maybe_print_use_warning", None)
    if check is not None:
        check()  # from this thread: not a REPL, and the server's runtime exists, so it prints nothing


def default_texts():
    """(texts key, scenario name, catalogue key) of the page a fresh session opens, keyed as it keys them
    (tests/test_app_speed.py checks they are the same)."""
    from . import scenario_texts as T

    name = T.DEFAULT_SCENARIO
    return T.texts_key(T.load_bundled_texts(name)), name, T.texts_key(T.bundled_catalog_texts())


def default_headline():
    """The default scenario's headline outcome, solved into the shared store (None if it is too large to be
    solved in-process or does not parse: the session then does what it always does)."""
    from planner import InputError

    from . import solver

    key, name, ckey = default_texts()
    sc = solver.scenario(key, name, ckey)
    if isinstance(sc, InputError):
        return None
    solver.sizes_for(key, name, ckey)  # the segment sizes the page shows (state.prepare)
    cs = solver.candidates(key, name, ckey)
    if not solver.inline_ok("exact", cs):
        return None
    return solver.solve_inline(sc, cs, key, ckey, "exact")


def rest_of_first_view(outcome) -> None:
    from planner import InputError, PlannerError
    from planner.uncertainty import plan_range

    import pandas  # noqa: F401  (the session's tables: ui.pool_texts)

    from . import inputs, results  # noqa: F401  (the inputs, the charts and Plotly)
    from . import solver

    if outcome is None or outcome.error is not None or not outcome.result.plan.stages:
        return
    key, name, ckey = default_texts()
    sc = solver.scenario(key, name, ckey)
    if isinstance(sc, InputError):
        return
    try:
        plan_range(outcome.result.plan, sc)  # loads the catalogue's validation points (lru_cache)
    except PlannerError as exc:  # the page says so under the headline; nothing to warm
        log.info("prewarm: no prediction range for the default plan: %s", exc)
