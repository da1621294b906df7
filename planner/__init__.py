"""GPU pipeline planner: place an LLM's layers on a heterogeneous GPU pool at the lowest $/token.

Public API (the CLI and the Streamlit pages use only these):
    load_config_dir, scenario_from_texts   -> Scenario
    load_catalog                           -> Catalog (GPUs, models, engine profiles)
    build_candidates(scenario)             -> CandidateSet (options with numbers and exclusion reasons)
    Planner(scenario).exact() / .enumeration() / .weighted() / .frontier() / .max_throughput(B)
    solve(scenario, method)                -> Result
    report.*                               -> rows and documents for plan.csv / summary.json / curve.csv
"""
from .candidates import CandidateSet, Option, build_candidates
from .catalog import Catalog, load_catalog
from .domain import EngineProfile, GpuSpec, ModelSpec, Pool, PoolEntry, Scenario, SearchSettings, Workload
from .errors import CancelledError, InfeasibleError, InputError, PlannerError, Problem, SolverError
from .plan import CurvePoint, Plan, Result, Stage
from .scenario_io import load_config_dir, scenario_from_texts
from .search import Planner, pareto_filter, solve

__all__ = [
    "CandidateSet", "Option", "build_candidates", "Catalog", "load_catalog", "EngineProfile", "GpuSpec",
    "ModelSpec", "Pool", "PoolEntry", "Scenario", "SearchSettings", "Workload", "InfeasibleError", "InputError", "CancelledError",
    "PlannerError", "Problem", "SolverError", "CurvePoint", "Plan", "Result", "Stage", "load_config_dir",
    "scenario_from_texts", "Planner", "pareto_filter", "solve",
]
