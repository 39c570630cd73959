"""Reference clips: decoding and validation before a clip becomes a voice.

Chatterbox makes a voice's conditionals from a short recording of the speaker.
This module turns the bytes a user hands us into mono float samples and checks
that they can make a usable voice, so a bad clip is refused with a clear
message when it is added, not with an ``AssertionError`` from deep inside the
model when someone first speaks with it.

No torch here: the voice library and the IPC layer validate clips without
loading the model.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from ..ipc.limits import CLIP_MAX_SECONDS, CLIP_MIN_SECONDS, CLIP_SILENCE_RMS_DBFS
from ..ipc.protocol import CodedError
from .storage import remove_file

log = logging.getLogger(__name__)

# One home for the limits (ipc/limits.py): the GUI's recorder checks the same ones.
MIN_SECONDS = CLIP_MIN_SECONDS
MAX_SECONDS = CLIP_MAX_SECONDS
SILENCE_RMS_DBFS = CLIP_SILENCE_RMS_DBFS

# The protocol's own codes: the server answers with them as they are.
ClipErrorCode = Literal["clip_undecodable", "clip_too_short", "clip_too_long", "clip_silent"]


class ClipError(CodedError):
    """A reference clip that cannot make a voice.

    ``code`` is stable and machine-readable (the daemon sends it to clients);
    the message is for people.
    """

    def __init__(self, code: ClipErrorCode, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class ClipInfo:
    """What validation measured about a clip.

    Attributes:
        duration_s: length in seconds.
        sample_rate: samples per second of the decoded audio.
        peak: largest absolute sample value (1.0 is full scale).
        rms_dbfs: RMS level in dB relative to full scale.
    """

    duration_s: float
    sample_rate: int
    peak: float
    rms_dbfs: float


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the lowercase hex SHA-256 of ``data``.

    The conditionals cache keys voices by this digest of the clip's bytes.
    """
    return hashlib.sha256(data).hexdigest()


def decode_clip(data: bytes | Path | str, *, suffix: str = "") -> tuple[np.ndarray, int]:
    """Decode a clip to mono float32 samples and its sample rate.

    ``data`` is the file's bytes or a path to it. soundfile (libsndfile:
    WAV, FLAC, OGG/Vorbis/Opus, MP3 with libsndfile 1.1+, ...) is tried first;
    if it cannot read the clip, librosa's loader (audioread, which uses
    ffmpeg or GStreamer where installed, e.g. for M4A/AAC) is tried. librosa
    needs a file, so bytes are written to a temporary file only in that
    fallback; ``suffix`` (like ``".m4a"``) names that file, as some audioread
    backends go by the extension.

    Samples are not resampled and not validated (see `validate_clip`).

    Raises:
        ClipError: ``"clip_undecodable"`` when neither decoder can read it.
    """
    raw: bytes | None = None
    path: Path | None = None
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        label = "clip"
    else:
        path = Path(data)
        label = f"clip {path.name!r}"

    try:
        samples, sr = sf.read(io.BytesIO(raw) if raw is not None else path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types; any means "try the next"
        sf_reason = _plain_reason(exc)
        log.debug("soundfile could not decode %s: %s", label, exc)
    else:
        return _to_mono(samples), int(sr)

    try:
        samples1d, sr = _librosa_load(path) if path is not None else _librosa_load_bytes(raw or b"", suffix)
    except Exception as exc:
        log.debug("librosa could not decode %s: %r", label, exc)
        # libsndfile's reason ("Format not recognised.") says more than
        # audioread's, which is often an empty NoBackendError.
        raise ClipError(
            "clip_undecodable",
            f"could not read the {label} as audio ({sf_reason}); use a WAV, FLAC, MP3 or Ogg recording",
        ) from exc
    return samples1d, sr


def validate_clip(samples: np.ndarray, sr: int) -> ClipInfo:
    """Check that decoded samples can make a voice and measure them.

    Checks, in order: the samples are finite and the rate is positive
    (``"clip_undecodable"``), the clip is longer than `MIN_SECONDS`
    (``"clip_too_short"``), not longer than `MAX_SECONDS` (``"clip_too_long"``), and
    its RMS level is at least `SILENCE_RMS_DBFS` (``"clip_silent"``).

    Args:
        samples: mono samples, as `decode_clip` returns them (a 2-D array is
            taken as ``(frames, channels)`` and averaged to mono).
        sr: sample rate in Hz.

    Raises:
        ClipError: with the code of the first check that fails.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = _to_mono(x)
    if x.ndim != 1:
        raise ClipError("clip_undecodable", f"clip samples have an unexpected shape {x.shape}")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ClipError("clip_undecodable", f"clip has an invalid sample rate ({sr!r})")
    if x.size and not np.isfinite(x).all():
        raise ClipError("clip_undecodable", "clip contains NaN or infinite samples")

    duration = x.size / float(sr)
    if duration <= MIN_SECONDS:
        raise ClipError(
            "clip_too_short",
            f"clip is {_fmt_seconds(duration, MIN_SECONDS)} s long; "
            f"Chatterbox needs more than {MIN_SECONDS:.1f} s of speech",
        )
    if duration > MAX_SECONDS:
        raise ClipError(
            "clip_too_long",
            f"clip is {_fmt_seconds(duration, MAX_SECONDS)} s long; the limit is "
            f"{MAX_SECONDS:.0f} s (Chatterbox uses only the first 10 s or so; "
            "trim it to the best 10 to 30 s of speech)",
        )

    # float64 for the sum of squares: a minute at 48 kHz in float32 loses precision.
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    peak = float(np.max(np.abs(x)))
    rms_dbfs = 20.0 * math.log10(max(rms, 1e-10))
    if rms_dbfs < SILENCE_RMS_DBFS:
        raise ClipError(
            "clip_silent",
            f"clip is silent or nearly so (RMS level {rms_dbfs:.1f} dBFS, below "
            f"{SILENCE_RMS_DBFS:.0f} dBFS); record the speaker closer or louder",
        )
    return ClipInfo(duration_s=duration, sample_rate=int(sr), peak=peak, rms_dbfs=rms_dbfs)


def _to_mono(samples: np.ndarray) -> np.ndarray:
    """Average ``(frames, channels)`` to contiguous mono float32."""
    if samples.ndim == 2:
        samples = samples.mean(axis=1) if samples.shape[1] != 1 else samples[:, 0]
    return np.ascontiguousarray(samples, dtype=np.float32)


def _librosa_load(path: Path) -> tuple[np.ndarray, int]:
    # Imported here: librosa is slow to import and only this fallback needs it.
    import librosa

    with warnings.catch_warnings():
        # librosa warns that soundfile failed and that audioread is deprecated;
        # both are expected in this fallback and say nothing to our users.
        warnings.simplefilter("ignore")
        samples, sr = librosa.load(str(path), sr=None, mono=True, dtype=np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32), int(sr)


def _librosa_load_bytes(raw: bytes, suffix: str) -> tuple[np.ndarray, int]:
    safe_suffix = suffix if suffix.startswith(".") and suffix[1:].isalnum() else ".bin"
    fd, name = tempfile.mkstemp(prefix="chatterbox-tray-clip-", suffix=safe_suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        return _librosa_load(Path(name))
    finally:
        remove_file(Path(name), "could not remove temporary clip file")


def _fmt_seconds(value: float, limit: float) -> str:
    """Format seconds with one decimal, or two where one would equal the limit."""
    text = f"{value:.1f}"
    if text == f"{limit:.1f}":
        text = f"{value:.2f}"
        if text == f"{limit:.2f}":
            text = f"{value:.3f}"
    return text


def _plain_reason(exc: Exception) -> str:
    """libsndfile's own reason ("Format not recognised."), without the file object it names.

    soundfile says "Error opening <_io.BytesIO object at 0x7fe2...>: Format
    not recognised."; people need only the part after the colon.
    """
    text = str(exc).strip()
    if text.startswith("Error opening") and ": " in text:
        text = text.split(": ", 1)[1]
    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>", "the clip", text).strip().rstrip(".")
    return (text[:1].lower() + text[1:]) if text else "unknown format"
