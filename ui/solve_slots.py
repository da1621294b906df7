"""The server's solve slots and speculative solves: at most `max_solvers()` worker solves at once, the rest
queued first come first served with a visible position; sessions asking for the same solve share one worker
(`SolvePool`, `Ticket`); the quantization slider's neighbours pre-solved at low priority in free slots
(`Prefetcher`). The solves themselves and the result store are in ui.solver."""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

import streamlit as st

from planner import CandidateSet, Scenario

from .solver import Job, Outcome, TextsKey, max_solvers, results, start
from .worker import Worker

log = logging.getLogger(__name__)


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
