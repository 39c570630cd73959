"""The real daemon with the real chatterbox classes, over real sockets.

The daemon loads a random-weight checkpoint with the real file layout through
chatterbox's own ``from_local`` (tests/support/checkpoint.py). Its audio is
noise, but every shape, call and cost is the real one. Tests keep the speech-
token budget tiny (T3 costs about 0.3 s a token on two CPU cores), and share one
daemon home per module so restarts exercise the disk tier.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, espeak_clip, uid
from tests.support.realdaemon import TOKENS, cached_tier, synth

pytestmark = pytest.mark.integration


def test_model_is_loaded_through_from_local(rc: Client) -> None:
    status = rc.status()
    assert status["state"] == "ready"
    assert status["device"] == "cpu"
    assert status["model_id"].startswith("original:")
    stats = rc.stats()
    assert stats["variant"] == "original"
    assert stats["process_rss"] > 500 * 2**20  # the weights are really in memory


def test_added_voice_is_prepared_in_the_background(rc: Client, clips: Clips) -> None:
    name = uid("speaker")
    before = rc.cache_stats()
    added = rc.voices_add(name, data=clips.new())
    assert 5.0 <= added["duration_s"] <= 60.0
    assert cached_tier(rc, name) == "memory"
    after = rc.cache_stats()
    # Prepared ahead of use: counted apart, never a miss (docs/protocol.md, cache.stats).
    assert after["prepared_in_background"] == before["prepared_in_background"] + 1
    assert after["misses"] == before["misses"]
    # The first synthesis finds the conditionals ready.
    audio, summary = synth(rc, "Good morning.", voice=name)
    assert summary["conditionals"]["tier"] == "memory"
    assert summary["tokens"] <= TOKENS
    assert audio.dtype == np.float32 and len(audio) > 0
    assert np.isfinite(audio).all()


def test_synthesis_streams_a_chunk_per_sentence_with_a_summary(rc: Client, clips: Clips) -> None:
    text = "First sentence here. Second one follows!"
    synthesis = rc.synthesize(text, voice_data=clips.new(), seed=1)
    chunks = list(synthesis)
    assert [c.index for c in chunks] == [0, 1]
    assert [text[c.span[0] : c.span[1]] for c in chunks] == ["First sentence here.", "Second one follows!"]
    assert all(c.sample_rate == 24_000 and c.samples.dtype == np.float32 for c in chunks)
    s = synthesis.summary
    assert s["chunks"] == 2
    assert s["conditionals"]["tier"] == "prepared"
    assert s["conditionals"]["seconds"] > 0
    assert s["t3_s"] > 0 and s["s3gen_s"] > 0
    assert s["audio_s"] == pytest.approx(sum(len(c.samples) for c in chunks) / 24_000, abs=1e-3)
    assert s["rtf"] == pytest.approx(s["synthesis_s"] / s["audio_s"], rel=1e-2)
    assert 0 < s["time_to_first_chunk_s"] <= s["synthesis_s"] + s["queue_wait_s"] + 1e-3
    assert 0 < s["tokens"] <= 2 * TOKENS  # the per-chunk budget held


def test_bad_voice_files_get_clear_errors(rc: Client, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio at all\n" * 100)
    with pytest.raises(ProtocolError) as err:
        rc.voices_add(uid("bad"), path=not_audio)
    assert err.value.code == "clip_undecodable"

    short = espeak_clip("Hi.")
    if short is None:
        pytest.skip("espeak-ng is not installed")
    with pytest.raises(ProtocolError) as err:
        rc.synthesize("Hello.", voice_data=short).collect()
    assert err.value.code == "clip_too_short"
    assert rc.ping() > 0


def test_unknown_language_for_the_english_model(rc: Client, clips: Clips) -> None:
    with pytest.raises(ProtocolError) as err:
        rc.synthesize("Bonjour.", voice_data=clips.new(), language="fr").collect()
    assert err.value.code == "unknown_language"


KILLED_CLIENT = """
import sys
from chatterbox_tray.ipc import endpoints
from chatterbox_tray.ipc.client import Client
from pathlib import Path
c = Client(endpoints.read_connection(Path(sys.argv[1])), timeout=120)
for chunk in c.synthesize(sys.argv[2], voice=sys.argv[3]):
    print("chunk", flush=True)
"""


def test_a_client_killed_mid_stream_has_its_job_cancelled(real: DaemonProcess, rc: Client, clips: Clips) -> None:
    name = uid("victim")
    rc.voices_add(name, data=clips.new())
    assert cached_tier(rc, name) is not None
    log = EventLog(real.events(("job",)))
    text = " ".join(f"Sentence number {i}." for i in range(30))
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(real.connection_path), text, name],
        stdout=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"chunk"  # it is streaming
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        cancelled = log.wait_for(
            lambda t, d: t == "job" and d.get("event") == "cancelled" and d.get("voice") == name, timeout=120
        )
        assert cancelled["chunks_done"] < 30
    finally:
        if child.poll() is None:
            child.kill()
    # Everyone else is still served.
    audio, summary = synth(rc, "Still here.", voice=name)
    assert len(audio) > 0 and summary["chunks"] == 1


def test_speech_from_the_real_model_reaches_the_speaker(real: DaemonProcess, clips: Clips) -> None:
    """speak: the real model's sentences go to PortAudio (an ALSA file sink here) as made."""
    clip = clips.new()
    text = "First part. Second part."
    with real.client(timeout=120.0) as c:
        before = len(real.played())
        job = c.speak(text, voice_data=clip, seed=9)["job"]
        end = c.wait(job, timeout=300)
        assert end["state"] == "finished", end
        assert end["summary"]["chunks"] == 2
        assert end["playback"]["underruns"] == 0  # the CPU is slower than real time: the pre-buffer waited
        reference = [chunk.samples for chunk in c.synthesize(text, voice_data=clip, seed=9)]
    played = real.played()[before:]
    played = played[played != 0]
    expected = np.concatenate(reference)
    expected = expected[expected != 0]
    assert len(played) == len(expected)
    fade = int(0.005 * 24_000)
    offset = 0
    for chunk in reference:
        n = int(np.count_nonzero(chunk))
        inner = slice(offset + fade, offset + n - fade)
        np.testing.assert_allclose(played[inner], expected[inner], atol=1e-6)
        offset += n


def test_the_real_model_sleeps_when_idle_and_wakes_sounding_the_same(real: DaemonProcess, clips: Clips) -> None:
    """Idle unload with the real classes: memory really goes back, the cache survives, and a
    woken model makes the very same samples for the same seed (nothing changes a voice)."""
    name = uid()
    with real.client(timeout=120.0) as c:
        c.voices_add(name, data=clips.new())
        assert cached_tier(c, name) is not None
        before, _ = synth(c, "Sleep test.", voice=name, seed=11)
        log = EventLog(real.events(("state", "voices")))
        log.sync(c)
        c.settings_set(unload_after_idle_minutes=0.02)
        try:
            log.wait_for(lambda t, d: t == "state" and d["state"] == "sleeping", timeout=60)
            deadline = time.monotonic() + 60
            while not (sleep := c.stats().get("last_sleep")) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert sleep, "stats never showed the sleep's memory figures"
            freed = sleep["memory_before"]["process_rss"] - sleep["memory_after"]["process_rss"]
            assert freed > 500 * 2**20, sleep  # the test checkpoint's weights are ~2 GB in float32
            assert next(v for v in c.voices_list() if v["name"] == name)["cache"] == "memory"
            c.settings_set(unload_after_idle_minutes=0)
            after, summary = synth(c, "Sleep test.", voice=name, seed=11)
        finally:
            c.settings_set(unload_after_idle_minutes=30)
        assert summary["conditionals"]["tier"] == "memory"
        assert np.array_equal(before, after)
        assert c.status()["state"] == "ready"
