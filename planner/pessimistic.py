"""Planning against the low end of each option's range (`--pessimistic`).

Each stage option's tokens/s is multiplied by its low factor before the MILP: the lower end of the
ratio measured/predicted of throughput over the validation points closest to the option
(planner.uncertainty.closest with the option's GPU SKU and TP in a one-stage, one-node layout: an option
does not know the pipeline it will be part of, so one factor per GPU type and TP),
capped at 1 so that a profile that under-predicts
on some data is never planned above its own prediction. Options with no point behind them keep their
prediction (factor 1; the plan's extrapolations say so). The plan then says it was pessimistic, with the
factors used, so that a user can compare its GPU choice with the nominal plan's.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from .candidates import CandidateSet
from .uncertainty import Point, catalogue_points, closest, ratio_range

log = logging.getLogger(__name__)


def option_factor(points: list[Point], sku: str, tp: int) -> tuple[float, str, int]:
    """(low factor capped at 1, closeness level, number of points) of an option on `sku` at `tp`."""
    level, sel = closest(points, ("throughput",), sku, tp, 1, 1)
    if not sel:
        return 1.0, "", 0
    return min(1.0, ratio_range([p.ratio for p in sel])[0]), level, len(sel)


def pessimistic_candidates(cs: CandidateSet, points: list[Point] | None = None) -> tuple[CandidateSet, list[dict]]:
    """The candidates with every option's tokens/s at its low end, and the factors used (one row per
    GPU type and TP)."""
    sc = cs.scenario
    pts = catalogue_points(sc.engine) if points is None else points
    sku = {e.name: e.spec.sku for e in sc.pool.entries}
    cache: dict[tuple[str, int], tuple[float, str, int]] = {}

    def scaled(o):
        key = (o.gpu_type, o.tp)
        if key not in cache:
            cache[key] = option_factor(pts, sku[o.gpu_type], o.tp)
        return replace(o, tokens_per_s=o.tokens_per_s * cache[key][0])

    out = replace(cs, options=tuple(scaled(o) for o in cs.options),
                  excluded=tuple(scaled(o) if o.feasible else o for o in cs.excluded))
    rows = [{"gpu_type": g, "tp": tp, "low_factor": f, "level": level, "points": n}
            for (g, tp), (f, level, n) in sorted(cache.items())]
    log.info("pessimistic factors: %s", rows)
    return out, rows


def nominal_tokens_per_s(plan, factors: list[dict]) -> float:
    """The pessimistic plan's tokens/s at the model's own prediction (each stage divided by its factor)."""
    by = {(r["gpu_type"], r["tp"]): r["low_factor"] for r in factors}
    stages = [s.tokens_per_s / by.get((s.gpu_type, s.tp), 1.0) for s in plan.stages]
    return min(stages + [link.tokens_per_s for link in plan.links])
