"""The seed's search methods on `Planner` (planner.search): the weighted objective (normalised over the
exact frontier, or the seed's own T_norm / C_norm) and the budget-grid enumeration. Heuristics for
$/token: their Results say so and bound how far they can be off.

A mixin: `frontier`, `_level_sweep`, `_target_warnings` come from `search_exact.ExactSearch`; the model
factory and bookkeeping from `Planner`.
"""
from __future__ import annotations

import math

from .errors import InputError
from .plan import CurvePoint, Plan, Result
from .search_exact import fastest_within
from .units import REL_EPS, SAME_FIGURE_REL, at_most, falls_short, usd_per_hour_at


class SeedSearch:
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
