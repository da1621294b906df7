"""The planner of one scenario (`Planner`): its MILP units and models, built lazily and reused, and the run
bookkeeping (time limit, statuses, what a stopped solve left open). Its search methods come from
`search_exact` (exact min $/token, frontier, max throughput, min cost), `search_seed` (weighted,
enumeration) and `search_explain` (why no plan exists).

Concurrency couples the stages (every stage holds the KV cache of every sequence in flight), so it is
an outer level: one MILP per level, each option evaluated at that level. For a fixed plan, throughput
rises with concurrency, so the levels compete only through memory; the best over levels is exact.
"""
from __future__ import annotations

import logging
import math
import time

from .candidates import CandidateSet, Level, Option, build_candidates
from .domain import Scenario
from .errors import CancelledError, InputError
from .milp import LevelModel, ShapeModel, SolveOutcome, shape_table
from .plan import Plan, Result, make_plan
from .kinds import Role
from .search_exact import EXACT_GAP, ExactSearch, Unit, _link_words, _unit_name, fastest_within, pareto_filter  # noqa: F401
from .search_explain import InfeasibilityExplanation
from .search_seed import SeedSearch
from .units import at_most

log = logging.getLogger(__name__)
# A level with more options than this (and no shape model) gets one MILP per stage count. Measured on the
# bundled realistic scenario (exact with the frontier): ~230 options a level, one MILP is 1.8x faster;
# ~420 (fine sizes), per stage count 1.7x faster; ~1,150 (even sizes), 3.7x faster.
SPLIT_OPTIONS = 300


class Planner(ExactSearch, SeedSearch, InfeasibilityExplanation):
    """Holds one scenario's candidates and its per-level MILPs (built lazily, reused across solves): the model
    factory and the run bookkeeping are here; the searches are in `search_exact` (exact, frontier, the
    primitive problems) and `search_seed` (weighted, enumeration), the infeasibility diagnosis in
    `search_explain`."""

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
                                              and (o.role != Role.ONLY or p == 1) and o.size <= L - (p - 1) * a]
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
