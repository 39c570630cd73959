"""The speaker: plays ``speak`` jobs while they are synthesized, in priority order.

The daemon owns the audio output, as Speech Dispatcher does, so the hotkey,
the tray and scripts share one speaker and one queue. The model worker pushes
each sentence here as soon as it is made; one player thread writes it to the
device in 20 ms blocks (``audio/output.py``'s ``OutputStream``), so stop, pause and skip
act between blocks.

The rules it follows (priorities, what plays next, when the pre-buffer lets
a job start) are pure functions in ``audio/speaker_rules.py``; this module runs them.
This computer's player for a remote daemon's speech (``audio/local_player.py``)
runs the same rules on the same output stream (``audio/output.py``).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio import speaker_rules as speaker
from ..audio.output import LEAD_S, AudioError, OutputStream, fade, list_devices
from ..ipc.limits import PRIORITIES, PRIORITY_RANK

log = logging.getLogger(__name__)

# Re-exported for the daemon's modules; clients read them from ipc/limits.py.
RANK = PRIORITY_RANK

#: Samples per write: small enough that controls act within a block.
BLOCK_S = 0.02
#: How often a playing job reports its position.
POSITION_EVERY_S = 0.5
#: Idle time after which the device is released.
IDLE_CLOSE_S = 0.5


class Dropped(Exception):
    """A notification arrived while something else was speaking."""


@dataclass
class Segment:
    """One sentence's audio (faded, with the pause after it) and where it came from."""

    index: int
    samples: np.ndarray
    speech_samples: int
    span: tuple[int, int]
    text: str
    made_s: float  # seconds the model spent on it
    #: More pieces of this sentence are coming (token streaming): the player
    #: waits at its end instead of moving on, and counts that as an underrun.
    open: bool = False
    #: Seconds the model took for the latest piece of it (how long the next may take),
    #: and that piece's real-time factor when it is not the first (the first pays for starting).
    last_piece_made_s: float = 0.0
    last_piece_rtf: float | None = None
    #: The most audio this sentence can have (its token budget), if known.
    longest_s: float | None = None


@dataclass
class Item:
    """One speak job on the speaker."""

    job: Any  # jobs.Job
    rank: int
    seq: int
    chars_total: int
    gain: float = 1.0  # this job's own volume, on top of the speaker's
    segments: list[Segment] = field(default_factory=list)
    produced_all: bool = False
    seg: int = 0  # segment being played
    pos: int = 0  # next sample in it
    started: bool = False
    starving: bool = False
    underruns: int = 0
    played_s: float = 0.0
    requested: float = field(default_factory=time.monotonic)
    first_sample_s: float | None = None  # request to first sample handed to the device
    prebuffer_s: float = 0.0  # audio buffered when playback began
    last_position: float = 0.0

    def buffered_samples(self) -> int:
        """Samples made but not yet played."""
        return sum(len(s.samples) for s in self.segments[self.seg :]) - self.pos

    def describe(self) -> dict[str, Any]:
        return {**self.job.describe(), "priority": PRIORITIES[self.rank]}


class Player:
    """The speech queue and the thread that plays it."""

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
        event: Callable[[Any, dict[str, Any]], None],
        #: A job's first sound reached the device.
        started: Callable[[Any], None],
        #: The speaker took a job off itself (played out, failed, closing):
        #: (job, state, error, playback). Never called with the lock held.
        ended: Callable[[Any, str, Exception | None, dict[str, Any]], None],
    ) -> None:
        self.rate = sample_rate
        self.device = device
        self.volume = float(volume)
        self.prebuffer = prebuffer
        self.pause_s = sentence_pause_ms / 1000
        self._event = event
        self._started = started
        self._ended = ended
        self._cond = threading.Condition()
        self._items: list[Item] = []
        self._seq = itertools.count()
        self.paused = False
        self._cut_at: float | None = None  # when a stop/skip/interruption asked to silence the device
        #: Seconds from the last stop/skip/interruption request to the device being silenced.
        self.last_cut_latency_s: float | None = None
        self._closing = False
        self.underruns = 0
        #: Recent sentences' synthesis real-time factors (any job: a machine that gets
        #: busier or quieter shows within a few sentences), and recent jobs' seconds per character.
        self._rtfs: deque[float] = deque(maxlen=8)
        self._spc: deque[float] = deque(maxlen=8)
        self._stream = OutputStream(device, sample_rate)
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)
        self._thread.start()

    # -- the queue (any thread) ---------------------------------------------------

    def admit(self, job: Any, priority: str, volume: float = 1.0) -> list[Any]:
        """Put a job on the speaker; return the jobs it displaces (off the speaker now, not yet ended).

        ``volume`` (0-1) scales this job's samples, on top of the speaker's volume.
        Raises Dropped for a notification that would have to wait. The rules
        are `speaker.admission`'s.
        """
        rank = RANK[priority]
        with self._cond:
            seq = next(self._seq)
            current = self._current()
            playing = 0 if current is not None and current.started else None
            verdict = speaker.admission(rank, seq, self._items, playing)
            if verdict.dropped:
                raise Dropped("something else is speaking")
            displaced = [self._items[i] for i in verdict.displaced]
            for other in displaced:
                self._items.remove(other)
            item = Item(job, rank, seq, len(job.text), gain=float(volume))
            self._items.append(item)
            self._items.sort(key=speaker.playing_order)
            if playing is not None and current in displaced:
                self._cut = True  # silence the replaced speech now
            elif verdict.interrupts and current is not None:
                self._interrupt(current)
            self._cond.notify_all()
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
        """A sentence, or a piece of one, is ready.

        ``longest_s``: the most audio the sentence can have (its speech-token
        budget), which bounds how much more of it is still to come.

        Pieces of one sentence (same ``index``) join into one segment; the
        last (``final``) gets the fade-out and the pause after the sentence.
        """
        pause = np.zeros(int(self.pause_s * self.rate) if final else 0, dtype=np.float32)
        with self._cond:
            item = self._find(job)
            if item is None:
                return
            last = item.segments[-1] if item.segments else None
            if last is not None and last.open and last.index == index:
                # Swapped under the lock: the player thread slices by position,
                # so what it has played and where it stands stay valid.
                last.samples = np.concatenate([last.samples, fade(samples, self.rate, start=False, end=final), pause])
                last.speech_samples += len(samples)
                last.made_s += made_s
                last.last_piece_made_s = made_s
                if len(samples):
                    last.last_piece_rtf = made_s / (len(samples) / self.rate)
                last.open = not final
            else:
                audio = np.concatenate([fade(samples, self.rate, end=final), pause])
                last = Segment(index, audio, len(samples), span, text, made_s, open=not final)
                last.last_piece_made_s = made_s
                last.longest_s = longest_s
                item.segments.append(last)
            if final and last.speech_samples and last.made_s > 0:
                self._rtfs.append(last.made_s / (last.speech_samples / self.rate))
            self._cond.notify_all()

    def produced(self, job: Any) -> None:
        """The model has made every sentence of ``job``."""
        with self._cond:
            item = self._find(job)
            if item is not None:
                item.produced_all = True
                for seg in item.segments:  # no more pieces will come
                    seg.open = False
                speech = sum(s.speech_samples for s in item.segments) / self.rate
                made = sum(s.made_s for s in item.segments)
                if speech > 0 and made > 0:  # (a played clip was not synthesized)
                    self._spc.append(speech / max(1, item.chars_total))
                self._cond.notify_all()

    def remove(self, job: Any) -> dict[str, Any] | None:
        """Take a job off the speaker (its end is the caller's to report).

        Returns what the job's end reports as ``playback``, or None if the job
        is not on the speaker (it already ended).
        """
        with self._cond:
            item = self._find(job)
            if item is None:
                return None
            if item is self._current() and item.started:
                self._cut = True
            self._items.remove(item)
            self._cond.notify_all()
        return self._playback(item)

    def jobs(self) -> list[Any]:
        """Jobs on the speaker, the playing one first."""
        with self._cond:
            return [i.job for i in self._items]

    def current_job(self) -> Any | None:
        with self._cond:
            item = self._current()
            return item.job if item else None

    def devices(self) -> list[Any]:
        """Output devices, re-read from the system when that cannot disturb playback.

        Re-reading re-initialises PortAudio, which invalidates an open stream,
        so it happens only with nothing queued and the device released.
        """
        with self._cond:
            idle = not self._items and not self._stream.is_open
            return list_devices(rescan=idle)

    def set_paused(self, paused: bool) -> dict[str, Any]:
        with self._cond:
            changed = self.paused != paused
            self.paused = paused
            item = self._current()
            self._cond.notify_all()
            if changed:
                data = {"event": "paused" if paused else "resumed"}
                if item is not None:
                    data.update(item.describe())
                self._event(item.job if item else None, data)
        return {"paused": paused, "job": item.job.id if item else None}

    def skip(self) -> dict[str, Any]:
        """Skip to the next sentence of the playing job."""
        with self._cond:
            item = self._current()
            if item is None:
                return {"job": None, "sentence": None}
            item.seg += 1
            item.pos = 0
            self._cut = item.started or self._cut
            self._cond.notify_all()
            return {"job": item.job.id, "sentence": item.seg}

    def set_output(self, device: str | None = None, volume: float | None = None) -> None:
        with self._cond:
            if volume is not None:
                self.volume = float(volume)
            if device is not None and device != self.device:
                self.device = device
                self._cut = True  # the player thread reopens on the new device
                self._reopen = True
            self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        with self._cond:
            item = self._current()
            return {
                "state": "paused" if self.paused else "playing" if item and item.started else "idle",
                "job": item.job.id if item else None,
                "queue": [i.job.id for i in self._items],
                "volume": self.volume,
                "device": self.device,
                "underruns": self.underruns,
                "prebuffer": self.prebuffer,
                "recent_rtf": round(float(np.median(self._rtfs)), 3) if self._rtfs else None,
                "last_stop_latency_ms": None
                if self.last_cut_latency_s is None
                else round(1000 * self.last_cut_latency_s, 1),
                "device_latency_ms": self._stream.latency_ms(),
            }

    def close(self) -> None:
        with self._cond:
            self._closing = True
            items, self._items = self._items, []
            self._cut = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        for item in items:
            self._finish(item, "cancelled", None)

    # -- internals (lock held) -----------------------------------------------------------

    _reopen = False

    @property
    def _cut(self) -> bool:
        """Whether the player thread must silence the device before anything else."""
        return self._cut_at is not None

    @_cut.setter
    def _cut(self, value: bool) -> None:
        if not value:
            self._cut_at = None
        elif self._cut_at is None:
            self._cut_at = time.monotonic()

    def _current(self) -> Item | None:
        return self._items[0] if self._items else None

    def _find(self, job: Any) -> Item | None:
        return next((i for i in self._items if i.job is job), None)

    def _interrupt(self, item: Item) -> None:
        """An urgent job cuts in: the interrupted one restarts its sentence later."""
        item.pos = 0
        self._cut = True
        self._event(item.job, {**item.describe(), "event": "interrupted", "sentence": item.seg})

    def _rtf_estimate(self, item: Item) -> float | None:
        """This job's real-time factor so far, or recent sentences' if that is higher.

        Sentences differ (a short one costs more per second of audio), so the
        job's own cumulative figure is the best guess once it has one; recent
        sentences (whatever job, the path and precision in use) guard against
        a lucky first piece and follow the machine getting busier or quieter.
        """
        made = sum(s.made_s for s in item.segments)
        speech = sum(s.speech_samples for s in item.segments) / self.rate
        pool = ([made / speech] if speech > 0 and made > 0 else []) + (
            [float(np.median(self._rtfs))] if self._rtfs else []
        )
        return max(pool) if pool else None

    def _seconds_per_char(self) -> float:
        return float(np.median(self._spc)) if self._spc else speaker.SECONDS_PER_CHAR

    def _made_chars(self, segments: list[Segment]) -> int:
        """Characters made: whole sentences, and a sentence still being made in proportion to its audio."""
        spc = self._seconds_per_char()
        return sum(
            min(s.span[1] - s.span[0], round(s.speech_samples / self.rate / spc)) if s.open else s.span[1] - s.span[0]
            for s in segments
        )

    def _ready_to_start(self, item: Item) -> bool:
        if item.segments and sum(s.span[1] - s.span[0] for s in item.segments) >= item.chars_total:
            return True  # every sentence is begun: the sentence rule (``_may_enter``) decides
        return speaker.ready_to_start(
            buffered_s=item.buffered_samples() / self.rate,
            segments=len(item.segments),
            made_chars=self._made_chars(item.segments),
            chars_total=item.chars_total,
            produced_all=item.produced_all,
            prebuffer=self.prebuffer,
            rtf=self._rtf_estimate(item) if item.segments else None,
            seconds_per_char=self._seconds_per_char(),
        )

    def _may_enter(self, item: Item, seg: Segment) -> bool:
        """Whether a sentence still being made may start playing: the rest of it will come in time.

        The speaker waits before such a sentence rather than stopping inside it.
        """
        if self.prebuffer == "off":
            return True
        spc = self._seconds_per_char()
        speech_s = seg.speech_samples / self.rate
        # The pace of its latest piece, else of recent whole sentences: a
        # first piece's figure holds the start-up and overstates the rest.
        rtf = seg.last_piece_rtf or (float(np.median(self._rtfs)) if self._rtfs else self._rtf_estimate(item))
        return speaker.sentence_may_start(
            buffered_s=len(seg.samples) / self.rate,
            remaining_s=min((seg.span[1] - seg.span[0]) * spc, seg.longest_s or math.inf) - speech_s,
            rtf=rtf,
            next_piece_s=seg.last_piece_made_s,
        )

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

    # -- the player thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            try:
                self._play()
            except Exception:  # fail what was queued, then carry on: never leave jobs hanging
                log.exception("player: the playback loop failed")
                with self._cond:
                    items, self._items = self._items, []
                for item in items:
                    self._finish(item, "failed", AudioError("internal", "playback failed; see the daemon log"))
                self._stream.close(abort=True)
                time.sleep(0.1)

    def _play(self) -> None:
        idle_since: float | None = None
        while True:
            finished: Item | None = None
            failed_write: tuple[Item, AudioError] | None = None
            with self._cond:
                if self._closing:
                    break
                if self._cut or self._reopen:
                    cut_at, self._cut_at = self._cut_at, None
                    if self._stream.is_open:
                        self._stream.drop_pending()
                        if cut_at is not None:
                            self.last_cut_latency_s = time.monotonic() - cut_at
                    if self._reopen:
                        self._reopen = False
                        self._stream = OutputStream(self.device, self.rate)
                item = self._current()
                if item is None or self.paused:
                    if self.paused and self._stream.is_open:
                        pending = self._stream.drop_pending()
                        if item is not None:  # resume exactly where the sound stopped
                            item.pos = max(0, item.pos - int(pending * self.rate))
                    if self._stream.is_open and idle_since is not None and time.monotonic() - idle_since > IDLE_CLOSE_S:
                        self._stream.close()
                    idle_since = idle_since or time.monotonic()
                    self._cond.wait(0.05)
                    continue
                if not item.started and not self._ready_to_start(item):
                    self._cond.wait(0.01)
                    continue
                block, new_seg, done = speaker.next_block(
                    item, int(BLOCK_S * self.rate), lambda seg, item=item: self._may_enter(item, seg)
                )
                if done:
                    self._items.remove(item)
                    finished = item
                elif block is None:  # the model has not made the next sentence yet
                    if item.started and not item.starving:
                        item.starving = True
                        item.underruns += 1
                        self.underruns += 1
                        self._event(item.job, {**item.describe(), "event": "underrun", "sentence": item.seg})
                    self._cond.wait(0.01)
                    continue
                else:
                    item.starving = False
                    volume = self.volume * item.gain
            if finished is not None:
                self._finish(finished, "finished", None)
                continue
            idle_since = None
            assert block is not None
            first = not item.started
            if first:
                item.started = True
                self._started(item.job)
                item.first_sample_s = time.monotonic() - item.requested
                item.prebuffer_s = (item.buffered_samples() + len(block)) / self.rate
                self._event(
                    item.job, {**item.describe(), "event": "started", "first_sample_s": round(item.first_sample_s, 4)}
                )
            if new_seg is not None:
                self._event(
                    item.job,
                    {
                        **item.describe(),
                        "event": "sentence",
                        "sentence": new_seg.index,
                        "span": list(new_seg.span),
                        "text": new_seg.text,
                    },
                )
            try:
                self._pace()
                with self._cond:
                    # A stop while pacing: this block was taken before it and must not sound.
                    stale = self._cut or item not in self._items
                if stale:
                    continue
                self._stream.write(block * volume if volume != 1.0 else block)
            except AudioError as exc:
                failed_write = (item, exc)
            if failed_write is not None:
                with self._cond:
                    if item in self._items:
                        self._items.remove(item)
                log.error("audio: %s", failed_write[1].message)
                self._finish(item, "failed", failed_write[1])
                continue
            item.played_s += len(block) / self.rate
            if item.played_s - item.last_position >= POSITION_EVERY_S:
                item.last_position = item.played_s
                self._event(
                    item.job,
                    {**item.describe(), "event": "position", "seconds": round(item.played_s, 2), "sentence": item.seg},
                )
        self._stream.close(abort=True)

    def _pace(self) -> None:
        """Sleep (interruptibly) while more than LEAD_S of audio is ahead of the clock."""
        while self._stream.is_open and (ahead := self._stream.ahead()) > LEAD_S:
            with self._cond:
                if self._cut or self.paused or self._closing:
                    return
                self._cond.wait(ahead - LEAD_S)

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

    def _finish(self, item: Item, state: str, error: Exception | None) -> None:
        """The speaker is done with a job it took off itself: report its end."""
        try:
            self._ended(item.job, state, error, self._playback(item))
        except Exception:
            log.exception("player: ending job %s failed", item.job.id)
