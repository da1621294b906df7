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
from typing import Callable

import streamlit as st

from planner import (Catalog, CandidateSet, InputError, Plan, Planner, PlannerError, Problem, Result, Scenario,
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


def run_method(sc: Scenario, cs: CandidateSet, method: str, progress=None) -> Outcome:
    """Solve with `method` in this process. "exact" is the proven optimum alone (fast: the headline);
    FRONTIER is the exact method with the whole cost/throughput frontier (for the budget curve), solved
    after it so that the answer is on screen first. `progress(fraction, message)` is the planner's
    progress callback."""
    t0 = time.perf_counter()
    try:
        planner = Planner(sc, cs, progress=progress)
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
# fraction of a second there (every bundled realistic scenario: under 2,000 options, 0.01-0.2 s), while a
# worker process would first have to start. Larger problems, the other methods and the frontier stay in
# cancellable workers.
INLINE_MAX_OPTIONS = 3_000
INLINE_METHODS = ("exact",)

_inline_guard = threading.Lock()
_inline_locks: dict[SolveKey, list] = {}  # key -> [lock, sessions using it]: one solve per key at a time


def solve_inline(sc: Scenario, cs: CandidateSet, texts: TextsKey, cat_key: TextsKey, method: str) -> Outcome:
    """`method` solved in this process and shared with every session (the result store). Sessions asking
    for the same key at once wait for the first one's solve instead of repeating it."""
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
                    out = run_method(sc, cs, method)
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


def inline_ok(method: str, cs: CandidateSet | InputError) -> bool:
    """Whether `method` of this problem is small enough to solve in this process."""
    return method in INLINE_METHODS and not isinstance(cs, Exception) and len(cs.options) <= INLINE_MAX_OPTIONS


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


class Shared:
    """One solve of (texts, catalogue, methods) that one or more sessions wait for: queued until the server
    has a free slot, then a Job. State: queued | running | done | failed | cancelled."""

    def __init__(self, sc: Scenario | None, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey,
                 methods: tuple[str, ...], max_options: int | None, make: Callable[[], Worker] | None = None):
        self.sc, self.cs, self.methods, self.max_options = sc, cs, methods, max_options
        self.scenario_key = (texts, cat_key)
        self.make = make  # another kind of worker (a what-if analysis): started by make(), never shared
        self.job: Job | None = None
        self.tickets: set[Ticket] = set()
        self.state = "queued"

    def serves(self, key: tuple, methods: tuple[str, ...], max_options: int | None) -> bool:
        """Whether this solve answers a request: same scenario, every method asked for, and no size cap
        that the request does not have (a "Solve now" must not wait on a solve that may skip)."""
        return (self.make is None and self.state in ("queued", "running") and self.scenario_key == key
                and set(methods) <= set(self.methods)
                and (self.max_options is None or max_options is not None))


class Ticket:
    """A session's handle on a shared solve, polled by the page like a Job: progress, outcomes, failure, and
    while it waits for a slot its place in the queue. `cancel` lets go of it; the solve itself stops only
    when no other session waits for it."""

    def __init__(self, pool: "SolvePool", shared: Shared):
        self.pool, self.shared = pool, shared
        self.started = time.perf_counter()
        self.finished: float | None = None
        self._cancelled = False

    # what the page reads, as on a Job
    @property
    def methods(self) -> tuple[str, ...]:
        return self.shared.methods

    @property
    def scenario_key(self) -> tuple:
        return self.shared.scenario_key

    @property
    def state(self) -> str:
        return "cancelled" if self._cancelled else self.shared.state

    @property
    def job(self) -> Job | None:
        return self.shared.job

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return self.job.outcomes if self.job is not None else {}

    @property
    def progress(self):
        return self.job.progress if self.job is not None else None

    @property
    def skipped(self) -> bool:
        return self.job is not None and self.job.skipped

    @property
    def failure(self) -> str:
        return self.job.failure if self.job is not None else ""

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def position(self) -> int:
        """1 for the next solve to start, 2 behind it, ...; 0 once it runs (or ended)."""
        return self.pool.position(self.shared)

    @property
    def shared_with(self) -> int:
        """How many other sessions wait for the same solve."""
        return max(0, len(self.shared.tickets) - 1)

    def poll(self) -> bool:
        """Advance the server's solves (collect, start queued ones); True once this one has ended."""
        self.pool.pump()
        done = self.state not in ("queued", "running")
        if done and self.finished is None:
            self.finished = time.perf_counter()
        return done

    def wait(self, timeout_s: float) -> None:
        job = self.job
        if job is not None and self.shared.state == "running":
            job.wait(timeout_s)
        else:
            time.sleep(timeout_s)

    def cancel(self) -> None:
        """Stop waiting for the solve; it ends unless another session still waits for it."""
        self.pool.pump()
        if self.state in ("queued", "running"):
            self._cancelled = True
            self.finished = time.perf_counter()
        self.pool.release(self)


class SolvePool:
    """Every solve a user waits for, server-wide: at most `limit` worker processes at once (the speculative
    pre-solve included), the rest queued first come first served; a request for a solve that is already
    queued or running joins it instead of starting another. Advanced by whoever polls (`pump`): every
    waiting session polls its ticket a few times a second."""

    def __init__(self, limit: int | None = None):
        self.limit = limit if limit is not None else max_solvers()
        self._lock = threading.Lock()
        self._queue: list[Shared] = []
        self._running: list[Shared] = []
        self.started = 0  # solve workers started (for tests and logs)

    def submit(self, sc: Scenario, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey,
               methods: tuple[str, ...], max_options: int | None = None) -> Ticket:
        key = (texts, cat_key)
        with self._lock:
            shared = self._find_locked(key, methods, max_options)
            if shared is not None:
                return self._ticket_locked(shared)
        adopted = prefetcher().adopt(texts, cat_key, methods)  # being pre-solved: take it over
        with self._lock:
            shared = self._find_locked(key, methods, max_options)
            if shared is None:
                shared = Shared(sc, cs, texts, cat_key, methods, adopted.max_options if adopted else max_options)
                if adopted is not None:
                    shared.job, shared.state = adopted, "running"
                    self._running.append(shared)
                else:
                    self._queue.append(shared)
            elif adopted is not None:  # another session queued the same meanwhile: it will solve it
                adopted.cancel()
            ticket = self._ticket_locked(shared)
        self.pump()
        return ticket

    def submit_worker(self, make: Callable[[], Worker]) -> Ticket:
        """Queue another kind of worker process (a what-if analysis) for a slot like a solve: `make()` starts
        it. Its ticket's `job` is the worker once it runs."""
        with self._lock:
            ticket = self._ticket_locked(Shared(None, None, (), (), (), None, make))
            self._queue.append(ticket.shared)
        self.pump()
        return ticket

    def _ticket_locked(self, shared: Shared) -> Ticket:
        ticket = Ticket(self, shared)
        shared.tickets.add(ticket)
        return ticket

    def _find_locked(self, key, methods, max_options) -> Shared | None:
        for shared in self._running + self._queue:
            if shared.serves(key, methods, max_options):
                return shared
        return None

    def position(self, shared: Shared) -> int:
        with self._lock:
            return self._queue.index(shared) + 1 if shared in self._queue else 0

    def counts(self) -> tuple[int, int]:
        """(solves running, solves queued) right now."""
        with self._lock:
            return len(self._running), len(self._queue)

    def free_slots_locked(self) -> int:
        return self.limit - len(self._running) - prefetcher().live()

    def pump(self) -> None:
        """Collect what running solves sent (their outcomes go to the result store), then start queued ones
        while there are free slots; a queue that waits for a slot stops the speculative pre-solve."""
        with self._lock:
            for shared in list(self._running):
                if shared.job.poll():
                    shared.state = shared.job.state
                    self._running.remove(shared)
            while self._queue and self.free_slots_locked() > 0:
                shared = self._queue.pop(0)
                shared.job = shared.make() if shared.make is not None else start(
                    shared.sc, shared.cs, *shared.scenario_key, shared.methods, max_options=shared.max_options)
                shared.state = "running"
                self._running.append(shared)
                self.started += 1
            preempt = bool(self._queue) and prefetcher().live() > 0
        if preempt:
            prefetcher().stop()
            self.pump()

    def start_speculative(self, make: Callable[[], Job]) -> Job | None:
        """Start a speculative solve (`make()`) only if a slot is free and no one is queued."""
        with self._lock:
            if self._queue or self.limit - len(self._running) <= 0:
                return None
            return make()

    def release(self, ticket: Ticket) -> None:
        """`ticket` no longer waits; a solve no session waits for any more is dropped from the queue or
        stopped."""
        with self._lock:
            shared = ticket.shared
            shared.tickets.discard(ticket)
            if shared.tickets or shared.state not in ("queued", "running"):
                return
            if shared.state == "queued":
                self._queue.remove(shared)
            else:
                shared.job.cancel()
                self._running.remove(shared)
            shared.state = "cancelled"
        self.pump()


@st.cache_resource(show_spinner=False)
def solve_pool() -> SolvePool:
    return SolvePool()


def submit(sc: Scenario, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey, methods: tuple[str, ...],
           max_options: int | None = None) -> Ticket:
    """Ask for `methods` of a scenario to be solved (see SolvePool): a ticket to poll like a Job."""
    return solve_pool().submit(sc, cs, texts, cat_key, methods, max_options)


# ------------------------------------------------------------------ speculative solves
PREFETCH_NICE = 10


class Prefetcher:
    """Solves, while the app is idle, the settings a user is likely to ask for next (the quantization
    slider's neighbours), one worker at a time at low CPU priority, into the shared result store; a
    slider move to one of them is then answered from the cache. Server-wide: a new request replaces
    the previous one, a foreground solve stops it, and a session that asks for the setting being
    pre-solved takes over its worker instead of starting again."""

    def __init__(self):
        self._lock = threading.Lock()
        self._generation = 0
        self._job: Job | None = None
        self._keys: list = []
        self._active = False  # a request is being worked through
        self.started = 0  # speculative solves started (for tests and logs)

    def request(self, tasks: list[tuple[Scenario, TextsKey, TextsKey, tuple[str, ...]]], max_options: int) -> None:
        """Pre-solve `tasks` (scenario, texts, catalogue texts, methods) in order, skipping cached ones.
        The same request again (a rerun that changed nothing) leaves the one in progress running."""
        keys = [(texts, cat_key, methods) for _, texts, cat_key, methods in tasks]
        with self._lock:
            if keys == self._keys and self._active:
                return
            self._stop_locked()
            self._keys, self._active = keys, True
            gen = self._generation
        threading.Thread(target=self._run, args=(gen, list(tasks), max_options), daemon=True,
                         name="prefetch").start()

    def _run(self, gen: int, tasks, max_options: int) -> None:
        try:
            self._work_through(gen, tasks, max_options)
        finally:
            with self._lock:
                if gen == self._generation:
                    self._active = False

    def live(self) -> int:
        """1 while a speculative worker runs (it takes one of the server's solve slots), else 0."""
        job = self._job
        return 1 if job is not None and job.state == "running" else 0

    def _work_through(self, gen: int, tasks, max_options: int) -> None:
        for sc, texts, cat_key, methods in tasks:
            job = None
            while job is None:  # only into a free slot, and never ahead of a queued solve a user waits for
                with self._lock:
                    if gen != self._generation:
                        return
                    if all(results().get((texts, cat_key, m)) is not None for m in methods):
                        break
                    job = solve_pool().start_speculative(
                        lambda: start(sc, None, texts, cat_key, methods, nice=PREFETCH_NICE, max_options=max_options))
                    if job is not None:
                        self._job = job
                        self.started += 1
                        break
                time.sleep(0.2)
            if job is None:
                continue
            while not job.poll():
                time.sleep(0.05)
                with self._lock:
                    if self._job is not job:  # taken over by a session, or stopped
                        return
            with self._lock:
                if self._job is job:
                    self._job = None
            log.info("pre-solved %s (%s): %s%s", sc.name, ", ".join(methods), job.state,
                     ", skipped: too large" if job.skipped else "")

    def adopt(self, texts: TextsKey, cat_key: TextsKey, methods: tuple[str, ...]) -> Job | None:
        """The running speculative job for these texts, if it solves every method asked for; it is handed
        over (the caller now owns and polls it) and the rest of the request is dropped. Otherwise every
        speculative solve is stopped, so the caller's own solve has the CPU."""
        with self._lock:
            job = self._job
            if (job is not None and job.state in ("running", "done") and job.scenario_key == (texts, cat_key)
                    and set(methods) <= set(job.methods)):
                self._job = None
                self._generation += 1
                self._active = False
                _restore_priority(job)
                return job
            self._stop_locked()
            return None

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        self._generation += 1
        self._active = False
        if self._job is not None:
            self._job.cancel()
            self._job = None


def _restore_priority(job: Job) -> None:
    """A taken-over speculative solve is now one a user waits for: back to normal CPU priority. Only a
    privileged server may raise a priority, so elsewhere it finishes at the lower one (logged)."""
    try:
        os.setpriority(os.PRIO_PROCESS, job.process.pid, 0)
    except (PermissionError, ProcessLookupError) as exc:
        log.info("taken-over solve %s keeps its low priority: %s", job.process.pid, exc)


@st.cache_resource(show_spinner=False)
def prefetcher() -> Prefetcher:
    return Prefetcher()
