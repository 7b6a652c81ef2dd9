"""Module hygiene: each code list is defined once (in evaluation.schemas), and no module imports in a cycle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import evaluation
from evaluation import schemas

SRC = Path(evaluation.__file__).parent


def _code_lists() -> dict[str, frozenset]:
    """The module-level tuples of text in schemas (3 values or more): the code lists."""
    own = {t.id for node in ast.parse(Path(schemas.__file__).read_text()).body if isinstance(node, ast.Assign)
           for t in node.targets if isinstance(t, ast.Name)}  # defined there, not imported (PROGRAMME_IDS)
    return {name: frozenset(value) for name, value in vars(schemas).items()
            if name in own and name.isupper() and isinstance(value, tuple) and len(value) >= 3
            and all(isinstance(v, str) for v in value)}


def _literals(path: Path):
    """(line, values) of every tuple/list/set literal of text in a source file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 3 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield node.lineno, frozenset(e.value for e in node.elts)


def test_there_are_code_lists():
    lists = _code_lists()
    assert {"COUNTED_DISPOSALS", "OFFENCE_GROUPS", "TABLES"} <= set(lists)


def test_no_module_redefines_a_code_list():
    lists = _code_lists()
    by_values = {}
    for name, values in lists.items():
        by_values.setdefault(values, name)
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "schemas.py":
            continue
        for line, values in _literals(path):
            if values in by_values:
                found.append(f"{path.relative_to(SRC.parent)}:{line} redefines schemas.{by_values[values]}")
    assert not found, "import these from evaluation.schemas instead:\n" + "\n".join(found)


def _modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


@pytest.mark.slow
@pytest.mark.parametrize("module", _modules())
def test_module_imports_first_in_a_fresh_interpreter(module):
    """Imported first, in its own interpreter, each module loads: an import cycle shows up as a partially
    initialised module for at least one of its members."""
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_no_import_cycles_between_library_modules():
    """The static import graph of the library (top-level and function-level imports alike) has no cycle, except
    through a package's own __init__ re-exports."""
    graph: dict[str, set[str]] = {}
    modules = set(_modules())
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        package = name if is_pkg else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[: len(up) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + ".") and not t.startswith(name + "."):
                    deps.add(t)
        graph[name] = deps
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
