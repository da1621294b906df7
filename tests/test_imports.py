"""The library's import boundary: `planner` is a pure library (never Streamlit), and reading a scenario and
building its stage options loads neither pandas nor the solver stack (Pyomo, HiGHS), so a CLI check of a
CSV stays light. Checked in a fresh interpreter, since this test session has imported everything."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("streamlit", "pandas", "pyomo", "highspy", "plotly")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_import_planner_loads_nothing_heavy():
    assert loaded_after("import planner") == []


def test_reading_a_scenario_and_its_options_loads_no_solver_and_no_pandas():
    code = ("from planner.scenario_io import load_config_dir\nfrom planner.candidates import build_candidates\n"
            "build_candidates(load_config_dir('config/medium'))")
    assert loaded_after(code) == []


def test_solving_loads_the_solver_but_not_streamlit():
    code = "from planner import Planner, load_config_dir\nPlanner(load_config_dir('config/tiny')).exact()"
    got = loaded_after(code)
    assert "streamlit" not in got and ("pyomo" in got or "highspy" in got)


def test_solving_loads_pyomo_core_but_not_pyomo_environ_and_its_solver_plugins():
    """pyomo.environ imports every solver interface and modelling extension (0.35 s of a 2 s CLI run); the
    models are built with pyomo.core and handed to highspy directly, so none of that is needed. The answer
    is checked too (a model built without the plugins must still be the same model)."""
    code = ("from planner import Planner, load_config_dir\n"
            "r = Planner(load_config_dir('config/small')).exact(with_frontier=True)\n"
            "print(repr(r.plan.usd_per_million_tokens), len(r.frontier), 'pyomo.environ' in sys.modules)")
    probe = f"import sys\n{code}"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    usd, points, environ = out.stdout.split()
    assert environ == "False"
    probe = f"import sys\nimport pyomo.environ\n{code}"
    ref = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert ref.stdout.split()[:2] == [usd, points]


def test_no_planner_module_imports_streamlit():
    offenders = []
    for path in sorted((ROOT / "planner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == "streamlit"]
    assert offenders == []
