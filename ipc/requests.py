"""The request builders every client sends through: each returns the op's type from ``ipc.messages``.

Both clients, the blocking one (scripts, the CLI, Speech Dispatcher) and the
Qt one (the tray app), send what these return, the way jupyter_client's
session builds every message in one place. An op's arguments are declared
once, as the fields of its type in ``ipc/messages.py``; where a type's own
constructor is all a caller needs it is named here in lower case, and the
functions below only do what a client does before sending (read a path
against its own working folder, put clip bytes in a frame).

Pure: no sockets, no I/O. The standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import messages as m
from .messages import VOICES_ADD_TIMEOUT, Request

__all__ = ["VOICES_ADD_TIMEOUT", "PlayHere", "Request"]

# Ops whose type's constructor is the whole builder.
ping = m.Ping
hello = m.Hello
status = m.Status
retry_load = m.RetryLoad
reload = m.Reload
stats = m.Stats
shutdown = m.Shutdown
voices_list = m.VoicesList
voices_rename = m.VoicesRename
voices_remove = m.VoicesRemove
voices_play = m.VoicesPlay
voices_default = m.VoicesDefault
wait = m.Wait
stop = m.Stop
pause = m.Pause
resume = m.Resume
skip = m.Skip
playback = m.Playback
audio_devices = m.AudioDevices
audio_set = m.AudioSet
settings_get = m.SettingsGet
cache_stats = m.CacheStats
words_list = m.WordsList
words_add = m.WordsAdd
words_remove = m.WordsRemove
words_import = m.WordsImport
text_preview = m.TextPreview
tags_list = m.TagsList


def voices_add(name: str, data: bytes, source_name: str = "") -> m.VoicesAdd:
    """Add a voice from a clip's bytes (they travel in the message)."""
    return m.VoicesAdd(name=name, clip=bytes(data), source_name=source_name)


def voices_check(data: bytes, source_name: str = "") -> m.VoicesAdd:
    """Check a clip as ``voices.add`` would, adding nothing (before asking the user for a name)."""
    return m.VoicesAdd(name="", clip=bytes(data), source_name=source_name, check=True)


def _voice(voice_path: str | os.PathLike | None, voice_data: bytes | None) -> dict[str, Any]:
    """A clip's two forms as ``synthesize`` and ``speak`` send them."""
    # The daemon reads a path itself, from its own working directory.
    path = None if voice_path is None else str(Path(voice_path).resolve())
    clip = None if voice_data is None else bytes(voice_data)
    return {"voice_path": path, "voice_data": clip is not None, "clip": clip}


def synthesize(
    text: str,
    *,
    voice: str | None = None,
    voice_path: str | os.PathLike | None = None,
    voice_data: bytes | None = None,
    options: Mapping[str, Any] | None = None,
    rate: float | None = None,
) -> m.Synthesize:
    """Make audio and stream it back as chunks (``voice_data``: clip bytes sent with the request)."""
    return m.Synthesize(
        text=text, voice=voice, options=dict(options or {}), rate=rate, **_voice(voice_path, voice_data)
    )


def speak(
    text: str,
    *,
    voice: str | None = None,
    voice_path: str | os.PathLike | None = None,
    voice_data: bytes | None = None,
    priority: str = "text",
    volume: float | None = None,
    options: Mapping[str, Any] | None = None,
    rate: float | None = None,
) -> m.Speak:
    """Queue text on the daemon's speaker (docs/protocol.md: priorities; ``volume`` for this job only)."""
    return m.Speak(
        text=text,
        voice=voice,
        priority=priority,
        volume=1.0 if volume is None else volume,
        options=dict(options or {}),
        rate=rate,
        **_voice(voice_path, voice_data),
    )


def cancel(job: str | None = None, *, request: str | None = None) -> m.Cancel:
    """Cancel a job by its id, or by the id of the request that made it."""
    if (job is None) == (request is None):
        raise ValueError("give exactly one of job or request")
    return m.Cancel(job=job, request=request)


def cache_clear(voice: str | None = None) -> m.CacheClear:
    """Drop cached conditionals of one voice, or (no voice, or "") all."""
    return m.CacheClear(voice or None)


def settings_set(values: Mapping[str, Any]) -> m.SettingsSet:
    """Change settings."""
    return m.SettingsSet(dict(values))


@dataclass(frozen=True)
class PlayHere:
    """A ``speak`` for a daemon on another computer, as the CLI and the tray app send it: ``synthesize`` there.

    What only a speaker uses (priority, volume as ``gain``) stays here, with this computer's speaker.
    """

    synthesize: m.Synthesize
    priority: str
    gain: float
    chars: int

    @classmethod
    def of(cls, speak: m.Speak) -> PlayHere:
        """The rewrite of a ``speak`` request."""
        shared = ("text", "voice", "voice_path", "voice_data", "clip", "options", "rate")
        synthesize = m.Synthesize(**{f: getattr(speak, f) for f in shared})
        return cls(synthesize, speak.priority, speak.volume, len(speak.text))
