"""The parameter table (planner/parameters.py) drives the config reader and the CLI: every search setting is
declared once, each config key and flag lands in its field, and the limits it states are the ones enforced."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from planner.cli import build_parser
from planner.cli_common import scenario_from_args
from planner.domain import ModelSpec, SearchSettings, Workload
from planner.errors import InputError
from planner.parameters import (BY_FIELD, MODEL_PARAMETERS, PARAMETERS, SETTINGS_PARAMETERS, WORKLOAD_PARAMETERS,
                                table_rows)
from planner.scenario_config import HONOURED
from planner.scenario_io import MODEL_KEYS, scenario_from_texts

ROOT = Path(__file__).resolve().parent.parent
TINY = {f: (ROOT / "config" / "tiny" / f).read_text() for f in ("config.csv", "gpu_pool.csv", "network_bandwidth.csv")}
NUMBER = [p for p in SETTINGS_PARAMETERS if p.read == "number"]
FLAGGED = [p for p in SETTINGS_PARAMETERS if p.flag]


def with_row(key: str, value: str) -> dict[str, str]:
    lines = [x for x in TINY["config.csv"].splitlines() if not x.startswith(key + ",")]
    return {**TINY, "config.csv": "\n".join(lines + [f"{key},{value}"]) + "\n"}


def test_every_setting_is_declared_once():
    fields = {f.name for f in dataclasses.fields(SearchSettings)} - {"threads"}  # threads: the app's, no key
    declared = [p.field for p in SETTINGS_PARAMETERS]
    assert sorted(declared) == sorted(fields) and len(set(declared)) == len(declared)
    assert all(p.config_key in HONOURED for p in SETTINGS_PARAMETERS)
    assert len({p.flag for p in FLAGGED}) == len(FLAGGED)
    assert [r["dest"] for r in table_rows() if r["flag"] and r["section"] == "settings"] == [p.dest for p in FLAGGED]


def test_model_and_workload_parameters_name_their_types_fields():
    assert {p.field for p in MODEL_PARAMETERS} <= {f.name for f in dataclasses.fields(ModelSpec)}
    assert {p.field for p in WORKLOAD_PARAMETERS} == {f.name for f in dataclasses.fields(Workload)}
    assert all(p.config_key in HONOURED for p in PARAMETERS) and len(BY_FIELD) == len(PARAMETERS)
    assert MODEL_KEYS == {p.config_key: (p.field, p.maximum, p.unit) for p in MODEL_PARAMETERS}
    assert {p.section for p in PARAMETERS} == {"model", "workload", "settings"} and len(table_rows()) == len(PARAMETERS)


@pytest.mark.parametrize("p", MODEL_PARAMETERS, ids=lambda p: p.config_key)
def test_a_model_number_above_its_limit_is_refused_at_its_row(p):
    with pytest.raises(InputError) as info:
        scenario_from_texts(with_row(p.config_key, str(int(p.maximum) + 1)), name="t")
    assert any(x.row is not None and p.config_key in x.message + str(x.column) for x in info.value.problems)


def test_the_solve_command_has_every_flag_with_the_tables_help():
    solve = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "solve")[1]
    actions = {a.option_strings[0]: a for a in solve._actions if a.option_strings}
    for p in FLAGGED:
        assert actions[p.flag].dest == p.dest and actions[p.flag].help == p.help
        if p.choices:
            assert tuple(actions[p.flag].choices) == tuple(p.choices)


@pytest.mark.parametrize("p", NUMBER, ids=lambda p: p.config_key)
def test_a_number_key_lands_in_its_field_and_its_maximum_is_enforced(p):
    value = 3 if p.integer else 2.5
    sc = scenario_from_texts(with_row(p.config_key, str(value)), name="t")
    assert getattr(sc.settings, p.field) == value
    with pytest.raises(InputError) as info:
        scenario_from_texts(with_row(p.config_key, str(p.maximum * 10)), name="t")
    assert any(x.row is not None and p.config_key in x.message + str(x.column) for x in info.value.problems)


# a valid value for each kind of flag: (text on the command line, value in the settings)
FLAG_VALUES = {"int": ("3", 3), "float": ("0.25", 0.25), "floats": ("0.5,1.5", (0.5, 1.5))}


@pytest.mark.parametrize("p", [p for p in FLAGGED if p.field != "use_case"], ids=lambda p: p.flag)
def test_a_flag_lands_in_its_field(p, tmp_path):
    text, want = FLAG_VALUES.get(p.flag_type) or (p.choices[-1], p.choices[-1])
    folder = tmp_path / "s"
    folder.mkdir()
    for name, body in TINY.items():
        (folder / name).write_text(body)
    args = build_parser().parse_args(["solve", "--config-dir", str(folder), p.flag, text])
    assert getattr(scenario_from_args(args).settings, p.field) == want


def test_the_budget_flag_is_held_to_the_config_keys_floor(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    for name, text in TINY.items():
        (folder / name).write_text(text)
    low = BY_FIELD["max_usd_per_hour"].minimum / 10
    with pytest.raises(InputError) as info:
        scenario_from_args(build_parser().parse_args(["solve", "--config-dir", str(folder), "--budget", f"{low:g}"]))
    assert info.value.problems[0].column == "--budget"


def test_app_widgets_write_the_parameter_tables_config_keys():
    """The app's widgets are mapped to the parameter table (ui.config_texts.WIDGET_FIELDS), so each writes the
    config key the CLI and the config reader use; changing one widget writes exactly that key."""
    from ui import config_texts as C

    for widget, field in C.WIDGET_FIELDS.items():
        assert C.key(widget) == BY_FIELD[field].config_key
    base = {k: 1 for k in C.WIDGET_KEYS}
    for widget in C.ONE_TO_ONE:
        changed = {**base, widget: 2}
        assert C.config_updates(base, changed, "parameter,value\n") == {BY_FIELD[C.WIDGET_FIELDS[widget]].config_key: "2"}
