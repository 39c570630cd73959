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


def test_flush_at_shutdown_waits_for_a_save_in_progress(tmp_path: Path, monkeypatch) -> None:
    """The process exits right after ``flush``: a save cut off there leaves its temporary file."""
    import json
    import threading
    import time

    from chatterbox_tray.daemon import history as history_module

    started = threading.Event()

    def slow_write(path, data, **kwargs) -> None:  # a slow disk: the save is under way when flush comes
        started.set()
        time.sleep(0.3)
        write_atomic(path, data, **kwargs)

    monkeypatch.setattr(history_module, "write_atomic", slow_write)
    path = tmp_path / "history.json"
    history = JobHistory(path)
    history.append({"job": "j1", "text": "The last words.", "state": "finished"})
    assert started.wait(5)
    history.flush()
    assert [e["job"] for e in json.loads(path.read_text())] == ["j1"]
    assert not list(tmp_path.glob(".tmp-*"))
