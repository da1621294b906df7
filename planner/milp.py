"""The placement MILP in Pyomo, solved with HiGHS (through `highs_direct`, a persistent interface).

Type-aggregated count formulation (MODEL-NOTES section 2): stage order changes neither the bottleneck
nor the cost, so a plan is chosen as integer counts n_o of each option o (size s_o, role, GPU type g_o,
TP degree t_o) at one level (microbatch and stage count, `candidates.Level`), and laid out afterwards
(first stage, middles, last stage). No per-GPU binaries and no big-M: throughput is an exact staircase
over the distinct option throughputs, set by bounds (`add_throughput_floors`).

One `LevelModel` is built per level and kept; methods change only parameters, bounds and fixings
between solves, so the persistent solver re-solves without rebuilding. For contiguous segment sizes,
`ShapeModel` is the exact shape-aggregated equivalent (see its docstring).

Components (named by kind, in the GridPath manner: SETS in capitals, Variables and Constraints
capitalised, parameters in lower case; each option and shape is indexed by a readable label such as
`first_A100_tp2_s5`, so `write_lp` gives a file a person can read):

    LevelModel                  symbol      meaning (unit)
    STAGE_OPTIONS               o           the level's options, `option_label`
    GPU_TYPES                   g           the pool's GPU types
    PIPELINE_LENGTHS            P           the level's stage counts (only when there are several)
    Stage_Count[o]              n_o         integer: stages of option o in the pipeline
    Pipeline_Length_Is[P]       z_P         binary: the pipeline has P stages
    Layer_Tiling_Constraint                 sum_o s_o n_o = L
    One_First_Stage_Constraint              sum_{o first or only} n_o = 1
    One_Last_Stage_Constraint               sum_{o last or only} n_o = 1
    GPU_Count_Constraint[g]                 sum_{o of type g} t_o n_o <= N_g
    Stage_Number_Constraint                 sum_o n_o = P (one count) or = sum_P P z_P
    One_Pipeline_Length_Constraint          sum_P z_P = 1
    KV_Fit_Constraint[o]                    n_o <= U_o sum_{P <= P_o} z_P (o's KV cache fits up to P_o stages)
    TTFT_Constraint                         sum_o (ttft_o / TTFT_max) n_o <= 1
    Cost_Usd_Per_Hour_Scaled    C           sum_o c_o n_o, in $/h times `cost_scale` (a power of two)
    budget_usd_per_hour_scaled  B           mutable parameter (NO_BUDGET when no cap)
    Budget_Constraint                       C <= B
    Minimise_Cost                           minimise C

    ShapeModel                  symbol      meaning (unit)
    SHAPE_STAGES                (h, P)      a shape h = (role, GPU type, TP) in a P-stage pipeline
    PIPELINE_LENGTHS, Pipeline_Length_Is, GPU_TYPES, Cost/budget/Budget_Constraint/Minimise_Cost: as above
    Shape_Stage_Count[h,P]      x_{h,P}     integer: stages of shape h when the pipeline has P stages
    layer_capacity[h,P]         cap_h       mutable: most layers a stage of h holds at the floor, at P stages
    Role_Count_Constraint[P,r]              sum_{h of role r} x_{h,P} = (1, 1, P-2 or 1) z_P
    Layer_Capacity_Constraint[P]            sum_h cap_h x_{h,P} >= L z_P
"""
from __future__ import annotations

import bisect
import logging
import math
import time
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from .candidates import Level, Option
from .domain import Scenario
from .errors import SolverError
from .highs_direct import PersistentHighs
from .kinds import Role
from .units import NO_BUDGET, at_least, down, exceeds, up

log = logging.getLogger(__name__)


def _lin(coefs, vars_, constant=0.0):
    return LinearExpression(constant=constant, linear_coefs=list(coefs), linear_vars=list(vars_))




def cost_scale(costs) -> float:
    """A power of two that brings the largest stage cost into [1, 2): the MILP works on scaled $/h, so that
    HiGHS's tolerances (absolute feasibility 1e-7 on the budget row, its gap tests) mean the same at any
    price level -- with prices x 1e-6 the unscaled rows sat below the tolerances and a 7.9%-off plan was
    "optimal". Multiplying by a power of two is exact in floating point, so ties between plans survive."""
    top = max((c for c in costs if c > 0), default=1.0)
    return 2.0 ** -math.floor(math.log2(top))


def _unique(labels: list[str]) -> list[str]:
    """The labels, with a position suffix on any that repeats (so every index is distinct)."""
    seen: dict[str, int] = {}
    for x in labels:
        seen[x] = seen.get(x, 0) + 1
    return [x if seen[x] == 1 else f"{x}_{i}" for i, x in enumerate(labels)]


def option_label(o: Option) -> str:
    """A readable index for option o: role, GPU type, TP degree and size (`first_A100_tp2_s5`)."""
    return f"{o.role}_{o.gpu_type}_tp{o.tp}_s{o.size}"


# ------------------------------------------------------------------ constraint families (LevelModel)
def add_stage_counts(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> list[int]:
    """STAGE_OPTIONS and the integer Stage_Count[o] = n_o >= 0: how many stages of option o the pipeline has.

    Upper bounds U_o: 1 for first/last/only roles; for middle stages
    U_o = min(floor(N_g / t_o), floor(L / s_o), P_o - 2), P_o the most stages at which o's KV cache fits.
    Returns the U_o, by position. `m.n` lists the variables by position (the solve loops use it)."""
    L = scenario.model.num_layers
    ub = []
    for o in opts:
        if o.role == Role.MIDDLE:
            ub.append(max(0, min(scenario.pool.entry(o.gpu_type).count // o.tp, L // o.size, o.max_stages - 2)))
        else:
            ub.append(1)
    labels = _unique([option_label(o) for o in opts])
    bound = dict(zip(labels, ub))
    m.STAGE_OPTIONS = pyo.Set(initialize=labels, ordered=True)
    m.Stage_Count = pyo.Var(m.STAGE_OPTIONS, domain=pyo.NonNegativeIntegers, bounds=lambda _m, o: (0, bound[o]))
    m.n = [m.Stage_Count[x] for x in labels]
    return ub


def add_tiling(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """Stages cover layers 1..L exactly once, contiguously, with the embedding first and the head last:
        sum_o s_o n_o = L;   sum_{o first or only} n_o = 1;   sum_{o last or only} n_o = 1.
    Any multiset satisfying these is laid out as first stage, middles (any order), last stage."""
    L = scenario.model.num_layers
    m.Layer_Tiling_Constraint = pyo.Constraint(expr=_lin([o.size for o in opts], m.n) == L)
    firsts = [i for i, o in enumerate(opts) if o.first]
    lasts = [i for i, o in enumerate(opts) if o.last]
    m.One_First_Stage_Constraint = pyo.Constraint(expr=_lin([1] * len(firsts), [m.n[i] for i in firsts]) == 1)
    m.One_Last_Stage_Constraint = pyo.Constraint(expr=_lin([1] * len(lasts), [m.n[i] for i in lasts]) == 1)


def add_gpu_counts(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """No type is used beyond its count: sum_{o of type g} t_o n_o <= N_g for every type g."""
    def rule(_m, g):
        idx = [i for i, o in enumerate(opts) if o.gpu_type == g]
        if not idx:
            return pyo.Constraint.Skip
        return _lin([opts[i].tp for i in idx], [m.n[i] for i in idx]) <= scenario.pool.entry(g).count
    m.GPU_TYPES = pyo.Set(initialize=list(scenario.pool.types), ordered=True)
    m.GPU_Count_Constraint = pyo.Constraint(m.GPU_TYPES, rule=rule)


def add_stage_number(m: pyo.ConcreteModel, opts: list[Option], level: Level, ub: list[int]) -> None:
    """The pipeline has P stages, P one of the level's stage counts, and every stage's KV cache for the
    level's concurrency at P fits (the options' `max_stages`).

    One count {P}:  sum_o n_o = P  (options that do not fit at P are not in the model).
    Several counts: z_P in {0, 1} with sum_P z_P = 1 and sum_o n_o = sum_P P z_P; with w_p = sum_{P <= p} z_P
    ("at most p stages"), an option that fits only up to P_o < max P obeys n_o <= U_o w_{P_o}."""
    counts = level.stage_counts
    if len(counts) == 1:
        m.Stage_Number_Constraint = pyo.Constraint(expr=_lin([1] * len(opts), m.n) == counts[0])
        m.z = []
        return
    m.PIPELINE_LENGTHS = pyo.Set(initialize=list(counts), ordered=True)
    m.Pipeline_Length_Is = pyo.Var(m.PIPELINE_LENGTHS, domain=pyo.Binary)
    m.z = [m.Pipeline_Length_Is[p] for p in counts]
    z = dict(zip(counts, m.z))
    m.One_Pipeline_Length_Constraint = pyo.Constraint(expr=_lin([1] * len(counts), m.z) == 1)
    m.Stage_Number_Constraint = pyo.Constraint(expr=_lin([1] * len(opts) + [-p for p in counts], m.n + m.z) == 0)
    top = counts[-1]
    labels = list(m.STAGE_OPTIONS)
    rows = {labels[i]: i for i, o in enumerate(opts) if o.role != "only" and o.max_stages < top}

    def fit_rule(_m, label):
        i = rows[label]
        below = [p for p in counts if p <= opts[i].max_stages]
        return _lin([1] + [-ub[i]] * len(below), [m.n[i]] + [z[p] for p in below]) <= 0
    m.KV_Fit_Constraint = pyo.Constraint(pyo.Set(initialize=list(rows), ordered=True), rule=fit_rule)


def add_throughput_floors(m: pyo.ConcreteModel, opts: list[Option]) -> list[float]:
    """Throughput floors by bounds (no big-M, no extra variables).

    A pipeline's throughput is its slowest stage's, T = min over used options of theta_o. So "T >= theta"
    holds exactly when no option with theta_o < theta is used: the floor sets U_o = 0 for those options
    (`LevelModel.set_floor`). Every method asks for the cheapest plan at a floor (min cost, threshold
    sweep, bisection for max throughput), so T itself never enters the objective. The distinct
    option throughputs theta_0 < ... < theta_M are the only floors worth setting; returned sorted."""
    return sorted({o.tokens_per_s for o in opts})


def add_latency(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """Time to first token: a request waits for its step and is prefilled at every stage in turn, so with
    ttft_o each stage's share (`perf.serving_latency`)
        sum_o ttft_o n_o <= TTFT_max.
    (The TPOT SLO, P x the slowest step <= TPOT_max, is per option: it lowers the options' `max_stages`
    and needs no row.)"""
    limit = scenario.settings.max_ttft_ms
    if limit is not None:
        # divided by the limit: HiGHS's feasibility tolerance (1e-7, absolute) is then relative to it
        m.TTFT_Constraint = pyo.Constraint(expr=_lin([o.ttft_s * 1e3 / limit for o in opts], m.n) <= 1)


def add_budget(m: pyo.ConcreteModel, costs: list[float], variables: list, scale: float = 1.0) -> None:
    """Hourly cost cap: C = sum_k c_k x_k <= B, c_k a stage's (or shape's) t * price_g in $/h; B is a
    mutable parameter (NO_BUDGET = no cap). C and B are in $/h x `scale` (`cost_scale`)."""
    m.Cost_Usd_Per_Hour_Scaled = pyo.Expression(expr=_lin([c * scale for c in costs], variables))
    m.budget_usd_per_hour_scaled = pyo.Param(mutable=True, initialize=NO_BUDGET)
    m.Budget_Constraint = pyo.Constraint(expr=m.Cost_Usd_Per_Hour_Scaled <= m.budget_usd_per_hour_scaled)


def add_objective(m: pyo.ConcreteModel) -> None:
    """minimise C: every question is asked as the cheapest plan under a floor and a budget."""
    m.Minimise_Cost = pyo.Objective(expr=m.Cost_Usd_Per_Hour_Scaled, sense=pyo.minimize)


def write_lp(model, path) -> None:
    """Write a built model (`LevelModel` or `ShapeModel`) to `path` (ending in .lp) as an LP file with its
    component names, for a person to read (`symbolic_solver_labels`)."""
    if not str(path).endswith(".lp"):
        raise ValueError(f"an LP file name ends in .lp: {path}")
    model.m.write(str(path), io_options={"symbolic_solver_labels": True})


# ------------------------------------------------------------------ model and solve wrapper
class StoppedWithoutPlan(SolverError):
    """A limit stopped HiGHS before it found any plan; `bound` is its best lower bound on the cost ($/h)."""

    def __init__(self, message: str, status: str, bound: float):
        super().__init__(message, status)
        self.bound = bound


@dataclass(frozen=True)
class SolveOutcome:
    status: str  # optimal | time_limit | ...
    objective: float
    bound: float
    gap: float
    seconds: float
    options: tuple[Option, ...]  # the chosen stages (unordered)


class _Solvable:
    """What `attach_solver` gives a built model: its HiGHS instance, the solution of the last successful
    run, and the time bookkeeping."""

    backend: PersistentHighs
    values: list[float] | None

    def backend_value(self, var) -> float:
        """`var`'s value in the last successful solve (never read after a failed one: run_highs raises)."""
        return self.values[self.backend.col(var)]


class LevelModel(_Solvable):
    """The MILP for one level, built once and re-solved with changed parameters."""

    def __init__(self, scenario: Scenario, level: Level, opts: list[Option]):
        t0 = time.perf_counter()
        self.scenario = scenario
        self.level = level
        self.opts = opts
        self.scale = cost_scale(o.cost_usd_per_hour for o in opts)
        m = pyo.ConcreteModel(name=f"placement-{level}; costs in $/h x {self.scale:g}")
        self.ub = add_stage_counts(m, opts, scenario)
        add_tiling(m, opts, scenario)
        add_gpu_counts(m, opts, scenario)
        add_stage_number(m, opts, level, self.ub)
        add_latency(m, opts, scenario)
        self.thetas = add_throughput_floors(m, opts)
        add_budget(m, [o.cost_usd_per_hour for o in opts], m.n, self.scale)
        add_objective(m)
        self.m = m
        self._ub = list(self.ub)
        attach_solver(self, scenario.settings.threads, t0)

    @property
    def size(self) -> dict[str, int]:
        m = self.m
        binaries = len(m.z) + sum(1 for u in self.ub if u == 1)
        rows = sum(1 for c in m.component_data_objects(pyo.Constraint, active=True))
        return {"options": len(self.opts), "integers": len(m.n), "binaries": binaries,
                "variables": len(m.n) + len(m.z), "rows": rows}

    # --- knobs

    def set_budget(self, budget: float | None) -> None:
        self.m.budget_usd_per_hour_scaled.value = NO_BUDGET if budget is None else budget * self.scale

    def set_floor(self, floor: float | None, strict: bool = False) -> None:
        """Allow only options with theta_o >= floor (> floor if strict); None allows all.
        Only changed bounds are touched, so the persistent solver sees a few bound changes."""
        m = self.m
        for i, o in enumerate(self.opts):
            ok = floor is None or (o.tokens_per_s > floor if strict else at_least(o.tokens_per_s, floor))
            ub = self.ub[i] if ok else 0
            if self._ub[i] != ub:
                m.n[i].setub(ub)
                self.backend.set_col_bounds(m.n[i])
                self._ub[i] = ub

    def floor_feasible(self, floor: float, strict: bool = False) -> bool:
        """Some first and some last option meet the floor (else no plan can)."""
        def meets(o: Option) -> bool:
            return exceeds(o.tokens_per_s, floor) if strict else at_least(o.tokens_per_s, floor)
        return any(o.first and meets(o) for o in self.opts) and any(o.last and meets(o) for o in self.opts)

    def solve(self, time_limit: float, gap: float) -> SolveOutcome | None:
        """Solve; None if infeasible. Raises SolverError on errors; never reads values after a failure."""
        run = run_highs(self, time_limit, gap, self.scale)
        if run is None:
            return None
        chosen: list[Option] = []
        for i, var in enumerate(self.m.n):
            k = int(round(self.backend_value(var)))
            chosen.extend([self.opts[i]] * k)
        return SolveOutcome(*run, tuple(chosen))


def attach_solver(model, threads: int, t0: float, **options) -> None:
    """Hand a built model to HiGHS and start the bookkeeping `run_highs` keeps (t0: build start, so the
    build time includes the hand-over)."""
    model.backend = PersistentHighs(model.m, {"threads": threads, **options})
    model.values = None
    model.build_seconds = time.perf_counter() - t0
    model.solve_seconds = 0.0
    model.num_solves = 0


def run_highs(model, time_limit: float, gap: float, scale: float = 1.0) -> tuple | None:
    """The one solve wrapper: HiGHS status -> (status, objective, bound, gap, seconds) with the solution
    kept in model.values, None if infeasible, SolverError otherwise (no values are kept after a failure).
    The objective and bound are divided by `scale` (the model's cost scale) back into $/h.
    `model` has .m (the Pyomo model), .backend (its PersistentHighs) and the bookkeeping fields; its
    knobs have pushed changed variable bounds, and rows holding mutable parameters are refreshed here."""
    model.values = None
    model.backend.refresh_rows()
    res = model.backend.run(time_limit, gap)
    model.solve_seconds += res.seconds
    model.num_solves += 1
    if res.status == "infeasible":
        return None
    if res.values is None:
        if res.status == "optimal":
            return None
        raise StoppedWithoutPlan(f"HiGHS stopped ({res.status}) before finding any plan; raise the time limit",
                                 res.status, res.bound / scale if math.isfinite(res.bound) else 0.0)
    model.values = res.values
    return res.status, res.objective / scale, res.bound / scale, res.gap, res.seconds


def warm_up() -> float:
    """Build and solve a two-variable model once, so that this process has imported and initialised
    everything a solve touches (highspy, Pyomo's expression and representation machinery, all loaded
    lazily). Worker processes forked afterwards start warm. Returns the seconds it took."""
    t0 = time.perf_counter()
    tiny = _Solvable()
    m = pyo.ConcreteModel(name="warm-up")
    m.K = pyo.RangeSet(0, 1)
    m.x = pyo.Var(m.K, domain=pyo.NonNegativeIntegers, bounds=(0, 2))
    m.cap = pyo.Param(m.K, mutable=True, initialize=1)
    m.cover = pyo.Constraint(expr=sum(m.cap[k] * m.x[k] for k in m.K) >= 1)
    m.C = pyo.Expression(expr=_lin([1.0, 2.0], [m.x[0], m.x[1]]))
    m.budget = pyo.Param(mutable=True, initialize=NO_BUDGET)
    m.budget_row = pyo.Constraint(expr=m.C <= m.budget)
    m.obj = pyo.Objective(expr=m.C, sense=pyo.minimize)
    tiny.m = m
    attach_solver(tiny, 1, t0)
    for budget in (10.0, 0.5):  # a solve, then a re-solve after a change (infeasible)
        m.budget.value = budget
        run_highs(tiny, 10.0, 0.0)
    return time.perf_counter() - t0


# ------------------------------------------------------------------ shape-aggregated model (contiguous sizes)
@dataclass
class _Shape:
    """A stage shape (role, GPU type, TP) and its options by size a, a+1, ...: rate and most stages that fit."""

    role: str
    gpu_type: str
    tp: int
    cost: float
    first_size: int  # a, or L for the only-stage shape
    options: list[Option]  # options[k] has size first_size + k
    neg_rate: list[float]  # -theta by size, non-decreasing (rates fall as a stage holds more layers)
    max_stages: list[int]  # by size, non-increasing

    def cap(self, floor: float | None, strict: bool, stages: int, a: int) -> int:
        """Most layers a stage of this shape holds with rate >= floor (> if strict) in a pipeline of
        `stages` stages; 0 if none (with the rates and memory monotone in the size, every size from a up
        to the cap is then valid too)."""
        k = len(self.options)
        if floor is not None:
            k = (bisect.bisect_left(self.neg_rate, -up(floor)) if strict
                 else bisect.bisect_right(self.neg_rate, -down(floor)))
        lo, hi = 0, k  # leading sizes whose KV cache fits at `stages` (max_stages non-increasing)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.max_stages[mid] >= stages:
                lo = mid + 1
            else:
                hi = mid
        return self.first_size + lo - 1 if lo else 0


def shape_table(options: list[Option], sizes: tuple[int, ...]) -> dict[tuple[str, str, int], _Shape] | None:
    """Group a level's feasible options (dominated ones included) by shape; None unless the sizes are
    contiguous (a..L) and every shape's valid sizes form a prefix a..s_max along which its rate does not
    rise and its stage limit does not grow -- the conditions under which `ShapeModel` is exact."""
    a, top = min(sizes), max(sizes)
    if tuple(sizes) != tuple(range(a, top + 1)):
        return None
    grouped: dict[tuple[str, str, int], dict[int, Option]] = {}
    for o in options:
        if o.feasible:
            grouped.setdefault((o.role, o.gpu_type, o.tp), {})[o.size] = o
    table = {}
    for key, by_size in grouped.items():
        start = top if key[0] == "only" else a
        run = []
        s = start
        while s in by_size:
            run.append(by_size[s])
            s += 1
        if len(run) != len(by_size):
            return None  # a hole: some size is valid beyond an invalid one
        rates = [o.tokens_per_s for o in run]
        fits = [o.max_stages for o in run]
        if any(x < y for x, y in zip(rates, rates[1:])) or any(x < y for x, y in zip(fits, fits[1:])):
            return None
        table[key] = _Shape(key[0], key[1], key[2], run[0].cost_usd_per_hour, start, run, [-r for r in rates], fits)
    return table


# ------------------------------------------------------------------ constraint families (ShapeModel)
def shape_label(h: "_Shape", p: int) -> str:
    """A readable index for shape h in a p-stage pipeline (`middle_A100_tp2_P4`)."""
    return f"{h.role}_{h.gpu_type}_tp{h.tp}_P{p}"


def add_shape_stage_counts(m: pyo.ConcreteModel, hp: list[tuple["_Shape", int]], ub: list[int], a: int) -> None:
    """SHAPE_STAGES, the integer Shape_Stage_Count[h,P] = x_{h,P} in [0, U_{h,P}] (1 for first/last/only,
    min(P - 2, floor(N_g / t_h)) for middle) and the mutable layer_capacity[h,P] = cap_h(theta, P), the most
    layers a stage of h holds at rate >= theta in a P-stage pipeline (no floor at build). `m.x` and `m.cap`
    list them by position."""
    labels = _unique([shape_label(h, p) for h, p in hp])
    bound = dict(zip(labels, ub))
    cap0 = {x: h.cap(None, False, p, a) for x, (h, p) in zip(labels, hp)}
    m.SHAPE_STAGES = pyo.Set(initialize=labels, ordered=True)
    m.Shape_Stage_Count = pyo.Var(m.SHAPE_STAGES, domain=pyo.NonNegativeIntegers, bounds=lambda _m, k: (0, bound[k]))
    m.layer_capacity = pyo.Param(m.SHAPE_STAGES, mutable=True, initialize=lambda _m, k: cap0[k])
    m.x = [m.Shape_Stage_Count[x] for x in labels]
    m.cap = [m.layer_capacity[x] for x in labels]


def add_pipeline_length(m: pyo.ConcreteModel, level: Level) -> None:
    """PIPELINE_LENGTHS and the binary Pipeline_Length_Is[P] = z_P: one stage count is chosen,
    sum_P z_P = 1 (with one count, z_P = 1 by its bound)."""
    counts = list(level.stage_counts)
    m.PIPELINE_LENGTHS = pyo.Set(initialize=counts, ordered=True)
    m.Pipeline_Length_Is = pyo.Var(m.PIPELINE_LENGTHS, domain=pyo.Binary)
    m.z = [m.Pipeline_Length_Is[p] for p in counts]
    if len(counts) == 1:
        m.z[0].setlb(1)
    m.One_Pipeline_Length_Constraint = pyo.Constraint(expr=sum(m.z) == 1)


def add_shape_roles(m: pyo.ConcreteModel, hp: list[tuple["_Shape", int]], level: Level) -> None:
    """A P-stage pipeline has one first and one last stage and P - 2 middles (P = 1: one only stage):
        sum_{h first} x_{h,P} = z_P,  sum_{h last} x_{h,P} = z_P,  sum_{h middle} x_{h,P} = (P - 2) z_P,
        sum_{h only} x_{h,1} = z_1."""
    z = dict(zip(level.stage_counts, m.z))

    def rule(_m, p, role):
        if p == 1 and role != Role.ONLY or p > 1 and role == Role.ONLY or (role == Role.MIDDLE and p < 3):
            return pyo.Constraint.Skip
        ks = [k for k, (h, q) in enumerate(hp) if q == p and h.role == role]
        want = p - 2 if role == Role.MIDDLE else 1
        return _lin([1] * len(ks), [m.x[k] for k in ks]) == want * z[p]
    m.Role_Count_Constraint = pyo.Constraint(m.PIPELINE_LENGTHS, ["first", "last", "middle", "only"], rule=rule)


def add_shape_capacity(m: pyo.ConcreteModel, hp: list[tuple["_Shape", int]], level: Level, L: int) -> None:
    """The chosen stages can hold the model: sum_h cap_h x_{h,P} >= L z_P (each stage holds at least a
    layers by the bounds, so sizes in [a, cap_h] summing to exactly L then exist)."""
    z = dict(zip(level.stage_counts, m.z))
    m.Layer_Capacity_Constraint = pyo.Constraint(
        m.PIPELINE_LENGTHS, rule=lambda _m, p: sum(m.cap[k] * m.x[k] for k, (_h, q) in enumerate(hp) if q == p)
        >= L * z[p])


def add_shape_gpu_counts(m: pyo.ConcreteModel, hp: list[tuple["_Shape", int]], scenario: Scenario) -> None:
    """No type is used beyond its count: sum_{h of type g, P} t_h x_{h,P} <= N_g (only one P is active)."""
    def rule(_m, g):
        ks = [k for k, (h, _p) in enumerate(hp) if h.gpu_type == g]
        if not ks:
            return pyo.Constraint.Skip
        return _lin([hp[k][0].tp for k in ks], [m.x[k] for k in ks]) <= scenario.pool.entry(g).count
    m.GPU_TYPES = pyo.Set(initialize=list(scenario.pool.types), ordered=True)
    m.GPU_Count_Constraint = pyo.Constraint(m.GPU_TYPES, rule=rule)


class ShapeModel(_Solvable):
    """Exact MILP over stage shapes, for contiguous segment sizes (`full`, or a..L).

    With every size from a to L allowed and a stage's rate falling (and memory rising) with the layers it
    holds, the cheapest plan at a throughput floor theta only needs, per shape h = (role, type, TP) and
    stage count P, the most layers cap_h(theta, P) a stage of that shape holds at rate >= theta: stages
    of sizes s_h in [a, cap_h] summing to L exist iff P a <= L <= sum_h cap_h x_h. Variables x_{h,P}
    (stages of shape h in a P-stage pipeline) and z_P:
        sum_P z_P = 1;  per P: sum_{h first} x = z_P, sum_{h last} x = z_P, sum_{h middle} x = (P-2) z_P
        (P = 1: sum_{h only} x = z_1);  sum_h cap_h x_{h,P} >= L z_P;
        per type g: sum t_h x_{h,P} <= N_g;  C = sum c_h x_{h,P} <= B;  minimise C.
    A floor changes only the cap parameters and the bounds (x = 0 where cap < a). After a solve the layers
    are spread to maximise the slowest stage's rate (bisection over the shapes' rates)."""

    def __init__(self, scenario: Scenario, level: Level, table: dict[tuple[str, str, int], _Shape], a: int):
        t0 = time.perf_counter()
        self.scenario, self.level, self.table, self.a = scenario, level, table, a
        L = scenario.model.num_layers
        self.L = L
        need = {"only": 1, "first": 2, "last": 2, "middle": 3}
        self.hp = [(h, p) for h in table.values() for p in level.stage_counts
                   if p >= need[h.role] and (h.role != "only" or p == 1)]
        self.opts = [o for h, p in self.hp for o in h.options if o.max_stages >= p]
        self.thetas = sorted({o.tokens_per_s for o in self.opts})
        self.scale = cost_scale(h.cost for h, _ in self.hp)
        m = pyo.ConcreteModel(name=f"shapes-{level}; costs in $/h x {self.scale:g}")
        self._ub = [1 if h.role != "middle" else max(0, min(p - 2, scenario.pool.entry(h.gpu_type).count // h.tp))
                    for h, p in self.hp]
        self._cur_ub = list(self._ub)
        add_shape_stage_counts(m, self.hp, self._ub, a)
        add_pipeline_length(m, level)
        add_shape_roles(m, self.hp, level)
        add_shape_capacity(m, self.hp, level, L)
        add_shape_gpu_counts(m, self.hp, scenario)
        add_budget(m, [h.cost for h, _ in self.hp], m.x, self.scale)
        add_objective(m)
        self.m = m
        self.floor: tuple[float | None, bool] = (None, False)
        # measured: HiGHS's presolve costs more than it saves on these small models (XL exact 3x faster without)
        attach_solver(self, scenario.settings.threads, t0, presolve="off")

    @property
    def size(self) -> dict[str, int]:
        binaries = len(self.m.z) + sum(1 for u in self._ub if u == 1)
        rows = sum(1 for _ in self.m.component_data_objects(pyo.Constraint, active=True))
        return {"options": len(self.opts), "integers": len(self.hp), "binaries": binaries,
                "variables": len(self.hp) + len(self.m.z), "rows": rows}

    def set_budget(self, budget: float | None) -> None:
        self.m.budget_usd_per_hour_scaled.value = NO_BUDGET if budget is None else budget * self.scale

    def set_floor(self, floor: float | None, strict: bool = False) -> None:
        """Caps at the floor; shapes that cannot hold a layers at it are switched off."""
        self.floor = (floor, strict)
        m = self.m
        for k, (h, p) in enumerate(self.hp):
            cap = h.cap(floor, strict, p, self.a)
            if m.cap[k].value != cap:
                m.cap[k].value = cap
            ub = self._ub[k] if cap >= self.a else 0
            if self._cur_ub[k] != ub:
                m.x[k].setub(ub)
                self.backend.set_col_bounds(m.x[k])
                self._cur_ub[k] = ub

    def floor_feasible(self, floor: float, strict: bool = False) -> bool:
        """Some first and some last shape (or an only shape) can hold a stage at the floor."""
        ok = {r: False for r in (Role.FIRST, Role.LAST, Role.ONLY)}
        for h, p in self.hp:
            if h.role in ok and h.cap(floor, strict, p, self.a) >= self.a:
                ok[h.role] = True
        return ok[Role.ONLY] or (ok[Role.FIRST] and ok[Role.LAST])

    def solve(self, time_limit: float, gap: float) -> SolveOutcome | None:
        run = run_highs(self, time_limit, gap, self.scale)
        if run is None:
            return None
        chosen = [(self.hp[k][0], self.hp[k][1]) for k in range(len(self.hp))
                  for _ in range(int(round(self.backend_value(self.m.x[k]))))]
        return SolveOutcome(*run, tuple(self._spread(chosen)))

    def _spread(self, chosen: list[tuple[_Shape, int]]) -> list[Option]:
        """Sizes for the chosen stages that sum to L and maximise the slowest stage's rate: the largest
        rate r (among the stages' option rates) with every cap_h(r) >= a and sum_h cap_h(r) >= L, then trim
        to exactly L."""
        a, L = self.a, self.L
        floor, strict = self.floor
        rates = sorted({-x for h, _ in chosen for x in h.neg_rate if floor is None or
                        (-x > floor if strict else at_least(-x, floor))}, reverse=True)
        best = None
        lo, hi = 0, len(rates) - 1
        while lo <= hi:  # rates descending: find the first (highest) rate whose caps reach L
            mid = (lo + hi) // 2
            caps = [h.cap(rates[mid], False, p, a) for h, p in chosen]
            if min(caps) >= a and sum(caps) >= L:  # every stage still holds a layers, all hold L
                best, hi = rates[mid], mid - 1
            else:
                lo = mid + 1
        caps = [h.cap(best, False, p, a) if best is not None else h.cap(floor, strict, p, a) for h, p in chosen]
        excess = sum(caps) - L
        sizes = []
        for c in caps:
            cut = min(excess, c - a)
            sizes.append(c - cut)
            excess -= cut
        if excess or any(s < a for s in sizes):
            raise SolverError("internal: the chosen stages cannot hold the model's layers", "error")
        return [h.options[s - h.first_size] for (h, _), s in zip(chosen, sizes)]
