"""The shape rules: ruff is clean, and ``ipc/`` stays light (the import graph: test_architecture.py).

``ipc/`` is imported by every client (the tray app, the hotkey, scripts): it must
not pull torch or Qt, or a keypress would wait seconds for a client to start.
The check runs in a fresh interpreter, where nothing else imported them first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchaudio", "chatterbox", "PySide6", "numpy", "librosa", "transformers", "sounddevice", "soundfile")


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
