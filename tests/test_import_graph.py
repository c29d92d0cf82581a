"""The import graph among portal's services and models: no cycles, counting imports inside functions.

A cycle hidden behind a function-level import still ties the modules together (each needs the other to
run); DESIGN.md: "No import cycles among services". Side effects that would close a cycle are announced
through ``portal.signals`` or run by the caller instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal/services", "portal/models")

# Function-level imports of portal modules that are known and left for now, as (module, imported module).
KNOWN_FUNCTION_LEVEL: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            dotted = pkg.replace("/", ".")
            mods[dotted if path.stem == "__init__" else f"{dotted}.{path.stem}"] = path
    return mods


def _imports(path: Path, known: set[str]):
    """(imported module, at function level) for every import in the file, however deeply nested.
    ``from portal.services import badges`` imports the module portal.services.badges;
    ``from portal.models import User`` imports the package portal.models."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            yield target, id(node) in nested


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {name: set() for name in mods}
    for name, path in mods.items():
        for target, _ in _imports(path, set(mods)):
            if target in mods and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def graph_reaches(start: str, goal: str) -> bool:
    graph, seen, todo = import_graph(), set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from portal.services import points\n    return points\n")
    found = set(_imports(module, {"portal.services.points"}))
    assert found == {("os", False), ("portal.services.points", True)}


def test_no_import_cycle_among_services_and_models():
    graph = import_graph()
    assert "portal.services.points" in graph and "portal.models.recognition" in graph  # the files were found
    assert graph["portal.services.participation"] >= {"portal.services.points"}  # and their imports read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_ledger_imports_no_service_that_reacts_to_a_credit():
    """points.py writes entries and announces them; badges (and their emails) listen."""
    assert not graph_reaches("portal.services.points", "portal.services.badges")
    assert not graph_reaches("portal.services.points", "portal.services.outbox")


def test_no_new_function_level_imports_of_portal_modules():
    """Imports at the top, where a reader sees them. A function-level import is for a real cycle with a
    third-party module only, with a one-line reason, and is listed in KNOWN_FUNCTION_LEVEL."""
    mods = _modules()
    found = {
        (name, target)
        for name, path in mods.items()
        for target, inside in _imports(path, set(mods))
        if inside and (target == "portal" or target.startswith("portal."))
    }
    assert found <= KNOWN_FUNCTION_LEVEL, f"function-level imports: {sorted(found - KNOWN_FUNCTION_LEVEL)}"
