"""AppTest of the What-if and Compare pages: every number shown equals a direct library call (and some a
re-solve with the changed input), the Plotly specs hold the library's points, the analysis worker can be
cancelled, and named scenarios survive save / compare / export / import."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from planner import InfeasibleError, Planner, load_config_dir, scenario_from_texts
from planner import whatif as W
from planner import whatif_prices as P
from planner.scenario_io import scenario_texts_to_json
from pyomo.common import dependencies as pyomo_dependencies
from ui import scenario_texts as T
from ui import whatif_compare as C
from ui import whatif_jobs as jobs
from ui import whatif_view as V
from ui.text import md

from . import apptest
from .apptest import ok, usd_m

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
WHATIF = "pages/5_What_if.py"
COMPARE = "pages/6_Compare.py"
TIMEOUT = 240


def metric(at: AppTest, label: str) -> str:
    return apptest.metric(at, label, exact=True)


def whatif(tab: str | None = None, at: AppTest | None = None) -> AppTest:
    """The main page solved (so the what-if page reuses its optimum), then the what-if page on `tab`."""
    if at is None:
        at = ok(apptest.run_app(TIMEOUT))
    if tab is not None:
        at.session_state["wf_tab"] = tab
    return ok(at.switch_page(WHATIF).run())


def medium():
    return scenario_from_texts(T.load_bundled_texts("medium"), "medium")


def chart(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.proto.id.endswith("-" + key):
            return json.loads(c.proto.spec)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    raise AssertionError(f"no chart {key}: {[[t.get('name') for t in s['data']] for s in specs]}")


def trace(fig: dict, name_start: str) -> dict:
    for t in fig["data"]:
        if (t.get("name") or "").startswith(name_start):
            return t
    raise AssertionError(f"no trace {name_start!r}: {[t.get('name') for t in fig['data']]}")


def frame(at: AppTest, first_column: str, containing: str | None = None) -> pd.DataFrame:
    for d in at.dataframe:
        df = d.value
        if len(df.columns) and df.columns[0] == first_column and (containing is None or containing in df.columns):
            return df
    raise AssertionError(f"no table starting with {first_column!r}: {[list(d.value.columns)[:3] for d in at.dataframe]}")


def texts_of(at: AppTest) -> str:
    return " ".join(x.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
                    for x in getattr(at, kind))


# ---------------------------------------------------------------------------- what-if page
def test_frontier_points_chart_and_chosen_layout_equal_the_library():
    at = whatif()
    fr = W.pareto(medium())
    assert metric(at, "Frontier plans") == str(len(fr.points))
    assert metric(at, "Minimum $ per million tokens") == usd_m(fr.best.usd_per_million_tokens)
    # the headline is the main page's optimum, with its TTFT and TPOT
    lib = Planner(medium()).exact().plan
    assert metric(at, "$ per million tokens") == usd_m(lib.usd_per_million_tokens)
    assert metric(at, "TTFT") == f"{lib.ttft_s:,.2f} s"
    assert metric(at, "TPOT") == f"{lib.tpot_s * 1e3:,.1f} ms"
    fig = chart(at, "wf_frontier_chart")
    line = trace(fig, "Pareto frontier (exact)")
    assert line["x"] == pytest.approx([p.cost_usd_per_hour for p in fr.points])
    assert line["y"] == pytest.approx([p.tokens_per_s for p in fr.points])
    assert [row[1] for row in line["customdata"]] == pytest.approx([p.usd_per_million_tokens for p in fr.points])
    assert line["line"]["shape"] == "hv"
    star = trace(fig, "minimum $/token")
    assert (star["x"], star["y"]) == (pytest.approx([fr.best.cost_usd_per_hour]), pytest.approx([fr.best.tokens_per_s]))
    grid = trace(fig, "enumeration grid plans")
    planned = [g for g in fr.grid if g.cost_usd_per_hour is not None]
    assert grid["x"] == pytest.approx([g.cost_usd_per_hour for g in planned])
    assert [row[0] for row in grid["customdata"]] == pytest.approx([g.budget_usd_per_hour for g in planned])
    # the grid plans are the enumeration method's, solved separately
    enum = Planner(medium()).enumeration()
    assert sorted(grid["x"]) == pytest.approx(sorted(p.cost_usd_per_hour for p in enum.curve if p.plan is not None))
    # equal-$/token line through the optimum: no frontier point lies above it
    eq = trace(fig, "equal $/token")
    slope = eq["y"][1] / eq["x"][1]
    assert all(p.tokens_per_s <= slope * p.cost_usd_per_hour * (1 + 1e-9) for p in fr.points)
    # the table holds every frontier point
    table = frame(at, "plan", "grid budgets ($/h)")
    assert list(table["$/h"]) == pytest.approx([p.cost_usd_per_hour for p in fr.points])
    assert list(table["$/M tokens"]) == pytest.approx([p.usd_per_million_tokens for p in fr.points])
    assert list(table["TPOT (ms)"]) == pytest.approx([p.plan.tpot_s * 1e3 for p in fr.points])
    assert list(table["min $/token"]) == [p.min_usd_per_token for p in fr.points]
    # the min-$/token plan is shown first; picking another shows its layout
    assert at.selectbox(key="wf_point").value == fr.best_index
    other = 0 if fr.best_index else len(fr.points) - 1
    ok(at.selectbox(key="wf_point").set_value(other).run())
    plan = fr.points[other].plan
    layout = chart(at, "wf_layout_chart")
    bars = [t for t in layout["data"] if t["type"] == "bar"]
    assert [b["x"][0] for b in bars] == [s.num_layers for s in plan.stages]
    stages = frame(at, "stage", "decode step (ms)")
    assert list(stages["GPU type"]) == [s.gpu_type for s in plan.stages]
    assert list(stages["TP"]) == [s.tp for s in plan.stages]
    assert f"**Plan {other + 1}**: {md(fr.points[other].layout)}" in texts_of(at)
    assert trace(chart(at, "wf_frontier_chart"), "shown below")["x"] == pytest.approx([plan.cost_usd_per_hour])


def test_baselines_table_chart_and_verdict_equal_the_library():
    at = whatif("Single-type baselines")
    sc = medium()
    b = W.baselines(sc)
    assert md(b.verdict[0].upper() + b.verdict[1:]) in texts_of(at)  # shown as text ($ escaped)
    table = frame(at, "GPUs allowed")
    assert list(table["count"]) == [x.count for x in (b.mixed, *b.singles)]
    want = [x.headline.usd_per_million_tokens if x.headline else None for x in (b.mixed, *b.singles)]
    shown = [None if pd.isna(v) else v for v in table["$/M tokens"]]
    assert shown == pytest.approx(want)
    # each single-type figure is the exact optimum of the pool restricted to that type, solved here directly
    for x, value in zip(b.singles, shown[1:]):
        try:
            direct = Planner(W.restrict_pool(sc, [x.gpu_type])).exact().plan.usd_per_million_tokens
        except InfeasibleError:
            direct = None
        assert value == pytest.approx(direct)
    bars = chart(at, "wf_baselines_chart")["data"][0]
    assert bars["y"] == pytest.approx([v or 0.0 for v in want])
    assert bars["x"][0] == "mixed pool"


def test_tornado_break_even_and_sweep_equal_the_library_for_the_chosen_percent():
    at = whatif()
    at.session_state["wf_percent"] = 30
    at.session_state["wf_sweep_points"] = 5
    at = whatif("Price sensitivity", at)
    sc = medium()
    base = Planner(sc).exact()
    t = P.tornado(sc, 30, base)
    table = frame(at, "GPU type", "$/M tokens at −30%")
    assert list(table["GPU type"]) == [r.gpu_type for r in t.rows]
    assert list(table["$/M tokens at −30%"]) == pytest.approx([r.low.usd_per_million_tokens for r in t.rows])
    assert list(table["$/M tokens at +30%"]) == pytest.approx([r.high.usd_per_million_tokens for r in t.rows])
    assert list(table["plan changes at +30%"]) == [r.high_plan_changed for r in t.rows]
    # one figure derived another way: re-solve with the widest-swing type's price lowered by 30%
    top = t.rows[0]
    direct = Planner(W.with_prices(sc, {top.gpu_type: top.price_usd_per_hour * 0.7})).exact()
    assert table["$/M tokens at −30%"][0] == pytest.approx(direct.plan.usd_per_million_tokens)
    fig = chart(at, "wf_tornado_chart")
    low, high = trace(fig, "price −30%"), trace(fig, "price +30%")
    rows = t.rows[::-1]
    assert low["base"] == pytest.approx(t.base.usd_per_million_tokens)
    assert [b + low["base"] for b in low["x"]] == pytest.approx([r.low.usd_per_million_tokens for r in rows])
    assert [b + high["base"] for b in high["x"]] == pytest.approx([r.high.usd_per_million_tokens for r in rows])
    assert [y.split(" ")[0] for y in low["y"]] == [r.gpu_type for r in rows]
    # break-even prices
    be = frame(at, "GPU type", "break-even ($/GPU-hour)")
    lib = {b.gpu_type: b for b in P.break_evens(sc, base)}
    assert list(be["GPU type"]) == list(sc.pool.types)
    for g, price in zip(be["GPU type"], be["break-even ($/GPU-hour)"]):
        assert (None if pd.isna(price) else price) == pytest.approx(lib[g].break_even_usd_per_hour)
        assert f"- {md(lib[g].meaning)}" in texts_of(at)
    # a type in the optimal plan: just below its break-even it stays, just above it leaves (re-solved here)
    g = next(x for x in lib.values() if x.in_plan_now and x.break_even_usd_per_hour is not None)
    uses = [Planner(W.with_prices(sc, {g.gpu_type: g.break_even_usd_per_hour * f})).exact().plan.gpus_by_type()
            .get(g.gpu_type, 0) for f in (0.99, 1.01)]
    assert uses[0] > 0 and uses[1] == 0
    # the sweep of the first type over 50-150% of its price at 5 points
    gt = sc.pool.types[0]
    p0 = sc.pool.entry(gt).spec.price_usd_per_hour
    sw = P.price_sweep(sc, gt, p0 * 0.5, p0 * 1.5, 5)
    line = trace(chart(at, "wf_sweep_chart"), "optimal $/M tokens")
    assert line["x"] == pytest.approx([p.price_usd_per_hour for p in sw.points])
    assert line["y"] == pytest.approx([p.headline.usd_per_million_tokens for p in sw.points])


def test_quantization_table_equals_the_library():
    at = whatif("Quantization loss")
    q = W.quantization_loss(medium())
    table = frame(at, "level", "loss vs reference (%)")
    assert [x.split(" ")[0] for x in table["level"]] == [r.level for r in q.rows]
    assert list(table["stage options"]) == [r.options for r in q.rows]
    assert list(table["$/M tokens"]) == pytest.approx([r.headline.usd_per_million_tokens for r in q.rows])
    assert list(table["loss vs reference (%)"]) == pytest.approx([r.loss_pct for r in q.rows], abs=1e-9)
    assert list(table["MILP integers"]) == [r.milp_integers for r in q.rows]
    assert f"**Summary:** {md(q.summary)}." in texts_of(at)


def test_spot_prices_and_caps_compare_with_on_demand_like_the_library():
    at = whatif("Spot & availability")
    assert "Enter a spot price or a cap" in texts_of(at)
    at.session_state["wf_spot_fill"] = 50
    ok(at.button(key="wf_spot_fill_button").click().run())
    key = at.session_state["whatif_spot_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"cap": 2, "overhead_pct": 25.0}}, "added_rows": [], "deleted_rows": []}
    ok(at.run())
    sc = medium()
    first = sc.pool.types[0]
    spot = {e.name: e.spec.price_usd_per_hour * 0.5 for e in sc.pool.entries}
    over = {g: (0.25 if g == first else 0.10) for g in spot}
    lib = W.spot_comparison(sc, spot, over, {first: 2})
    prices = frame(at, "GPU type", "$/productive GPU-hour")
    assert list(prices["$/productive GPU-hour"]) == pytest.approx([spot[g] / (1 - over[g]) for g in spot])
    figures = frame(at, "figure", "what-if")
    row = figures[figures["figure"] == "$ per million tokens"].iloc[0]
    assert row["on demand"] == usd_m(lib.comparison.a.usd_per_million_tokens)
    assert row["what-if"] == usd_m(lib.comparison.b.usd_per_million_tokens)
    assert row["change (%)"] == pytest.approx(-lib.savings_pct)
    # derived another way: the capped, re-priced pool solved directly
    direct = Planner(W.with_caps(W.with_spot(sc, spot, over), {first: 2})).exact().plan
    assert row["what-if"] == usd_m(direct.usd_per_million_tokens)
    assert direct.gpus_by_type().get(first, 0) <= 2
    # a bad cap names the table, row and column, and nothing is solved
    at.session_state[at.session_state["whatif_spot_editor_key"]] = {
        "edited_rows": {1: {"cap": 1.5}}, "added_rows": [], "deleted_rows": []}
    ok(at.run())
    errors = " ".join(e.value for e in at.error)
    assert "spot & availability table, row 2, column 'cap (GPUs)'" in errors and "whole number" in errors


def test_latency_slos_resolve_or_explain_why_not():
    at = whatif("Latency SLOs")
    sc = medium()
    now = Planner(sc).exact().plan
    assert f"TPOT **{now.tpot_s * 1e3:,.1f} ms**" in texts_of(at)
    fr = W.pareto(sc, with_grid=False)
    # a TPOT limit just under the optimum's: the cheapest plan meeting it, re-solved with the SLO
    limit = now.tpot_s * 1e3 * 0.99
    at.session_state["wf_tpot"] = limit
    ok(at.run())
    slo = replace(sc, settings=replace(sc.settings, max_tpot_ms=limit))
    lib = Planner(slo).exact().plan
    figures = frame(at, "figure", "with SLO")
    row = figures[figures["figure"] == "$ per million tokens"].iloc[0]
    assert row["with SLO"] == usd_m(lib.usd_per_million_tokens)
    assert row["no SLO"] == usd_m(now.usd_per_million_tokens)
    tpot = figures[figures["figure"].str.startswith("TPOT")].iloc[0]
    assert tpot["with SLO"] == f"{lib.tpot_s * 1e3:,.1f} ms" and lib.tpot_s * 1e3 <= limit * (1 + 1e-9)
    # derived another way: some frontier plan meets the limit, and none that does is cheaper per token
    meeting = [p for p in fr.points if p.plan.tpot_s * 1e3 <= limit * (1 + 1e-9)]
    assert meeting and all(p.usd_per_million_tokens >= lib.usd_per_million_tokens * (1 - 1e-9) for p in meeting)
    # a limit nothing meets: the binding limit and the way out, as the library says
    at.session_state["wf_tpot"] = 1.0
    ok(at.run())
    with pytest.raises(InfeasibleError) as info:
        Planner(replace(sc, settings=replace(sc.settings, max_tpot_ms=1.0))).exact()
    errors = " ".join(e.value for e in at.error)
    assert "No plan satisfies the limits" in errors
    assert info.value.binding and all(b in errors for b in info.value.binding)
    assert all(h in errors for h in info.value.hints)


def test_large_scenario_waits_for_run_analysis(monkeypatch):
    monkeypatch.setattr(V, "AUTO_MAX_OPTIONS", 0)
    fresh = jobs.solver.ResultStore()
    monkeypatch.setattr(jobs, "store", lambda: fresh)  # nothing solved yet
    at = whatif("Single-type baselines")
    assert "run on request" in texts_of(at)
    assert not [d for d in at.dataframe if d.value.columns[0] == "GPUs allowed"]
    ok(at.button(key="run_baselines").click().run())
    b = W.baselines(medium())
    assert list(frame(at, "GPUs allowed")["$/M tokens"])[0] == pytest.approx(b.mixed.headline.usd_per_million_tokens)
    # stored now: going back to the tab shows it at once, without the button
    ok(at.run())
    assert not [x for x in at.button if x.key == "run_baselines"]


def test_analysis_job_cancel_ends_the_worker_and_keeps_finished_parts():
    sc = load_config_dir(ROOT / "config" / "realistic")
    first = ("cancel-test", time.time(), "quick")
    slow = ("cancel-test", time.time(), "slow")
    tasks = (jobs.Task(first, "quick", lambda c: 42),
             jobs.Task(slow, "slow", lambda c: P.price_sweep(sc, sc.pool.types[0], 0.5, 9.0, 41, cancel=c)))
    job = jobs.start((first, slow), tasks, "test")
    deadline = time.time() + 120
    while not job.finished_tasks:
        assert not job.poll() and time.time() < deadline
        time.sleep(0.05)
    while job.current[1] < 1 and time.time() < deadline:  # the sweep has started solving
        job.poll()
        time.sleep(0.05)
    assert job.current == (1, job.current[1]) and job.current[1] >= 1, "the sweep did not start solving"
    job.cancel()
    assert job.state == "cancelled"
    job.process.join(timeout=5)
    assert not job.process.is_alive()
    assert jobs.store().get(first).value == 42 and jobs.store().get(slow) is None


def test_a_worker_killed_inside_a_solve_does_not_hang_the_next():
    """Pyomo's output-capture lock is shared by forked processes, and a worker killed by Cancel mid-capture
    would leave it held. Solves no longer go through that capture (planner/highs_direct.py); held here at
    fork time, the lock must not stop the next analysis worker."""
    sc = medium()
    want = Planner(sc).exact().plan.usd_per_million_tokens
    key = ("lock-test", time.time())
    lock = pyomo_dependencies.capture_output_lock
    assert lock.acquire(timeout=5)
    job = None
    try:
        job = jobs.start((key,), (jobs.Task(key, "exact", lambda c: Planner(sc, cancel=c).exact()),), "test")
        deadline = time.time() + 60
        while not job.poll():
            assert time.time() < deadline, "the worker hangs on the lock a killed worker left held"
            time.sleep(0.05)
    finally:
        lock.release()
        if job is not None:
            job.cancel()  # ends a hung worker; nothing once it is done
    assert job.state == "done"
    assert jobs.store().get(key).value.plan.usd_per_million_tokens == pytest.approx(want)


def test_an_invalid_edit_keeps_analysing_the_last_valid_scenario():
    at = whatif()
    shown = metric(at, "Minimum $ per million tokens")
    ok(at.switch_page(APP).run())
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"price_usd_per_hour": -1}}, "added_rows": [], "deleted_rows": []}
    ok(at.run())
    ok(at.switch_page(WHATIF).run())
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "GPU pool table, row 1 (A100), column '$/GPU-hour': -1 is negative" in errors  # the table's terms
    assert "analysing the last valid version of **medium**" in texts_of(at)
    assert metric(at, "Minimum $ per million tokens") == shown


# ---------------------------------------------------------------------------- compare page
def test_save_compare_export_import_round_trip(downloads):
    at = ok(apptest.run_app(TIMEOUT))
    ok(at.switch_page(COMPARE).run())
    assert at.text_input(key="cmp_name").value == "medium"
    ok(at.button(key="cmp_save").click().run())
    # a cheaper A100 on the main page, saved under a name
    ok(at.switch_page(APP).run())
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"price_usd_per_hour": 0.7}}, "added_rows": [], "deleted_rows": []}
    ok(at.run())
    ok(at.switch_page(COMPARE).run())
    at.text_input(key="cmp_name").set_value("cheap A100")
    ok(at.button(key="cmp_save").click().run())
    named = at.session_state["named_scenarios"]
    assert list(named) == ["medium", "cheap A100"]
    assert named["medium"] == T.load_bundled_texts("medium")
    a, b = (scenario_from_texts(named[n], n) for n in named)
    assert a.pool.entries[0].spec.price_usd_per_hour == 1.0 and b.pool.entries[0].spec.price_usd_per_hour == 0.7
    at.selectbox(key="cmp_a").set_value("medium")
    ok(at.selectbox(key="cmp_b").set_value("cheap A100").run())
    lib = W.compare_scenarios(a, b)
    figures = frame(at, "figure", "B: cheap A100")
    by = {r["figure"]: r for r in figures.to_dict("records")}
    assert by["$ per million tokens"]["A: medium"] == usd_m(lib.a.usd_per_million_tokens)
    assert by["$ per million tokens"]["B: cheap A100"] == usd_m(lib.b.usd_per_million_tokens)
    assert by["cost per hour"]["B: cheap A100"] == f"${lib.b.cost_usd_per_hour:,.2f}/h"
    assert by["layout"]["B: cheap A100"] == lib.b.layout
    assert by["TTFT (time to first token)"]["A: medium"] == f"{lib.a.plan.ttft_s:,.2f} s"
    diffs = frame(at, "section", "input")
    assert [(d.section, d.item, d.a, d.b) for d in lib.differences] == \
        [tuple(r) for r in diffs[["section", "input", "A: medium", "B: cheap A100"]].itertuples(index=False)]
    assert ("pool", a.pool.types[0] + " price_usd_per_hour", "1", "0.7") in [tuple(r) for r in diffs.itertuples(index=False)]
    # the export holds both; each entry is a scenario file the library compares to the same figures
    ok(at.run())
    data = downloads["scenarios.json"]
    doc = json.loads(data)
    assert doc["format"] == C.SET_FORMAT and [s["name"] for s in doc["scenarios"]] == ["medium", "cheap A100"]
    files = [json.dumps(s) for s in doc["scenarios"]]
    assert files[0] == json.dumps(json.loads(scenario_texts_to_json(named["medium"], "medium")))
    from_files = W.compare_scenario_files(*files)
    assert from_files.a.usd_per_million_tokens == pytest.approx(lib.a.usd_per_million_tokens)
    assert from_files.b.usd_per_million_tokens == pytest.approx(lib.b.usd_per_million_tokens)
    assert from_files.differences == lib.differences
    # a new session imports the file and gets the same named scenarios back
    fresh = ok(apptest.run_app(TIMEOUT))
    ok(fresh.switch_page(COMPARE).run())
    ok(fresh.file_uploader(key="cmp_import").set_value(("scenarios.json", data, "application/json")).run())
    assert fresh.session_state["named_scenarios"] == named
    assert "Imported 2 scenario(s): medium, cheap A100." in texts_of(fresh)
    # the same figures in the new session; remove one
    fresh.selectbox(key="cmp_a").set_value("medium")
    ok(fresh.selectbox(key="cmp_b").set_value("cheap A100").run())
    shown = frame(fresh, "figure", "B: cheap A100")
    pd.testing.assert_frame_equal(shown, figures)
    ok(fresh.multiselect(key="cmp_remove").set_value(["medium"]).run())
    ok(fresh.button(key="cmp_remove_button").click().run())
    assert list(fresh.session_state["named_scenarios"]) == ["cheap A100"]


def test_bad_import_lists_every_problem_and_loads_nothing():
    at = ok(apptest.run_app(TIMEOUT))
    ok(at.switch_page(COMPARE).run())
    good = json.loads(scenario_texts_to_json(T.load_bundled_texts("small"), "small"))
    broken = json.loads(scenario_texts_to_json({**T.load_bundled_texts("small"),
                                                "gpu_pool.csv": "gpu_type,count\nA100,-3\n"}, "broken"))
    doc = {"format": C.SET_FORMAT, "scenarios": [good, broken, {"format": "other"}]}
    ok(at.file_uploader(key="cmp_import").set_value(("set.json", json.dumps(doc).encode(), "application/json")).run())
    errors = " ".join(e.value for e in at.error)
    assert "The import was not loaded" in errors
    assert "set.json, scenario 3: not a scenario file" in errors
    assert "set.json, scenario 'broken': gpu_pool.csv, row 2, column 'count'" in errors
    assert at.session_state["named_scenarios"] == {}
    # not JSON at all
    ok(at.file_uploader(key="cmp_import").set_value(("x.json", b"\x80\x04pickle", "application/json")).run())
    assert "not a scenario file (invalid JSON" in " ".join(e.value for e in at.error)
    assert at.session_state["named_scenarios"] == {}


def test_set_file_round_trip_and_single_scenario_files():
    named = {"small": T.load_bundled_texts("small"), "medium": T.load_bundled_texts("medium")}
    assert C.read_set(C.set_to_json(named), "f.json") == (list(named.items()), [])
    assert C.read_set(scenario_texts_to_json(named["small"], "small"), "one.json") == ([("small", named["small"])], [])
    assert C.unique_name("medium", named) == "medium (2)"


def test_compare_warns_when_a_side_is_not_proven():
    """A saved scenario whose time limit stops its solve: the Compare page says which side is not proven,
    as `python -m planner compare` does, instead of showing its figures as optima."""
    texts = T.load_bundled_texts("medium")
    rushed = {**texts, "config.csv": texts["config.csv"].replace("time_limit_seconds,300", "time_limit_seconds,0.001")}
    assert rushed != texts
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    at.session_state["named_scenarios"] = {"rushed": rushed, "medium": texts}
    ok(at.switch_page(COMPARE).run())
    at.selectbox(key="cmp_a").set_value("rushed")
    ok(at.selectbox(key="cmp_b").set_value("medium").run())
    warnings = " ".join(w.value for w in at.warning)
    assert "Not proven optimal" in warnings and "A: rushed" in warnings
    assert "B: medium" not in warnings
