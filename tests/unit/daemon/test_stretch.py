"""The speaking rate's time-stretch (daemon/stretch.py): duration, pitch, streaming.

Duration is measured on the content, not only the length: a tone burst in
silence must start and end at its times divided by the rate. Pitch is measured
with librosa's pYIN on a voiced harmonic signal and on real speech from
espeak-ng (skipped where espeak-ng is missing), and must stay within a
semitone of the input's.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.daemon.stretch import Stretcher, stretch
from tests.support.daemons import SPEECH_TEXT, espeak_clip

SR = 24_000
RATES = [0.5, 0.75, 1.25, 1.5, 2.0]


def voiced(seconds: float, f0: float = 140.0, sr: int = SR) -> np.ndarray:
    """Harmonics with vibrato and a syllable-like envelope (as the test clips)."""
    t = np.arange(round(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5.0 * t))) / sr
    wave = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (0.3 * wave * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t) ** 2)).astype(np.float32)


def median_f0(x: np.ndarray, sr: int) -> float:
    import librosa

    f0, voiced_flag, _ = librosa.pyin(x.astype(np.float64), fmin=60, fmax=500, sr=sr, frame_length=2048)
    found = f0[voiced_flag & np.isfinite(f0)]
    assert len(found) > 10, "the pitch tracker found no voiced frames"
    return float(np.median(found))


def semitones(a: float, b: float) -> float:
    return abs(12 * np.log2(a / b))


def edges(x: np.ndarray, sr: int, threshold: float = 0.05) -> tuple[float, float]:
    """First and last time (s) the 10 ms envelope is above ``threshold``."""
    hop = sr // 100
    env = np.array([np.max(np.abs(x[i : i + hop])) for i in range(0, len(x) - hop, hop)])
    loud = np.flatnonzero(env > threshold)
    return loud[0] * hop / sr, (loud[-1] + 1) * hop / sr


@pytest.mark.parametrize("rate", RATES)
def test_the_content_takes_its_time_divided_by_the_rate(rate: float) -> None:
    silence, burst = np.zeros(SR, np.float32), voiced(2.0)
    x = np.concatenate([silence, burst, silence])  # sound from 1 s to 3 s, 4 s in all
    y = stretch(x, rate, SR)
    assert len(y) == round(len(x) / rate)
    start, end = edges(y, SR)
    assert start == pytest.approx(1.0 / rate, rel=0.05, abs=0.02)
    assert end - start == pytest.approx(2.0 / rate, rel=0.05)


@pytest.mark.parametrize("rate", RATES)
def test_the_pitch_of_a_voiced_signal_stays(rate: float) -> None:
    x = voiced(2.0, f0=150.0)
    y = stretch(x, rate, SR)
    assert semitones(median_f0(y, SR), median_f0(x, SR)) < 1.0


@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_the_pitch_of_real_speech_stays(rate: float) -> None:
    data = espeak_clip(SPEECH_TEXT)
    if data is None:
        pytest.skip("espeak-ng is not installed")
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    y = stretch(x, rate, sr)
    assert len(y) / len(x) == pytest.approx(1 / rate, rel=0.001)
    assert semitones(median_f0(y, sr), median_f0(x, sr)) < 1.0


@pytest.mark.parametrize("rate", [0.5, 1.3, 2.0])
def test_pieces_of_any_size_give_the_same_audio_as_the_whole(rate: float) -> None:
    x = voiced(1.5)
    whole = stretch(x, rate, SR)
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.integers(0, len(x), 12))
    s = Stretcher(rate, SR)
    parts = [s.push(p) for p in np.split(x, cuts)] + [s.flush()]
    assert all(p.dtype == np.float32 for p in parts)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_a_piece_comes_out_without_waiting_for_the_end(rate: float) -> None:
    """Streaming: what is held back is bounded by the latency, not the piece's length."""
    s = Stretcher(rate, SR)
    got = len(s.push(voiced(0.5)))
    assert got >= (0.5 * SR - s.latency) / rate
    got += len(s.push(voiced(0.5)))
    assert got >= (1.0 * SR - s.latency) / rate


@pytest.mark.parametrize("n", [0, 1, 100, 900])
def test_short_input_gives_its_share(n: int) -> None:
    x = voiced(0.1)[:n]
    assert len(stretch(x, 2.0, SR)) == round(n / 2.0)
    assert len(stretch(x, 0.5, SR)) == round(n / 0.5)


def test_rate_one_is_the_input_and_the_range_is_enforced() -> None:
    x = voiced(0.2)
    assert np.array_equal(stretch(x, 1.0, SR), x)
    for bad in (0.49, 2.01, float("nan"), 0.0, -1.0):
        with pytest.raises(ValueError, match=r"rate must be between 0\.5 and 2\.0"):
            Stretcher(bad, SR)


def test_nothing_is_taken_after_the_end() -> None:
    s = Stretcher(1.5, SR)
    s.push(voiced(0.3))
    s.flush()
    assert len(s.flush()) == 0
    with pytest.raises(RuntimeError):
        s.push(voiced(0.1))
