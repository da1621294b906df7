"""One full what-if in the running app (Playwright on Debian's chromium): the what-if page's frontier and
tornado for the bundled scenario, then a GPU price changed in the main page's pool table, and both
updated to what the library computes for the new price."""
from __future__ import annotations

import os
import time

import pytest

from planner import Planner, scenario_from_texts
from planner import whatif as W
from planner import whatif_prices as P
from ui import scenario_texts as T

pytestmark = pytest.mark.browser
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium); browser tests need it",
                allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

LOAD_TIMEOUT = 180_000  # ms; the machine is shared and the sensitivity tab re-solves dozens of times
NEW_PRICE = 0.7  # $/GPU-hour for the pool's first type (A100 at $1.00 in the bundled medium scenario)


def usd_m(x: float) -> str:
    return f"${x:,.4f}" if x < 10 else f"${x:,.2f}"


def metric_value(page: Page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def traces(page: Page, name: str) -> dict:
    """Every trace (name -> x, y, base) of the Plotly chart holding a trace called `name`."""
    return page.evaluate("""(name) => {
        for (const p of document.querySelectorAll('.js-plotly-plot')) {
            if (p.data && p.data.some(t => t.name === name)) {
                const out = {};
                for (const t of p.data) out[t.name] = {x: t.x, y: t.y, base: t.base};
                return out;
            }
        }
        return null; }""", name)


def eventually(check, timeout_s: float = LOAD_TIMEOUT / 1000) -> None:
    """Runs `check` until it stops raising AssertionError: Plotly draws a chart after the rerun that
    produced it, so the chart can lag the metrics or still hold the previous figure for a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except (AssertionError, TypeError):  # TypeError: the chart is not drawn yet (no traces)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def check_frontier(page: Page, sc) -> None:
    fr = W.pareto(sc)
    open_tab(page, "Pareto frontier")
    expect(metric_value(page, "Minimum $ per million tokens")).to_have_text(usd_m(fr.best.usd_per_million_tokens),
                                                                            timeout=LOAD_TIMEOUT)
    expect(metric_value(page, "Frontier plans")).to_have_text(str(len(fr.points)))

    def drawn():
        shown = traces(page, "Pareto frontier (exact)")
        assert shown["Pareto frontier (exact)"]["x"] == pytest.approx([p.cost_usd_per_hour for p in fr.points])
        assert shown["Pareto frontier (exact)"]["y"] == pytest.approx([p.tokens_per_s for p in fr.points])
        assert shown["minimum $/token (exact optimum)"]["x"] == pytest.approx([fr.best.cost_usd_per_hour])
    eventually(drawn)


def check_tornado(page: Page, sc) -> None:
    t = P.tornado(sc, 20.0)
    open_tab(page, "Price sensitivity")
    expect(page.get_by_text(f"Optimum now {usd_m(t.base.usd_per_million_tokens)} per million tokens"))\
        .to_be_visible(timeout=LOAD_TIMEOUT)
    rows = t.rows[::-1]  # drawn bottom up

    def drawn():
        shown = traces(page, "price −20%")
        for side, name in (("low", "price −20%"), ("high", "price +20%")):
            bars = shown[name]
            assert bars["base"] == pytest.approx(t.base.usd_per_million_tokens)
            assert [bars["base"] + x for x in bars["x"]] == pytest.approx(
                [getattr(r, side).usd_per_million_tokens for r in rows])
            assert [y.split(" ")[0] for y in bars["y"]] == [r.gpu_type for r in rows]
    eventually(drawn)


def test_price_change_on_the_main_page_updates_frontier_and_tornado(page: Page, app_url):
    texts = T.load_bundled_texts("medium")
    before = scenario_from_texts(texts, "medium")
    first = before.pool.types[0]
    after = W.with_prices(before, {first: NEW_PRICE})
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(app_url + "/?scenario=medium")  # the seed's medium: its first pool row is the A100 at $1.00
    expect(metric_value(page, "$ per million")).to_be_visible(timeout=LOAD_TIMEOUT)
    nav = page.get_by_test_id("stSidebarNav")

    nav.get_by_role("link", name="What if").click()
    check_frontier(page, before)
    check_tornado(page, before)

    # the price edit, typed into the main page's GPU pool table
    nav.get_by_role("link", name="Planner").click()
    expect(page.get_by_role("heading", name="GPU pipeline planner")).to_be_visible(timeout=LOAD_TIMEOUT)
    # coming back keeps the scenario and its settings (the what-if tabs' reruns must not reset them)
    expect(page.get_by_test_id("stSidebar").get_by_text("Loaded:")).to_contain_text("medium")
    expect(page.get_by_role("combobox", name="Bundled scenario")).to_have_value("medium")
    expect(page.get_by_role("switch", name="Solve automatically on every change")).to_be_checked()
    page.get_by_role("tab", name="GPU pool & network").click()
    grid = page.get_by_test_id("stDataFrame").first
    expect(grid).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=LOAD_TIMEOUT)  # no rerun under way
    expect(grid.locator("table th").first).to_be_attached(timeout=30_000)  # the grid has finished drawing
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 33 + 40, box["y"] + 35 + 17)  # first row, "GPU type" (after the row-marker column)
    assert grid.evaluate("g => g.contains(document.activeElement)"), "the pool table did not take the keyboard"
    for _ in range(3):  # -> count, memory, price
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # opens the cell's editor
    editor = page.locator("input.gdg-input")
    expect(editor).to_have_value("1", timeout=10_000)
    editor.fill(str(NEW_PRICE))
    editor.press("Enter")
    want = usd_m(Planner(after).exact().plan.usd_per_million_tokens)
    expect(metric_value(page, "$ per million")).to_have_text(want, timeout=LOAD_TIMEOUT)
    assert want != usd_m(Planner(before).exact().plan.usd_per_million_tokens)

    # back on the what-if page (it reopens on the tab left open): both follow the new price
    nav.get_by_role("link", name="What if").click()
    expect(metric_value(page, "$ per million tokens").first).to_have_text(want, timeout=LOAD_TIMEOUT)
    check_tornado(page, after)
    check_frontier(page, after)
    assert [r.high.usd_per_million_tokens for r in P.tornado(after, 20.0).rows] != \
        pytest.approx([r.high.usd_per_million_tokens for r in P.tornado(before, 20.0).rows])
    assert page.get_by_test_id("stException").count() == 0
