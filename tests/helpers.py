"""Small scenario builders for tests (plain domain objects, no files)."""
from __future__ import annotations

import os

from hypothesis import settings as _hypothesis_settings

from planner.catalog import load_catalog
from planner.domain import GpuSpec, ModelSpec, Pool, PoolEntry, Scenario, SearchSettings, Workload

CAT = load_catalog()


def examples(ci: int) -> int:
    """How many random examples a property test draws: `ci` (fixed, derandomized) normally, the explore
    profile's count (HYPOTHESIS_PROFILE=explore: 1,000, or HYPOTHESIS_MAX_EXAMPLES) when hunting for bugs."""
    if os.environ.get("HYPOTHESIS_PROFILE") == "explore":
        return max(ci, _hypothesis_settings.default.max_examples)
    return ci


def tiny_model(layers: int = 4, hidden: int = 1024, name: str = "toy") -> ModelSpec:
    return ModelSpec(name=name, num_layers=layers, hidden_size=hidden, num_heads=8, num_kv_heads=8, head_dim=hidden // 8,
                     ffn_size=4 * hidden, gated_mlp=True, vocab_size=1000, bytes_per_param=2.0)


def gpu(sku: str, memory_gb: float, price: float, tflops: float = 100.0, hbm: float = 1000.0,
        per_node: int = 8) -> GpuSpec:
    return GpuSpec(sku=sku, memory_gb=memory_gb, fp16_dense_tflops=tflops, hbm_gb_per_s=hbm, intra_link="nvlink",
                   intra_link_gb_per_s=300.0, gpus_per_node=per_node, price_usd_per_hour=price)


def scenario(model: ModelSpec, gpus: list[tuple[GpuSpec, int]], concurrency: int | None = 8,
             input_tokens: int = 256, output_tokens: int = 64, **settings) -> Scenario:
    pool = Pool(tuple(PoolEntry(g.sku, n, g) for g, n in gpus))
    settings.setdefault("quantization", "full")
    return Scenario(model, Workload(input_tokens, output_tokens, concurrency), pool, CAT.engine("vllm"),
                    SearchSettings(**settings), name="test")


def with_host_ms(sc: Scenario, ms: float) -> Scenario:
    """The scenario with an engine whose only host time is `ms` of kernel launches per whole-model step
    (overlapping the GPU, as the former `step_overhead_ms`), no scheduler time: 0 removes host time."""
    from dataclasses import replace

    e = replace(sc.engine, launch_us_per_layer=ms * 1e3 / sc.model.num_layers, scheduler_ms=0.0,
                scheduler_us_per_seq=0.0)
    return replace(sc, engine=e)


def assert_close(got, want, rel: float = 1e-6, abs_: float = 1e-12, path: str = "") -> None:
    """Element-wise pytest.approx over nested lists/tuples/dicts (pytest >= 9.2 refuses approx on
    nested data); the structure must match exactly and every number must be close."""
    import pytest

    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{path}: keys {got!r} != {want!r}"
        for k in want:
            assert_close(got[k], want[k], rel, abs_, f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{path}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rel, abs_, f"{path}[{i}]")
    else:
        assert got == pytest.approx(want, rel=rel, abs=abs_, nan_ok=True), f"{path}: {got!r} != {want!r}"
