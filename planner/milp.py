"""The placement MILP in Pyomo, solved with HiGHS (appsi persistent interface).

Type-aggregated count formulation (MODEL-NOTES section 2): stage order changes neither the bottleneck
nor the cost, so a plan is chosen as integer counts n_o of each option o (size s_o, role, GPU type g_o,
TP degree t_o) at one level (microbatch and stage count, `candidates.Level`), and laid out afterwards (first stage, middles, last stage).
No per-GPU binaries and no big-M: throughput is an exact staircase over the distinct option throughputs.

One `LevelModel` is built per level and kept; methods change only parameters, bounds and
fixings between solves, so the persistent solver re-solves without rebuilding.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs
from pyomo.core.expr.numeric_expr import LinearExpression

from .candidates import Level, Option
from .domain import Scenario
from .errors import SolverError

log = logging.getLogger(__name__)

OK_STATUSES = {TerminationCondition.optimal: "optimal", TerminationCondition.maxTimeLimit: "time_limit",
               TerminationCondition.interrupted: "interrupted", TerminationCondition.maxIterations: "iteration_limit"}


def _lin(coefs, vars_, constant=0.0):
    return LinearExpression(constant=constant, linear_coefs=list(coefs), linear_vars=list(vars_))


# ------------------------------------------------------------------ constraint families
def add_stage_counts(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """Integer n_o >= 0: how many stages of option o the pipeline has.

    Upper bounds U_o: 1 for first/last/only roles; for middle stages
    U_o = min(floor(N_g / t_o), floor(L / s_o), P_o - 2), P_o the most stages at which o's KV cache fits.
    """
    L = scenario.model.num_layers
    ub = []
    for o in opts:
        if o.role == "middle":
            ub.append(max(0, min(scenario.pool.entry(o.gpu_type).count // o.tp, L // o.size, o.max_stages - 2)))
        else:
            ub.append(1)
    m.O = pyo.RangeSet(0, len(opts) - 1) if opts else pyo.Set(initialize=[])
    m.n = pyo.Var(m.O, domain=pyo.NonNegativeIntegers, bounds=lambda _m, i: (0, ub[i]))
    m.ub = ub


def add_tiling(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """Stages cover layers 1..L exactly once, contiguously, with the embedding first and the head last:
        sum_o s_o n_o = L;   sum_{o first or only} n_o = 1;   sum_{o last or only} n_o = 1.
    Any multiset satisfying these is laid out as first stage, middles (any order), last stage."""
    L = scenario.model.num_layers
    m.tiling = pyo.Constraint(expr=_lin([o.size for o in opts], [m.n[i] for i in m.O]) == L)
    firsts = [i for i, o in enumerate(opts) if o.role in ("first", "only")]
    lasts = [i for i, o in enumerate(opts) if o.role in ("last", "only")]
    m.one_first = pyo.Constraint(expr=_lin([1] * len(firsts), [m.n[i] for i in firsts]) == 1)
    m.one_last = pyo.Constraint(expr=_lin([1] * len(lasts), [m.n[i] for i in lasts]) == 1)


def add_gpu_counts(m: pyo.ConcreteModel, opts: list[Option], scenario: Scenario) -> None:
    """No type is used beyond its count: sum_{o of type g} t_o n_o <= N_g for every type g."""
    def rule(_m, g):
        idx = [i for i, o in enumerate(opts) if o.gpu_type == g]
        if not idx:
            return pyo.Constraint.Skip
        return _lin([opts[i].tp for i in idx], [m.n[i] for i in idx]) <= scenario.pool.entry(g).count
    m.G = pyo.Set(initialize=list(scenario.pool.types))
    m.gpu_counts = pyo.Constraint(m.G, rule=rule)


def add_stage_number(m: pyo.ConcreteModel, opts: list[Option], level: Level) -> None:
    """The pipeline has P stages, P one of the level's stage counts, and every stage's KV cache for the
    level's concurrency at P fits (the options' `max_stages`).

    One count {P}:  sum_o n_o = P  (options that do not fit at P are not in the model).
    Several counts: z_P in {0, 1} with sum_P z_P = 1 and sum_o n_o = sum_P P z_P; with w_p = sum_{P <= p} z_P
    ("at most p stages"), an option that fits only up to P_o < max P obeys n_o <= U_o w_{P_o}."""
    counts = level.stage_counts
    total = [m.n[i] for i in m.O]
    if len(counts) == 1:
        m.stage_number = pyo.Constraint(expr=_lin([1] * len(opts), total) == counts[0])
        m.z = pyo.Var(pyo.Set(initialize=[]), domain=pyo.Binary)
        return
    m.P = pyo.Set(initialize=list(counts))
    m.z = pyo.Var(m.P, domain=pyo.Binary)
    m.one_count = pyo.Constraint(expr=_lin([1] * len(counts), [m.z[p] for p in counts]) == 1)
    m.stage_number = pyo.Constraint(
        expr=_lin([1] * len(opts) + [-p for p in counts], total + [m.z[p] for p in counts]) == 0)
    top = counts[-1]
    rows = [i for i, o in enumerate(opts) if o.role != "only" and o.max_stages < top]

    def fit_rule(_m, r):
        i = rows[r]
        below = [p for p in counts if p <= opts[i].max_stages]
        return _lin([1] + [-m.ub[i]] * len(below), [m.n[i]] + [m.z[p] for p in below]) <= 0
    m.fit_rows = pyo.Constraint(pyo.RangeSet(0, len(rows) - 1) if rows else pyo.Set(initialize=[]), rule=fit_rule)


def add_throughput_floors(m: pyo.ConcreteModel, opts: list[Option]) -> None:
    """Pipeline throughput T as an exact staircase (no big-M).

    Let theta_0 < theta_1 < ... < theta_M be the distinct option throughputs and v_l in {0, 1} mean
    "T >= theta_l" (v_0 = 1, v_l >= v_{l+1}). Then T = theta_0 + sum_l (theta_l - theta_{l-1}) v_l, and an
    option with throughput theta_k may be used only while T <= theta_k:
        n_o <= U_o (1 - v_{k(o)+1}).
    Fixing v_l = 1 imposes the floor T >= theta_l; fixing v_l = 0 caps T below theta_l."""
    thetas = sorted({o.tokens_per_s for o in opts})
    m.thetas = thetas
    index = {t: k for k, t in enumerate(thetas)}
    m.Lv = pyo.RangeSet(1, len(thetas) - 1) if len(thetas) > 1 else pyo.Set(initialize=[])
    m.v = pyo.Var(m.Lv, domain=pyo.Binary)
    m.v_order = pyo.Constraint(pyo.RangeSet(1, len(thetas) - 2) if len(thetas) > 2 else pyo.Set(initialize=[]),
                               rule=lambda _m, l: m.v[l] >= m.v[l + 1])
    rows = [(i, index[o.tokens_per_s] + 1) for i, o in enumerate(opts) if index[o.tokens_per_s] + 1 < len(thetas)]
    m.floor_rows = pyo.Constraint(pyo.RangeSet(0, len(rows) - 1) if rows else pyo.Set(initialize=[]),
                                  rule=lambda _m, r: m.n[rows[r][0]] + m.ub[rows[r][0]] * m.v[rows[r][1]]
                                  <= m.ub[rows[r][0]])
    steps = [thetas[l] - thetas[l - 1] for l in range(1, len(thetas))]
    m.T = pyo.Expression(expr=_lin(steps, [m.v[l] for l in range(1, len(thetas))], constant=thetas[0] if thetas else 0))


def add_budget(m: pyo.ConcreteModel, opts: list[Option]) -> None:
    """Hourly cost cap: C = sum_o (t_o * price_g) n_o <= B (B is a mutable parameter; inactive = no cap)."""
    m.C = pyo.Expression(expr=_lin([o.cost_usd_per_hour for o in opts], [m.n[i] for i in m.O]))
    m.budget = pyo.Param(mutable=True, initialize=1e12)
    m.budget_row = pyo.Constraint(expr=m.C <= m.budget)


def add_objective(m: pyo.ConcreteModel) -> None:
    """maximise a * T - b * C with mutable a, b: max throughput (1, 0), min cost (0, 1),
    the weighted objective ((1-w)/T_norm, w/C_norm), and Dinkelbach's T - lambda C (1, lambda)."""
    m.a = pyo.Param(mutable=True, initialize=1.0)
    m.b = pyo.Param(mutable=True, initialize=0.0)
    m.obj = pyo.Objective(expr=m.a * m.T - m.b * m.C, sense=pyo.maximize)


# ------------------------------------------------------------------ model and solve wrapper
@dataclass(frozen=True)
class SolveOutcome:
    status: str  # optimal | time_limit | ...
    objective: float
    bound: float
    gap: float
    seconds: float
    counts: dict[int, int]  # option index -> number of stages


class LevelModel:
    """The MILP for one level, built once and re-solved with changed parameters."""

    def __init__(self, scenario: Scenario, level: Level, opts: list[Option]):
        t0 = time.perf_counter()
        self.scenario = scenario
        self.level = level
        self.opts = opts
        m = pyo.ConcreteModel(name=f"placement-{level}")
        add_stage_counts(m, opts, scenario)
        add_tiling(m, opts, scenario)
        add_gpu_counts(m, opts, scenario)
        add_stage_number(m, opts, level)
        add_throughput_floors(m, opts)
        add_budget(m, opts)
        add_objective(m)
        self.m = m
        self.solver = Highs()
        self.solver.config.load_solution = False
        self.solver.highs_options = {"threads": scenario.settings.threads, "output_flag": False}
        self._structure_loaded = False
        self.build_seconds = time.perf_counter() - t0
        self.solve_seconds = 0.0
        self.num_solves = 0

    @property
    def size(self) -> dict[str, int]:
        m = self.m
        binaries = len(m.v) + len(m.z) + sum(1 for i in m.O if m.ub[i] == 1)
        rows = sum(1 for c in m.component_data_objects(pyo.Constraint, active=True))
        return {"options": len(self.opts), "integers": len(m.n), "binaries": binaries,
                "variables": len(m.n) + len(m.v) + len(m.z), "rows": rows}

    # --- knobs
    def set_objective(self, a: float, b: float) -> None:
        self.m.a.value, self.m.b.value = a, b

    def set_budget(self, budget: float | None) -> None:
        self.m.budget.value = 1e12 if budget is None else budget

    def set_floor(self, floor: float | None, strict: bool = False) -> None:
        """Require T >= floor (T > floor if strict) by fixing the staircase; None frees it.
        The caller checks `floor_feasible` first."""
        m = self.m
        k = 0
        if floor is not None:
            above = [i for i, t in enumerate(m.thetas) if (t > floor if strict else t >= floor * (1 - 1e-12))]
            k = above[0] if above else len(m.thetas)
        # bounds, not fix(): appsi re-adds every constraint touching a fixed variable, bounds are cheap
        for l in m.Lv:
            m.v[l].setlb(1 if l <= k else 0)

    def floor_feasible(self, floor: float, strict: bool = False) -> bool:
        top = self.m.thetas[-1] if self.m.thetas else 0.0
        return top > floor * (1 + 1e-12) if strict else top >= floor * (1 - 1e-12)

    def solve(self, time_limit: float, gap: float) -> SolveOutcome | None:
        """Solve; None if infeasible. Raises SolverError on errors; never reads values after a failure."""
        s = self.solver
        s.config.time_limit = max(time_limit, 0.01)
        s.config.mip_gap = gap
        t0 = time.perf_counter()
        if self._structure_loaded:
            # the model's structure never changes after the first solve: only bounds and parameters do
            uc = s.update_config
            uc.check_for_new_or_removed_constraints = False
            uc.check_for_new_or_removed_vars = False
            uc.check_for_new_or_removed_params = False
            uc.check_for_new_objective = False
            uc.update_constraints = False
            uc.update_named_expressions = False
        self._structure_loaded = True
        try:
            res = s.solve(self.m)
        except RuntimeError as exc:  # appsi raises RuntimeError for solver-side failures
            raise SolverError(f"HiGHS failed: {exc}", "error") from exc
        seconds = time.perf_counter() - t0
        self.solve_seconds += seconds
        self.num_solves += 1
        tc = res.termination_condition
        if tc in (TerminationCondition.infeasible, TerminationCondition.infeasibleOrUnbounded):
            return None
        if tc not in OK_STATUSES:
            raise SolverError(f"HiGHS returned status '{tc.name}'", tc.name)
        if res.best_feasible_objective is None:
            if tc == TerminationCondition.optimal:
                return None
            raise SolverError(f"HiGHS stopped ({OK_STATUSES[tc]}) before finding any plan; raise the time limit",
                              OK_STATUSES[tc])
        res.solution_loader.load_vars()
        counts = {i: int(round(self.m.n[i].value)) for i in self.m.O if self.m.n[i].value and self.m.n[i].value > 0.5}
        obj, bound = res.best_feasible_objective, res.best_objective_bound
        try:
            achieved_gap = float(s._solver_model.getInfo().mip_gap)
        except AttributeError:
            achieved_gap = float("nan")
        if not math.isfinite(achieved_gap) or achieved_gap > 1e30:
            achieved_gap = 0.0 if tc == TerminationCondition.optimal else float("inf")
        return SolveOutcome(OK_STATUSES[tc], obj, bound if bound is not None else float("nan"),
                            achieved_gap, seconds, counts)
