"""AppTest of the Fleet page: the numbers it shows equal direct library calls."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from planner import scenario_from_texts
from planner.fleet import Fleet, RequestClass
from planner.fleet_curve import demand_curve
from ui import scenario_texts as T

from .apptest import ok, run_app

ROOT = Path(__file__).resolve().parent.parent
FLEET = "pages/7_Fleet.py"


def tiny_app(name: str = "tiny") -> AppTest:
    at = run_app(240)
    base = ROOT / "config" / name
    files = [(p.name, p.read_bytes(), "text/csv") for p in sorted(base.glob("*.csv"))]
    at.file_uploader(key="upload").set_value(files).run()
    return ok(at)


def page_scenario(name: str = "tiny"):
    """The bundled scenario as the Fleet page solves it (its stage limit defaults to the scenario's)."""
    return scenario_from_texts(T.load_bundled_texts(name), name)


def metric(at, label):
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r}: {[m.label for m in at.metric]}")


def test_fleet_page_matches_library():
    at = ok(tiny_app().switch_page(FLEET).run(timeout=240))
    sc = page_scenario()
    fleet = Fleet(sc)
    cap = fleet.capacity()[0]
    demand = at.slider(key="fleet_demand").value
    assert demand == pytest.approx(round(cap / 2, 1))
    plan = fleet.solve(demand)
    assert metric(at, "Cost") == f"${plan.cost_usd_per_hour:,.2f}/h"
    assert metric(at, "Serves (tokens/s)") == f"{plan.tokens_per_s:,.0f}"
    assert metric(at, "$/M tokens") == f"${plan.usd_per_million_tokens:.4f}"
    assert metric(at, "Replicas") == str(plan.num_replicas)
    assert metric(at, "Optimal") == "proven"
    table = next(d.value for d in at.dataframe if "layout (layers)" in d.value.columns)
    assert list(table["replicas"]) == [g.count for g in plan.groups]
    curve = demand_curve(Fleet(sc))
    steps = next(d.value for d in at.dataframe if "fleet" in d.value.columns)
    mixed = steps[steps["fleet"] == "mixed"]
    assert list(mixed["minimum $/h"]) == pytest.approx([s.cost_usd_per_hour for s in curve.series("mixed")])
    # a new demand re-solves
    at.slider(key="fleet_demand").set_value(float(round(cap * 0.9, 1))).run(timeout=240)
    ok(at)
    plan = fleet.solve(round(cap * 0.9, 1))
    assert metric(at, "Cost") == f"${plan.cost_usd_per_hour:,.2f}/h"


def test_fleet_page_mix_matches_library():
    at = ok(tiny_app().switch_page(FLEET).run(timeout=240))
    at.toggle(key="fleet_use_mix").set_value(True).run(timeout=240)
    ok(at)
    sc = page_scenario()
    mix = (RequestClass("chat", 0.7, 512, 256), RequestClass("docs", 0.3, 8192, 512))
    fleet = Fleet(sc, mix)
    demand = at.slider(key="fleet_demand").value
    assert demand == pytest.approx(round(fleet.capacity()[0] / 2, 1))
    plan = fleet.solve(demand)
    assert metric(at, "Cost") == f"${plan.cost_usd_per_hour:,.2f}/h"


def test_fleet_page_solves_realistic_at_its_full_stage_limit():
    """No size guard any more: realistic at its 8 stages is solved on the page and matches the library."""
    at = ok(tiny_app("realistic").switch_page(FLEET).run(timeout=240))
    assert at.number_input(key="fleet_max_stages").value == 8
    assert not at.exception and not at.error
    sc = page_scenario("realistic")
    fleet = Fleet(sc)
    demand = at.slider(key="fleet_demand").value
    assert demand == pytest.approx(round(fleet.capacity()[0] / 2, 1))
    plan = fleet.solve(demand)
    assert metric(at, "Cost") == f"${plan.cost_usd_per_hour:,.2f}/h"
    assert metric(at, "Optimal") == "proven"
