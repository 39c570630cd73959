"""The one playback loop: a queue of speech and the thread that plays it, 20 ms at a time.

Both speakers are this class: the daemon's (``daemon/player.py``'s ``Player``,
whose items are jobs and whose news goes out as job events) and this
computer's for a remote daemon (``audio/local_player.py``'s ``LocalPlayer``,
whose items are streams arriving over a socket and whose news goes to a
listener). What differs is passed in by overriding two methods: ``_tell``
(where an event goes) and ``_ended`` (what ends an item: a job's end, or a
listener's ``ended``). Everything else is one copy: admission by priority,
sentences joined from pieces, the adaptive pre-buffer and the rule that a
wait falls between sentences (``speaker_rules``), and the loop itself: a cut
silences the device at once, a pause drops what the device holds and resumes
where the sound stopped, the device is let go after ``IDLE_CLOSE_S`` of
silence, underruns are counted and told, writes are paced by the clock, and a
block taken before a stop is never heard.

numpy is imported when audio arrives, so that clients stay light.
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import speaker_rules
from .output import LEAD_S, AudioError, OutputStream, fade

log = logging.getLogger(__name__)

#: Samples per write: small enough that controls act within a block.
BLOCK_S = 0.02
#: How often a playing item tells its position.
POSITION_EVERY_S = 0.5
#: Idle time after which the device is released.
IDLE_CLOSE_S = 0.5


@dataclass
class Segment:
    """One sentence's audio (faded, with the pause after it) and where it came from."""

    index: int
    samples: Any  # numpy float32
    speech_samples: int
    span: tuple[int, int]
    text: str
    #: Seconds it took to come: the model's work (daemon), or the wait for its arrival (here).
    made_s: float
    #: More pieces of this sentence are coming (token streaming): the player
    #: waits at its end instead of moving on, and counts that as an underrun.
    open: bool = False
    #: Seconds the latest piece of it took (how long the next may take), and that
    #: piece's real-time factor when it is not the first (the first pays for starting).
    last_piece_made_s: float = 0.0
    last_piece_rtf: float | None = None
    #: The most audio this sentence can have (its token budget), if known.
    longest_s: float | None = None
    #: The item's first sentence the model made: it also paid for filling the
    #: pipeline (T3 alone, then S3Gen, where later sentences overlap the two),
    #: so its pace says little about the sentences after it.
    first_made: bool = False


@dataclass(eq=False, kw_only=True)
class Track:
    """One item on the speaker (a ``speaker_rules.Slot`` and ``Cursor``): its sentences and where playback stands."""

    rank: int
    chars_total: int
    seq: int = 0  # arrival order, given on admission
    gain: float = 1.0  # this item's own volume, on top of the speaker's
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
    #: When its latest audio the model made arrived (monotonic): the pre-buffer
    #: counts the work done on what follows since then.
    made_at: float | None = None

    def buffered_samples(self) -> int:
        """Samples made but not yet played."""
        return sum(len(s.samples) for s in self.segments[self.seg :]) - self.pos


class PlaybackLoop:
    """A speech queue in priority order and the thread that plays its head on one output stream."""

    def __init__(
        self, rate: int | None, *, device: str, volume: float, prebuffer: str, pause_s: float, name: str
    ) -> None:
        #: Samples a second of what is pushed (None until the first audio, here).
        self.rate = rate
        self.device = device
        self.volume = float(volume)
        self.prebuffer = prebuffer
        self.pause_s = float(pause_s)
        self.paused = False
        self.underruns = 0
        #: Seconds from the last stop/skip/interruption request to the device being silenced.
        self.last_cut_latency_s: float | None = None
        self._name = name
        self._cond = threading.Condition()
        self._items: list[Any] = []
        self._seq = itertools.count()
        self._stream: OutputStream | None = None
        self._cut_at: float | None = None  # when a stop/skip/interruption asked to silence the device
        self._closing = False
        self._thread: threading.Thread | None = None
        #: Recent sentences' real-time factors (any item: a machine that gets busier or
        #: quieter shows within a few sentences), and recent items' seconds per character.
        self._rtfs: deque[float] = deque(maxlen=8)
        self._spc: deque[float] = deque(maxlen=8)

    # -- what differs (never called with the lock held) -----------------------------------

    def _tell(self, item: Any, event: str, data: dict[str, Any]) -> None:
        """An event about ``item``: started, sentence, interrupted, underrun, position."""
        raise NotImplementedError

    def _ended(self, item: Any, state: str, error: AudioError | None) -> None:
        """The loop took ``item`` off: ``finished`` (played out) or ``failed`` (``error``)."""
        raise NotImplementedError

    def _crash_error(self, exc: Exception) -> AudioError:
        """What the items queued when the loop itself failed end with."""
        return AudioError("internal", f"playback failed: {exc}")

    # -- the queue (any thread) ---------------------------------------------------------------

    def _admit(self, item: Track) -> list[Any] | None:
        """Put ``item`` on the speaker by ``speaker_rules.admission``; the items it displaces, None if dropped.

        The displaced are off the speaker, their end not yet told.
        """
        interrupted = None
        with self._cond:
            item.seq = next(self._seq)
            current = self._current()
            playing = 0 if current is not None and current.started else None
            verdict = speaker_rules.admission(item.rank, item.seq, self._items, playing)
            if verdict.dropped:
                return None
            displaced = [self._items[i] for i in verdict.displaced]
            for other in displaced:
                self._items.remove(other)
            self._items.append(item)
            self._items.sort(key=speaker_rules.playing_order)
            if playing is not None and current in displaced:
                self._cut()  # silence the replaced speech now
            elif verdict.interrupts and current is not None:
                current.pos = 0  # it restarts its sentence after the newcomer
                self._cut()
                interrupted = current
            self._ensure_thread()
            self._cond.notify_all()
        if interrupted is not None:
            self._tell(interrupted, "interrupted", {"sentence": interrupted.seg})
        return displaced

    def _add(
        self,
        item: Track,
        index: int,
        samples: Any,
        span: tuple[int, int],
        text: str,
        made_s: float,
        *,
        final: bool,
        longest_s: float | None = None,
    ) -> None:
        """A sentence, or a piece of one, at ``self.rate`` (lock held).

        Pieces of one sentence (same ``index``) join into one segment; the
        last (``final``) gets the fade-out and the pause after the sentence.
        """
        import numpy as np

        rate = self.rate or 0
        pause = np.zeros(int(self.pause_s * rate) if final else 0, dtype=np.float32)
        last = item.segments[-1] if item.segments else None
        if last is not None and last.open and last.index == index:
            # Swapped under the lock: the player thread slices by position,
            # so what it has played and where it stands stay valid.
            last.samples = np.concatenate([last.samples, fade(samples, rate, start=False, end=final), pause])
            last.speech_samples += len(samples)
            last.made_s += made_s
            if len(samples):
                last.last_piece_rtf = made_s / (len(samples) / rate)
        else:
            audio = np.concatenate([fade(samples, rate, end=final), pause])
            last = Segment(index, audio, len(samples), span, text, made_s, longest_s=longest_s)
            last.first_made = made_s > 0 and not any(s.made_s > 0 for s in item.segments)
            item.segments.append(last)
        last.last_piece_made_s = made_s
        last.open = not final
        if made_s > 0:
            item.made_at = time.monotonic()
        if final and last.speech_samples and last.made_s > 0 and not last.first_made:
            self._rtfs.append(last.made_s / (last.speech_samples / rate))
        self._cond.notify_all()

    def _produced(self, item: Track) -> None:
        """Every sentence of ``item`` is here (lock held)."""
        item.produced_all = True
        for seg in item.segments:  # no more pieces will come
            seg.open = False
        speech = sum(s.speech_samples for s in item.segments) / (self.rate or 1)
        made = sum(s.made_s for s in item.segments)
        if speech > 0 and made > 0:  # (a played clip was not synthesized)
            self._spc.append(speech / max(1, item.chars_total))
        self._cond.notify_all()

    def _take_off(self, item: Track) -> bool:
        """Take ``item`` off the speaker, silencing it if it is heard; False if it was not on it."""
        with self._cond:
            if item not in self._items:
                return False
            if item is self._current() and item.started:
                self._cut()
            self._items.remove(item)
            self._cond.notify_all()
        return True

    def _skip(self) -> tuple[Any, int] | None:
        """Skip to the next sentence of the item playing: (it, that sentence), or None when nothing plays."""
        with self._cond:
            item = self._current()
            if item is None:
                return None
            item.seg += 1
            item.pos = 0
            if item.started:
                self._cut()
            self._cond.notify_all()
            return item, item.seg

    def set_output(self, device: str | None = None, volume: float | None = None) -> None:
        """Change the output device (the stream reopens on it) or the volume."""
        with self._cond:
            if volume is not None:
                self.volume = float(volume)
            if device is not None and device != self.device:
                self.device = device
                self._cut()
                if self._stream is not None:
                    self._stream.device_name = device
            self._cond.notify_all()

    def _stop_thread(self) -> None:
        """End the player thread (what it holds is the caller's to end)."""
        with self._cond:
            self._closing = True
            self._cut()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # -- internals (lock held) -----------------------------------------------------------------------

    def _current(self) -> Any | None:
        return self._items[0] if self._items else None

    def _cut(self) -> None:
        """The player thread must silence the device before anything else."""
        if self._cut_at is None:
            self._cut_at = time.monotonic()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def expect_pace(self, rtf: float | None) -> None:
        """Plan by ``rtf`` (seconds of work per second of speech) until sentences are measured.

        A (re)loaded model makes speech at a new pace: the figures of the one
        before go, and the engine's own measurement, where it made one (the
        warm-up's steady pace), stands in for them.
        """
        with self._cond:
            self._rtfs.clear()
            if rtf is not None and rtf > 0:
                self._rtfs.append(rtf)

    def _recent_rtf(self) -> float | None:
        return statistics.median(self._rtfs) if self._rtfs else None

    def _rtf_estimate(self, item: Track) -> float | None:
        """This item's real-time factor so far, or recent sentences' if that is higher (first sentences aside).

        Sentences differ (a short one costs more per second of audio), so the
        item's own cumulative figure is the best guess once it has one; recent
        sentences (whatever item, the path and precision in use) guard against
        a lucky first piece and follow the machine getting busier or quieter.
        """
        made_here = [s for s in item.segments if s.made_s > 0]  # pause markup's silence costs nothing
        steady = [s for s in made_here if not s.first_made]
        recent = self._recent_rtf()
        pool = [recent] if recent is not None else []
        rate = self.rate or 1

        def pace(segments: list[Segment]) -> float | None:
            made = sum(s.made_s for s in segments)
            speech = sum(s.speech_samples for s in segments) / rate
            return made / speech if speech > 0 and made > 0 else None

        # Past the first sentence the pipeline is full: what it makes a second
        # from then on is the figure to plan by. Before that, the first
        # sentence (the slowest: the pipeline fills) stands in alone; beside
        # recent figures (or the warm-up's), scaled to a steady pace, it says
        # whether the machine got busier since those were made.
        own = pace(steady) if steady else pace(made_here)
        if own is not None:
            pool.append(own if steady or not pool else own * speaker_rules.FIRST_TO_STEADY)
        return max(pool) if pool else None

    def _seconds_per_char(self) -> float:
        return statistics.median(self._spc) if self._spc else speaker_rules.SECONDS_PER_CHAR

    def _ready_to_start(self, item: Track) -> bool:
        if not item.segments:
            return False
        if sum(s.span[1] - s.span[0] for s in item.segments) >= item.chars_total:
            return True  # every sentence is begun: the sentence rule (``_may_enter``) decides
        spc = self._seconds_per_char()
        rate = self.rate or 1
        # Characters made: whole sentences, and a sentence still being made in proportion to its audio.
        made_chars = sum(
            min(s.span[1] - s.span[0], round(s.speech_samples / rate / spc)) if s.open else s.span[1] - s.span[0]
            for s in item.segments
        )
        return speaker_rules.ready_to_start(
            buffered_s=item.buffered_samples() / rate,
            segments=len(item.segments),
            made_chars=made_chars,
            chars_total=item.chars_total,
            produced_all=item.produced_all,
            prebuffer=self.prebuffer,
            rtf=self._rtf_estimate(item),
            seconds_per_char=spc,
            since_made_s=0.0 if item.made_at is None else time.monotonic() - item.made_at,
        )

    def _may_enter(self, item: Track, seg: Segment) -> bool:
        """Whether a sentence still being made may start playing: the rest of it will come in time.

        The speaker waits before such a sentence rather than stopping inside it.
        """
        if self.prebuffer == "off":
            return True
        rate = self.rate or 1
        # The pace of its latest piece, else of recent whole sentences: a
        # first piece's figure holds the start-up and overstates the rest.
        rtf = seg.last_piece_rtf or self._recent_rtf() or self._rtf_estimate(item)
        return speaker_rules.sentence_may_start(
            buffered_s=len(seg.samples) / rate,
            remaining_s=min((seg.span[1] - seg.span[0]) * self._seconds_per_char(), seg.longest_s or math.inf)
            - seg.speech_samples / rate,
            rtf=rtf,
            next_piece_s=seg.last_piece_made_s,
        )

    # -- the player thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            try:
                self._play()
            except Exception as exc:  # fail what was queued, then carry on: never leave anyone waiting
                log.exception("%s: the playback loop failed", self._name)
                with self._cond:
                    items, self._items = self._items, []
                for item in items:
                    self._ended(item, "failed", self._crash_error(exc))
                if self._stream is not None:
                    self._stream.close(abort=True)
                time.sleep(0.1)

    def _play(self) -> None:
        idle_since: float | None = None
        while True:
            told: list[tuple[str, dict[str, Any]]] = []
            block = finished = None
            with self._cond:
                if self._closing:
                    break
                stream = self._stream
                if self._cut_at is not None:
                    cut_at, self._cut_at = self._cut_at, None
                    if stream is not None and stream.is_open:
                        stream.drop_pending()
                        self.last_cut_latency_s = time.monotonic() - cut_at
                item = self._current()
                if item is None or self.paused:
                    if stream is not None and stream.is_open and self.paused:
                        pending = stream.drop_pending()
                        if item is not None and self.rate:  # resume exactly where the sound stopped
                            back = min(item.pos, int(pending * self.rate))
                            item.pos -= back
                            item.played_s = max(0.0, item.played_s - back / self.rate)
                    elif stream is not None and idle_since and time.monotonic() - idle_since > IDLE_CLOSE_S:
                        stream.close()  # (a no-op when it is closed)
                    idle_since = idle_since or time.monotonic()
                    self._cond.wait(0.05)
                    continue
                if not item.started and not self._ready_to_start(item):
                    self._cond.wait(0.01)
                    continue
                rate = self.rate or 1
                block, new_seg, done = speaker_rules.next_block(
                    item, int(BLOCK_S * rate), lambda seg, item=item: self._may_enter(item, seg)
                )
                if done:
                    self._items.remove(item)
                    finished = item
                elif block is None:  # the next sentence is not here yet
                    if item.started and not item.starving:
                        item.starving = True
                        item.underruns += 1
                        self.underruns += 1
                        told.append(("underrun", {"sentence": item.seg}))
                    self._cond.wait(0.01)
                else:
                    item.starving = False
                    volume = self.volume * item.gain
                    if stream is None or stream.sample_rate != rate:  # the first audio, or a model of another rate
                        if stream is not None:
                            stream.close(abort=True)
                        stream = self._stream = OutputStream(self.device, rate)
                    if not item.started:
                        item.started = True
                        item.first_sample_s = time.monotonic() - item.requested
                        # What was buffered when playback was decided, before the device opens:
                        # opening it can take seconds on a busy machine, while more audio arrives.
                        item.prebuffer_s = (item.buffered_samples() + len(block)) / rate
                        told.append(("started", {"first_sample_s": round(item.first_sample_s, 4)}))
                    if new_seg is not None:
                        told.append(
                            ("sentence", {"sentence": new_seg.index, "span": list(new_seg.span), "text": new_seg.text})
                        )
            for event, data in told:
                self._tell(item, event, data)
            if finished is not None:
                self._ended(finished, "finished", None)
                continue
            if block is None:
                continue
            idle_since = None
            try:
                self._pace(stream)
                with self._cond:
                    # A stop while pacing: this block was taken before it and must not sound.
                    stale = self._cut_at is not None or item not in self._items
                if stale:
                    continue
                stream.write(block * volume if volume != 1.0 else block)
            except AudioError as exc:
                log.error("%s: %s", self._name, exc.message)
                if self._take_off(item):
                    self._ended(item, "failed", exc)
                continue
            item.played_s += len(block) / rate
            if item.played_s - item.last_position >= POSITION_EVERY_S:
                item.last_position = item.played_s
                self._tell(item, "position", {"seconds": round(item.played_s, 2), "sentence": item.seg})
        if self._stream is not None:
            self._stream.close(abort=True)

    def _pace(self, stream: OutputStream) -> None:
        """Sleep (interruptibly) while more than LEAD_S of audio is ahead of the clock."""
        while stream.is_open and (ahead := stream.ahead()) > LEAD_S:
            with self._cond:
                if self._cut_at is not None or self.paused or self._closing:
                    return
                self._cond.wait(ahead - LEAD_S)
