"""House habits a reader relies on, checked on the source: service functions say what they take, and test
modules take their helpers from tests/support.py, never from another test module or a conftest."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_service_function_parameters_have_type_hints():
    """Every parameter of every function in portal/services has a type hint; a session is a Session (or an
    optional one)."""
    missing, wrong = [], []
    for path in sorted((ROOT / "portal" / "services").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            for a in args.posonlyargs + args.args + args.kwonlyargs:
                where = f"{path.name}:{node.lineno} {node.name}({a.arg})"
                if a.arg in ("self", "cls"):
                    continue
                if a.annotation is None:
                    missing.append(where)
                # (an optional one, None meaning the app's db.session, is a Session too)
                elif a.arg == "session" and ast.unparse(a.annotation) not in ("Session", "Session | None"):
                    wrong.append(f"{where}: {ast.unparse(a.annotation)}")
    assert missing == [] and wrong == []


def _imports_of_test_modules(source: str) -> list[str]:
    """The imports in ``source`` that reach a test module (test_*.py) or a conftest, however written."""

    def is_test_module(dotted: str) -> bool:
        last = dotted.rsplit(".", 1)[-1]
        return last.startswith("test_") or last == "conftest"

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if any(is_test_module(p) for p in a.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if any(is_test_module(p) for p in (node.module or "").split(".")):
                found.append(module)
            else:  # from tests import test_x / from . import conftest
                sep = "" if module.endswith(".") else "."
                found += [f"{module}{sep}{a.name}" for a in node.names if is_test_module(a.name)]
    return found


def test_test_modules_import_helpers_only_from_tests_support():
    """No module under tests/ imports a test module or a conftest: shared helpers live in tests/support.py,
    fixtures in the conftest.py files (which import from tests.support), so each has one home."""
    sample = [
        "import tests.test_a",
        "from tests.test_b import x",
        "from tests import test_c, support",
        "from tests.conftest import y",
        "from tests.e2e.conftest import z",
        "from .test_d import w",
        "from . import conftest",
        "def f():\n    from tests.test_e import v",
        "from tests.support import reload",
        "import tests.support",
        "from pytest import fixture",
    ]
    assert _imports_of_test_modules("\n".join(sample)) == [
        "tests.test_a",
        "tests.test_b",
        "tests.test_c",
        "tests.conftest",
        "tests.e2e.conftest",
        ".test_d",
        ".conftest",
        "tests.test_e",
    ]
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        found = _imports_of_test_modules(path.read_text())
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


# Imports made inside a function, with the reason they cannot be at the top.
LATE_IMPORTS_ALLOWED = {
    # runs first for every `import portal.x`; the factory imports every blueprint, and admin imports portal
    ("portal/__init__.py", "portal.app"),
}


def test_imports_are_at_the_top():
    """A reader sees what a module depends on at its top: no import inside a function or method (type
    annotations only may be imported under TYPE_CHECKING), but for the cycles listed above."""
    found = set()
    for folder in ("portal", "admin", "search", "staff", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom):
                        found.add((rel, inner.module))
                    elif isinstance(inner, ast.Import):
                        found.update((rel, alias.name) for alias in inner.names)
    assert found == LATE_IMPORTS_ALLOWED
