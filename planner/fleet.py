"""Fleet mode: meet a demand (tokens/s) with replicas at the proven minimum $/hour.

A fleet is a multiset of replicas, each a pipeline as `solve` builds it, together within the pool's GPU
counts. The replica catalogue (`fleet_replicas`) holds every Pareto-minimal replica (rate theta_r, GPUs per
type n_r, cost c_r); it is exact because a dominated replica can be swapped for its dominator in any fleet.
The fleet MILP over the catalogue, for request classes q (one class unless a mix is given):

    y_{q,r} in Z>=0                                     replicas of catalogue entry r serving class q
    sum_r beta_q theta_{q,r} y_{q,r} >= D_q             demand, per class (beta_q: billable share)
    sum_{q,r} n_{q,r,g} y_{q,r} <= N_g                  GPUs, per type, shared by every class
    minimise sum_{q,r} c_{q,r} y_{q,r}                  $/hour

Every solution is a fleet (each y a number of identical replicas) and every fleet maps to a solution of
equal or lower cost (dominated replicas swapped), so the MILP's optimum is the minimum-cost fleet. This is
MODEL-NOTES section 7's flow form with the flow already decomposed into paths: a level theta_k's flow of
m_k units is m_k replicas, each a column here, and dominated levels are pruned by the Pareto filter.

The figures: theta is the replica's slowest stage (input + output tokens/s); demand is on the scenario's
token basis (beta = 1 for `total`, output/(input+output) for `output`). Status, gap (on $/hour) and
"proven optimal" come from HiGHS; a time limit is reported as such.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import highspy

from .domain import Scenario, Workload
from .errors import InfeasibleError, InputError, Problem, SolverError
from .fleet_replicas import CLI_ADVICE, Catalogue, Replica, build_catalogue
from .highs_direct import _STATUS, new_highs
from .plan import Plan, Stage, _assign_gpus, make_plan

log = logging.getLogger(__name__)
EXACT_GAP = 1e-9
INF = highspy.kHighsInf


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
        return self.cost_usd_per_hour / (3600 * t) * 1e6 if t > 0 else 0.0

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


# ------------------------------------------------------------------ the MILP (one function per family)
class FleetModel:
    """The fleet MILP over one catalogue per class, loaded into HiGHS once; the demands are row bounds."""

    def __init__(self, scenario: Scenario, catalogues: list[Catalogue], betas: list[float], threads: int = 1):
        self.scenario = scenario
        self.types = scenario.pool.types
        self.catalogues = catalogues
        self.betas = betas
        self.cols: list[tuple[int, Replica]] = [(q, r) for q, cat in enumerate(catalogues) for r in cat.replicas]
        self.prices = [scenario.pool.entry(g).spec.price_usd_per_hour for g in self.types]
        self.h = new_highs()
        self.h.setOptionValue("threads", threads)
        add_replica_counts(self)
        add_demand_rows(self)
        add_gpu_rows(self)
        add_budget_row(self)
        add_cost_objective(self)

    def costs(self) -> list[float]:
        """$/hour of each column at the current prices."""
        return [sum(n * p for n, p in zip(r.gpus, self.prices)) for _, r in self.cols]

    def rate(self, j: int) -> float:
        q, r = self.cols[j]
        return self.betas[q] * r.tokens_per_s

    def set_demands(self, demands: list[float]) -> None:
        for q, d in enumerate(demands):
            self.h.changeRowBounds(self.demand_row[q], d, INF)

    def set_sense(self, minimise_cost: bool) -> None:
        self.h.changeObjectiveSense(highspy.ObjSense.kMinimize if minimise_cost else highspy.ObjSense.kMaximize)

    def run(self, time_limit: float, gap: float) -> tuple[str, float, float, float, list[int] | None]:
        """One HiGHS run: (status, objective, bound, gap, counts or None if infeasible)."""
        h = self.h
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        h.setOptionValue("mip_rel_gap", float(gap))
        if not self.cols:
            return "infeasible", math.nan, math.nan, math.nan, None
        run_status = h.run()
        model_status = h.getModelStatus()
        status = _STATUS.get(model_status)
        if run_status == highspy.HighsStatus.kError or status is None:
            raise SolverError(f"HiGHS returned status '{h.modelStatusToString(model_status)}'",
                              h.modelStatusToString(model_status))
        if status == "infeasible":
            return status, math.nan, math.nan, math.nan, None
        info = h.getInfo()
        if info.primal_solution_status != 2:
            raise SolverError(f"HiGHS stopped ({status}) before finding any fleet; raise the time limit", status)
        values = [int(round(v)) for v in h.getSolution().col_value]
        achieved = float(info.mip_gap)
        if not math.isfinite(achieved) or achieved > 1e30:
            achieved = 0.0 if status == "optimal" else math.inf
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else math.nan
        return status, info.objective_function_value, bound, achieved, values


def add_replica_counts(fm: FleetModel) -> None:
    """Integer y_j >= 0: copies of catalogue column j (a replica r serving class q), with
    y_j <= min_g floor(N_g / n_{j,g}) (no more copies than the pool holds)."""
    counts = [fm.scenario.pool.entry(g).count for g in fm.types]
    ub = [min(c // n for c, n in zip(counts, r.gpus) if n > 0) for _, r in fm.cols]
    if fm.cols:
        fm.h.addVars(len(fm.cols), [0.0] * len(fm.cols), [float(u) for u in ub])
        fm.h.changeColsIntegrality(len(fm.cols), list(range(len(fm.cols))),
                                   [highspy.HighsVarType.kInteger] * len(fm.cols))
    fm.ub = ub


def add_demand_rows(fm: FleetModel) -> None:
    """Per class q: sum_{j of q} beta_q theta_j y_j >= D_q (the bound D_q is set per solve)."""
    fm.demand_row = []
    for q in range(len(fm.catalogues)):
        idx = [j for j, (qq, _) in enumerate(fm.cols) if qq == q]
        fm.demand_row.append(fm.h.getNumRow())
        fm.h.addRow(0.0, INF, len(idx), idx, [fm.rate(j) for j in idx])


def add_gpu_rows(fm: FleetModel) -> None:
    """Per GPU type g: sum_j n_{j,g} y_j <= N_g, shared by every class's replicas."""
    for gi, g in enumerate(fm.types):
        idx = [j for j, (_, r) in enumerate(fm.cols) if r.gpus[gi] > 0]
        if idx:
            fm.h.addRow(-INF, float(fm.scenario.pool.entry(g).count), len(idx), idx,
                        [float(fm.cols[j][1].gpus[gi]) for j in idx])


def add_budget_row(fm: FleetModel) -> None:
    """sum_j c_j y_j <= B: inactive (B = inf) except when the demand curve asks for the most tokens/s a
    given $/hour buys."""
    fm.budget_row = fm.h.getNumRow()
    n = len(fm.cols)
    fm.h.addRow(-INF, INF, n, list(range(n)), [r.cost_usd_per_hour for _, r in fm.cols])


def add_cost_objective(fm: FleetModel) -> None:
    """minimise sum_j c_j y_j ($/hour); `max_capacity` swaps in the rates for the pool's capacity."""
    if fm.cols:
        fm.h.changeColsCost(len(fm.cols), list(range(len(fm.cols))), [r.cost_usd_per_hour for _, r in fm.cols])


# ------------------------------------------------------------------ solving
class Fleet:
    """One scenario (and request mix) with its catalogues and MILP, reused across demands."""

    def __init__(self, scenario: Scenario, mix: tuple[RequestClass, ...] | None = None, cancel=None,
                 catalogues: list[Catalogue] | None = None, allow_large: bool = False,
                 advice: tuple[str, str] = CLI_ADVICE):
        """`catalogues`: built before for this scenario and mix (they do not depend on prices).
        `allow_large`, `advice`: the catalogue's size guard (fleet_replicas.build_catalogue), per class."""
        t0 = time.perf_counter()
        self.scenario = scenario
        self.mix = mix
        if mix:
            self.scenarios = [class_scenario(scenario, c) for c in mix]
        else:
            self.scenarios = [scenario]
        self.catalogues = catalogues or [build_catalogue(sc, cancel, allow_large, advice)
                                          for sc in self.scenarios]
        self.betas = [sc.workload.basis_fraction for sc in self.scenarios]
        self.model = FleetModel(scenario, self.catalogues, self.betas, scenario.settings.threads)
        self.build_seconds = time.perf_counter() - t0
        self._capacity: tuple[float, str, float] | None = None

    def set_prices(self, prices: dict[str, float]) -> None:
        """Re-price GPU types ($/GPU-hour; the others keep theirs). The catalogue does not depend on prices
        (dominance compares rates and GPUs), so the MILP stays exact with only its cost coefficients changed."""
        fm = self.model
        base = {g: self.scenario.pool.entry(g).spec.price_usd_per_hour for g in fm.types}
        base.update(prices)
        per_type = [base[g] for g in fm.types]
        costs = [sum(n * p for n, p in zip(r.gpus, per_type)) for _, r in fm.cols]
        fm.prices = per_type
        if costs:
            fm.h.changeColsCost(len(costs), list(range(len(costs))), costs)
            for j, c in enumerate(costs):
                fm.h.changeCoeff(fm.budget_row, j, c)
        self._capacity = None

    @property
    def catalogue_size(self) -> int:
        return len(self.model.cols)

    def demands(self, demand: float) -> list[float]:
        if not self.mix:
            return [demand]
        return class_demands(self.scenario, self.mix, demand)

    def capacity(self, time_limit: float | None = None) -> tuple[float, str, float]:
        """The largest demand D the pool can serve (with the mix's proportions): (D, status, gap)."""
        if self._capacity is None:
            self._capacity = self.max_demand(None, time_limit)
        return self._capacity

    def max_demand(self, budget: float | None, time_limit: float | None = None,
                   types: set[int] | None = None) -> tuple[float, str, float]:
        """The largest demand D servable at cost <= budget (None: any cost): (D, status, gap); a time-limited
        run reports HiGHS's proven upper bound.

        One class: maximise sum_j beta theta_j y_j under the GPU rows (and the budget row). A mix: maximise
        D subject to every class's row >= D w_q (w_q its fraction of the demand), one continuous column D."""
        tl = time_limit or self.scenario.settings.time_limit_s
        fm = self.model
        h = fm.h
        n = len(fm.cols)
        if n == 0:
            return 0.0, "optimal", 0.0
        fractions = self.demands(1.0)
        h.addVar(0.0, INF)
        lam = h.getNumCol() - 1
        banned = self._ban(types)
        for q, row in enumerate(fm.demand_row):
            h.changeCoeff(row, lam, -fractions[q])
            h.changeRowBounds(row, 0.0, INF)
        h.changeRowBounds(fm.budget_row, -INF, INF if budget is None else budget)
        h.changeColsCost(n + 1, list(range(n)) + [lam], [0.0] * n + [1.0])
        fm.set_sense(False)
        try:
            status, obj, bound, gap, _ = fm.run(tl, EXACT_GAP)
        finally:
            h.deleteCols(1, [lam])
            h.changeColsCost(n, list(range(n)), fm.costs())
            h.changeRowBounds(fm.budget_row, -INF, INF)
            fm.set_sense(True)
            self._unban(banned)
        if status == "infeasible":
            raise SolverError("internal: the capacity problem cannot be infeasible", status)
        value = obj if status == "optimal" else bound
        return max(0.0, value), status, gap

    def _ban(self, types: set[int] | None) -> list[int]:
        if types is None:
            return []
        fm = self.model
        banned = [j for j, (_, r) in enumerate(fm.cols) if any(n and i not in types for i, n in enumerate(r.gpus))]
        for j in banned:
            fm.h.changeColBounds(j, 0.0, 0.0)
        return banned

    def _unban(self, banned: list[int]) -> None:
        for j in banned:
            self.model.h.changeColBounds(j, 0.0, float(self.model.ub[j]))

    def solve(self, demand: float, time_limit: float | None = None, types: set[int] | None = None) -> FleetPlan:
        """The minimum-cost fleet serving `demand` billable tokens/s; DemandInfeasibleError if the pool
        cannot. `types`: only replicas using these pool types (indices), for the single-type fleets."""
        if not (demand >= 0 and math.isfinite(demand)):
            raise InputError(Problem(f"demand must be a non-negative number of tokens/s, got {demand}", "--demand"))
        t0 = time.perf_counter()
        tl = time_limit or self.scenario.settings.time_limit_s
        fm = self.model
        banned = self._ban(types)
        try:
            fm.set_demands(self.demands(demand))
            status, obj, bound, gap, y = fm.run(tl, EXACT_GAP)
        finally:
            self._unban(banned)
        if y is None:
            if types is not None:
                raise DemandInfeasibleError(demand, 0.0, " with these GPU types")
            cap, cap_status, _ = self.capacity(tl)
            detail = "" if cap_status == "optimal" else f" (an upper bound: the capacity solve stopped at {cap_status})"
            raise DemandInfeasibleError(demand, cap, detail)
        return self._fleet(demand, status, gap, y, time.perf_counter() - t0)

    def _fleet(self, demand: float, status: str, gap: float, y: list[int], seconds: float) -> FleetPlan:
        fm = self.model
        groups = []
        for j, k in enumerate(y):
            if k <= 0:
                continue
            q, r = fm.cols[j]
            sc = self.scenarios[q]
            plan = make_plan(sc, list(r.options))
            cost = sum(n * p for n, p in zip(r.gpus, fm.prices))
            groups.append(ReplicaGroup(k, plan.billable_tokens_per_s, cost, plan.concurrency,
                                       plan.ttft_s * 1e3, plan.tpot_s * 1e3, plan.stages, plan,
                                       self.mix[q].name if self.mix else ""))
        groups.sort(key=lambda g: (g.request_class, -g.count * g.tokens_per_s))
        proven = status == "optimal" and not any(g.plan.link_bound for g in groups)
        how = (f"fleet MILP over {len(fm.cols)} Pareto-minimal replicas ({', '.join(str(len(c.replicas)) for c in self.catalogues)}"
               f" per class) from an exact enumeration; " +
               ("proven minimum $/hour" if proven else f"HiGHS status {status}, gap {gap:.3g}; not proven optimal"))
        if any(g.plan.link_bound for g in groups):
            how += " (a stage-to-stage link binds in some replica: links are checked after the solve)"
        classes = tuple(zip([c.name for c in self.mix], self.demands(demand))) if self.mix else ()
        return FleetPlan(status, proven, gap, demand, tuple(groups), how, seconds, len(fm.cols), classes,
                         gpu_rows(self.scenario, groups))


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
