"""The shape of the house, checked: no import circle in bench/, loadgen/ or servers/
(imports inside functions count: they only hide a circle from a reader of the headers),
every import arrow in bench/ points down the layers (CLI -> pipeline -> plan / measure /
store / analysis / report), at most 12 modules directly in bench/, no function over 100
lines, a codec that imports nothing of the project, models that never import each other,
a load generator that needs only the codec, and tests that mirror the code (every package
of bench/ has its folder in tests/; only whole-project tests sit at the top of tests/).

Run it alone for a list of what breaks a rule: python tests/test_architecture.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "loadgen", "servers")
MAX_FLAT_MODULES = 12
MAX_FUNCTION_LINES = 100

# Which parts of bench/ a part may import (besides itself and the package root `bench`).
BELOW = {
    "bench.plan": set(),
    "bench.store": set(),
    "bench.measure": {"bench.plan", "bench.store"},
    "bench.analysis": {"bench.plan", "bench.store"},
    "bench.lab": {"bench.plan"},
    "bench.report": {"bench.plan", "bench.store", "bench.analysis"},
    "bench.cluster": {"bench.plan", "bench.store", "bench.measure", "bench.lab"},
    "bench.cli_checks": set(),
    "bench.docs": {"bench.plan", "bench.store", "bench.analysis", "bench.report"},
    "bench.pipeline": {"bench.plan", "bench.store", "bench.measure", "bench.analysis",
                       "bench.lab", "bench.report", "bench.cluster"},
    "bench.__main__": {"bench.plan", "bench.store", "bench.measure", "bench.analysis",
                       "bench.lab", "bench.report", "bench.cluster", "bench.pipeline",
                       "bench.cli_checks"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (functions included)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def part(name: str) -> str | None:
    """The layer a bench module belongs to (bench.report.plots -> bench.report)."""
    for layer in sorted(BELOW, key=len, reverse=True):
        if name == layer or name.startswith(layer + "."):
            return layer
    return None


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, targets in edges.items():
        mine = part(name)
        if mine is None:
            continue
        for target in targets:
            theirs = part(target)
            if theirs is not None and theirs != mine and theirs not in BELOW[mine]:
                bad.append(f"{name} imports {target}: {mine} may not import {theirs}")
    return sorted(bad)


def long_functions() -> list[str]:
    bad = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                               f"{length} lines")
    return bad


def flat_bench_modules() -> list[str]:
    return sorted(p.name for p in (ROOT / "bench").glob("*.py"))


# bench packages whose tests are a whole-project module instead of a folder
TESTED_AT_TOP = {"docs": "test_docs.py"}  # the docs as a whole: generated, traced, current
# what may sit at the top of tests/: whole-project checks only
TOP_TESTS = {"test_architecture.py", "test_repository_standalone.py", "test_docs.py",
             "test_lint.py"}


def unmirrored() -> list[str]:
    """bench's packages without their tests/ folder, and test modules left at the top of
    tests/ that belong in a folder."""
    tests = ROOT / "tests"
    bad = []
    for package in sorted(p.parent.name for p in (ROOT / "bench").glob("*/__init__.py")):
        if package in TESTED_AT_TOP:
            if not (tests / TESTED_AT_TOP[package]).is_file():
                bad.append(f"bench/{package}/: no tests/{TESTED_AT_TOP[package]}")
        elif not list((tests / package).glob("test_*.py")) or \
                not (tests / package / "__init__.py").is_file():
            bad.append(f"bench/{package}/: no tests/{package}/ package with tests in it")
    for path in sorted(tests.glob("test_*.py")):
        if path.name not in TOP_TESTS:
            bad.append(f"tests/{path.name}: belongs in the folder of what it tests")
    return bad


def test_no_import_circle():
    assert cycles(graph()) == []


def test_bench_imports_point_down_the_layers():
    assert layer_violations(graph()) == []


def test_bench_has_few_modules_at_its_top():
    assert len(flat_bench_modules()) <= MAX_FLAT_MODULES, flat_bench_modules()


def test_no_function_is_longer_than_a_screen_and_a_half():
    assert long_functions() == []


def test_tests_mirror_the_code():
    assert unmirrored() == []


def test_the_codec_models_and_load_generator_keep_to_themselves():
    edges = graph()
    assert edges["servers.protocol"] == set()
    model_modules = {name for name in edges if name.startswith("servers.")}
    import servers

    models = {f"servers.{module.rpartition('.')[2]}" for module in servers.MODELS.values()}
    for model in models:
        assert not edges[model] & (models - {model}), f"{model} imports another model"
    for name, targets in edges.items():
        if name.startswith("loadgen"):
            outside = {t for t in targets if not t.startswith("loadgen")}
            assert outside <= {"servers.protocol"}, (name, outside)
        if name.startswith("bench"):
            assert not {t for t in targets if t in model_modules}, (name, "reaches into servers")


if __name__ == "__main__":
    edges = graph()
    problems = ([f"import circle: {' <-> '.join(group)}" for group in cycles(edges)]
                + layer_violations(edges) + long_functions() + unmirrored())
    if len(flat_bench_modules()) > MAX_FLAT_MODULES:
        problems.append(f"{len(flat_bench_modules())} modules directly in bench/")
    print("\n".join(problems) or "the house keeps its rules")
    sys.exit(1 if problems else 0)
