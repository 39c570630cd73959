"""Speech from a daemon on another computer, played on this computer's speaker (the tray app's side).

With a remote daemon the app's ``speak``, ``stop``, ``pause``, ``resume``,
``skip`` and ``playback`` requests are answered here instead
(``AppState.send`` routes them): the text is sent as a ``synthesize``
stream, its chunks go to one ``audio.local_player.LocalPlayer`` (this computer's
speaker, with the daemon's rules: priorities, adaptive pre-buffer, skip,
stop and pause within 100 ms, on the output device and volume chosen for
this computer), and what happens is told as the same ``job`` events the
daemon's own speaker would send (queued, chunk, started, sentence,
interrupted, underrun, paused, resumed, finished, cancelled, failed), so the
Speak page, the tray and the hotkey need no second code path. All the app's
speech goes through the one player, so a quick-speak while a long text plays
replaces it, as on the daemon's speaker. A remote daemon sends no events, so
these are the only job events the app gets from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..audio.local_player import LocalPlayer, Played, Speech, local_output
from ..ipc import messages as m
from ..ipc import requests as rq
from ..ipc.client import Chunk
from ..ipc.requests import PlayHere, Request
from .connection import OnError, OnResult

log = logging.getLogger(__name__)

#: The requests answered here when the daemon is on another computer.
LOCAL_OPS = frozenset({"speak", "stop", "pause", "resume", "skip", "playback"})

Send = Callable[..., str]


class _Speech:
    """One speech: its request, its job (once accepted), and its place on this computer's speaker."""

    def __init__(self, req_id: str, on_speaker: Speech) -> None:
        self.req_id = req_id
        self.on_speaker = on_speaker
        self.job: str | None = None
        self.chunks = 0
        self.made = 0
        self.error: dict[str, Any] | None = None
        self.summary: dict[str, Any] = {}
        self.stopping = False
        self.over = False


class LocalSpeech(QObject):
    """Plays a remote daemon's speech here; reports it as job events (``job_event``, on the GUI thread)."""

    job_event = Signal(object)
    _told = Signal(object, str, object)  # _Speech, event, data (from the player thread)

    def __init__(self, send: Send, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._send = send
        self.player = LocalPlayer.for_this_computer()
        #: Speech not yet over, in the order it was asked for.
        self.speeches: list[_Speech] = []
        self._told.connect(self._on_told)

    @property
    def current(self) -> _Speech | None:
        """The speech playing (or next to play) here."""
        playing = self.player.current
        return next((s for s in self.speeches if s.on_speaker is playing), None) if playing else None

    # -- requests answered here ------------------------------------------------------

    def handle(self, request: Request, on_result: OnResult | None, on_error: OnError | None) -> str:
        """Answer one of ``LOCAL_OPS`` with its op's result type; returns the request id
        (a ``speak``'s is its job events' ``request``)."""
        if request.op == "speak":
            return self.speak(request, on_result, on_error)
        result: Any
        job = speech.job if (speech := self.current) else None  # what plays here: pausing or skipping keeps it
        if isinstance(request, m.Stop):
            result = m.StopResult(self.stop(all=request.all))
        elif request.op in ("pause", "resume"):
            (self.pause if request.op == "pause" else self.resume)()
            result = m.PauseResult(self.player.paused, job)
        elif request.op == "skip":  # to the next sentence of the speech playing here
            result = m.SkipResult(job, self.player.skip()["sentence"])
        else:  # playback
            result = self.playback()
        if on_result is not None:
            QTimer.singleShot(0, lambda: on_result(result))  # answers come later, as from the daemon
        return ""

    def speak(self, request: Request, on_result: OnResult | None, on_error: OnError | None) -> str:
        """Synthesize ``request``'s text there and play it here, by its priority (the app's speech is ``quick``)."""
        self.player.use(local_output())  # this computer's choice, as it is now
        here = PlayHere.of(request)
        speech = _Speech("", self.player.speak(priority=here.priority, chars=here.chars, gain=here.gain))

        def on_message(reply: m.Reply) -> None:
            if isinstance(reply, m.Accepted):
                speech.job, speech.chunks, position = reply.job, reply.chunks, reply.position
                if on_result is not None:
                    on_result(m.SpeakResult(speech.job, False, position, here.priority, speech.chunks, []))
                if speech.over:  # stopped or replaced before it was accepted: its end can be told now
                    if not speech.stopping:
                        self._send(rq.cancel(request=speech.req_id), on_error=lambda code, message: None)
                    self._event(speech, "cancelled")
                else:
                    self._event(speech, "queued", priority=here.priority)
            elif isinstance(reply, m.ChunkReply) and reply.audio is not None and not speech.over:
                chunk = Chunk.from_reply(reply)
                if chunk.final:
                    speech.made = chunk.index + 1
                    self._event(speech, "chunk", index=chunk.index, chunks_done=speech.made)
                speech.on_speaker.push(chunk)

        def on_done(summary: dict[str, Any]) -> None:
            speech.summary = summary
            speech.on_speaker.produced()

        def on_failed(code: str, message: str) -> None:
            if speech.job is None:  # refused before it began: the speak request itself failed
                stopped_first = speech.stopping or speech.over
                speech.stopping = True
                speech.on_speaker.stop()
                speech.over = True
                self._forget(speech)
                if on_error is not None:
                    on_error(code, "Stopped before it began." if stopped_first else message)
                return
            speech.error = {"code": code, "message": message}
            if code == "cancelled":
                speech.on_speaker.stop()
            else:
                speech.on_speaker.failed(message)

        # Its answers come later, on the GUI thread: ``speech`` is whole by then.
        speech.req_id = self._send(here.synthesize, on_message=on_message, on_result=on_done, on_error=on_failed)
        self.speeches.append(speech)
        on_speaker = speech.on_speaker
        on_speaker.listener = lambda event, data: self._told.emit(speech, event, data)
        if on_speaker.over:  # ended at once: a notification over other speech, as the daemon drops it
            self._on_told(speech, "ended", {"played": on_speaker.played})
        return speech.req_id

    def stop(self, all: bool = False) -> list[str]:
        """Silence what plays here (within a block) and cancel its job there; ``all``: every speech here.

        Returns the jobs it stopped (those accepted there), as the daemon's ``stop`` does.
        """
        targets = [s for s in self.speeches if not s.stopping] if all else [s for s in [self.current] if s]
        for speech in targets:
            speech.stopping = True
            speech.on_speaker.stop()
            self._send(rq.cancel(request=speech.req_id), on_error=lambda code, message: None)
        return [s.job for s in targets if s.job]

    def pause(self) -> None:
        """Hold this computer's speaker (within a block); ``resume`` goes on."""
        if not self.player.paused:
            self.player.pause()
            self._speaker_event("paused")

    def resume(self) -> None:
        """Go on after ``pause`` (with nothing here, it only clears a paused look)."""
        was = self.player.paused
        self.player.resume()
        if was or self.current is None:
            self._speaker_event("resumed")

    def playback(self) -> m.PlaybackEvent:
        """The ``playback`` answer for this computer's speaker."""
        jobs = [s.job for s in self.speeches if s.job and not s.over]
        speech = self.current
        state = "paused" if self.player.paused else "playing" if speech and speech.on_speaker.started else "idle"
        return m.PlaybackEvent(
            state=state if jobs or state == "paused" else "idle",
            job=speech.job if speech else None,
            queue=jobs,
            volume=self.player.volume,
            device=self.player.device or "this computer",
            underruns=self.player.underruns,
            prebuffer=self.player.prebuffer,
        )

    # -- what the player tells (on the GUI thread) --------------------------------------------

    def _on_told(self, speech: _Speech, event: str, data: dict[str, Any]) -> None:
        if event == "ended":
            self._finish(speech, data["played"])
        elif not speech.over and speech.job:
            self._event(speech, event, **data)

    def _finish(self, speech: _Speech, played: Played) -> None:
        if speech.over:
            return
        speech.over = True
        self._forget(speech)
        if not self.speeches and self.player.paused:
            # This computer's speaker is idle now, not paused: a new speech plays at once
            # (unlike the daemon's speaker, which stays paused for everyone).
            self.player.resume()
            self._event(speech, "resumed")
        if not speech.job:
            return  # not accepted yet: its end is told when it is (or its request fails)
        if played.displaced or (played.stopped and not speech.stopping and speech.error is None):
            self._send(rq.cancel(request=speech.req_id), on_error=lambda code, message: None)
        # Cancelled there: by its owner, or by another of this computer's clients.
        cancelled_there = speech.error is not None and speech.error.get("code") == "cancelled"
        if played.error is not None and speech.error is None:  # this computer's device failed
            self._event(speech, "failed", error={"code": "audio", "message": f"Could not play here: {played.error}"})
        elif speech.stopping or (played.stopped and speech.error is None) or cancelled_there:
            self._event(speech, "cancelled")
        elif speech.error is not None:
            self._event(speech, "failed", error=speech.error)
        else:
            self._event(speech, "finished", playback=played.playback(), summary=speech.summary or None)

    def _forget(self, speech: _Speech) -> None:
        if speech in self.speeches:
            self.speeches.remove(speech)

    def _speaker_event(self, event: str) -> None:
        """``paused``/``resumed``: about the speaker, told with the speech it holds (if any)."""
        speech = self.current
        if speech is not None and speech.job:
            self._event(speech, event)
        else:
            self.job_event.emit(m.JobEvent(event=event, kind="speak"))

    def _event(self, speech: _Speech, event: str, **data: Any) -> None:
        """A job event about ``speech``, of the daemon's own ``job`` event type."""
        fields = {"job": speech.job, "request": speech.req_id, "chunks": speech.chunks, "chunks_done": speech.made}
        self.job_event.emit(m.JobEvent(event=event, kind="speak", **{**fields, **data}))
