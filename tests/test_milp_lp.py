"""The MILP reads as mathematics: an LP dump of `tiny` names every component by kind and unit, and its rows
are the inequalities of `planner.milp`'s docstrings with coefficients derived here from the scenario
(sizes, TP degrees, GPU counts, prices x TP). The dump is kept in docs/milp_tiny.lp for people to read;
this test fails when the model changes and the file was not regenerated (`regenerate()` below)."""
from __future__ import annotations

import re
from pathlib import Path

from planner import Planner, load_config_dir
from planner.milp import LevelModel, ShapeModel, option_label, shape_label, write_lp
from planner.scenario_io import override_settings

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "docs" / "milp_tiny.lp"
TERM = re.compile(r"^([+-][0-9.e+-]+) (\S+)$")


def parse_lp(text: str) -> tuple[dict, dict]:
    """{row name: ({variable: coefficient}, relation, rhs)} and the objective {variable: coefficient}."""
    rows, objective = {}, {}
    blocks = [b.strip().splitlines() for b in text.split("\n\n") if b.strip()]
    for lines in blocks:
        if lines[0].strip() == "min" and len(lines) > 1:
            lines = lines[1:]
        name = lines[0].rstrip(":")
        terms = {}
        for line in lines[1:]:
            t = TERM.match(line.strip())
            if t:
                terms[t.group(2)] = float(t.group(1))
        last = lines[-1].split()
        if name == "Minimise_Cost":
            objective = terms
        elif last and last[0] in ("=", "<=", ">="):
            rows[re.sub(r"^c_[elu]_|_$", "", name)] = (terms, last[0], float(last[1]))
    return rows, objective


def dump(tmp_path: Path, sc) -> list[tuple[object, str]]:
    pl = Planner(sc)
    out = []
    for i, unit in enumerate(pl.levels):
        model = pl.model(unit)
        f = tmp_path / f"unit{i}.lp"
        write_lp(model, f)
        out.append((model, f.read_text()))
    return out


def test_level_model_rows_are_the_documented_inequalities(tmp_path):
    sc = load_config_dir(ROOT / "config/tiny")
    L = sc.model.num_layers
    models = dump(tmp_path, sc)
    assert models and all(isinstance(m, LevelModel) for m, _ in models)
    for model, text in models:
        rows, objective = parse_lp(text)
        var = {option_label(o): f"Stage_Count({option_label(o)})" for o in model.opts}
        tiling, rel, rhs = rows["Layer_Tiling_Constraint"]
        assert rel == "=" and rhs == L
        assert tiling == {var[option_label(o)]: o.size for o in model.opts}
        for g in sc.pool.types:
            terms, rel, rhs = rows[f"GPU_Count_Constraint({g})"]
            assert rel == "<=" and rhs == sc.pool.entry(g).count
            assert terms == {var[option_label(o)]: o.tp for o in model.opts if o.gpu_type == g}
        firsts = {var[option_label(o)]: 1 for o in model.opts if o.role in ("first", "only")}
        assert rows["One_First_Stage_Constraint"] == (firsts, "=", 1)
        # objective: $/h of each option (TP x the GPU's price), times the model's power-of-two cost scale
        for o in model.opts:
            price = sc.pool.entry(o.gpu_type).spec.price_usd_per_hour
            assert objective[var[option_label(o)]] == o.tp * price * model.scale
        assert f"costs in $/h x {model.scale:g}" in text.splitlines()[0]


def test_shape_model_rows_are_the_documented_inequalities(tmp_path):
    sc = override_settings(load_config_dir(ROOT / "config/tiny"), {"quantization": "full", "sizes": None}, {})
    L = sc.model.num_layers
    models = dump(tmp_path, sc)
    assert models and all(isinstance(m, ShapeModel) for m, _ in models)
    for model, text in models:
        rows, _ = parse_lp(text)
        (p,) = model.level.stage_counts
        x = {k: f"Shape_Stage_Count({shape_label(h, q)})" for k, (h, q) in enumerate(model.hp)}
        roles = [("only", 1)] if p == 1 else [("first", 1), ("last", 1)] + ([("middle", p - 2)] if p >= 3 else [])
        for role, want in roles:
            terms, rel, rhs = rows[f"Role_Count_Constraint({p}_{role})"]
            assert rel == "=" and rhs == 0
            assert terms == {**{x[k]: 1 for k, (h, _q) in enumerate(model.hp) if h.role == role},
                             f"Pipeline_Length_Is({p})": -want}
        # sum_h cap_h x_h >= L z_P, written by Pyomo as -sum cap_h x_h + L z_P <= 0
        terms, rel, rhs = rows[f"Layer_Capacity_Constraint({p})"]
        assert rel == "<=" and rhs == 0 and terms[f"Pipeline_Length_Is({p})"] == L
        for k, (h, q) in enumerate(model.hp):
            assert terms[x[k]] == -h.cap(None, False, q, model.a)


def current_dump(tmp_path: Path) -> str:
    sc = load_config_dir(ROOT / "config/tiny")
    return "\n".join(text for _m, text in dump(tmp_path, sc))


def regenerate() -> None:
    """Rewrite docs/milp_tiny.lp from the current model (after a deliberate change to the MILP)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(current_dump(Path(d)))


def test_the_readable_dump_in_docs_is_current(tmp_path):
    assert GOLDEN.read_text() == current_dump(tmp_path), (
        "docs/milp_tiny.lp is out of date: python -c 'from tests.test_milp_lp import regenerate; regenerate()'")
