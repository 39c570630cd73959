"""Live playback through real PortAudio into ALSA's file plugin (DESIGN.md).

The daemon runs the fake engine and "plays" into a raw float32 file, paced by
the clock as a speaker would be, so a test can check what was played and when
it stopped. The fake makes a steady tone per sentence, 80 ms per character of
text, plus a little seeded noise so no sample is exactly zero.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, ctrl_c_reaches_it

RATE = 24_000
#: Fade length the player applies at both ends of a sentence (daemon/player.py).
FADE = int(0.005 * RATE)


SENTENCE = "Number {:02d} says the quick brown fox jumps."
#: Seconds of fake audio per sentence (2 tokens a character, 25 tokens a second).
SENTENCE_S = 2 * len(SENTENCE.format(0)) / 25


def sentences(n: int) -> str:
    """n sentences of equal length, SENTENCE_S seconds of fake audio each."""
    return " ".join(SENTENCE.format(i) for i in range(n))


@pytest.fixture(scope="module")
def player_daemon() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


@pytest.fixture
def pc(player_daemon: DaemonProcess, clips: Clips) -> Iterator[Client]:
    """A client with a voice named "v", and nothing playing."""
    with player_daemon.client() as c:
        if not any(v["name"] == "v" for v in c.voices_list()):
            c.voices_add("v", data=clips.new())
        yield c
        c.stop(all=True)


def listen(daemon: DaemonProcess, client: Client) -> EventLog:
    log = EventLog(daemon.events(("job", "voices")))
    log.sync(client)
    return log


def nonzero(x: np.ndarray) -> np.ndarray:
    return x[x != 0]


def test_played_audio_is_the_synthesized_audio_apart_from_fades(
    player_daemon: DaemonProcess, pc: Client, clips: Clips
) -> None:
    text = "First sentence here. A second one follows! Is this the third?"
    before = len(player_daemon.played())
    job = pc.speak(text, voice="v", seed=11)["job"]
    end = pc.wait(job, timeout=30)
    assert end["state"] == "finished", end
    played = nonzero(player_daemon.played()[before:])

    chunks = [c.samples for c in pc.synthesize(text, voice="v", seed=11)]
    assert len(chunks) == 3
    expected = np.concatenate(chunks)
    assert len(played) == len(expected)  # every sample, nothing more (pauses are silence)
    offset = 0
    for chunk in chunks:
        inner = slice(offset + FADE, offset + len(chunk) - FADE)
        np.testing.assert_allclose(played[inner], expected[inner], rtol=0, atol=1e-6)
        faded = played[offset : offset + FADE]
        assert np.all(np.abs(faded) <= np.abs(expected[offset : offset + FADE]) + 1e-6)  # a fade, not a jump
        offset += len(chunk)
    assert end["playback"]["played_s"] == pytest.approx(
        (len(expected) + 3 * 0.25 * RATE) / RATE, abs=0.05
    )  # the speech plus a 250 ms pause after each sentence


def test_speak_answers_at_once_and_events_follow_the_sentences(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    text = "One is here. Two is here. Three is here."
    reply = pc.speak(text, voice="v")
    assert reply["dropped"] is False and reply["chunks"] == 3
    job = reply["job"]
    pc.wait(job, timeout=30)
    log.wait_job(job, "finished")
    kinds = [e for j, e in log.job_events(job)]
    assert kinds[0] == "queued"
    assert kinds.index("started") < kinds.index("finished")
    spans = [d["span"] for t, d in log.seen if t == "job" and d.get("job") == job and d["event"] == "sentence"]
    assert [text[a:b] for a, b in spans] == ["One is here.", "Two is here.", "Three is here."]
    assert "synthesized" in kinds


def test_every_event_of_a_speak_job_names_the_request_that_made_it(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    # Sent without reading the reply: the events alone tell the client which job is its own.
    req_id = pc.send("speak", {"text": "One is here. Two is here.", "voice": "v"})
    queued = log.wait_for(lambda t, d: t == "job" and d.get("event") == "queued" and d.get("request") == req_id)
    log.wait_job(queued["job"], "finished", timeout=30)
    events = [d for t, d in log.seen if t == "job" and d.get("job") == queued["job"]]
    assert {"queued", "synthesizing", "started", "sentence", "synthesized", "finished"} <= {d["event"] for d in events}
    assert [d["request"] for d in events] == [req_id] * len(events)


def test_stop_cuts_the_sentence_that_is_playing(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    before = len(player_daemon.played())
    job = pc.speak(sentences(6), voice="v")["job"]
    log.wait_for(lambda t, d: t == "job" and d.get("job") == job and d["event"] == "sentence" and d["sentence"] == 1)
    time.sleep(0.3)  # the event comes as the sentence's first block goes out: let some of it sound
    assert pc.stop()["stopped"] == [job]
    end = pc.wait(job, timeout=10)
    assert end["state"] == "cancelled"
    settled = player_daemon.played_settled()
    time.sleep(0.6)
    assert len(player_daemon.played()) == settled  # silence after the stop
    played_s = len(nonzero(player_daemon.played()[before:])) / RATE
    assert SENTENCE_S < played_s < 2 * SENTENCE_S  # into the second sentence, not through it
    assert pc.playback()["state"] == "idle"


def test_no_event_about_a_job_follows_its_end(player_daemon: DaemonProcess, pc: Client) -> None:
    """Clients track jobs by their events; a late "position" after "cancelled"
    would leave a GUI thinking the job still plays. Stop right after position
    events, pauses and sentence starts, where the player thread is busiest."""
    log = listen(player_daemon, pc)
    triggers = ["position", "sentence", "started", "position", "paused"]
    jobs = []
    for trigger in triggers:
        job = pc.speak(sentences(4), voice="v")["job"]
        jobs.append(job)
        if trigger == "paused":
            log.wait_job(job, "started")
            pc.pause()
        log.wait_for(
            lambda t, d, job=job, trigger=trigger: t == "job" and d.get("job") == job and d["event"] == trigger
        )
        pc.stop(all=True)
        if trigger == "paused":
            pc.resume()
        assert pc.wait(job, timeout=10)["state"] == "cancelled"
    # A voices event published now arrives after every job event published before it.
    mark = len(log.seen)
    pc.voices_default("v")
    # (By identity: the subscription's sync published an equal voices event first.)
    log.wait_for(lambda t, d: t == "voices" and any(x[1] is d for x in log.seen[mark:]))
    for job in jobs:
        kinds = [e for j, e in log.job_events(job)]
        assert kinds.count("cancelled") == 1, kinds
        assert kinds[-1] == "cancelled", kinds


def test_pause_holds_and_resume_goes_on(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    job = pc.speak(sentences(2), voice="v")["job"]
    log.wait_job(job, "started")
    assert pc.pause()["paused"] is True
    log.wait_job(job, "paused")
    time.sleep(0.2)  # what the device held when we paused
    held = len(player_daemon.played())
    time.sleep(0.8)
    assert len(player_daemon.played()) == held
    assert pc.playback()["state"] == "paused"
    assert pc.status()["speaker_paused"] is True  # every client can see it, the CLI's status too
    pc.resume()
    assert pc.status()["speaker_paused"] is False
    end = pc.wait(job, timeout=30)
    assert end["state"] == "finished"
    assert len(player_daemon.played()) > held


def test_skip_moves_to_the_next_sentence(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    before = len(player_daemon.played())
    job = pc.speak(sentences(3), voice="v")["job"]
    log.wait_for(lambda t, d: t == "job" and d.get("job") == job and d["event"] == "sentence")
    assert pc.skip()["job"] == job
    end = pc.wait(job, timeout=30)
    assert end["state"] == "finished"
    played_s = len(nonzero(player_daemon.played()[before:])) / RATE
    assert 2 * SENTENCE_S <= played_s < 2.5 * SENTENCE_S  # two whole sentences and a sliver of the first


def test_urgent_interrupts_and_the_interrupted_text_resumes(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    text = pc.speak(sentences(3), voice="v")["job"]
    log.wait_job(text, "started")
    urgent = pc.speak("Fire alarm.", voice="v", priority="urgent")["job"]
    assert pc.wait(text, timeout=60)["state"] == "finished"
    log.wait_job(text, "finished")
    order = [(j, e) for j, e in log.job_events(text, urgent) if e in ("started", "interrupted", "finished")]
    assert order == [
        (text, "started"),
        (text, "interrupted"),
        (urgent, "started"),
        (urgent, "finished"),
        (text, "finished"),
    ]


def test_quick_speak_replaces_what_is_playing_and_queued_text_stays(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    first = pc.speak(sentences(3), voice="v")["job"]
    queued = pc.speak("Queued behind.", voice="v")["job"]
    log.wait_job(first, "started")
    quick = pc.speak("Quick one.", voice="v", priority="quick")
    assert quick["replaced"] == [first]
    assert pc.wait(first, timeout=10)["state"] == "cancelled"
    assert pc.wait(queued, timeout=60)["state"] == "finished"
    log.wait_job(queued, "finished")
    order = [
        (j, e) for j, e in log.job_events(first, queued, quick["job"]) if e in ("started", "finished", "cancelled")
    ]
    assert order == [
        (first, "started"),
        (first, "cancelled"),
        (quick["job"], "started"),
        (quick["job"], "finished"),
        (queued, "started"),
        (queued, "finished"),
    ]


def test_text_queues_in_order(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    jobs = [pc.speak(f"Item {i} of three.", voice="v")["job"] for i in range(3)]
    pc.wait(jobs[-1], timeout=60)
    log.wait_job(jobs[-1], "finished")
    starts = [j for j, e in log.job_events(*jobs) if e == "started"]
    assert starts == jobs


def test_notifications_are_dropped_over_speech_and_cut_by_it(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    playing = pc.speak(sentences(2), voice="v")["job"]
    log.wait_job(playing, "started")
    assert pc.speak("You have mail.", voice="v", priority="notification")["dropped"] is True
    pc.stop(all=True)
    pc.wait(playing, timeout=10)

    note = pc.speak(sentences(2), voice="v", priority="notification")
    assert note["dropped"] is False
    log.wait_job(note["job"], "started")
    text = pc.speak("Real text.", voice="v")["job"]
    assert pc.wait(note["job"], timeout=10)["state"] == "cancelled"
    assert pc.wait(text, timeout=30)["state"] == "finished"


def test_volume_scales_the_output_and_is_saved(player_daemon: DaemonProcess, pc: Client) -> None:
    try:
        assert pc.audio_set(volume=0.5)["volume"] == 0.5
        settings = json.loads((player_daemon.home / "config" / "settings.json").read_text())
        assert settings["volume"] == 0.5
        before = len(player_daemon.played())
        pc.wait(pc.speak("Half as loud.", voice="v", seed=3)["job"], timeout=30)
        played = nonzero(player_daemon.played()[before:])
        [chunk] = [c.samples for c in pc.synthesize("Half as loud.", voice="v", seed=3)]
        inner = slice(FADE, len(chunk) - FADE)
        np.testing.assert_allclose(played[inner], 0.5 * chunk[inner], atol=1e-6)
    finally:
        pc.audio_set(volume=1.0)


def test_output_devices_are_listed_and_an_unknown_one_is_refused(pc: Client) -> None:
    devices = pc.audio_devices()
    assert any(d["name"] == "default" and d["default"] for d in devices["devices"])
    with pytest.raises(ProtocolError) as err:
        pc.audio_set(device="no such speaker")
    assert err.value.code == "no_such_device"
    assert "default" in err.value.message


SAY_AND_BE_KILLED = [sys.executable, "-m", "chatterbox_tray.cli.main", "--no-start", "say", "-v", "v"]


def test_a_client_killed_during_say_leaves_the_speech_playing(player_daemon: DaemonProcess, pc: Client) -> None:
    """Documented: speech belongs to the daemon; a vanished client does not stop it."""
    log = listen(player_daemon, pc)
    child = subprocess.Popen(
        [*SAY_AND_BE_KILLED, "Short words. Then more words."],
        env={**os.environ, "CHATTERBOX_TRAY_HOME": str(player_daemon.home)},
    )
    started = log.wait_for(lambda t, d: t == "job" and d["event"] == "started")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    end = pc.wait(started["job"], timeout=30)
    assert end["state"] == "finished"
    assert pc.ping() > 0


def test_ctrl_c_in_say_stops_its_job(player_daemon: DaemonProcess, pc: Client) -> None:
    log = listen(player_daemon, pc)
    child = subprocess.Popen(
        [*SAY_AND_BE_KILLED, sentences(4)],
        env={**os.environ, "CHATTERBOX_TRAY_HOME": str(player_daemon.home)},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    started = log.wait_for(lambda t, d: t == "job" and d["event"] == "started")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=15)
    assert child.returncode == 130, err
    assert pc.wait(started["job"], timeout=10)["state"] == "cancelled"


def test_no_audio_device_fails_speak_but_files_still_work(clips: Clips) -> None:
    # The system's own ALSA config on a machine without a sound card: no devices.
    daemon = DaemonProcess(env={"ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf"}).start()
    try:
        with daemon.client() as c:
            with pytest.raises(ProtocolError) as err:
                c.speak("Hello.", voice_data=clips.new())
            assert err.value.code == "no_audio_device"
            assert "file" in err.value.message
            audio, rate = c.synthesize("Hello.", voice_data=clips.new()).collect()
            assert len(audio) > 0 and rate == RATE
    finally:
        daemon.cleanup()


def test_a_device_that_vanishes_fails_the_job_and_the_daemon_carries_on(clips: Clips) -> None:
    daemon = DaemonProcess()
    fifo = daemon.home / "speaker.fifo"
    os.mkfifo(fifo)
    daemon.sink_path.unlink(missing_ok=True)
    daemon.extra_env = {"ALSA_CONFIG_PATH": str(write_fifo_sink(daemon.home / "fifo.conf", fifo))}
    daemon.start()
    got = []

    def unplug_after_a_second() -> None:
        with open(fifo, "rb") as speaker:
            got.append(speaker.read(4 * RATE))  # one second of audio, then gone

    reader = threading.Thread(target=unplug_after_a_second, daemon=True)
    reader.start()
    try:
        with daemon.client() as c:
            job = c.speak(sentences(3), voice_data=clips.new())["job"]
            end = c.wait(job, timeout=30)
            assert end["state"] == "failed"
            assert end["error"]["code"] == "audio_device"
            assert "stopped working" in end["error"]["message"]
            assert len(got[0]) == 4 * RATE
            assert c.ping() > 0
            audio, _ = c.synthesize("Still serving.", voice_data=clips.new()).collect()
            assert len(audio) > 0
    finally:
        reader.join(timeout=5)
        daemon.cleanup()


def write_fifo_sink(conf: Path, fifo: Path) -> Path:
    conf.write_text(
        "</usr/share/alsa/alsa.conf>\n"
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "{fifo}"\n  format "raw"\n}}\n',
        encoding="utf-8",
    )
    return conf


def test_a_broken_sound_setup_is_an_error_not_a_crash(clips: Clips, tmp_path: Path) -> None:
    # PortAudio abort()s the process on a missing ALSA configuration file.
    daemon = DaemonProcess(env={"ALSA_CONFIG_PATH": str(tmp_path / "missing.conf")}).start()
    try:
        with daemon.client() as c:
            with pytest.raises(ProtocolError) as err:
                c.speak("Hello.", voice_data=clips.new())
            assert err.value.code == "no_audio_device"
            assert "crashed" in err.value.message
            assert c.ping() > 0 and daemon.alive
    finally:
        daemon.cleanup()


def test_a_voice_reference_clip_plays_as_it_is(player_daemon: DaemonProcess, pc: Client, clips: Clips) -> None:
    import io

    import soundfile as sf

    clip = clips.new()
    pc.voices_add("clip-check", data=clip)
    before = len(player_daemon.played())
    result = pc.voices_play("clip-check")
    end = pc.wait(result["job"], timeout=30)
    assert end["state"] == "finished"
    info = sf.info(io.BytesIO(clip))
    assert result["seconds"] == pytest.approx(info.duration, abs=0.01)  # resampled to 24 kHz, same length
    assert end["playback"]["played_s"] == pytest.approx(info.duration + 0.25, abs=0.05)
    played = player_daemon.played()[before:]
    assert np.sqrt(np.mean(played**2)) > 0.01  # real sound, not silence
    with pytest.raises(ProtocolError) as err:
        pc.voices_play("nobody")
    assert err.value.code == "unknown_voice"
