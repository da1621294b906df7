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

import logging
import math
import time
from dataclasses import dataclass

import pyomo.core as pyo  # not pyomo.environ: its solver plugins (0.35 s to import) are never used here

from .candidates import MIN_STAGES, Level, Option
from .domain import Scenario
from .errors import SolverError
from .highs_direct import PersistentHighs
from .kinds import Role
from .milp_families import (  # noqa: F401  (option_label, shape_label, write_lp, ...: imported from here)
    _lin, _Shape, _unique, add_budget, add_gpu_counts, add_latency, add_objective, add_pipeline_length,
    add_shape_capacity, add_shape_gpu_counts, add_shape_roles, add_shape_stage_counts, add_stage_counts,
    add_stage_number, add_throughput_floors, add_tiling, cost_scale, option_label, shape_label, shape_table,
    write_lp)
from .units import NO_BUDGET, at_least, exceeds

log = logging.getLogger(__name__)


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
        self.hp = [(h, p) for h in table.values() for p in level.stage_counts
                   if p >= MIN_STAGES[h.role] and (h.role != Role.ONLY or p == 1)]
        self.opts = [o for h, p in self.hp for o in h.options if o.max_stages >= p]
        self.thetas = sorted({o.tokens_per_s for o in self.opts})
        self.scale = cost_scale(h.cost for h, _ in self.hp)
        m = pyo.ConcreteModel(name=f"shapes-{level}; costs in $/h x {self.scale:g}")
        self._ub = [1 if h.role != Role.MIDDLE else max(0, min(p - 2, scenario.pool.entry(h.gpu_type).count // h.tp))
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
