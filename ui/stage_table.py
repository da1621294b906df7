"""The one stage table of a plan, as every page shows it (the Planner page, the What-if and Compare pages):
a row per stage in columns that fit a page; the CSV download (planner.report.plan_rows) holds every
plan.csv column."""
from __future__ import annotations

import pandas as pd

from planner.plan import Plan


def gpu_range(ids: tuple[str, ...]) -> str:
    """gpu_0 … gpu_7 for a consecutive run (a TP group of 8 ids does not fit a table cell)."""
    nums = [int(i.rsplit("_", 1)[1]) for i in ids if i.rsplit("_", 1)[-1].isdigit()]
    if len(nums) == len(ids) > 2 and nums == list(range(nums[0], nums[0] + len(nums))):
        return f"{ids[0]} … {ids[-1]}"
    return " ".join(ids)


def stage_frame(plan: Plan, phases: bool = False) -> pd.DataFrame:
    """One row per stage; `phases` adds the stage's prefill and decode-step times (the What-if pages compare
    plans by them)."""
    rows = []
    for s in plan.stages:
        row = {"stage": s.index, "layers": f"{s.first_layer}-{s.last_layer} ({s.num_layers})",
               "GPU type": s.gpu_type if s.gpu_type == s.sku else f"{s.gpu_type} ({s.sku})", "TP": s.tp,
               "GPUs (node)": f"{gpu_range(s.gpu_ids)} ({s.node})", "tokens/s": round(s.tokens_per_s),
               "$/h": s.cost_usd_per_hour}
        if phases:
            row.update({"prefill (ms)": s.prefill_s * 1e3, "decode step (ms)": s.decode_step_s * 1e3})
        row.update({"memory (GB/GPU)": f"{s.memory_gb_per_gpu:.1f} of {s.capacity_gb:.1f}", "bound": s.bound,
                    "bottleneck": s.index == plan.bottleneck})
        rows.append(row)
    return pd.DataFrame(rows)
