"""The replica catalogue of a fleet: every replica worth deploying, found by an exact Pareto dynamic program.

A replica is one pipeline as `solve` builds it (stages of one GPU type each, at one level and stage count P,
every stage meeting the latency limits). For a fleet only three things about a replica matter:
its rate theta (its slowest stage's tokens/s), its GPUs per type n (a vector) and, through n, its cost.

Dominance (exact). If replica A has theta_A >= theta_B and n_A <= n_B componentwise, then in any fleet
every copy of B can be swapped for a copy of A: the fleet's rate does not fall, no type uses more GPUs
and the cost (sum_g p_g n_g, prices >= 0) does not rise. So the minimum-cost fleet is found among the
Pareto-minimal replicas in (theta max, n min): the *catalogue*. This is MODEL-NOTES section 7's level
form in column form: a replica "at level theta_k" is a column with rate theta_k, and a dominated level
or replica is pruned exactly.

Enumeration (exact). Per unit (level, P): the first stage (role first, or only if P = 1), P - 2 middle
stages as a multiset (stage order changes neither the bottleneck nor the GPUs nor the summed prefill),
and the last stage. Middle multisets are built by an unbounded-knapsack dynamic program over the middle
options (option-major, so each multiset is generated once), with cells (stages j, layers s) holding
labels (theta = min rate, n, prefill sum). A label is dropped when another label of the same cell has
theta >= , n <= and prefill <= (the prefill only when a TTFT limit exists): every completion of the
dropped label is matched by the same completion of the other, which is then at least as good in all
three. Labels whose n exceeds the pool, and complete replicas whose TTFT (sum of the stages' prefill of
one microbatch) exceeds the limit, are dropped. TPOT (P x the slowest decode step) and memory at the
unit's concurrency are per option (its `max_stages`), as for single pipelines.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from dataclasses import dataclass

from .candidates import Level, Option, build_candidates
from .domain import Scenario
from .errors import CancelledError

log = logging.getLogger(__name__)
REL = 1e-12


@dataclass(frozen=True)
class Replica:
    """One catalogue entry: a pipeline's options (unordered, first and last included) and its figures."""

    options: tuple[Option, ...]
    tokens_per_s: float  # slowest stage (processed tokens: input + output)
    gpus: tuple[int, ...]  # per pool type, in pool order
    cost_usd_per_hour: float
    prefill_s: float
    stages: int
    concurrency: int

    def uses_only(self, type_index: int) -> bool:
        return all(n == 0 for i, n in enumerate(self.gpus) if i != type_index)


def reduce_same_gpus(labels: list[tuple], with_prefill: bool) -> list[tuple]:
    """Among labels with the same GPUs n keep the fastest (and, with_prefill, every label whose prefill
    beats all faster ones): the dominance of `pareto` restricted to equal n, in linear time."""
    by_n: dict[tuple, list[tuple]] = {}
    for lab in labels:
        by_n.setdefault(lab[1], []).append(lab)
    out = []
    for group in by_n.values():
        if not with_prefill:
            out.append(max(group, key=lambda t: t[0]))
            continue
        group.sort(key=lambda t: (-t[0], t[2]))
        best_pre = float("inf")
        for lab in group:
            if lab[2] < best_pre * (1 - REL) - 1e-15:
                out.append(lab)
                best_pre = lab[2]
    return out


def pareto(labels: list[tuple], with_prefill: bool) -> list[tuple]:
    """The labels (theta, n, prefill, payload) not dominated by another, fastest first: a label is
    dominated when another has theta >= , n <= componentwise and (with_prefill) prefill <= . Labels with
    the same n are reduced first (best theta, then least prefill); ties keep one of them."""
    if len(labels) <= 1:
        return list(labels)
    reduced = reduce_same_gpus(labels, with_prefill)
    reduced.sort(key=lambda t: (-t[0], sum(t[1]), t[2]))
    dims = len(reduced[0][1])
    kept_n = np.empty((len(reduced), dims), dtype=np.int64)
    kept_pre = np.empty(len(reduced))
    kept: list[tuple] = []
    for lab in reduced:
        k = len(kept)
        if k:
            # every kept label is at least as fast (sorted by theta descending; equal thetas count as >=)
            ok = np.all(kept_n[:k] <= np.asarray(lab[1]), axis=1)
            if with_prefill:
                ok &= kept_pre[:k] <= lab[2] * (1 + REL) + 1e-15
            if ok.any():
                continue
        kept_n[k] = lab[1]
        kept_pre[k] = lab[2]
        kept.append(lab)
    return kept


def _add(n: tuple[int, ...], i: int, t: int) -> tuple[int, ...]:
    return n[:i] + (n[i] + t,) + n[i + 1:]


def unit_replicas(scenario: Scenario, level: Level, p: int, opts: list[Option], cancel=None) -> list[Replica]:
    """The Pareto-minimal replicas of P = p stages at `level` (see the module docstring)."""
    L = scenario.model.num_layers
    types = scenario.pool.types
    index = {g: i for i, g in enumerate(types)}
    counts = tuple(scenario.pool.entry(g).count for g in types)
    ttft = scenario.settings.max_ttft_ms
    with_prefill = ttft is not None
    limit_s = ttft / 1e3 if with_prefill else float("inf")
    zero = (0,) * len(types)
    usable = [o for o in opts if o.max_stages >= p and o.min_stages <= p and o.tp <= counts[index[o.gpu_type]]]

    def fits(n):
        return all(x <= c for x, c in zip(n, counts))

    out: list[Replica] = []
    conc = level.concurrency(p)
    if p == 1:
        labels = []
        for o in usable:
            if o.role == "only" and o.size == L and o.prefill_s <= limit_s * (1 + REL):
                labels.append((o.tokens_per_s, _add(zero, index[o.gpu_type], o.tp), o.prefill_s, (o,)))
        for th, n, pre, os_ in pareto(labels, False):
            out.append(Replica(os_, th, n, sum(o.cost_usd_per_hour for o in os_), pre, 1, conc))
        return out
    firsts = [o for o in usable if o.role == "first"]
    lasts = [o for o in usable if o.role == "last"]
    middles = [o for o in usable if o.role == "middle"]
    if not firsts or not lasts:
        return out
    min_last = min(o.size for o in lasts)
    min_mid = min((o.size for o in middles), default=0)
    # cells[j][s]: labels (theta, n, prefill, options) of the first stage and j - 1 middle stages, s layers
    cells: list[dict[int, list[tuple]]] = [dict() for _ in range(p)]
    for f in firsts:
        if f.prefill_s <= limit_s * (1 + REL) and f.size + (p - 2) * min_mid + min_last <= L:
            cells[1].setdefault(f.size, []).append((f.tokens_per_s, _add(zero, index[f.gpu_type], f.tp),
                                                     f.prefill_s, (f,)))
    cells[1] = {s: pareto(labs, with_prefill) for s, labs in cells[1].items()}
    for o in middles:  # option-major: every multiset of middles is generated once
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        gi = index[o.gpu_type]
        for j in range(2, p):
            room = L - (p - 1 - j) * min_mid - min_last  # the stages still to come need at least this
            for s_prev, labs in list(cells[j - 1].items()):
                s = s_prev + o.size
                if s > room:
                    continue
                new = []
                for th, n, pre, os_ in labs:
                    n2 = _add(n, gi, o.tp)
                    if n2[gi] > counts[gi] or pre + o.prefill_s > limit_s * (1 + REL):
                        continue
                    new.append((min(th, o.tokens_per_s), n2, pre + o.prefill_s, os_ + (o,)))
                if new:
                    cells[j][s] = pareto(cells[j].get(s, []) + new, with_prefill)
    labels = []
    for la in lasts:
        gi = index[la.gpu_type]
        for th, n, pre, os_ in cells[p - 1].get(L - la.size, ()):
            n2 = _add(n, gi, la.tp)
            pre2 = pre + la.prefill_s
            if n2[gi] > counts[gi] or pre2 > limit_s * (1 + REL):
                continue
            labels.append((min(th, la.tokens_per_s), n2, pre2, os_ + (la,)))
    for th, n, pre, os_ in pareto(labels, False):
        out.append(Replica(os_, th, n, sum(o.cost_usd_per_hour for o in os_), pre, p, conc))
    return out


@dataclass(frozen=True)
class Catalogue:
    scenario: Scenario
    replicas: tuple[Replica, ...]  # Pareto-minimal over all units, fastest first
    units: int
    enumerated: int  # replicas found per unit before the global Pareto filter
    seconds: float


def build_catalogue(scenario: Scenario, cancel=None) -> Catalogue:
    """Every Pareto-minimal replica of the scenario over all levels and stage counts (module docstring)."""
    t0 = time.perf_counter()
    cands = build_candidates(scenario)
    by_level: dict[Level, list[Option]] = {}
    for o in cands.options:
        by_level.setdefault(o.level, []).append(o)
    found: list[Replica] = []
    units = 0
    for level, opts in by_level.items():
        for p in level.stage_counts:
            units += 1
            found.extend(unit_replicas(scenario, level, p, opts, cancel))
    labels = [(r.tokens_per_s, r.gpus, 0.0, r) for r in found]
    kept = tuple(lab[3] for lab in pareto(labels, False))
    seconds = time.perf_counter() - t0
    log.info("%s: fleet catalogue of %d replicas (%d before the Pareto filter) from %d units in %.2f s",
             scenario.name, len(kept), len(found), units, seconds)
    return Catalogue(scenario, kept, units, len(found), seconds)
