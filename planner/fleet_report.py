"""Fleet results as JSON-ready dicts and CSV rows (fleet.csv, gpus.csv, curve.csv)."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from .domain import Scenario
from .fleet import FleetPlan
from .report import to_csv

FLEET_COLUMNS = ("group", "request_class", "count", "replica_tokens_per_s", "replica_cost_usd_per_hour",
                 "concurrency", "ttft_ms", "tpot_ms", "stage", "first_layer", "last_layer", "gpu_type", "tp",
                 "num_gpus", "stage_tokens_per_s", "stage_cost_usd_per_hour")
GPU_COLUMNS = ("gpu_id", "gpu_type", "node", "group", "replica", "stage", "layers")
CURVE_COLUMNS = ("series", "demand_from_tokens_per_s", "demand_to_tokens_per_s", "cost_usd_per_hour",
                 "usd_per_million_tokens", "status")


def fleet_summary(f: FleetPlan, scenario_name: str = "") -> dict:
    """Everything `--json` prints; replica figures are one replica's."""
    return {
        "scenario": scenario_name, "status": f.status, "proven_optimal": f.proven_optimal, "gap": f.gap,
        "demand_tokens_per_s": f.demand_tokens_per_s, "tokens_per_s": f.tokens_per_s,
        "cost_usd_per_hour": f.cost_usd_per_hour, "usd_per_million_tokens": f.usd_per_million_tokens,
        "num_replicas": f.num_replicas, "gpus_by_type": f.gpus_by_type(), "how": f.how,
        "solve_seconds": f.seconds, "catalogue_size": f.catalogue_size,
        "classes": [{"name": n, "demand_tokens_per_s": d} for n, d in f.classes],
        "replicas": [{
            "count": g.count, "request_class": g.request_class, "tokens_per_s": g.tokens_per_s,
            "cost_usd_per_hour": g.cost_usd_per_hour, "concurrency": g.concurrency, "ttft_ms": g.ttft_ms,
            "tpot_ms": g.tpot_ms,
            "stages": [{"first_layer": s.first_layer, "last_layer": s.last_layer, "gpu_type": s.gpu_type,
                        "tp": s.tp, "num_gpus": s.num_gpus} for s in g.stages]} for g in f.groups],
    }


def fleet_ranges(f: FleetPlan, scenarios: dict[str, Scenario]) -> dict:
    """How sure the fleet's figures are (`planner.uncertainty`): each replica group's likely range of
    tokens/s, TTFT and TPOT from the profile's validation errors on the data closest to its layout, and
    the fleet's tokens/s at the low and high ends (every replica at its own end). `scenarios`: the scenario
    each request class is served under (key "" without a mix)."""
    from .uncertainty import plan_range

    groups, low, high, extra = [], 0.0, 0.0, []
    for g in f.groups:
        sc = scenarios[g.request_class]
        r = plan_range(g.plan, sc, profile_points(sc.engine))
        nominal = g.plan.tokens_per_s
        lo = r["tokens_per_s_low"] / nominal * g.tokens_per_s if r["tokens_per_s_low"] is not None else None
        hi = r["tokens_per_s_high"] / nominal * g.tokens_per_s if r["tokens_per_s_high"] is not None else None
        groups.append({"tokens_per_s_low": lo, "tokens_per_s_high": hi,
                       **{k: r[k] for k in ("ttft_ms_low", "ttft_ms_high", "tpot_ms_low", "tpot_ms_high")},
                       "extrapolations": r["extrapolations"]})
        low = None if lo is None or low is None else low + g.count * lo
        high = None if hi is None or high is None else high + g.count * hi
        extra += [x for x in r["extrapolations"] if x not in extra]
    return {"tokens_per_s_low": low, "tokens_per_s_high": high,
            "meets_demand_at_low_end": None if low is None else low >= f.demand_tokens_per_s,
            "extrapolations": extra, "replica_ranges": groups}


def profile_points(profile) -> list:
    """`uncertainty.catalogue_points(profile)`, computed from the sources that can hold the profile's rows
    only: the shared measurements, the AIConfigurator reference files of the profile's backend and the
    published points (the whole validation report, every backend and its summaries, took 0.6-0.8 s of a
    1.5-2 s fleet command). tests/test_fleet_ranges.py checks that both give the same points."""
    from .catalog import load_catalog

    if load_catalog().engines.get(profile.name) != profile:
        return []
    return list(_points_of(profile.name, os.environ.get("PLANNER_AIC_REFERENCE", "")))


@lru_cache(maxsize=8)
def _points_of(name: str, aic_reference: str) -> tuple:
    from . import validation as v
    from .catalog import load_catalog
    from .uncertainty import points_from_rows

    cat = load_catalog()
    try:
        rows = v.measurement_rows(cat)
    except FileNotFoundError:  # as validation_report: the shared files are optional
        rows = []
    if aic_reference:
        files = [Path(aic_reference)]
    else:
        files = [p for p in v.aic_files() if v.AIC_BACKEND_PROFILES.get(
            p.stem.removeprefix("aiconfigurator_"), p.stem.removeprefix("aiconfigurator_")) == name]
    if files:
        rows += v.aic_rows(cat, files)[0]
    rows += v.published_rows(cat, v.PUBLISHED_FILE)[0]
    return tuple(points_from_rows(rows, name))


def fleet_rows(f: FleetPlan) -> list[dict]:
    rows = []
    for i, g in enumerate(f.groups, start=1):
        for s in g.stages:
            rows.append({"group": i, "request_class": g.request_class, "count": g.count,
                         "replica_tokens_per_s": g.tokens_per_s, "replica_cost_usd_per_hour": g.cost_usd_per_hour,
                         "concurrency": g.concurrency, "ttft_ms": g.ttft_ms, "tpot_ms": g.tpot_ms, "stage": s.index,
                         "first_layer": s.first_layer, "last_layer": s.last_layer, "gpu_type": s.gpu_type,
                         "tp": s.tp, "num_gpus": s.num_gpus, "stage_tokens_per_s": s.tokens_per_s,
                         "stage_cost_usd_per_hour": s.cost_usd_per_hour})
    return rows


def fleet_csv(f: FleetPlan) -> str:
    return to_csv(fleet_rows(f), FLEET_COLUMNS)


def gpus_csv(f: FleetPlan) -> str:
    return to_csv([dict(zip(GPU_COLUMNS, r)) for r in f.gpu_rows], GPU_COLUMNS)


def write_fleet(f: FleetPlan, out: Path, scenario_name: str = "", scenarios: dict | None = None) -> dict:
    """Write fleet.csv, gpus.csv and fleet_summary.json (with the likely ranges when the class scenarios
    are given); returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.csv").write_text(fleet_csv(f))
    (out / "gpus.csv").write_text(gpus_csv(f))
    summary = fleet_summary(f, scenario_name)
    if scenarios is not None and f.groups:
        ranges = fleet_ranges(f, scenarios)
        for rep, rng in zip(summary["replicas"], ranges.pop("replica_ranges")):
            rep.update(rng)
        summary.update(ranges)
    (out / "fleet_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
