"""The bridges' side of the daemon: fresh clients, a synthesis stream, voice names.

A bridge serves many requests at once, from threads (HTTP) or asyncio tasks
(Wyoming), and a ZeroMQ socket belongs to one thread, so every request gets
its own ``Client``. The connection file is read again each time (a small file
read), so a daemon that restarted, with new endpoints and a new key, is found
without restarting the bridge.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.client import Client, DaemonUnavailable, Synthesis
from ..ipc.core import DaemonFinder

log = logging.getLogger("chatterbox_tray.bridges")

#: What every bridge tells its client when the daemon does not answer (with the reason).
NOT_ANSWERING = "the Chatterbox Tray daemon is not answering: {}"


class DaemonClients:
    """Where the daemon is; ``client()`` gives a new client of it."""

    def __init__(self, connection: Path | None = None, timeout: float = 10.0) -> None:
        self.finder = DaemonFinder(connection_path=connection)
        self.timeout = timeout

    def client(self) -> Client:
        """A new client; raise DaemonUnavailable when no daemon runs (or it speaks another protocol version)."""
        info = self.finder.find()
        if info is None:
            raise DaemonUnavailable("the Chatterbox Tray daemon is not running")
        return Client(info, timeout=self.timeout)


def open_synthesis(
    client: Client,
    text: str,
    voice: str | None,
    options: dict[str, Any],
    should_stop: Callable[[], bool] = lambda: False,
    rate: float | None = None,
) -> Synthesis:
    """Send ``synthesize`` and wait for ``accepted``; raise ProtocolError on an error reply.

    Returning only after the daemon's first answer lets a bridge turn an
    error in the request (unknown voice, text too long) into its own error
    status before it has sent anything. Iterate the result for the audio;
    leaving early, or ``should_stop`` turning true, cancels the job.
    ``rate``: the speaking rate (None: the daemon's ``rate`` setting).
    """
    synthesis = client.synthesize(text, voice=voice, rate=rate, **options)
    synthesis.should_stop = should_stop
    return synthesis.accepted()


# -- voice names -------------------------------------------------------------------

#: OpenAI's built-in voice names (the six of tts-1 and the newer ones of gpt-4o-mini-tts).
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)

#: The voice table's file name under the config folder (next to settings.json).
VOICE_TABLE_FILE = "openai-voices.json"


class UnknownVoice(LookupError):
    """No library voice answers to that name; the message says what exists."""


class VoiceTable:
    """The editable table from OpenAI voice names to library voices.

    A JSON object such as ``{"alloy": "narrator", "nova": "Ann"}`` in
    ``openai-voices.json`` in the config folder (or a file given with
    ``--voice-map``). It is read again when the file changes, so an edit
    takes effect at the next request. A missing file is an empty table; a
    broken one is logged and treated as empty, never fatal.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._table: dict[str, str] = {}

    def table(self) -> dict[str, str]:
        """The current table, names folded to lower case."""
        path = self.path or endpoints.config_dir() / VOICE_TABLE_FILE
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._table = self._load(path) if stamp else {}
            return dict(self._table)

    @staticmethod
    def _load(path: Path) -> dict[str, str]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise ValueError("expected a JSON object of names to names")
        except (OSError, ValueError) as exc:
            log.warning("ignoring the voice table %s: %s", path, exc)
            return {}
        return {str(k).casefold(): v for k, v in data.items()}


def resolve_voice(requested: str | None, voices: list[dict[str, Any]], table: dict[str, str]) -> str | None:
    """The library voice to use for ``requested``; None means the daemon's default voice.

    In order: no name -> the default voice; a library voice's name (any case);
    a name in the table whose target is in the library; an OpenAI voice name
    (or a table entry whose target is gone) -> the default voice. Anything
    else is an UnknownVoice, as is falling back when no default is set.
    """
    by_name = {v["name"].casefold(): v["name"] for v in voices}
    default = next((v["name"] for v in voices if v.get("default")), None)
    if requested is None or not requested.strip():
        if default is None:
            raise UnknownVoice("no voice was given and no default voice is set" + _library_hint(voices))
        return None
    key = requested.strip().casefold()
    if key in by_name:
        return by_name[key]
    target = table.get(key)
    if target is not None and target.casefold() in by_name:
        return by_name[target.casefold()]
    if target is not None or key in OPENAI_VOICES:
        if default is None:
            raise UnknownVoice(
                f"{requested!r} is not a library voice and no default voice is set to stand in for it; "
                f"map it in {VOICE_TABLE_FILE} or set a default voice" + _library_hint(voices)
            )
        if target is not None:
            log.warning("voice table maps %r to %r, which is not in the library; using the default", key, target)
        return None
    raise UnknownVoice(f"no voice named {requested!r}" + _library_hint(voices))


def _library_hint(voices: list[dict[str, Any]]) -> str:
    if not voices:
        return " (the voice library is empty: add a voice with `chatterbox-tray voices add NAME clip.wav`)"
    names = [v["name"] for v in voices]
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f" (library voices: {shown})"
