"""The one stage table of a plan, as every page shows it (the Planner page, the What-if and Compare pages):
the rows of plan.csv (planner.report.plan_rows, which the CLI writes and the download holds) in columns
that fit a page."""
from __future__ import annotations

import pandas as pd

from planner import report
from planner.plan import Plan


def gpu_range(ids: tuple[str, ...]) -> str:
    """gpu_0 … gpu_7 for a consecutive run (a TP group of 8 ids does not fit a table cell)."""
    nums = [int(i.rsplit("_", 1)[1]) for i in ids if i.rsplit("_", 1)[-1].isdigit()]
    if len(nums) == len(ids) > 2 and nums == list(range(nums[0], nums[0] + len(nums))):
        return f"{ids[0]} … {ids[-1]}"
    return " ".join(ids)


def stage_frame(plan: Plan, phases: bool = False) -> pd.DataFrame:
    """One row per stage, from plan.csv's rows; `phases` adds the stage's prefill and decode-step times (the
    What-if pages compare plans by them)."""
    rows = []
    for r, s in zip(report.plan_rows(plan), plan.stages, strict=True):
        row = {"stage": r["stage"], "layers": f"{r['first_layer']}-{r['last_layer']} ({r['num_layers']})",
               "GPU type": r["gpu_type"] if r["gpu_type"] == r["sku"] else f"{r['gpu_type']} ({r['sku']})",
               "TP": r["tp"], "GPUs (node)": f"{gpu_range(tuple(r['gpu_ids'].split()))} ({r['node']})",
               "tokens/s": round(r["tokens_per_s"]), "$/h": r["cost_usd_per_hour"]}
        if phases:
            row.update({"prefill (ms)": s.prefill_s * 1e3, "decode step (ms)": s.decode_step_s * 1e3})
        row.update({"memory (GB/GPU)": f"{r['memory_gb_per_gpu']:.1f} of {r['memory_capacity_gb']:.1f}",
                    "bound": r["bound"], "bottleneck": r["bottleneck"]})
        rows.append(row)
    return pd.DataFrame(rows)
