"""The running app in Debian's chromium (Playwright): loads, re-solves on the slider, downloads the plan."""
from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from planner import Planner, report, scenario_from_texts
from ui import charts
from ui import scenario_texts as T

pytestmark = pytest.mark.browser
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); browser tests need it",
                allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

LOAD_TIMEOUT = 90_000
ROOT = Path(__file__).resolve().parent.parent


def library(quantization: str = "coarse"):
    sc = scenario_from_texts(T.load_bundled_texts(T.DEFAULT_SCENARIO), T.DEFAULT_SCENARIO)
    sc = replace(sc, settings=replace(sc.settings, quantization=quantization))
    planner = Planner(sc)
    return planner, planner.exact(with_frontier=True)


def usd_m(x: float) -> str:
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"


def metric_value(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def open_app(page: Page, url: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url)
    expect(metric_value(page, "$ per million")).to_be_visible(timeout=LOAD_TIMEOUT)


def curve_x(page: Page):
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); "
                         "return p && p.data ? p.data[0].x : null; }")


def test_loads_default_scenario_and_shows_usd_per_million(page: Page, app_url):
    open_app(page, app_url)
    _, lib = library()
    expect(metric_value(page, "$ per million")).to_have_text(usd_m(lib.plan.usd_per_million_tokens))
    expect(metric_value(page, "Time to first token")).to_have_text(f"{lib.plan.ttft_s * 1e3:,.0f} ms")
    assert page.get_by_test_id("stException").count() == 0


def test_quantization_slider_resolves_and_updates_curve(page: Page, app_url):
    open_app(page, app_url)
    page.wait_for_function("() => { const p = document.querySelector('.js-plotly-plot'); return p && p.data; }",
                           timeout=LOAD_TIMEOUT)  # the curve, drawn once the frontier follows the headline
    before = curve_x(page)
    page.get_by_role("tab", name="Search settings").click()
    slider = page.get_by_test_id("stSlider").filter(has_text="Layer-split quantization").get_by_role("slider")
    slider.focus()
    slider.press("ArrowRight")
    fine_planner, fine = library("fine")
    expect(metric_value(page, "Stage options usable")).to_have_text(f"{len(fine_planner.candidates.options):,}",
                                                                      timeout=LOAD_TIMEOUT)
    expect(metric_value(page, "$ per million")).to_have_text(usd_m(fine.plan.usd_per_million_tokens),
                                                             timeout=LOAD_TIMEOUT)
    page.wait_for_function("(b) => { const p = document.querySelector('.js-plotly-plot'); const x = p && p.data "
                           "&& p.data[0].x; return x && (x.length !== b.length || x.some((v, i) => "
                           "Math.abs(v - b[i]) > 1e-9)); }", arg=before, timeout=LOAD_TIMEOUT)
    after = curve_x(page)
    xs, _ = charts.step_points(list(fine.frontier))
    assert after[:-1] == pytest.approx(xs)


def test_plan_csv_download_holds_the_plan(page: Page, app_url, tmp_path):
    open_app(page, app_url)
    _, lib = library()
    with page.expect_download(timeout=LOAD_TIMEOUT) as info:
        page.get_by_role("button", name="Download plan (CSV)").click()
    path = tmp_path / "plan.csv"
    info.value.save_as(path)
    assert path.read_text() == report.to_csv(report.plan_rows(lib.plan), report.PLAN_COLUMNS)


def test_sidebar_lists_the_main_page_as_planner_then_every_page(page: Page, app_url):
    open_app(page, app_url)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link").first).to_have_text("Planner")
    pages = [p.stem.split("_", 1)[1].replace("_", " ") for p in sorted((ROOT / "pages").glob("*.py"))]
    assert [t.strip() for t in nav.get_by_role("link").all_inner_texts()] == ["Planner"] + pages
    nav.get_by_role("link", name="Catalogue").click()
    expect(page).to_have_url(re.compile(r"/Catalogue$"), timeout=LOAD_TIMEOUT)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=LOAD_TIMEOUT)
    nav.get_by_role("link", name="Planner").click()
    expect(metric_value(page, "$ per million")).to_be_visible(timeout=LOAD_TIMEOUT)
    assert page.get_by_test_id("stException").count() == 0
