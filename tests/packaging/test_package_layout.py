"""pyproject.toml's package list is complete: no subpackage is left out of the build.

Every installer ships what pyproject.toml's ``[tool.setuptools]`` names (the
Linux script copies the project; the macOS script reads ``package-dir``; the
Windows installer is checked against it), so that list is the one place a new
subpackage must appear. This test makes forgetting it fail.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def packages_on_disk() -> set[str]:
    """Every folder with an ``__init__.py`` under a package-dir root, as a dotted package name."""
    found = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        root = ROOT / folder
        for init in root.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(root).parts
            found.add(".".join((package, *rel)))
    return found


def test_every_package_folder_is_built() -> None:
    assert packages_on_disk() == set(SETUPTOOLS["packages"])


def test_the_top_level_folders_stay() -> None:
    """The layout the project asks for: daemon/, gui/ and ipc/ at the top, installed under one name."""
    package_dir = SETUPTOOLS["package-dir"]
    assert {package_dir[f"chatterbox_tray.{name}"] for name in ("daemon", "gui", "ipc")} == {"daemon", "gui", "ipc"}
