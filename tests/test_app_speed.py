"""AppTests of the fast first screen (issue 14 item 8, issue 11 "many users"): the headline of a small
problem is solved in the server process (no worker to start), once for every session that asks for the
same scenario, and later sessions take it from the shared store; larger problems and the other methods
still go to the cancellable workers. And the page's layout in code (issue 13 item 3): app.py only the
navigation, the session keys named in ui.keys."""
from __future__ import annotations

import asyncio
import importlib.util
import re
import threading
import time
import types
from pathlib import Path

import pytest
from streamlit.web.server.app_discovery import discover_asgi_app

from planner import Planner, build_candidates, scenario_from_texts
from ui import keys as K
from ui import scenario_texts as T
from ui import first_view, prewarm, solve_slots, solver

from .apptest import metric, ok, run_app, usd_m

ROOT = Path(__file__).resolve().parent.parent


def run_coroutine(coro):
    """asyncio.run in a thread of its own: in the full suite, Playwright's sync API (browser tests that ran
    before) leaves an event loop running in the main thread, where asyncio.run refuses to start."""
    out: dict = {}

    def target():
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the test's thread, raised there
            out["error"] = exc
    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def status_labels(at) -> list[str]:
    """Labels of every st.status block and expander on the page (the solve's status line is either)."""
    out, todo = [], [at.main]
    while todo:
        node = todo.pop()
        if getattr(node, "type", "") in ("status", "expander"):
            out.append(node.label)
        todo.extend(getattr(node, "children", {}).values())
    return out


def test_headline_of_a_small_problem_is_solved_in_the_server_and_shared_with_the_next_session():
    solver.results().clear()
    started = solve_slots.solve_pool().started
    at = ok(run_app(scenario="medium"))
    sc = scenario_from_texts(T.load_bundled_texts("medium"), "medium")
    lib = Planner(sc).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    key = (T.texts_key(at.session_state[K.TEXTS]), T.texts_key(at.session_state[K.CATALOG_TEXTS]))
    exact = solver.results().get((*key, "exact"))
    assert exact is not None and exact.result.proven_optimal
    # only the frontier for the curve went to a worker; the headline was solved here
    assert solve_slots.solve_pool().started - started == 1
    assert solver.results().get((*key, solver.FRONTIER)) is not None
    assert any(label.startswith("Solved (exact): optimal") and "from cache" not in label
               for label in status_labels(at)), status_labels(at)
    # a second session on the same scenario: everything from the store, no solve at all
    started = solve_slots.solve_pool().started
    again = ok(run_app(scenario="medium"))
    assert metric(again, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    assert solve_slots.solve_pool().started == started
    assert any(label.endswith("from cache") for label in status_labels(again)), status_labels(again)
    # the headline still says proven optimal, with status and gap
    assert metric(again, "Optimal") == "proven"


def test_sessions_asking_at_once_share_one_in_process_solve(monkeypatch):
    solver.results().clear()
    sc = scenario_from_texts(T.load_bundled_texts("small"), "small")
    cs = build_candidates(sc)
    calls = []
    real = solver.run_method

    def slow(*args, **kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for every thread below to arrive while it runs
        return real(*args, **kwargs)

    monkeypatch.setattr(solver, "run_method", slow)
    texts = T.texts_key(T.load_bundled_texts("small"))
    got = []
    threads = [threading.Thread(target=lambda: got.append(solver.solve_inline(sc, cs, texts, (), "exact")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(got) == 6 and all(o is got[0] for o in got)
    assert got[0].result.plan.usd_per_million_tokens == Planner(sc, cs).exact().plan.usd_per_million_tokens


def test_only_small_exact_solves_run_in_the_server_process():
    small = types.SimpleNamespace(options=range(solver.INLINE_MAX_OPTIONS))
    big = types.SimpleNamespace(options=range(solver.INLINE_MAX_OPTIONS + 1))
    assert solver.inline_ok("exact", small)
    assert not solver.inline_ok("exact", big)
    for method in ("enumeration", "weighted", solver.FRONTIER):
        assert not solver.inline_ok(method, small)
    assert solver.inline_ok(solver.FRONTIER, types.SimpleNamespace(options=range(solver.INLINE_FRONTIER_MAX_OPTIONS)))
    assert not solver.inline_ok(solver.FRONTIER,
                                types.SimpleNamespace(options=range(solver.INLINE_FRONTIER_MAX_OPTIONS + 1)))
    # every bundled realistic scenario's default fits (so its first screen needs no worker)
    for name in T.bundled_names():
        if name in T.SEED_SCENARIOS or name in ("xl",):
            continue
        cs = build_candidates(scenario_from_texts(T.load_bundled_texts(name), name))
        assert solver.inline_ok("exact", cs), (name, len(cs.options))


def test_a_small_frontier_after_the_first_view_is_solved_with_the_headline_and_a_larger_or_slow_one_in_a_worker(
        monkeypatch):
    """A slider move to a new setting of a small problem: its frontier is solved in the server process with
    the headline (no worker), and the curve is the library's frontier. Above INLINE_FRONTIER_MAX_OPTIONS, or
    when it is not done within INLINE_FRONTIER_DEADLINE_S, it goes to a worker, and the curve is the same."""
    at = ok(run_app(scenario="medium"))
    at.session_state[K.PRESOLVE] = False
    # a time limit no other test uses: the settings below are new to the shared result store
    at.number_input(key="time_limit").set_value(93).run()
    assert not at.exception
    started = solve_slots.solve_pool().started

    def move(q: str, time_limit_s: float = 93):
        at.select_slider(key="quantization").set_value(q)
        at.number_input(key="time_limit").set_value(time_limit_s).run()
        ok(at)
        texts = T.texts_key(at.session_state[K.TEXTS])
        sc = scenario_from_texts(dict(texts), "medium")
        cs = build_candidates(sc)
        assert sc.settings.quantization == q and sc.settings.time_limit_s == time_limit_s
        got = solver.results().get((texts, T.texts_key(at.session_state[K.CATALOG_TEXTS]), solver.FRONTIER))
        assert got.error is None
        lib = Planner(sc, cs).exact(with_frontier=True)
        assert [(p.cost_usd_per_hour, p.tokens_per_s) for p in got.frontier] == \
            [(p.cost_usd_per_hour, p.tokens_per_s) for p in lib.frontier]
        return len(cs.options)

    assert move("fine") <= solver.INLINE_FRONTIER_MAX_OPTIONS
    assert move("full") <= solver.INLINE_FRONTIER_MAX_OPTIONS  # 3,074 options
    assert solve_slots.solve_pool().started == started  # no worker
    monkeypatch.setattr(solver, "INLINE_FRONTIER_DEADLINE_S", 0.0)  # given up at once: a worker, no error kept
    move("even")
    assert solve_slots.solve_pool().started == started + 1
    monkeypatch.setattr(solver, "INLINE_FRONTIER_DEADLINE_S", 60.0)
    monkeypatch.setattr(solver, "INLINE_FRONTIER_MAX_OPTIONS", 500)
    assert move("coarse", 94) > solver.INLINE_FRONTIER_MAX_OPTIONS  # a new setting (time limit 94 s)
    assert solve_slots.solve_pool().started == started + 2


def test_a_headline_solve_not_done_in_time_here_is_left_to_a_worker(monkeypatch):
    """An inline exact solve given up at its deadline: a worker solves it, and the headline is the library's."""
    at = ok(run_app(scenario="small"))
    monkeypatch.setattr(solver, "INLINE_DEADLINE_S", 0.0)
    started = solve_slots.solve_pool().started
    at.number_input(key="time_limit").set_value(97).run()  # a setting no other test solves
    ok(at)
    assert solve_slots.solve_pool().started == started + 1
    sc = scenario_from_texts(at.session_state[K.TEXTS], "small")
    assert metric(at, "$ per million") == usd_m(Planner(sc).exact().plan.usd_per_million_tokens)


def test_weighted_method_still_solves_in_a_worker():
    solver.results().clear()
    at = ok(run_app(scenario="small"))
    started = solve_slots.solve_pool().started
    at.radio(key=K.METHOD).set_value("weighted").run()
    ok(at)
    assert solve_slots.solve_pool().started > started
    assert metric(at, "$ per million")


def test_app_py_is_only_the_navigation_and_page_keys_are_named_in_one_place():
    app = (ROOT / "app.py").read_text()
    assert len(app.splitlines()) < 150
    assert "session_state" not in app
    literal = re.compile(r"""\b(?:s|session_state)(?:\.get|\.pop|\.setdefault)?[\[(]\s*f?["']""")
    for name in ("planner_page.py", "state.py", "headline.py"):
        found = literal.findall((ROOT / "ui" / name).read_text())
        assert not found, f"session keys in ui/{name} must come from ui.keys: {found}"
    declared = {v for k, v in vars(K).items() if k.isupper() and isinstance(v, str)}
    for name in ("JOB", "CANCELLED", "LAST_GOOD", "METHOD", "TEXTS"):
        assert getattr(K, name) in declared


def test_per_gpu_view_is_drawn_only_when_its_tab_is_open():
    at = ok(run_app(scenario="small"))

    def charts() -> list[str]:
        return [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]

    assert "gpu_chart" not in charts() and "layout_chart" in charts()
    at.session_state[K.RESULT_VIEW] = "Per-GPU view"
    at.run()
    ok(at)
    assert "gpu_chart" in charts()
    sc = scenario_from_texts(at.session_state[K.TEXTS], "small")
    gpus = Planner(sc).exact().plan.num_gpus
    tables = [d.value for d in at.dataframe if "TP rank" in d.value.columns]
    assert len(tables) == 1 and len(tables[0]) == gpus  # one row per GPU of the plan


def test_the_first_view_pauses_once_after_the_headline(monkeypatch):
    from ui import planner_page

    slept: list[float] = []
    monkeypatch.setattr(planner_page, "time", types.SimpleNamespace(sleep=slept.append))
    monkeypatch.setenv("PLANNER_FIRST_VIEW_PAUSE_S", "0.25")
    at = ok(run_app(scenario="small"))
    assert slept == [0.25]
    assert metric(at, "$ per million")
    at.run()
    ok(at)
    assert slept == [0.25]  # later runs of the session do not pause


def test_first_view_pause_setting(monkeypatch):
    from ui import planner_page

    for raw, want in (("", 1.0), ("0", 0.0), ("0.5", 0.5), ("abc", 1.0), ("-1", 1.0), ("99", 1.0)):
        monkeypatch.setenv("PLANNER_FIRST_VIEW_PAUSE_S", raw)
        assert planner_page.first_view_pause_s() == want, raw


# ------------------------------------------------------------------ the server's warm-up (ui.prewarm)
def test_warm_up_solves_the_default_headline_that_a_fresh_session_then_takes_from_the_store(monkeypatch):
    solver.results().clear()
    outcome = prewarm.default_headline()
    key, name, ckey = prewarm.default_texts()
    assert solver.results().get((key, ckey, "exact")) is outcome
    lib = Planner(scenario_from_texts(T.load_bundled_texts(name), name)).exact()  # solved another way
    assert outcome.result.plan.usd_per_million_tokens == pytest.approx(lib.plan.usd_per_million_tokens, rel=1e-9)
    solved_here = []
    real = solver.run_method
    monkeypatch.setattr(solver, "run_method", lambda sc, cs, m, progress=None: solved_here.append(m)
                        or real(sc, cs, m, progress))
    at = ok(run_app(scenario=None))  # the page a fresh session opens
    # the same keys as the session's (the warm-up is useless, not wrong, if they ever differ)
    assert (T.texts_key(at.session_state[K.TEXTS]), T.texts_key(at.session_state[K.CATALOG_TEXTS])) == (key, ckey)
    assert at.session_state[K.SCENARIO_NAME] == name
    assert solved_here == []  # nothing solved in this process: the headline came from the store
    assert any(label.startswith("Solved (exact): optimal") and label.endswith("from cache")
               for label in status_labels(at)), status_labels(at)
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


def test_warm_up_runs_once_from_the_startup_hook_and_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(prewarm, "_started", threading.Lock())
    monkeypatch.setattr(prewarm, "done", threading.Event())
    monkeypatch.setattr(prewarm, "first_headline_sent", threading.Event())
    monkeypatch.setenv("PLANNER_PREWARM", "0")
    assert prewarm.start() is None and not prewarm._started.locked()
    monkeypatch.delenv("PLANNER_PREWARM")
    solver.results().clear()
    prewarm.first_headline_sent.set()  # as if a session had sent its headline: stage 3 at once

    async def serve():
        async with prewarm.lifespan(None):
            pass

    run_coroutine(serve())
    assert prewarm.done.wait(120)
    key, _, ckey = prewarm.default_texts()
    assert solver.results().get((key, ckey, "exact")) is not None
    assert prewarm.start() is None  # once per process


def test_app_py_is_served_through_streamlits_asgi_entry_with_the_warm_up_as_startup_hook():
    found = discover_asgi_app(ROOT / "app.py")
    assert found.is_asgi_app and found.import_string == "app:app"
    spec = importlib.util.spec_from_file_location("app_as_server_imports_it", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # outside a script run: defines the App, draws nothing
    assert module.app.script_path == ROOT / "app.py"
    assert "planner_page" not in vars(module)


# ------------------------------------------------------------------ headlines first (ui.first_view)
class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_a_first_view_holds_its_rest_while_other_pages_load_and_never_beyond_the_bound(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(first_view.time, "monotonic", lambda: clock.now)
    views = first_view.FirstViews(forget_s=30.0)
    for _ in range(3):  # three browsers ask for the page together
        views.page_requested()
    assert views.loading() == 3
    views.headline_sent()  # the first one's headline is out; two pages still on their way
    waited = views.hold(1.0, 6.0, sleep=clock.sleep)
    assert waited == pytest.approx(6.0, abs=first_view.STEP_S + 1e-9)  # bounded: nobody waits longer
    views.headline_sent()
    views.headline_sent()
    assert views.loading() == 0
    assert views.hold(1.0, 6.0, sleep=clock.sleep) == pytest.approx(1.0)  # alone: the plain first-view pause
    # a page whose browser never came back is forgotten, so it holds nobody for ever
    views.page_requested()
    clock.now += 31.0
    assert views.loading() == 0
    views.headline_sent()  # with nothing counted: no negative count
    assert views.loading() == 0


def test_the_wait_ends_when_the_last_loading_page_has_its_headline(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(first_view.time, "monotonic", lambda: clock.now)
    views = first_view.FirstViews()
    views.page_requested()
    views.page_requested()
    views.headline_sent()

    def sleep(s):  # the other session's headline goes out 2.5 s into the wait
        clock.sleep(s)
        if clock.now >= 2.5 and views.loading():
            views.headline_sent()

    # then the grace for its browser to draw it
    want = 2.5 + first_view.GRACE_S
    assert views.hold(1.0, 6.0, sleep=sleep) == pytest.approx(want, abs=2 * first_view.STEP_S + 1e-9)


def test_page_requests_are_counted_by_the_middleware_only_for_the_main_page():
    views = first_view.FirstViews()
    calls = []

    async def inner(scope, receive, send):
        calls.append(scope["path"])

    mw = first_view.CountPageLoads(inner, views)
    for method, path in (("GET", "/"), ("GET", "/_stcore/health"), ("GET", "/static/js/main.js"), ("POST", "/"),
                         ("GET", "/catalog"), ("GET", "")):
        run_coroutine(mw({"type": "http", "method": method, "path": path}, None, None))
    run_coroutine(mw({"type": "websocket", "path": "/_stcore/stream"}, None, None))
    assert views.loading() == 2 and len(calls) == 7  # "/" and "" only; every request is passed on


def test_a_session_opened_while_others_load_still_gets_its_whole_page(monkeypatch):
    clock = FakeClock()
    held: list[tuple[float, float]] = []
    real_hold = first_view.FirstViews.hold

    def hold(self, min_s, max_s, sleep):
        held.append((min_s, max_s))
        return real_hold(self, min_s, max_s, sleep=clock.sleep)

    monkeypatch.setattr(first_view.FirstViews, "hold", hold)
    monkeypatch.setattr(first_view.time, "monotonic", lambda: clock.now)
    monkeypatch.setattr(first_view, "first_views", first_view.FirstViews())
    monkeypatch.setenv("PLANNER_FIRST_VIEW_PAUSE_S", "0.5")
    monkeypatch.setenv("PLANNER_HEADLINES_FIRST_S", "3")
    for _ in range(2):
        first_view.first_views.page_requested()
    at = ok(run_app(scenario="small"))
    assert held == [(0.5, 3.0)] and sum(clock.slept) == pytest.approx(3.0, abs=0.2)
    assert first_view.first_views.loading() == 1  # its own page is no longer counted; the other one still is
    assert metric(at, "$ per million") and at.get("plotly_chart")  # the rest of the page came after the wait
    at.run()
    assert held == [(0.5, 3.0)]  # once per session


def test_headlines_first_setting(monkeypatch):
    for raw, want in (("", 8.0), ("0", 0.0), ("2.5", 2.5), ("x", 8.0), ("-1", 8.0), ("61", 8.0)):
        monkeypatch.setenv("PLANNER_HEADLINES_FIRST_S", raw)
        assert first_view.max_wait_s() == want, raw


def test_warm_up_pays_streamlits_once_per_process_costs_before_any_session():
    """In a fresh process: neither cost is paid before, both are after (the first session then skips them)."""
    import subprocess
    import sys

    code = ("import sys\nfrom streamlit import delta_generator as d\nfrom ui import prewarm\n"
            "before = ('streamlit.emojis' in sys.modules, d._use_warning_has_been_displayed)\n"
            "prewarm.streamlit_first_use()\n"
            "print(before, ('streamlit.emojis' in sys.modules, d._use_warning_has_been_displayed))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(False,", "False)", "(True,", "True)"], out.stdout
