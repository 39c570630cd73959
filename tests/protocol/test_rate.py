"""The speaking rate end to end: ``synthesize`` and ``speak``'s ``rate``, the ``rate`` setting, ``say --rate``.

Fake-engine daemons on real sockets; the fake engine makes a tone whose
length follows the text, so the same text and seed give the same audio, and a
rate must scale its length (within 5 %) and keep its pitch (within a
semitone, librosa's pYIN). ``speak`` is checked on what the daemon played
into ALSA's file plugin.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, narrated_daemon

TEXT = "The first sentence is here. And a second one follows it."
SR = 24_000


@pytest.fixture(scope="module")
def rate_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    """A daemon whose engine streams each sentence in 5 pieces, with a default voice."""
    with narrated_daemon(clips, env={"CHATTERBOX_TRAY_FAKE_PIECES": "5"}) as proc:
        yield proc


@pytest.fixture
def c(rate_daemon: DaemonProcess) -> Iterator[Client]:
    with rate_daemon.client(timeout=30) as client:
        yield client
        client.stop(all=True)


def synth(c: Client, rate: float | None) -> tuple[np.ndarray, list, dict]:
    s = c.synthesize(TEXT, seed=3, rate=rate)
    chunks = list(s)
    return np.concatenate([ch.samples for ch in chunks]), chunks, s.summary


def median_f0(x: np.ndarray) -> float:
    import librosa

    f0, flag, _ = librosa.pyin(x.astype(np.float64)[: 2 * SR], fmin=60, fmax=500, sr=SR, frame_length=2048)
    return float(np.median(f0[flag & np.isfinite(f0)]))


@pytest.mark.parametrize("rate", [0.5, 0.8, 1.5, 2.0])
def test_synthesize_rate_scales_the_length_and_keeps_the_pitch(c: Client, rate: float) -> None:
    normal, normal_chunks, _ = synth(c, None)
    fast, chunks, summary = synth(c, rate)
    assert len(fast) / len(normal) == pytest.approx(1 / rate, rel=0.05)
    assert abs(12 * np.log2(median_f0(fast) / median_f0(normal))) < 1.0
    assert summary["rate"] == rate
    assert summary["audio_s"] == pytest.approx(len(fast) / SR, abs=0.01)
    # Still streamed: several pieces a sentence, numbered from 0, the last one final.
    for index in (0, 1):
        pieces = [ch for ch in chunks if ch.index == index]
        assert len(pieces) >= 3
        assert [p.piece for p in pieces] == list(range(len(pieces)))
        assert [p.final for p in pieces] == [False] * (len(pieces) - 1) + [True]
        # Each sentence keeps its own length over the rate.
        whole = sum(len(ch.samples) for ch in normal_chunks if ch.index == index)
        assert sum(len(p.samples) for p in pieces) == round(whole / rate)


def test_rate_one_is_the_models_audio(c: Client) -> None:
    a, _, _ = synth(c, None)
    b, _, summary = synth(c, 1.0)
    assert np.array_equal(a, b) and summary["rate"] == 1.0


@pytest.mark.parametrize(
    ("rate", "words"),
    [(0.49, "between 0.5 and 2.0"), (2.5, "between 0.5 and 2.0"), (0, "between 0.5 and 2.0"), ("fast", "a number")],
)
@pytest.mark.parametrize("op", ["synthesize", "speak"])
def test_a_rate_outside_the_range_is_bad_args(c: Client, op: str, rate, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        if op == "speak":
            c.speak(TEXT, rate=rate)
        else:
            list(c.synthesize(TEXT, rate=rate))
    assert info.value.code == "bad_args"
    assert "'rate'" in info.value.message and words in info.value.message


def test_the_rate_setting_is_the_default_and_a_request_overrides_it(c: Client) -> None:
    normal, _, _ = synth(c, None)
    with pytest.raises(ProtocolError) as info:
        c.settings_set(rate=3.0)
    assert info.value.code == "bad_args" and "rate must be between 0.5 and 2.0" in info.value.message
    c.settings_set(rate=2.0)
    try:
        assert c.settings_get()["settings"]["rate"] == 2.0
        fast, _, summary = synth(c, None)
        assert summary["rate"] == 2.0
        assert len(fast) / len(normal) == pytest.approx(0.5, rel=0.05)
        slow, _, summary = synth(c, 0.5)  # the request's own rate wins
        assert summary["rate"] == 0.5
        assert len(slow) / len(normal) == pytest.approx(2.0, rel=0.05)
    finally:
        c.settings_set(rate=1.0)


def test_speak_rate_scales_what_the_speaker_plays(rate_daemon: DaemonProcess, c: Client) -> None:
    c.settings_set(sentence_pause_ms=0)  # only speech in the played sound
    log = EventLog(rate_daemon.events(("job", "voices")))
    log.sync(c)
    try:
        played = {}
        for rate in (1.0, 2.0, 0.5):
            before = len(rate_daemon.played())
            job = c.speak(TEXT, rate=rate, seed=3)["job"]
            end = log.wait_job(job, "finished", "failed", "cancelled", timeout=60)
            assert end["event"] == "finished", end
            assert end["summary"]["rate"] == rate
            sound = rate_daemon.played()[before:]
            played[rate] = np.count_nonzero(sound) / SR
        assert played[2.0] / played[1.0] == pytest.approx(0.5, rel=0.05)
        assert played[0.5] / played[1.0] == pytest.approx(2.0, rel=0.05)
    finally:
        c.settings_set(sentence_pause_ms=250)


def cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatterbox_tray.cli.main", *args],
        input=b"",
        capture_output=True,
        env=daemon.env(),
        timeout=60,
    )


def test_say_rate_writes_a_faster_file_and_refuses_a_bad_rate(rate_daemon: DaemonProcess, tmp_path: Path) -> None:
    lengths = {}
    for rate in ("1", "1.5"):
        out = tmp_path / f"r{rate}.wav"
        done = cli(rate_daemon, "say", "--rate", rate, "--seed", "3", "-o", str(out), TEXT)
        assert done.returncode == 0, done.stderr.decode()
        lengths[rate] = sf.info(str(out)).frames
    assert lengths["1.5"] / lengths["1"] == pytest.approx(1 / 1.5, rel=0.05)
    bad = cli(rate_daemon, "say", "--rate", "3", TEXT)
    assert bad.returncode == 2
    assert "the rate must be between 0.5 and 2 (1 is normal speed), not 3" in bad.stderr.decode()
