"""The README's set-up commands: none that a stock Debian or Ubuntu refuses, and the two-command promise.

Debian 12 and Ubuntu 23.04+ mark their Python as externally managed (PEP 668):
``pip install uv`` (and ``--user``) stops with ``externally-managed-environment``
(issue 23). The README gets uv some other way, once, and then one command runs
the app and one runs the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def commands(markdown: str) -> list[str]:
    """The commands in a section's ``sh`` blocks, without comments, split at ``&&`` and ``;``."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            out += [part.strip() for part in re.split(r"&&|;", line) if part.strip()]
    return out


def test_no_set_up_command_is_one_that_pep_668_refuses() -> None:
    setup = commands(section("Set up and run"))
    assert setup, "no commands in Set up and run"
    refused = [c for c in setup if re.match(r"(python3? -m )?pip3? install", c)]
    assert refused == [], f"refused on Debian 12 and Ubuntu (externally-managed-environment): {refused}"
    # Ways to get uv that stock systems allow: uv's own installer, pipx, the system's package manager.
    assert "curl -LsSf https://astral.sh/uv/install.sh | sh" in setup
    assert "pipx install uv" in setup


def test_one_command_runs_the_app_and_one_runs_the_tests() -> None:
    setup = section("Set up and run")
    blocks = [b.strip() for b in re.findall(r"```sh\n(.*?)```", setup, re.S)]
    assert "uv run chatterbox-tray-gui" in blocks
    assert "uv run pytest" in blocks
