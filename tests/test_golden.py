"""Behaviour unchanged: every recorded CLI answer and parsed scenario (tests/data/golden_cli.json, written by
tests/golden/record.py at the reference commit) is recomputed and compared: layouts, statuses, strings and
integers exactly, floats to 1e-9 relative."""
from __future__ import annotations

import json
import math

import pytest

from tests.golden.record import GOLDEN, cases, run, scenario

RECORDED = json.loads(GOLDEN.read_text())
REL = 1e-9


def differences(want, got, where: str = "") -> list[str]:
    """Every place where `got` departs from `want` (floats within REL relative; everything else exact)."""
    if isinstance(want, float) or isinstance(got, float):
        if isinstance(want, bool) or isinstance(got, bool) or not all(isinstance(v, (int, float)) for v in (want, got)):
            return [f"{where}: {want!r} -> {got!r}"]
        if math.isclose(want, got, rel_tol=REL, abs_tol=0.0) or (math.isnan(want) and math.isnan(got)):
            return []
        return [f"{where}: {want!r} -> {got!r}"]
    if isinstance(want, dict) and isinstance(got, dict):
        out = [f"{where}.{k}: missing" for k in want if k not in got]
        out += [f"{where}.{k}: new key" for k in got if k not in want]
        for k in want:
            if k in got:
                out += differences(want[k], got[k], f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(want)} items -> {len(got)}"]
        return [d for i, (a, b) in enumerate(zip(want, got)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if want == got and type(want) is type(got) else [f"{where}: {want!r} -> {got!r}"]


def test_the_compare_catches_a_change():
    base = {"stages": [{"tp": 4, "gpu_type": "A100"}], "usd_per_million_tokens": 0.5, "status": "optimal"}
    assert differences(base, json.loads(json.dumps(base))) == []
    assert differences(base, {**base, "usd_per_million_tokens": 0.5 * (1 + 1e-8)}) != []
    assert differences(base, {**base, "usd_per_million_tokens": 0.5 * (1 + 1e-11)}) == []
    assert differences(base, {**base, "stages": [{"tp": 2, "gpu_type": "A100"}]}) != []
    assert differences(base, {**base, "status": "feasible"}) != []
    assert differences(base, {**base, "extra": 1}) != []


def test_the_recording_covers_the_bundled_scenarios():
    assert RECORDED["cases"] == cases()
    solved = {name.split()[-1] for name in RECORDED["answers"] if name.startswith("solve exact ")}
    assert solved >= {"tiny", "small", "medium", "hal", "realistic", "llama70b-chat", "large"}
    assert all(a["exit"] == 0 for a in RECORDED["answers"].values())


@pytest.mark.parametrize("name", sorted(RECORDED["answers"]))
def test_cli_answer_unchanged(name):
    got = json.loads(json.dumps(run(RECORDED["cases"][name])))
    assert differences(RECORDED["answers"][name], got, name) == []


@pytest.mark.parametrize("name", sorted(RECORDED["scenarios"]))
def test_parsed_scenario_unchanged(name):
    got = json.loads(json.dumps(scenario(name)))
    assert differences(RECORDED["scenarios"][name], got, name) == []
