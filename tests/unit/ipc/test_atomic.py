"""ipc/atomic.py: the one atomic-write helper."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from chatterbox_tray.ipc import atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old", encoding="utf-8")
    atomic.write_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["settings.json"]


def test_bytes_are_written_as_given(tmp_path: Path) -> None:
    target = tmp_path / "blob"
    atomic.write_atomic(target, b"\x00\r\n\xff")
    assert target.read_bytes() == b"\x00\r\n\xff"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_owner_only_mode(tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    atomic.write_atomic(target, "{}", mode=atomic.OWNER_ONLY)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_replace_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    # The target is a non-empty folder: os.replace cannot put a file over it.
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x", encoding="utf-8")
    with pytest.raises(OSError):
        atomic.write_atomic(target, "data")
    assert sorted(os.listdir(tmp_path)) == ["taken"]
    assert (target / "inside").read_text(encoding="utf-8") == "x"


def test_write_temp_then_discard(tmp_path: Path) -> None:
    tmp = atomic.write_temp(tmp_path, b"payload")
    assert tmp.name.startswith(atomic.TMP_PREFIX) and tmp.name.endswith(atomic.TMP_SUFFIX)
    assert tmp.read_bytes() == b"payload"
    atomic.discard_temp(tmp)
    atomic.discard_temp(tmp)  # a second discard is harmless
    assert os.listdir(tmp_path) == []
