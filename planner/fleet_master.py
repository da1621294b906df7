"""The fleet MILP by column generation, with a proof of optimality from LP duals and reduced costs.

Columns are replicas (`fleet_pricing`), rows are few: per class q a demand row, per GPU type g a count
row, and a budget row. Two questions are asked of it:

    cost:      min sum_j c_j y_j   s.t.  sum_{j of q} a_j y_j >= D_q,  sum_j n_{j,g} y_j <= N_g,  y in Z>=0
    capacity:  max lambda          s.t.  sum_{j of q} beta_q theta_j y_j >= f_q lambda,  the GPU rows,
                                          sum_j c_j y_j <= B (the demand curve's budget; else inactive)

In `cost`, a_j = min(beta_q theta_j, D_q): a replica serving more than its class's whole demand counts as
serving the demand (coefficient tightening; the integer solutions are the same, the LP bound is tighter).

1. Column generation on the LP relaxation: solve the restricted LP, price every class, level and stage
   count exactly (`LevelPricer.search`), add the replicas of negative reduced cost, repeat. When none is
   left, the restricted LP's value z_LP is the full LP's, a lower bound on the integer optimum.
2. The integer program over the columns found gives a fleet of cost z_IP >= the optimum z*.
3. The proof. With the final duals, every feasible integer y has cost c.y = z_LP + sum_j rc_j y_j +
   (slack terms >= 0), and rc_j >= 0 for every replica. So a fleet costing <= z_IP uses only replicas with
   rc_j <= z_IP - z_LP. All such replicas are enumerated (the same branch and bound with a fixed threshold;
   of replicas with the same GPUs only the fastest, which any fleet can use instead at the same cost) and
   added; the integer program over them is then exact: its optimum is z*. (The capacity question is the same
   with -lambda minimised.)

Status and gap come from HiGHS's last integer solve; a time limit or the enumeration's node limit leaves
the result "not proven", with the gap to z_LP reported.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from .errors import SolverError
from .highs_silent import STATUS, new_highs
from .fleet_pricing import Found, LevelPricer, SearchLimit
from .fleet_replicas import Replica

log = logging.getLogger(__name__)
INF = highspy.kHighsInf


EXACT_GAP = 1e-9
# partial replicas (of one depth of one level's search) the exact searches may hold before they give up,
# unproven; and the pricing rounds' working limit (beyond it they keep the best-bounded ones)
NODE_LIMIT = 2_000_000
PRICING_STATES = 200
PARTIAL = 0.5
# a shortfall costs this many times the seed's $/h per token/s (about the cheapest replica's): enough that an
# optimum leaves none when the pool can serve the demand, in practice; if one does, the caller checks the
# pool's capacity and solves again without shortfall
SHORTFALL = 16.0
ENOUGH = 20
MAX_ROUNDS = 1000
# the first fleet (which only sets the enumeration's scale): gap and seconds
FIRST_GAP, FIRST_SECONDS = 1e-3, 2.0


@dataclass(frozen=True)
class MasterResult:
    status: str  # optimal | time_limit | enumeration_limit | infeasible
    proven: bool
    objective: float  # cost ($/h) or lambda (tokens/s)
    gap: float
    y: dict[int, int]  # column -> copies
    lp_bound: float
    columns: int
    rounds: int
    enumerated: int


class Master:
    """The restricted master problem in one HiGHS instance; columns persist across questions and prices."""

    def __init__(self, pricers: list[list[LevelPricer]], betas: list[float], fractions: list[float],
                 types: tuple[str, ...], counts: tuple[int, ...], prices: list[float], threads: int = 1):
        self.pricers, self.betas, self.fractions = pricers, betas, fractions
        self.types, self.counts, self.prices = types, counts, list(prices)
        self.Q, self.T = len(betas), len(types)
        self.cols: list[tuple[int, Replica]] = []
        self.keys: dict[tuple, int] = {}
        h = self.h = new_highs()
        h.setOptionValue("threads", threads)
        h.addVar(0.0, 0.0)  # column 0: lambda (capacity questions only)
        self.off = 1 + self.Q  # columns 1..Q: each class's shortfall (cost questions, see ask_cost)
        for _ in range(self.Q):
            h.addVar(0.0, 0.0)
        for q in range(self.Q):
            h.addRow(0.0, INF, 2, [0, 1 + q], [-fractions[q], 1.0])
        for g in range(self.T):
            h.addRow(-INF, float(counts[g]), 0, [], [])
        self.budget_row = self.Q + self.T
        h.addRow(-INF, INF, 0, [], [])
        self.allowed: set[int] | None = None
        self.with_shortfall = False
        self._seed_key: tuple = ()
        self._seed_pi = 0.0
        self._next_unit = 0
        self.demands: list[float] | None = None  # cost question's D_q (None: capacity question)

    # ------------------------------------------------------------------ columns
    def cost_of(self, r: Replica) -> float:
        return float(sum(n * p for n, p in zip(r.gpus, self.prices)))

    def coeff(self, q: int, r: Replica) -> float:
        a = self.betas[q] * r.tokens_per_s
        return min(a, self.demands[q]) if self.demands is not None and self.tighten else a

    def add(self, q: int, found: Found) -> bool:
        key = (q, found.gpus, round(found.theta, 9))
        if key in self.keys:
            return False
        os_ = found.options
        r = Replica(os_, found.theta, found.gpus, sum(o.cost_usd_per_hour for o in os_),
                    sum(o.ttft_s for o in os_), len(os_), os_[0].level.concurrency(len(os_)))
        j = self.h.getNumCol()
        self.keys[key] = j
        self.cols.append((q, r))
        rows = [q] + [self.Q + g for g in range(self.T) if r.gpus[g]] + [self.budget_row]
        vals = [self.coeff(q, r)] + [float(r.gpus[g]) for g in range(self.T) if r.gpus[g]] + [self.cost_of(r)]
        self.h.addCol(self.cost_of(r) if self.demands is not None else 0.0, 0.0, INF, len(rows), rows, vals)
        self.h.changeColsIntegrality(1, [j], [self._kind])
        return True

    def replica(self, j: int) -> tuple[int, Replica]:
        return self.cols[j - self.off]

    # ------------------------------------------------------------------ questions
    def set_prices(self, prices: list[float]) -> None:
        self.prices = list(prices)
        for j, (_q, r) in enumerate(self.cols, start=self.off):
            c = self.cost_of(r)
            self.h.changeCoeff(self.budget_row, j, c)
            if self.demands is not None:
                self.h.changeColCost(j, c)

    def ask_cost(self, demands: list[float], shortfall: bool) -> None:
        """Minimum cost for the demands. `shortfall`: each class's demand may go unserved at SHORTFALL times
        the seed's $/h per token/s (a shortfall column, set in `optimise`), so that the restricted problem is
        feasible before the columns that serve the demand are found; the caller checks that the optimum
        leaves none unserved. Without it the columns present must make the problem feasible."""
        self.demands = list(demands)
        self.with_shortfall = shortfall
        h = self.h
        h.changeColBounds(0, 0.0, 0.0)
        h.changeColCost(0, 0.0)
        for q in range(self.Q):
            h.changeColBounds(1 + q, 0.0, INF if shortfall else 0.0)
        for q, d in enumerate(demands):
            h.changeRowBounds(q, d, INF)
        h.changeRowBounds(self.budget_row, -INF, INF)
        for j, (q, r) in enumerate(self.cols, start=self.off):
            h.changeColCost(j, self.cost_of(r))
            h.changeCoeff(q, j, self.coeff(q, r))

    def ask_capacity(self, budget: float | None) -> None:
        self.demands = None
        h = self.h
        h.changeColBounds(0, 0.0, INF)
        h.changeColCost(0, -1.0)
        for q in range(self.Q):
            h.changeColBounds(1 + q, 0.0, 0.0)
        for q in range(self.Q):
            h.changeRowBounds(q, 0.0, INF)
        h.changeRowBounds(self.budget_row, -INF, INF if budget is None else budget)
        for j, (q, r) in enumerate(self.cols, start=self.off):
            h.changeColCost(j, 0.0)
            h.changeCoeff(q, j, self.coeff(q, r))

    def _usable(self, j: int) -> bool:
        return self.allowed is None or all(n == 0 or g in self.allowed for g, n in enumerate(self.cols[j - self.off][1].gpus))

    def allow(self, types: set[int] | None) -> None:
        """Columns using a type outside `types` are fixed at 0 (None: all allowed)."""
        self.allowed = types
        for j, (_, r) in enumerate(self.cols, start=self.off):
            ok = types is None or all(n == 0 or g in types for g, n in enumerate(r.gpus))
            self.h.changeColBounds(j, 0.0, INF if ok else 0.0)

    # ------------------------------------------------------------------ solving
    @property
    def _kind(self):
        return highspy.HighsVarType.kInteger if self._integer else highspy.HighsVarType.kContinuous

    _integer = False

    def _set_integer(self, on: bool) -> None:
        self._integer = on
        n = self.h.getNumCol() - self.off
        if n:
            self.h.changeColsIntegrality(n, list(range(self.off, n + self.off)), [self._kind] * n)

    def _run(self, time_limit: float, gap: float = EXACT_GAP) -> tuple[str, float]:
        h = self.h
        limit = max(float(time_limit), 0.01)
        # measured: the simplex compares its limit with the instance's clock summed over runs (a fleet whose
        # questions had run 60 s in total stopped every later LP at once), the MIP with its own run's time
        h.setOptionValue("time_limit", limit if self._integer else h.getRunTime() + limit)
        h.setOptionValue("mip_rel_gap", gap)
        h.setOptionValue("mip_abs_gap", 0.0)
        if self._integer:
            h.clearSolver()  # measured: a MIP re-run after bound changes could report a stale column vector
        run_status = h.run()
        model_status = h.getModelStatus()
        status = STATUS.get(model_status)
        if run_status == highspy.HighsStatus.kError or status is None:
            raise SolverError(f"HiGHS returned status '{h.modelStatusToString(model_status)}'",
                              h.modelStatusToString(model_status))
        return status, h.getInfo().objective_function_value

    def _seed(self, deadline: float, cancel) -> None:
        """Columns for a capacity question asked before any exist. With no columns the LP's GPU duals are all
        0 and every replica looks free, which makes the first pricing rounds search long; instead price at
        list prices against a demand dual pi that doubles until some replica pays (pi starts below every
        replica's $/h per token/s). Any columns are valid; these are the
        cheapest per token, so the duals that follow are informative."""
        w = np.array(self.prices)

        def least(lp, role):  # least $/h per token/s of a stage in this role
            r = lp.roles[role]
            return float(np.min(w[r["type"]] * r["tp"] / r["theta"])) if r["theta"].size else np.inf

        # a replica's rate is at most each stage's, so its $/h per token/s is at least the sum of its stages'
        pi = min((min(least(lp, "only"), least(lp, "first") + least(lp, "last")) for pricers in self.pricers
                  for lp in pricers), default=np.inf)
        pi = 0.0 if not np.isfinite(pi) else pi
        self._seed_key, self._seed_pi = tuple(self.prices), max(pi, 1e-12)
        if pi <= 0:
            return
        saved = self.demands
        self.demands = [0.0] * self.Q  # weights = list prices; the coefficient caps are lifted below
        try:
            for _ in range(60):
                duals = np.zeros(self.Q + self.T + 1)
                duals[:self.Q] = [pi / b for b in self.betas]
                found, _ = self._price(duals, False, -1e-9, deadline, cancel, PRICING_STATES, cap=False)
                if found:
                    self._seed_pi = pi
                    break
                pi *= 2.0
        finally:
            self.demands = saved
        for q, f in found:
            self.add(q, f)

    def _price(self, duals: np.ndarray, collect: bool, threshold: float, deadline: float, cancel,
               limit: int, cap: bool = True, settle: bool = False) -> tuple[list, bool]:
        """Replicas of reduced cost <= threshold under the LP duals: a few good ones (pricing), or every one
        (`collect`). Returns (found, complete); complete means every unit (class, level, stage count) was
        searched exhaustively at `threshold`, so that finding none proves the LP optimal.

        Pricing needs good columns, not every unit's best: once one is found, a unit's search only looks for
        columns at least PARTIAL times as good, and the round stops after ENOUGH columns (the next round
        starts at the next unit). A round that finds none has searched every unit at `threshold`."""
        pc = np.array(self.prices) if self.demands is not None else np.zeros(self.T)
        w = pc - duals[self.Q:self.Q + self.T] - duals[self.budget_row] * np.array(self.prices)
        if self.allowed is not None:
            w = np.where(np.isin(np.arange(self.T), list(self.allowed)), w, np.inf)
        units = [(q, lp, p) for q, pricers in enumerate(self.pricers) for lp in pricers for p in lp.level.stage_counts]
        start = 0 if collect else self._next_unit % max(1, len(units))
        found, complete, best, prepared = [], True, 0.0, set()
        for k in range(len(units)):
            q, lp, p = units[(start + k) % len(units)]
            if id(lp) not in prepared:
                cap_q = self.demands[q] / self.betas[q] if self.demands is not None and cap else np.inf
                lp.prepare(w, max(0.0, duals[q]) * self.betas[q], cap_q)
                prepared.add(id(lp))
            thr = threshold if collect else min(threshold, PARTIAL * best)
            if collect:
                out, done = lp.search(p, thr, True, limit, cancel=cancel)
            else:
                # once this round has columns, a unit the dynamic program cannot settle waits (`settle`: not)
                out, done = lp.price(p, thr, limit, cancel=cancel, search=settle or not found)
            complete &= done
            found += [(q, f) for f in out]
            best = min([best] + [f.rc for f in out])
            if time.perf_counter() > deadline:
                raise TimeoutError()
            if not collect and len(found) >= ENOUGH:
                self._next_unit = start + k + 1
                return found, False
        return found, complete

    def _column_generation(self, deadline: float, cancel) -> tuple:
        """The LP relaxation over every replica by column generation: (LP value, duals, tolerance, rounds,
        timed out, incomplete); complete when neither flag is set."""
        self._set_integer(False)
        if not any(self._usable(j) for j in range(self.off, len(self.cols) + self.off)) or (
                self.demands is not None and self.with_shortfall and self._seed_key != tuple(self.prices)):
            self._seed(deadline, cancel)
        if self.demands is not None and self.with_shortfall:
            # and at least twice the dearest replica found for the whole demand, so that a small demand is
            # not left unserved because one replica costs more than SHORTFALL x its share of the tokens
            top = max((self.cost_of(r) for j, (_, r) in enumerate(self.cols, start=self.off) if self._usable(j)),
                      default=0.0)
            for q in range(self.Q):
                m = SHORTFALL * self._seed_pi / self.betas[q]
                if self.demands[q] > 0:
                    m = max(m, 2 * top / self.demands[q])
                self.h.changeColCost(1 + q, m)
        rounds = 0
        timed_out = incomplete = False
        while True:
            status, lp = self._run(deadline - time.perf_counter())
            if status != "optimal":
                raise SolverError(f"the fleet LP stopped at {status}", status)
            rounds += 1
            tol = 1e-9 * max(1.0, abs(lp))
            duals = np.array(self.h.getSolution().row_dual)
            try:
                new, complete = self._price(duals, False, -tol, deadline, cancel, PRICING_STATES, cap=self.tighten)
                if not new and not complete:  # the truncated search found nothing: search it all
                    new, complete = self._price(duals, False, -tol, deadline, cancel, NODE_LIMIT, cap=self.tighten)
            except TimeoutError:
                timed_out = True
                break
            added = sum(self.add(q, f) for q, f in new)
            if not added and not complete:  # only known columns came back: settle every unit now
                try:
                    new, complete = self._price(duals, False, -tol, deadline, cancel, NODE_LIMIT, cap=self.tighten,
                                                settle=True)
                except TimeoutError:
                    timed_out = True
                    break
                added = sum(self.add(q, f) for q, f in new)
            if not added and not complete:
                incomplete = True
                break
            if not added or rounds >= MAX_ROUNDS:
                break
        return lp, duals, tol, rounds, timed_out, incomplete

    def lp_duals(self, demands: list[float], time_limit: float, cancel=None) -> tuple[np.ndarray, float] | None:
        """The cost question's LP relaxation without coefficient tightening (a replica counts its whole rate),
        priced to completion: (row duals, LP value), or None if the pricing did not complete in time. With
        these duals every replica's reduced cost is >= -tol, so for ANY demand D' every fleet costs at least
        sum_q pi_q D'_q + sum_g mu_g N_g plus its replicas' reduced costs (weak duality; `fleet_knapsack`)."""
        self.tighten = False
        try:
            self.allow(None)
            self.ask_cost(demands, shortfall=True)
            lp, duals, _, _, timed_out, incomplete = self._column_generation(time.perf_counter() + time_limit, cancel)
        finally:
            self.tighten = True
        return None if timed_out or incomplete else (duals, lp)

    tighten = True  # coefficient tightening (module docstring); off for lp_duals

    def optimise(self, time_limit: float, cancel=None) -> MasterResult:
        """Column generation, the integer program, the reduced-cost proof (module docstring)."""
        t0 = time.perf_counter()
        deadline = t0 + time_limit
        lp, duals, tol, rounds, timed_out, incomplete = self._column_generation(deadline, cancel)
        lp_bound = lp
        enumerated = 0
        proven = not timed_out and not incomplete and rounds < MAX_ROUNDS
        # Every rc >= -tol, so a fleet of <= sum(N) replicas costing <= lp + e uses only columns with rc <=
        # e + margin. So: with every column of rc <= e enumerated, the integer program over just those columns
        # (the others fixed at 0: reduced-cost fixing, which keeps it small) is exact if its optimum costs
        # <= lp + e. e starts at 1/4 of the gap of a first fleet (from every column at hand), or 2% of the LP
        # bound when none was found, and grows 4x (at most to the best fleet's gap) until that holds; a first
        # fleet at the LP bound is optimal as it is. (The enumeration grows steeply with e: at 99% of xl's
        # capacity, 600 replicas at e = 6 $/h, 3,000 at 8.)
        margin = 1e-9 * max(1.0, abs(lp)) + tol * sum(self.counts)
        self._set_integer(True)
        status, ip, y, mip_gap = "infeasible", math.inf, {}, 0.0
        if proven:  # a first fleet from the columns at hand sets the scale of the enumeration
            for q in range(self.Q):  # a real fleet: no shortfall (whose price would inflate the scale)
                self.h.changeColBounds(1 + q, 0.0, 0.0)
            # from every column at hand: the better this fleet, the smaller the enumeration (measured: at 99%
            # of xl's capacity the columns of small reduced cost gave a fleet whose gap enumerated 3,000
            # replicas in 16 s, all columns one within 6 $/h, 600 replicas)
            for limit in (math.inf,):
                self._fix(duals, limit)
                try:  # any fleet will do here (it only sets e): a loose gap and a short run
                    st, val = self._ip(deadline, FIRST_GAP, FIRST_SECONDS)
                except SolverError:  # no fleet found in that time
                    st, val = "infeasible", math.inf
                if st != "infeasible":
                    ip, y = val, self._y()
                    break
            for q in range(self.Q):
                self.h.changeColBounds(1 + q, 0.0, INF if self.demands is not None and self.with_shortfall else 0.0)
        if proven and ip <= lp_bound + margin:  # the first fleet meets the LP bound: nothing to enumerate
            status, mip_gap = "optimal", 0.0
        e = max(margin, (ip - lp_bound) / 4) if math.isfinite(ip) else 0.02 * abs(lp) + margin
        for _ in range(40 if not (proven and ip <= lp_bound + margin) else 0):
            if proven:
                try:
                    new, _ = self._price(duals, True, e + margin, deadline, cancel, NODE_LIMIT)
                    enumerated += sum(self.add(q, f) for q, f in new)
                except (SearchLimit, TimeoutError) as exc:
                    proven = False
                    status = "enumeration_limit" if isinstance(exc, SearchLimit) else "time_limit"
            self._fix(duals, e + margin if proven else math.inf)
            st, val = self._ip(deadline)
            if st == "infeasible":
                if not proven:
                    raise SolverError("internal: the fleet's restricted integer program is infeasible", st)
                e *= 4  # the columns of rc <= e serve no fleet yet (no shortfall column): widen
                continue
            if val <= ip:
                status, ip, y = st, val, self._y()
                mip_gap = float(self.h.getInfo().mip_gap)
            else:
                status = st
            if not proven or status != "optimal":
                proven = False
                break
            if ip - lp_bound <= e:
                break
            # not closed: a better fleet from every column at hand (those above e included) may make the next
            # enumeration smaller, as it needs to reach only that fleet's gap
            self._fix(duals, math.inf)
            try:
                st2, val2 = self._ip(deadline, FIRST_GAP, FIRST_SECONDS)
            except SolverError:
                st2, val2 = "infeasible", math.inf
            if st2 != "infeasible" and val2 < ip:
                ip, y = val2, self._y()
            e = min(4 * e, ip - lp_bound) if math.isfinite(ip) else 4 * e
        else:
            if not (proven and ip <= lp_bound + margin):
                raise SolverError("internal: the fleet's reduced-cost enumeration did not close the gap", status)
        self._fix(duals, math.inf)
        if timed_out:
            status = "time_limit"
        elif incomplete:
            status = "enumeration_limit"
        if proven:
            gap = mip_gap if math.isfinite(mip_gap) and mip_gap < 1 else 0.0
        elif timed_out or incomplete:
            gap = math.inf  # the restricted LP is no bound before the pricing has finished
        else:
            gap = (ip - lp_bound) / max(abs(ip), 1e-12)
        log.info("fleet master: %d rounds, %d columns, LP %.6g, IP %.6g, %d enumerated, %s in %.2f s", rounds,
                 len(self.cols), lp_bound, ip, enumerated, status, time.perf_counter() - t0)
        obj = ip if self.demands is not None else -ip
        bound = lp_bound if self.demands is not None else -lp_bound
        return MasterResult(status, proven, obj, max(0.0, gap), y, bound, len(self.cols), rounds, enumerated)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every replica column's class, GPUs per type and rate (processed tokens/s), as arrays."""
        if self._arr is None or self._arr[0].size != len(self.cols):
            self._arr = (np.array([q for q, _ in self.cols], dtype=np.int64),
                         np.array([r.gpus for _, r in self.cols], dtype=float).reshape(len(self.cols), self.T),
                         np.array([r.tokens_per_s for _, r in self.cols]))
        return self._arr

    _arr = None

    def _rc(self, duals: np.ndarray) -> np.ndarray:
        """Every replica column's reduced cost under the duals."""
        q, n, theta = self._arrays()
        cost = n @ np.array(self.prices)
        beta = np.array(self.betas)[q]
        if self.demands is not None:
            coeff = np.minimum(beta * theta, np.array(self.demands)[q])
            rc = cost - duals[q] * coeff
        else:
            rc = -duals[q] * beta * theta
        return rc - duals[self.budget_row] * cost - n @ duals[self.Q:self.Q + self.T]

    def _fix(self, duals: np.ndarray, limit: float) -> None:
        """Columns of reduced cost above `limit` (and of types not allowed) fixed at 0, the others free."""
        if not self.cols:
            return
        _, n, _ = self._arrays()
        ok = self._rc(duals) <= limit if math.isfinite(limit) else np.ones(len(self.cols), dtype=bool)
        if self.allowed is not None:
            banned = [g for g in range(self.T) if g not in self.allowed]
            ok &= ~np.any(n[:, banned] > 0, axis=1) if banned else True
        idx = np.arange(self.off, self.off + len(self.cols), dtype=np.int32)
        self.h.changeColsBounds(idx.size, idx, np.zeros(idx.size), np.where(ok, INF, 0.0))

    def _ip(self, deadline: float, gap: float = EXACT_GAP, cap_s: float = math.inf) -> tuple[str, float]:
        status, obj = self._run(min(max(deadline - time.perf_counter(), 0.01), cap_s), gap)
        if status == "infeasible":
            return status, math.inf
        if self.h.getInfo().primal_solution_status != 2:
            raise SolverError(f"HiGHS stopped ({status}) before finding any fleet; raise the time limit", status)
        vals = np.array(self.h.getSolution().col_value)
        again = float(np.dot(np.array(self.h.getLp().col_cost_), vals))
        if abs(again - obj) > 1e-7 * max(1.0, abs(obj)):
            raise SolverError(f"internal: HiGHS's fleet solution costs {again:.9g}, its objective says {obj:.9g}", status)
        return status, obj

    def _y(self) -> dict[int, int]:
        vals = self.h.getSolution().col_value
        return {j: int(round(v)) for j, v in enumerate(vals) if j >= self.off and round(v) > 0}

    def shortfall(self) -> float:
        """The shortfall columns' total in the last solution (tokens/s)."""
        vals = self.h.getSolution().col_value
        return float(sum(vals[1:self.off]))
