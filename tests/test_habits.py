"""House habits a reader relies on, checked on the source: service functions say what they take."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_service_function_parameters_have_type_hints():
    """Every parameter of every function in portal/services has a type hint; a session is a Session."""
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
                elif a.arg == "session" and ast.unparse(a.annotation) != "Session":
                    wrong.append(f"{where}: {ast.unparse(a.annotation)}")
    assert missing == [] and wrong == []
