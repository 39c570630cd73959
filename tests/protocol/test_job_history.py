"""The recent jobs list outlives the daemon, stays private, and a broken file never stops it."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest

from tests.support.daemons import DaemonProcess, uid


@pytest.fixture
def own() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def recent_texts(daemon: DaemonProcess) -> list[str]:
    with daemon.client() as c:
        return [job.get("text") for job in c.stats()["recent_jobs"]]


def test_recent_jobs_survive_a_restart_and_a_kill(own: DaemonProcess, clips) -> None:
    voice, spoken = uid(), f"Remember me {uid()}."
    with own.client() as c:
        c.voices_add(voice, data=clips.new())
        c.synthesize(spoken, voice=voice).collect()
    own.restart()
    assert spoken in recent_texts(own)
    history = own.home / "data" / "history.json"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # what people said is theirs alone
    other = f"And me {uid()}."
    with own.client() as c:
        c.synthesize(other, voice=voice).collect()
        deadline_ok = _wait_saved(history, other)
    assert deadline_ok, "the history file never got the new job"
    own.kill()  # no clean shutdown: what was saved after the job ended is what counts
    own.start()
    assert recent_texts(own)[-2:] == [spoken, other]


def _wait_saved(path, text: str, tries: int = 50) -> bool:
    import time

    for _ in range(tries):
        if path.exists() and text in path.read_text(encoding="utf-8"):
            return True
        time.sleep(0.1)
    return False


def test_a_corrupt_history_file_starts_an_empty_list(own: DaemonProcess) -> None:
    own.stop()
    (own.home / "data" / "history.json").write_text("{not json", encoding="utf-8")
    own.start()
    assert recent_texts(own) == []
    assert "recent jobs in" in own.log_text() and "unreadable" in own.log_text()
