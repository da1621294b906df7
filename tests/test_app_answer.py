"""AppTests of the answer-first main page (issue 14): use case and latency limits, the interactive warning,
cell errors of the pool table, the cost weight's pick on the frontier, and readable output."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from planner import Planner, scenario_from_texts
from planner.usecases import get_use_case
from ui import scenario_texts as T

from .apptest import metric, ok, run_app, usd_m


def chart(at, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.proto.id and key in c.proto.id:
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key!r}")


def plain(texts) -> str:
    return " ".join(t.value for t in texts).replace("\\", "")


def edit_pool(at, rows: dict) -> None:
    key = at.session_state["pool_editor_key"]
    at.session_state[key] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}
    at.run()
    ok(at)


def test_use_case_sets_its_limits_and_an_edit_makes_it_custom():
    at = ok(run_app(scenario=None))
    chat = get_use_case("chat")
    at.selectbox(key="use_case").set_value("batch").run()
    ok(at)
    assert (at.number_input(key="max_ttft_ms").value, at.number_input(key="max_tpot_ms").value) == (0, 0)
    cfg = T.config_dict(at.session_state["texts"]["config.csv"])
    assert cfg["use_case"] == "batch" and "max_ttft_ms" not in cfg and "max_tpot_ms" not in cfg
    sc = scenario_from_texts(at.session_state["texts"], "x")
    assert sc.settings.max_ttft_ms is None and sc.settings.max_tpot_ms is None
    lib = Planner(sc).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    # back to chat: its published limits again
    at.selectbox(key="use_case").set_value("chat").run()
    ok(at)
    assert (at.number_input(key="max_ttft_ms").value, at.number_input(key="max_tpot_ms").value) == \
        (chat.max_ttft_ms, chat.max_tpot_ms)
    back = scenario_from_texts(at.session_state["texts"], "x").settings
    assert (back.use_case, back.max_ttft_ms, back.max_tpot_ms) == ("chat", chat.max_ttft_ms, chat.max_tpot_ms)
    # typing a limit makes the use case custom, and the planner gets that limit
    at.number_input(key="max_tpot_ms").set_value(60.0).run()
    ok(at)
    assert at.selectbox(key="use_case").value == "custom"
    sc = scenario_from_texts(at.session_state["texts"], "x")
    assert sc.settings.use_case == "custom" and sc.settings.max_tpot_ms == 60 and sc.settings.max_ttft_ms == 450


def test_a_plan_beyond_interactive_use_is_warned_in_plain_words():
    at = ok(run_app(scenario="medium"))  # the seed's medium: no use case stated, no limits
    assert at.selectbox(key="use_case").value == "custom"
    lib = Planner(scenario_from_texts(T.load_bundled_texts("medium"), "medium")).exact().plan
    chat = get_use_case("chat")
    slow = lib.ttft_s * 1e3 > chat.max_ttft_ms or lib.tpot_s * 1e3 > chat.max_tpot_ms
    warned = [w.value for w in at.warning if "Too slow for interactive use" in w.value]
    assert bool(warned) == slow
    # the chat use case plans within its limits (or says why none fits), and then nothing warns
    at.selectbox(key="use_case").set_value("chat").run()
    ok(at)
    if not at.error:
        assert not any("Too slow for interactive use" in w.value for w in at.warning)
        ttft = float(metric(at, "Time to first token").split()[0].replace(",", ""))
        assert ttft <= chat.max_ttft_ms


def test_emptied_and_invalid_cells_are_errors_on_the_cell_not_the_catalogue_value():
    at = ok(run_app(scenario="realistic"))
    before = metric(at, "$ per million")
    pool = at.session_state["pool"]
    name = pool.loc[1, "gpu_type"]
    edit_pool(at, {1: {"price_usd_per_hour": None}})
    errors = plain(at.error)
    assert f"GPU pool table, row 2 ({name}), column '$/GPU-hour': empty" in errors
    assert "catalogue's value for" in errors  # the value the user may type back, with its source
    assert metric(at, "$ per million") == before  # the last good result, said to be the last good one
    assert any("last valid result" in i.value for i in at.info)
    # the bad cell is marked in a styled copy of the table below the editor
    styled = [d for d in at.dataframe if "ffd6d6" in d.proto.arrow_data.styler.styles]
    assert len(styled) == 1, "no marked copy of the pool table"
    assert styled[0].value.loc[2, "$/GPU-hour"] == "⚠ empty"
    # text in a number column is an error too (the editor refuses it in the browser; a file may carry it)
    edit_pool(at, {1: {"price_usd_per_hour": "abc"}})
    assert f"row 2 ({name}), column '$/GPU-hour': 'abc' is not a number" in plain(at.error)
    # a negative count is named by the table's row, not the file's line
    edit_pool(at, {1: {"price_usd_per_hour": 2.0, "count": -3}})
    assert f"GPU pool table, row 2 ({name}), column 'count': -3 is negative" in plain(at.error)
    edit_pool(at, {1: {"price_usd_per_hour": 2.0, "count": 16}})
    assert not at.error
    lib = Planner(scenario_from_texts(at.session_state["texts"], "x")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)


@pytest.mark.parametrize("scaling", ["normalised", "seed"])
def test_cost_weight_pick_is_marked_on_the_frontier(scaling):
    at = ok(run_app(scenario="realistic"))
    at.radio(key="method").set_value("weighted").run()
    at.radio(key="weight_scaling").set_value(scaling).run()
    ok(at)
    if scaling == "seed":
        assert T.config_dict(at.session_state["texts"]["config.csv"])["weight_scaling"] == "seed"
    picks = []
    for w in (0.1, 0.5, 0.9):
        at.slider(key="cost_weight").set_value(w).run()
        ok(at)
        sc = scenario_from_texts(at.session_state["texts"], "x")
        assert sc.settings.weight_scaling == scaling and sc.settings.cost_weight == w
        lib = Planner(sc).weighted().plan
        assert metric(at, "$ per million") == usd_m(lib.usd_per_million_tokens)
        fig = chart(at, "weight_frontier")
        star = next(t for t in fig["data"] if t["name"].startswith("pick for cost weight"))
        assert star["name"] == f"pick for cost weight {w:g}"
        assert star["x"] == pytest.approx([lib.cost_usd_per_hour]) and star["y"] == pytest.approx([lib.tokens_per_s])
        picks.append(lib.cost_usd_per_hour)
    if scaling == "normalised":
        assert len(set(picks)) >= 2  # the weight means something: it moves along the frontier


def test_target_line_only_when_set_and_never_squashes_the_curve():
    at = ok(run_app(scenario="small"))
    fig = chart(at, "curve_chart")
    assert not fig["layout"].get("shapes") and "competitor target" not in json.dumps(fig["layout"])
    span = fig["layout"]["yaxis"]["range"]
    at.number_input(key="target").set_value(span[1] * 50).run()  # far above every plan
    ok(at)
    fig = chart(at, "curve_chart")
    assert not fig["layout"].get("shapes")
    assert fig["layout"]["yaxis"]["range"] == pytest.approx(span)  # the curve keeps its scale
    assert "above this range" in json.dumps(fig["layout"]["annotations"])
    inside = (span[0] + span[1]) / 2
    at.number_input(key="target").set_value(round(inside, 4)).run()
    ok(at)
    fig = chart(at, "curve_chart")
    assert fig["layout"]["shapes"][0]["y0"] == pytest.approx(round(inside, 4))


def test_no_python_reprs_none_or_raw_gaps_in_the_page():
    at = ok(run_app(scenario=None))
    text = " ".join(x.value for x in (*at.caption, *at.markdown, *at.info, *at.warning))
    assert "{'" not in text and "None" not in text and "e-1" not in text
    assert ".py" not in text and "planner." not in text
    line = next(m.value for m in at.markdown if "Proven optimal" in m.value or "Not proven" in m.value)
    assert "Proven optimal: solver status optimal, gap on $/token 0.00 %." in line.replace("\\", "")
    for df in at.dataframe:
        assert not df.value.isna().any().any()


def test_headline_is_drawn_before_the_input_tabs():
    """The page order the browser shows: title, headline, then the tabs (checked in a browser too)."""
    at = ok(run_app(scenario=None))
    order = [type(n).__name__ for n in at.main]  # depth first, in page order
    assert order.index("Metric") < order.index("Tab")
    labels = [m.label for m in at.main.metric]
    assert labels[:6] == ["$ per million tokens", "Tokens per second", "Cost per hour", "Time to first token",
                          "Time per token", "Optimal"]


def test_default_solve_is_the_same_with_the_frontier_after_it():
    """The headline's exact optimum comes before the frontier; both are the library's."""
    at = ok(run_app(scenario=None))
    sc = scenario_from_texts(T.load_bundled_texts("llama70b-chat"), "x")
    fast, full = Planner(sc).exact(), Planner(replace(sc)).exact(with_frontier=True)
    assert fast.plan.usd_per_million_tokens == pytest.approx(full.plan.usd_per_million_tokens, rel=1e-9)
    assert metric(at, "$ per million") == usd_m(full.plan.usd_per_million_tokens)
    curve = chart(at, "curve_chart")
    assert any(t["name"] == "exact optimum (min $/token)" for t in curve["data"])


def test_scenario_in_the_address_opens_that_scenario():
    from streamlit.testing.v1 import AppTest

    from .apptest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["scenario"] = "small"
    ok(at.run())
    assert at.session_state["scenario_name"] == "small" and at.session_state["texts"] == T.load_bundled_texts("small")
    lib = Planner(scenario_from_texts(T.load_bundled_texts("small"), "small")).exact()
    assert metric(at, "$ per million") == usd_m(lib.plan.usd_per_million_tokens)
    other = AppTest.from_file(APP, default_timeout=120)
    other.query_params["scenario"] = "../config"  # not a bundled folder: the default
    ok(other.run())
    assert other.session_state["scenario_name"] == T.DEFAULT_SCENARIO
