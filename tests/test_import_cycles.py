"""No import cycle among planner's modules: each module's imports of other planner modules (at the top or
inside a function, read with ast) form a graph without a cycle, so every module can be read, tested and moved
knowing only what it imports."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "planner"


def planner_imports(path: Path, modules: set[str]) -> set[str]:
    """The planner modules that the file at `path` imports (relative or absolute, anywhere in the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "planner"):
                parts = (node.module or "").split(".")[0 if node.level else 1:]
                # `from . import perf` / `from planner import perf` name modules; `from .x import f` names x
                found.update([parts[0]] if parts and parts[0] else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("planner."))
    return (found & modules) - {path.stem}


def import_graph() -> dict[str, set[str]]:
    files = {p.stem: p for p in PACKAGE.glob("*.py")}
    return {name: planner_imports(path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted; [] when the graph is acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}}) == [["a", "b", "c"], ["d", "e"]]


def test_the_import_reader_sees_function_level_and_package_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from .a import f\nimport planner.b\ndef g():\n    from . import c\n    from planner import d\n"
                 "    from .e.sub import h\n")
    assert planner_imports(f, {"a", "b", "c", "d", "e", "x"}) == {"a", "b", "c", "d", "e"}


def test_planner_has_no_import_cycle():
    graph = import_graph()
    assert "cli" in graph and "cli_common" in graph["cli"]  # the walk reads the package
    assert cycles(graph) == []
