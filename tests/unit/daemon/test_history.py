"""daemon/history.py: what a crash mid-save leaves is swept at start, nothing else."""

from __future__ import annotations

from pathlib import Path

from chatterbox_tray.daemon.history import JobHistory
from chatterbox_tray.ipc.atomic import write_atomic


def test_a_crashed_saves_temporary_file_is_removed_and_the_history_kept(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    write_atomic(path, '[{"job": "j1", "text": "Hello.", "state": "finished"}]')
    left = tmp_path / ".tmp-history.json-bb3bfdb8edf6.partial"  # as a kill during a save leaves it
    left.write_text('[{"job": "j1"')
    other = tmp_path / ".tmp-voices.json-0123456789ab.partial"  # the voice library sweeps its own
    other.write_text("{")
    history = JobHistory(path)
    assert not left.exists()
    assert other.exists()
    assert [e["job"] for e in history] == ["j1"]
