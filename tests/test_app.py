"""Streamlit AppTest of the dashboard (app.py) and its pages, checked against the library called directly."""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner import InfeasibleError, Planner, load_catalog, perf, report, scenario_from_texts
from planner.scenario_io import scenario_texts_from_json
from ui import charts
from ui import scenario_texts as T

from .apptest import metric, ok, run_app, usd_m

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 120


def library_scenario(texts: dict, name: str = "medium", **settings):
    sc = scenario_from_texts(texts, name=name)
    return replace(sc, settings=replace(sc.settings, **settings)) if settings else sc


def chart(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def trace(fig: dict, name: str) -> dict:
    for t in fig["data"]:
        if t.get("name") == name:
            return t
    raise AssertionError(f"no trace {name!r}: {[t.get('name') for t in fig['data']]}")


# ---------------------------------------------------------------------------- main page
def test_default_scenario_solves_like_the_library():
    """The app opens on the realistic chat scenario, latency-aware, with the answer in the headline."""
    at = run_app(scenario=None)
    ok(at)
    assert at.session_state["scenario_name"] == T.DEFAULT_SCENARIO == "llama70b-chat"
    assert at.selectbox(key="scenario_pick").value == "llama70b-chat"
    assert at.selectbox(key="scenario_pick").options[0] == "llama70b-chat"
    assert {"medium", "small", "tiny"} <= set(at.selectbox(key="scenario_pick").options)  # seeds stay
    texts = T.load_bundled_texts("llama70b-chat")
    assert at.session_state["texts"] == texts  # nothing edited: the texts are the bundled files
    sc = scenario_from_texts(texts, "llama70b-chat")
    # the use case is interactive chat, its limits shown in the two inputs and used by the planner
    assert at.selectbox(key="use_case").value == "chat" == sc.settings.use_case
    assert (at.number_input(key="max_ttft_ms").value, at.number_input(key="max_tpot_ms").value) == \
        (sc.settings.max_ttft_ms, sc.settings.max_tpot_ms) == (450, 40)
    assert any(T.config_dict(texts["config.csv"])["description"][:40] in c.value for c in at.sidebar.caption)
    lib = Planner(sc).exact(with_frontier=True)
    p = lib.plan
    assert metric(at, "$ per million") == usd_m(p.usd_per_million_tokens)
    assert metric(at, "Tokens per second") == f"{p.tokens_per_s:,.0f}"
    assert metric(at, "Cost per hour") == f"${p.cost_usd_per_hour:,.2f}/h"
    assert metric(at, "Time to first token") == f"{p.ttft_s * 1e3:,.0f} ms"
    assert metric(at, "Time per token") == f"{p.tpot_s * 1e3:,.1f} ms"
    assert p.ttft_s * 1e3 <= 450 and p.tpot_s * 1e3 <= 40
    assert metric(at, "Optimal") == ("proven" if lib.proven_optimal else "not proven")
    line = next(m.value for m in at.markdown if "layout" in m.value and " × " in m.value)
    for t, n in p.gpus_by_type().items():
        assert f"{n} × {t}" in line
    assert f"{p.num_gpus} GPUs" in line
    assert not any("Too slow for interactive use" in w.value for w in at.warning)
    # the plateau curve is the exact step curve built from the frontier
    fig = chart(at, 0)
    curve = trace(fig, "best plan within budget (exact)")
    xs, plans = charts.step_points(list(lib.frontier))
    assert curve["x"][:-1] == pytest.approx(xs)
    assert curve["y"][:-1] == pytest.approx([q.usd_per_million_tokens for q in plans])
    assert curve["line"]["shape"] == "hv"
    assert trace(fig, "chosen plan")["y"] == pytest.approx([p.usd_per_million_tokens])
    assert trace(fig, "exact optimum (min $/token)")["x"] == pytest.approx([p.cost_usd_per_hour])
    # for every budget the curve shows the best frontier plan within that budget
    for x, y in zip(curve["x"], curve["y"]):
        fits = [q for q in lib.frontier if q.cost_usd_per_hour <= x * (1 + 1e-12)]  # by brute force over the frontier
        assert max(fits, key=lambda q: (q.tokens_per_s, -q.cost_usd_per_hour)).usd_per_million_tokens == pytest.approx(y)
    # layout: one block per stage, the bottleneck outlined
    layout = chart(at, 1)
    bars = [t for t in layout["data"] if t["type"] == "bar"]
    assert len(bars) == len(p.stages)
    widths = [t["marker"]["line"]["width"] for t in bars]
    assert widths.index(max(widths)) + 1 == p.bottleneck
    assert [t["x"][0] for t in bars] == [s.num_layers for s in p.stages]
    assert [t["base"][0] for t in bars] == [s.first_layer - 0.5 for s in p.stages]
    # problem-size preview
    assert metric(at, "Stage options usable") == f"{lib.problem_size['options']:,}"


def test_quantization_slider_resolves_and_updates_curve():
    at = run_app()
    coarse_curve = trace(chart(at), "best plan within budget (exact)")
    coarse_options = metric(at, "Stage options usable")
    at.select_slider(key="quantization").set_value("fine").run()
    ok(at)
    assert "quantization,fine" in at.session_state["texts"]["config.csv"]
    sc = library_scenario(T.load_bundled_texts("medium"), quantization="fine")
    lib = Planner(sc).exact(with_frontier=True)
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    assert metric(at, "Stage options usable") == f"{len(Planner(sc).candidates.options):,}"
    assert metric(at, "Stage options usable") != coarse_options
    from planner.candidates import segment_sizes
    assert at.text_input(key="segment_sizes_text").value == T.list_text(segment_sizes(sc)[0])
    curve = trace(chart(at), "best plan within budget (exact)")
    xs, _ = charts.step_points(list(lib.frontier))
    assert curve["x"][:-1] == pytest.approx(xs)
    assert curve["x"] != coarse_curve["x"]
    # back to coarse: the texts are the bundled ones again (cache hit)
    at.select_slider(key="quantization").set_value("coarse").run()
    assert at.session_state["texts"] == T.load_bundled_texts("medium")
    assert trace(chart(at), "best plan within budget (exact)")["x"] == coarse_curve["x"]


def test_custom_segment_sizes_are_written_to_config():
    at = run_app()
    at.checkbox(key="custom_sizes").check().run()
    at.text_input(key="segment_sizes_text").input("10; 20; 40").run()
    ok(at)
    assert "segment_sizes,10;20;40" in at.session_state["texts"]["config.csv"]
    sc = library_scenario(T.load_bundled_texts("medium"), sizes=(10, 20, 40))
    lib = Planner(sc).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


def test_weighted_method_shows_exact_optimum_and_distance():
    at = run_app()
    at.radio(key="method").set_value("weighted").run()
    at.slider(key="cost_weight").set_value(0.5).run()
    ok(at)
    texts = T.load_bundled_texts("medium")
    sc = library_scenario(texts, method="weighted", cost_weight=0.5)
    w = Planner(sc).weighted()
    ex = Planner(sc).exact()
    assert metric(at, "$ per million") == usd_m(w.plan.usd_per_million_tokens)
    assert metric(at, "Optimal") == "not proven"
    gap = (w.plan.usd_per_million_tokens / ex.plan.usd_per_million_tokens - 1) * 100
    line = next(m.value for m in at.markdown if "heuristic for" in m.value)
    assert f"{gap:+.2f} %" in line and usd_m(ex.plan.usd_per_million_tokens) in line.replace("\\$", "$")


def test_enumeration_marks_grid_points_on_the_curve():
    at = run_app()
    at.radio(key="method").set_value("enumeration").run()
    at.text_input(key="budget_factors_text").input("0.8; 1; 1.3").run()
    ok(at)
    sc = library_scenario(T.load_bundled_texts("medium"), method="enumeration", budget_factors=(0.8, 1.0, 1.3))
    r = Planner(sc).enumeration()
    assert metric(at, "$ per million") == usd_m(r.plan.usd_per_million_tokens)
    fig = chart(at)
    grid = [p for p in r.curve if p.plan is not None]
    assert trace(fig, "enumeration grid points")["x"] == pytest.approx([p.budget_usd_per_hour for p in grid])
    assert trace(fig, "enumeration grid points")["y"] == pytest.approx([p.usd_per_million_tokens for p in grid])
    # the status block lists every budget point
    assert any("budget $" in m.value for m in at.markdown)


def test_plan_csv_download_is_the_library_csv(downloads):
    at = run_app()
    ok(at)
    lib = Planner(library_scenario(T.load_bundled_texts("medium"))).exact()
    expected = report.to_csv(report.plan_rows(lib.plan), report.PLAN_COLUMNS)
    assert downloads["medium_plan.csv"].decode() == expected
    assert json.loads(downloads["medium.scenario.json"])["files"] == T.load_bundled_texts("medium")


def test_invalid_price_names_file_row_column_and_keeps_result():
    at = run_app()
    before = metric(at, "$ per million")
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"price_usd_per_hour": -1}}, "added_rows": [], "deleted_rows": []}
    at.run()
    ok(at)
    errors = " ".join(e.value for e in at.error)
    pool = at.session_state["pool"]
    # the table's terms: its name, the row as shown (1-based, with its GPU type), the column header as shown
    assert f"GPU pool table, row 1 ({pool.loc[0, 'gpu_type']}), column '$/GPU-hour'" in errors.replace("\\", "")
    assert "is negative" in errors
    assert metric(at, "$ per million") == before  # the last good result stays
    assert any("last valid result" in i.value for i in at.info)
    assert at.session_state["pool"].loc[0, "price_usd_per_hour"] == -1  # what the user typed is kept
    # fixing it re-solves with the new price
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {0: {"price_usd_per_hour": 0.5}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.error
    lib = Planner(scenario_from_texts(at.session_state["texts"], "medium")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    # a price edit keeps the per-GPU network matrix as loaded (only a type or count change would not fit it)
    texts = at.session_state["texts"]
    assert "network_by_type.csv" not in texts
    assert texts["network_bandwidth.csv"] == at.session_state["base_texts"]["network_bandwidth.csv"]


def test_pool_rows_and_network_edits():
    at = run_app()
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {}, "deleted_rows": [4],
                             "added_rows": [{"gpu_type": "H100", "count": 8}]}
    at.run()
    ok(at)
    # the new row's datasheet cells are empty: errors on those cells, until filled from the catalogue (shown)
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    row = len(at.session_state["pool"])
    assert f"GPU pool table, row {row} (H100), column '$/GPU-hour': empty" in errors
    at.button(key="fill_pool").click().run()
    ok(at)
    assert not at.error
    assert at.session_state["pool"].iloc[-1]["price_usd_per_hour"] == load_catalog().gpu("H100").price_usd_per_hour
    assert any("from the catalogue" in i.value for i in at.info)
    pool = at.session_state["texts"]["gpu_pool.csv"]
    assert "T4" not in pool and "\nH100,8," in pool
    net = at.session_state["net"]
    assert ("H100", "H100") in set(zip(net.gpu_type_a, net.gpu_type_b))
    assert ("T4", "T4") not in set(zip(net.gpu_type_a, net.gpu_type_b))
    nkey = at.session_state["net_editor_key"]
    at.session_state[nkey] = {"edited_rows": {0: {"gb_per_s": 7.5}}, "added_rows": [], "deleted_rows": []}
    at.run()
    ok(at)
    sc = scenario_from_texts(at.session_state["texts"], "x")
    a, b = at.session_state["net"].iloc[0][["gpu_type_a", "gpu_type_b"]]
    assert sc.pool.link(a, b) == 7.5
    lib = Planner(sc).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


def test_workload_and_model_edits():
    at = run_app()
    at.number_input(key="input_tokens").set_value(1024).run()
    at.number_input(key="output_tokens").set_value(256).run()
    at.checkbox(key="concurrency_auto").check().run()
    at.radio(key="token_basis").set_value("output").run()
    at.radio(key="model_source").set_value("catalogue").run()
    at.selectbox(key="model_name").set_value("llama-2-13b").run()
    ok(at)
    cfg = T.config_dict(at.session_state["texts"]["config.csv"])
    assert cfg["model"] == "llama-2-13b" and "num_decoder_layers" not in cfg
    assert (cfg["input_tokens"], cfg["output_tokens"], cfg["concurrency"], cfg["token_basis"]) == \
        ("1024", "256", "auto", "output")
    sc = scenario_from_texts(at.session_state["texts"], "medium")
    assert sc.model.name == "llama-2-13b" and sc.workload.concurrency is None
    lib = Planner(sc).exact()
    assert metric(at, "$ per million output") == usd_m(lib.plan.usd_per_million_tokens)


def test_bundled_picker_and_limits():
    at = run_app()
    at.selectbox(key="scenario_pick").set_value("small").run()
    ok(at)
    assert at.session_state["texts"] == T.load_bundled_texts("small")
    lib = Planner(scenario_from_texts(T.load_bundled_texts("small"), "small")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    at.number_input(key="max_stages").set_value(2).run()
    at.number_input(key="min_layers").set_value(2).run()
    at.number_input(key="time_limit").set_value(20.0).run()
    at.number_input(key="target").set_value(0.5).run()
    ok(at)
    cfg = T.config_dict(at.session_state["texts"]["config.csv"])
    assert (cfg["max_pipeline_stages"], cfg["min_layers_per_stage"], cfg["time_limit_seconds"],
            cfg["max_cost_per_million_token"]) == ("2", "2", "20", "0.5")
    sc = scenario_from_texts(at.session_state["texts"], "small")
    r = Planner(sc).exact(with_frontier=True)
    assert len(r.plan.stages) <= 2
    assert metric(at, "$ per million") == usd_m(r.plan.usd_per_million_tokens)
    fig = chart(at)
    assert any(s.get("y0") == 0.5 for s in fig["layout"].get("shapes", [])) or \
        "competitor target" in json.dumps(fig["layout"].get("annotations", []))


def test_scenario_json_export_reimports_to_the_same_state(downloads):
    at = run_app()
    at.select_slider(key="quantization").set_value("fine").run()
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {1: {"count": 4}}, "added_rows": [], "deleted_rows": []}
    at.run()
    ok(at)
    texts = dict(at.session_state["texts"])
    value = metric(at, "$ per million")
    data = downloads["medium.scenario.json"]
    assert scenario_texts_from_json(data)[1] == texts
    fresh = run_app()
    fresh.file_uploader(key="upload").set_value(("medium.scenario.json", data, "application/json")).run()
    ok(fresh)
    assert fresh.session_state["texts"] == texts
    assert fresh.select_slider(key="quantization").value == "fine"
    assert metric(fresh, "$ per million") == value


def test_upload_seed_csv_folder():
    at = run_app()
    base = ROOT / "config" / "tiny"
    files = [(p.name, p.read_bytes(), "text/csv") for p in sorted(base.glob("*.csv"))]
    at.file_uploader(key="upload").set_value(files).run()
    ok(at)
    assert at.session_state["texts"] == T.load_bundled_texts("tiny")
    lib = Planner(scenario_from_texts(T.load_bundled_texts("tiny"), "tiny")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


def test_bad_upload_lists_problems_and_keeps_scenario():
    at = run_app()
    at.file_uploader(key="upload").set_value(("gpu_pool.csv", b"gpu_type,count\nA100,-3\n", "text/csv")).run()
    ok(at)
    errors = " ".join(e.value for e in at.error)
    assert "gpu_pool.csv, row 2, column 'count'" in errors


# ---------------------------------------------------------------------------- pages
def test_catalogue_page_and_session_edit():
    at = run_app()
    at.switch_page("pages/1_Catalogue.py").run()
    ok(at)
    gpus = at.session_state["cat_gpus"]
    assert {"price_source", "price_date", "datasheet_source"} <= set(gpus.columns)
    assert len(at.data_editor) == 3
    row = int(gpus.index[gpus.sku == "H100-SXM"][0])
    key = at.session_state["cat_gpus_editor_key"]
    at.session_state[key] = {"edited_rows": {row: {"price_usd_per_hour": "abc"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    errors = " ".join(e.value for e in at.error)
    assert f"gpus.csv, row {row + 2}, column 'price_usd_per_hour'" in errors
    key = at.session_state["cat_gpus_editor_key"]
    at.session_state[key] = {"edited_rows": {row: {"price_usd_per_hour": "1.5"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.error
    # the main page parses the scenario with the edited catalogue: a pool row without a price is an error
    # that quotes the edited catalogue price, and filling it from the catalogue takes 1.5
    at.switch_page("app.py").run()
    ok(at)
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": {}, "deleted_rows": [], "added_rows": [{"gpu_type": "H100", "count": 8}]}
    at.run()
    ok(at)
    assert "value for H100-SXM is 1.5 $/h" in " ".join(e.value for e in at.error).replace("\\", "")
    at.button(key="fill_pool").click().run()
    ok(at)
    from ui import solver
    sc = solver.scenario(T.texts_key(at.session_state["texts"]), "medium",
                         T.texts_key(at.session_state["catalog_texts"]))
    assert sc.pool.entry("H100").spec.price_usd_per_hour == 1.5


def test_stage_explorer_matches_perf_and_state_survives_page_switch():
    at = run_app()
    at.select_slider(key="quantization").set_value("fine").run()
    at.switch_page("pages/2_Stage_explorer.py").run()
    ok(at)
    at.selectbox(key="ex_gpu").set_value("A100").run()
    at.selectbox(key="ex_tp").set_value(2).run()
    at.number_input(key="ex_layers").set_value(10).run()
    at.selectbox(key="ex_role").set_value("first").run()
    at.number_input(key="ex_conc").set_value(16).run()
    ok(at)
    sc = scenario_from_texts(at.session_state["texts"], "medium")
    g = sc.pool.entry("A100").spec
    sp = perf.stage_perf(sc.model, g, sc.engine, 10, 2, True, False, sc.workload, 16)
    mem = perf.stage_memory(sc.model, g, sc.engine, 10, 2, True, False, 16, sc.workload.context_tokens)
    assert metric(at, "Stage tokens/s") == f"{sp.tokens_per_s:,.0f}"
    assert metric(at, "Bound by") == sp.bound
    assert metric(at, "Memory per GPU") == f"{mem.total_gb:.1f} / {mem.capacity_gb:.1f}"
    fig = chart(at, 0)
    assert trace(fig, "weights")["x"] == pytest.approx([mem.weights_gb])
    assert trace(fig, "KV cache")["x"] == pytest.approx([mem.kv_cache_gb])
    # back on the main page the edited quantization is still there
    at.switch_page("app.py").run()
    ok(at)
    assert at.select_slider(key="quantization").value == "fine"
    assert "quantization,fine" in at.session_state["texts"]["config.csv"]
    # and the explorer remembers its inputs
    at.switch_page("pages/2_Stage_explorer.py").run()
    assert at.selectbox(key="ex_gpu").value == "A100" and at.number_input(key="ex_conc").value == 16


def test_latency_slo_inputs_reach_the_planner():
    at = run_app()
    free = Planner(library_scenario(T.load_bundled_texts("medium"))).exact().plan
    limit = math.floor(free.tpot_s * 1e3 * 0.9 * 10) / 10  # binds: the unconstrained optimum is over it
    at.number_input(key="max_tpot_ms").set_value(limit).run()
    ok(at)
    assert at.selectbox(key="use_case").value == "custom"
    assert f"max_tpot_ms,{T.num(limit)}" in at.session_state["texts"]["config.csv"]
    sc = library_scenario(T.load_bundled_texts("medium"), max_tpot_ms=limit, use_case="custom")
    try:
        lib = Planner(sc).exact()
    except InfeasibleError:
        assert any("TPOT" in e.value for e in at.error), [e.value for e in at.error]
    else:
        assert lib.plan.tpot_s * 1e3 <= limit
        assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    at.number_input(key="max_tpot_ms").set_value(1.0).run()  # below any decode step: no plan, explained
    ok(at)
    assert any("TPOT SLO" in e.value for e in at.error), [e.value for e in at.error]


def _values(v) -> list:
    """A Plotly array from a figure's JSON: a plain list, or {dtype, bdata} (base64 typed array)."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_performance_page_plots_the_measured_scaling_curves():
    import pandas as pd

    at = run_app()
    at.switch_page("pages/4_Performance.py").run()
    ok(at)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    scaling = [f for f in figs if any(t.get("name", "").startswith("interactive limit") for t in f["data"])]
    assert len(scaling) == 3  # layers, GPU types, pool size
    df = pd.read_csv(ROOT / "benchmarks" / "scaling.csv")
    for fig, series in zip(scaling, ("layers", "gpu_types", "gpus")):
        limit = next(t for t in fig["data"] if t.get("name", "").startswith("interactive limit"))
        assert _values(limit["y"]) == [1.5, 1.5]
        for quant, part in df[df["series"] == series].groupby("quantization"):
            line = next(t for t in fig["data"] if t.get("name") == f"{quant} segment sizes")
            done = part[part["total_s"].notna()].sort_values(series)
            assert _values(line["x"]) == pytest.approx(list(done[series]))
            assert _values(line["y"]) == pytest.approx(list(done["total_s"]))


def test_planner_inputs_survive_a_widget_change_on_another_page():
    at = run_app()
    at.number_input(key="input_tokens").set_value(1024).run()
    texts = dict(at.session_state["texts"])
    at.switch_page("pages/2_Stage_explorer.py").run()
    role = at.selectbox(key="ex_role")
    role.set_value([o for o in role.options if o != role.value][0]).run()
    ok(at)
    at.switch_page("app.py").run()
    ok(at)
    assert at.number_input(key="input_tokens").value == 1024
    assert at.selectbox(key="scenario_pick").value == "medium"
    assert at.session_state["texts"] == texts
