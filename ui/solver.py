"""Cached calls into the planner, keyed on the scenario texts (+ catalogue texts), so that going back
to an earlier setting is instant. Errors the planner raises on purpose are returned, not raised, so
that they are cached too (an infeasible scenario is not re-explained on every rerun)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import streamlit as st

from planner import (Catalog, CandidateSet, InputError, Plan, Planner, PlannerError, Problem, Result, Scenario,
                     build_candidates, scenario_from_texts)
from planner.catalog import parse_engines, parse_gpus, parse_models
from planner.candidates import segment_sizes

TextsKey = tuple[tuple[str, str], ...]


@dataclass
class Outcome:
    """What a cached solve produced: a result, or the planner's error; and how long it took."""

    result: Result | None = None
    error: PlannerError | None = None
    seconds: float = 0.0
    frontier: tuple[Plan, ...] = field(default_factory=tuple)


@st.cache_resource(max_entries=8, show_spinner=False)
def catalog_from_texts(cat_key: TextsKey) -> Catalog | InputError:
    texts = dict(cat_key)
    problems: list[Problem] = []
    gpus = models = engines = None
    try:
        gpus, gpu_aliases = parse_gpus(texts["gpus.csv"], "gpus.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        models, model_aliases, sources = parse_models(texts["models.csv"], "models.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    try:
        engines = parse_engines(texts["engines.csv"], "engines.csv")
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        return InputError(problems)
    return Catalog(gpus, gpu_aliases, models, model_aliases, sources, engines)


@st.cache_resource(max_entries=64, show_spinner=False)
def scenario(texts: TextsKey, name: str, cat_key: TextsKey) -> Scenario | InputError:
    try:
        catalog = catalog_from_texts(cat_key)
        if isinstance(catalog, InputError):
            return catalog
        return scenario_from_texts(dict(texts), name=name, catalog=catalog)
    except InputError as exc:
        return exc


@st.cache_resource(max_entries=64, show_spinner=False)
def candidates(texts: TextsKey, name: str, cat_key: TextsKey) -> CandidateSet | InputError:
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return sc
    try:
        return build_candidates(sc)
    except InputError as exc:
        return exc


@st.cache_resource(max_entries=64, show_spinner=False)
def sizes_for(texts: TextsKey, name: str, cat_key: TextsKey) -> tuple[int, ...] | InputError:
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return sc
    try:
        return segment_sizes(sc)[0]
    except InputError as exc:
        return exc


@st.cache_resource(max_entries=64, show_spinner=False)
def solve(texts: TextsKey, name: str, cat_key: TextsKey, method: str) -> Outcome:
    """Solve with `method`. The exact method also returns the whole cost/throughput frontier."""
    sc = scenario(texts, name, cat_key)
    if isinstance(sc, InputError):
        return Outcome(error=sc)
    cs = candidates(texts, name, cat_key)
    if isinstance(cs, InputError):
        return Outcome(error=cs)
    t0 = time.perf_counter()
    try:
        planner = Planner(sc, cs)
        if method == "exact":
            result = planner.exact(with_frontier=True)
            return Outcome(result, None, time.perf_counter() - t0, result.frontier)
        if method == "enumeration":
            result = planner.enumeration()
        elif method == "weighted":
            result = planner.weighted()
        else:
            raise InputError(f"unknown method '{method}' (exact, enumeration, weighted)")
    except PlannerError as exc:
        return Outcome(error=exc, seconds=time.perf_counter() - t0)
    return Outcome(result, None, time.perf_counter() - t0)
