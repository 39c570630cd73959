"""What the app knows about the daemon, kept in step with its events.

One ``AppState`` is shared by the tray and every page, so they never disagree
and never each ask the daemon the same thing. It holds only what the daemon
said (no second copy of settings): the link, ``hello``, ``status``, the voice
library and the speaker's state, and turns events into Qt signals.

With a daemon on another computer (``remote``) the speaker is this
computer's: ``send`` hands speak, stop, pause, resume and playback to
``LocalSpeech``, whose job events take the place of the daemon's. That
daemon sends no events at all, so its status and voices are asked for every
few seconds instead.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..ipc import messages as m
from ..ipc import remote as remote_files
from ..ipc import requests as rq
from ..ipc.protocol import ProtocolError
from ..ipc.requests import Request
from . import prefs
from .connection import CONNECTED, CONNECTING, FAILED, LOST, Callbacks, Connection, OnResult
from .play_here import LOCAL_OPS, LocalSpeech

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

log = logging.getLogger(__name__)

#: Job events after which a speech job is over.
JOB_ENDS = frozenset({"finished", "cancelled", "failed", "dropped"})
#: Job events that mean its audio is on the speaker. Not "resumed": the speaker
#: resumes a job that may not have sounded yet (paused before its first audio).
JOB_PLAYING = frozenset({"started", "sentence", "position", "underrun"})
#: The speaker's own events: they change whether it is paused, never how far a job is.
SPEAKER_EVENTS = frozenset({"paused", "resumed"})
#: The way back when a daemon on another computer does not answer (the banner's and the tray's words).
LOCAL_CHOICE = "Use this computer's daemon"
#: How often the status and voices of a remote daemon (which sends no events) are asked for.
REMOTE_POLL_MS = 2000
#: What the app knows before a daemon answers: every field its zero value.
NO_HELLO, NO_STATUS = m.HelloResult.from_data({}), m.StateEvent.from_data({})


class AppState(QObject):
    """The daemon as the GUI sees it."""

    changed = Signal()  # link, status or speaker changed: re-read ``icon_state`` and friends
    hello_changed = Signal(object)
    voices_changed = Signal()
    job_event = Signal(object)
    cache_event = Signal(object)
    settings_event = Signal(object)
    playback_event = Signal(object)
    words_event = Signal(object)  # the pronunciation rules changed (any client)
    reconnected = Signal()
    #: The daemon that had these speech jobs is gone (restarted, or stopped for good):
    #: they will never end by an event. The list may be empty (a job not yet announced).
    jobs_lost = Signal(list)
    error = Signal(str)  # a failed request worth telling the user about
    daemon_changed = Signal(str)  # the app now uses another daemon ("" for this computer's)

    def __init__(self, connection: Connection, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.conn = connection
        self.link = CONNECTING
        self.link_detail = ""
        self.hello = NO_HELLO
        self.status = NO_STATUS
        self.voices: list[m.VoiceInfo] = []
        self.default_voice: str | None = None
        self.speech_jobs: dict[str, str] = {}  # job id -> last event, for jobs on the speaker
        #: Jobs known to be over: a late event or a stale snapshot never brings them back.
        self._ended: deque[str] = deque(maxlen=512)
        #: Job events applied so far; a playback snapshot only judges jobs it was asked about.
        self._job_events = 0
        self.paused = False
        #: job id -> (sentences made, sentences in all), from the events that carry them.
        self.job_progress: dict[str, tuple[int, int]] = {}
        #: A file this app is making (Save as…): (its name, sentences made, sentences in all), or None.
        self.saving: tuple[str, int, int] | None = None
        #: Speech jobs the link was lost with: over if the daemon that comes back is another one.
        self._unsure: set[str] = set()
        self._voices_timer = QTimer(self, singleShot=True, interval=150, timeout=self.refresh_voices)
        #: While something is on the speaker but no job event came for a while,
        #: ask the speaker: an end event lost on the way must not leave us "busy".
        self._quiet_since = 0
        self._check_timer = QTimer(self, interval=4000, timeout=self._check_quiet)
        self._check_timer.start()
        #: A paired daemon on another computer, or None for this computer's.
        self.remote: str | None = connection.remote
        #: Its GPU as its ``stats`` name it (a CUDA daemon), else "" (the pairing label is used).
        self.remote_gpu = ""
        self._paired_gpu = self._read_paired_gpu()
        self.here = LocalSpeech(connection.send, self)
        self.here.job_event.connect(self._apply)
        self._poll_timer = QTimer(self, interval=REMOTE_POLL_MS, timeout=self._poll_remote)
        if self.remote:
            self._poll_timer.start()
        connection.link_changed.connect(self._on_link)
        connection.connected.connect(self._on_connected)
        connection.event.connect(self._on_event)
        connection.gap.connect(self._resync)

    # -- derived ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a daemon answers."""
        return self.link == CONNECTED

    @property
    def where(self) -> str:
        """Where the voice comes from, for people: "gpu-box, RTX 4090"; "" for this computer's daemon."""
        if not self.remote:
            return ""
        gpu = self.remote_gpu or self._paired_gpu
        return f"{self.remote}, {gpu}" if gpu else self.remote

    def _read_paired_gpu(self) -> str:
        """The GPU the pairing label names: it is "host, GPU", or just the host."""
        try:
            paired = remote_files.read_daemons().get(self.remote or "")
        except remote_files.RemoteError:
            paired = None
        return paired.label.partition(", ")[2] if paired is not None else ""

    def use_daemon(self, name: str | None, save: bool = True) -> None:
        """Switch to a paired daemon (its name) or this computer's (None); never blocks.

        Saved as the app's preference unless ``save`` is false. What plays
        here stops; the pages start again with the new daemon's state.
        """
        if save:
            prefs.save(daemon=name or "local")
        if name == self.remote:
            if self.link != CONNECTED:
                self.conn.retry()
            return
        self.here.stop(all=True)
        self.remote, self.remote_gpu = name, ""
        self.link, self.link_detail = CONNECTING, f"Connecting to {name}…" if name else ""
        self._paired_gpu = self._read_paired_gpu()
        self.hello, self.status = NO_HELLO, NO_STATUS
        self.speech_jobs.clear()
        self.job_progress.clear()
        self._unsure.clear()
        self.paused = False
        (self._poll_timer.start if name else self._poll_timer.stop)()  # a remote daemon sends no events
        self.conn.switch(name)
        self.daemon_changed.emit(name or "")
        self.changed.emit()

    @property
    def model_state(self) -> str:
        """The daemon's model state, or "" when none is connected."""
        return self.status.state if self.connected else ""

    @property
    def ready(self) -> bool:
        """Connected and the model is loaded."""
        return self.model_state == "ready"

    @property
    def speaking(self) -> bool:
        """Audio of some job (any client's) is on the speaker now."""
        return any(e in JOB_PLAYING for e in self.speech_jobs.values())

    @property
    def busy(self) -> bool:
        """Some speech job is queued, being made or playing."""
        return bool(self.speech_jobs)

    @property
    def working(self) -> bool:
        """Speech is being made and none of it is on the speaker yet (20-45 s on a CPU)."""
        return self.busy and not self.speaking

    def making_progress(self) -> tuple[int, int]:
        """(sentences made, sentences in all) over the jobs being made; (0, 0) when unknown."""
        progress = [self.job_progress.get(job, (0, 0)) for job in self.speech_jobs]
        return sum(made for made, _ in progress), sum(chunks for _, chunks in progress)

    @property
    def icon_state(self) -> str:
        """One of loading, ready, sleeping, working, speaking, paused, error: what the tray icon shows.

        A paused speaker shows as paused even with nothing on it (another client
        paused it): a hidden paused state would make the next Speak silent.
        """
        if self.link in (LOST, FAILED) or self.model_state == "failed":
            return "error"
        if self.connected and self.model_state == "sleeping":
            return "paused" if self.paused else "sleeping"  # a paused speaker must never hide
        if not self.connected or self.model_state != "ready":
            return "loading"
        if self.paused:
            return "paused"
        if self.speaking:
            return "speaking"
        if self.working or self.saving is not None:
            return "working"
        return "ready"

    @property
    def summary(self) -> str:
        """One line for people: the tray tooltip and the status bar."""
        if self.link == FAILED:
            return "The daemon could not be started"
        if self.link == LOST:
            return f"{self.link_detail} Reconnecting…"
        if not self.connected:
            return self.link_detail or "Connecting to the daemon…"
        state = self.model_state
        if state == "failed":
            return "The model failed to load"
        if state == "sleeping":
            if self.paused:
                return "Paused: nothing will be heard until you resume (the model is asleep)"
            return "Asleep: the model was unloaded while idle and loads again when you speak"
        if state != "ready":
            return f"Loading the model… {round(100 * self.status.progress)}%"
        voice = f" · voice: {self.default_voice}" if self.default_voice else ""
        if self.remote:
            voice += f" · from {self.where}"
        if self.paused:
            if not self.busy:
                return f"Paused: nothing will be heard until you resume{voice}"
            done, total = self.making_progress() if self.working else (0, 0)
            made = f" · {done} of {total} sentences made" if total else ""  # paused before its first sound
            return f"Paused{made}{voice}"
        if self.speaking:
            return f"Speaking{voice}"
        if self.working:
            done, total = self.making_progress()
            made = f" {done} of {total} sentences made" if total else ""
            return f"Making speech…{made}{voice}"
        if self.saving is not None:
            name, done, total = self.saving
            made = f" {done} of {total} sentences made" if total else ""
            return f"Saving {name}…{made}{voice}"
        return f"Ready{voice}"

    def set_saving(self, saving: tuple[str, int, int] | None) -> None:
        """The file this app is making: (name, sentences made, sentences in all), or None when done."""
        if saving != self.saving:
            self.saving = saving
            self.changed.emit()

    def option_ranges(self) -> dict[str, dict[str, float]]:
        """Generation options the loaded model uses, with their ranges (``hello``)."""
        return dict((self.hello.capabilities or {}).get("options") or {})

    def languages(self) -> list[str]:
        """Languages the loaded model speaks."""
        return list((self.hello.capabilities or {}).get("languages") or [])

    def supports(self, op: str) -> bool:
        """Whether the daemon knows an op (``hello``'s ``ops``)."""
        return op in self.hello.ops

    # -- requests ----------------------------------------------------------------

    def fetch(self, request: Request, on_result: OnResult) -> None:
        """Ask for something a page shows, if a daemon answers; a failure is not told (the next refresh repairs it)."""
        if self.connected:
            self.send(request, on_result=on_result, on_error=_ignore)

    def refresh_voices(self) -> None:
        """Ask for the voice list again."""
        self.conn.send(rq.voices_list(), on_result=self._set_voices, on_error=_ignore)

    def refresh_playback(self) -> None:
        """Ask the speaker what it is doing (also repairs a lost end event)."""
        asked_at = self._job_events
        # Through ``send``: with a remote daemon the speaker that matters is this computer's.
        self.send(rq.playback(), on_result=lambda r: self._set_playback(r, asked_at), on_error=_ignore)

    def retry(self) -> None:
        """Try again after a failure: start or find the daemon, or load the model with the current settings.

        ``reload`` rather than ``retry_load``: the latter loads with the engine
        built from the settings of the load that failed, so a checkpoint folder
        chosen since would be ignored. ``retry_load`` remains for a daemon that
        refuses ``reload`` (jobs waiting for the model).
        """
        if not self.connected:
            self.conn.retry()
            return

        def fallback(code: str, message: str) -> None:
            if code == "busy":
                self.send(rq.retry_load())
            else:
                self._report_error(code, message)

        self.send(rq.reload(), on_error=fallback)

    def send(self, request: Request, **callbacks: Unpack[Callbacks]) -> str:
        """A request whose errors are reported through ``error`` unless ``on_error`` is given.

        Returns the request id, which the events of a job it makes carry.
        """
        if callbacks.get("on_error") is None:
            callbacks["on_error"] = self._report_error
        if self.remote and request.op in LOCAL_OPS:  # this computer's speaker
            return self.here.handle(request, callbacks.get("on_result"), callbacks["on_error"])
        return self.conn.send(request, **callbacks)

    def _report_error(self, code: str, message: str) -> None:
        self.error.emit(message or code)

    # -- events ------------------------------------------------------------------

    def _on_link(self, state: str, detail: str) -> None:
        self.link, self.link_detail = state, detail
        if state != CONNECTED:
            self._unsure.update(self.speech_jobs)
            self.speech_jobs.clear()
            self.job_progress.clear()
        if state == FAILED and self._unsure:
            self.jobs_lost.emit(sorted(self._unsure))  # no daemon will come back to finish them
            self._unsure.clear()
        self.changed.emit()

    def _on_connected(self, hello: m.HelloResult, status: m.StateEvent) -> None:
        self.link = CONNECTED
        restarted = self.hello is not NO_HELLO and self.hello.pid != hello.pid
        lost, self._unsure = sorted(self._unsure | set(self.speech_jobs)), set()
        self._set_hello(hello)
        self.status = status
        self.speech_jobs.clear()
        self.job_progress.clear()
        self.paused = False
        self.refresh_voices()
        self.refresh_playback()
        if self.remote:
            self.conn.send(rq.stats(), on_result=self._set_remote_gpu, on_error=_ignore)
        self.changed.emit()
        self.reconnected.emit()
        if restarted:
            self.jobs_lost.emit(lost)

    def _poll_remote(self) -> None:
        """A remote daemon sends no events: ask for its state and voices instead."""
        if self.remote and self.connected:
            self.conn.send(rq.status(), on_result=self._polled_status, on_error=_ignore)
            self.conn.send(rq.voices_list(), on_result=self._set_voices, on_error=_ignore)

    def _polled_status(self, status: m.StateEvent) -> None:
        if status != self.status:
            self._apply(status)

    def _set_remote_gpu(self, stats: dict[str, Any]) -> None:
        self.remote_gpu = str(stats.get("gpu_name") or "")  # ``stats`` stays an object (sysstats' figures)
        self.changed.emit()

    def _check_quiet(self) -> None:
        if self.connected and self.busy and self._job_events == self._quiet_since:
            self.refresh_playback()
        self._quiet_since = self._job_events

    def _resync(self) -> None:
        self.refresh_voices()
        self.refresh_playback()
        self.conn.send(rq.status(), on_result=self._set_status, on_error=_ignore)

    def _on_event(self, topic: str, data: dict[str, Any]) -> None:
        try:  # read as its type: a malformed event is dropped here, never half-applied
            event = m.EVENTS[topic].from_data(data) if topic in m.EVENTS else None
        except ProtocolError as exc:
            log.warning("dropping a bad %s event: %s", topic, exc)
            return
        if event is not None:
            self._apply(event)

    def _apply(self, event: m.Event) -> None:
        """Follow an event (the daemon's, or this computer's speaker's); the pages' signals carry it by type."""
        if isinstance(event, m.StateEvent):
            was = self.model_state
            self._set_status(event)
            if event.state == "ready" and was != "ready":  # the model's capabilities are known now
                self.conn.send(rq.hello(), on_result=self._set_hello, on_error=_ignore)
                self.refresh_voices()
        elif isinstance(event, m.VoicesEvent):
            self._apply_voices_event(event)
        elif isinstance(event, m.JobEvent):
            self._apply_job_event(event)
            self.job_event.emit(event.to_data())  # an object, as bench/tray_remote_bench.py reads it
        elif isinstance(event, m.CacheEvent):
            self._voices_timer.start()  # cache states of voices changed
            self.cache_event.emit(event)
        elif isinstance(event, m.SettingsEvent):
            self.settings_event.emit(event)
        elif isinstance(event, m.PlaybackEvent):
            self.playback_event.emit(event)
        elif isinstance(event, m.WordsEvent):
            self.words_event.emit(event)

    def _apply_voices_event(self, event: m.VoicesEvent) -> None:
        voice = event.voice
        if event.action == "added" and voice is not None:
            self.voices = [v for v in self.voices if v.name.lower() != voice.name.lower()] + [voice]
        elif event.action == "renamed" and voice is not None:
            old = (event.old_name or "").lower()
            self.voices = [v for v in self.voices if v.name.lower() != old] + [voice]
            if self.default_voice and self.default_voice.lower() == old:
                self.default_voice = voice.name
        elif event.action == "removed":
            gone = (event.name or "").lower()
            self.voices = [v for v in self.voices if v.name.lower() != gone]
            if self.default_voice and self.default_voice.lower() == gone:
                self.default_voice = None
        elif event.action == "default":
            self.default_voice = event.name
        else:
            self._voices_timer.start()
            return
        self.voices = sorted(
            (replace(v, default=bool(self.default_voice) and v.name == self.default_voice) for v in self.voices),
            key=lambda v: v.name.lower(),
        )
        self.voices_changed.emit()
        self.changed.emit()

    def _apply_job_event(self, told: m.JobEvent) -> None:
        if told.kind != "speak" and told.event not in SPEAKER_EVENTS:
            return
        job, event = told.job, told.event
        if event in SPEAKER_EVENTS:
            self.paused = event == "paused"
        self._job_events += 1
        if job in self._ended:
            return
        if job and event in SPEAKER_EVENTS:
            # A job paused before its first sound has still not sounded when
            # resumed: it stays "being made", with its progress.
            self.speech_jobs.setdefault(job, "queued")
        elif job:
            if event in JOB_ENDS:
                self.speech_jobs.pop(job, None)
                self.job_progress.pop(job, None)
                self._ended.append(job)
                self.changed.emit()
                return
            if told.chunks is not None:
                made = told.chunks_done or 0
                if event == "chunk":  # sent as a sentence is made; its count may predate it
                    made = max(made, (-1 if told.index is None else told.index) + 1)
                self.job_progress[job] = (made, told.chunks)
            if event in JOB_PLAYING or job not in self.speech_jobs or self.speech_jobs[job] not in JOB_PLAYING:
                self.speech_jobs[job] = event
        self.changed.emit()

    # -- results -------------------------------------------------------------------

    def _set_hello(self, hello: m.HelloResult) -> None:
        self.hello = hello
        self.hello_changed.emit(hello)

    def _set_status(self, status: m.StateEvent) -> None:
        self.status = status
        self.changed.emit()

    def _set_voices(self, result: m.VoicesListResult) -> None:
        """The voice list as the daemon has it; the same list again (a remote daemon's poll) changes nothing."""
        if result.voices == self.voices and result.default == self.default_voice:
            return
        self.voices = list(result.voices)
        self.default_voice = result.default
        self.voices_changed.emit()
        self.changed.emit()

    def _set_playback(self, playback: m.PlaybackEvent, asked_at: int = 0) -> None:
        """Adopt the speaker's queue (the daemon's, or this computer's: the same type). Jobs it no longer
        lists are over, unless an event about them arrived while the answer was on its way (they are newer)."""
        listed = [j for j in playback.queue if j not in self._ended]
        if self._job_events == asked_at:
            self.paused = playback.state == "paused"
            for job in [j for j in self.speech_jobs if j not in listed]:
                self.speech_jobs.pop(job)
                self.job_progress.pop(job, None)
        sounding = playback.job if playback.state != "idle" else None
        for job in listed:
            self.speech_jobs.setdefault(job, "started" if job == sounding else "queued")
        self.changed.emit()


def _ignore(code: str, message: str) -> None:
    """For requests whose failure the next event or refresh repairs: nothing to tell the user."""
