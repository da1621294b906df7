"""The placement MILP's constraint families, one function each stating its inequality (the component table
is in planner.milp's docstring), and the stage shapes of the shape-aggregated formulation.

Pure model building on a Pyomo ConcreteModel: no solver here (planner.milp builds the models from these
families and runs HiGHS).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import pyomo.core as pyo  # not pyomo.environ: its solver plugins (0.35 s to import) are never used here
from pyomo.core.expr.numeric_expr import LinearExpression

from .candidates import Level, Option
from .domain import Scenario
from .kinds import Role
from .units import NO_BUDGET, down, up


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
        start = top if key[0] == Role.ONLY else a
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
