"""A fresh session's headline before its state (ui.planner_page.early_headline, issue 14 item 8): drawn from
the server's warm-up answer before the GPU pool's tables exist, so that a cold server's first headline does
not wait for pandas; the page is the same as when the headline is drawn the usual way."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ui import keys as K
from ui import planner_page, prewarm, solver
from ui import scenario_texts as T

from .apptest import metric, ok, run_app, usd_m
from .test_app_speed import status_labels

ROOT = Path(__file__).resolve().parent.parent


def digest(at) -> list[tuple]:
    """What the main area shows, in order: every element's type with its label, value or text."""
    out = []

    def walk(node):
        kind = getattr(node, "type", "")
        fields = tuple(str(getattr(node, a)) for a in ("label", "value", "body") if hasattr(node, a)
                       and not callable(getattr(node, a)))
        if kind:
            out.append((kind, *fields))
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at.main)
    return out


@pytest.fixture
def spied(monkeypatch):
    """early_headline's answers, and whether the session's state existed when it was asked."""
    calls: list[tuple[bool, object]] = []
    real = planner_page.early_headline

    def spy(top):
        import streamlit as st

        had_state = K.BASE_TEXTS in st.session_state
        got = real(top)
        calls.append((had_state, got))
        return got
    monkeypatch.setattr(planner_page, "early_headline", spy)
    return calls


def test_a_fresh_session_draws_the_warm_up_answer_first_and_the_page_is_the_same_as_without(spied, monkeypatch):
    solver.results().clear()
    outcome = prewarm.default_headline()  # what the server's warm-up leaves in the store
    key, _, ckey = prewarm.default_texts()
    use_cases = []  # the use case each headline was drawn for (its latency warning depends on it)
    real_draw = planner_page.draw_head
    monkeypatch.setattr(planner_page, "draw_head", lambda *a, **k: use_cases.append(k.get("use_case"))
                        or real_draw(*a, **k))
    at = ok(run_app(scenario=None))
    (had_state, got), = spied
    assert use_cases == [at.session_state["use_case"]]  # drawn once, for the use case the session then has
    assert not had_state and got is not None
    assert got[0] == (key, ckey, "exact") == (T.texts_key(at.session_state[K.TEXTS]),
                                               T.texts_key(at.session_state[K.CATALOG_TEXTS]),
                                               at.session_state[K.METHOD])
    assert metric(at, "$ per million") == usd_m(outcome.result.plan.usd_per_million_tokens)
    assert sum(label.startswith("Solved (exact)") for label in status_labels(at)) == 1  # drawn once
    early_page = digest(at)

    at.run()  # the next run of the same session: its state exists, the usual path draws the headline
    assert spied[-1] == (True, None) and metric(at, "$ per million") == usd_m(outcome.result.plan.usd_per_million_tokens)

    solver.results().clear()
    solver.results().put((key, ckey, "exact"), outcome)  # the same warm-up answer, nothing else
    monkeypatch.setattr(planner_page, "early_headline", lambda top: None)
    usual_page = digest(ok(run_app(scenario=None)))  # a fresh session without the early headline
    assert usual_page == early_page
    assert any(kind == "metric" for kind, *_ in early_page)


def test_no_early_headline_for_another_scenario_or_without_the_warm_up_answer(spied):
    solver.results().clear()
    prewarm.default_headline()
    at = AppTestWithQuery("medium")
    assert spied[-1] == (False, None) and at.session_state[K.SCENARIO_NAME] == "medium"
    solver.results().clear()  # nothing solved by a warm-up: the page solves it itself
    at = ok(run_app(scenario=None))
    assert spied[-1] == (False, None) and metric(at, "$ per million").startswith("$")


def AppTestWithQuery(scenario: str):
    from streamlit.testing.v1 import AppTest

    from .apptest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["scenario"] = scenario
    return ok(at.run())


def test_waiting_for_the_warm_up_only_while_it_runs_and_never_beyond_the_bound(monkeypatch):
    monkeypatch.setattr(prewarm, "_started", threading.Lock())
    monkeypatch.setattr(prewarm, "default_tried", threading.Event())
    t0 = time.monotonic()
    prewarm.wait_for_default(30)  # no warm-up in this process: at once
    assert time.monotonic() - t0 < 1
    prewarm._started.acquire()
    t0 = time.monotonic()
    prewarm.wait_for_default(0.3)  # running, not there yet: waits, up to the bound
    assert 0.25 <= time.monotonic() - t0 < 5
    threading.Timer(0.2, prewarm.default_tried.set).start()
    t0 = time.monotonic()
    prewarm.wait_for_default(30)  # ends when the warm-up has tried it
    assert time.monotonic() - t0 < 10


def test_the_page_its_headline_and_the_warm_ups_solve_load_no_pandas():
    """Checked in a fresh interpreter: the modules a session imports before its headline, and the warm-up's
    default solve, leave pandas unloaded (the tables import it when they are made)."""
    code = ("import sys\nfrom ui import planner_page, state, inputs, headline, prewarm\n"
            "prewarm.default_headline()\nprint('pandas' in sys.modules)\n"
            "from ui import pool_texts\npool_texts.net_frame(['A'], {}, 1.0)\nprint('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
