"""GPU pipeline planner: place an LLM's layers on a heterogeneous GPU pool at the lowest $/token.

Public API (the CLI and the Streamlit pages use only these):
    load_config_dir, scenario_from_texts   -> Scenario
    load_catalog                           -> Catalog (GPUs, models, engine profiles)
    build_candidates(scenario)             -> CandidateSet (options with numbers and exclusion reasons)
    Planner(scenario).exact() / .enumeration() / .weighted() / .frontier() / .max_throughput(B)
    solve(scenario, method)                -> Result
    report.*                               -> rows and documents for plan.csv / summary.json / curve.csv
"""
import importlib

# Name -> submodule. Loaded on first use (PEP 562), so that `python -m planner` starts its Ctrl-C and error
# handling before the heavy modules (Pyomo, HiGHS) load; `from planner import X` works as before.
_EXPORTS = {
    **dict.fromkeys(("CandidateSet", "Option", "build_candidates"), ".candidates"),
    **dict.fromkeys(("Catalog", "load_catalog"), ".catalog"),
    **dict.fromkeys(("EngineProfile", "GpuSpec", "ModelSpec", "Pool", "PoolEntry", "Scenario", "SearchSettings",
                     "Workload"), ".domain"),
    **dict.fromkeys(("CancelledError", "InfeasibleError", "InputError", "PlannerError", "Problem", "SolverError"),
                    ".errors"),
    **dict.fromkeys(("CurvePoint", "Plan", "Result", "Stage"), ".plan"),
    **dict.fromkeys(("load_config_dir", "scenario_from_texts"), ".scenario_io"),
    **dict.fromkeys(("Planner", "pareto_filter", "solve"), ".search"),
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = [
    "CandidateSet", "Option", "build_candidates", "Catalog", "load_catalog", "EngineProfile", "GpuSpec",
    "ModelSpec", "Pool", "PoolEntry", "Scenario", "SearchSettings", "Workload", "InfeasibleError", "InputError", "CancelledError",
    "PlannerError", "Problem", "SolverError", "CurvePoint", "Plan", "Result", "Stage", "load_config_dir",
    "scenario_from_texts", "Planner", "pareto_filter", "solve",
]
