"""The voice library: named reference clips the daemon can speak with.

A voice is a name and a copy of the clip it was made from. The library keeps
its own copy of the clip's bytes (so moving or editing the original changes
nothing) under the user's data folder, and a manifest, ``voices.json``,
listing the voices and the default one::

    <data_dir>/voices.json
    <data_dir>/voices/<sha256[:16]><suffix>

The clip is stored exactly as given (same format, same bytes): its SHA-256 is
part of the conditionals cache's key, so the cache entry made from it stays
valid across restarts. Two voices made from the same bytes share one file.

Every change rewrites the manifest atomically (temporary file, fsync,
``os.replace``): a crash leaves the old manifest or the new one, never half of
one. A manifest that cannot be read at start-up is moved aside (kept for the
user to inspect, never deleted) and the library starts empty, since the daemon
must start whatever state its files are in. Clip files the manifest does not
name are left alone while a moved-aside manifest is there (they may be all
that is left of its voices); otherwise they are what a crash between storing
a clip and saving the manifest (or between saving it and removing a clip)
left behind, and are removed at start-up.

No torch here: the library only decodes clips to check them (`clip.py`).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ..ipc.atomic import OWNER_ONLY, TMP_PREFIX, write_atomic
from ..ipc.limits import VOICE_NAME_MAX_LENGTH
from ..ipc.protocol import CodedError
from .clip import decode_clip, sha256_bytes, validate_clip
from .storage import disk_full_as_error, remove_file

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
MAX_NAME_LENGTH = VOICE_NAME_MAX_LENGTH  # ipc/limits.py: clients check names too

VoiceErrorCode = Literal["unknown_voice", "voice_exists", "bad_name"]

_SUFFIX_RE = re.compile(r"\.[a-z0-9]{1,10}")
# Names of clip files we write; anything else in the manifest is refused, so a
# tampered manifest can never make `remove` delete a file outside the library.
_CLIP_FILE_RE = re.compile(r"[0-9a-f]{16}(?:[0-9a-f]{48})?(?:\.[a-z0-9]{1,10})?")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Control characters, surrogates, and line/paragraph separators: they break
# terminals, logs and one-line list views.
_BAD_NAME_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


class VoiceError(CodedError):
    """A voice library request that cannot be done.

    ``code`` is stable and machine-readable: ``"unknown_voice"``,
    ``"voice_exists"`` or ``"bad_name"``. A bad clip raises `ClipError`
    (with its own code) instead.
    """

    def __init__(self, code: VoiceErrorCode, message: str) -> None:
        super().__init__(code, message)


@dataclass(frozen=True)
class Voice:
    """One voice in the library.

    Attributes:
        name: the name, as the user spelt it (unique ignoring case).
        file: absolute path of the library's copy of the clip.
        sha256: hex SHA-256 of the clip's bytes (part of the cache key).
        duration_s: clip length in seconds.
        sample_rate: the clip's sample rate in Hz.
        added_at: when it was added, ISO 8601 in UTC.
        source_name: the file name the clip came from, if known.
    """

    name: str
    file: Path
    sha256: str
    duration_s: float
    sample_rate: int
    added_at: str
    source_name: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (``file`` as a string)."""
        return {**asdict(self), "file": str(self.file)}


class VoiceLibrary:
    """Named voices with their clips and a default, persisted under ``data_dir``.

    Thread-safe: one lock serialises every read and change of the state and
    the manifest, since the daemon answers clients from several threads. The
    slow part of `add` (decoding and checking the clip) runs outside it.
    """

    def __init__(self, data_dir: Path) -> None:
        """Open the library in ``data_dir`` (platformdirs' user data dir).

        Creates the folders as needed. A corrupt manifest is moved aside to
        ``voices.json.corrupt-<timestamp>`` and the library starts empty;
        voices whose clip file has gone are dropped. Both are logged.
        """
        self._data_dir = Path(data_dir)
        self._voices_dir = self._data_dir / "voices"
        self._manifest = self._data_dir / "voices.json"
        self._lock = threading.RLock()
        # Keyed by the folded name: uniqueness ignores case.
        self._voices: dict[str, Voice] = {}
        self._default: str | None = None
        self._voices_dir.mkdir(parents=True, exist_ok=True)
        self._remove_temp_files()
        self._load()
        self._remove_unnamed_clips()

    # -- queries -------------------------------------------------------------

    def list(self) -> builtins.list[Voice]:
        """All voices, sorted by name ignoring case."""
        with self._lock:
            return sorted(self._voices.values(), key=lambda v: (_fold(v.name), v.name))

    def get(self, name: str) -> Voice:
        """The voice called ``name`` (any case).

        Raises:
            VoiceError: ``"unknown_voice"``.
        """
        with self._lock:
            return self._get_locked(name)

    @property
    def default(self) -> str | None:
        """The default voice's name, or None."""
        with self._lock:
            return self._default

    # -- changes -------------------------------------------------------------

    def add(self, name: str, data: bytes, source_name: str = "") -> Voice:
        """Check a clip and add it to the library as ``name``.

        Args:
            name: the new voice's name (see `check_name`).
            data: the clip file's bytes, in any format `decode_clip` reads.
            source_name: the file name it came from; only its last part is
                kept, and its suffix names the stored copy.

        The first voice of a library with no default voice becomes the
        default: a request that names no voice (Speech Dispatcher, the
        hotkey, a script) then speaks instead of failing.

        Raises:
            VoiceError: ``"bad_name"`` or ``"voice_exists"``.
            ClipError: the clip cannot be decoded or is unfit.
            OSError: the clip or the manifest could not be written; the
                library is then unchanged.
        """
        name = check_name(name)
        data = bytes(data)
        source_name = _clean_source_name(source_name)
        with self._lock:
            self._check_free_locked(name, renaming=None)
        # Decoding takes a while: other requests go on meanwhile.
        suffix = _suffix_of(source_name)
        samples, sr = decode_clip(data, suffix=suffix)
        info = validate_clip(samples, sr)
        sha = sha256_bytes(data)

        with self._lock:
            self._check_free_locked(name, renaming=None)  # again: it may have been taken
            file, created = self._store_clip_locked(data, sha, suffix)
            voice = Voice(name, file, sha, round(info.duration_s, 3), info.sample_rate, _utc_now(), source_name)
            try:
                with self._saved_locked():
                    self._voices[_fold(name)] = voice
                    if self._default is None:
                        self._default = name
            except BaseException:
                if created:
                    self._delete_clip_if_unused_locked(file)
                raise
        log.info("voice %r added (%.1f s, %s)", name, voice.duration_s, sha[:12])
        return voice

    def rename(self, old: str, new: str) -> Voice:
        """Rename a voice (a change of case alone is allowed); the default follows.

        Raises:
            VoiceError: ``"unknown_voice"``, ``"bad_name"`` or ``"voice_exists"``.
        """
        new = check_name(new)
        with self._lock:
            voice = self._get_locked(old)
            self._check_free_locked(new, renaming=voice.name)
            renamed = replace(voice, name=new)
            with self._saved_locked():
                del self._voices[_fold(voice.name)]
                self._voices[_fold(new)] = renamed
                if self._is_default_locked(voice):
                    self._default = new
        log.info("voice %r renamed to %r", voice.name, new)
        return renamed

    def remove(self, name: str) -> None:
        """Remove a voice, and its clip file unless another voice uses it.

        Removing the default voice leaves no default.

        Raises:
            VoiceError: ``"unknown_voice"``.
        """
        with self._lock:
            voice = self._get_locked(name)
            with self._saved_locked():
                del self._voices[_fold(voice.name)]
                if self._is_default_locked(voice):
                    self._default = None
            # After the manifest: a crash in between leaves an unnamed file,
            # never a voice whose clip is gone.
            self._delete_clip_if_unused_locked(voice.file)
        log.info("voice %r removed", voice.name)

    def set_default(self, name: str | None) -> None:
        """Make ``name`` the default voice, or clear the default with None.

        Raises:
            VoiceError: ``"unknown_voice"``.
        """
        with self._lock, self._saved_locked():
            self._default = None if name is None else self._get_locked(name).name

    # -- internals -------------------------------------------------------------

    def _get_locked(self, name: str) -> Voice:
        voice = self._voices.get(_fold(name)) if isinstance(name, str) else None
        if voice is None:
            raise VoiceError("unknown_voice", f"no voice called {name!r}")
        return voice

    def _check_free_locked(self, name: str, renaming: str | None) -> None:
        existing = self._voices.get(_fold(name))
        if existing is not None and (renaming is None or _fold(renaming) != _fold(name)):
            raise VoiceError("voice_exists", f"a voice called {existing.name!r} already exists")

    def _store_clip_locked(self, data: bytes, sha: str, suffix: str) -> tuple[Path, bool]:
        """Write the clip unless an identical file is there; return (path, created)."""
        path = self._voices_dir / f"{sha[:16]}{suffix}"
        if path.exists():
            try:
                if sha256_bytes(path.read_bytes()) == sha:
                    return path, False
            except OSError as exc:
                log.warning("cannot read %s (%s); writing it again", path, exc)
            else:
                # Another file holds the short name: a damaged copy, or (very
                # rarely) a clip sharing 64 bits of digest. Never overwrite it,
                # as a voice may use it; the full digest names this clip.
                path = self._voices_dir / f"{sha}{suffix}"
                if path.exists() and sha256_bytes(path.read_bytes()) == sha:
                    return path, False
        with disk_full_as_error("the voice's clip", self._voices_dir):
            write_atomic(path, data, mode=OWNER_ONLY, site="voices.clip")
        return path, True

    @contextlib.contextmanager
    def _saved_locked(self) -> Iterator[None]:
        """Save the manifest after the block's change; if either fails, the library is as it was."""
        saved = dict(self._voices), self._default
        try:
            yield
            self._save_locked()
        except BaseException:
            self._voices, self._default = saved
            raise

    def _is_default_locked(self, voice: Voice) -> bool:
        return self._default is not None and _fold(self._default) == _fold(voice.name)

    def _delete_clip_if_unused_locked(self, file: Path) -> None:
        if not any(v.file == file for v in self._voices.values()):
            remove_file(file, "cannot remove clip file")

    def _save_locked(self) -> None:
        manifest = {
            "version": MANIFEST_VERSION,
            "default": self._default,
            # The clip's file name only: the folder is the library's.
            "voices": [
                {**v.to_json(), "file": v.file.name} for v in sorted(self._voices.values(), key=lambda v: _fold(v.name))
            ],
        }
        text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
        with disk_full_as_error("the voice library", self._data_dir):
            write_atomic(self._manifest, text, mode=OWNER_ONLY, site="voices.manifest")

    def _load(self) -> None:
        try:
            text = self._manifest.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._set_aside(f"it cannot be read ({exc})")
            return
        try:
            voices, default = self._parse(text)
        except (ValueError, TypeError, KeyError, VoiceError) as exc:
            self._set_aside(f"{type(exc).__name__}: {exc}")
            return

        dropped = False
        for voice in voices:
            if voice.file.is_file():
                self._voices[_fold(voice.name)] = voice
            else:
                log.warning("voice %r dropped: its clip %s is gone", voice.name, voice.file)
                dropped = True
        if default is not None:
            kept = self._voices.get(_fold(default))
            if kept is None:
                dropped = True
            self._default = kept.name if kept is not None else None
        if dropped:
            try:
                self._save_locked()
            except OSError as exc:
                log.warning("cannot rewrite %s: %s", self._manifest, exc)

    def _parse(self, text: str) -> tuple[builtins.list[Voice], str | None]:
        """Voices and default from manifest text.

        Raises:
            ValueError, TypeError, KeyError, VoiceError: the manifest is unusable.
        """
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("the manifest is not a JSON object")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {doc.get('version')!r}")
        entries = doc["voices"]
        if not isinstance(entries, list):
            raise TypeError("'voices' is not a list")
        default = doc.get("default")
        if default is not None and not isinstance(default, str):
            raise TypeError("'default' is not a string")
        # builtins.list: in this class, a bare `list` means the method.
        voices: builtins.list[Voice] = []
        seen: set[str] = set()
        for entry in entries:
            if not isinstance(entry, dict):
                raise TypeError("a voice entry is not an object")
            name = check_name(_typed(entry, "name", str))
            if _fold(name) in seen:
                raise ValueError(f"voice {name!r} is listed twice")
            seen.add(_fold(name))
            file_name = _typed(entry, "file", str)
            if not _CLIP_FILE_RE.fullmatch(file_name):
                raise ValueError(f"voice {name!r} names an unexpected file {file_name!r}")
            sha = _typed(entry, "sha256", str)
            if not _SHA256_RE.fullmatch(sha):
                raise ValueError(f"voice {name!r} has a malformed sha256")
            sample_rate = _typed(entry, "sample_rate", int)
            duration = _typed(entry, "duration_s", (int, float))
            voices.append(
                Voice(
                    name=name,
                    file=self._voices_dir / file_name,
                    sha256=sha,
                    duration_s=float(duration),
                    sample_rate=sample_rate,
                    added_at=_typed(entry, "added_at", str),
                    source_name=_typed(entry, "source_name", str),
                )
            )
        return voices, default

    def _set_aside(self, why: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = self._manifest.with_name(f"{self._manifest.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self._manifest.with_name(f"{self._manifest.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(self._manifest, target)
        except OSError as exc:
            done = f" and cannot be moved aside ({exc});"
        else:
            done = f"; moved it to {target} and"
        log.error("voice manifest %s is unusable (%s)%s starting with no voices", self._manifest, why, done)

    def _remove_unnamed_clips(self) -> None:
        """Remove clip files no voice names, unless a moved-aside manifest may name them."""
        try:
            if any(n.startswith(f"{self._manifest.name}.corrupt-") for n in os.listdir(self._data_dir)):
                return
            names = os.listdir(self._voices_dir)
        except OSError:
            return
        named = {v.file.name for v in self._voices.values()}
        for name in names:
            if _CLIP_FILE_RE.fullmatch(name) and name not in named:
                with contextlib.suppress(OSError):
                    (self._voices_dir / name).unlink()
                    log.info("removed %s: no voice uses it (left by an interrupted change)", name)

    def _remove_temp_files(self) -> None:
        # Only this daemon writes here (one per user), so any temporary file
        # at start-up was left by a crash.
        for folder in (self._data_dir, self._voices_dir):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.startswith(TMP_PREFIX):  # what ipc/atomic.py names its temporary files
                    with contextlib.suppress(OSError):
                        (folder / name).unlink()


def check_name(name: str) -> str:
    """Return ``name`` in NFC form if it is a valid voice name.

    Valid: 1 to `MAX_NAME_LENGTH` characters; no ``/`` or ``\\``; no control
    characters or line breaks; not starting with ``.``; no leading or trailing
    whitespace (two names that look the same should be the same).

    Raises:
        VoiceError: ``"bad_name"``, saying what is wrong.
    """
    if not isinstance(name, str):
        raise VoiceError("bad_name", "a voice name must be a string")
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise VoiceError("bad_name", "a voice name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise VoiceError("bad_name", f"a voice name can have at most {MAX_NAME_LENGTH} characters")
    if "/" in name or "\\" in name:
        raise VoiceError("bad_name", "a voice name cannot contain '/' or '\\'")
    if any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in name):
        raise VoiceError("bad_name", "a voice name cannot contain control characters")
    if name.startswith("."):
        raise VoiceError("bad_name", "a voice name cannot start with '.'")
    if name != name.strip():
        raise VoiceError("bad_name", "a voice name cannot start or end with whitespace")
    return name


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _typed(entry: dict[str, Any], field: str, kind: type | tuple[type, ...]) -> Any:
    value = entry[field]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"field {field!r} has the wrong type")
    return value


def _clean_source_name(source_name: str) -> str:
    """The last path part, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", source_name or "")[-1]
    base = "".join(c for c in base if unicodedata.category(c) not in _BAD_NAME_CATEGORIES)
    return base[:255]


def _suffix_of(source_name: str) -> str:
    suffix = os.path.splitext(source_name)[1].lower()
    return suffix if _SUFFIX_RE.fullmatch(suffix) else ".bin"


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
