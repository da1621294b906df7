"""Worker processes for the app's solves and analyses: forked from the (warmed-up) server, talking over a
pipe, stoppable at any moment.

HiGHS cannot be interrupted from outside, the model build is pure Python, and a huge model's presolve does
not honour the time limit, so the only reliable stop is ending the process. A subclass says what the
messages mean (`handle`); this class owns the process: start, poll, wait, hard limit, cancel.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback

import streamlit as st

from planner.milp import warm_up

log = logging.getLogger(__name__)


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


def _child(body, conn, args: tuple, hard_limit_s: float, nice: int) -> None:
    """Every worker's process body around `body(conn, *args)`. The parent may be Streamlit's server, whose
    SIGTERM/SIGINT handlers are Python-level and would wait for HiGHS to return to Python; the defaults end
    the process at once. SIGALRM (default action: terminate) bounds an orphaned worker's life even if the
    server died without stopping it. A bug is sent as ("crash", traceback) rather than lost."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(max(1, int(hard_limit_s)))
    if nice:
        os.nice(nice)
    try:
        body(conn, *args)
        conn.send(("done",))
    except Exception:  # noqa: BLE001 - a bug in the planner: reported to the app instead of dying silently
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


class Worker:
    """One forked process running `body(conn, *args)`, which sends tuples; ("done",) and ("crash", text)
    are sent for it. State: running | done | cancelled | failed. A script rerun (a widget change, a Cancel
    click) may poll it from another thread while the previous run is being stopped, so every state change
    holds the lock."""

    what = "worker"  # for messages: "the <what> process ended unexpectedly"

    def __init__(self, body, args: tuple, name: str, hard_limit_s: float, nice: int = 0):
        ctx = fork_context()
        recv, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_child, args=(body, send, args, hard_limit_s, nice), daemon=True,
                                   name=name)
        self.process.start()
        send.close()  # the child holds the sending end; EOF on ours means it is gone
        self.conn = recv
        self.hard_limit_s = hard_limit_s
        self.started = time.perf_counter()
        self.finished: float | None = None
        self.state = "running"
        self.failure = ""
        self._lock = threading.Lock()
        log.info("%s %s started (%s)", self.what, self.process.pid, name)

    # --- for subclasses
    def handle(self, msg: tuple) -> None:
        """Record one message of the subclass's own kinds."""
        raise NotImplementedError

    def overrun_message(self) -> str:
        return f"the {self.what} was stopped after {self.elapsed_s:.0f} s (limit {self.hard_limit_s:g} s)"

    # --- lifecycle
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
                    if msg[0] == "done":
                        self._finish("done")
                        return True
                    if msg[0] == "crash":  # a bug: shown to the user with its traceback
                        self.failure = f"the {self.what} hit an internal error:\n\n```\n{msg[1]}```"
                        self._finish("failed")
                        return True
                    self.handle(msg)
            except EOFError:
                pass  # the worker is gone; judged below
            if not self.process.is_alive():
                self.process.join()
                code = self.process.exitcode
                self.failure = (self.overrun_message() if code == -signal.SIGALRM else
                                f"the {self.what} process ended unexpectedly (exit code {code})")
                self._finish("failed")
                return True
            if self.elapsed_s > self.hard_limit_s:
                self._stop()
                self.failure = self.overrun_message()
                self._finish("failed")
                return True
            return False

    def wait(self, timeout_s: float) -> None:
        """Block until the worker sends something or `timeout_s` passes (then `poll` collects it): a
        finished job is noticed at once instead of at the next tick of a sleep."""
        if self.state != "running":
            return
        try:
            self.conn.poll(timeout_s)
        except (OSError, EOFError, ValueError):  # closed meanwhile by another poller or a cancel
            return

    def cancel(self) -> None:
        """End the worker now (if still running); what it had already sent stays collected."""
        self.poll()
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
