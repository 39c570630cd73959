"""The adaptive pre-buffer, on fake engines slower and faster than real time.

Each sentence below is 1.2 s of fake audio. A fake that takes 1.5 s to make
one (real-time factor 1.25) starves a player that starts on the first
sentence; the adaptive pre-buffer waits until the rest will arrive in time.
A fake four times faster than real time starts playing on the first sentence.
"""

from __future__ import annotations

import json

import pytest

from tests.support.daemons import Clips, DaemonProcess, EventLog

TEXT = " ".join(f"Sentence {i} is here." for i in range(4))  # 18 characters each: 1.44 s of audio


def speak_and_watch(delay: float, prebuffer: str, clips: Clips) -> tuple[dict, list[str]]:
    daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": str(delay)})
    (daemon.home / "config").mkdir(parents=True, exist_ok=True)
    (daemon.home / "config" / "settings.json").write_text(json.dumps({"prebuffer": prebuffer}))
    daemon.start()
    try:
        with daemon.client() as c:
            log = EventLog(daemon.events(("job", "voices")))
            log.sync(c)
            job = c.speak(TEXT, voice_data=clips.new())["job"]
            end = c.wait(job, timeout=30)
            log.wait_job(job, "finished")
            assert c.playback()["prebuffer"] == prebuffer
            return end, [e for _, e in log.job_events(job)]
    finally:
        daemon.cleanup()


@pytest.mark.parametrize("prebuffer", ["adaptive", "off"])
def test_slower_than_real_time(prebuffer: str, clips: Clips) -> None:
    end, events = speak_and_watch(1.8, prebuffer, clips)
    assert end["state"] == "finished"
    assert end["summary"]["rtf"] > 1.0
    playback = end["playback"]
    if prebuffer == "adaptive":
        assert playback["underruns"] == 0
        # It did not start on the first sentence: it waited until the work
        # done on the next (or the next itself) made the rest arrive in time.
        assert playback["first_sample_s"] > end["summary"]["time_to_first_chunk_s"] + 0.1
    else:
        assert playback["underruns"] >= 2
        assert events.count("underrun") == playback["underruns"]


def test_faster_than_real_time_starts_on_the_first_sentence(clips: Clips) -> None:
    end, events = speak_and_watch(0.3, "adaptive", clips)
    assert end["summary"]["rtf"] < 1.0
    assert end["playback"]["underruns"] == 0
    assert end["playback"]["prebuffer_s"] < 2.0  # one sentence and its pause
    assert events.index("started") < events.index("synthesized")
