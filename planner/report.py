"""Turning results into rows and documents: plan.csv, summary.json, curve.csv, candidates.csv."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import secrets
from pathlib import Path

from .candidates import CandidateSet, Option, expand_positions
from .plan import CurvePoint, Plan, Result

PLAN_COLUMNS = ("stage", "first_layer", "last_layer", "num_layers", "gpu_type", "sku", "tp", "num_gpus", "gpu_ids",
                "node", "tokens_per_s", "memory_gb_per_gpu", "memory_capacity_gb", "cost_usd_per_hour", "bound",
                "bottleneck")
CURVE_COLUMNS = ("budget_usd_per_hour", "tokens_per_s", "cost_usd_per_hour", "usd_per_million_tokens", "status")
CANDIDATE_COLUMNS = ("first_layer", "last_layer", "num_layers", "role", "gpu_type", "tp", "level", "microbatch",
                     "concurrency", "max_stages", "tokens_per_s", "memory_gb_per_gpu", "memory_capacity_gb",
                     "cost_usd_per_hour", "bound",
                     "feasible", "used_in_milp", "reason")


def plan_rows(plan: Plan) -> list[dict]:
    bottleneck = plan.bottleneck
    return [{
        "stage": s.index, "first_layer": s.first_layer, "last_layer": s.last_layer, "num_layers": s.num_layers,
        "gpu_type": s.gpu_type, "sku": s.sku, "tp": s.tp, "num_gpus": s.num_gpus, "gpu_ids": " ".join(s.gpu_ids),
        "node": s.node, "tokens_per_s": round(s.tokens_per_s, 3), "memory_gb_per_gpu": round(s.memory_gb_per_gpu, 3),
        "memory_capacity_gb": s.capacity_gb, "cost_usd_per_hour": round(s.cost_usd_per_hour, 6), "bound": s.bound,
        "bottleneck": s.index == bottleneck,
    } for s in plan.stages]


def gpu_rows(plan: Plan) -> list[dict]:
    """One row per physical GPU used: which layers it holds."""
    rows = []
    for s in plan.stages:
        for rank, gid in enumerate(s.gpu_ids):
            rows.append({"gpu_id": gid, "gpu_type": s.gpu_type, "node": s.node, "stage": s.index, "tp_rank": rank,
                         "first_layer": s.first_layer, "last_layer": s.last_layer})
    return rows


def plan_summary(plan: Plan) -> dict:
    return {
        "tokens_per_s": plan.tokens_per_s,
        "output_tokens_per_s": plan.output_tokens_per_s,
        "token_basis": plan.token_basis,
        "cost_usd_per_hour": plan.cost_usd_per_hour,
        "usd_per_million_tokens": plan.usd_per_million_tokens,
        "num_stages": len(plan.stages),
        "num_gpus": plan.num_gpus,
        "gpus_by_type": plan.gpus_by_type(),
        "concurrency": plan.concurrency,
        "microbatch": plan.microbatch,
        "ttft_ms": plan.ttft_s * 1e3,
        "tpot_ms": plan.tpot_s * 1e3,
        "bottleneck_stage": plan.bottleneck,
        "stages": [{
            "first_layer": s.first_layer, "last_layer": s.last_layer, "gpu_type": s.gpu_type, "sku": s.sku,
            "tp": s.tp, "num_gpus": s.num_gpus, "tokens_per_s": s.tokens_per_s,
            "memory_gb_per_gpu": s.memory_gb_per_gpu, "memory_capacity_gb": s.capacity_gb,
            "cost_usd_per_hour": s.cost_usd_per_hour, "bound": s.bound, "gpu_ids": list(s.gpu_ids),
        } for s in plan.stages],
        "links": [{"after_stage": k.after_stage, "from_type": k.from_type, "to_type": k.to_type,
                   "gb_per_s": k.gb_per_s, "tokens_per_s": k.tokens_per_s} for k in plan.links],
    }


def result_summary(result: Result, scenario_name: str = "", scenario=None, points=None) -> dict:
    """summary.json's content; with the `scenario`, also the plan's prediction range (tokens_per_s_low/high,
    ttft_ms_low/high, tpot_ms_low/high, prediction_range, extrapolations: planner.uncertainty), from the
    engine profile's validation points or the given `points`."""
    doc = {
        "scenario": scenario_name,
        "method": result.method,
        "status": result.status,
        "proven_optimal": result.proven_optimal,
        # exact and enumeration: the proven bound on how far the plan's $/token can be above the minimum
        # (see Planner.ratio_gap); weighted: the largest MIP gap of its solves
        "mip_gap": result.gap if math.isfinite(result.gap) else None,
        "gap_on": result.extra.get("gap_on", "mip"),
        "limits": list(result.extra.get("limits", [])),
        "how": result.how,
        "solve_seconds": result.solve_seconds + result.build_seconds,
        "build_seconds": result.build_seconds,
        "highs_seconds": result.solve_seconds,
        "problem_size": result.problem_size,
        "warnings": list(result.warnings),
    }
    doc.update(plan_summary(result.plan))
    if scenario is not None and result.plan.stages:
        from .uncertainty import plan_range

        pess = result.extra.get("pessimistic")
        nominal = None
        if pess:
            from .pessimistic import nominal_tokens_per_s

            nominal = nominal_tokens_per_s(result.plan, pess["factors"])
            doc["pessimistic"] = True
            doc["tokens_per_s_nominal"] = nominal
        doc.update(plan_range(result.plan, scenario, points, nominal))
    if result.curve:
        doc["curve"] = curve_rows(result.curve)
    if result.frontier:
        doc["frontier"] = [{"cost_usd_per_hour": p.cost_usd_per_hour, "tokens_per_s": p.tokens_per_s,
                            "usd_per_million_tokens": p.usd_per_million_tokens} for p in result.frontier]
    doc["extra"] = result.extra
    return doc


def curve_rows(curve: tuple[CurvePoint, ...]) -> list[dict]:
    return [{"budget_usd_per_hour": p.budget_usd_per_hour, "tokens_per_s": p.tokens_per_s,
             "cost_usd_per_hour": p.cost_usd_per_hour, "usd_per_million_tokens": p.usd_per_million_tokens,
             "status": p.status} for p in curve]


def candidate_rows(cs: CandidateSet):
    """Every option by position (first layer), usable or excluded, with its reason."""
    L = cs.num_layers

    def rows(o: Option, used: bool):
        for a in expand_positions(o, L):
            yield {"first_layer": a, "last_layer": a + o.size - 1, "num_layers": o.size, "role": o.role,
                   "gpu_type": o.gpu_type, "tp": o.tp, "level": str(o.level),
                   "microbatch": o.microbatch, "concurrency": o.concurrency, "max_stages": o.max_stages,
                   "tokens_per_s": round(o.tokens_per_s, 6), "memory_gb_per_gpu": round(o.memory_gb_per_gpu, 4),
                   "memory_capacity_gb": o.capacity_gb, "cost_usd_per_hour": o.cost_usd_per_hour, "bound": o.bound,
                   "feasible": o.feasible, "used_in_milp": used, "reason": o.reason}

    for o in cs.options:
        yield from rows(o, True)
    for o in cs.excluded:
        yield from rows(o, False)


def to_csv(rows, columns) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return buf.getvalue()


def write_result(result: Result, out_dir: Path, scenario_name: str = "", scenario=None, points=None) -> dict:
    summary = result_summary(result, scenario_name, scenario, points)
    files = {
        "plan.csv": to_csv(plan_rows(result.plan), PLAN_COLUMNS),
        "gpus.csv": to_csv(gpu_rows(result.plan), ("gpu_id", "gpu_type", "node", "stage", "tp_rank", "first_layer",
                                                   "last_layer")),
        "summary.json": json.dumps(summary, indent=2, default=str),
    }
    if result.curve:
        files["curve.csv"] = to_csv(curve_rows(result.curve), CURVE_COLUMNS)
    if result.frontier:
        files["frontier.csv"] = to_csv(summary["frontier"], ("cost_usd_per_hour", "tokens_per_s",
                                                             "usd_per_million_tokens"))
    write_outputs(out_dir, files)
    return summary


def check_out_dir(out_dir: Path | str) -> str | None:
    """What makes `out_dir` unusable as an output folder (None when files can be written there).

    Checked before any work, so that a long solve does not end in a write error."""
    out = Path(out_dir)
    probe = out
    while not os.path.lexists(probe):  # the nearest part of the path that exists
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is an existing file, not a folder" if probe == out else f"cannot be created: '{probe}' is a file"
        return f"'{out}' {what}"
    if not os.access(probe, os.W_OK | os.X_OK):
        verb = "write in" if probe == out else f"create folders in '{probe}' for"
        return f"no permission to {verb} '{out}'"
    return None


def write_outputs(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file into `out_dir` (created if needed) so that none is ever partial: each goes to a
    temporary file in the same folder first, and only when all are written are they renamed into place
    (`os.replace`, atomic), quickly one after another. On any error (or Ctrl-C) the temporaries are removed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: dict[str, str] = {}
    try:
        for name, text in files.items():
            tmp = str(out_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        for name in list(temps):
            os.replace(temps[name], out_dir / name)
            del temps[name]
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
