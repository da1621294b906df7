"""Cached calls into the planner, keyed on the scenario texts (+ catalogue texts), so that going back
to an earlier setting is instant. Errors the planner raises on purpose are returned, not raised, so
that they are cached too (an infeasible scenario is not re-explained on every rerun).

Solves run in a worker process (`Job`) so that the app stays responsive and a solve can be cancelled:
HiGHS cannot be interrupted from outside through Pyomo, the model build is pure Python, and a huge
model's presolve does not honour the time limit, so the only reliable stop is ending the process."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field

import streamlit as st

from planner import (Catalog, CandidateSet, InputError, Plan, Planner, PlannerError, Problem, Result, Scenario,
                     build_candidates, scenario_from_texts)
from planner.catalog import parse_engines, parse_gpus, parse_models
from planner.candidates import segment_sizes
from planner.milp import warm_up

TextsKey = tuple[tuple[str, str], ...]
SolveKey = tuple[TextsKey, TextsKey, str]  # (scenario texts, catalogue texts, method)

log = logging.getLogger(__name__)
METHODS = ("exact", "enumeration", "weighted")
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
        engines = parse_engines(texts["engines.csv"], "engines.csv")
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
    return cs


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
    """Solve with `method` in this process. The exact method also returns the whole frontier.
    `progress(fraction, message)` is the planner's progress callback."""
    t0 = time.perf_counter()
    try:
        planner = Planner(sc, cs, progress=progress)
        if method == "exact":
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


# ------------------------------------------------------------------ cancellable worker
def _work(conn, sc: Scenario, cs: CandidateSet | None, methods: tuple[str, ...], hard_limit_s: float,
          nice: int = 0, max_options: int | None = None) -> None:
    """Worker process body: solve each method in turn and send ("outcome", method, Outcome) after each,
    then ("done",); ("progress", method, fraction, message) while solving. A bug is sent as
    ("crash", traceback) rather than lost with the process. Without `cs` the candidates are built here;
    with `max_options`, a larger problem is not solved (("skipped",) then ("done",)). `nice` lowers
    the process's CPU priority (speculative solves yield to the ones a user waits for)."""
    # The parent may be Streamlit's server, whose SIGTERM/SIGINT handlers are Python-level and would
    # wait for HiGHS to return to Python; the defaults end the process at once. SIGALRM (default action:
    # terminate) bounds an orphaned worker's life even if the server died without stopping it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, int(hard_limit_s)))
    if nice:
        os.nice(nice)
    last = [0.0]

    def progress(method: str):
        def report(fraction: float, message: str) -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_EVERY_S:  # a few messages per second are plenty for a progress bar
                last[0] = now
                conn.send(("progress", method, fraction, message))
        return report

    try:
        if cs is None:
            try:
                cs = build_candidates(sc)
            except InputError as exc:
                for method in methods:
                    conn.send(("outcome", method, Outcome(error=exc)))
                conn.send(("done",))
                return
        if max_options is not None and len(cs.options) > max_options:
            conn.send(("skipped",))
        else:
            for method in methods:
                conn.send(("outcome", method, run_method(sc, cs, method, progress(method))))
        conn.send(("done",))
    except Exception:  # noqa: BLE001 - a bug in the planner: report it to the app instead of dying silently
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


@dataclass
class Job:
    """One solve running in a worker process, owned by one session (kept in its session state).

    A script rerun (a widget change, a Cancel click) may poll it from another thread while the previous
    run is being stopped, so every state change holds the lock."""

    scenario_key: tuple[TextsKey, TextsKey]
    methods: tuple[str, ...]
    process: multiprocessing.process.BaseProcess
    conn: object  # multiprocessing.connection.Connection
    hard_limit_s: float
    started: float = field(default_factory=time.perf_counter)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    state: str = "running"  # running | done | cancelled | failed
    progress: tuple[str, float, str] | None = None  # the latest (method, fraction done, message)
    failure: str = ""
    finished: float | None = None
    skipped: bool = False  # a speculative solve found the problem too large to solve unasked
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def poll(self) -> bool:
        """Collect what the worker sent; True once it has finished (done, failed or cancelled)."""
        with self._lock:
            if self.state != "running":
                return True
            try:
                while self.conn.poll():
                    msg = self.conn.recv()
                    if msg[0] == "progress":
                        self.progress = msg[1:]
                    elif msg[0] == "outcome":
                        _, method, outcome = msg
                        self.outcomes[method] = outcome
                        results().put((*self.scenario_key, method), outcome)
                    elif msg[0] == "done":
                        self._finish("done")
                        return True
                    elif msg[0] == "skipped":
                        self.skipped = True
                    else:  # a bug in the planner: shown to the user with its traceback
                        self.failure = f"the solver hit an internal error:\n\n```\n{msg[1]}```"
                        self._finish("failed")
                        return True
            except EOFError:
                pass  # the worker is gone; judged below
            if not self.process.is_alive():
                self.process.join()
                code = self.process.exitcode
                self.failure = (f"the solver was stopped after {self.elapsed_s:.0f} s: it ran "
                                f"{GRACE_S:g} s past its time limit" if code == -signal.SIGALRM else
                                f"the solver process ended unexpectedly (exit code {code})")
                self._finish("failed")
                return True
            if self.elapsed_s > self.hard_limit_s:
                self._stop()
                self.failure = (f"the solver was stopped after {self.elapsed_s:.0f} s: it ran {GRACE_S:g} s "
                                f"past its time limit")
                self._finish("failed")
                return True
            return False

    def wait(self, timeout_s: float) -> None:
        """Block until the worker sends something or `timeout_s` passes (then `poll` collects it): a
        finished solve is noticed at once instead of at the next tick of a sleep."""
        if self.state != "running":
            return
        try:
            self.conn.poll(timeout_s)
        except (OSError, EOFError, ValueError):  # closed meanwhile by another poller or a cancel
            return

    def cancel(self) -> None:
        """End the worker now (if still running); what it had already sent stays in the result store."""
        with self._lock:
            if self.state == "running":
                self._stop()
                self._finish("cancelled")

    def _stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def _finish(self, state: str) -> None:
        self.state = state
        self.finished = time.perf_counter()
        self.conn.close()
        if state == "done":
            self.process.join(timeout=5)  # it exits right after its last message; reap it


@st.cache_resource(show_spinner=False)
def warm_solver() -> float:
    """Once per server: load and initialise what a solve touches (highspy, Pyomo's lazy modules) in this
    process, so every forked worker starts with it instead of paying for it on each solve."""
    seconds = warm_up()
    log.info("solver warmed up in %.3f s", seconds)
    return seconds


def fork_context():
    """The multiprocessing context for workers: fork, from a warmed-up server. The child starts at once
    with the planner imported and the scenario in memory; spawn and forkserver would re-run Streamlit's
    __main__ (the app script) in the child."""
    warm_solver()
    multiprocessing.active_children()  # reaps finished workers
    return multiprocessing.get_context("fork")


def start(sc: Scenario, cs: CandidateSet | None, texts: TextsKey, cat_key: TextsKey, methods: tuple[str, ...],
          nice: int = 0, max_options: int | None = None) -> Job:
    """Start solving `methods` (in order) for a parsed scenario in a worker process (see `_work`)."""
    ctx = fork_context()
    hard_limit = len(methods) * sc.settings.time_limit_s + GRACE_S
    recv, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_work, args=(send, sc, cs, methods, hard_limit, nice, max_options), daemon=True,
                          name=f"solve-{sc.name}")
    process.start()
    send.close()  # the child holds the sending end; EOF on ours means it is gone
    log.info("solve worker %s started for %s (%s)", process.pid, sc.name, ", ".join(methods))
    return Job((texts, cat_key), methods, process, recv, hard_limit)


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

    def _work_through(self, gen: int, tasks, max_options: int) -> None:
        for sc, texts, cat_key, methods in tasks:
            with self._lock:
                if gen != self._generation:
                    return
                if all(results().get((texts, cat_key, m)) is not None for m in methods):
                    continue
                job = start(sc, None, texts, cat_key, methods, nice=PREFETCH_NICE, max_options=max_options)
                self._job = job
                self.started += 1
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


@st.cache_resource(show_spinner=False)
def prefetcher() -> Prefetcher:
    return Prefetcher()
