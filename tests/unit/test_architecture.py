"""The structure docs/architecture.md describes: layers, no circles, no borrowed private names, small units.

Each test reads the code itself (imports as grimp and ast see them), so a change that breaks the
structure fails here and names the place."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "boltzmatch"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 100


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_layers_contract_holds():
    """import-linter's layers contract in pyproject.toml (the layers of docs/architecture.md)."""
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def _cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in imports:
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_known_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other_even_through_others():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("boltzmatch")
    modules = {m for m in graph.modules if m.startswith("boltzmatch")}
    imports = {m: {n for n in graph.find_modules_directly_imported_by(m) if n in modules} for m in modules}
    assert _cycles(imports) == []


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")[: -node.level]  # a package's __init__ counts as a module inside it
    return ".".join(base + ([node.module] if node.module else []))


def _subpackage(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_another_packages_private_name():
    borrowed = []
    for path in _sources():
        module = _module_name(path)
        if path.name == "__init__.py":
            module += ".__init__"
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _resolve(module, node)
            if not source.startswith("boltzmatch") or _subpackage(source) == _subpackage(module):
                continue
            for alias in node.names:
                name = alias.name
                if name.startswith("_") and not name.startswith("__") or any(
                        part.startswith("_") and not part.startswith("__") for part in source.split(".")):
                    borrowed.append(f"{path.relative_to(ROOT)}:{node.lineno}: {source}.{name}")
    assert borrowed == []


def test_files_and_functions_stay_small():
    too_long = []
    for path in _sources():
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []
