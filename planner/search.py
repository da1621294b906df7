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

from .candidates import CandidateSet, Option, build_candidates
from .domain import Scenario
from .errors import InfeasibleError, InputError
from .milp import LevelModel, SolveOutcome
from .plan import CurvePoint, Plan, Result, make_plan

log = logging.getLogger(__name__)
EXACT_GAP = 1e-9


class Planner:
    """Holds one scenario's candidates and its per-level MILPs (built lazily, reused across solves)."""

    def __init__(self, scenario: Scenario, candidates: CandidateSet | None = None):
        self.scenario = scenario
        self.candidates = candidates or build_candidates(scenario)
        self._by_level: dict[int, list[Option]] = {}
        for o in self.candidates.options:
            self._by_level.setdefault(o.concurrency, []).append(o)
        self._models: dict[int, LevelModel] = {}
        self.notes: list[str] = []
        self._deadline = math.inf

    # ---------------------------------------------------------------- plumbing
    @property
    def levels(self) -> list[int]:
        """Concurrency levels that can host a plan (some first-role and some last-role option)."""
        out = []
        for c, opts in self._by_level.items():
            if any(o.first for o in opts) and any(o.last for o in opts):
                out.append(c)
        return sorted(out)

    def model(self, level: int) -> LevelModel:
        if level not in self._models:
            self._models[level] = LevelModel(self.scenario, self._by_level[level])
        return self._models[level]

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

    def _solve(self, lm: LevelModel, gap: float) -> SolveOutcome | None:
        out = lm.solve(self._time_left(), gap)
        if out is not None:
            self._statuses.append(out.status)
            self._gaps.append(out.gap)
        return out

    def _plan(self, lm: LevelModel, out: SolveOutcome) -> Plan:
        chosen: list[Option] = []
        for i, k in out.counts.items():
            chosen.extend([lm.opts[i]] * k)
        return make_plan(self.scenario, chosen)

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
        gap = max(self._gaps, default=0.0)
        status = "optimal" if all(s == "optimal" for s in self._statuses) else "time_limit"
        return status, status == "optimal", gap

    # ---------------------------------------------------------------- primitive problems
    def max_throughput(self, budget: float | None, gap: float) -> Plan | None:
        """Best throughput with cost <= budget over all levels; ties broken toward lower cost."""
        best: tuple[float, float, Plan] | None = None
        for c in sorted(self.levels, key=lambda c: -max(o.tokens_per_s for o in self._by_level[c])):
            lm = self.model(c)
            if best and lm.m.thetas[-1] < best[0] * (1 - 1e-12):
                continue
            if not self._apply_limits(lm):
                continue
            cap = budget if self.scenario.settings.max_usd_per_hour is None else \
                min(budget if budget is not None else math.inf, self.scenario.settings.max_usd_per_hour)
            lm.set_budget(None if cap == math.inf else cap)
            lm.set_objective(1.0, 0.0)
            out = self._solve(lm, gap)
            if out is None:
                continue
            plan = self._plan(lm, out)
            # lexicographic second step: cheapest plan at that throughput
            lm.set_floor(plan.stage_tokens_per_s)
            lm.set_objective(0.0, 1.0)
            out2 = self._solve(lm, gap)
            if out2 is not None:
                plan = self._plan(lm, out2)
            key = (plan.tokens_per_s, -plan.cost_usd_per_hour)
            if best is None or key > (best[0], -best[1]):
                best = (plan.tokens_per_s, plan.cost_usd_per_hour, plan)
        return best[2] if best else None

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
            lm.set_objective(0.0, 1.0)
            out = self._solve(lm, gap)
            if out is None:
                continue
            plan = self._plan(lm, out)
            if best is None or (plan.cost_usd_per_hour, -plan.tokens_per_s) < (best.cost_usd_per_hour, -best.tokens_per_s):
                best = plan
        return best

    # ---------------------------------------------------------------- methods
    def exact(self, with_frontier: bool = False) -> Result:
        """Proven minimum $/token by Dinkelbach's method per concurrency level.

        Maximise q = T / C: solve max T - q C; if the optimum is 0, q is optimal; else q <- T*/C*.
        Levels are visited by an upper bound on q (each stage costs at least s * min_o c_o/(T_o s_o)
        per unit of throughput) and skipped when the bound cannot beat the incumbent."""
        self._start()
        st = self.scenario.settings
        best_q, best_plan = 0.0, None
        iterations = 0
        bounds = {c: 1.0 / (self.scenario.model.num_layers * min(o.cost_usd_per_hour / (o.tokens_per_s * o.size)
                                                                     for o in self._by_level[c])) for c in self.levels}
        for c in sorted(self.levels, key=lambda c: -bounds[c]):
            if bounds[c] <= best_q * (1 + 1e-12):
                continue
            lm = self.model(c)
            if not self._apply_limits(lm):
                continue
            q = best_q
            while True:
                lm.set_objective(1.0, q)
                out = self._solve(lm, EXACT_GAP)
                iterations += 1
                if out is None:
                    break
                plan = self._plan(lm, out)
                new_q = plan.stage_tokens_per_s / plan.cost_usd_per_hour
                if new_q <= q * (1 + 1e-9):
                    break
                q = new_q
                if q > best_q * (1 + 1e-12):
                    best_q, best_plan = q, plan
                if iterations > 200:
                    raise InputError("Dinkelbach did not converge in 200 iterations")
        if best_plan is None:
            raise self.explain_infeasible()
        status, proven, gap = self._status()
        warnings = self._target_warnings(best_plan)
        frontier = tuple(self.frontier()) if with_frontier else ()
        return Result("exact", best_plan, status, proven, gap,
                      f"Dinkelbach on max T - q*C over {len(self.levels)} concurrency level(s), "
                      f"{iterations} MILP solves; proven minimum $/token",
                      self.solve_seconds, self.build_seconds, self.problem_size(), frontier=frontier,
                      warnings=warnings, extra={"iterations": iterations})

    def frontier(self) -> list[Plan]:
        """Exact cost/throughput Pareto frontier: min cost at floor 0, then at a floor strictly above the
        last plan's throughput, until no plan is faster; dominated points are dropped."""
        points: list[Plan] = []
        floor: float | None = None
        while True:
            plan = self.min_cost(floor, EXACT_GAP, strict=floor is not None)
            if plan is None:
                break
            while points and points[-1].cost_usd_per_hour >= plan.cost_usd_per_hour * (1 - 1e-12):
                points.pop()
            points.append(plan)
            floor = plan.stage_tokens_per_s
            if len(points) > 10_000:
                break
        return points

    def weighted(self, weight: float | None = None) -> Result:
        """The seed's weighted objective: maximise (1-w) T / T_norm - w C / C_norm over all levels.
        A heuristic for $/token: its answer depends on the normalisations."""
        self._start()
        st = self.scenario.settings
        w = st.cost_weight if weight is None else weight
        t_norm = st.throughput_normalization or max(o.tokens_per_s for o in self.candidates.options)
        c_norm = st.cost_normalization or max(o.cost_usd_per_hour for o in self.candidates.options)
        best: tuple[float, Plan] | None = None
        for c in self.levels:
            lm = self.model(c)
            if not self._apply_limits(lm):
                continue
            lm.set_objective((1 - w) / t_norm, w / c_norm)
            out = self._solve(lm, st.mip_gap)
            if out is None:
                continue
            plan = self._plan(lm, out)
            value = (1 - w) * plan.tokens_per_s / t_norm - w * plan.cost_usd_per_hour / c_norm
            if best is None or value > best[0]:
                best = (value, plan)
        if best is None:
            raise self.explain_infeasible()
        status, proven, gap = self._status()
        how = (f"weighted objective (1-w)*T/{t_norm:g} - w*C/{c_norm:g} with w={w:g}; a heuristic for $/token "
               f"({'optimal for its own objective' if proven else 'not proven optimal'})")
        return Result("weighted", best[1], status, False, gap, how, self.solve_seconds, self.build_seconds,
                      self.problem_size(), warnings=self._target_warnings(best[1]),
                      extra={"weight": w, "throughput_normalization": t_norm, "cost_normalization": c_norm,
                             "objective_value": best[0], "objective_proven": proven})

    def competitive_range(self) -> tuple[float, float | None, Plan, Plan]:
        """Budgets worth testing: from the cheapest feasible plan's cost to the most a plan may cost and
        still beat the target at the highest achievable throughput (None without a target)."""
        st = self.scenario.settings
        cheapest = self.min_cost(None, st.mip_gap)
        fastest = self.max_throughput(None, st.mip_gap)
        if cheapest is None or fastest is None:
            raise self.explain_infeasible()
        high = None
        if st.target_usd_per_million_tokens is not None:
            high = st.target_usd_per_million_tokens / 1e6 * 3600 * fastest.billable_tokens_per_s
        return cheapest.cost_usd_per_hour, high, cheapest, fastest

    def enumeration(self, factors: tuple[float, ...] | None = None) -> Result:
        """The seed's budget grid: ballpark = cost of the weighted plan; for each factor f, the best
        throughput with cost <= f * ballpark (ties toward lower cost), skipping budgets outside the
        competitive range. A grid: it can miss the minimum $/token, and says so."""
        st = self.scenario.settings
        factors = tuple(factors or st.budget_factors)
        ballpark_plan = self.weighted().plan
        self._start()
        ballpark = ballpark_plan.cost_usd_per_hour
        low, high, cheapest, fastest = self.competitive_range()
        curve: list[CurvePoint] = []
        warnings: list[str] = []
        for f in factors:
            budget = f * ballpark
            if budget < low * (1 - 1e-9):
                curve.append(CurvePoint(budget, None, None, None, "infeasible (below the cheapest plan)"))
                continue
            if high is not None and budget > high and budget > low:
                curve.append(CurvePoint(budget, None, None, None, "skipped (cannot beat the target)"))
                continue
            plan = self.max_throughput(budget, st.mip_gap)
            if plan is None:
                curve.append(CurvePoint(budget, None, None, None, "infeasible"))
                continue
            curve.append(CurvePoint(budget, plan.tokens_per_s, plan.cost_usd_per_hour,
                                    plan.usd_per_million_tokens, "solved", plan))
        solved = [p for p in curve if p.plan is not None]
        if not solved:
            # every grid point was outside the range: fall back to the cheapest plan, and say so
            warnings.append("no budget point fell inside the competitive range; showing the cheapest plan")
            best = cheapest
        else:
            best = min(solved, key=lambda p: (p.usd_per_million_tokens, p.cost_usd_per_hour)).plan
        status, proven, gap = self._status()
        warnings.extend(self._target_warnings(best))
        how = (f"budget grid: max throughput at cost <= f x ${ballpark:.2f}/h for f in {list(factors)} "
               f"({len(solved)} solved); best $/token on the grid, not proven minimal")
        return Result("enumeration", best, status, False, gap, how, self.solve_seconds, self.build_seconds,
                      self.problem_size(), curve=tuple(curve), warnings=tuple(warnings),
                      extra={"ballpark_usd_per_hour": ballpark, "competitive_low": low, "competitive_high": high,
                             "fastest_tokens_per_s": fastest.tokens_per_s})

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
    def explain_infeasible(self) -> InfeasibleError:
        """Say which limit binds by relaxing one at a time."""
        from . import perf

        sc = self.scenario
        st = sc.settings
        m = sc.model
        binding: list[str] = []
        hints: list[str] = []
        weights_gb = (m.num_layers * perf.layer_weight_bytes(m) + 2 * perf.embedding_bytes(m)) / 1e9
        usable = sum(e.count * (e.spec.memory_gb * sc.engine.memory_utilization - sc.engine.runtime_reserve_gb)
                     for e in sc.pool.entries)
        if not self.candidates.options:
            binding.append(f"memory: no stage option fits on any GPU (model weights {weights_gb:.0f} GB, pool "
                           f"usable memory {usable:.0f} GB)")
            hints.append("add GPUs with more memory, lower the concurrency or context, or allow smaller segments")
        elif not self.levels:
            binding.append("memory: no GPU can hold the first or the last stage (embedding / LM head)")
            hints.append("allow smaller segments (finer quantization) or add larger GPUs")
        else:
            relaxations = [
                ("max_usd_per_hour", None, "budget cap ${:g}/h"),
                ("min_tokens_per_s", None, "throughput floor {:g} tokens/s"),
                ("max_stages", m.num_layers, "max pipeline stages {}"),
            ]
            for field_name, value, label in relaxations:
                current = getattr(st, field_name)
                if current is None or current == value:
                    continue
                relaxed = replace(sc, settings=replace(st, **{field_name: value}))
                other = Planner(relaxed)
                plan = other.min_cost(None, st.mip_gap) if other.levels else None
                if plan is not None:
                    binding.append(label.format(current))
                    if field_name == "max_usd_per_hour":
                        hints.append(f"raise the budget to at least ${plan.cost_usd_per_hour:.2f}/h")
                    elif field_name == "max_stages":
                        hints.append(f"allow {len(plan.stages)} stages")
                    else:
                        fastest = other.max_throughput(None, st.mip_gap)
                        hints.append(f"lower the floor to {fastest.tokens_per_s:.0f} tokens/s or less")
            if not binding:
                binding.append(f"GPU counts / memory: the pool cannot hold {m.num_layers} layers "
                               f"({weights_gb:.0f} GB of weights) with the allowed segment sizes")
                hints.append("add GPUs, use finer segment sizes, or lower the concurrency")
        return InfeasibleError("No plan satisfies the limits.", binding, hints)


def solve(scenario: Scenario, method: str | None = None, cost_weight: float | None = None,
          with_frontier: bool = False) -> Result:
    """Solve a scenario with its settings' method (or `method`)."""
    planner = Planner(scenario)
    method = method or scenario.settings.method
    if method == "exact":
        return planner.exact(with_frontier=with_frontier)
    if method == "enumeration":
        return planner.enumeration()
    if method == "weighted":
        return planner.weighted(cost_weight)
    raise InputError(f"unknown method '{method}' (exact, enumeration, weighted)")
