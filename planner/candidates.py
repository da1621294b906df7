"""Candidate stage options: segment sizes, TP degrees, concurrency levels, memory filter, dominance.

An option is a stage shape: `size` consecutive layers in a `role` (first, middle, last, or the only
stage), on `tp` GPUs of one type, at a pipeline concurrency level. Where a stage sits in the pipeline
matters only for its role (the embedding lives on the first stage, the LM head on the last), so options
are position-free; `expand_positions` lists them by first layer for tables and the path formulation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from . import perf
from .domain import Scenario
from .errors import InputError, Problem

log = logging.getLogger(__name__)

# The seed's sets (tuned for 40 layers) and finer ones; "full" is every size 1..L.
QUANTIZATION_SETS: dict[str, tuple[int, ...]] = {
    "coarse": (1, 5, 10, 20, 30, 40),
    "fine": (1, 3, 5, 8, 10, 15, 20, 25, 30, 35, 40),
}
QUANTIZATION_LEVELS = ("coarse", "fine", "even", "full")
ROLES = ("first", "middle", "last", "only")
CONCURRENCY_LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True, slots=True)
class Option:
    size: int
    role: str
    gpu_type: str
    tp: int
    concurrency: int
    tokens_per_s: float
    memory_gb_per_gpu: float
    capacity_gb: float
    cost_usd_per_hour: float
    bound: str
    feasible: bool = True
    reason: str = ""

    @property
    def first(self) -> bool:
        return self.role in ("first", "only")

    @property
    def last(self) -> bool:
        return self.role in ("last", "only")


@dataclass(frozen=True)
class CandidateSet:
    scenario: Scenario
    sizes: tuple[int, ...]
    size_notes: tuple[str, ...]
    tp_degrees: dict[str, tuple[int, ...]]
    tp_notes: tuple[str, ...]
    levels: tuple[int, ...]
    options: tuple[Option, ...]  # usable: memory fits and not dominated
    excluded: tuple[Option, ...]  # with the reason

    @property
    def num_layers(self) -> int:
        return self.scenario.model.num_layers


def base_sizes(quantization: str, num_layers: int) -> tuple[int, ...]:
    if quantization == "full":
        return tuple(range(1, num_layers + 1))
    if quantization == "even":
        return tuple(sorted({1, *range(2, num_layers + 1, 2)}))
    if quantization not in QUANTIZATION_SETS:
        raise InputError(f"quantization must be one of {', '.join(QUANTIZATION_LEVELS)}, got '{quantization}'")
    return QUANTIZATION_SETS[quantization]


def can_tile(sizes: tuple[int, ...], num_layers: int, max_stages: int) -> bool:
    """Whether some multiset of at most `max_stages` sizes sums to `num_layers` (coin-change DP)."""
    inf = max_stages + 1
    fewest = [0] + [inf] * num_layers
    for total in range(1, num_layers + 1):
        fewest[total] = min((fewest[total - s] + 1 for s in sizes if s <= total), default=inf)
    return fewest[num_layers] <= max_stages


def segment_sizes(scenario: Scenario) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The size set after adapting it to the model.

    Sizes above L or below the per-stage minimum are dropped and L itself (one stage) is added. If the
    remaining sizes cannot tile L in at most K stages on their own (L=32 with the seed's
    {5, 10, 20, 30}), the complements L - s are added too, so that multi-stage pipelines exist; without
    that, a model too large for one GPU group would be infeasible for no visible reason."""
    st = scenario.settings
    L = scenario.model.num_layers
    if st.min_layers_per_stage > L:
        raise InputError(Problem(f"min layers per stage ({st.min_layers_per_stage}) exceeds the model's {L} layers",
                                 "settings", column="min layers per stage"))
    raw = tuple(st.sizes) if st.sizes else base_sizes(st.quantization, L)
    notes = []
    kept = {s for s in raw if st.min_layers_per_stage <= s <= L}
    dropped = sorted(set(raw) - kept)
    if dropped:
        notes.append(f"sizes {dropped} dropped (outside {st.min_layers_per_stage}..{L})")
    if st.max_stages > 1 and not can_tile(tuple(sorted(kept - {L})), L, st.max_stages):
        extra = {L - s for s in kept if st.min_layers_per_stage <= L - s < L} - kept
        if extra:
            kept |= extra
            notes.append(f"sizes {sorted(extra)} added so that {L} layers split into several stages")
    if L not in kept:
        notes.append(f"size {L} (whole model in one stage) added")
    sizes = tuple(sorted(kept | {L}))
    return sizes, tuple(notes)


def tp_degrees(scenario: Scenario) -> tuple[dict[str, tuple[int, ...]], tuple[str, ...]]:
    """Powers of two up to the type's count and node size that divide the attention heads."""
    heads = scenario.model.num_heads
    out: dict[str, tuple[int, ...]] = {}
    notes = []
    for e in scenario.pool.entries:
        limit = min(e.count, e.spec.gpus_per_node)
        degrees = []
        t = 1
        while t <= limit:
            if heads % t == 0:
                degrees.append(t)
            else:
                notes.append(f"{e.name}: TP {t} skipped ({heads} heads do not split {t} ways)")
            t *= 2
        out[e.name] = tuple(degrees)
    return out, tuple(notes)


def concurrency_levels(scenario: Scenario) -> tuple[int, ...]:
    w, e = scenario.workload, scenario.engine
    if w.concurrency is not None:
        return (w.concurrency,)
    return tuple(c for c in CONCURRENCY_LEVELS if c <= e.max_num_seqs) or (1,)


def evaluate_option(scenario: Scenario, size: int, role: str, gpu_type: str, tp: int, concurrency: int) -> Option:
    """One option with its numbers; `feasible` is False (and `reason` says why) if memory does not fit."""
    return _evaluate(scenario, size, role, gpu_type, tp, concurrency)


@lru_cache(maxsize=200_000)
def _evaluate(scenario: Scenario, size: int, role: str, gpu_type: str, tp: int, concurrency: int) -> Option:
    m, w, eng = scenario.model, scenario.workload, scenario.engine
    entry = scenario.pool.entry(gpu_type)
    g = entry.spec
    first, last = role in ("first", "only"), role in ("last", "only")
    mem = perf.stage_memory(m, g, eng, size, tp, first, last, concurrency, w.context_tokens)
    cost = tp * g.price_usd_per_hour
    if not mem.fits:
        return Option(size, role, gpu_type, tp, concurrency, 0.0, mem.total_gb, mem.capacity_gb, cost, "memory",
                      False, f"needs {mem.total_gb:.1f} GB per GPU > {mem.capacity_gb:g} GB "
                             f"(weights {mem.weights_gb:.1f}, KV {mem.kv_cache_gb:.1f}, "
                             f"activations {mem.activations_gb:.1f}, reserve {mem.reserve_gb:.1f})")
    sp = perf.stage_perf(m, g, eng, size, tp, first, last, w, concurrency)
    return Option(size, role, gpu_type, tp, concurrency, sp.tokens_per_s, mem.total_gb, mem.capacity_gb, cost,
                  sp.bound)


def roles_for(size: int, num_layers: int) -> tuple[str, ...]:
    if size == num_layers:
        return ("only",)
    if size > num_layers - 2:  # a middle stage needs a first and a last stage beside it
        return ("first", "last")
    return ("first", "middle", "last")


def build_candidates(scenario: Scenario) -> CandidateSet:
    """All options of the scenario, split into usable ones and excluded ones (with reasons).

    Dominance (exact): among options of the same size, role, GPU type and concurrency level, one on
    more GPUs that is not faster than one on fewer GPUs can be swapped for it in any plan without
    raising cost or GPU use or lowering throughput, so it is excluded.
    """
    sizes, size_notes = segment_sizes(scenario)
    tps, tp_notes = tp_degrees(scenario)
    levels = concurrency_levels(scenario)
    L = scenario.model.num_layers
    usable: list[Option] = []
    excluded: list[Option] = []
    for c in levels:
        for s in sizes:
            for role in roles_for(s, L):
                for g in scenario.pool.types:
                    best = 0.0
                    best_tp = 0
                    for t in tps[g]:
                        o = _evaluate(scenario, s, role, g, t, c)
                        if not o.feasible:
                            excluded.append(o)
                        elif o.tokens_per_s <= best:
                            excluded.append(_with_reason(o, f"dominated by TP {best_tp} (fewer GPUs, "
                                                            f"{best:.0f} >= {o.tokens_per_s:.0f} tokens/s)"))
                        else:
                            usable.append(o)
                            best, best_tp = o.tokens_per_s, t
    log.info("%s: %d usable options, %d excluded, sizes %s, levels %s", scenario.name, len(usable),
             len(excluded), sizes, levels)
    return CandidateSet(scenario, sizes, size_notes, tps, tp_notes, levels, tuple(usable), tuple(excluded))


def _with_reason(o: Option, reason: str) -> Option:
    from dataclasses import replace

    return replace(o, reason=reason)


def expand_positions(o: Option, num_layers: int) -> list[int]:
    """First layers (1-based) at which an option can sit."""
    if o.role in ("first", "only"):
        return [1]
    if o.role == "last":
        return [num_layers - o.size + 1]
    return list(range(2, num_layers - o.size + 1))
