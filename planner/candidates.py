"""Candidate stage options: segment sizes, TP degrees, concurrency levels, memory filter, dominance.

An option is a stage shape: `size` consecutive layers in a `role` (first, middle, last, or the only
stage), on `tp` GPUs of one type, at a pipeline concurrency level. Where a stage sits in the pipeline
matters only for its role (the embedding lives on the first stage, the LM head on the last), so options
are position-free; `expand_positions` lists them by first layer for tables and the path formulation.
"""
from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from . import perf
from .domain import Scenario
from .errors import InputError, Problem
from .parameters import QUANTIZATION_KEYS
from .kinds import ROLES, Role, holds_embedding, holds_lm_head
from .tiling import MAX_COUNT_STEPS, can_tile, exact_counts, stage_counts  # noqa: F401  (imported from here)

log = logging.getLogger(__name__)

# The seed's sets (tuned for 40 layers) and finer ones; "full" is every size 1..L.
QUANTIZATION_SETS: dict[str, tuple[int, ...]] = {
    "coarse": (1, 5, 10, 20, 30, 40),
    "fine": (1, 3, 5, 8, 10, 15, 20, 25, 30, 35, 40),
}
QUANTIZATION_LEVELS = QUANTIZATION_KEYS  # declared once, with the parameter (planner/parameters.py)
CONCURRENCY_LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True, order=True)
class Level:
    """An operating point of the pipeline (the MILP's outer level).

    A pipeline of P stages keeps every stage busy only by cycling P microbatches: a sequence's next
    token needs its previous one to have left the last stage. Each stage's forward step carries one
    microbatch of `microbatch` sequences, while every stage holds the KV cache of all sequences in
    flight (`concurrencies[i]` for `stage_counts[i]` stages). With a fixed concurrency C a level is one
    stage count P (microbatch ceil(C / P)); with concurrency `auto` a level is a microbatch b with every
    stage count P with b * P sequences in flight up to the engine's limit (vLLM V1's max_num_seqs caps the
    sequences running in the whole engine, across the microbatches)."""

    microbatch: int
    stage_counts: tuple[int, ...]
    concurrencies: tuple[int, ...]

    def concurrency(self, stages: int) -> int:
        return self.concurrencies[self.stage_counts.index(stages)]

    def __str__(self) -> str:
        if len(self.stage_counts) == 1:
            return f"{self.stage_counts[0]} stage(s) x microbatch {self.microbatch}"
        return f"microbatch {self.microbatch} x {self.stage_counts[0]}-{self.stage_counts[-1]} stages"


MIN_STAGES = {Role.ONLY: 1, Role.FIRST: 2, Role.LAST: 2, Role.MIDDLE: 3}


@dataclass(frozen=True, slots=True)
class Option:
    size: int
    role: str
    gpu_type: str
    tp: int
    level: Level
    tokens_per_s: float  # this stage's rate inside a pipeline of the level
    memory_gb_per_gpu: float  # at the fewest stages the option can be part of
    capacity_gb: float
    cost_usd_per_hour: float
    bound: str
    max_stages: int = 0  # most pipeline stages at which its KV cache fits and the TPOT SLO holds (0: never)
    feasible: bool = True
    reason: str = ""
    prefill_s: float = 0.0  # prefill of one microbatch's prompts on this stage
    decode_step_s: float = 0.0  # one decode step of one microbatch on this stage
    ttft_s: float = 0.0  # this stage's share of a request's time to first token (`perf.serving_latency`)
    tpot_step_s: float = 0.0  # this stage's step as a decoding sequence sees it (others' prompts mixed in)

    @property
    def first(self) -> bool:
        return holds_embedding(self.role)

    @property
    def last(self) -> bool:
        return holds_lm_head(self.role)

    @property
    def microbatch(self) -> int:
        return self.level.microbatch

    @property
    def concurrency(self) -> int:
        """Sequences in flight at the fewest stages the option can be part of."""
        return self.level.concurrency(self.min_stages)

    @property
    def min_stages(self) -> int:
        need = MIN_STAGES[self.role]
        return next((p for p in self.level.stage_counts if p >= need), self.level.stage_counts[-1])


@dataclass(frozen=True)
class CandidateSet:
    scenario: Scenario
    sizes: tuple[int, ...]
    size_notes: tuple[str, ...]
    tp_degrees: dict[str, tuple[int, ...]]
    tp_notes: tuple[str, ...]
    levels: tuple[Level, ...]
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


# Stage options a scenario may evaluate (usable and excluded, over every level, size, role, GPU type and TP
# degree): a sanity limit that keeps the candidate build to seconds; above it the input is refused before
# any option is evaluated, naming the count (coarser segment sizes or fewer stages bring it down).
MAX_OPTION_EVALUATIONS = 200_000
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


def pipeline_levels(scenario: Scenario, sizes: tuple[int, ...] | None = None) -> tuple[Level, ...]:
    """The levels of `Level`'s docstring: one per stage count for a fixed concurrency, one per
    power-of-two microbatch up to the engine's limit for `auto`."""
    if sizes is None:
        sizes = segment_sizes(scenario)[0]
    counts = stage_counts(sizes, scenario.model.num_layers, scenario.settings.max_stages)
    c = scenario.workload.concurrency
    if c is not None:
        return tuple(Level(math.ceil(c / p), (p,), (c,)) for p in counts)
    # vLLM V1 runs one scheduler for the whole pipeline: max_num_seqs caps the sequences running in the
    # engine, across its P microbatches (b * P <= cap), not each microbatch
    cap = scenario.engine.max_num_seqs
    levels = []
    for b in CONCURRENCY_LEVELS:
        allowed = tuple(p for p in counts if b * p <= cap)
        if allowed:
            levels.append(Level(b, allowed, tuple(b * p for p in allowed)))
    return tuple(levels) or (Level(1, counts, counts),)


def evaluate_option(scenario: Scenario, size: int, role: str, gpu_type: str, tp: int, level: Level) -> Option:
    """One option with its numbers; `feasible` is False (and `reason` says why) if memory does not fit
    at the fewest stages the role allows."""
    return _evaluate(scenario, size, role, gpu_type, tp, level)


def _compute(scenario: Scenario, size: int, role: str, gpu_type: str, tp: int, level: Level) -> Option:
    m, w, eng = scenario.model, scenario.workload, scenario.engine
    g = scenario.pool.entry(gpu_type).spec
    first, last = holds_embedding(role), holds_lm_head(role)
    cost = tp * g.price_usd_per_hour
    need = MIN_STAGES[role]
    allowed = [(p, c) for p, c in zip(level.stage_counts, level.concurrencies) if p >= need]
    if not allowed:
        return Option(size, role, gpu_type, tp, level, 0.0, 0.0, g.memory_gb, cost, "stages", 0, False,
                      f"a {role} stage needs a pipeline of at least {need} stages")
    p0, c0 = allowed[0]
    kv_tokens = perf.workload_kv_tokens(w)
    mem = perf.stage_memory(m, g, eng, size, tp, first, last, c0, kv_tokens)
    if not mem.fits:
        return Option(size, role, gpu_type, tp, level, 0.0, mem.total_gb, mem.capacity_gb, cost, "memory", 0,
                      False, f"needs {mem.total_gb:.1f} GB per GPU > {mem.capacity_gb:.1f} GB ({g.memory_gb:g} GiB) "
                             f"at {c0} sequences in flight (weights {mem.weights_gb:.1f}, KV {mem.kv_cache_gb:.1f}, "
                             f"activations {mem.activations_gb:.1f}, reserve {mem.reserve_gb:.1f})")
    cap = perf.concurrency_that_fits(mem, m, eng, size, tp, kv_tokens, engine_cap=False)  # = max_concurrency
    max_stages = max(p for p, c in allowed if c <= cap)
    # every stage count of a level shares the microbatch; with a fixed concurrency the level has one count.
    # A stage that is not last hands its activations on; where the next stage sits is not known per
    # option, so the hand-off is priced over the pool's inter-node network (conservative inside a node).
    # The scheduler's share is taken at p0, the fewest stages of the role (conservative for deeper
    # pipelines of an auto level; exact for a fixed concurrency, whose level has one stage count).
    handoff = None if last else (scenario.pool.default_link_gb_per_s, "network")
    sp = perf.stage_perf(m, g, eng, size, tp, first, last, w, c0, microbatches=p0, handoff=handoff)
    pre, dec = sp.prefill.seconds, sp.decode_step.seconds
    own = perf.prefill_time(m, g, eng, size, tp, first, last, 1, w.input_tokens, stages=p0, pipelined=p0 > 1,
                            handoff=handoff).seconds
    ttft, step = perf.serving_latency(sp, own, w, eng, p0)
    lat = dict(prefill_s=pre, decode_step_s=dec, ttft_s=ttft, tpot_step_s=step)
    st = scenario.settings
    if st.max_tpot_ms is not None:
        # a sequence gets one token per cycle of P microbatch steps: TPOT = P x the slowest step
        max_stages = max((p for p, _ in allowed if p <= max_stages and p * step * 1e3 <= st.max_tpot_ms), default=0)
        if max_stages == 0:
            return Option(size, role, gpu_type, tp, level, sp.tokens_per_s, mem.total_gb, mem.capacity_gb, cost,
                          "latency", 0, False, f"TPOT SLO: {p0} stage(s) x {step * 1e3:.1f} ms step > "
                                               f"{st.max_tpot_ms:g} ms", **lat)
    if st.max_ttft_ms is not None and ttft * 1e3 > st.max_ttft_ms:
        return Option(size, role, gpu_type, tp, level, sp.tokens_per_s, mem.total_gb, mem.capacity_gb, cost,
                      "latency", 0, False, f"TTFT SLO: this stage's share of the time to first token alone is "
                                           f"{ttft * 1e3:.0f} ms > {st.max_ttft_ms:g} ms", **lat)
    return Option(size, role, gpu_type, tp, level, sp.tokens_per_s, mem.total_gb, mem.capacity_gb, cost,
                  sp.bound, max_stages, **lat)


# single lookups (brute force, tables) are cached; build_candidates evaluates each option once and calls
# _compute directly, because hashing the whole scenario per call cost more than the evaluation itself
_evaluate = lru_cache(maxsize=100_000)(_compute)


# Options of earlier builds, for the next build of a scenario whose options' inputs are the same (moving the
# app's segment-size slider changes which sizes are built, not how one option is computed). One dict per
# set of inputs (`_inputs_key`: everything `_compute` reads besides its own arguments), the last few kept;
# a build reads and writes only its own dict, so concurrent builds of other scenarios never mix.
_MEMO_SCENARIOS = 2
_MEMO_OPTIONS = 60_000  # per scenario; an XL build has ~40,000
class _Memos(OrderedDict):
    def cache_clear(self) -> None:
        """Forget every memoised option (as functools caches do; benchmarks time cold builds with it)."""
        with _memo_lock:
            self.clear()


_memos = _Memos()
del _Memos  # only the instance is module-level: measure.clear_caches calls every module-level cache_clear
_memo_lock = threading.Lock()


def _inputs_key(scenario: Scenario) -> tuple:
    st, pool = scenario.settings, scenario.pool
    return (scenario.model, scenario.workload, scenario.engine, tuple((e.name, e.spec) for e in pool.entries),
            pool.default_link_gb_per_s, st.max_tpot_ms, st.max_ttft_ms)


def _memo_for(scenario: Scenario) -> dict:
    key = _inputs_key(scenario)
    with _memo_lock:
        memo = _memos.get(key)
        if memo is None:
            memo = _memos[key] = {}
            while len(_memos) > _MEMO_SCENARIOS:
                _memos.popitem(last=False)
        _memos.move_to_end(key)
        return memo


def roles_for(size: int, num_layers: int, level: Level, sizes: tuple[int, ...]) -> tuple[str, ...]:
    """Roles a stage of `size` layers can take in some pipeline of the level: the other P-1 stages
    must be able to cover the remaining layers, (P-1) * min size <= L - size <= (P-1) * max size."""
    if size == num_layers:
        return (Role.ONLY,) if 1 in level.stage_counts else ()
    rest, lo, hi = num_layers - size, min(sizes), max(sizes)

    def fits(p: int) -> bool:
        return (p - 1) * lo <= rest <= (p - 1) * hi

    roles = []
    if any(p >= 2 and fits(p) for p in level.stage_counts):
        roles += [Role.FIRST, Role.LAST]
    if any(p >= 3 and fits(p) for p in level.stage_counts):
        roles.insert(1, Role.MIDDLE)
    return tuple(roles)


def build_candidates(scenario: Scenario) -> CandidateSet:
    """All options of the scenario, split into usable ones and excluded ones (with reasons).

    Dominance (exact): among options of the same size, role, GPU type and level, one on more GPUs that
    is neither faster nor fits at more stages than one on fewer GPUs can be swapped for it in any plan
    without raising cost or GPU use or lowering throughput, so it is excluded.
    """
    sizes, size_notes = segment_sizes(scenario)
    tps, tp_notes = tp_degrees(scenario)
    levels = pipeline_levels(scenario, sizes)
    L = scenario.model.num_layers
    per_shape = sum(len(t) for t in tps.values())  # (GPU type, TP degree) pairs
    if len(levels) * len(sizes) * per_shape > MAX_OPTION_EVALUATIONS:  # before the exact count (itself long)
        _too_many(len(levels) * len(sizes) * per_shape * len(ROLES), levels, sizes, per_shape, "up to ")
    roles_by_level = [{s: roles_for(s, L, level, sizes) for s in sizes} for level in levels]
    total = per_shape * sum(len(r) for roles in roles_by_level for r in roles.values())
    if total > MAX_OPTION_EVALUATIONS:
        _too_many(total, levels, sizes, per_shape, "")
    usable: list[Option] = []
    excluded: list[Option] = []
    memo = _memo_for(scenario)
    for level, roles in zip(levels, roles_by_level):
        lkey = (level.microbatch, level.stage_counts, level.concurrencies)
        for g in scenario.pool.types:
            fits: dict[tuple[int, str], list[Option]] = {}
            for role in ROLES:
                for t in tps[g]:
                    for s in sizes:
                        if role not in roles[s]:
                            continue
                        key = (lkey, g, t, s, role)
                        o = memo.get(key)
                        if o is None:
                            o = _compute(scenario, s, role, g, t, level)
                            if len(memo) < _MEMO_OPTIONS:
                                memo[key] = o
                        if not o.feasible:
                            # memory, prefill and decode time all grow with the layers held: no larger
                            # size of this shape can fit either
                            excluded.append(_with_reason(o, o.reason + "; larger sizes of this shape are "
                                                         "excluded too") if s != sizes[-1] else o)
                            break
                        fits.setdefault((s, role), []).append(o)
            for group in fits.values():  # same size, role, type and level, by increasing TP
                kept: list[Option] = []
                for o in group:
                    better = next((k for k in kept if k.tokens_per_s >= o.tokens_per_s
                                   and k.max_stages >= o.max_stages), None)
                    if better is not None:
                        excluded.append(_with_reason(o, f"dominated by TP {better.tp} (fewer GPUs, "
                                                        f"{better.tokens_per_s:.0f} >= {o.tokens_per_s:.0f} "
                                                        f"tokens/s, fits up to {better.max_stages} stages)"))
                    else:
                        usable.append(o)
                        kept.append(o)
    log.info("%s: %d usable options, %d excluded, sizes %s, %d levels", scenario.name, len(usable),
             len(excluded), sizes, len(levels))
    return CandidateSet(scenario, sizes, size_notes, tps, tp_notes, levels, tuple(usable), tuple(excluded))


# Above this many usable stage options a solve can take up to its time limit: the app waits for "Solve now"
# and the command line asks for --allow-large (`check_problem_size`).
LARGE_PROBLEM_OPTIONS = 10_000


def check_problem_size(cs: CandidateSet, allow_large: bool = False, flag: str = "--allow-large") -> None:
    """Refuse (InputError) a scenario above LARGE_PROBLEM_OPTIONS usable options unless `allow_large`:
    called after the candidates are built and before any MILP is."""
    n = len(cs.options)
    if n > LARGE_PROBLEM_OPTIONS and not allow_large:
        raise InputError(Problem(
            f"large problem: {n:,} stage options, above the limit of {LARGE_PROBLEM_OPTIONS:,} for solving without "
            f"asking (a solve may take up to its time limit, {cs.scenario.settings.time_limit_s:g} s); add {flag} to "
            f"solve it anyway, or use coarser segment sizes", "command line", column=flag))


def _too_many(count: int, levels, sizes, per_shape: int, up_to: str) -> None:
    raise InputError(Problem(
        f"{up_to}{count:,} stage options to evaluate ({len(levels):,} pipeline level(s) x {len(sizes):,} segment sizes "
        f"x {per_shape} GPU type/TP pairs x roles), above the limit of {MAX_OPTION_EVALUATIONS:,}: use coarser segment "
        f"sizes (quantization coarse, fine or even), fewer pipeline stages, or a fixed concurrency",
        "settings", column="segment sizes"))


def _with_reason(o: Option, reason: str) -> Option:
    from dataclasses import replace

    return replace(o, reason=reason)


def expand_positions(o: Option, num_layers: int) -> list[int]:
    """First layers (1-based) at which an option can sit."""
    if holds_embedding(o.role):
        return [1]
    if o.role == Role.LAST:
        return [num_layers - o.size + 1]
    return list(range(2, num_layers - o.size + 1))
