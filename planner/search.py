"""Search methods over the placement MILP: exact (min $/token), enumeration (budget grid), weighted.

Concurrency couples the stages (every stage holds the KV cache of every sequence in flight), so it is
an outer level: one MILP per level, each option evaluated at that level. For a fixed plan, throughput
rises with concurrency, so the levels compete only through memory; the best over levels is exact.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

from .candidates import CandidateSet, Level, Option, build_candidates
from .domain import Scenario
from .errors import CancelledError, InfeasibleError, InputError, SolverError
from .milp import LevelModel, ShapeModel, SolveOutcome, StoppedWithoutPlan, shape_table
from .plan import CurvePoint, Plan, Result, make_plan
from .units import GB, GIB, REL_EPS, SAME_FIGURE_REL, at_least, at_most, exceeds, falls_short, up, usd_per_hour_at

log = logging.getLogger(__name__)
EXACT_GAP = 1e-9
# A level with more options than this (and no shape model) gets one MILP per stage count. Measured on the
# bundled realistic scenario (exact with the frontier): ~230 options a level, one MILP is 1.8x faster;
# ~420 (fine sizes), per stage count 1.7x faster; ~1,150 (even sizes), 3.7x faster.
SPLIT_OPTIONS = 300
Unit = tuple[Level, "int | None"]


class Planner:
    """Holds one scenario's candidates and its per-level MILPs (built lazily, reused across solves)."""

    def __init__(self, scenario: Scenario, candidates: CandidateSet | None = None, cancel=None, progress=None):
        """`cancel`: an object with is_set() (e.g. threading.Event); once set, the next MILP solve raises
        CancelledError instead of running, so a worker thread stops within one solve.
        `progress(fraction, message)`: called as the units of a search are done."""
        self.scenario = scenario
        self.cancel = cancel
        self.progress = progress
        self.candidates = candidates or build_candidates(scenario)
        by_level: dict[Level, list[Option]] = {}
        for o in self.candidates.options:
            by_level.setdefault(o.level, []).append(o)
        feasible: dict[Level, list[Option]] = {}
        for o in self.candidates.options + tuple(o for o in self.candidates.excluded if o.feasible):
            feasible.setdefault(o.level, []).append(o)
        # a unit is one MILP: a level over shapes for one stage count (when exact), else the whole level
        self._by_level: dict[Unit, list[Option]] = {}
        self._tables: dict[Unit, dict] = {}
        sizes = self.candidates.sizes
        L, a = scenario.model.num_layers, min(sizes)
        for level, opts in by_level.items():
            # a TTFT limit sums the stages' prefill times, which the shape model (sizes chosen after the
            # solve) cannot express: the per-option model handles it
            table = None if scenario.settings.max_ttft_ms is not None else shape_table(feasible[level], sizes)
            if table is None and (len(level.stage_counts) == 1 or len(opts) <= SPLIT_OPTIONS):
                self._by_level[(level, None)] = opts
                continue
            # one unit per stage count: exactly as good together as one MILP choosing P, and for many
            # options far faster (their z_P choice and fit rows make the one MILP hard)
            for p in level.stage_counts:
                self._by_level[(level, p)] = [o for o in opts if o.max_stages >= p and o.min_stages <= p
                                              and (o.role != "only" or p == 1) and o.size <= L - (p - 1) * a]
                if table is not None:
                    self._tables[(level, p)] = table
        self._models: dict[Unit, LevelModel | ShapeModel] = {}
        self._frontier: list[Plan] | None = None
        self._start()

    # ---------------------------------------------------------------- plumbing
    @property
    def levels(self) -> list[Unit]:
        """The MILP units (level, stage count or None for all) that can host a plan (some first-role and
        some last-role option)."""
        out = []
        for unit, opts in self._by_level.items():
            if any(o.first for o in opts) and any(o.last for o in opts):
                out.append(unit)
        return sorted(out, key=lambda u: (u[0], u[1] or 0))

    def model(self, unit: Unit) -> LevelModel | ShapeModel:
        """The unit's MILP: over stage shapes when the sizes are contiguous and the rates monotone in
        the size (exact and far smaller), else over individual options."""
        if unit not in self._models:
            level, p = unit
            sub = level if p is None else Level(level.microbatch, (p,), (level.concurrency(p),))
            if unit in self._tables:
                self._models[unit] = ShapeModel(self.scenario, sub, self._tables[unit], min(self.candidates.sizes))
            else:
                self._models[unit] = LevelModel(self.scenario, sub, self._by_level[unit])
        return self._models[unit]

    @property
    def build_seconds(self) -> float:
        return sum(m.build_seconds for m in self._models.values())

    @property
    def solve_seconds(self) -> float:
        return sum(m.solve_seconds for m in self._models.values())

    def problem_size(self) -> dict:
        sizes = [m.size for m in self._models.values()]
        total = {"options": len(self.candidates.options), "excluded_options": len(self.candidates.excluded),
                 "levels": len(self.levels), "models_built": len(sizes)}
        for key in ("integers", "binaries", "variables", "rows"):
            total[key] = sum(s[key] for s in sizes)
        return total

    def _time_left(self) -> float:
        return max(0.05, self.scenario.settings.time_limit_s - (time.perf_counter() - self._t0))

    def _start(self) -> None:
        self._t0 = time.perf_counter()
        self._statuses: list[str] = []
        self._gaps: list[float] = []
        # what the last search left unproven: a line per solve or sweep that a limit stopped, and an upper
        # bound on T/C (stage tokens/s per $/h) of every plan the search has not ruled out (0: none left)
        self._limits: list[str] = []
        self._q_open = 0.0

    def _unit_q_bound(self, unit: Unit) -> float:
        """An upper bound on T/C over the unit's plans: a stage of s layers on option o costs
        c_o >= s (c_o / (T_o s_o)) T for a pipeline of throughput T <= T_o, so C >= L T min_o c_o / (T_o s_o)."""
        opts = self._by_level[unit]
        worst = min((o.cost_usd_per_hour / (o.tokens_per_s * o.size) for o in opts if o.tokens_per_s > 0),
                    default=0.0)
        return math.inf if worst <= 0 else 1.0 / (self.scenario.model.num_layers * worst)

    def _leave_open(self, unit: Unit, top: float, lower_cost: float) -> None:
        """Plans of `unit` up to `top` tokens/s costing at least `lower_cost` $/h were not ruled out by a
        proven solve: raise the open bound on T/C to what they could reach."""
        q = self._unit_q_bound(unit)
        if lower_cost > 0:
            q = min(q, top / lower_cost)
        self._q_open = max(self._q_open, q)

    def _note_limit(self, unit: Unit, out: SolveOutcome, floor: float | None) -> None:
        at = f" at a floor of {floor:.6g} tokens/s" if floor else ""
        gap = f"{out.gap:.2%}" if math.isfinite(out.gap) else "unknown"
        self._limits.append(f"the MILP of {_unit_name(unit)}{at} stopped at its {out.status.replace('_', ' ')} "
                            f"(MIP gap {gap})")

    def _skip_units(self, units: list[Unit]) -> None:
        """The time limit is up: these units are not searched; their plans stay open up to their bound."""
        for u in units:
            self._leave_open(u, math.inf, 0.0)
        self._limits.append(f"the time limit ({self.scenario.settings.time_limit_s:g} s) left {len(units)} "
                            f"pipeline level(s) unsearched")

    def _time_is_up(self) -> bool:
        return time.perf_counter() - self._t0 > self.scenario.settings.time_limit_s

    def ratio_gap(self, plan: Plan) -> float:
        """The proven bound on how far `plan`'s $/token can be above the minimum, relative to it:
        (plan's $/token - lower bound on the minimum $/token) / plan's $/token, the lower bound being 1 /
        the largest T/C any plan can reach (the best found, or the open bound of what the search did not
        rule out). Link limits only lower a plan's throughput, so the stage throughputs bound it."""
        q_plan = plan.tokens_per_s / plan.cost_usd_per_hour
        q_top = max(plan.stage_tokens_per_s / plan.cost_usd_per_hour, self._q_open)
        if not math.isfinite(q_top):
            return 1.0
        if at_most(q_top, q_plan):  # the same figure up to rounding
            return 0.0
        return 1.0 - q_plan / q_top

    def _report(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(fraction, message)

    def _solve(self, lm: LevelModel | ShapeModel, gap: float) -> SolveOutcome | None:
        if self.cancel is not None and self.cancel.is_set():
            raise CancelledError()
        out = lm.solve(self._time_left(), gap)
        if out is not None:
            self._statuses.append(out.status)
            self._gaps.append(out.gap)
        return out

    def _plan(self, lm: LevelModel, out: SolveOutcome) -> Plan:
        return make_plan(self.scenario, list(out.options))

    def _apply_limits(self, lm: LevelModel) -> bool:
        """Budget cap and throughput floor from the settings; False if the floor is out of reach."""
        st = self.scenario.settings
        lm.set_budget(st.max_usd_per_hour)
        floor = st.min_tokens_per_s
        if floor is not None:
            if not lm.floor_feasible(floor):
                return False
            lm.set_floor(floor)
        else:
            lm.set_floor(None)
        return True

    def _status(self) -> tuple[str, bool, float]:
        """(status, every solve proven, largest MIP gap): the solves' own status, for searches whose
        objective is not $/token (weighted); see `ratio_gap` for the gap on $/token."""
        gap = max(self._gaps, default=0.0)
        limited = [s for s in self._statuses if s != "optimal"]
        status = "optimal" if not limited and not self._limits else (limited[0] if limited else "time_limit")
        return status, status == "optimal", gap

    # ---------------------------------------------------------------- primitive problems
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

    # ---------------------------------------------------------------- methods
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
            opts = self._by_level[level]
            p_min = level[1] or min(level[0].stage_counts)
            floor = known(p_min * min(o.cost_usd_per_hour for o in opts)) or None
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

    def frontier(self) -> list[Plan]:
        """Exact cost/throughput Pareto frontier over all units (every non-dominated plan).

        Units are swept fastest first; each unit's sweep skips past plans that the frontier found so far
        already dominates (see `_level_sweep`'s `known`). Cached: the settings' limits are fixed."""
        if self._frontier is not None:
            return self._frontier
        self._start()
        found: list[Plan] = []

        def known(cost: float) -> float:
            return fastest_within(found, cost)

        units = sorted(self.levels, key=lambda u: -max(o.tokens_per_s for o in self._by_level[u]))
        for i, unit in enumerate(units, start=1):
            if found and self._time_is_up():
                self._skip_units(units[i - 1:])
                break
            for plan in self._level_sweep(unit, None, known=known):
                found.append(plan)
            found = pareto_filter(found)
            self._report(i / len(units), f"frontier: {i}/{len(units)} pipeline levels, {len(found)} plans")
        self._frontier = found
        self._frontier_status = self._status()
        self._frontier_proof = (self._q_open, tuple(self._limits), len(self._statuses))
        return found

    def _restore_frontier_proof(self) -> None:
        """Make the frontier's open bound and limits the current ones (another search may have run since)."""
        self._q_open, limits, _ = self._frontier_proof
        self._limits = list(limits)

    def weighted(self, weight: float | None = None, scaling: str | None = None) -> Result:
        """The plan a cost weight w picks (0 = fastest, 1 = cheapest); `scaling` (default: the settings'
        weight_scaling) says how w is read:

        - "normalised": over the exact cost/throughput Pareto frontier, throughput and cost are rescaled
          to [0, 1] between the cheapest frontier plan (t = c = 0) and the fastest (t = c = 1), and the
          pick maximises (1-w) t - w c. So w = 0 is the fastest plan, w = 1 the cheapest, and weights in
          between walk along the frontier whatever the units or the size of the pool. The maximum of a
          linear objective over all feasible plans lies on the frontier (a dominated plan is beaten by the
          plan that dominates it), so when the frontier is exact the pick is exactly the best plan for this
          objective; frontier plans inside its convex hull are never the unique best for any w.
        - "seed": the seed's objective (1-w) T / T_norm - w C / C_norm with T_norm, C_norm from the
          settings (default: the largest option throughput and cost), found by `_weighted_seed`.

        Either way a heuristic for $/token: Result.proven_optimal is False and the gap is the solves' MIP gap."""
        st = self.scenario.settings
        scaling = scaling or st.weight_scaling
        if scaling == "seed":
            return self._weighted_seed(weight)
        if scaling != "normalised":
            raise InputError(f"unknown weight scaling '{scaling}' (normalised, seed)")
        w = st.cost_weight if weight is None else weight
        front = self.frontier()
        self._restore_frontier_proof()
        if not front:
            raise self.explain_infeasible()
        low, high = front[0], front[-1]  # cheapest and fastest (pareto_filter sorts by cost, then speed rises)
        t_span = high.tokens_per_s - low.tokens_per_s or 1.0  # one-plan frontier: any span picks that plan
        c_span = high.cost_usd_per_hour - low.cost_usd_per_hour or 1.0
        points = [{"cost_usd_per_hour": p.cost_usd_per_hour, "tokens_per_s": p.tokens_per_s,
                   "usd_per_million_tokens": p.usd_per_million_tokens,
                   "ttft_ms": p.ttft_s * 1e3, "tpot_ms": p.tpot_s * 1e3,
                   "throughput_norm": (p.tokens_per_s - low.tokens_per_s) / t_span,
                   "cost_norm": (p.cost_usd_per_hour - low.cost_usd_per_hour) / c_span} for p in front]
        values = [(1 - w) * q["throughput_norm"] - w * q["cost_norm"] for q in points]
        top = max(values)
        pick = next(i for i, v in enumerate(values) if v >= top - REL_EPS)  # ties: the cheaper plan (values ~1)
        plan = front[pick]
        status, complete = self._frontier_status[0], self._frontier_status[1]
        objective_proven = status == "optimal" and complete
        how = (f"cost weight w={w:g} over the cost/throughput frontier ({len(front)} plans), each normalised "
               f"between the cheapest (0) and the fastest (1) plan: maximises (1-w)*throughput - w*cost; "
               + ("exact for this objective (the frontier is proven complete)" if objective_proven else
                  "the frontier is not proven complete, so the pick is the best of the plans found")
               + "; not a $/token optimum")
        gap = self._frontier_status[2]
        return Result("weighted", plan, status, False, gap, how, self.solve_seconds, self.build_seconds,
                      self.problem_size(), frontier=tuple(front), warnings=self._target_warnings(plan),
                      extra={"weight": w, "weight_scaling": "normalised",
                             # the objective in the seed's form (1-w) T/T_norm - w C/C_norm: the same pick, as
                             # the normalised one differs from it by a constant
                             "throughput_normalization": t_span, "cost_normalization": c_span,
                             "objective_value": (1 - w) * plan.tokens_per_s / t_span - w * plan.cost_usd_per_hour / c_span,
                             "normalised_value": values[pick], "frontier_points": points, "pick_index": pick,
                             "objective_proven": objective_proven, "gap_on": "mip", "limits": list(self._limits),
                             "frontier_complete": complete})

    def _weighted_seed(self, weight: float | None = None) -> Result:
        """The seed's weighted objective: maximise (1-w) T / T_norm - w C / C_norm over all levels.

        A linear objective in (T, C) is maximised on the cost/throughput frontier, so it is found by the
        frontier sweep, stopped once (1-w) T_max / T_norm - w C_k / C_norm cannot beat the incumbent.
        Optimal for its own objective; for $/token a heuristic whose answer depends on the normalisations."""
        self._start()
        if not self.levels:  # no option fits anywhere: say why, before the normalisations need one
            raise self.explain_infeasible()
        st = self.scenario.settings
        w = st.cost_weight if weight is None else weight
        t_norm = st.throughput_normalization or max(o.tokens_per_s for o in self.candidates.options)
        c_norm = st.cost_normalization or max(o.cost_usd_per_hour for o in self.candidates.options)

        def value(plan: Plan) -> float:
            return (1 - w) * plan.tokens_per_s / t_norm - w * plan.cost_usd_per_hour / c_norm

        best: list = [None, -math.inf]

        def stop(plan: Plan, t_max: float) -> bool:
            return (1 - w) * t_max / t_norm - w * plan.cost_usd_per_hour / c_norm <= best[1]

        found: list[Plan] = []

        def known(cost: float) -> float:
            # a plan dominated by one already found (as cheap or cheaper, as fast or faster) cannot beat it
            # on an objective rising in T and falling in C: each sweep skips to faster plans
            return fastest_within(found, cost)

        if self._frontier is not None:  # already known: the maximum is at a frontier point
            sweeps = [self._frontier]
        else:
            sweeps = (self._level_sweep(u, stop=stop, known=known) for u in
                      sorted(self.levels, key=lambda u: -max(o.tokens_per_s for o in self._by_level[u])))
        for sweep in sweeps:
            for plan in sweep:
                found.append(plan)
                v = value(plan)
                if best[0] is None or v > best[1] + REL_EPS * abs(best[1]):
                    best[0], best[1] = plan, v
        if best[0] is None:
            raise self.explain_infeasible()
        status, proven, gap = self._frontier_status if self._frontier is not None else self._status()
        how = (f"weighted objective (1-w)*T/{t_norm:g} - w*C/{c_norm:g} with w={w:g}, maximised over the "
               f"cost/throughput frontier; a heuristic for $/token")
        return Result("weighted", best[0], status, False, gap, how, self.solve_seconds, self.build_seconds,
                      self.problem_size(), warnings=self._target_warnings(best[0]),
                      extra={"weight": w, "weight_scaling": "seed", "throughput_normalization": t_norm,
                             "cost_normalization": c_norm,
                             "objective_value": best[1], "objective_proven": proven, "gap_on": "mip",
                             "limits": list(self._frontier_proof[1] if self._frontier is not None else self._limits)})

    def competitive_range(self) -> tuple[float, float | None, Plan, Plan]:
        """Budgets worth testing: from the cheapest feasible plan's cost to the most a plan may cost and
        still beat the target at the highest achievable throughput (None without a target)."""
        st = self.scenario.settings
        front = self.frontier()
        if not front:
            raise self.explain_infeasible()
        cheapest, fastest = front[0], front[-1]
        high = None
        if st.target_usd_per_million_tokens is not None:
            high = usd_per_hour_at(st.target_usd_per_million_tokens, fastest.billable_tokens_per_s)
        return cheapest.cost_usd_per_hour, high, cheapest, fastest

    def enumeration(self, factors: tuple[float, ...] | None = None) -> Result:
        """The seed's budget grid: ballpark = cost of the weighted plan; for each factor f, the best
        throughput with cost <= f * ballpark (ties toward lower cost), skipping budgets outside the
        competitive range. A grid: it can miss the minimum $/token, and says so.

        Every grid point is read off the exact frontier (computed once): the fastest frontier plan that
        fits the budget is the best throughput under it, and the cheapest at that throughput."""
        st = self.scenario.settings
        factors = tuple(factors or st.budget_factors)
        front = self.frontier()
        if not front:
            raise self.explain_infeasible()
        ballpark_plan = self.weighted(scaling="seed").plan  # the seed's ballpark, whatever the UI's weighting
        ballpark = ballpark_plan.cost_usd_per_hour
        low, high, cheapest, fastest = self.competitive_range()
        curve: list[CurvePoint] = []
        warnings: list[str] = []
        for f in factors:
            budget = f * ballpark
            if falls_short(budget, low, SAME_FIGURE_REL):
                curve.append(CurvePoint(budget, None, None, None, "infeasible (below the cheapest plan)"))
                continue
            if high is not None and budget > high and budget > low:
                curve.append(CurvePoint(budget, None, None, None, "skipped (cannot beat the target)"))
                continue
            plan = max((p for p in front if at_most(p.cost_usd_per_hour, budget)),
                       key=lambda p: (p.tokens_per_s, -p.cost_usd_per_hour))
            curve.append(CurvePoint(budget, plan.tokens_per_s, plan.cost_usd_per_hour,
                                    plan.usd_per_million_tokens, "solved", plan))
        solved = [p for p in curve if p.plan is not None]
        if not solved:
            # every grid point was outside the range: fall back to the cheapest plan, and say so
            warnings.append("no budget point fell inside the competitive range; showing the cheapest plan")
            best = cheapest
        else:
            best = min(solved, key=lambda p: (p.usd_per_million_tokens, p.cost_usd_per_hour)).plan
        status = self._frontier_status[0]
        self._restore_frontier_proof()
        gap = self.ratio_gap(best)  # how far the grid's best can be above the minimum $/token
        warnings.extend(self._target_warnings(best))
        how = (f"budget grid: max throughput at cost <= f x ${ballpark:.2f}/h for f in {list(factors)} "
               f"({len(solved)} solved, each exactly, from the cost/throughput frontier); best $/token on the "
               f"grid, not proven minimal")
        return Result("enumeration", best, status, False, gap, how, self.solve_seconds, self.build_seconds,
                      self.problem_size(), curve=tuple(curve), warnings=tuple(warnings),
                      extra={"ballpark_usd_per_hour": ballpark, "competitive_low": low, "competitive_high": high,
                             "fastest_tokens_per_s": fastest.tokens_per_s, "gap_on": "usd_per_token",
                             "limits": list(self._limits), "frontier_complete": self._frontier_status[1]})

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

    # ---------------------------------------------------------------- infeasibility
    def explain_infeasible(self) -> InfeasibleError | SolverError:
        """Say which limit binds, by how much, and what would make the scenario feasible: memory against
        what the model needs at the requested context, then each limit relaxed on its own (budget,
        throughput floor, latency SLOs, max stages, min layers per stage, segment sizes, GPU counts)."""
        from . import perf

        stopped = [x for x in getattr(self, "_limits", ()) if "before finding a plan" in x]
        if stopped:  # not proven infeasible: a limit stopped a solve that might have found a plan
            return SolverError(f"no plan found within the time limit ({self.scenario.settings.time_limit_s:g} s): "
                               f"{stopped[0]}; raise the time limit", "time_limit")
        sc = self.scenario
        st = sc.settings
        m, w, e = sc.model, sc.workload, sc.engine
        binding: list[str] = []
        hints: list[str] = []
        weights_gb = (m.num_layers * perf.layer_weight_bytes(m) + 2 * perf.embedding_bytes(m)) / GB
        seqs = w.concurrency or 1
        kv_tokens = perf.workload_kv_tokens(w)
        kv_gb = seqs * perf.stage_kv_bytes_per_sequence_per_gpu(m, m.num_layers, 1, kv_tokens) / GB
        usable = sum(e_.count * max(0.0, e_.spec.memory_bytes * e.memory_utilization
                                    - e.runtime_reserve_gib * GIB) / GB for e_ in sc.pool.entries)
        need = weights_gb + kv_gb
        slo = st.max_ttft_ms is not None or st.max_tpot_ms is not None
        blocked_by_slo = slo and any(o.bound == "latency" for o in self.candidates.excluded)
        if need > usable:
            binding.append(f"memory: the model needs {need:.0f} GB (weights {weights_gb:.0f} GB + KV cache "
                           f"{kv_gb:.1f} GB for {seqs} sequence(s) holding {kv_tokens} tokens on average) but the whole "
                           f"pool has {usable:.0f} GB usable ({e.memory_utilization:.0%} of memory less "
                           f"{e.runtime_reserve_gib:g} GiB per GPU): short by {need - usable:.0f} GB")
            hints.append(f"add at least {need - usable:.0f} GB of GPU memory, or serve a smaller model or "
                         f"shorter context")
        elif (not self.candidates.options or not self.levels) and not blocked_by_slo:
            what = ("no stage option fits on any GPU" if not self.candidates.options
                    else "no GPU can hold the first or the last stage (embedding / LM head)")
            binding.append(f"memory: {what} (model weights {weights_gb:.0f} GB, pool usable memory {usable:.0f} GB; "
                           f"a stage must fit inside one node's tensor-parallel group)")
            hints.append("add GPUs with more memory per node, lower the concurrency or context, or allow "
                         "smaller segments")
        if not binding:
            relaxations = [
                ("max_usd_per_hour", None, "budget cap ${:g}/h"),
                ("min_tokens_per_s", None, "throughput floor {:g} tokens/s"),
                ("max_ttft_ms", None, "TTFT SLO {:g} ms"),
                ("max_tpot_ms", None, "TPOT SLO {:g} ms"),
                ("max_stages", m.num_layers, "max pipeline stages {}"),
                ("min_layers_per_stage", 1, "min layers per stage {}"),
            ]
            for field_name, value, label in relaxations:
                current = getattr(st, field_name)
                if current is None or current == value:
                    continue
                plan = self._relaxed_plan(settings=replace(st, **{field_name: value}))
                if plan is None:
                    continue
                binding.append(label.format(current))
                if field_name == "max_usd_per_hour":
                    hints.append(f"raise the budget to at least ${plan.cost_usd_per_hour:.2f}/h "
                                 f"(+${plan.cost_usd_per_hour - current:.2f}/h)")
                elif field_name == "max_stages":
                    hints.append(f"allow {len(plan.stages)} stages")
                elif field_name == "min_layers_per_stage":
                    hints.append(f"allow stages of {min(s.num_layers for s in plan.stages)} layers")
                elif field_name == "max_ttft_ms":
                    hints.append(f"the cheapest plan without the TTFT limit has TTFT {plan.ttft_s * 1e3:.0f} ms")
                elif field_name == "max_tpot_ms":
                    hints.append(f"the cheapest plan without the TPOT limit has TPOT {plan.tpot_s * 1e3:.1f} ms")
                else:
                    fastest = Planner(replace(sc, settings=replace(st, min_tokens_per_s=None))).max_throughput(None)
                    hints.append(f"lower the floor to {fastest.tokens_per_s:.0f} tokens/s or less "
                                 f"(asked {current:g})")
            if not binding and slo:
                plan = self._relaxed_plan(settings=replace(st, max_ttft_ms=None, max_tpot_ms=None))
                if plan is not None:
                    binding.append(f"latency SLOs together (TTFT {st.max_ttft_ms} ms, TPOT {st.max_tpot_ms} ms)")
                    hints.append(f"the cheapest plan without them has TTFT {plan.ttft_s * 1e3:.0f} ms and TPOT "
                                 f"{plan.tpot_s * 1e3:.1f} ms")
            if not binding and st.sizes is None and st.quantization != "full":
                plan = self._relaxed_plan(settings=replace(st, quantization="full"))
                if plan is not None:
                    binding.append(f"segment sizes ({st.quantization} set {list(self.candidates.sizes)})")
                    hints.append(f"use finer segment sizes (full): e.g. {[s.num_layers for s in plan.stages]}")
            if not binding:
                more = replace(sc.pool, entries=tuple(replace(x, count=x.count * 8) for x in sc.pool.entries))
                plan = self._relaxed_plan(pool=more)
                if plan is not None:
                    short = {g: n - sc.pool.entry(g).count for g, n in plan.gpus_by_type().items()
                             if n > sc.pool.entry(g).count}
                    binding.append("GPU counts: " + ", ".join(f"{g} has {sc.pool.entry(g).count}"
                                                              for g in short))
                    hints.append("add " + ", ".join(f"{n} x {g}" for g, n in short.items()) +
                                 f" (the cheapest plan with more GPUs uses {plan.num_gpus})")
            if not binding:
                binding.append(f"GPU counts / memory: the pool cannot hold {m.num_layers} layers "
                               f"({weights_gb:.0f} GB of weights) with the allowed segment sizes and limits")
                hints.append("add GPUs, use finer segment sizes, or lower the concurrency")
        return InfeasibleError("No plan satisfies the limits.", binding, hints)

    def _relaxed_plan(self, settings=None, pool=None) -> Plan | None:
        """The cheapest plan of this scenario with one thing changed, or None."""
        sc = replace(self.scenario, **{k: v for k, v in (("settings", settings), ("pool", pool)) if v is not None})
        try:
            other = Planner(sc)
        except InputError:
            return None
        return other.min_cost(None, EXACT_GAP) if other.levels else None


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


def solve(scenario: Scenario, method: str | None = None, cost_weight: float | None = None,
          with_frontier: bool = False, cancel=None, progress=None) -> Result:
    """Solve a scenario with its settings' method (or `method`); see `Planner` for cancel and progress."""
    planner = Planner(scenario, cancel=cancel, progress=progress)
    method = method or scenario.settings.method
    if method == "exact":
        return planner.exact(with_frontier=with_frontier)
    if method == "enumeration":
        return planner.enumeration()
    if method == "weighted":
        return planner.weighted(cost_weight)
    raise InputError(f"unknown method '{method}' (exact, enumeration, weighted)")
