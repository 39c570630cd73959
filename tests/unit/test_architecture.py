"""The architecture, kept: each folder's imports follow the graph docs/decisions.md draws.

docs/decisions.md, "Folders and who may import whom (issue 20)", has a table of
the product's top-level folders and which others each may import. This test
reads that table (so the page and the code cannot drift apart), reads every
product module's imports with ``ast`` (lazy ones in functions too; not
``TYPE_CHECKING`` blocks), and fails on:

* an import from one folder into another that the table does not allow, or a
  folder that is not in the table;
* a cycle between folders (in the table, or in the code) or between modules;
* an import of ``daemon/`` or ``gui/`` from outside them (they are programs,
  not libraries), or of ``tests/`` from the product;
* an absolute ``chatterbox_tray.`` import in the product (item 7: imports
  between folders are relative, so a tool reading files can follow them);
* two classes, or two modules, of one name anywhere in the product;
* a third-party package across its boundary: PySide6 outside ``gui/``, torch
  or chatterbox outside ``daemon/``, anything in ``ipc/`` beyond the standard
  library, zmq, platformdirs and numpy.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "chatterbox_tray"
DECISIONS = ROOT / "docs" / "decisions.md"
SECTION = "## Folders and who may import whom (issue 20)"
#: The package root (``__version__``): any folder may import it, and it imports no folder.
ROOT_FOLDER = "_pkg"

#: Third-party packages that belong to one folder only.
OWNED = {"PySide6": "gui", "torch": "daemon", "torchaudio": "daemon", "chatterbox": "daemon"}
#: What ipc/ may import beyond the standard library (numpy only lazily: test_code_shape.py checks that).
IPC_THIRD_PARTY = {"zmq", "platformdirs", "numpy"}


@cache
def folders() -> dict[str, str]:
    """Installed package -> its source folder (pyproject.toml's package-dir)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(pyproject["tool"]["setuptools"]["package-dir"])


def folder_of(module: str) -> str | None:
    """The source folder a dotted ``chatterbox_tray...`` module lives in (the longest package-dir match)."""
    matches = [p for p in folders() if module == p or module.startswith(p + ".")]
    return folders()[max(matches, key=len)] if matches else None


@cache
def documented_graph() -> dict[str, set[str]]:
    """Folder -> the folders it may import, from the table in docs/decisions.md."""
    text = DECISIONS.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/decisions.md lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    graph: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`(\w+)/`", cells[0]) if len(cells) >= 3 else None
        if found:
            graph[found.group(1)] = set(re.findall(r"`(\w+)`", cells[-1]))
    assert graph, "the section has no table of folders"
    return graph


class Module:
    """One product file: its dotted name, folder, and what it imports."""

    def __init__(self, path: Path, folder: str, package: str) -> None:
        self.path = path
        self.folder = folder
        parts = path.relative_to(ROOT / folder).with_suffix("").parts
        self.name = ".".join((package, *parts)).removesuffix(".__init__")
        self.package = self.name if path.name == "__init__.py" else self.name.rpartition(".")[0]
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

    def imports(self) -> list[tuple[ast.stmt, str, list[str]]]:
        """(node, the module it names, the names it takes) for each import outside ``TYPE_CHECKING``."""
        typing_only = {
            id(inner)
            for node in ast.walk(self.tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for inner in ast.walk(node)
        }
        found = []
        for node in ast.walk(self.tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found.extend((node, alias.name, []) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    parts = self.package.split(".")
                    module = ".".join([*parts[: len(parts) - (node.level - 1)], *([module] if module else [])])
                found.append((node, module, [alias.name for alias in node.names]))
        return found


@cache
def modules() -> dict[str, Module]:
    found = {}
    for package, folder in folders().items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                module = Module(path, folder, package)
                found[module.name] = module
    return found


@cache
def module_graph() -> dict[str, set[str]]:
    """Product module -> the product modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    names = modules()
    graph = {}
    for name, module in names.items():
        targets = set()
        for _, imported, taken in module.imports():
            targets.update(m for m in (imported, *(f"{imported}.{t}" for t in taken)) if m in names and m != name)
        graph[name] = targets
    return graph


def folder_edges() -> dict[tuple[str, str], list[str]]:
    """(from folder, to folder) -> the modules that make the edge."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, targets in module_graph().items():
        here = modules()[name].folder
        for target in targets:
            there = modules()[target].folder
            if there != here:
                edges[here, there].append(f"{name} -> {target}")
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
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


# -- the checks -----------------------------------------------------------------------------


def test_the_graph_sees_the_projects_imports() -> None:
    graph = module_graph()
    assert f"{PACKAGE}.daemon.coordinator" in graph[f"{PACKAGE}.daemon.service"]  # relative, same folder
    assert f"{PACKAGE}.ipc.protocol" in graph[f"{PACKAGE}.daemon.server"]  # relative, another folder
    assert f"{PACKAGE}.daemon.fake_engine" in graph[f"{PACKAGE}.daemon.model"]  # lazy, in a function
    assert f"{PACKAGE}.ipc.endpoints" in graph[f"{PACKAGE}.ipc.client"]  # from . import module
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert ("cli", "ipc") in folder_edges()


def test_every_folder_is_in_the_documented_graph() -> None:
    documented = documented_graph()
    assert set(documented) == set(folders().values())
    assert documented[ROOT_FOLDER] == set()
    for folder, allowed in documented.items():
        assert allowed <= set(documented), f"{folder} may import unknown folders {allowed - set(documented)}"


def test_imports_between_folders_follow_the_documented_graph() -> None:
    documented = documented_graph()
    offenders = [
        f"{here} -> {there} ({', '.join(sorted(why)[:3])})"
        for (here, there), why in sorted(folder_edges().items())
        if there not in documented[here] and there != ROOT_FOLDER
    ]
    assert offenders == [], "imports docs/decisions.md does not allow:\n" + "\n".join(offenders)


def test_no_cycles_between_folders_or_modules() -> None:
    assert cycles(documented_graph()) == []
    actual: dict[str, set[str]] = defaultdict(set)
    for here, there in folder_edges():
        actual[here].add(there)
    assert cycles(actual) == []
    assert cycles(module_graph()) == []


def test_nothing_imports_daemon_or_gui() -> None:
    """They are programs: clients talk to the daemon over the protocol, and start it as a program."""
    assert not [f for f, allowed in documented_graph().items() if allowed & {"daemon", "gui"}]
    assert not [edge for edge in folder_edges() if edge[1] in ("daemon", "gui")]


def test_the_product_imports_no_tests_and_no_absolute_package_names() -> None:
    offenders = []
    for module in modules().values():
        for node, imported, _ in module.imports():
            absolute = not (isinstance(node, ast.ImportFrom) and node.level)
            if imported.split(".")[0] == "tests" or (absolute and imported.split(".")[0] == PACKAGE):
                offenders.append(f"{module.path.relative_to(ROOT)}:{node.lineno}: {imported}")
    assert offenders == [], "use an explicit relative import (docs/decisions.md says why):\n" + "\n".join(offenders)


def test_third_party_packages_stay_in_their_folder() -> None:
    offenders = []
    for module in modules().values():
        for node, imported, _ in module.imports():
            if isinstance(node, ast.ImportFrom) and node.level:
                continue
            top = imported.split(".")[0]
            owner = OWNED.get(top)
            if (owner and owner != module.folder) or (
                module.folder == "ipc"
                and top not in sys.stdlib_module_names
                and top not in IPC_THIRD_PARTY | {"__future__"}
            ):
                offenders.append(f"{module.path.relative_to(ROOT)}:{node.lineno}: {imported}")
    assert offenders == []


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for module in modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(module.path.relative_to(ROOT)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_no_two_modules_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for module in modules().values():
        if module.path.stem not in ("__init__", "__main__"):
            where[module.path.stem].append(str(module.path.relative_to(ROOT)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


def test_tests_and_tools_import_the_installed_names() -> None:
    """``from daemon.x import`` would load a second copy of a module, whose relative imports cannot reach ``ipc/``."""
    offenders = []
    for top in ("tests", "bench", "scripts", "packaging"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                if any(name.split(".")[0] in set(folders().values()) for name in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "import chatterbox_tray.<folder>, not the bare folder:\n" + "\n".join(offenders)
