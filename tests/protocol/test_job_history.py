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


def test_a_job_lost_to_a_crash_is_listed_as_lost(clips) -> None:
    """kill -9 while a job is being made: the next daemon lists it as lost (issue 23 §2).

    Before, only jobs that ended were written, so a job lost to a crash was
    not listed at all.
    """
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "2"}).start()
    try:
        voice, text = uid(), f"Lost in the crash {uid()}."
        history = proc.home / "data" / "history.json"
        with proc.client() as c:
            c.voices_add(voice, data=clips.new())
            job = c.speak(f"{text} And a second sentence.", voice=voice)["job"]
            assert _wait_saved(history, text), "a job is saved when it starts"
            assert text not in [j.get("text") for j in c.stats()["recent_jobs"]], "running: not yet listed"
        proc.kill()
        proc.start()
        with proc.client() as c:
            [lost] = [j for j in c.stats()["recent_jobs"] if j.get("job") == job]
        assert lost["state"] == "lost"
        assert lost["text"].startswith(text) and lost["voice"] == voice and lost["kind"] == "speak"
        assert isinstance(lost["started_at"], float)
        # A job that ends normally replaces its running entry: listed once.
        with proc.client() as c:
            done = c.speak("Short.", voice=voice)["job"]
            c.wait(done, timeout=30)
            listed = [j for j in c.stats()["recent_jobs"] if j.get("job") == done]
        assert [j["state"] for j in listed] == ["finished"]
    finally:
        proc.cleanup()
