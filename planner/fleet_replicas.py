"""The replica catalogue of a fleet: every replica worth deploying, found by an exact Pareto dynamic program.

No longer on the solve path (fleet_master's column generation replaced it: this list grows 6-7x per stage);
kept because it is an independent exact method, which tests/test_fleet.py compares the fleet against where
it is small enough to build.

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

Size guard. The work grows about 6-7x per extra stage (realistic: 1 s at 3 stages, 7 s at 4, 38 s at 5), so
the units are built stage count by stage count (all levels at P = 1, then P = 2, ...) and a work counter
(labels extended plus label pairs compared / 1000) is checked at every extension: past WORK_LIMIT the
build stops with TooLargeError naming the stage count it had reached; every smaller stage count was then
complete within the limit, which is the advice given. `allow_large=True` builds it anyway. The results are
collected in the original (level, stage count) order, so the catalogue is the same with or without the guard.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from dataclasses import dataclass

from .candidates import Level, Option, build_candidates
from .domain import Scenario
from .errors import CancelledError, TooLargeError
from .units import REL_EPS

log = logging.getLogger(__name__)
REL = REL_EPS  # same figure up to rounding (planner/units.py)
# Work units (labels extended + label pairs compared / 1000) before the build is refused: realistic at 3
# stages needs ~70,000 (about 1-2 s on a loaded 2-core machine), at 4 stages ~520,000 (7-15 s).
WORK_LIMIT = 100_000
# what the refusal tells the user to do: {n} is the most stages that were built within the limit
CLI_ADVICE = ("pass --max-stages {n} or fewer", "--allow-large to build it anyway")


class Budget:
    """The size guard's work counter (module docstring); `limit` None: no limit."""

    def __init__(self, limit: int | None, max_stages: int, advice: tuple[str, str] = CLI_ADVICE):
        self.limit, self.max_stages, self.advice = limit, max_stages, advice
        self.work = 0.0
        self.stages = 0  # the stage count being built
        self.t0 = time.perf_counter()

    def spend(self, units: float) -> None:
        self.work += units
        if self.limit is not None and self.work > self.limit:
            smaller, anyway = self.advice
            raise TooLargeError(
                f"too large: at max stages {self.max_stages} its work passed the limit of "
                f"{self.limit:,} units ({self.work:,.0f} reached while building {self.stages}-stage replicas, "
                f"{time.perf_counter() - self.t0:.1f} s); {smaller.format(n=self.stages - 1)}, or {anyway}",
                int(self.work), self.limit, "fleet replica list")


@dataclass(frozen=True)
class Replica:
    """One catalogue entry: a pipeline's options (unordered, first and last included) and its figures."""

    options: tuple[Option, ...]
    tokens_per_s: float  # slowest stage (processed tokens: input + output)
    gpus: tuple[int, ...]  # per pool type, in pool order
    cost_usd_per_hour: float
    prefill_s: float  # the TTFT: the options' ttft_s summed (perf.serving_latency)
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
    k = len(reduced)
    if k <= 1:
        return reduced
    # sorted by theta descending, a label can only be dominated by an earlier one, and checking against
    # every earlier label (kept or not) is the same as against the kept ones (dominance is transitive)
    n = np.array([lab[1] for lab in reduced], dtype=np.int32)
    pre = np.array([lab[2] for lab in reduced])
    dominated = np.zeros(k, dtype=bool)
    block = max(1, 4_000_000 // (k * n.shape[1]))
    for start in range(1, k, block):
        stop = min(k, start + block)
        cmp = np.all(n[:stop, None, :] <= n[None, start:stop, :], axis=2)  # [j, i]: n_j <= n_i
        if with_prefill:
            cmp &= pre[:stop, None] <= pre[None, start:stop] * (1 + REL) + 1e-15
        cmp &= np.arange(stop)[:, None] < np.arange(start, stop)[None, :]  # j earlier than i
        dominated[start:stop] = cmp.any(axis=0)
    return [lab for lab, d in zip(reduced, dominated) if not d]


class _Cell:
    """Labels of one DP cell as arrays: rate theta, GPUs per type n, prefill sum, and the options (payload)."""

    __slots__ = ("th", "n", "pre", "opts")

    def __init__(self, th, n, pre, opts):
        self.th, self.n, self.pre, self.opts = th, n, pre, opts

    @classmethod
    def pareto(cls, th, n, pre, opts, with_prefill: bool) -> "_Cell":
        return cls(th, n, pre, opts).reduce_same_gpus(with_prefill).pareto_self(with_prefill)

    def take(self, idx) -> "_Cell":
        return _Cell(self.th[idx], self.n[idx], self.pre[idx], [self.opts[i] for i in idx])

    def concat(self, other: "_Cell") -> "_Cell":
        return _Cell(np.concatenate([self.th, other.th]), np.concatenate([self.n, other.n]),
                     np.concatenate([self.pre, other.pre]), self.opts + other.opts)

    def extend(self, o: Option, gi: int, cap, limit_s: float, budget: "Budget | None" = None) -> "_Cell | None":
        """Every label with one more stage `o` (that still fits the pool and the TTFT limit)."""
        if budget is not None:
            budget.spend(len(self.th))
        ok = (self.n[:, gi] + o.tp <= cap[gi]) & (self.pre + o.ttft_s <= limit_s * (1 + REL))
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        n = self.n[idx].copy()
        n[:, gi] += o.tp
        return _Cell(np.minimum(self.th[idx], o.tokens_per_s), n, self.pre[idx] + o.ttft_s,
                     [self.opts[i] + (o,) for i in idx])

    def merge(self, other: "_Cell", with_prefill: bool, budget: "Budget | None" = None) -> "_Cell":
        both = self.concat(other).reduce_same_gpus(with_prefill)
        if budget is not None:
            budget.spend(len(both.th) ** 2 / 1000)
        return both.pareto_self(with_prefill)

    def reduce_same_gpus(self, with_prefill: bool = False) -> "_Cell":
        """Among labels with equal n keep the fastest (with_prefill: leave them to `pareto_self`)."""
        if with_prefill or len(self.th) <= 1:
            return self
        order = np.lexsort((-self.th,) + tuple(self.n[:, t] for t in range(self.n.shape[1] - 1, -1, -1)))
        n_sorted = self.n[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(n_sorted[1:] != n_sorted[:-1], axis=1)
        return self.take(order[first])

    def pareto_self(self, with_prefill: bool) -> "_Cell":
        """Drop every label another one dominates (theta >=, n <=, prefill <= when with_prefill); sorted by
        theta descending, a label can only be dominated by an earlier one (equal labels: the first stays)."""
        k = len(self.th)
        if k <= 1:
            return self
        order = np.lexsort((self.pre, self.n.sum(axis=1), -self.th))
        n, pre = self.n[order], self.pre[order]
        dominated = np.zeros(k, dtype=bool)
        block = max(1, 4_000_000 // (k * n.shape[1]))
        for start in range(1, k, block):
            stop = min(k, start + block)
            cmp = np.all(n[:stop, None, :] <= n[None, start:stop, :], axis=2)
            if with_prefill:
                cmp &= pre[:stop, None] <= pre[None, start:stop] * (1 + REL) + 1e-15
            cmp &= np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
            dominated[start:stop] = cmp.any(axis=0)
        return self.take(order[~dominated])


def _add(n: tuple[int, ...], i: int, t: int) -> tuple[int, ...]:
    return n[:i] + (n[i] + t,) + n[i + 1:]


def unit_replicas(scenario: Scenario, level: Level, p: int, opts: list[Option], cancel=None,
                  budget: Budget | None = None) -> list[Replica]:
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
            if o.role == "only" and o.size == L and o.ttft_s <= limit_s * (1 + REL):
                labels.append((o.tokens_per_s, _add(zero, index[o.gpu_type], o.tp), o.ttft_s, (o,)))
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
    cap = np.array(counts, dtype=np.int32)
    T = len(types)
    # cells[j][s]: the labels of the first stage and j - 1 middle stages holding s layers, as arrays
    cells: list[dict[int, _Cell]] = [dict() for _ in range(p)]
    by_size: dict[int, list[Option]] = {}
    for f in firsts:
        if f.ttft_s <= limit_s * (1 + REL) and f.size + (p - 2) * min_mid + min_last <= L:
            by_size.setdefault(f.size, []).append(f)
    for size, fs in by_size.items():
        n = np.zeros((len(fs), T), dtype=np.int32)
        for i, f in enumerate(fs):
            n[i, index[f.gpu_type]] = f.tp
        cells[1][size] = _Cell.pareto(np.array([f.tokens_per_s for f in fs]), n,
                                      np.array([f.ttft_s for f in fs]), [(f,) for f in fs], with_prefill)
    for o in middles:  # option-major: every multiset of middles is generated once
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        gi = index[o.gpu_type]
        for j in range(2, p):
            room = L - (p - 1 - j) * min_mid - min_last  # the stages still to come need at least this
            for s_prev, cell in list(cells[j - 1].items()):
                s = s_prev + o.size
                if s > room:
                    continue
                ext = cell.extend(o, gi, cap, limit_s, budget)
                if ext is None:
                    continue
                old = cells[j].get(s)
                cells[j][s] = ext if old is None else old.merge(ext, with_prefill, budget)
    exts = []
    for la in lasts:
        cell = cells[p - 1].get(L - la.size)
        if cell is not None:
            ext = cell.extend(la, index[la.gpu_type], cap, limit_s, budget)
            if ext is not None:
                exts.append(ext.reduce_same_gpus())
    if not exts:
        return out
    final = exts[0]
    for e in exts[1:]:
        final = final.concat(e)
    final = final.reduce_same_gpus().pareto_self(False)
    labels = [(float(th), tuple(int(x) for x in n), float(pre), os_)
              for th, n, pre, os_ in zip(final.th, final.n, final.pre, final.opts)]
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


def build_catalogue(scenario: Scenario, cancel=None, allow_large: bool = False,
                    advice: tuple[str, str] = CLI_ADVICE) -> Catalogue:
    """Every Pareto-minimal replica of the scenario over all levels and stage counts (module docstring).
    TooLargeError (with `advice`: a smaller stage limit, the way to go on) when the work passes
    WORK_LIMIT, unless `allow_large`."""
    t0 = time.perf_counter()
    cands = build_candidates(scenario)
    by_level: dict[Level, list[Option]] = {}
    for o in cands.options:
        by_level.setdefault(o.level, []).append(o)
    budget = Budget(None if allow_large else WORK_LIMIT, scenario.settings.max_stages, advice)
    by_unit: dict[tuple[int, int], list[Replica]] = {}
    for p in sorted({p for level in by_level for p in level.stage_counts}):  # stage-major: see the guard
        budget.stages = p
        for k, (level, opts) in enumerate(by_level.items()):
            if p in level.stage_counts:
                by_unit[(k, p)] = unit_replicas(scenario, level, p, opts, cancel, budget)
    found: list[Replica] = []
    units = 0
    for k, level in enumerate(by_level):
        for p in level.stage_counts:
            units += 1
            found.extend(by_unit[(k, p)])
    labels = [(r.tokens_per_s, r.gpus, 0.0, r) for r in found]
    kept = tuple(lab[3] for lab in pareto(labels, False))
    seconds = time.perf_counter() - t0
    log.info("%s: fleet catalogue of %d replicas (%d before the Pareto filter) from %d units in %.2f s "
             "(%.0f work units, limit %s)", scenario.name, len(kept), len(found), units, seconds, budget.work,
             budget.limit)
    return Catalogue(scenario, kept, units, len(found), seconds)
