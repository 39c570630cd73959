"""Tests for daemon/clip.py: decoding and validating reference clips."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.daemon import clip
from chatterbox_tray.daemon.clip import (
    MAX_SECONDS,
    MIN_SECONDS,
    ClipError,
    ClipInfo,
    decode_clip,
    sha256_bytes,
    validate_clip,
)

SR = 16000


def tone(seconds: float, sr: int = SR, amp: float = 0.3, freq: float = 220.0) -> np.ndarray:
    """A sine burst: enough signal for every check but speech-likeness."""
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(samples: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


# -- decode_clip ---------------------------------------------------------------


def test_decode_wav_bytes_gives_mono_float32_and_rate() -> None:
    x = tone(6.0)
    samples, sr = decode_clip(encode(x, subtype="FLOAT"))
    assert sr == SR
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    np.testing.assert_array_equal(samples, x)


def test_decode_path_matches_bytes(tmp_path: Path) -> None:
    data = encode(tone(6.0), subtype="PCM_16")
    path = tmp_path / "voice.wav"
    path.write_bytes(data)
    from_path, sr_path = decode_clip(path)
    from_str, _ = decode_clip(str(path))
    from_bytes, sr_bytes = decode_clip(data)
    assert sr_path == sr_bytes == SR
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_str, from_bytes)


def test_decode_stereo_is_averaged_to_mono() -> None:
    left = tone(6.0, amp=0.4)
    right = np.zeros_like(left)
    samples, _ = decode_clip(encode(np.stack([left, right], axis=1), subtype="FLOAT"))
    assert samples.shape == left.shape
    np.testing.assert_allclose(samples, left / 2, atol=1e-7)


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("OGG", "VORBIS"), ("FLAC", "PCM_16"), ("MP3", "MPEG_LAYER_III")],
)
def test_decode_compressed_formats(fmt: str, subtype: str) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    x = tone(6.0, sr=24000)
    samples, sr = decode_clip(encode(x, sr=24000, fmt=fmt, subtype=subtype))
    assert sr == 24000
    # Lossy codecs pad and smear; length and level survive.
    assert abs(samples.size - x.size) < 24000 * 0.1
    info = validate_clip(samples, sr)
    assert abs(info.rms_dbfs - 20 * math.log10(0.3 / math.sqrt(2))) < 1.0


@pytest.mark.parametrize(
    "data",
    [b"", b"not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 10],
    ids=["empty", "text", "broken-wav-header"],
)
def test_decode_garbage_is_undecodable(data: bytes) -> None:
    with pytest.raises(ClipError) as err:
        decode_clip(data)
    assert err.value.code == "clip_undecodable"
    assert "could not read the clip as audio" in str(err.value)
    assert "object at" not in str(err.value) and "0x" not in str(err.value)


def test_decode_missing_file_is_undecodable(tmp_path: Path) -> None:
    with pytest.raises(ClipError) as err:
        decode_clip(tmp_path / "nope.wav")
    assert err.value.code == "clip_undecodable"
    assert "nope.wav" in str(err.value)


def test_librosa_fallback_used_when_soundfile_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """When soundfile cannot read the bytes, librosa gets them via a temp file."""
    x = tone(6.0)
    data = encode(x, subtype="FLOAT")
    seen: list[tuple[str, bytes]] = []

    def fake_librosa_load(path: Path) -> tuple[np.ndarray, int]:
        seen.append((path.suffix, path.read_bytes()))
        return x, SR

    def refuse(*args: object, **kwargs: object) -> None:
        raise sf.LibsndfileError(0, "Format not recognised.")

    monkeypatch.setattr(clip.sf, "read", refuse)
    monkeypatch.setattr(clip, "_librosa_load", fake_librosa_load)
    monkeypatch.setattr(clip.tempfile, "tempdir", str(tmp_path))

    samples, sr = decode_clip(data, suffix=".m4a")

    assert sr == SR
    np.testing.assert_array_equal(samples, x)
    assert seen == [(".m4a", data)]
    assert list(tmp_path.iterdir()) == [], "the temporary file must be removed"


def test_librosa_fallback_really_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real librosa path (its own soundfile reader) returns mono float32."""
    x = tone(6.0)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("soundfile.read refused for this test")

    monkeypatch.setattr(clip.sf, "read", refuse)
    samples, sr = decode_clip(encode(np.stack([x, x], axis=1), subtype="FLOAT"))
    assert sr == SR
    assert samples.dtype == np.float32 and samples.ndim == 1
    np.testing.assert_allclose(samples, x, atol=1e-6)


def test_same_bytes_at_different_paths_have_the_same_sha(tmp_path: Path) -> None:
    data = encode(tone(6.0))
    a = tmp_path / "a" / "voice.wav"
    b = tmp_path / "b" / "other-name.wav"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(data)
    assert sha256_bytes(a.read_bytes()) == sha256_bytes(b.read_bytes())
    assert sha256_bytes(data) == sha256_bytes(bytearray(data)) == sha256_bytes(memoryview(data))
    edited = data[:-1] + bytes([data[-1] ^ 1])
    assert sha256_bytes(edited) != sha256_bytes(data)
    assert len(sha256_bytes(b"")) == 64
    assert sha256_bytes(b"abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


# -- validate_clip -------------------------------------------------------------


def test_valid_clip_is_measured() -> None:
    info = validate_clip(tone(6.5, amp=0.5), SR)
    assert isinstance(info, ClipInfo)
    assert info.duration_s == pytest.approx(6.5)
    assert info.sample_rate == SR
    assert info.peak == pytest.approx(0.5, abs=1e-3)
    # A sine's RMS is its amplitude over sqrt(2).
    assert info.rms_dbfs == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.01)


@pytest.mark.parametrize("seconds", [0.0, 3.2, MIN_SECONDS])
def test_too_short(seconds: float) -> None:
    with pytest.raises(ClipError) as err:
        validate_clip(tone(seconds), SR)
    assert err.value.code == "clip_too_short"
    assert f"{MIN_SECONDS:.1f} s" in str(err.value)


def test_too_short_message_names_the_length() -> None:
    with pytest.raises(ClipError, match=r"clip is 3\.2 s long"):
        validate_clip(tone(3.2), SR)


def test_just_under_the_minimum_does_not_read_as_the_minimum() -> None:
    with pytest.raises(ClipError) as err:
        validate_clip(tone(4.99), SR)
    assert "4.99 s long" in str(err.value)


def test_just_over_the_minimum_passes() -> None:
    assert validate_clip(tone(MIN_SECONDS + 0.01), SR).duration_s > MIN_SECONDS


def test_too_long() -> None:
    sr = 8000  # keeps the array small
    with pytest.raises(ClipError) as err:
        validate_clip(tone(MAX_SECONDS + 1, sr=sr), sr)
    assert err.value.code == "clip_too_long"
    assert "61.0 s" in str(err.value)
    assert validate_clip(tone(MAX_SECONDS, sr=sr), sr).duration_s == MAX_SECONDS


@pytest.mark.parametrize(
    "samples",
    [
        np.zeros(SR * 6, dtype=np.float32),
        # Room tone at about -70 dBFS.
        (np.random.default_rng(0).standard_normal(SR * 6) * 10 ** (-70 / 20)).astype(np.float32),
        # A single loud click in silence: high peak, no speech.
        np.concatenate([np.full(1, 0.5, np.float32), np.zeros(SR * 6, np.float32)]),
    ],
    ids=["digital-silence", "room-tone", "click"],
)
def test_silent(samples: np.ndarray) -> None:
    with pytest.raises(ClipError) as err:
        validate_clip(samples, SR)
    assert err.value.code == "clip_silent"
    assert "dBFS" in str(err.value)


def test_quiet_speech_level_is_not_silent() -> None:
    # -40 dBFS RMS: quiet, but a usable recording.
    amp = 10 ** (-40 / 20) * math.sqrt(2)
    info = validate_clip(tone(6.0, amp=amp), SR)
    assert info.rms_dbfs == pytest.approx(-40.0, abs=0.01)


def test_non_finite_samples_are_undecodable() -> None:
    x = tone(6.0)
    x[100] = np.nan
    with pytest.raises(ClipError) as err:
        validate_clip(x, SR)
    assert err.value.code == "clip_undecodable"


def test_bad_sample_rate_is_undecodable() -> None:
    with pytest.raises(ClipError) as err:
        validate_clip(tone(6.0), 0)
    assert err.value.code == "clip_undecodable"


def test_clip_error_carries_code_and_message() -> None:
    err = ClipError("clip_silent", "quiet")
    assert err.code == "clip_silent"
    assert err.message == "quiet"
    assert str(err) == "quiet"


def test_decode_then_validate_round_trip_from_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    sf.write(path, tone(7.0, sr=22050), 22050, subtype="PCM_16")
    info = validate_clip(*decode_clip(path))
    assert info.sample_rate == 22050
    assert info.duration_s == pytest.approx(7.0)


def test_real_speech_from_espeak(tmp_path: Path) -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path / "speech.wav"
    text = (
        "The quick brown fox jumps over the lazy dog. "
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells."
    )
    subprocess.run([espeak, "-s", "140", "-w", str(out), text], check=True, timeout=60)
    samples, sr = decode_clip(out.read_bytes())
    info = validate_clip(samples, sr)
    assert info.duration_s > MIN_SECONDS
    assert -45.0 < info.rms_dbfs < -3.0
