"""How sure a fleet is: each replica group's likely range is its plan's (`uncertainty.plan_range`, the
profile's errors on the closest measured data) in billable tokens/s, and the fleet's low / high ends are the
replicas' ends summed over their counts."""
from __future__ import annotations

import json

from planner import load_config_dir
from planner.cli import main
from planner.fleet import Fleet, RequestClass, class_scenario
from planner.fleet_report import fleet_ranges
from planner.uncertainty import plan_range

from .helpers import assert_close


def test_replica_ranges_are_their_plans_ranges_and_the_fleet_sums_them():
    sc = load_config_dir("config/realistic")
    fleet = Fleet(sc)
    plan = fleet.solve(0.5 * fleet.capacity()[0])
    got = fleet_ranges(plan, {"": sc})
    low = high = 0.0
    for g, r in zip(plan.groups, got["replica_ranges"]):
        want = plan_range(g.plan, sc)
        # billable tokens/s of a replica = its processed tokens/s x the workload's billable share
        assert_close(g.tokens_per_s, g.plan.tokens_per_s * sc.workload.basis_fraction, rel=1e-9)
        assert_close(r["tokens_per_s_low"], want["tokens_per_s_low"] * sc.workload.basis_fraction, rel=1e-9)
        assert_close(r["tokens_per_s_high"], want["tokens_per_s_high"] * sc.workload.basis_fraction, rel=1e-9)
        assert r["ttft_ms_low"] == want["ttft_ms_low"] and r["tpot_ms_high"] == want["tpot_ms_high"]
        assert r["tokens_per_s_low"] <= r["tokens_per_s_high"]
        low += g.count * r["tokens_per_s_low"]
        high += g.count * r["tokens_per_s_high"]
    assert_close(got["tokens_per_s_low"], low, rel=1e-12)
    assert_close(got["tokens_per_s_high"], high, rel=1e-12)
    assert got["meets_demand_at_low_end"] == (low >= plan.demand_tokens_per_s)


def test_mix_classes_are_ranged_under_their_own_scenarios(tmp_path, capsys):
    sc = load_config_dir("config/medium")
    mix = (RequestClass("chat", 0.7, 512, 256), RequestClass("docs", 0.3, 8192, 512))
    assert main(["fleet", "--config-dir", "config/medium", "--max-stages", "3", "--demand", "5000", "--mix",
                 "chat:0.7:512:256,docs:0.3:8192:512", "--out", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    plan = Fleet(sc, mix).solve(5000.0)
    scs = {c.name: class_scenario(sc, c) for c in mix}
    want = fleet_ranges(plan, scs)
    assert_close(doc["tokens_per_s_low"], want["tokens_per_s_low"], rel=1e-9)
    assert [r["request_class"] for r in doc["replicas"]] == [g.request_class for g in plan.groups]
    # an 8,192-token prompt is past the measured lengths: the docs class says so, in words
    assert any("longer than any measured run" in x for x in doc["extrapolations"])
    saved = json.loads((tmp_path / "fleet_summary.json").read_text())
    assert saved["tokens_per_s_high"] == doc["tokens_per_s_high"]


def test_profile_points_are_the_catalogue_points():
    """The fleet's own gathering of a profile's validation points (only that backend's sources) gives the
    points the whole validation report gives (`uncertainty.catalogue_points`), for every catalogue profile."""
    from planner.catalog import load_catalog
    from planner.fleet_report import profile_points
    from planner.uncertainty import catalogue_points

    engines = load_catalog().engines
    assert engines
    for profile in engines.values():
        assert profile_points(profile) == catalogue_points(profile), profile.name
    assert any(profile_points(p) for p in engines.values())
