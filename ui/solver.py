"""Cached calls into the planner, keyed on the scenario texts (+ catalogue texts), so that going back
to an earlier setting is instant. Errors the planner raises on purpose are returned, not raised, so
that they are cached too (an infeasible scenario is not re-explained on every rerun).

Solves run in a worker process (`Job`, see ui.worker) so that the app stays responsive and a solve can
be cancelled."""
from __future__ import annotations

import csv
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import streamlit as st

from planner import (CancelledError, Catalog, CandidateSet, InputError, Plan, Planner, PlannerError, Problem, Result, Scenario,
                     build_candidates, scenario_from_texts)
from planner.catalog import CONFIG_DIR, parse_engines, parse_gpus, parse_models
from planner.csvio import read_text
from planner.candidates import segment_sizes

from .worker import Worker

TextsKey = tuple[tuple[str, str], ...]
SolveKey = tuple[TextsKey, TextsKey, str]  # (scenario texts, catalogue texts, method)

log = logging.getLogger(__name__)
METHODS = ("exact", "enumeration", "weighted")
FRONTIER = "frontier"  # not a method of its own: the exact optimum with its frontier, for the curve
# A worker is killed when it outlives its time limit (per method) by this much: the time limit is not
# honoured everywhere (Pyomo's model build, HiGHS presolve of a huge model).
GRACE_S = 60.0
PROGRESS_EVERY_S = 0.2


@dataclass
class Outcome:
    """What a cached solve produced: a result, or the planner's error; and how long it took."""

    result: Result | None = None
    error: PlannerError | None = None
    seconds: float = 0.0
    frontier: tuple[Plan, ...] = field(default_factory=tuple)


@st.cache_resource(max_entries=8, show_spinner=False)
def catalog_from_texts(cat_key: TextsKey) -> Catalog | InputError:
    texts = dict(cat_key)
    problems: list[Problem] = []
    gpus = models = engines = None
    try:
        gpus, gpu_aliases = parse_gpus(texts["gpus.csv"], "gpus.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        models, model_aliases, sources = parse_models(texts["models.csv"], "models.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        # per-GPU efficiencies come from the bundled config/engine_gpus.csv (not editable in the app)
        engines = parse_engines(texts["engines.csv"], "engines.csv",
                                read_text(CONFIG_DIR / "engine_gpus.csv"), "engine_gpus.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        return InputError(problems)
    return Catalog(gpus, gpu_aliases, models, model_aliases, sources, engines)


@st.cache_resource(max_entries=64, show_spinner=False)
def scenario(texts: TextsKey, name: str, cat_key: TextsKey) -> Scenario | InputError:
    try:
        catalog = catalog_from_texts(cat_key)
        if isinstance(catalog, InputError):
            return catalog
        return scenario_from_texts(dict(texts), name=name, catalog=catalog)
    except InputError as exc:
        return exc
    except csv.Error as exc:  # the CSV reader's own refusal (e.g. a field over its size limit): an input problem
        return InputError(Problem(f"not readable as CSV ({exc})", ", ".join(sorted(dict(texts)))))


@st.cache_resource(max_entries=64, show_spinner=False)
def candidates(texts: TextsKey, name: str, cat_key: TextsKey) -> CandidateSet | InputError:
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return sc
    try:
        cs = build_candidates(sc)
    except InputError as exc:
        return exc
    _option_counts[(texts, cat_key)] = len(cs.options)
    while len(_option_counts) > OPTION_COUNTS_KEPT:  # oldest first: the keys hold whole scenario texts
        del _option_counts[next(iter(_option_counts))]
    return cs


OPTION_COUNTS_KEPT = 256
_option_counts: dict[tuple[TextsKey, TextsKey], int] = {}  # stage options by scenario, once built here


def option_count(texts: TextsKey, cat_key: TextsKey) -> int | None:
    """How many stage options the scenario has, if its candidates were built in this process."""
    return _option_counts.get((texts, cat_key))


@st.cache_resource(max_entries=64, show_spinner=False)
def sizes_for(texts: TextsKey, name: str, cat_key: TextsKey) -> tuple[int, ...] | InputError:
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return sc
    try:
        return segment_sizes(sc)[0]
    except InputError as exc:
        return exc


def run_method(sc: Scenario, cs: CandidateSet, method: str, progress=None, cancel=None) -> Outcome:
    """Solve with `method` in this process. "exact" is the proven optimum alone (fast: the headline);
    FRONTIER is the exact method with the whole cost/throughput frontier (for the budget curve), solved
    after it so that the answer is on screen first. `progress(fraction, message)` and `cancel` are the
    planner's (a set `cancel` makes the outcome's error a CancelledError)."""
    t0 = time.perf_counter()
    try:
        planner = Planner(sc, cs, cancel=cancel, progress=progress)
        if method == "exact":
            result = planner.exact(with_frontier=False)
            return Outcome(result, None, time.perf_counter() - t0)
        if method == FRONTIER:
            result = planner.exact(with_frontier=True)
            return Outcome(result, None, time.perf_counter() - t0, result.frontier)
        if method == "enumeration":
            result = planner.enumeration()
        elif method == "weighted":
            result = planner.weighted()
        else:
            raise InputError(f"unknown method '{method}' ({', '.join(METHODS)})")
    except PlannerError as exc:
        return Outcome(error=exc, seconds=time.perf_counter() - t0)
    return Outcome(result, None, time.perf_counter() - t0)


# ------------------------------------------------------------------ results shared by all sessions
class ResultStore:
    """Finished solves by (texts, catalogue, method), least recently used dropped first. Shared by
    every session: a result depends only on its key, so two sessions never see each other's state."""

    def __init__(self, max_entries: int = 64):
        self._items: OrderedDict[SolveKey, Outcome] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key: SolveKey) -> Outcome | None:
        with self._lock:
            out = self._items.get(key)
            if out is not None:
                self._items.move_to_end(key)
            return out

    def keys(self) -> list[SolveKey]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key: SolveKey, outcome: Outcome) -> None:
        with self._lock:
            self._items[key] = outcome
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def results() -> ResultStore:
    return ResultStore()


def solve(texts: TextsKey, name: str, cat_key: TextsKey, method: str) -> Outcome:
    """Blocking solve in this process (for callers that cannot show a cancel control); cached."""
    key = (texts, cat_key, method)
    cached = results().get(key)
    if cached is not None:
        return cached
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return Outcome(error=sc)
    cs = candidates(texts, name, cat_key)
    if isinstance(cs, InputError):
        return Outcome(error=cs)
    outcome = run_method(sc, cs, method)
    results().put(key, outcome)
    return outcome


# ------------------------------------------------------------------ small solves in this process
# Up to this many stage options, the headline's exact solve runs in the script's own thread: it takes a
# fraction of a second there (every bundled scenario and quantization under this size: 0.01-0.3 s), while a
# worker process would first have to start. One not done within INLINE_DEADLINE_S is given up and left to a
# worker: generous, because these solves also run while other sessions solve (up to max_solvers at once), and
# on 2 cores six at once take several times as long as one alone. Larger problems, the other methods and (but
# for small ones) the frontier stay in cancellable workers.
INLINE_MAX_OPTIONS = 5_000
INLINE_DEADLINE_S = 3.0
INLINE_METHODS = ("exact",)

_inline_guard = threading.Lock()
_inline_locks: dict[SolveKey, list] = {}  # key -> [lock, sessions using it]: one solve per key at a time


class Deadline:
    """A planner `cancel` that is set once `seconds` have passed: the next MILP raises CancelledError."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def is_set(self) -> bool:
        return time.perf_counter() >= self.end


def solve_inline(sc: Scenario, cs: CandidateSet, texts: TextsKey, cat_key: TextsKey, method: str,
                 deadline_s: float | None = None) -> Outcome | None:
    """`method` solved in this process and shared with every session (the result store). Sessions asking
    for the same key at once wait for the first one's solve instead of repeating it. With `deadline_s`, a
    solve not done by then is given up and nothing is stored (None): the caller leaves it to a worker."""
    key = (texts, cat_key, method)
    out = results().get(key)
    if out is not None:
        return out
    with _inline_guard:
        entry = _inline_locks.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            out = results().get(key)
            if out is None:
                with inline_slots():  # distinct small solves: no more at once than the server's solve slots
                    out = run_method(sc, cs, method, cancel=None if deadline_s is None else Deadline(deadline_s))
                if deadline_s is not None and isinstance(out.error, CancelledError):
                    log.info("%s (%s) not solved within %.2f s in this process: left to a worker", sc.name,
                             method, deadline_s)
                    return None
                results().put(key, out)
                log.info("solved %s (%s) in this process in %.3f s", sc.name, method, out.seconds)
    finally:
        with _inline_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _inline_locks[key]
    return out


@st.cache_resource(show_spinner=False)
def inline_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(max_solvers())


# The frontier of a problem this small is solved here with the headline: the page is sent once, complete,
# where a worker would first have to start and build the models again, and the browser would render the
# page twice (the headline, then the curve), each render taking the CPU the solve needs when both share a
# machine. Every bundled scenario and quantization under this size takes 0.01-0.45 s (llama70b-chat `fine`,
# 1,859 options in larger MILPs: 0.9 s); realistic `fine` (3,320 options, 54 units) takes 2-3 s. The option
# count is only a rough guide to the time, so a frontier not done within INLINE_FRONTIER_DEADLINE_S is given up
# here and solved in a worker like a larger one (that wastes at most this long plus one batch of MILPs).
INLINE_FRONTIER_MAX_OPTIONS = 3_200
INLINE_FRONTIER_DEADLINE_S = 1.0


def inline_ok(method: str, cs: CandidateSet | InputError) -> bool:
    """Whether `method` of this problem is small enough to solve in this process."""
    if isinstance(cs, Exception):
        return False
    if method == FRONTIER:
        return len(cs.options) <= INLINE_FRONTIER_MAX_OPTIONS
    return method in INLINE_METHODS and len(cs.options) <= INLINE_MAX_OPTIONS


# ------------------------------------------------------------------ cancellable worker
def _solve_body(conn, sc: Scenario, cs: CandidateSet | None, methods: tuple[str, ...],
                max_options: int | None = None) -> None:
    """Worker body: solve each method in turn and send ("outcome", method, Outcome) after each;
    ("progress", method, fraction, message) while solving. Without `cs` the candidates are built here;
    with `max_options`, a larger problem is not solved (("skipped",) is sent instead)."""
    last = [0.0]

    def progress(method: str):
        def report(fraction: float, message: str) -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_EVERY_S:  # a few messages per second are plenty for a progress bar
                last[0] = now
                conn.send(("progress", method, fraction, message))
        return report

    if cs is None:
        try:
            cs = build_candidates(sc)
        except InputError as exc:
            for method in methods:
                conn.send(("outcome", method, Outcome(error=exc)))
            return
    if max_options is not None and len(cs.options) > max_options:
        conn.send(("skipped",))
        return
    for method in methods:
        conn.send(("outcome", method, run_method(sc, cs, method, progress(method))))


class Job(Worker):
    """One solve (a scenario, one or more methods) in a worker process, owned by one session (kept in its
    session state) or by the pre-solver; each outcome goes to the shared result store as it arrives."""

    what = "solver"

    def __init__(self, sc: Scenario, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey,
                 methods: tuple[str, ...], nice: int = 0, max_options: int | None = None):
        self.scenario_key = (texts, cat_key)
        self.methods = methods
        self.outcomes: dict[str, Outcome] = {}
        self.progress: tuple[str, float, str] | None = None  # the latest (method, fraction done, message)
        self.skipped = False  # the problem was larger than max_options: not solved
        self.max_options = max_options
        super().__init__(_solve_body, (sc, cs, methods, max_options), f"solve-{sc.name}",
                         len(methods) * sc.settings.time_limit_s + GRACE_S, nice)

    def handle(self, msg: tuple) -> None:
        if msg[0] == "progress":
            self.progress = msg[1:]
        elif msg[0] == "outcome":
            _, method, outcome = msg
            self.outcomes[method] = outcome
            results().put((*self.scenario_key, method), outcome)
        elif msg[0] == "skipped":
            self.skipped = True

    def overrun_message(self) -> str:
        return f"the solver was stopped after {self.elapsed_s:.0f} s: it ran {GRACE_S:g} s past its time limit"


def start(sc: Scenario, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey, methods: tuple[str, ...],
          nice: int = 0, max_options: int | None = None) -> Job:
    """Start solving `methods` (in order) for a parsed scenario in a worker process (see `_solve_body`);
    `nice` lowers its CPU priority (speculative solves yield to the ones a user waits for)."""
    return Job(sc, cs, texts, cat_key, methods, nice, max_options)


# ------------------------------------------------------------------ the server's solve slots, shared solves
def max_solvers() -> int:
    """How many solve workers the server runs at once: PLANNER_MAX_SOLVERS, or the CPU cores this process
    may use. Each worker is a forked copy of the server (~200 MB resident), and HiGHS gains nothing from
    more workers than cores."""
    raw = os.environ.get("PLANNER_MAX_SOLVERS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n >= 1:
            return n
        log.warning("PLANNER_MAX_SOLVERS=%r is not a positive integer; using the core count", raw)
    return max(1, len(os.sched_getaffinity(0)))
