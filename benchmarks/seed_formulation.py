"""The seed tool's MILP, rebuilt in Pyomo and solved with HiGHS: the baseline for the speed-up figures.

What the seed (a Gurobi script) built, per `seed/OPTIMIZATION_SUMMARY.md` and its public source:
- a binary x per *segment*: (GPU type, one fixed TP partition of that type's GPUs, first layer, size,
  batch level); the partitions of TP degree t are the aligned blocks {0..t-1}, {t..2t-1}, ... of the
  type's GPUs, so a segment names its physical GPUs;
- a binary z per partition (z = sum of its segments' x), a binary e per pair of consecutive segments
  (one ends at layer l, the other starts at l+1, disjoint GPUs, same batch level) linked to x by
  e <= x1, e <= x2, e >= x1 + x2 - 1, and a binary b per batch level with x <= b;
- every layer covered exactly once, every GPU in at most one active segment, at most K partitions,
  cost = sum z * tp * price <= budget, every active segment has an active successor / predecessor;
- the bottleneck by big-M: t <= throughput of partition p + M (1 - z_p) and t <= link throughput of
  pair k + M (1 - e_k).

It is fed the planner's own numbers: the options of `planner.build_candidates` (sizes, TP degrees,
levels, memory checks, throughputs), each placed at every position its role allows on every TP
partition of its type, so both formulations answer the same question on the same input. The
planner's levels (microbatch x stage counts, `planner.candidates.Level`) take the place of the seed's
batch levels; where a level allows several stage counts, a binary per (level, count) picks one and an
option whose KV cache fits only up to P_o stages needs a count <= P_o, in the seed's style.

Departures from the seed, each keeping the answer exact (none makes this model larger):
- M is the largest option throughput (valid); the seed took 3x one type's throughput at its largest
  segment, which can be too small and cap the result (MODEL-NOTES section 4);
- GPU sets are compared by global id; the seed compared per-type local ids, which forbids mixed-type
  neighbours such as A100 TP4 -> V100 TP4;
- the definitional continuous variables (partition throughput, link throughput, cost) are substituted
  into the rows that use them; options the planner drops as dominated are kept (the seed had no such rule);
- no bandwidth-percentile filter on pairs and no symmetry breaking: the seed's versions can cut the
  optimum (its symmetry rows order partitions of one TP degree although partitions of other degrees
  share their GPUs).

The question both answer exactly: the highest throughput with hourly cost <= budget, ties broken
toward the lower cost (the inner solve of the seed's budget enumeration). Here that takes two solves:
max t, then min cost subject to t >= t*.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs
from pyomo.core.expr.numeric_expr import LinearExpression

from planner import Scenario, build_candidates, perf
from planner.candidates import Option, expand_positions


@dataclass(frozen=True)
class Segment:
    first_layer: int  # 1-based
    gpu_type: str
    partition: int  # index among the type's TP partitions
    gpu_lo: int  # global GPU ids gpu_lo .. gpu_hi - 1 (pool order, the seed's gpu_0..)
    gpu_hi: int
    level: int  # index into SeedProblem.levels
    option: Option  # size, role, tp, tokens/s, cost, max_stages

    @property
    def last_layer(self) -> int:
        return self.first_layer + self.option.size - 1


@dataclass(frozen=True)
class SeedProblem:
    """Segments and consecutive pairs of one scenario, before any Pyomo object exists."""

    scenario: Scenario
    levels: tuple  # planner.candidates.Level, in order
    segments: tuple[Segment, ...]
    pairs: tuple[tuple[int, int, float], ...]  # (segment ending at l, segment starting at l+1, link tokens/s)
    partitions: tuple[tuple[str, int, int], ...]  # (type, partition, tp) with at least one segment


@dataclass(frozen=True)
class SeedOutcome:
    status: str  # optimal | time_limit | infeasible | failed (...)
    tokens_per_s: float | None  # min over chosen stages and links
    cost_usd_per_hour: float | None
    usd_per_million_tokens: float | None
    chosen: tuple[Segment, ...]
    size: dict
    build_seconds: float  # Pyomo model construction
    solve_seconds: float  # HiGHS including Pyomo's hand-over, both solves
    total_seconds: float  # candidates + segments and pairs + build + solves


class TooLarge(Exception):
    """The formulation would exceed the given pair cap (it is not built)."""

    def __init__(self, segments: int, pairs: int, cap: int):
        super().__init__(f"{segments:,} segment binaries and {pairs:,} pair binaries (cap {cap:,} pairs)")
        self.segments, self.pairs, self.cap = segments, pairs, cap


def stage_options(scenario: Scenario) -> list[Option]:
    """The planner's memory-feasible options, including those it drops as dominated."""
    cs = build_candidates(scenario)
    return list(cs.options) + [o for o in cs.excluded if o.feasible]


def generate(scenario: Scenario, max_pairs: int | None = None) -> SeedProblem:
    """Every option at every position on every TP partition of its type, and every valid pair.
    Raises `TooLarge` (after counting, before allocating) if there would be more than `max_pairs` pairs."""
    L = scenario.model.num_layers
    options = stage_options(scenario)
    levels = tuple(sorted({o.level for o in options}))
    level_index = {lv: v for v, lv in enumerate(levels)}
    offsets, start = {}, 0
    for e in scenario.pool.entries:
        offsets[e.name] = start
        start += e.count
    partition_ids: dict[tuple[str, int, int], int] = {}  # (type, tp, block) -> partition index within the type
    for e in scenario.pool.entries:
        blocks = [(t, k) for t in sorted({o.tp for o in options if o.gpu_type == e.name}) for k in range(e.count // t)]
        partition_ids.update({(e.name, t, k): q for q, (t, k) in enumerate(blocks)})
    segments: list[Segment] = []
    for o in options:
        for a in expand_positions(o, L):
            for k in range(scenario.pool.entry(o.gpu_type).count // o.tp):
                lo = offsets[o.gpu_type] + k * o.tp
                segments.append(Segment(a, o.gpu_type, partition_ids[(o.gpu_type, o.tp, k)], lo, lo + o.tp,
                                        level_index[o.level], o))
    partitions = tuple(sorted({(s.gpu_type, s.partition, s.option.tp) for s in segments}))
    by_end: dict[tuple[int, int], list[int]] = {}
    by_start: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(segments):
        by_end.setdefault((s.last_layer, s.level), []).append(i)
        by_start.setdefault((s.first_layer, s.level), []).append(i)

    def candidates():
        for (l, v), ends in sorted(by_end.items()):
            nexts = by_start.get((l + 1, v), ())
            for i in ends:
                a = segments[i]
                for j in nexts:
                    b = segments[j]
                    if a.gpu_hi <= b.gpu_lo or b.gpu_hi <= a.gpu_lo:  # global ids: disjoint GPU sets
                        yield i, j

    if max_pairs is not None:
        count = sum(1 for _ in candidates())
        if count > max_pairs:
            raise TooLarge(len(segments), count, max_pairs)
    link: dict[tuple[str, str], float] = {}
    pairs = []
    for i, j in candidates():
        key = (segments[i].gpu_type, segments[j].gpu_type)
        if key not in link:
            link[key] = perf.link_tokens_per_s(scenario.model, scenario.pool.link(*key))
        pairs.append((i, j, link[key]))
    return SeedProblem(scenario, levels, tuple(segments), tuple(pairs), partitions)


def _lin(coefs, vars_, constant=0.0):
    return LinearExpression(constant=constant, linear_coefs=list(coefs), linear_vars=list(vars_))


def _index(n: int):
    return pyo.RangeSet(0, n - 1) if n else pyo.Set(initialize=[])


def build(p: SeedProblem, budget_usd_per_hour: float | None) -> pyo.ConcreteModel:
    sc, segs, pairs = p.scenario, p.segments, p.pairs
    L, K = sc.model.num_layers, sc.settings.max_stages
    m = pyo.ConcreteModel(name="seed-formulation")
    m.x = pyo.Var(_index(len(segs)), domain=pyo.Binary)
    m.z = pyo.Var(_index(len(p.partitions)), domain=pyo.Binary)
    m.e = pyo.Var(_index(len(pairs)), domain=pyo.Binary)
    m.b = pyo.Var(_index(len(p.levels)), domain=pyo.Binary)
    counts = [(v, c) for v, lv in enumerate(p.levels) if len(lv.stage_counts) > 1 for c in lv.stage_counts]
    m.y = pyo.Var(pyo.Set(initialize=counts, dimen=2), domain=pyo.Binary)
    big_m = max(s.option.tokens_per_s for s in segs)
    m.t = pyo.Var(domain=pyo.NonNegativeReals, bounds=(0, big_m))

    covering: list[list[int]] = [[] for _ in range(L + 1)]
    per_gpu: dict[int, list[int]] = {}
    per_part: dict[tuple[str, int], list[int]] = {}
    per_level: list[list[int]] = [[] for _ in p.levels]
    for i, s in enumerate(segs):
        for layer in range(s.first_layer, s.last_layer + 1):
            covering[layer].append(i)
        for g in range(s.gpu_lo, s.gpu_hi):
            per_gpu.setdefault(g, []).append(i)
        per_part.setdefault((s.gpu_type, s.partition), []).append(i)
        per_level[s.level].append(i)
    ones = lambda idx, var: _lin([1] * len(idx), [var[i] for i in idx])  # noqa: E731

    m.cover = pyo.Constraint(pyo.RangeSet(1, L), rule=lambda _m, l: ones(covering[l], m.x) == 1)
    gpus = sorted(per_gpu)
    m.exclusive = pyo.Constraint(_index(len(gpus)), rule=lambda _m, k: ones(per_gpu[gpus[k]], m.x) <= 1)
    part_segs = [per_part[(g, q)] for g, q, _ in p.partitions]
    m.partition_use = pyo.Constraint(m.z.index_set(), rule=lambda _m, q: _lin(
        [1] * len(part_segs[q]) + [-1], [m.x[i] for i in part_segs[q]] + [m.z[q]]) == 0)
    m.stages = pyo.Constraint(expr=ones(range(len(p.partitions)), m.z) <= K)
    m.one_level = pyo.Constraint(expr=ones(range(len(p.levels)), m.b) == 1)

    def stage_number(_m, v):  # active segments of the chosen level = its stage count
        lv = p.levels[v]
        if len(lv.stage_counts) == 1:
            return _lin([1] * len(per_level[v]) + [-lv.stage_counts[0]], [m.x[i] for i in per_level[v]] + [m.b[v]]) == 0
        return _lin([1] * len(per_level[v]) + [-c for c in lv.stage_counts],
                    [m.x[i] for i in per_level[v]] + [m.y[v, c] for c in lv.stage_counts]) == 0
    m.stage_number = pyo.Constraint(m.b.index_set(), rule=stage_number)
    multi = [v for v, lv in enumerate(p.levels) if len(lv.stage_counts) > 1]
    m.one_count = pyo.Constraint(multi, rule=lambda _m, v: _lin(
        [1] * len(p.levels[v].stage_counts) + [-1], [m.y[v, c] for c in p.levels[v].stage_counts] + [m.b[v]]) == 0)

    def level_link(_m, i):  # x <= b (the seed's batch rows), or x <= "a stage count the option fits at"
        s = segs[i]
        lv = p.levels[s.level]
        if len(lv.stage_counts) == 1 or s.option.max_stages >= lv.stage_counts[-1]:
            return m.x[i] - m.b[s.level] <= 0
        fit = [c for c in lv.stage_counts if c <= s.option.max_stages]
        return _lin([1] + [-1] * len(fit), [m.x[i]] + [m.y[s.level, c] for c in fit]) <= 0
    m.level_link = pyo.Constraint(m.x.index_set(), rule=level_link)

    prices = [sc.pool.entry(g).spec.price_usd_per_hour * t for g, _, t in p.partitions]
    m.cost = pyo.Expression(expr=_lin(prices, [m.z[q] for q in m.z.index_set()]))
    m.budget = pyo.Param(mutable=True, initialize=1e12 if budget_usd_per_hour is None else budget_usd_per_hour)
    m.budget_row = pyo.Constraint(expr=m.cost <= m.budget)
    m.pair_a = pyo.Constraint(m.e.index_set(), rule=lambda _m, k: m.e[k] - m.x[pairs[k][0]] <= 0)
    m.pair_b = pyo.Constraint(m.e.index_set(), rule=lambda _m, k: m.e[k] - m.x[pairs[k][1]] <= 0)
    m.pair_both = pyo.Constraint(m.e.index_set(), rule=lambda _m, k: m.x[pairs[k][0]] + m.x[pairs[k][1]] - m.e[k] <= 1)
    # big-M bottleneck: t <= sum_i thr_i x_i + M (1 - z_p) per partition, t <= rho_k e_k + M (1 - e_k) per pair
    m.bottleneck = pyo.Constraint(m.z.index_set(), rule=lambda _m, q: _lin(
        [1.0] + [-segs[i].option.tokens_per_s for i in part_segs[q]] + [big_m],
        [m.t] + [m.x[i] for i in part_segs[q]] + [m.z[q]]) <= big_m)
    binding = [k for k, (_, _, rho) in enumerate(pairs) if rho < big_m]  # a faster link can never bind
    m.link_bottleneck = pyo.Constraint(binding, rule=lambda _m, k: _lin(
        [1.0, big_m - pairs[k][2]], [m.t, m.e[k]]) <= big_m)
    out_pairs: dict[int, list[int]] = {}
    in_pairs: dict[int, list[int]] = {}
    for k, (i, j, _) in enumerate(pairs):
        out_pairs.setdefault(i, []).append(k)
        in_pairs.setdefault(j, []).append(k)
    outs, ins = sorted(out_pairs), sorted(in_pairs)
    m.successor = pyo.Constraint(_index(len(outs)), rule=lambda _m, r: _lin(
        [1] * len(out_pairs[outs[r]]) + [-1], [m.e[k] for k in out_pairs[outs[r]]] + [m.x[outs[r]]]) >= 0)
    m.predecessor = pyo.Constraint(_index(len(ins)), rule=lambda _m, r: _lin(
        [1] * len(in_pairs[ins[r]]) + [-1], [m.e[k] for k in in_pairs[ins[r]]] + [m.x[ins[r]]]) >= 0)
    m.floor = pyo.Param(mutable=True, initialize=sc.settings.min_tokens_per_s or 0.0)
    m.floor_row = pyo.Constraint(expr=m.t >= m.floor)
    m.max_t = pyo.Objective(expr=m.t, sense=pyo.maximize)
    m.min_cost = pyo.Objective(expr=m.cost, sense=pyo.minimize)
    m.min_cost.deactivate()
    return m


def model_size(p: SeedProblem, m: pyo.ConcreteModel) -> dict:
    rows = sum(len(c) for c in m.component_objects(pyo.Constraint, active=True))
    binaries = len(m.x) + len(m.z) + len(m.e) + len(m.b) + len(m.y)
    return {"segments": len(p.segments), "pairs": len(p.pairs), "binaries": binaries, "rows": rows}


def _solve(solver: Highs, m: pyo.ConcreteModel, time_left: float) -> str:
    solver.config.time_limit = max(time_left, 0.01)
    res = solver.solve(m)
    tc = res.termination_condition
    if tc in (TerminationCondition.infeasible, TerminationCondition.infeasibleOrUnbounded):
        return "infeasible"
    if res.best_feasible_objective is None:
        return "time_limit" if tc == TerminationCondition.maxTimeLimit else f"failed ({tc.name})"
    res.solution_loader.load_vars()
    return "optimal" if tc == TerminationCondition.optimal else "time_limit"


def max_throughput(scenario: Scenario, budget_usd_per_hour: float | None, time_limit_s: float = 600.0,
                   gap: float = 1e-9, max_pairs: int | None = None) -> SeedOutcome:
    """Highest throughput with cost <= budget (and the scenario's own cap and floor), ties toward lower cost."""
    st = scenario.settings
    if st.max_ttft_ms is not None or st.max_tpot_ms is not None:
        raise ValueError("the seed-style formulation has no latency SLO rows; clear max_ttft_ms and max_tpot_ms")
    t0 = time.perf_counter()
    caps = [c for c in (budget_usd_per_hour, st.max_usd_per_hour) if c is not None]
    p = generate(scenario, max_pairs)
    tb = time.perf_counter()
    m = build(p, min(caps) if caps else None)
    build_s = time.perf_counter() - tb
    solver = Highs()
    solver.config.load_solution = False
    solver.config.mip_gap = gap
    solver.highs_options = {"threads": st.threads, "output_flag": False}
    ts = time.perf_counter()
    status = _solve(solver, m, time_limit_s - (ts - t0))
    chosen = _chosen(p, m) if status in ("optimal", "time_limit") else ()
    if status == "optimal":
        # tie-break: the cheapest plan at least as fast as the best one (its recomputed throughput)
        m.floor.value = max(st.min_tokens_per_s or 0.0, _throughput(p, chosen) * (1 - 1e-9))
        m.max_t.deactivate()
        m.min_cost.activate()
        second = _solve(solver, m, time_limit_s - (time.perf_counter() - t0))
        if second in ("optimal", "time_limit"):
            chosen, status = _chosen(p, m), second
        else:
            status = f"tie-break {second}"
    solve_s = time.perf_counter() - ts
    thr = _throughput(p, chosen) if chosen else None
    cost = sum(s.option.cost_usd_per_hour for s in chosen) if chosen else None
    usd_m = cost / (3600 * thr * scenario.workload.basis_fraction) * 1e6 if chosen else None
    return SeedOutcome(status, thr, cost, usd_m, chosen, model_size(p, m), build_s, solve_s,
                       time.perf_counter() - t0)


def _chosen(p: SeedProblem, m: pyo.ConcreteModel) -> tuple[Segment, ...]:
    picked = [p.segments[i] for i in m.x.index_set() if m.x[i].value is not None and m.x[i].value > 0.5]
    return tuple(sorted(picked, key=lambda s: s.first_layer))


def _throughput(p: SeedProblem, chosen: tuple[Segment, ...]) -> float:
    """Min over the chosen stages and the links between consecutive ones (what the seed's t bounds)."""
    thr = min(s.option.tokens_per_s for s in chosen)
    for a, b in zip(chosen, chosen[1:]):
        thr = min(thr, perf.link_tokens_per_s(p.scenario.model, p.scenario.pool.link(a.gpu_type, b.gpu_type)))
    return thr
