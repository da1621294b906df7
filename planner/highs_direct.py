"""A persistent HiGHS interface for Pyomo models whose structure is fixed once built.

The placement MILPs are built in Pyomo (the model of record: one function per constraint family) and
then re-solved dozens of times with only variable bounds, a budget and a few coefficients changed. Pyomo's
appsi interface re-scans the model, captures solver output at the file-descriptor level and builds result
objects on every solve: measured about 30% of the exact method's time on the bundled scenarios (3-4 ms per
re-solve around HiGHS's 7-9 ms). This interface translates the model into highspy once and afterwards
pushes only the changes the model's owner names, so a re-solve costs HiGHS's own time.

Supported: linear constraints and objective over variables with numeric bounds; mutable parameters in
constraint bounds and in linear coefficients (the rows holding them are re-evaluated by `refresh_rows`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import highspy
import pyomo.core as pyo  # not pyomo.environ: its solver plugins (0.35 s to import) are never used here
from pyomo.core.expr.visitor import identify_mutable_parameters
from pyomo.repn import generate_standard_repn

from .errors import SolverError
from .highs_silent import STATUS, new_highs

log = logging.getLogger(__name__)
INF = highspy.kHighsInf

# Solves of several models may run in threads (planner.search_exact.frontier): each thread holds a shared
# lock while it runs Python (Pyomo is not known to be thread-safe) and lets go of it only inside HiGHS's
# run, which releases the GIL, so the solves overlap and nothing else does.
_gate = threading.local()


@contextlib.contextmanager
def holding(lock: threading.Lock):
    """Run the body holding `lock`, except inside HiGHS runs (`outside_lock`)."""
    with lock:
        _gate.lock = lock
        try:
            yield
        finally:
            _gate.lock = None


@contextlib.contextmanager
def outside_lock():
    lock = getattr(_gate, "lock", None)
    if lock is None:
        yield
        return
    lock.release()
    try:
        yield
    finally:
        lock.acquire()


@dataclass(frozen=True)
class RunResult:
    """What one HiGHS run produced. `values` is None unless a feasible solution exists."""

    status: str  # optimal | infeasible | time_limit | interrupted | iteration_limit | solution_limit
    objective: float
    bound: float
    gap: float
    seconds: float
    values: list[float] | None




# HiGHS options that only make our small MILPs faster, set where this HiGHS has them. Feasibility jump (a
# primal heuristic run before the branch and bound, HiGHS >= 1.10) costs more than it finds on MILPs of a few
# hundred integers whose LP relaxation is nearly integral. Without it (benchmarks/highs_options.py, medians of
# 3, alternating): the frontier takes 0.50-0.86x the time on every bundled scenario (medium 0.14-0.49 s
# instead of 0.24-0.57 s, realistic 0.38 s instead of 0.65 s), the exact method 0.38-1.04x, with the same
# optimum and frontier (the solve counts move by a few where equally good plans turn up in another order).
SPEED_OPTIONS = {"mip_heuristic_run_feasibility_jump": False}


def set_option(h: highspy.Highs, key: str, value, required: bool = True) -> None:
    """Set a HiGHS option; a required one that HiGHS refuses (unknown, wrong type, out of range) is a
    SolverError, an optional one (SPEED_OPTIONS) is skipped where this HiGHS version does not have it."""
    if h.setOptionValue(key, value) == highspy.HighsStatus.kOk:
        return
    if required or h.getOptionType(key)[0] == highspy.HighsStatus.kOk:
        raise SolverError(f"HiGHS refused the option {key}={value!r}", "option")
    log.info("HiGHS %s has no option %s; solving without it", h.version(), key)


def _bound(x) -> float:
    return float(pyo.value(x)) if x is not None else math.nan


class PersistentHighs:
    """One Pyomo model loaded into one highspy.Highs. Columns follow `variables`, rows the active
    constraints in declaration order; `col(var)` and `row(con)` give the indices."""

    def __init__(self, m: pyo.ConcreteModel, options: dict):
        self.h = new_highs()
        for key, val in {**SPEED_OPTIONS, **options}.items():
            set_option(self.h, key, val, required=key not in SPEED_OPTIONS)
        self.variables = list(m.component_data_objects(pyo.Var, descend_into=True))
        self._col = {id(v): j for j, v in enumerate(self.variables)}
        n = len(self.variables)
        lb = [self._lb(v) for v in self.variables]
        ub = [self._ub(v) for v in self.variables]
        if n:
            self.h.addVars(n, lb, ub)
            ints = [j for j, v in enumerate(self.variables) if v.is_integer()]
            if ints:
                self.h.changeColsIntegrality(len(ints), ints, [highspy.HighsVarType.kInteger] * len(ints))
        self._bounds = list(zip(lb, ub))
        self._row: dict[int, int] = {}
        self._mutable_body: dict[int, tuple[pyo.Constraint, dict[int, float]]] = {}
        self._mutable_bounds: dict[int, tuple[pyo.Constraint, float]] = {}
        self._row_bounds: list[tuple[float, float]] = []
        for con in m.component_data_objects(pyo.Constraint, active=True, descend_into=True):
            cols, coefs, lo, hi = self._linear_row(con)
            r = len(self._row_bounds)
            self._row[id(con)] = r
            self._row_bounds.append((lo, hi))
            self.h.addRow(lo, hi, len(cols), cols, coefs)
            if _has_mutable(con.body):
                self._mutable_body[r] = (con, dict(zip(cols, coefs)))
            if _has_mutable(con.lower) or _has_mutable(con.upper):
                # the body's constant is moved into the bounds; it is fixed unless the body is mutable
                self._mutable_bounds[r] = (con, _bound(con.lower) - lo if con.lower is not None
                                           else _bound(con.upper) - hi)
        objs = list(m.component_data_objects(pyo.Objective, active=True, descend_into=True))
        if len(objs) != 1:
            raise ValueError(f"expected one active objective, found {len(objs)}")
        repn = generate_standard_repn(objs[0].expr, compute_values=True, quadratic=False)
        if not repn.is_linear():
            raise ValueError("the objective is not linear")
        cols = [self._col[id(v)] for v in repn.linear_vars]
        if cols:
            self.h.changeColsCost(len(cols), cols, [float(c) for c in repn.linear_coefs])
        self.h.changeObjectiveOffset(float(pyo.value(repn.constant)))
        self.h.changeObjectiveSense(highspy.ObjSense.kMinimize if objs[0].sense == pyo.minimize
                                    else highspy.ObjSense.kMaximize)

    # ------------------------------------------------------------ structure
    @staticmethod
    def _lb(v) -> float:
        return -INF if v.lb is None else float(v.lb)

    @staticmethod
    def _ub(v) -> float:
        return INF if v.ub is None else float(v.ub)

    def _linear_row(self, con) -> tuple[list[int], list[float], float, float]:
        repn = generate_standard_repn(con.body, compute_values=True, quadratic=False)
        if not repn.is_linear():
            raise ValueError(f"constraint {con.name} is not linear")
        merged: dict[int, float] = {}
        for v, c in zip(repn.linear_vars, repn.linear_coefs):
            j = self._col[id(v)]
            merged[j] = merged.get(j, 0.0) + float(c)
        const = float(pyo.value(repn.constant))
        lo = -INF if con.lower is None else _bound(con.lower) - const
        hi = INF if con.upper is None else _bound(con.upper) - const
        return list(merged), list(merged.values()), lo, hi

    def col(self, var) -> int:
        return self._col[id(var)]

    def row(self, con) -> int:
        return self._row[id(con)]

    # ------------------------------------------------------------ changes
    def set_col_bounds(self, var) -> None:
        """Push `var`'s current bounds (after var.setub/setlb on the Pyomo side)."""
        j = self._col[id(var)]
        new = (self._lb(var), self._ub(var))
        if new != self._bounds[j]:
            self.h.changeColBounds(j, *new)
            self._bounds[j] = new

    def refresh_rows(self) -> None:
        """Re-evaluate the rows that hold mutable parameters (in their bounds or coefficients) and push
        what changed."""
        for r, (con, coefs) in self._mutable_body.items():
            cols, vals, lo, hi = self._linear_row(con)
            new = dict(zip(cols, vals))
            for j in set(coefs) | set(new):
                if coefs.get(j, 0.0) != new.get(j, 0.0):
                    self.h.changeCoeff(r, j, new.get(j, 0.0))
            self._mutable_body[r] = (con, new)
            self._push_row_bounds(r, lo, hi)
        for r, (con, const) in self._mutable_bounds.items():
            if r not in self._mutable_body:
                lo = -INF if con.lower is None else _bound(con.lower) - const
                hi = INF if con.upper is None else _bound(con.upper) - const
                self._push_row_bounds(r, lo, hi)

    def _push_row_bounds(self, r: int, lo: float, hi: float) -> None:
        if (lo, hi) != self._row_bounds[r]:
            self.h.changeRowBounds(r, lo, hi)
            self._row_bounds[r] = (lo, hi)

    # ------------------------------------------------------------ solving
    def run(self, time_limit_s: float, gap: float) -> RunResult:
        """One HiGHS run; raises SolverError for a solver failure or a status it does not expect."""
        h = self.h
        # per run: HiGHS 1.16 stops each run at its limit although getRunTime() sums over runs (older
        # versions compared the limit with that sum, ERGO-Code/HiGHS#1331; tests/test_highs_direct.py)
        h.setOptionValue("time_limit", max(float(time_limit_s), 0.01))
        h.setOptionValue("mip_rel_gap", float(gap))
        # no absolute gap: HiGHS's default (1e-6) would call any plan "optimal" on a cheap enough pool
        h.setOptionValue("mip_abs_gap", 0.0)
        t0 = time.perf_counter()
        with outside_lock():
            run_status = h.run()
        seconds = time.perf_counter() - t0
        model_status = h.getModelStatus()
        status = STATUS.get(model_status)
        if run_status == highspy.HighsStatus.kError or status is None:
            raise SolverError(f"HiGHS returned status '{h.modelStatusToString(model_status)}'",
                              h.modelStatusToString(model_status))
        info = h.getInfo()
        if status == "infeasible":
            return RunResult(status, math.nan, math.nan, math.nan, seconds, None)
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        values = list(h.getSolution().col_value) if has_solution else None
        objective = info.objective_function_value if has_solution else math.nan
        bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else math.nan
        achieved = float(info.mip_gap)
        if not math.isfinite(achieved) or achieved > 1e30:
            achieved = 0.0 if status == "optimal" else math.inf
        return RunResult(status, objective, bound, achieved, seconds, values)


def _has_mutable(expr) -> bool:
    """Whether an expression (or a bound: a number, a parameter, an expression) holds a mutable parameter."""
    if expr is None or isinstance(expr, (int, float)):
        return False
    for _ in identify_mutable_parameters(expr):
        return True
    return False
