"""One builder per request: the only place that knows each op's arguments.

Both clients, the blocking one (scripts, the CLI, Speech Dispatcher) and the
Qt one (the tray app), send what these functions return, the way
jupyter_client's session builds every message in one place. So a request's
shape is written once, and a change to an op's arguments is one edit here
(and one line in docs/protocol.md).

Pure: no sockets, no I/O. The standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import DEFAULT_PRIORITY

#: Adding a voice sends the clip in the message and the daemon decodes it in
#: its socket loop: allow longer than a control request.
VOICES_ADD_TIMEOUT = 60.0


@dataclass(frozen=True)
class Request:
    """What to send: the op, its arguments and binary frames.

    ``timeout`` overrides the client's default for this request (None: the
    default). ``stream`` marks ops that answer with non-final replies
    (accepted, progress, chunk) before the final one: clients bound the gap
    between replies rather than the whole request. ``slow`` marks ops the
    daemon may spend seconds on in its socket loop (decoding a clip), so a
    client does not take a late heartbeat meanwhile for a dead daemon.
    """

    op: str
    args: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()
    timeout: float | None = None
    stream: bool = False
    slow: bool = False


def _plain(op: str, **args: Any) -> Request:
    return Request(op, {k: v for k, v in args.items() if v is not None})


# -- the daemon ------------------------------------------------------------------------


def ping() -> Request:
    """A round trip."""
    return Request("ping")


def hello() -> Request:
    """Versions, ops and what the loaded model supports."""
    return Request("hello")


def status() -> Request:
    """The model's state, progress and error."""
    return Request("status")


def retry_load() -> Request:
    """Load the model again after a failure."""
    return Request("retry_load")


def reload() -> Request:
    """Load the model again with the current settings."""
    return Request("reload")


def stats() -> Request:
    """Model, device, GPU, RAM and CPU figures."""
    return Request("stats")


def shutdown() -> Request:
    """Stop the daemon after it has answered."""
    return Request("shutdown")


# -- voices --------------------------------------------------------------------------------


def voices_list() -> Request:
    """All voices with their cache state."""
    return Request("voices.list")


def voices_add(name: str, data: bytes, source_name: str = "") -> Request:
    """Add a voice from a clip's bytes (they travel in the message)."""
    return Request(
        "voices.add",
        {"name": name, "source_name": source_name},
        (bytes(data),),
        timeout=VOICES_ADD_TIMEOUT,
        slow=True,
    )


def voices_check(data: bytes, source_name: str = "") -> Request:
    """Check a clip as ``voices.add`` would, adding nothing (before asking the user for a name)."""
    return Request(
        "voices.add",
        {"check": True, "source_name": source_name},
        (bytes(data),),
        timeout=VOICES_ADD_TIMEOUT,
        slow=True,
    )


def voices_rename(name: str, new_name: str) -> Request:
    """Rename a voice."""
    return Request("voices.rename", {"name": name, "new_name": new_name})


def voices_remove(name: str) -> Request:
    """Remove a voice and its clip."""
    return Request("voices.remove", {"name": name})


def voices_default(name: str | None = None, *, clear: bool = False) -> Request:
    """Get the default voice, set it with ``name``, or unset it with ``clear``."""
    args: dict[str, Any] = {}
    if name is not None:
        args["name"] = name
    if clear:
        args["clear"] = True
    return Request("voices.default", args)


def voices_play(name: str) -> Request:
    """Play a voice's reference clip on the daemon's speaker."""
    return Request("voices.play", {"name": name})


# -- making speech ----------------------------------------------------------------------------


def _text_request(
    op: str,
    text: str,
    voice: str | None,
    voice_path: str | os.PathLike | None,
    voice_data: bytes | None,
    options: Mapping[str, Any] | None,
    **extra: Any,
) -> Request:
    """``synthesize`` and ``speak`` share the text, the voice's three forms and the options."""
    args: dict[str, Any] = {"text": text, "options": dict(options or {}), **extra}
    buffers: tuple[bytes, ...] = ()
    if voice is not None:
        args["voice"] = voice
    if voice_path is not None:
        # The daemon reads the clip itself, from its own working directory.
        args["voice_path"] = str(Path(voice_path).resolve())
    if voice_data is not None:
        args["voice_data"] = True
        buffers = (bytes(voice_data),)
    return Request(op, args, buffers, stream=op == "synthesize")


def synthesize(
    text: str,
    *,
    voice: str | None = None,
    voice_path: str | os.PathLike | None = None,
    voice_data: bytes | None = None,
    options: Mapping[str, Any] | None = None,
    rate: float | None = None,
) -> Request:
    """Make audio and stream it back as chunks.

    ``voice`` names a library voice; ``voice_path`` a clip on disk the daemon
    reads; ``voice_data`` clip bytes sent with the request. With none of them
    the default voice is used. ``options``: exaggeration, cfg_weight,
    temperature, seed, language. ``rate`` (0.5-2.0): speaking rate; None
    leaves it to the daemon's ``rate`` setting.
    """
    extra = {} if rate is None else {"rate": rate}
    return _text_request("synthesize", text, voice, voice_path, voice_data, options, **extra)


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
) -> Request:
    """Queue text on the daemon's speaker.

    ``priority``: "urgent", "quick", "text" or "notification"
    (docs/protocol.md). ``volume`` (0-1) scales this job only. ``rate``
    (0.5-2.0): speaking rate; None leaves it to the daemon's ``rate`` setting.
    """
    extra: dict[str, Any] = {"priority": priority}
    if volume is not None:
        extra["volume"] = volume
    if rate is not None:
        extra["rate"] = rate
    return _text_request("speak", text, voice, voice_path, voice_data, options, **extra)


@dataclass(frozen=True)
class PlayHere:
    """A ``speak`` for a daemon on another computer, as the CLI and the tray app send it: ``synthesize`` there.

    What only a speaker uses (priority, volume as ``gain``, interrupt) stays here, with this computer's speaker.
    """

    synthesize: Request
    priority: str
    gain: float
    chars: int

    @classmethod
    def of(cls, speak: Request) -> PlayHere:
        """The rewrite of a ``speak`` request (built by ``speak``)."""
        args = {k: v for k, v in speak.args.items() if k not in ("priority", "volume", "interrupt")}
        volume = speak.args.get("volume")
        return cls(
            Request("synthesize", args, speak.buffers, timeout=speak.timeout, stream=True),
            priority=str(speak.args.get("priority") or DEFAULT_PRIORITY),
            gain=float(volume) if isinstance(volume, (int, float)) else 1.0,
            chars=len(str(speak.args.get("text") or "")),
        )


def cancel(job: str | None = None, *, request: str | None = None) -> Request:
    """Cancel a job by its id, or by the id of the request that made it."""
    if (job is None) == (request is None):
        raise ValueError("give exactly one of job or request")
    return _plain("cancel", job=job, request=request)


def wait(job: str, *, stop_on_disconnect: bool = False) -> Request:
    """Answer when a job ends; with ``stop_on_disconnect`` the job stops if this client goes."""
    args: dict[str, Any] = {"job": job}
    if stop_on_disconnect:
        args["stop_on_disconnect"] = True
    return Request("wait", args, stream=True)


# -- the speaker -------------------------------------------------------------------------------


def stop(job: str | None = None, *, all: bool = False) -> Request:
    """Stop the playing job, one job, or (``all``) everything queued too."""
    args: dict[str, Any] = {"all": all}
    if job is not None:
        args["job"] = job
    return Request("stop", args)


def pause() -> Request:
    """Pause the speaker."""
    return Request("pause")


def resume() -> Request:
    """Resume the speaker."""
    return Request("resume")


def skip() -> Request:
    """Skip to the next sentence."""
    return Request("skip")


def playback() -> Request:
    """The speaker's state, queue, device, volume and underruns."""
    return Request("playback")


def audio_devices() -> Request:
    """Output devices, the chosen one and the volume."""
    return Request("audio.devices")


def audio_set(device: str | None = None, volume: float | None = None) -> Request:
    """Choose the output device ("" for the system default) and/or the volume (0-1)."""
    return _plain("audio.set", device=device, volume=volume)


# -- settings and cache -------------------------------------------------------------------------


def settings_get() -> Request:
    """The daemon's settings, which are editable and which need a reload."""
    return Request("settings.get")


def settings_set(values: Mapping[str, Any]) -> Request:
    """Change settings."""
    return Request("settings.set", {"values": dict(values)})


def cache_stats() -> Request:
    """Hits, misses, entries, bytes and seconds saved."""
    return Request("cache.stats")


def cache_clear(voice: str | None = None) -> Request:
    """Drop cached conditionals of one voice, or all."""
    return Request("cache.clear", {"voice": voice} if voice else {})


# -- saying it the way the user wants (docs/protocol.md: words.*, text.preview, tags.list) --------


def words_list() -> Request:
    """The pronunciation rules."""
    return Request("words.list")


def words_add(
    word: str, say: str, *, regex: bool = False, case_sensitive: bool = False, old_word: str | None = None
) -> Request:
    """Add a rule, replace the one for the same word, or (``old_word``) edit that one."""
    args: dict[str, Any] = {"word": word, "say": say, "regex": regex, "case_sensitive": case_sensitive}
    if old_word is not None:
        args["old_word"] = old_word
    return Request("words.add", args)


def words_remove(word: str) -> Request:
    """Remove the rule for ``word``."""
    return Request("words.remove", {"word": word})


def words_import(rules: list[dict[str, Any]], *, merge: bool = True) -> Request:
    """Add many rules at once (all or nothing); ``merge=False`` makes them the whole dictionary."""
    return Request("words.import", {"rules": list(rules), "merge": merge})


def text_preview(text: str) -> Request:
    """What the model would be given for ``text`` (rules, pauses, tags)."""
    return Request("text.preview", {"text": text})


def tags_list() -> Request:
    """The tags the loaded model knows, and the pause markup's bounds."""
    return Request("tags.list")
