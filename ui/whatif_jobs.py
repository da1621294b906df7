"""What-if analyses run in a worker process, like the main solve: a list of tasks, a result store shared
by every session (keyed on the scenario and catalogue texts and the analysis parameters, so going back to
a setting is instant), and the Run / progress / Cancel controls of the page that waits for them.

One analysis job per session: starting another (a tab or parameter that needs new results) ends the
running one, keeping what it had finished. Results are yielded as they arrive, so a tab fills in section
by section while the rest is still being solved."""
from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import streamlit as st
from pyomo.common import dependencies as pyomo_dependencies

from planner import PlannerError, Planner, Result, Scenario

from . import solver

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


def _work(conn, tasks: tuple[Task, ...], hard_limit_s: float) -> None:
    """Worker body: ("progress", index, solves) while a task runs, ("task", index, Done) after each,
    then ("done",); a bug is sent as ("crash", traceback). Signals as in solver._work."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, int(hard_limit_s)))
    # Pyomo guards HiGHS's output capture with one lock shared by every forked process (a multiprocessing
    # semaphore made when multiprocessing is imported). A worker killed by Cancel inside a solve never
    # releases it, and every later worker then hangs at its first solve: this one gets a lock of its own.
    pyomo_dependencies.capture_output_lock = threading.Lock()
    last = [0.0]
    try:
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
        conn.send(("done",))
    except Exception:  # noqa: BLE001 - a bug in the planner: report it to the app instead of dying silently
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


@dataclass
class AnalysisJob:
    """The tasks running in one worker process (kept in the session state); every state change holds the
    lock, as a rerun may poll it while the previous run is being stopped."""

    want: tuple  # the keys of every task the page asked for (some were stored already)
    tasks: tuple[Task, ...]  # the ones this worker solves
    process: multiprocessing.process.BaseProcess
    conn: object
    hard_limit_s: float
    started: float = field(default_factory=time.perf_counter)
    finished_tasks: list[int] = field(default_factory=list)
    state: str = "running"  # running | done | cancelled | failed
    current: tuple[int, int] = (0, 0)  # (task index, MILP solves so far)
    failure: str = ""
    finished: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def poll(self) -> bool:
        """Store what the worker sent; True once it has finished (done, failed or cancelled)."""
        with self._lock:
            if self.state != "running":
                return True
            try:
                while self.conn.poll():
                    msg = self.conn.recv()
                    if msg[0] == "progress":
                        self.current = (msg[1], msg[2])
                    elif msg[0] == "task":
                        store().put(self.tasks[msg[1]].key, msg[2])
                        self.finished_tasks.append(msg[1])
                    elif msg[0] == "done":
                        self._finish("done")
                        return True
                    else:
                        self.failure = f"the analysis hit an internal error:\n\n```\n{msg[1]}```"
                        self._finish("failed")
                        return True
            except EOFError:
                pass
            if not self.process.is_alive():
                self.process.join()
                self.failure = f"the analysis process ended unexpectedly (exit code {self.process.exitcode})"
                self._finish("failed")
                return True
            if self.elapsed_s > self.hard_limit_s:
                self._stop()
                self.failure = f"the analysis was stopped after {self.elapsed_s:.0f} s (limit {self.hard_limit_s:g} s)"
                self._finish("failed")
                return True
            return False

    def cancel(self) -> None:
        self.poll()  # keep what it finished
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
            self.process.join(timeout=5)


def start(want: tuple, tasks: tuple[Task, ...], name: str) -> AnalysisJob:
    ctx = solver.fork_context()
    recv, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_work, args=(send, tasks, HARD_LIMIT_S), daemon=True, name=f"whatif-{name}")
    process.start()
    send.close()
    log.info("what-if worker %s started for %s (%s)", process.pid, name, ", ".join(t.label for t in tasks))
    return AnalysisJob(want, tasks, process, recv, HARD_LIMIT_S)


def stop_running() -> None:
    """End the session's analysis job (e.g. the scenario it works on is gone)."""
    held = st.session_state.pop(JOB, None)
    if held is not None:
        held.cancel()


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
    job: AnalysisJob | None = None
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
        job = start(want, missing, ident)
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
        i, solves = job.current
        bar.progress(min(1.0, (len(job.finished_tasks) + 0.5) / n),
                     text=f"{job.tasks[i].label} ({i + 1} of {n}): {solves} MILP solve(s) so far")
        ticker.caption(f"Running for {job.elapsed_s:.1f} s. Finished parts are shown below as they arrive.")
        time.sleep(min(POLL_S, 0.02 + job.elapsed_s / 10))
    if s.get(JOB) is job:
        del s[JOB]
    if job.state == "failed":
        slot.error(f"**The analysis did not finish**: {job.failure}", icon=":material/error:")
    elif job.state == "cancelled":  # ended by a newer run of this session
        slot.warning("Analysis cancelled.", icon=":material/cancel:")
    else:
        slot.empty()
