"""Idle unload: the model sleeps after ``unload_after_idle_minutes``, memory goes back, speech wakes it.

Fake engine: its stand-in weights are real memory (64 MiB), so the process
must really shrink. The idle limit is set in fractions of a minute so the
tests take seconds; nothing here asserts how long anything took.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatterbox_tray.daemon.fake_engine import FAKE_WEIGHT_BYTES
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import DaemonProcess, EventLog, uid

IDLE_MINUTES = 0.03  # 1.8 s


@pytest.fixture
def own() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def states(log: EventLog, until: str, timeout: float = 30.0) -> list[str]:
    """The ``state`` events' states up to and including ``until``."""
    seen: list[str] = []
    log.wait_for(lambda t, d: t == "state" and (seen.append(d["state"]) or d["state"] == until), timeout=timeout)
    return seen


def test_an_idle_model_sleeps_gives_memory_back_and_speech_wakes_it(own: DaemonProcess, clips) -> None:
    voice = uid()
    with own.client() as c:
        c.voices_add(voice, data=clips.new())
        c.synthesize("Before the nap.", voice=voice).collect()  # conditionals made and cached
        log = EventLog(own.events(("state", "job", "voices")))
        log.sync(c)
        c.settings_set(unload_after_idle_minutes=IDLE_MINUTES)
        assert "sleeping" in states(log, "sleeping")
        status = c.status()
        assert status["state"] == "sleeping" and "the next request loads it again" in status["message"]
        sleep = _wait_for_sleep_figures(c)
        before, after = sleep["memory_before"]["process_rss"], sleep["memory_after"]["process_rss"]
        assert before - after > FAKE_WEIGHT_BYTES * 0.8, (before, after)  # the weights really went back
        assert c.stats()["status"]["state"] == "sleeping"
        # The voice still shows as cached while the model sleeps: it is.
        assert {v["name"]: v["cache"] for v in c.voices_list()}[voice] == "memory"
        c.settings_set(unload_after_idle_minutes=0)  # stay awake once woken, for the checks below
        synthesis = c.synthesize("After the nap.", voice=voice)
        audio, _ = synthesis.collect()
        assert audio.size > 0
        assert synthesis.summary["conditionals"]["tier"] == "memory"  # the cache survived the sleep
        woke = states(log, "ready")
        assert woke[-1] == "ready" and "loading" in woke
        assert any("waking up" in d["message"] for t, d in log.seen if t == "state" and d["state"] == "loading")
        assert c.status()["state"] == "ready"


def _wait_for_sleep_figures(c, tries: int = 100) -> dict:
    """``stats.last_sleep`` appears once the unloading thread has measured memory after."""
    import time

    for _ in range(tries):
        sleep = c.stats().get("last_sleep")
        if sleep:
            return sleep
        time.sleep(0.1)
    raise AssertionError("stats never showed the sleep's memory figures")


def test_a_job_being_made_or_played_keeps_the_model_awake(clips) -> None:
    slow = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "1.0"}).start()
    try:
        with slow.client() as c:
            voice = uid()
            c.voices_add(voice, data=clips.new())
            log = EventLog(slow.events(("state", "job", "voices")))
            log.sync(c)
            c.settings_set(unload_after_idle_minutes=0.01)  # 0.6 s: shorter than one sentence
            job = c.speak("One. Two. Three.", voice=voice)["job"]
            log.wait_job(job, "finished", timeout=60)
            states(log, "sleeping")  # it does sleep, once idle
            end = next(i for i, (t, d) in enumerate(log.seen) if t == "job" and d.get("event") == "finished")
            slept = [i for i, (t, d) in enumerate(log.seen) if t == "state" and d["state"] == "sleeping"]
            assert slept and min(slept) > end, log.seen  # never while the job was made or played
    finally:
        slow.cleanup()


def test_zero_means_never_and_bad_values_are_refused(own: DaemonProcess) -> None:
    with own.client() as c:
        assert c.settings_get()["settings"]["unload_after_idle_minutes"] == 30
        for bad in (-1, "soon", float("nan")):
            with pytest.raises(ProtocolError) as err:
                c.settings_set(unload_after_idle_minutes=bad)
            assert err.value.code == "bad_args"
        assert c.settings_set(unload_after_idle_minutes=0)["reload_required"] is False
