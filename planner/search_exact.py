"""The exact searches of `Planner` (planner.search): the primitive problems (max throughput under a budget,
min cost above a floor), the proven minimum $/token by a threshold sweep, and the exact cost/throughput
Pareto frontier.

A mixin: the model factory and run bookkeeping it calls (`model`, `levels`, `_solve`, `_apply_limits`,
`_leave_open`, ...) live on `Planner`.
"""
from __future__ import annotations

import heapq
import math
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from .candidates import Level
from .highs_direct import holding
from .milp import StoppedWithoutPlan
from .plan import Plan, Result
from .units import REL_EPS, SAME_FIGURE_REL, at_least, at_most, exceeds, falls_short, up

EXACT_GAP = 1e-9
# MILPs the frontier sweep solves at once (in threads). Fixed, not the machine's core count: the batches
# decide which of two equally good plans is found, so a fixed number keeps the output the same everywhere.
FRONTIER_THREADS = 2
Unit = tuple[Level, "int | None"]


class ExactSearch:
    def max_throughput(self, budget: float | None, gap: float = EXACT_GAP) -> Plan | None:
        """Best throughput with cost <= budget over all levels; ties broken toward lower cost.

        Exact bisection on the throughput floor: "a plan with all stages >= theta and cost <= B exists"
        is monotone in theta, and theta ranges over the distinct option throughputs, so O(log #options)
        min-cost solves find the largest feasible floor; its min-cost plan is also the tie-break."""
        st = self.scenario.settings
        caps = [b for b in (budget, st.max_usd_per_hour) if b is not None]
        cap = min(caps) if caps else None
        best: Plan | None = None
        for c in sorted(self.levels, key=lambda c: -max(o.tokens_per_s for o in self._by_level[c])):
            lm = self.model(c)
            if best and falls_short(lm.thetas[-1], best.tokens_per_s):
                continue
            if not self._apply_limits(lm):
                continue
            lm.set_budget(cap)
            thetas = [t for t in lm.thetas if st.min_tokens_per_s is None or t >= st.min_tokens_per_s]
            if best:
                thetas = [t for t in thetas if at_least(t, best.tokens_per_s)]
            lo, hi, found = 0, len(thetas) - 1, None
            while lo <= hi:
                mid = (lo + hi) // 2
                lm.set_floor(thetas[mid])
                out = self._solve(lm, gap)
                if out is None:
                    hi = mid - 1
                else:
                    found = self._plan(lm, out)
                    lo = max(mid + 1, self._index_at_or_above(thetas, found.stage_tokens_per_s) + 1)
            lm.set_budget(st.max_usd_per_hour)
            if found is None:
                continue
            if best is None or (found.tokens_per_s, -found.cost_usd_per_hour) > (best.tokens_per_s, -best.cost_usd_per_hour):
                best = found
        return best

    @staticmethod
    def _index_at_or_above(thetas: list[float], value: float) -> int:
        """Largest index whose theta is <= value (the plan already achieves every floor up to it)."""
        import bisect

        return bisect.bisect_right(thetas, up(value)) - 1

    def min_cost(self, floor: float | None, gap: float, strict: bool = False) -> Plan | None:
        """Cheapest plan whose throughput is >= floor (> floor if strict), over all levels."""
        best: Plan | None = None
        for c in self.levels:
            lm = self.model(c)
            if not self._apply_limits(lm):
                continue
            if floor is not None:
                if not lm.floor_feasible(floor, strict):
                    continue
                st_floor = self.scenario.settings.min_tokens_per_s
                if st_floor is None or floor >= st_floor:
                    lm.set_floor(floor, strict)
            out = self._solve(lm, gap)
            if out is None:
                continue
            plan = self._plan(lm, out)
            if best is None or (plan.cost_usd_per_hour, -plan.tokens_per_s) < (best.cost_usd_per_hour, -best.tokens_per_s):
                best = plan
        return best

    def exact(self, with_frontier: bool = False) -> Result:
        """Proven minimum $/token by a threshold sweep along the cost/throughput frontier.

        Per unit (level, stage count): the cheapest plan at floor 0, then the cheapest plan strictly faster
        than the last one, and so on. The minimum of C/T is attained on this frontier, and once the
        frontier's cost C_k satisfies C_k / T_max >= the best ratio so far (T_max: the fastest option
        of the unit), no later point can improve it, so the sweep stops there; and since a later plan
        costs at least C_k, it can only win with T > q_best * C_k, so the next floor jumps there. Units are visited by
        an upper bound on T/C (each stage costs at least s * min_o c_o/(T_o s_o) per unit of
        throughput) and skipped when the bound cannot beat the incumbent."""
        if with_frontier:  # the minimum of C/T is attained at a frontier point
            points = self.frontier()
            self._restore_frontier_proof()
            solves = self._frontier_proof[2]
            best = min(points, key=lambda p: (p.cost_usd_per_hour / p.stage_tokens_per_s, p.cost_usd_per_hour),
                       default=None)
        else:
            best = self._ratio_sweep()
            solves = len(self._statuses)
        if best is None:
            raise self.explain_infeasible()
        gap = self.ratio_gap(best)
        proven = gap <= EXACT_GAP
        status = "optimal" if proven else ("time_limit" if self._limits else "link_bound")
        frontier = tuple(points) if with_frontier else ()
        how = f"threshold sweep along the cost/throughput frontier over {len(self.levels)} pipeline level(s), " \
              f"{solves} MILP solves; "
        if proven:
            how += "proven minimum $/token"
            if self._limits:
                how += " (some solves stopped at a limit, but what they left open cannot beat this plan)"
        else:
            why = []
            if self._limits:
                why.append(f"{self._limits[0]}" + (f" (and {len(self._limits) - 1} more)" if len(self._limits) > 1 else ""))
            if best.link_bound:
                why.append(_link_words(best))
            how += "; ".join(why) + f"; best plan found, not proven optimal: at most {gap:.2%} above the minimum $/token"
        extra = {"solves": solves, "gap_on": "usd_per_token", "limits": list(self._limits)}
        if with_frontier:
            extra["frontier_complete"] = self._frontier_status[1]
        return Result("exact", best, status, proven, gap, how,
                      self.solve_seconds, self.build_seconds, self.problem_size(), frontier=frontier,
                      warnings=self._target_warnings(best), extra=extra)

    def _ratio_sweep(self) -> Plan | None:
        self._start()
        best: Plan | None = None
        bounds = {c: self._unit_q_bound(c) for c in self.levels}
        units = sorted(self.levels, key=lambda c: -bounds[c])
        for i, c in enumerate(units, start=1):
            best_q = best.stage_tokens_per_s / best.cost_usd_per_hour if best else 0.0
            if best is not None and exceeds(bounds[c], best_q) and self._time_is_up():
                self._skip_units([u for u in units[i - 1:] if exceeds(bounds[u], best_q)])
                break
            if exceeds(bounds[c], best_q):
                for plan in self._level_sweep(c, best_q):
                    q = plan.stage_tokens_per_s / plan.cost_usd_per_hour
                    if best is None or exceeds(q, best_q) or (
                            math.isclose(q, best_q, rel_tol=REL_EPS) and plan.cost_usd_per_hour < best.cost_usd_per_hour):
                        best, best_q = plan, q
            self._report(i / len(units), f"exact: {i}/{len(units)} pipeline levels")
        return best

    def _level_sweep(self, level: Unit, prune_q: float | None = None, stop=None, known=None):
        """Yield the frontier plans of one unit in increasing cost: the cheapest plan, then the cheapest
        plan strictly faster than the last, and so on. The sweep ends early when `stop(plan, t_max)`
        says no later (costlier, at most t_max fast) plan can improve the caller's objective, or, with
        `prune_q`, when no later plan can reach T/C > prune_q. With `known(C)`, the best throughput of
        the plans already found at cost <= C, later plans (cost >= C) matter only if faster than that,
        so the floor jumps there and the sweep stops once t_max cannot beat it."""
        lm = self.model(level)
        if not self._apply_limits(lm):
            return
        t_max = lm.thetas[-1]
        st_floor = self.scenario.settings.min_tokens_per_s
        floor = None
        if known is not None:
            # every plan of the unit costs at least P x its cheapest stage, so it matters only if faster
            # than what that much money already buys
            floor = known(self._unit_cost_floor(level)) or None
            if floor is not None and at_most(t_max, floor):
                return
        while True:
            if floor is not None:
                if not lm.floor_feasible(floor, strict=True):
                    return
                lm.set_floor(max(floor, st_floor or 0.0), strict=st_floor is None or floor >= st_floor)
            try:
                out = self._solve(lm, EXACT_GAP)
            except StoppedWithoutPlan as exc:  # the rest of this unit stays open, down to the solver's bound
                self._statuses.append(exc.status)
                self._limits.append(f"the MILP of {_unit_name(level)}" + (f" at a floor of {floor:.6g} tokens/s"
                                    if floor else "") + f" stopped at its {exc.status.replace('_', ' ')} before "
                                    "finding a plan")
                self._leave_open(level, t_max, exc.bound)
                return
            if out is None:
                return
            plan = self._plan(lm, out)
            # every plan at this floor costs at least `lower` (the plan's cost when the solve is proven)
            lower = out.objective if out.status == "optimal" else out.bound
            if out.status != "optimal":
                self._note_limit(level, out, floor)
            yield plan
            if prune_q is not None:
                prune_q = max(prune_q, plan.stage_tokens_per_s / plan.cost_usd_per_hour)
                if at_most(t_max / plan.cost_usd_per_hour, prune_q):
                    self._leave_open(level, t_max, lower)  # within prune_q unless the solve was stopped
                    return
            if stop is not None and stop(plan, t_max):
                self._leave_open(level, t_max, lower)
                return
            floor = plan.stage_tokens_per_s
            if known is not None:
                floor = max(floor, known(plan.cost_usd_per_hour))
                if at_most(t_max, floor):
                    self._leave_open(level, t_max, lower)
                    return
            if prune_q is not None:
                # a later plan costs C >= this plan's C, so it beats T/C = prune_q only if T > prune_q * C
                floor = max(floor, prune_q * plan.cost_usd_per_hour)
            if self._time_is_up():
                # nothing above this floor was searched: plans up to t_max, at no less than `lower`
                self._leave_open(level, t_max, lower)
                self._limits.append(f"the time limit ({self.scenario.settings.time_limit_s:g} s) stopped the "
                                    f"sweep of {_unit_name(level)} at {floor:.6g} tokens/s")
                return
            # plans skipped up to the new floor are no better than one found, unless the solve was stopped
            self._leave_open(level, floor, lower)

    def _unit_cost_floor(self, unit: Unit) -> float:
        """No plan of the unit costs less: P stages, each at least its cheapest option ($/h)."""
        p_min = unit[1] or min(unit[0].stage_counts)
        return p_min * min(o.cost_usd_per_hour for o in self._by_level[unit])

    def frontier(self) -> list[Plan]:
        """Exact cost/throughput Pareto frontier over all units (every non-dominated plan).

        All units are swept at once, in increasing cost: each unit's sweep (`_level_sweep`) holds its next
        plan, the cheapest of the unit above its floor, and the cheapest held plan is taken next. So when a
        unit's sweep moves on from a plan of cost C, the plans found so far are (nearly) the whole frontier
        up to C, and `known(C)` lifts its floor past everything another unit already beats. A held plan
        that a plan found since dominates is dropped.

        FRONTIER_THREADS sweeps move on at once, their MILPs solved in threads (HiGHS releases the GIL):
        batches of sweeps taken in the same order, each batch seeing the plans found before it, so the
        frontier does not depend on which thread finishes first. Cached: the settings' limits are fixed."""
        if self._frontier is not None:
            return self._frontier
        self._start()
        found: list[Plan] = []

        def known(cost: float) -> float:
            return fastest_within(found, cost)

        units = sorted(self.levels, key=lambda u: -max(o.tokens_per_s for o in self._by_level[u]))
        for unit in units:  # built here, in one thread
            self.model(unit)
        sweeps = {i: self._level_sweep(unit, None, known=known) for i, unit in enumerate(units)}
        # (cost, -tokens/s, sweep, its next plan); a sweep not started yet waits at the least its unit's
        # plans can cost, so that it starts above everything cheaper found by then
        heap: list[tuple[float, float, int, Plan | None]] = [
            (self._unit_cost_floor(unit), -math.inf, i, None) for i, unit in enumerate(units)]
        heapq.heapify(heap)
        skipped: list[Unit] = []
        done = 0
        with _Threads(FRONTIER_THREADS) as threads:
            while heap:
                batch = []
                while len(batch) < FRONTIER_THREADS and heap:
                    cost, _, i, plan = heapq.heappop(heap)
                    if plan is None and found and self._time_is_up():
                        skipped.append(units[i])
                        del sweeps[i]
                        continue
                    if plan is not None and exceeds(plan.stage_tokens_per_s, known(cost)):
                        found.append(plan)
                    batch.append(i)
                for i, plan in zip(batch, threads.map(lambda i: next(sweeps[i], None), batch)):
                    if plan is not None:
                        heapq.heappush(heap, (plan.cost_usd_per_hour, -plan.stage_tokens_per_s, i, plan))
                        continue
                    del sweeps[i]
                    done += 1
                    self._report(done / len(units), f"frontier: {done}/{len(units)} pipeline levels, "
                                 f"{len(found)} plans")
        if skipped:
            self._skip_units(skipped)
        found = pareto_filter(found)
        self._frontier = found
        self._frontier_status = self._status()
        self._frontier_proof = (self._q_open, tuple(self._limits), len(self._statuses))
        return found

    def _restore_frontier_proof(self) -> None:
        """Make the frontier's open bound and limits the current ones (another search may have run since)."""
        self._q_open, limits, _ = self._frontier_proof
        self._limits = list(limits)

    def _target_warnings(self, plan: Plan) -> tuple[str, ...]:
        st = self.scenario.settings
        out = []
        if st.target_usd_per_million_tokens is not None and plan.usd_per_million_tokens > st.target_usd_per_million_tokens:
            out.append(f"target ${st.target_usd_per_million_tokens:g}/M tokens not met: this plan costs "
                       f"${plan.usd_per_million_tokens:.4g}/M tokens")
        if st.max_usd_per_million_tokens is not None and plan.usd_per_million_tokens > st.max_usd_per_million_tokens:
            out.append(f"the total-cost cap allows ${st.max_usd_per_million_tokens:.4g}/M tokens; the plan costs "
                       f"${plan.usd_per_million_tokens:.4g}/M tokens")
        if plan.link_bound:
            out.append("a stage-to-stage link is the bottleneck of this plan; the MILP does not model link "
                       "limits, so this plan is not proven optimal")
        return tuple(out)


def _unit_name(unit: Unit) -> str:
    level, p = unit
    return str(level) if p is None else f"{level}, {p} stage(s)"


def _link_words(plan: Plan) -> str:
    """Which stage-to-stage link bounds the plan, in words."""
    link = min(plan.links, key=lambda k: k.tokens_per_s)
    return (f"the link after stage {link.after_stage} ({link.from_type} -> {link.to_type}, {link.gb_per_s:g} GB/s) "
            f"carries only {link.tokens_per_s:.4g} tokens/s, below the stages' {plan.stage_tokens_per_s:.4g}; the MILP "
            f"does not model links")


def fastest_within(plans: list[Plan], cost: float) -> float:
    """The best stage throughput among `plans` costing at most `cost` $/h (0 if none): what a later,
    costlier plan must beat to be worth finding."""
    return max((p.stage_tokens_per_s for p in plans if at_most(p.cost_usd_per_hour, cost)), default=0.0)


def pareto_filter(plans: list[Plan]) -> list[Plan]:
    """Plans not dominated by another (cheaper-or-equal and faster-or-equal, one strictly), by cost.
    Costs equal to 1e-9 count as equal (sums of the same prices in another order differ in the last bit)."""
    out: list[Plan] = []
    for p in sorted(plans, key=lambda p: (p.cost_usd_per_hour, -p.tokens_per_s)):
        if out and at_most(p.tokens_per_s, out[-1].tokens_per_s):
            continue
        if out and at_most(p.cost_usd_per_hour, out[-1].cost_usd_per_hour, SAME_FIGURE_REL):
            out[-1] = p  # as cheap and faster
            continue
        out.append(p)
    return out


class _Threads:
    """`map` over a batch in up to n threads, each running Python under one lock (`holding`) that it lets go
    of only inside HiGHS; n = 1 runs the batch here. Exceptions (CancelledError, SolverError) come out of
    `map` as from a plain loop, after the whole batch has finished."""

    def __init__(self, n: int):
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="frontier") if n > 1 else None

    def __enter__(self) -> "_Threads":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def map(self, fn, items: list) -> list:
        if self.pool is None or len(items) == 1:
            return [fn(x) for x in items]

        def run(x):
            with holding(self.lock):
                return fn(x)

        futures = [self.pool.submit(run, x) for x in items]
        wait(futures)
        return [f.result() for f in futures]
