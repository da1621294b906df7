"""`python -m planner compare A B`: each side's figures are those of solving it alone, the change is
(B - A) / A, inputs are config folders or exported scenario files, and status is honest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from planner import Planner
from planner.cli import main
from planner.scenario_io import load_config_dir, scenario_texts_to_json

from .helpers import assert_close

ROOT = Path(__file__).resolve().parent.parent


def run_json(capsys, *argv):
    rc = main(["compare", *argv, "--json"])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if rc == 0 else None), out.err


def test_figures_are_each_scenario_solved_alone(capsys):
    rc, doc, _ = run_json(capsys, "config/medium", "config/small")
    assert rc == 0
    a = Planner(load_config_dir(ROOT / "config/medium")).exact().plan
    b = Planner(load_config_dir(ROOT / "config/small")).exact().plan
    fig = {r["figure"]: r for r in doc["figures"]}
    for key, pa, pb in (("usd_per_million_tokens", a.usd_per_million_tokens, b.usd_per_million_tokens),
                        ("tokens_per_s", a.tokens_per_s, b.tokens_per_s),
                        ("cost_usd_per_hour", a.cost_usd_per_hour, b.cost_usd_per_hour)):
        assert_close(fig[key]["a"], pa, rel=1e-9)
        assert_close(fig[key]["b"], pb, rel=1e-9)
        assert_close(fig[key]["change_pct"], (pb - pa) / pa * 100, rel=1e-9)
    assert doc["proven_optimal"] is True and doc["not_proven"] == []
    items = {(d["section"], d["item"]) for d in doc["differences"]}
    assert ("model", "num_layers") in items and ("workload", "input_tokens") in items


def test_exported_file_equals_its_folder(tmp_path, capsys):
    from ui import scenario_texts as T  # the app's own export path: what a user downloads

    f = tmp_path / "medium.json"
    f.write_text(scenario_texts_to_json(T.load_bundled_texts("medium"), "medium"))
    rc, doc, _ = run_json(capsys, "config/medium", str(f))
    assert rc == 0
    assert doc["differences"] == []
    for r in doc["figures"]:
        assert r["a"] == r["b"], r


def test_time_limit_reports_both_solves_not_proven(capsys):
    rc, doc, _ = run_json(capsys, "config/medium", "config/medium", "--time-limit", "0.001")
    assert rc == 0
    assert doc["proven_optimal"] is False
    whats = [b["what"] for b in doc["not_proven"]]
    assert whats == ["A (medium)", "B (medium)"]
    assert all(b["limits"] for b in doc["not_proven"])
    rc = main(["compare", "config/medium", "config/medium", "--time-limit", "0.001"])
    assert rc == 0 and "NOT proven optimal: 2 of the solves" in capsys.readouterr().out


def _over_budget_copy(tmp_path: Path) -> Path:
    d = tmp_path / "poor"
    shutil.copytree(ROOT / "config/medium", d)
    cfg = d / "config.csv"
    cfg.write_text(cfg.read_text().replace("max_hourly_cost,999.0", "max_hourly_cost,0.5"))
    return d


def test_one_side_infeasible_is_reported_and_both_exit_3(tmp_path, capsys):
    poor = _over_budget_copy(tmp_path)
    rc, doc, _ = run_json(capsys, "config/medium", str(poor))
    assert rc == 0
    assert "infeasible" in doc["plans"]["b"] and "usd_per_million_tokens" in doc["plans"]["a"]
    assert main(["compare", str(poor), str(poor)]) == 3
    err = [x for x in capsys.readouterr().err.strip().splitlines() if not x.startswith("note: ")]
    assert len(err) == 1 and err[0].startswith("infeasible: neither scenario")


def test_bad_paths_are_one_line_exit_2(tmp_path, capsys):
    assert main(["compare", "config/medium", str(tmp_path / "missing")]) == 2
    err = [x for x in capsys.readouterr().err.strip().splitlines() if not x.startswith("note: ")]
    assert err == [f"error: {tmp_path / 'missing'}: scenario B: no such config folder or scenario file"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compare", str(bad), "config/medium"]) == 2
    assert "not a scenario file" in capsys.readouterr().err
