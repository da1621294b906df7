"""Fleet mode: meet a demand (tokens/s) with replicas at the proven minimum $/hour.

A fleet is a multiset of replicas, each a pipeline as `solve` builds it, together within the pool's GPU
counts. For request classes q (one class unless a mix is given), with y_{q,r} copies of replica r:

    sum_r beta_q theta_{q,r} y_{q,r} >= D_q             demand, per class (beta_q: billable share)
    sum_{q,r} n_{q,r,g} y_{q,r} <= N_g                  GPUs, per type, shared by every class
    minimise sum_{q,r} c_{q,r} y_{q,r}                  $/hour

The replicas are far too many to list at deep stage limits (the exact Pareto catalogue of fleet_replicas,
kept as a cross-check in the tests, grows 6-7x per stage), so the MILP is solved by column generation
(`fleet_master`): replicas enter as the LP duals ask for them, each class, level and stage count priced
exactly by a branch and bound over stage options (`fleet_pricing`), and optimality is proven by the LP
bound and reduced costs (every replica an optimal fleet could use is enumerated into the final MILP).
This is MODEL-NOTES section 7's column route; its pricing is the single-pipeline search with prices p_g plus
the GPU rows' duals.

The figures: theta is the replica's slowest stage (input + output tokens/s); demand is on the scenario's
token basis (beta = 1 for `total`, output/(input+output) for `output`). Status and gap come from the
master (HiGHS's last integer solve, or the limit that stopped the proof); "proven optimal" only when the
proof closed.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

from .candidates import build_candidates
from .domain import Scenario, Workload
from .errors import InfeasibleError, InputError, Problem
from .fleet_master import Master, MasterResult
from .fleet_pricing import LevelPricer, level_pricers
from .plan import Plan, Stage, _assign_gpus, make_plan
from .units import usd_per_million_tokens

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ request classes
@dataclass(frozen=True)
class RequestClass:
    """One kind of request: its share of the requests, its lengths and latency limits (None: the scenario's)."""

    name: str
    share: float
    input_tokens: int
    output_tokens: int
    max_ttft_ms: float | None = None
    max_tpot_ms: float | None = None


def parse_mix(text: str) -> tuple[RequestClass, ...]:
    """`name:share:input:output[:ttft_ms[:tpot_ms]]`, comma-separated, e.g. "chat:0.7:512:256,docs:0.3:8192:512"."""
    out = []
    for k, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        f = part.split(":")
        if not 4 <= len(f) <= 6:
            raise InputError(Problem(f"class {k + 1} '{part}': expected name:share:input:output[:ttft_ms[:tpot_ms]]",
                                     "--mix"))
        try:
            cls = RequestClass(f[0], float(f[1]), int(f[2]), int(f[3]),
                               float(f[4]) if len(f) > 4 and f[4] else None,
                               float(f[5]) if len(f) > 5 and f[5] else None)
        except ValueError as exc:
            raise InputError(Problem(f"class {k + 1} '{part}': {exc}", "--mix")) from exc
        out.append(cls)
    return check_mix(tuple(out), "--mix")


def check_mix(classes: tuple[RequestClass, ...], where: str) -> tuple[RequestClass, ...]:
    problems = []
    if not classes:
        problems.append(Problem("no request class given", where))
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        problems.append(Problem(f"class names must be unique, got {names}", where))
    for c in classes:
        if not (c.share > 0 and math.isfinite(c.share)):
            problems.append(Problem(f"class '{c.name}': share must be a positive number, got {c.share}", where))
        if c.input_tokens <= 0 or c.output_tokens <= 0:
            problems.append(Problem(f"class '{c.name}': token counts must be positive", where))
        for lim in (c.max_ttft_ms, c.max_tpot_ms):
            if lim is not None and not (lim > 0 and math.isfinite(lim)):
                problems.append(Problem(f"class '{c.name}': latency limits must be positive, got {lim}", where))
    if problems:
        raise InputError(problems)
    return classes


def read_demand_csv(path) -> tuple[RequestClass, ...]:
    """A scenario's `demand.csv`: name, share, input_tokens, output_tokens[, max_ttft_ms, max_tpot_ms]."""
    import csv
    from pathlib import Path

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(Problem(f"cannot read: {exc}", path.name)) from exc
    out, problems = [], []
    for i, row in enumerate(rows, start=2):
        def num(key, kind, optional=False):
            text = (row.get(key) or "").strip()
            if not text and optional:
                return None
            try:
                return kind(text)
            except ValueError:
                problems.append(Problem(f"expected a number, got '{text}'", path.name, i, key))
                return None
        vals = (num("share", float), num("input_tokens", int), num("output_tokens", int),
                num("max_ttft_ms", float, True), num("max_tpot_ms", float, True))
        if None in vals[:3]:
            continue
        out.append(RequestClass((row.get("name") or f"class{i - 1}").strip(), *vals))
    if problems:
        raise InputError(problems)
    return check_mix(tuple(out), path.name)


def class_scenario(scenario: Scenario, cls: RequestClass) -> Scenario:
    """The scenario serving one class: its lengths, and its latency limits where it sets them."""
    w = scenario.workload
    st = scenario.settings
    return replace(scenario, workload=Workload(cls.input_tokens, cls.output_tokens, w.concurrency, w.token_basis),
                   settings=replace(st, max_ttft_ms=cls.max_ttft_ms if cls.max_ttft_ms is not None else st.max_ttft_ms,
                                    max_tpot_ms=cls.max_tpot_ms if cls.max_tpot_ms is not None else st.max_tpot_ms),
                   name=f"{scenario.name}/{cls.name}")


def class_demands(scenario: Scenario, classes: tuple[RequestClass, ...], demand: float) -> list[float]:
    """Split a demand D (billable tokens/s) by request shares: class q serves a share s_q of the requests,
    each b_q billable tokens, so D_q = D s_q b_q / sum_p s_p b_p."""
    def billable(c):
        return c.input_tokens + c.output_tokens if scenario.workload.token_basis == "total" else c.output_tokens
    weights = [c.share * billable(c) for c in classes]
    total = sum(weights)
    return [demand * w / total for w in weights]


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class ReplicaGroup:
    """`count` identical replicas; the figures are one replica's."""

    count: int
    tokens_per_s: float  # billable tokens/s of one replica
    cost_usd_per_hour: float
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    stages: tuple[Stage, ...]
    plan: Plan
    request_class: str = ""

    @property
    def num_gpus(self) -> int:
        return sum(s.tp for s in self.stages)


@dataclass(frozen=True)
class FleetPlan:
    status: str  # optimal | time_limit
    proven_optimal: bool
    gap: float  # relative, on $/hour
    demand_tokens_per_s: float
    groups: tuple[ReplicaGroup, ...]
    how: str
    seconds: float
    catalogue_size: int
    classes: tuple[tuple[str, float], ...] = ()  # (class, its demand) for a mix
    gpu_rows: tuple[tuple[str, ...], ...] = ()  # gpus.csv rows: gpu_id, gpu_type, node, group, replica, stage, layers

    @property
    def tokens_per_s(self) -> float:
        return sum(g.count * g.tokens_per_s for g in self.groups)

    @property
    def cost_usd_per_hour(self) -> float:
        return sum(g.count * g.cost_usd_per_hour for g in self.groups)

    @property
    def usd_per_million_tokens(self) -> float:
        """$/hour over the tokens the fleet can serve (its capacity, not the demand)."""
        t = self.tokens_per_s
        return usd_per_million_tokens(self.cost_usd_per_hour, t) if t > 0 else 0.0

    @property
    def num_replicas(self) -> int:
        return sum(g.count for g in self.groups)

    def gpus_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            for s in g.stages:
                out[s.gpu_type] = out.get(s.gpu_type, 0) + g.count * s.tp
        return out


class DemandInfeasibleError(InfeasibleError):
    """The pool cannot serve the demand; `max_tokens_per_s` is the most it can (0 if no replica fits)."""

    def __init__(self, demand: float, max_tokens_per_s: float, detail: str = ""):
        self.demand = demand
        self.max_tokens_per_s = max_tokens_per_s
        super().__init__(f"The pool cannot serve {demand:,.0f} tokens/s.",
                         [f"the most the pool can serve is {max_tokens_per_s:,.1f} tokens/s" + detail],
                         ["lower the demand, add GPUs, or relax the latency limits"])


# ------------------------------------------------------------------ solving
class Fleet:
    """One scenario (and request mix): its replica pricers and the column-generation master, reused across
    demands, budgets and prices (the columns found stay valid; only the proof is redone per question)."""

    def __init__(self, scenario: Scenario, mix: tuple[RequestClass, ...] | None = None, cancel=None,
                 catalogues: list[list[LevelPricer]] | None = None):
        """`catalogues`: the per-class level pricers built before for this scenario and mix (they do not
        depend on prices or demands), e.g. by an earlier Fleet's `catalogues`."""
        t0 = time.perf_counter()
        self.scenario = scenario
        self.mix = mix
        self.cancel = cancel
        self.scenarios = [class_scenario(scenario, c) for c in mix] if mix else [scenario]
        pool = scenario.pool
        self.types = pool.types
        counts = tuple(pool.entry(g).count for g in self.types)
        if catalogues is None:
            catalogues = []
            for sc in self.scenarios:
                ttft = sc.settings.max_ttft_ms
                catalogues.append(level_pricers(list(build_candidates(sc).options), self.types, counts,
                                                sc.model.num_layers, None if ttft is None else ttft / 1e3))
        self.catalogues = catalogues
        self.betas = [sc.workload.basis_fraction for sc in self.scenarios]
        self.base_prices = {g: pool.entry(g).spec.price_usd_per_hour for g in self.types}
        self.prices = dict(self.base_prices)
        self.master = Master(catalogues, self.betas, self.demands(1.0), self.types, counts,
                             [self.prices[g] for g in self.types], scenario.settings.threads)
        self.build_seconds = time.perf_counter() - t0
        self._capacity: dict[frozenset | None, tuple[float, str, float]] = {}

    def set_prices(self, prices: dict[str, float]) -> None:
        """Re-price GPU types ($/GPU-hour; the others keep theirs). Replicas do not depend on prices, so the
        columns found so far stay; every solve proves its optimum at the prices it is asked at."""
        self.prices.update(prices)
        self.master.set_prices([self.prices[g] for g in self.types])
        # capacity does not depend on prices; a budgeted max_demand is not cached

    @property
    def catalogue_size(self) -> int:
        """Replica columns generated so far (across every question asked)."""
        return len(self.master.cols)

    def demands(self, demand: float) -> list[float]:
        if not self.mix:
            return [demand]
        return class_demands(self.scenario, self.mix, demand)

    def capacity(self, time_limit: float | None = None, types: set[int] | None = None) -> tuple[float, str, float]:
        """The largest demand D the pool (or only `types`) can serve with the mix's proportions: (D, status, gap)."""
        key = None if types is None else frozenset(types)
        if key not in self._capacity:
            self._capacity[key] = self.max_demand(None, time_limit, types)
        return self._capacity[key]

    def max_demand(self, budget: float | None, time_limit: float | None = None,
                   types: set[int] | None = None) -> tuple[float, str, float]:
        """The largest demand D servable at cost <= budget (None: any cost): (D, status, gap); an unproven
        run reports its LP bound (an upper bound on D) as the value, as the old MILP reported HiGHS's bound.

        One column lambda: maximise lambda subject to every class's row >= lambda f_q (f_q its fraction of
        the demand), the GPU rows and the budget row (fleet_master)."""
        tl = time_limit or self.scenario.settings.time_limit_s
        m = self.master
        m.allow(types)
        m.ask_capacity(budget)
        res = m.optimise(tl, self.cancel)
        value = res.objective if res.proven else res.lp_bound
        return max(0.0, value), res.status, res.gap

    def solve(self, demand: float, time_limit: float | None = None, types: set[int] | None = None) -> FleetPlan:
        """The minimum-cost fleet serving `demand` billable tokens/s; DemandInfeasibleError if the pool
        cannot. `types`: only replicas using these pool types (indices), for the single-type fleets."""
        if not (demand >= 0 and math.isfinite(demand)):
            raise InputError(Problem(f"demand must be a non-negative number of tokens/s, got {demand}", "--demand"))
        t0 = time.perf_counter()
        tl = time_limit or self.scenario.settings.time_limit_s
        m = self.master
        key = None if types is None else frozenset(types)
        if key in self._capacity:
            self._check_capacity(demand, types, tl)
        m.allow(types)
        demands = self.demands(demand)
        m.ask_cost(demands, shortfall=True)
        res = m.optimise(tl, self.cancel)
        if m.shortfall() > 1e-9 * (demand + 1):
            # some demand is left unserved: either the pool cannot serve it, or serving it costs more than the
            # shortfall's price; the capacity decides, and its columns make the problem without shortfall
            # feasible
            cap = self._check_capacity(demand, types, tl)
            m.allow(types)
            m.ask_cost(self.demands(min(demand, cap)), shortfall=False)
            res = m.optimise(max(tl - (time.perf_counter() - t0), 0.01), self.cancel)
        return self._fleet(demand, res, time.perf_counter() - t0)

    def _check_capacity(self, demand: float, types: set[int] | None, tl: float) -> float:
        cap, cap_status, _ = self.capacity(tl, types)
        if demand > cap * (1 + 1e-9) + 1e-9:
            if types is not None:
                raise DemandInfeasibleError(demand, cap, " with these GPU types")
            detail = "" if cap_status == "optimal" else f" (an upper bound: the capacity solve stopped at {cap_status})"
            raise DemandInfeasibleError(demand, cap, detail)
        return cap

    def _fleet(self, demand: float, res: MasterResult, seconds: float) -> FleetPlan:
        m = self.master
        groups = []
        for j, k in res.y.items():
            q, r = m.replica(j)
            sc = self.scenarios[q]
            plan = make_plan(sc, list(r.options))
            cost = sum(n * self.prices[g] for n, g in zip(r.gpus, self.types))
            groups.append(ReplicaGroup(k, plan.billable_tokens_per_s, cost, plan.concurrency,
                                       plan.ttft_s * 1e3, plan.tpot_s * 1e3, plan.stages, plan,
                                       self.mix[q].name if self.mix else ""))
        groups.sort(key=lambda g: (g.request_class, -g.count * g.tokens_per_s))
        link = any(g.plan.link_bound for g in groups)
        proven = res.proven and not link
        rounds = f"{res.rounds} LP round{'' if res.rounds == 1 else 's'}"
        how = (f"column generation: {rounds} priced exactly over every level and stage count, "
               f"{res.columns} replica columns, LP bound ${res.lp_bound:,.4f}/h" +
               (f", {res.enumerated} more replicas of small reduced cost enumerated for the proof" if res.enumerated else "")
               + "; " + ("proven minimum $/hour" if proven else f"status {res.status}, gap {res.gap:.3g}; not proven optimal"))
        if link:
            how += " (a stage-to-stage link binds in some replica: links are checked after the solve)"
        classes = tuple(zip([c.name for c in self.mix], self.demands(demand))) if self.mix else ()
        return FleetPlan(res.status if res.status != "optimal" or not link else "optimal", proven, res.gap, demand,
                         tuple(groups), how, seconds, res.columns, classes, gpu_rows(self.scenario, groups))


def gpu_rows(scenario: Scenario, groups: list[ReplicaGroup]) -> tuple[tuple[str, ...], ...]:
    """Which physical GPU serves which replica and layers: every stage of every replica gets tp GPUs of its
    type inside one node (first-fit decreasing over the whole fleet, GPUs numbered gpu_0.. in pool order)."""
    items = []  # (group index, replica number, stage)
    for gi, g in enumerate(groups, start=1):
        for k in range(1, g.count + 1):
            for s in g.stages:
                items.append((gi, k, s))
    if not items:
        return ()
    from .candidates import Option  # only the fields _assign_gpus reads: gpu_type and tp

    stand_ins = [Option(s.num_layers, "middle", s.gpu_type, s.tp, None, 0.0, 0.0, 0.0, 0.0, "") for _, _, s in items]
    placed = _assign_gpus(scenario, stand_ins)
    rows = []
    for (gi, k, s), (ids, node) in zip(items, placed):
        for gid in ids:
            rows.append((gid, s.gpu_type, node, str(gi), f"{gi}.{k}", str(s.index), f"{s.first_layer}-{s.last_layer}"))
    return tuple(sorted(rows, key=lambda r: int(r[0].split("_")[1])))


def solve_fleet(scenario: Scenario, demand: float, mix: tuple[RequestClass, ...] | None = None,
                time_limit: float | None = None, cancel=None) -> FleetPlan:
    """The minimum-$/hour fleet for `demand` billable tokens/s (see the module docstring)."""
    return Fleet(scenario, mix, cancel).solve(demand, time_limit)
