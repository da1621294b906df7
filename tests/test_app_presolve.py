"""The background pre-solve of the quantization slider's neighbours (ui.solve_slots.Prefetcher), in AppTest and
on its own: a slider move after a pause is answered from the result store, with the library's numbers."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from streamlit.testing.v1 import AppTest

from planner import Planner, scenario_from_texts
from ui import scenario_texts as T
from ui import solve_slots, solver

from . import apptest
from .apptest import metric

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def settle(timeout_s: float = 180.0) -> None:
    """Wait until the pre-solver has worked through its request."""
    pre = solve_slots.prefetcher()
    deadline = time.monotonic() + timeout_s
    while pre._active or pre._job is not None:
        assert time.monotonic() < deadline, "the pre-solve did not finish"
        time.sleep(0.1)


def stored_texts(method: str = "exact") -> set:
    return {k[0] for k in solver.results().keys() if k[2] == method}


def test_slider_neighbour_is_presolved_and_then_served_from_the_store():
    at = apptest.run_app(120)
    settle()
    started = solve_slots.prefetcher().started
    # a time limit no other test uses: every setting from here on is new to the shared result store
    at.number_input(key="time_limit").set_value(97).run()
    assert not at.exception
    settle()
    assert solve_slots.prefetcher().started == started + 1  # coarse's one neighbour, fine
    before = stored_texts()
    at.select_slider(key="quantization").set_value("fine").run()
    assert not at.exception
    fine = T.texts_key(at.session_state["texts"])
    assert fine in before  # solved before the slider moved: by the pre-solve
    sc = scenario_from_texts(dict(fine), "medium")
    assert sc.settings.quantization == "fine" and sc.settings.time_limit_s == 97
    lib = Planner(sc).exact(with_frontier=True)
    assert metric(at, "$ per million") == f"${lib.plan.usd_per_million_tokens:,.4f}"
    # from fine, both neighbours (coarse is cached already; even is new) are asked for
    settle()
    assert solve_slots.prefetcher().started == started + 2  # from fine: even is new, coarse is in the store
    before = stored_texts()
    at.select_slider(key="quantization").set_value("even").run()
    assert T.texts_key(at.session_state["texts"]) in before
    even_sc = replace(sc, settings=replace(sc.settings, quantization="even"))
    assert metric(at, "$ per million") == f"${Planner(even_sc).exact().plan.usd_per_million_tokens:,.4f}"


def test_presolve_switched_off_starts_nothing():
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["presolve"] = False
    at.run()
    assert not at.exception and at.toggle(key="presolve").value is False
    settle()
    started = solve_slots.prefetcher().started
    at.select_slider(key="quantization").set_value("full").run()
    at.select_slider(key="quantization").set_value("even").run()
    time.sleep(0.5)
    assert solve_slots.prefetcher().started == started


def test_prefetcher_hands_over_the_matching_job_and_stops_others():
    texts = T.load_bundled_texts("realistic")  # slow enough (seconds) to still be running when asked for
    sc = scenario_from_texts(texts, "realistic")
    key, ckey = T.texts_key(texts), (("catalogue", "test"),)
    slow = replace(sc, settings=replace(sc.settings, quantization="fine"))
    slow_key = T.texts_key({**texts, "marker": "fine"})  # a key no app run uses
    pre = solve_slots.Prefetcher()
    pre.request([(slow, slow_key, ckey, ("exact",))], max_options=100_000)
    deadline = time.monotonic() + 30
    while pre._job is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running = pre._job
    assert pre.adopt(key, ckey, ("exact",)) is None  # another setting: the speculative job is stopped
    assert running.state == "cancelled" and pre._job is None and not pre._active

    pre.request([(slow, slow_key, ckey, ("exact",))], max_options=100_000)
    while pre._job is None:
        assert time.monotonic() < deadline + 30
        time.sleep(0.02)
    niced = min(19, solve_slots.PREFETCH_NICE + os.nice(0))  # 19 is the lowest priority (a test run under `nice`)
    while os.getpriority(os.PRIO_PROCESS, pre._job.process.pid) != niced:  # the child lowers it when it starts
        assert time.monotonic() < deadline + 60, "the speculative solve did not lower its priority"
        time.sleep(0.01)
    job = pre.adopt(slow_key, ckey, ("exact",))
    assert job is not None and pre._job is None  # handed over, no longer the pre-solver's
    if os.geteuid() == 0:  # only a privileged server can raise a priority again
        assert os.getpriority(os.PRIO_PROCESS, job.process.pid) == 0
    while not job.poll():
        time.sleep(0.05)
    assert job.state == "done"
    assert job.outcomes["exact"].result.plan.usd_per_million_tokens == \
        Planner(slow).exact(with_frontier=True).plan.usd_per_million_tokens


def test_too_large_is_skipped_not_solved():
    texts = T.load_bundled_texts("medium")
    sc = scenario_from_texts(texts, "medium")
    job = solver.start(sc, None, T.texts_key({**texts, "marker": "skip"}), (("c", "t"),), ("exact",), nice=5,
                       max_options=10)
    while not job.poll():
        time.sleep(0.05)
    assert job.state == "done" and job.skipped and not job.outcomes


def test_sidebar_toggles_survive_a_visit_to_another_page():
    """Streamlit drops a widget's key while its page is not shown; both toggles are kept across pages."""
    at = apptest.run_app(120)
    at.toggle(key="presolve").set_value(False).run()
    at.toggle(key="auto_solve").set_value(False).run()
    at.switch_page("pages/1_Catalogue.py").run()
    assert not at.exception
    at.switch_page(APP).run()
    assert not at.exception
    assert at.toggle(key="presolve").value is False and at.toggle(key="auto_solve").value is False
