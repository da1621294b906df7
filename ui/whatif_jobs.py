"""What-if analyses run in a worker process, like the main solve: a list of tasks, a result store shared
by every session (keyed on the scenario and catalogue texts and the analysis parameters, so going back to
a setting is instant), and the Run / progress / Cancel controls of the page that waits for them.

One analysis job per session: starting another (a tab or parameter that needs new results) ends the
running one, keeping what it had finished. Results are yielded as they arrive, so a tab fills in section
by section while the rest is still being solved."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import streamlit as st

from planner import PlannerError, Planner, Result, Scenario

from . import solve_slots, solver
from .text import ordinal
from .worker import Worker

log = logging.getLogger(__name__)
HARD_LIMIT_S = 3600.0  # an analysis re-solves many times; Cancel ends it sooner, this bounds a forgotten one
POLL_S = 0.25
PROGRESS_EVERY_S = 0.2
JOB = "_whatif_job"
CANCELLED = "_whatif_cancelled"
CANCEL_KEY = "whatif_cancel"


@dataclass(frozen=True)
class Task:
    key: tuple  # where its result is stored: (texts key, catalogue key, analysis, parameters...)
    label: str  # what the progress bar says while it runs
    run: Callable[[Any], Any]  # run(cancel) -> value, in the worker; `cancel` goes to every Planner


@dataclass(frozen=True)
class Done:
    """A finished task: its value, or the planner's error (infeasible, bad input); and how long it took."""

    value: Any = None
    error: PlannerError | None = None
    seconds: float = 0.0


@st.cache_resource(show_spinner=False)
def store() -> solver.ResultStore:
    return solver.ResultStore(max_entries=256)


class BaseResult:
    """The exact optimum of the current scenario, solved at most once per worker (the main page's cached
    solve when there is one): baselines, tornado and break-even prices all start from it."""

    def __init__(self, sc: Scenario, result: Result | None):
        self.sc, self.result = sc, result

    def get(self, cancel) -> Result:
        if self.result is None:
            self.result = Planner(self.sc, cancel=cancel).exact()
        return self.result


class SolveCounter:
    """Handed to the planner as `cancel`: the planner asks it once before every MILP solve, which makes it
    a live count of solves for the progress bar (it never asks to stop; Cancel ends the process)."""

    def __init__(self, report: Callable[[int], None]):
        self.solves = 0
        self.report = report

    def is_set(self) -> bool:
        self.solves += 1
        self.report(self.solves)
        return False


def _analysis_body(conn, tasks: tuple[Task, ...]) -> None:
    """Worker body: ("progress", index, solves) while a task runs, ("task", index, Done) after each."""
    last = [0.0]
    for i, task in enumerate(tasks):
        conn.send(("progress", i, 0))

        def report(solves: int, i: int = i) -> None:
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                conn.send(("progress", i, solves))

        t0 = time.perf_counter()
        try:
            done = Done(task.run(SolveCounter(report)), None, time.perf_counter() - t0)
        except PlannerError as exc:
            done = Done(None, exc, time.perf_counter() - t0)
        conn.send(("task", i, done))


class AnalysisJob(Worker):
    """The tasks running in one worker process (kept in the session state); each result goes to the
    shared store as it arrives."""

    what = "analysis"

    def __init__(self, want: tuple, tasks: tuple[Task, ...], name: str):
        self.want = want  # the keys of every task the page asked for (some were stored already)
        self.tasks = tasks  # the ones this worker solves
        self.finished_tasks: list[int] = []
        self.current: tuple[int, int] = (0, 0)  # (task index, MILP solves so far)
        super().__init__(_analysis_body, (tasks,), f"whatif-{name}", HARD_LIMIT_S)

    def handle(self, msg: tuple) -> None:
        if msg[0] == "progress":
            self.current = (msg[1], msg[2])
        elif msg[0] == "task":
            store().put(self.tasks[msg[1]].key, msg[2])
            self.finished_tasks.append(msg[1])


def start(want: tuple, tasks: tuple[Task, ...], name: str) -> AnalysisJob:
    job = AnalysisJob(want, tasks, name)
    log.info("what-if worker %s for %s: %s", job.process.pid, name, ", ".join(t.label for t in tasks))
    return job


class QueuedAnalysis:
    """An analysis waiting for one of the server's solve slots (ui.solve_slots.SolvePool), then running: read
    like an AnalysisJob by the page, with its place in the queue while it waits."""

    def __init__(self, want: tuple, tasks: tuple[Task, ...], name: str):
        self.want, self.tasks = want, tasks
        self.ticket = solve_slots.solve_pool().submit_worker(lambda: start(want, tasks, name))

    @property
    def finished_tasks(self) -> list[int]:
        job = self.ticket.job
        return job.finished_tasks if job is not None else []

    @property
    def current(self) -> tuple[int, int]:
        job = self.ticket.job
        return job.current if job is not None else (0, 0)

    @property
    def position(self) -> int:
        return self.ticket.position

    @property
    def state(self) -> str:
        return self.ticket.state

    @property
    def failure(self) -> str:
        return self.ticket.failure

    @property
    def elapsed_s(self) -> float:
        return self.ticket.elapsed_s

    def poll(self) -> bool:
        return self.ticket.poll()

    def wait(self, timeout_s: float) -> None:
        self.ticket.wait(timeout_s)

    def cancel(self) -> None:
        self.ticket.cancel()


def run(tasks: list[Task], controls, *, auto: bool, ident: str, why_not_auto: str = "") -> Iterator[tuple[Task, Done]]:
    """Yield (task, result) for every task: stored ones at once, the others as the worker finishes them.

    Missing results are computed when `auto` (small scenarios) or when the "Run analysis" button is
    pressed; `controls` (a container) holds the button, the progress bar and Cancel. A cancelled
    analysis waits for the button again."""
    s = st.session_state
    want = tuple(t.key for t in tasks)
    by_key = {t.key: t for t in tasks}
    yielded: set = set()
    for t in tasks:
        done = store().get(t.key)
        if done is not None:
            yielded.add(t.key)
            yield t, done
    missing = tuple(t for t in tasks if t.key not in yielded)
    job: QueuedAnalysis | None = None
    held = s.get(JOB)
    if held is not None:
        if s.get(CANCEL_KEY):
            held.cancel()
            s[CANCELLED] = (held.want, held.elapsed_s)
            del s[JOB]
        elif held.want == want:
            job = held
        elif missing:  # one worker per session: this tab needs one now
            held.cancel()
            del s[JOB]
    slot = controls.empty()  # one element: its content (Run, or progress and Cancel) replaces the last run's
    if missing and job is None:
        cancelled = s.get(CANCELLED)
        was_cancelled = cancelled is not None and cancelled[0] == want
        run_key = f"run_{ident}"
        pressed = bool(s.get(run_key))  # a click reruns the script with the button's state already True
        if pressed:
            s.pop(CANCELLED, None)
        elif was_cancelled or not auto:
            with slot.container():
                if was_cancelled:
                    st.warning(f"Analysis cancelled after {cancelled[1]:.1f} s; what it had finished is shown. "
                               "Press **Run analysis** to run the rest.", icon=":material/cancel:")
                else:
                    st.info(f"{why_not_auto} Press **Run analysis** to run it ({len(missing)} part(s) to solve; "
                            "progress and Cancel appear here).", icon=":material/pause_circle:")
                st.button("Run analysis", key=run_key, type="primary", icon=":material/play_arrow:")
            return
        job = QueuedAnalysis(want, missing, ident)
        s[JOB] = job
    if job is None:
        slot.empty()
        return
    with slot.container():
        st.button("Cancel analysis", key=CANCEL_KEY, icon=":material/stop_circle:",
                  help="Stop the analysis; the results it finished are kept")
        bar, ticker = st.empty(), st.empty()
    n = len(job.tasks)
    while True:
        finished = job.poll()
        for i in job.finished_tasks:
            t = job.tasks[i]
            if t.key not in yielded and t.key in by_key:
                yielded.add(t.key)
                done = store().get(t.key)
                if done is not None:
                    yield t, done
        if finished:
            break
        pos = job.position
        if pos:
            pool = solve_slots.solve_pool()
            bar.info(f"**Queued: {ordinal(pos)} in line.** This server runs at most {pool.limit} "
                     "solve(s) at a time; the analysis starts when a slot frees up.", icon=":material/hourglass_top:")
            ticker.caption(f"Waiting for {job.elapsed_s:.1f} s.")
        else:
            i, solves = job.current
            bar.progress(min(1.0, (len(job.finished_tasks) + 0.5) / n),
                         text=f"{job.tasks[i].label} ({i + 1} of {n}): {solves} MILP solve(s) so far")
            ticker.caption(f"Running for {job.elapsed_s:.1f} s. Finished parts are shown below as they arrive.")
        job.wait(POLL_S)
    if s.get(JOB) is job:
        del s[JOB]
    if job.state == "failed":
        slot.error(f"**The analysis did not finish**: {job.failure}", icon=":material/error:")
    elif job.state == "cancelled":  # ended by a newer run of this session
        slot.warning("Analysis cancelled.", icon=":material/cancel:")
    else:
        slot.empty()
