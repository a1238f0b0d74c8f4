"""The side-by-side benchmark scripts in benchmarks/ still start and still find what they
import.

Why: those scripts sit outside the test suite and are run by hand, rarely. When the code
they import moves or changes (bench/ reorganised into packages, a function renamed), they
rot silently and only crash the next time someone needs one. So, without measuring
anything: every script answers `--help`, and every file in benchmarks/ compiles and every
project import in it resolves (modules, imported names, and the attributes it reads off an
imported project module, e.g. `sampling.walk_tree`) without running the script's main.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import PROJECT_ROOT

BENCHMARKS = PROJECT_ROOT / "benchmarks"
# the project's own packages, imported as they are; benchmarks/ is importable as a package
PROJECT_PACKAGES = ("bench", "loadgen", "servers", "tests", "benchmarks")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _imports_argparse(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names)
               or isinstance(node, ast.ImportFrom) and node.module == "argparse"
               for node in ast.walk(tree))


def is_script(path: Path) -> bool:
    """A script: it runs under `if __name__ == "__main__"` and parses arguments."""
    tree = _tree(path)
    return any(_is_main_guard(node) for node in tree.body) and _imports_argparse(tree)


ALL = sorted(path.name for path in BENCHMARKS.glob("*.py"))
SCRIPTS = [name for name in ALL if is_script(BENCHMARKS / name)]


def _top_level_names(path: Path) -> set[str]:
    """The names a module binds at its top level, read from its source (not run)."""
    names: set[str] = set()
    for node in _tree(path).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _resolve(module: str, name: str) -> object:
    """`from module import name`: the attribute, else the submodule; raises if neither."""
    imported = importlib.import_module(module)
    if hasattr(imported, name):
        return getattr(imported, name)
    return importlib.import_module(f"{module}.{name}")


def _import_problems(path: Path) -> list[str]:
    """What in `path` would fail to import: project modules, names and module attributes;
    a sibling module of benchmarks/ (on the script's own sys.path) is checked from its
    source."""
    problems: list[str] = []
    bound: dict[str, types.ModuleType] = {}  # local name -> project module it stands for
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT_PACKAGES:
                    try:
                        importlib.import_module(alias.name)
                    except Exception as exc:
                        problems.append(f"line {node.lineno}: import {alias.name}: {exc!r}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            sibling = BENCHMARKS / f"{node.module}.py"
            if top not in PROJECT_PACKAGES and not sibling.exists():
                continue
            for alias in node.names:
                where = f"line {node.lineno}: from {node.module} import {alias.name}"
                if top not in PROJECT_PACKAGES:
                    if alias.name != "*" and alias.name not in _top_level_names(sibling):
                        problems.append(f"{where}: not defined in benchmarks/{sibling.name}")
                    continue
                try:
                    found = _resolve(node.module, alias.name) if alias.name != "*" \
                        else importlib.import_module(node.module)
                except Exception as exc:
                    problems.append(f"{where}: {exc!r}")
                    continue
                if isinstance(found, types.ModuleType) and alias.name != "*":
                    bound[alias.asname or alias.name] = found
    return problems + _attribute_problems(path, bound)


def _attribute_problems(path: Path, bound: dict[str, types.ModuleType]) -> list[str]:
    """`module.name` read off an imported project module where the module has no such name
    (the way a function that moved or was renamed breaks a script on first use)."""
    return [f"line {node.lineno}: {node.value.id}.{node.attr}: "
            f"{bound[node.value.id].__name__} has no {node.attr!r}"
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in bound and not hasattr(bound[node.value.id], node.attr)]


def test_the_scripts_are_found():
    assert "cpu_agreement.py" in SCRIPTS and "measure_costs.py" in SCRIPTS
    assert "loadgen_native.py" in ALL and "loadgen_native.py" not in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_answers_help(name):
    done = subprocess.run([sys.executable, f"benchmarks/{name}", "--help"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf"^usage: {re.escape(name)}\b", done.stdout, re.MULTILINE), \
        done.stdout[:500]


@pytest.mark.parametrize("name", ALL)
def test_everything_a_benchmark_imports_exists(name):
    path = BENCHMARKS / name
    compile(path.read_text(), str(path), "exec")
    assert _import_problems(path) == []
