"""The app under pressure (AppTest and the solve worker): bad and oversized uploads keep the loaded
scenario and the user's edits; uploads are read as data only; a solve runs in a worker process that
can be cancelled, is stopped when it overruns its time limit, and reports a crash instead of hiding it."""
from __future__ import annotations

import pickle
import signal
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner import InputError, Planner, build_candidates, load_config_dir, scenario_from_texts
from ui import scenario_texts as T
from ui import solver

from .apptest import metric, run_app, usd_m

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 180


def edited_app() -> tuple[AppTest, dict]:
    """The default scenario with a price edit and a quantization change, solved; returns what to keep."""
    at = run_app(TIMEOUT)
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"price_usd_per_hour": 0.7}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.select_slider(key="quantization").set_value("fine").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = dict(at.session_state["texts"])
    lib = Planner(scenario_from_texts(texts, "medium")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    return at, {"texts": texts, "usd": metric(at, "$ per million"),
                "price": at.session_state["pool"].loc[0, "price_usd_per_hour"]}


def assert_kept(at: AppTest, kept: dict) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["scenario_name"] == "medium"
    assert at.session_state["texts"] == kept["texts"]
    assert at.session_state["pool"].loc[0, "price_usd_per_hour"] == kept["price"] == 0.7
    assert at.select_slider(key="quantization").value == "fine"
    assert metric(at, "$ per million") == kept["usd"]


def test_bad_upload_shows_every_problem_and_keeps_scenario_and_edits():
    at, kept = edited_app()
    bad = b"gpu_type,count,price_usd_per_hour\nA100,-3,1.0\nA100-80GB-SXM,2,abc\nNoSuchGPU,2,1.0\n"
    at.file_uploader(key="upload").set_value(("gpu_pool.csv", bad, "text/csv")).run()
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "The upload was not loaded" in errors
    # every problem, each located: the negative count, the text price, the unknown GPU type
    assert "gpu_pool.csv, row 2, column 'count'" in errors
    assert "gpu_pool.csv, row 3, column 'price_usd_per_hour'" in errors
    assert "gpu_pool.csv, row 4, column 'gpu_type'" in errors
    assert_kept(at, kept)
    # a later good upload still loads, and the result follows it
    good = T.load_bundled_texts("medium")["gpu_pool.csv"].replace("A100,8,48,1.0", "A100,8,48,0.9")
    assert good != T.load_bundled_texts("medium")["gpu_pool.csv"]
    at.file_uploader(key="upload").set_value(("gpu_pool.csv", good.encode(), "text/csv")).run()
    assert not at.sidebar.error and not at.exception
    assert at.session_state["texts"]["gpu_pool.csv"] == good
    lib = Planner(scenario_from_texts(at.session_state["texts"], "x")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


def test_upload_over_the_size_limit_is_refused_naming_file_and_limit():
    limit_mb = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    at, kept = edited_app()
    assert at.session_state["texts"]  # the app reads the same limit through Streamlit's config
    big = b"gpu_type,count\n" + b"A100,1\n" * (limit_mb * 1024 * 1024 // 7 + 1)
    assert len(big) > limit_mb * 1024 * 1024
    at.file_uploader(key="upload").set_value(("gpu_pool.csv", big, "text/csv")).run()
    errors = " ".join(e.value for e in at.sidebar.error)
    assert f"gpu_pool.csv: {len(big) / 1048576:.1f} MB is over the upload limit of {limit_mb} MB" in errors
    assert_kept(at, kept)


def test_uploads_are_parsed_as_data_only(tmp_path):
    at, kept = edited_app()
    marker = tmp_path / "evaluated"
    # code in a cell is a cell that is not a number
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()".encode()
    at.file_uploader(key="upload").set_value(("gpu_pool.csv", b"gpu_type,count\nA100,\"" + code + b"\"\n",
                                              "text/csv")).run()
    assert "gpu_pool.csv, row 2, column 'count'" in " ".join(e.value for e in at.sidebar.error)
    assert_kept(at, kept)
    # a pickle renamed .json is not JSON (the uploader itself admits only .csv and .json names)
    payload = pickle.dumps({"files": {"config.csv": "x"}})
    at.file_uploader(key="upload").set_value(("scenario.json", payload, "application/json")).run()
    assert "scenario.json" in " ".join(e.value for e in at.sidebar.error)
    assert_kept(at, kept)
    assert not marker.exists()
    with pytest.raises(InputError, match="scenario.pkl: not a .csv or scenario .json file"):
        T.texts_from_uploads([("scenario.pkl", payload)], kept["texts"])


def test_main_page_is_titled_planner_in_the_navigation():
    at = run_app(TIMEOUT)
    pages = {p["page_name"]: p for p in at._registered_pages.values()}  # what the sidebar navigation lists
    assert list(pages)[0] == "Planner" and "app" not in pages
    assert Path(pages["Planner"]["script_path"]).resolve() == Path(APP).resolve()
    want = [p.stem.split("_", 1)[1].replace("_", " ") for p in sorted((ROOT / "pages").glob("*.py"))]
    assert list(pages)[1:] == want


# ---------------------------------------------------------------------------- the solve worker
@pytest.fixture(scope="module")
def xl():
    """The bundled 40,000-option scenario: its exact solve takes tens of seconds here."""
    sc = load_config_dir(ROOT / "config" / "xl")
    return sc, build_candidates(sc)


def key_for(name: str) -> tuple:
    return ((("test", name),), ())


def test_cancel_ends_the_worker_at_once_and_stores_nothing(xl):
    sc, cs = xl
    # the whole frontier (seconds on xl; the exact optimum alone can finish within the 2 s waited here)
    job = solver.start(sc, cs, *key_for("cancel"), (solver.FRONTIER,))
    time.sleep(2.0)
    assert not job.poll() and job.process.is_alive()
    t0 = time.perf_counter()
    job.cancel()
    assert time.perf_counter() - t0 < 3.0
    assert job.state == "cancelled" and not job.process.is_alive()
    assert job.process.exitcode == -signal.SIGTERM
    assert job.poll() and job.outcomes == {}
    assert solver.results().get((*key_for("cancel"), solver.FRONTIER)) is None


def test_a_solve_that_overruns_its_time_limit_is_stopped(xl, monkeypatch):
    sc, cs = xl
    monkeypatch.setattr(solver, "GRACE_S", 0.0)
    quick = replace(sc, settings=replace(sc.settings, time_limit_s=1.0))
    job = solver.start(quick, cs, *key_for("overrun"), (solver.FRONTIER,))  # the long part on xl
    deadline = time.perf_counter() + 30
    while not job.poll():
        assert time.perf_counter() < deadline, "the worker was not stopped"
        time.sleep(0.1)
    assert job.state == "failed" and "past its time limit" in job.failure
    assert not job.process.is_alive()


def test_worker_sends_each_outcome_and_reports_a_crash(monkeypatch):
    sc = load_config_dir(ROOT / "config" / "tiny")
    cs = build_candidates(sc)
    job = solver.start(sc, cs, *key_for("tiny"), ("weighted", "exact"))
    while not job.poll():
        time.sleep(0.05)
    assert job.state == "done" and list(job.outcomes) == ["weighted", "exact"]
    assert job.progress is not None and job.progress[0] in job.outcomes  # the planner's progress came through
    lib = Planner(sc).exact()
    assert job.outcomes["exact"].result.plan.usd_per_million_tokens == pytest.approx(lib.plan.usd_per_million_tokens)
    assert solver.results().get((*key_for("tiny"), "exact")) is job.outcomes["exact"]

    def bug(*args):
        raise ZeroDivisionError("a bug inside the worker")

    monkeypatch.setattr(solver, "run_method", bug)  # the forked worker runs the patched module
    broken = solver.start(sc, cs, *key_for("broken"), ("exact",))
    while not broken.poll():
        time.sleep(0.05)
    assert broken.state == "failed"
    assert "internal error" in broken.failure and "ZeroDivisionError: a bug inside the worker" in broken.failure
