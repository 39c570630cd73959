"""Audio files a client writes: which extensions we support and how each is encoded.

One home for the CLI's ``say -o``, the tray app's "Save as…" and the
bridges' encoders, so that the same name gives the same bytes everywhere
(the app once wrote WAV bytes into ``out.mp3``). soundfile (and with it
numpy) is imported only when a file is written, to keep clients cheap to start.
"""

from __future__ import annotations

import os
from typing import Any

from ..ipc.limits import CLIP_MAX_SECONDS, CLIP_MIN_SECONDS

#: Output formats by extension: (libsndfile format, subtype).
#: Each is a real encoding; one the installed libsndfile lacks is refused, never faked.
FILE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}

_NAMES = {".wav": "WAV", ".flac": "FLAC", ".ogg": "Ogg Vorbis", ".opus": "Opus", ".mp3": "MP3"}


class AudioFileError(ValueError):
    """An output file we cannot write, said in plain words."""


def extension_for_filter(chosen_filter: str) -> str:
    """The extension a file dialog's filter stands for ("FLAC audio (*.flac)" -> ".flac"), else ".wav"."""
    return next((ext for ext in _NAMES if f"*{ext}" in chosen_filter), ".wav")


def dialog_filters() -> str:
    """Qt-style filters for a save dialog, one per format, WAV first."""
    return ";;".join(f"{name} audio (*{ext})" for ext, name in _NAMES.items())


def check_writable(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The (format, subtype) for ``path``; raise AudioFileError if its type or folder will not do.

    Called before any synthesis, so a bad path fails at once rather than
    after minutes of work.
    """
    import soundfile

    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FILE_FORMATS:
        raise AudioFileError(
            f"cannot write {ext or 'files without an extension'}: use one of {', '.join(FILE_FORMATS)}"
        )
    fmt, subtype = FILE_FORMATS[ext]
    if subtype not in soundfile.available_subtypes(fmt):
        raise AudioFileError(f"this libsndfile ({soundfile.__libsndfile_version__}) cannot write {ext} files")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise AudioFileError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AudioFileError(f"cannot write {path}: you may not write in {folder}")
    return fmt, subtype


def open_writer(path: str | os.PathLike[str], rate: int) -> Any:
    """An open ``soundfile.SoundFile`` for mono float audio at ``rate``, encoded by the extension."""
    import soundfile

    fmt, subtype = check_writable(path)
    try:
        return soundfile.SoundFile(os.fspath(path), "w", samplerate=rate, channels=1, format=fmt, subtype=subtype)
    except (soundfile.SoundFileError, OSError) as exc:  # no permission, a full disk
        raise AudioFileError(f"cannot write {os.fspath(path)}: {exc}") from None


def write_audio(path: str | os.PathLike[str], samples: Any, rate: int) -> None:
    """Write mono float samples to ``path`` in the format its extension names."""
    import numpy as np

    with open_writer(path, rate) as out:
        out.write(np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0))


def clip_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a clip file cannot be a voice, in plain words, or None if it looks fine or cannot be judged here.

    A quick look at the header before the user is asked for a name: too short
    or too long is said at once. Formats this libsndfile cannot read (m4a, aac)
    are left to the daemon, which decodes more and says what is wrong.
    """
    try:
        import soundfile

        info = soundfile.info(os.fspath(path))
    except FileNotFoundError:
        return f"{os.path.basename(path)} does not exist"
    except Exception:  # not readable here: the daemon judges it
        return None
    seconds = float(info.duration)
    if seconds <= CLIP_MIN_SECONDS:
        return (
            f"{os.path.basename(path)} is {seconds:.1f} s long; a voice needs more than "
            f"{CLIP_MIN_SECONDS:.0f} s of one person speaking"
        )
    if seconds > CLIP_MAX_SECONDS:
        return (
            f"{os.path.basename(path)} is {seconds:.0f} s long; a voice takes at most {CLIP_MAX_SECONDS:.0f} s: "
            "cut it to the best minute"
        )
    return None
