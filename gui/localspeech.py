"""Speech from a daemon on another computer, played on this computer's speaker (the tray app's side).

With a remote daemon the app's ``speak``, ``stop``, ``pause``, ``resume`` and
``playback`` requests are answered here instead (``AppState.send`` routes
them): the text is sent as a ``synthesize`` stream, its chunks go to
``ipc.localplay.LocalPlayer`` on a worker thread, and what happens is told
as the same ``job`` events the daemon's own speaker would send (queued,
chunk, started, sentence, paused, resumed, finished, cancelled, failed), so
the Speak page, the tray and the hotkey need no second code path. One
speech at a time: a new one replaces the one playing, as ``quick`` speech
does on the daemon's speaker. A remote daemon sends no events, so these are
the only job events the app gets from it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.client import Chunk
from chatterbox_tray.ipc.localplay import LocalPlayer, Played
from chatterbox_tray.ipc.requests import Request

log = logging.getLogger(__name__)

#: The requests answered here when the daemon is on another computer.
LOCAL_OPS = frozenset({"speak", "stop", "pause", "resume", "playback"})

Send = Callable[..., str]


class _Speech:
    """One speech: its request, its job (once accepted), its player and its chunk queue."""

    def __init__(self, req_id: str, volume: float = 1.0) -> None:
        self.req_id = req_id
        self.job: str | None = None
        self.chunks = 0
        self.made = 0
        self.player = LocalPlayer(volume=volume)
        self.feed: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.error: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {}
        self.stopping = False
        self.over = False


class LocalSpeech(QObject):
    """Plays a remote daemon's speech here; reports it as job events (``job_event``, on the GUI thread)."""

    job_event = Signal(object)
    _ended = Signal(object, object)  # _Speech, Played or an exception (from the player thread)
    _sentence = Signal(object, object)  # _Speech, Chunk (from the player thread)

    def __init__(self, send: Send, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._send = send
        self.current: _Speech | None = None
        self._ended.connect(self._on_ended)
        self._sentence.connect(self._on_sentence)

    # -- requests answered here ------------------------------------------------------

    def handle(
        self,
        request: Request,
        on_result: Callable[[dict[str, Any]], None] | None,
        on_error: Callable[[str, str], None] | None,
    ) -> str:
        """Answer one of ``LOCAL_OPS``; returns the request id (a ``speak``'s is its job events' ``request``)."""
        if request.op == "speak":
            return self.speak(request, on_result, on_error)
        if request.op == "stop":
            self.stop()
            result: dict[str, Any] = {"stopped": 1 if self.current else 0}
        elif request.op == "pause":
            self.pause()
            result = {"state": "paused"}
        elif request.op == "resume":
            self.resume()
            result = {"state": "playing" if self.current else "idle"}
        else:  # playback
            result = self.playback()
        if on_result is not None:
            QTimer.singleShot(0, lambda: on_result(result))  # answers come later, as from the daemon
        return ""

    def speak(
        self,
        request: Request,
        on_result: Callable[[dict[str, Any]], None] | None,
        on_error: Callable[[str, str], None] | None,
    ) -> str:
        """Synthesize ``request``'s text there and play it here, in place of what is playing."""
        self.stop()
        args = {k: v for k, v in request.args.items() if k not in ("priority", "volume", "interrupt")}
        holder: dict[str, _Speech] = {}

        def on_message(header: dict[str, Any], buffers: list[bytes]) -> None:
            speech = holder["speech"]
            kind = header.get("kind")
            if kind == "accepted":
                speech.job = str(header.get("job") or "")
                speech.chunks = int(header.get("chunks") or 0)
                if on_result is not None:
                    position = int(header.get("position") or 0)
                    on_result({"job": speech.job, "chunks": speech.chunks, "position": position, "dropped": False})
                if speech.over:  # stopped before it was accepted: its end can be told now
                    self._event(speech, "cancelled")
                elif not speech.stopping:
                    self._event(speech, "queued", position=int(header.get("position") or 0))
                    self._start_player(speech)
            elif kind == "chunk" and buffers and not speech.stopping:
                import numpy as np

                chunk = Chunk(
                    index=int(header.get("index", 0)),
                    samples=np.frombuffer(buffers[0], dtype="<f4"),
                    sample_rate=int(header.get("sample_rate") or 24000),
                    text=str(header.get("text", "")),
                    span=tuple(header.get("span") or (0, 0)),  # type: ignore[arg-type]
                    piece=int(header.get("piece", 0)),
                    final=bool(header.get("final", True)),
                )
                if chunk.final:
                    speech.made = chunk.index + 1
                    self._event(speech, "chunk", index=chunk.index, chunks_done=speech.made)
                speech.feed.put(chunk)

        def on_done(summary: dict[str, Any]) -> None:
            speech = holder["speech"]
            speech.summary = summary
            speech.feed.put(None)

        def on_failed(code: str, message: str) -> None:
            speech = holder["speech"]
            if speech.job is None:  # refused before it began: the speak request itself failed
                speech.over = True
                if self.current is speech:
                    self.current = None
                if on_error is not None:
                    on_error(code, "Stopped before it began." if speech.stopping else message)
                return
            speech.error = {"code": code, "message": message}
            if code != "cancelled":
                speech.player.stop()
            speech.feed.put(None)

        req_id = self._send(
            Request("synthesize", args, request.buffers, timeout=request.timeout, stream=True),
            on_message=on_message,
            on_result=on_done,
            on_error=on_failed,
        )
        volume = request.args.get("volume")
        speech = holder["speech"] = _Speech(req_id, float(volume) if isinstance(volume, (int, float)) else 1.0)
        self.current = speech
        return req_id

    def stop(self) -> None:
        """Silence what plays here (within one 50 ms slice) and cancel its job there."""
        speech = self.current
        if speech is None or speech.stopping:
            return
        speech.stopping = True
        speech.player.stop()
        speech.feed.put(None)  # wakes a player waiting for the next chunk
        self._send(rq.cancel(request=speech.req_id), on_error=lambda code, message: None)
        if speech.thread is None:  # not accepted yet: nothing plays, it is over now
            self._finish(speech, Played(stopped=True))

    def pause(self) -> None:
        """Hold the speech (within one slice); ``resume`` goes on."""
        speech = self.current
        if speech is not None and not speech.player.paused:
            speech.player.pause()
            if speech.job:
                self._event(speech, "paused")

    def resume(self) -> None:
        """Go on after ``pause`` (with nothing here, it only clears a paused look)."""
        speech = self.current
        if speech is None:
            self.job_event.emit({"event": "resumed", "kind": "speak", "job": None})
        elif speech.player.paused:
            speech.player.resume()
            if speech.job:
                self._event(speech, "resumed")

    def playback(self) -> dict[str, Any]:
        """The ``playback`` answer for this computer's speaker."""
        speech = self.current
        if speech is None or not speech.job:
            return {"state": "idle", "job": None, "queue": [], "device": "this computer"}
        state = "paused" if speech.player.paused else "playing"
        return {"state": state, "job": speech.job, "queue": [speech.job], "device": "this computer"}

    def close(self) -> None:
        """Stop playing (switching daemons, quitting)."""
        self.stop()

    # -- the player thread ----------------------------------------------------------------

    def _start_player(self, speech: _Speech) -> None:
        def chunks() -> Iterator[Chunk]:
            while (chunk := speech.feed.get()) is not None:
                if chunk.piece == 0:
                    self._sentence.emit(speech, chunk)  # about to be heard
                yield chunk

        def run() -> None:
            try:
                played: Any = speech.player.play(chunks())
            except Exception as exc:  # no speaker here, a device error: said, not raised into nothing
                log.warning("playing here failed: %s", exc)
                played = exc
            self._ended.emit(speech, played)

        speech.thread = threading.Thread(target=run, name="local-speech", daemon=True)
        speech.thread.start()

    def _on_sentence(self, speech: _Speech, chunk: Chunk) -> None:
        if speech.over:
            return
        if chunk.index == 0:
            self._event(speech, "started")
        self._event(speech, "sentence", sentence=chunk.index, span=list(chunk.span), text=chunk.text)

    def _on_ended(self, speech: _Speech, played: Played | Exception) -> None:
        self._finish(speech, played)

    def _finish(self, speech: _Speech, played: Played | Exception) -> None:
        if speech.over:
            return
        speech.over = True
        if self.current is speech:
            self.current = None
        if speech.player.paused and speech.job:
            # This computer's speaker is idle now, not paused: a new speech plays at once
            # (unlike the daemon's speaker, which stays paused for everyone).
            self._event(speech, "resumed")
        if isinstance(played, Exception):
            self._event(speech, "failed", error={"code": "audio", "message": f"Could not play here: {played}"})
            self._send(rq.cancel(request=speech.req_id), on_error=lambda code, message: None)
        elif speech.stopping or (played.stopped and speech.error is None) or _cancelled_there(speech):
            self._event(speech, "cancelled")
        elif speech.error is not None:
            self._event(speech, "failed", error=speech.error)
        else:
            playback = {"played_s": round(played.seconds, 3), "device": "this computer"}
            self._event(speech, "finished", playback=playback, summary=speech.summary or None)

    def _event(self, speech: _Speech, event: str, **data: Any) -> None:
        self.job_event.emit(
            {
                "event": event,
                "kind": "speak",
                "job": speech.job,
                "request": speech.req_id,
                "chunks": speech.chunks,
                "chunks_done": speech.made,
                **data,
            }
        )


def _cancelled_there(speech: _Speech) -> bool:
    """The remote daemon cancelled the job (its owner, or another of this computer's clients)."""
    return speech.error is not None and speech.error.get("code") == "cancelled"
