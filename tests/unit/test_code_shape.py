"""The shape rules: ruff is clean, and ``ipc/`` stays light.

``ipc/`` is imported by every client (the tray app, the hotkey, scripts): it must
not pull torch or Qt, or a keypress would wait seconds for a client to start.
The check runs in a fresh interpreter, where nothing else imported them first.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HEAVY = ("torch", "torchaudio", "chatterbox", "PySide6", "numpy", "librosa", "transformers")


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(exe).exists():
        pytest.skip("ruff is not installed (it is in the dev dependency group)")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean() -> None:
    result = ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


PROBE = """
import json, sys
import pkgutil, importlib, chatterbox_tray.ipc as ipc
for module in pkgutil.iter_modules(ipc.__path__):
    importlib.import_module(f"chatterbox_tray.ipc.{module.name}")
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def test_ipc_imports_no_torch_qt_or_numpy() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout))
    assert "chatterbox_tray" in loaded  # the probe really imported the package
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# -- the import graph ---------------------------------------------------------------------

#: Source folder -> the package it installs as (pyproject.toml's package-dir).
FOLDERS = {folder: package for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            name = ".".join((package, *path.relative_to(ROOT / folder).with_suffix("").parts))
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (lazy imports too; not TYPE_CHECKING blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                module = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_projects_imports() -> None:
    graph = import_graph()
    assert "chatterbox_tray.daemon.coordinator" in graph["chatterbox_tray.daemon.service"]  # relative import
    assert "chatterbox_tray.ipc.protocol" in graph["chatterbox_tray.daemon.server"]  # absolute import
    assert "chatterbox_tray.daemon.fake_engine" in graph["chatterbox_tray.daemon.model"]  # lazy, in a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_daemon_ipc_and_gui() -> None:
    assert cycles(import_graph()) == []


def test_ipc_imports_nothing_from_daemon() -> None:
    """ipc/ is the contract every client imports; the daemon is one side of it, not a library."""
    graph = import_graph()
    offenders = sorted(
        (module, imported)
        for module, imports in graph.items()
        if module.startswith("chatterbox_tray.ipc")
        for imported in imports
        if imported.startswith("chatterbox_tray.daemon")
    )
    assert offenders == []
