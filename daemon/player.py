"""The speaker: plays ``speak`` jobs while they are synthesized, in priority order.

The daemon owns the audio output, as Speech Dispatcher does, so the hotkey,
the tray and scripts share one speaker and one queue. The model worker pushes
each sentence here as soon as it is made; the player thread writes it to the
device in 20 ms blocks, so stop, pause and skip act between blocks.

The loop is ``audio/playback_loop.py``'s, the same one this computer's player
for a remote daemon's speech runs (``audio/local_player.py``); its rules
(priorities, what plays next, when the pre-buffer lets a job start) are pure
functions in ``audio/speaker_rules.py``. This module adds what is the
daemon's own: items are jobs, news goes out as job events, and a job's end
is the coordinator's to report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.output import AudioError, list_devices
from ..audio.playback_loop import PlaybackLoop, Track
from ..ipc.limits import PRIORITIES, PRIORITY_RANK
from ..ipc.messages import JobEvent

log = logging.getLogger(__name__)


class Dropped(Exception):
    """A notification arrived while something else was speaking."""


@dataclass(eq=False, kw_only=True)
class Item(Track):
    """One speak job on the speaker."""

    job: Any  # jobs.Job

    def describe(self) -> dict[str, Any]:
        return {**self.job.describe(), "priority": PRIORITIES[self.rank]}


class Player(PlaybackLoop):
    """The daemon's speaker: the speech queue of jobs and the thread that plays it (``PlaybackLoop``)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        device: str = "",
        volume: float = 1.0,
        prebuffer: str = "adaptive",
        sentence_pause_ms: int = 250,
        #: Publishes a job event: (the job, or None for the speaker itself, data).
        #: The service refuses events about a job whose end event is out, so the
        #: player thread may report after a stop has ended the job on the main loop.
        event: Callable[[Any, JobEvent], None],
        #: A job's first sound reached the device.
        started: Callable[[Any], None],
        #: The speaker took a job off itself (played out, failed, closing):
        #: (job, state, error, playback). Never called with the lock held.
        ended: Callable[[Any, str, Exception | None, dict[str, Any]], None],
    ) -> None:
        super().__init__(
            sample_rate,
            device=device,
            volume=volume,
            prebuffer=prebuffer,
            pause_s=sentence_pause_ms / 1000,
            name="player",
        )
        self._event = event
        self._started = started
        self._on_end = ended

    # -- the queue (any thread) ---------------------------------------------------

    def admit(self, job: Any, priority: str, volume: float = 1.0) -> list[Any]:
        """Put a job on the speaker; return the jobs it displaces (off the speaker now, not yet ended).

        ``volume`` (0-1) scales this job's samples, on top of the speaker's volume.
        Raises Dropped for a notification that would have to wait. The rules
        are `speaker_rules.admission`'s.
        """
        displaced = self._admit(
            Item(job=job, rank=PRIORITY_RANK[priority], chars_total=len(job.text), gain=float(volume))
        )
        if displaced is None:
            raise Dropped("something else is speaking")
        return [o.job for o in displaced]

    def push(
        self,
        job: Any,
        index: int,
        samples: np.ndarray,
        span: tuple[int, int],
        text: str,
        made_s: float,
        *,
        final: bool = True,
        longest_s: float | None = None,
    ) -> None:
        """A sentence, or a piece of one, is ready (``made_s``: the model's seconds on it).

        ``longest_s``: the most audio the sentence can have (its speech-token
        budget), which bounds how much more of it is still to come.
        """
        with self._cond:
            item = self._find(job)
            if item is not None:
                self._add(item, index, samples, span, text, made_s, final=final, longest_s=longest_s)

    def produced(self, job: Any) -> None:
        """The model has made every sentence of ``job``."""
        with self._cond:
            item = self._find(job)
            if item is not None:
                self._produced(item)

    def remove(self, job: Any) -> dict[str, Any] | None:
        """Take a job off the speaker (its end is the caller's to report).

        Returns what the job's end reports as ``playback``, or None if the job
        is not on the speaker (it already ended).
        """
        with self._cond:
            item = self._find(job)
        if item is None or not self._take_off(item):
            return None
        return self._playback(item)

    def jobs(self) -> list[Any]:
        """Jobs on the speaker, the playing one first."""
        with self._cond:
            return [i.job for i in self._items]

    def devices(self) -> list[Any]:
        """Output devices, re-read from the system when that cannot disturb playback.

        Re-reading re-initialises PortAudio, which invalidates an open stream,
        so it happens only with nothing queued and the device released.
        """
        with self._cond:
            idle = not self._items and not (self._stream is not None and self._stream.is_open)
            return list_devices(rescan=idle)

    def set_paused(self, paused: bool) -> dict[str, Any]:
        with self._cond:
            changed = self.paused != paused
            self.paused = paused
            item = self._current()
            self._cond.notify_all()
        if changed:
            event = JobEvent(event="paused" if paused else "resumed", **(item.describe() if item else {}))
            self._event(item.job if item else None, event)
        return {"paused": paused, "job": item.job.id if item else None}

    def skip(self) -> dict[str, Any]:
        """Skip to the next sentence of the playing job."""
        skipped = self._skip()
        return {"job": skipped[0].job.id, "sentence": skipped[1]} if skipped else {"job": None, "sentence": None}

    def status(self) -> dict[str, Any]:
        with self._cond:
            item = self._current()
            recent = self._recent_rtf()
            return {
                "state": "paused" if self.paused else "playing" if item and item.started else "idle",
                "job": item.job.id if item else None,
                "queue": [i.job.id for i in self._items],
                "volume": self.volume,
                "device": self.device,
                "underruns": self.underruns,
                "prebuffer": self.prebuffer,
                "recent_rtf": None if recent is None else round(recent, 3),
                "last_stop_latency_ms": None
                if self.last_cut_latency_s is None
                else round(1000 * self.last_cut_latency_s, 1),
                "device_latency_ms": self._stream.latency_ms() if self._stream is not None else None,
            }

    def close(self) -> None:
        with self._cond:
            items, self._items = self._items, []
        self._stop_thread()
        for item in items:
            self._ended(item, "cancelled", None)

    def wants_pieces(self, job: Any, chars: int) -> bool:
        """Whether the model should hand over the sentence being made in pieces (any thread).

        Pieces cost more work than a whole sentence (each reads the voice's
        reference again), so they are asked for only while a listener would
        otherwise wait: nothing of the job is made yet (its first sound waits
        on this sentence), or it is playing and what the speaker holds runs
        out before this sentence (``chars`` long) could be made whole. While a
        job pre-buffers, whole sentences reach its start sooner.
        """
        with self._cond:
            item = self._find(job)
            if item is None:
                return False
            if not item.segments:
                return True
            if not item.started:
                return False
            rtf = self._rtf_estimate(item) or 1.0
            return item.buffered_samples() / self.rate < chars * self._seconds_per_char() * rtf

    # -- what the loop tells (``PlaybackLoop``) --------------------------------------------------

    def _find(self, job: Any) -> Item | None:
        return next((i for i in self._items if i.job is job), None)

    def _tell(self, item: Item, event: str, data: dict[str, Any]) -> None:
        if event == "started":
            self._started(item.job)
        self._event(item.job, JobEvent(event=event, **item.describe(), **data))

    def _ended(self, item: Item, state: str, error: AudioError | None) -> None:
        """The speaker is done with a job it took off itself: report its end."""
        try:
            self._on_end(item.job, state, error, self._playback(item))
        except Exception:
            log.exception("player: ending job %s failed", item.job.id)

    def _crash_error(self, exc: Exception) -> AudioError:
        return AudioError("internal", "playback failed; see the daemon log")

    def _playback(self, item: Item) -> dict[str, Any]:
        """What a speak job's end reports about its playing."""
        return {
            "played_s": round(item.played_s, 3),
            "underruns": item.underruns,
            "first_sample_s": None if item.first_sample_s is None else round(item.first_sample_s, 4),
            "prebuffer_s": round(item.prebuffer_s, 3),
            "priority": PRIORITIES[item.rank],
            "volume": item.gain,
        }
