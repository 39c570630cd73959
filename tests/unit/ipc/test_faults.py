"""The test-only fault injection of tests/support/faults.py: it dies where asked, and only there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import faults
from tests.support.faults import FAULT_ENV, STEPS

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import sys
from tests.support import faults
from chatterbox_tray.ipc.atomic import write_atomic
faults.install()
for i, data in enumerate(sys.argv[2:]):
    write_atomic(sys.argv[1], data, site="settings")
    print("wrote", i, flush=True)
"""


def write_twice(target: Path, fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault is not None:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target), "old", "new"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("step", STEPS)
def test_the_process_dies_at_the_named_step_of_the_named_occurrence(tmp_path: Path, step: str) -> None:
    target = tmp_path / "settings.json"
    proc = write_twice(target, f"settings:{step}:2")
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.splitlines() == ["wrote 0"]
    assert "fault injection" in proc.stderr
    assert target.read_text() == ("new" if step == "after-replace" else "old")
    temps = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-settings.json-")]
    assert len(temps) == (0 if step == "after-replace" else 1)
    if step == "tmp-half":
        assert (tmp_path / temps[0]).read_bytes() == b"n"  # half of "new", flushed


@pytest.mark.parametrize("fault", [None, "", "voices.manifest:after-tmp-write", "settings:nonsense", "settings"])
def test_other_specs_never_fire(tmp_path: Path, fault: str | None) -> None:
    proc = write_twice(tmp_path / "settings.json", fault)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "settings.json").read_text() == "new"


def test_unset_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_ENV, raising=False)
    for step in STEPS:
        faults.step("settings", step)  # returns: we are still here
