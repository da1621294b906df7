"""Scenario comparison (what differs between two scenarios and what it does to the plan) and the spot /
availability what-if built on it. Re-exported by planner.whatif.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Mapping

from .domain import Scenario
from .errors import InfeasibleError
from .plan import Result
from .whatif_base import (HEADLINE_FIGURES, Headline, pct_change, planner_for, proof, with_caps, with_spot)


# ------------------------------------------------------------------ 7. scenario comparison
@dataclass(frozen=True)
class Difference:
    section: str  # model | workload | engine | settings | pool | network
    item: str
    a: str
    b: str


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _field_diffs(section: str, a, b, skip=()) -> list[Difference]:
    return [Difference(section, f.name, _fmt(getattr(a, f.name)), _fmt(getattr(b, f.name)))
            for f in fields(a) if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)]


def scenario_differences(a: Scenario, b: Scenario) -> tuple[Difference, ...]:
    """Every input that differs between two scenarios, by section (GPU types by name)."""
    out = _field_diffs("model", a.model, b.model) + _field_diffs("workload", a.workload, b.workload)
    out += _field_diffs("engine", a.engine, b.engine, skip=("source",))
    out += _field_diffs("settings", a.settings, b.settings)
    for name in dict.fromkeys(a.pool.types + b.pool.types):
        ea = a.pool.entry(name) if name in a.pool.types else None
        eb = b.pool.entry(name) if name in b.pool.types else None
        if ea is None or eb is None:
            present = ea or eb
            text = f"{present.count} x {present.spec.sku}"
            out.append(Difference("pool", name, text if ea else "absent", text if eb else "absent"))
            continue
        if ea.count != eb.count:
            out.append(Difference("pool", f"{name} count", str(ea.count), str(eb.count)))
        for d in _field_diffs("pool", ea.spec, eb.spec, skip=("price_source", "price_date", "datasheet_source")):
            out.append(replace(d, item=f"{name} {d.item}"))
    shared = [t for t in a.pool.types if t in b.pool.types]
    for i, x in enumerate(shared):
        for y in shared[i:]:
            la, lb = a.pool.link(x, y), b.pool.link(x, y)
            if la != lb:
                out.append(Difference("network", f"{x} <-> {y} GB/s", _fmt(la), _fmt(lb)))
    return tuple(out)


@dataclass(frozen=True)
class Comparison:
    name_a: str
    name_b: str
    differences: tuple[Difference, ...]
    a: Headline | None  # None: infeasible (see reason)
    b: Headline | None
    reason_a: str
    reason_b: str

    def proof(self) -> dict:
        return proof([(self.name_a, self.a), (self.name_b, self.b)])

    def figure_rows(self) -> list[dict]:
        """Headline figures side by side, with B's change against A in percent."""
        rows = []
        for k in HEADLINE_FIGURES:
            va = getattr(self.a, k) if self.a else None
            vb = getattr(self.b, k) if self.b else None
            change = pct_change(vb, va) if va and vb is not None else None
            rows.append({"figure": k, "a": va, "b": vb, "change_pct": change})
        rows.append({"figure": "layout", "a": self.a.layout if self.a else self.reason_a,
                     "b": self.b.layout if self.b else self.reason_b, "change_pct": None})
        return rows


def _headline_or_reason(sc: Scenario, result: Result | None, cancel=None) -> tuple[Headline | None, str]:
    if result is not None:
        return Headline.of(result), ""
    try:
        return Headline.of(planner_for(sc, cancel).exact()), ""
    except InfeasibleError as exc:
        return None, str(exc)


def compare_scenarios(a: Scenario, b: Scenario, result_a: Result | None = None,
                      result_b: Result | None = None, cancel=None) -> Comparison:
    """Inputs that differ and the headline figures side by side (each solved exactly unless given)."""
    ha, ra = _headline_or_reason(a, result_a, cancel)
    hb, rb = _headline_or_reason(b, result_b, cancel)
    return Comparison(a.name, b.name, scenario_differences(a, b), ha, hb, ra, rb)


def compare_scenario_files(data_a: str | bytes, data_b: str | bytes) -> Comparison:
    """Compare two exported scenario files (the app's `.json`, `scenario_io.scenario_texts_to_json`)."""
    from .scenario_io import scenario_from_texts, scenario_texts_from_json

    scs = []
    for data, label in ((data_a, "scenario A"), (data_b, "scenario B")):
        name, texts = scenario_texts_from_json(data, label)
        scs.append(scenario_from_texts(texts, name=name))
    return compare_scenarios(*scs)


# ------------------------------------------------------------------ 6. spot and availability
@dataclass(frozen=True)
class SpotComparison:
    prices: tuple[tuple[str, float, float], ...]  # (type, on-demand $/h, effective spot $/h)
    comparison: Comparison  # A = on demand (as given), B = the spot / capped what-if
    savings_pct: float | None  # per token, spot what-if against on demand


def spot_comparison(sc: Scenario, spot_usd_per_hour: Mapping[str, float],
                    preemption_overhead: float | Mapping[str, float] = 0.0,
                    caps: Mapping[str, int] | None = None, on_demand: Result | None = None,
                    cancel=None) -> SpotComparison:
    """On-demand plan against the plan with spot prices (and availability caps) switched on."""
    whatif = with_spot(sc, spot_usd_per_hour, preemption_overhead)
    if caps:
        whatif = with_caps(whatif, caps)
    whatif = replace(whatif, name=f"{sc.name} (spot)")
    comp = compare_scenarios(sc, whatif, result_a=on_demand, cancel=cancel)
    prices = tuple((g, sc.pool.entry(g).spec.price_usd_per_hour, whatif.pool.entry(g).spec.price_usd_per_hour)
                   for g in spot_usd_per_hour if g in whatif.pool.types)
    savings = None
    if comp.a and comp.b:
        savings = -pct_change(comp.b.usd_per_million_tokens, comp.a.usd_per_million_tokens)
    return SpotComparison(prices, comp, savings)
