"""Plans: ordered stages with their figures, and the per-GPU assignment."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import perf
from .candidates import Option
from .domain import Scenario
from .kinds import Role, holds_embedding
from .units import usd_per_million_tokens


@dataclass(frozen=True)
class Stage:
    index: int  # 1-based position in the pipeline
    first_layer: int  # 1-based, inclusive
    last_layer: int
    gpu_type: str
    sku: str
    tp: int
    tokens_per_s: float
    memory_gb_per_gpu: float
    capacity_gb: float
    cost_usd_per_hour: float
    bound: str
    gpu_ids: tuple[str, ...] = ()  # physical GPUs (seed numbering gpu_0.. in pool order)
    node: str = ""
    prefill_s: float = 0.0  # one microbatch's prompts
    decode_step_s: float = 0.0  # one decode step of one microbatch
    ttft_s: float = 0.0  # the stage's share of a request's time to first token (`perf.serving_latency`)
    tpot_step_s: float = 0.0  # the stage's step as a decoding sequence sees it

    @property
    def num_layers(self) -> int:
        return self.last_layer - self.first_layer + 1

    @property
    def num_gpus(self) -> int:
        return self.tp


@dataclass(frozen=True)
class Link:
    after_stage: int
    from_type: str
    to_type: str
    gb_per_s: float
    tokens_per_s: float


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    links: tuple[Link, ...]
    concurrency: int
    token_basis: str
    basis_fraction: float  # billable share of processed tokens
    output_fraction: float
    microbatch: int = 0  # sequences per forward step (concurrency / stages, rounded up)

    @property
    def ttft_s(self) -> float:
        """Time to first token in the serving steady state: a new request's wait for its microbatch's step
        and its prompt's prefill, mixed with the others' work, through every stage (`perf.serving_latency`)."""
        return sum(s.ttft_s for s in self.stages)

    @property
    def tpot_s(self) -> float:
        """Time per output token: one token per cycle of P microbatch steps at the slowest stage, the others'
        prompts mixed into those steps."""
        return len(self.stages) * max((s.tpot_step_s for s in self.stages), default=0.0)

    @property
    def stage_tokens_per_s(self) -> float:
        return min(s.tokens_per_s for s in self.stages)

    @property
    def tokens_per_s(self) -> float:
        """Input + output tokens per second: the slowest stage or link."""
        return min([self.stage_tokens_per_s] + [k.tokens_per_s for k in self.links])

    @property
    def output_tokens_per_s(self) -> float:
        return self.tokens_per_s * self.output_fraction

    @property
    def billable_tokens_per_s(self) -> float:
        return self.tokens_per_s * self.basis_fraction

    @property
    def cost_usd_per_hour(self) -> float:
        return sum(s.cost_usd_per_hour for s in self.stages)

    @property
    def usd_per_million_tokens(self) -> float:
        return usd_per_million_tokens(self.cost_usd_per_hour, self.billable_tokens_per_s)

    @property
    def num_gpus(self) -> int:
        return sum(s.tp for s in self.stages)

    @property
    def bottleneck(self) -> int:
        """1-based index of the slowest stage."""
        return min(self.stages, key=lambda s: s.tokens_per_s).index

    @property
    def link_bound(self) -> bool:
        return any(k.tokens_per_s < self.stage_tokens_per_s for k in self.links)

    def gpus_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.stages:
            out[s.gpu_type] = out.get(s.gpu_type, 0) + s.tp
        return out


def _order(options: list[Option]) -> list[Option]:
    """First stage, then middles grouped by type (fewest cross-type links), then the last stage."""
    first = [o for o in options if holds_embedding(o.role)]
    last = [o for o in options if o.role == Role.LAST]
    middle = sorted((o for o in options if o.role == Role.MIDDLE), key=lambda o: (o.gpu_type, -o.tp, -o.size))
    if first and last:
        # put middles of the first stage's type next to it and of the last stage's type next to it
        head = [o for o in middle if o.gpu_type == first[0].gpu_type]
        tail = [o for o in middle if o.gpu_type == last[0].gpu_type and o.gpu_type != first[0].gpu_type]
        rest = [o for o in middle if o not in head and o not in tail]
        middle = head + rest + tail
    return first + middle + last


def _assign_gpus(scenario: Scenario, stages: list[Option]) -> list[tuple[tuple[str, ...], str]]:
    """Give each stage tp physical GPUs of its type inside one node (first-fit decreasing).

    GPUs are numbered gpu_0.. across the pool in row order (the seed's numbering); a type's GPUs form
    nodes of gpus_per_node. Power-of-two groups no larger than a node always fit when the counts do."""
    offsets: dict[str, int] = {}
    start = 0
    for e in scenario.pool.entries:
        offsets[e.name] = start
        start += e.count
    free: dict[str, list[list[int]]] = {}
    for e in scenario.pool.entries:
        per = e.spec.gpus_per_node
        ids = list(range(offsets[e.name], offsets[e.name] + e.count))
        free[e.name] = [ids[i:i + per] for i in range(0, len(ids), per)]
    out: list[tuple[tuple[str, ...], str] | None] = [None] * len(stages)
    for k in sorted(range(len(stages)), key=lambda k: -stages[k].tp):
        o = stages[k]
        for node_index, node in enumerate(free[o.gpu_type]):
            if len(node) >= o.tp:
                taken, free[o.gpu_type][node_index] = node[:o.tp], node[o.tp:]
                out[k] = (tuple(f"gpu_{i}" for i in taken), f"{o.gpu_type}/node{node_index}")
                break
        else:
            raise ValueError(f"cannot place TP {o.tp} of {o.gpu_type} inside one node")
    return out  # type: ignore[return-value]


def make_plan(scenario: Scenario, options: list[Option]) -> Plan:
    """Lay out the chosen options; memory is reported at the plan's concurrency (its stage count's)."""
    ordered = _order(options)
    placement = _assign_gpus(scenario, ordered)
    m, eng, w = scenario.model, scenario.engine, scenario.workload
    concurrency = ordered[0].level.concurrency(len(ordered)) if ordered else 0
    stages = []
    layer = 1
    for k, (o, (ids, node)) in enumerate(zip(ordered, placement), start=1):
        spec = scenario.pool.entry(o.gpu_type).spec
        mem = perf.stage_memory(m, spec, eng, o.size, o.tp, o.first, o.last, concurrency,
                                perf.workload_kv_tokens(w))
        stages.append(Stage(k, layer, layer + o.size - 1, o.gpu_type, spec.sku, o.tp, o.tokens_per_s,
                            mem.total_gb, o.capacity_gb, o.cost_usd_per_hour, o.bound, ids, node,
                            o.prefill_s, o.decode_step_s, o.ttft_s, o.tpot_step_s))
        layer += o.size
    links = []
    for a, b in zip(stages, stages[1:]):
        bw = scenario.pool.link(a.gpu_type, b.gpu_type)
        links.append(Link(a.index, a.gpu_type, b.gpu_type, bw, perf.link_tokens_per_s(scenario.model, bw)))
    return Plan(tuple(stages), tuple(links), concurrency, w.token_basis, w.basis_fraction,
                w.output_tokens / w.context_tokens, ordered[0].microbatch if ordered else 0)


@dataclass(frozen=True)
class CurvePoint:
    budget_usd_per_hour: float
    tokens_per_s: float | None
    cost_usd_per_hour: float | None
    usd_per_million_tokens: float | None
    status: str  # solved | infeasible | skipped (outside the competitive range)
    plan: Plan | None = None


@dataclass(frozen=True)
class Result:
    method: str
    plan: Plan
    status: str  # optimal | time_limit
    proven_optimal: bool
    gap: float
    how: str  # how the plan was found, in one sentence
    solve_seconds: float
    build_seconds: float
    problem_size: dict
    curve: tuple[CurvePoint, ...] = ()
    frontier: tuple[Plan, ...] = ()
    warnings: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
