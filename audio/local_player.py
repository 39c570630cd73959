"""Playing a remote daemon's speech on this computer's own speaker.

A daemon on another computer would speak on its own speaker, in another
room. So a client of a remote daemon asks for a ``synthesize`` stream and
plays the chunks here, as they come, with the daemon's own player logic:

* the rules are the daemon's (``audio/speaker_rules.py``): which speech plays next,
  what a priority displaces or interrupts, and when the adaptive pre-buffer
  lets a speech start (here the "synthesis speed" is how fast its chunks
  arrive, network and queue included);
* the output is the daemon's (``audio/output.py``): 20 ms blocks paced by
  the wall clock with at most ``LEAD_S`` ahead, so ``stop``, ``pause`` and
  ``skip`` are heard within a block and the lead (well under 100 ms), and a
  device name means what it means in the daemon's ``output_device``;
* sentences fade in and out and are followed by the sentence pause.

One ``LocalPlayer`` is one speaker: the tray app keeps one for all its
speech (the Speak page, the hotkey, the tray menu), so a quick-speak while a
long text plays behaves as with a local daemon. The CLI plays one stream a
process. ``speak`` admits a speech and returns its ``Speech``; the caller
feeds it chunks (``push``) from whatever thread reads the socket, then
``produced`` (or ``failed``). ``play`` does all that for an iterable of chunks.

numpy and sounddevice are imported lazily so that clients stay light.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.limits import PREBUFFER_MODES, PRIORITIES, PRIORITY_RANK, VOLUME_RANGE
from . import speaker_rules
from .output import LEAD_S, AudioError, OutputStream, fade, resample

log = logging.getLogger(__name__)

#: Samples per write, as the daemon's speaker: controls act within a block.
BLOCK_S = 0.02
#: The daemon's default ``sentence_pause_ms``.
SENTENCE_PAUSE_S = 0.25
#: Idle time after which the device is released.
IDLE_CLOSE_S = 0.5

#: What a speech's listener hears about (from the player thread):
#: ``started`` (first_sample_s), ``sentence`` (sentence, span, text),
#: ``interrupted`` (sentence), ``underrun`` (sentence) and ``ended`` (the ``Played``).
Listener = Callable[[str, dict[str, Any]], None]


@dataclass
class Played:
    """What the local player did with one speech."""

    seconds: float = 0.0
    #: Sentences whose last piece arrived.
    chunks: int = 0
    #: Stopped (``stop``, Ctrl-C), displaced by a later speech, or dropped: not played to the end.
    stopped: bool = False
    #: A later ``quick`` speech replaced it (the daemon's "displaced").
    displaced: bool = False
    #: A ``notification`` that found other speech here and was not played.
    dropped: bool = False
    #: The chunks' source failed (the daemon's error, a lost link); its message.
    error: str | None = None
    underruns: int = 0
    first_sample_s: float | None = None
    prebuffer_s: float = 0.0
    priority: str = "text"

    def playback(self) -> dict[str, Any]:
        """The ``playback`` object of a speak job's end, as the daemon reports it."""
        return {
            "played_s": round(self.seconds, 3),
            "underruns": self.underruns,
            "first_sample_s": None if self.first_sample_s is None else round(self.first_sample_s, 4),
            "prebuffer_s": round(self.prebuffer_s, 3),
            "priority": self.priority,
            "device": "this computer",
        }


@dataclass
class _Segment:
    """One sentence's audio (faded, with the pause after it)."""

    index: int
    samples: Any  # numpy float32
    speech_samples: int
    span: tuple[int, int]
    text: str
    made_s: float  # wall time from the previous sentence's arrival (or the request) to this one's
    open: bool = False  # more pieces of it are coming


@dataclass(eq=False)
class Speech:
    """One stream on the local speaker (a ``speaker_rules.Slot``); feed it with ``push``."""

    player: LocalPlayer
    rank: int
    seq: int
    chars_total: int
    gain: float = 1.0
    listener: Listener | None = None
    segments: list[_Segment] = field(default_factory=list)
    produced_all: bool = False
    seg: int = 0
    pos: int = 0
    started: bool = False
    starving: bool = False
    requested: float = field(default_factory=time.monotonic)
    last_arrival: float | None = None
    played: Played = field(default_factory=Played)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def over(self) -> bool:
        """It has ended (played out, stopped, displaced, dropped or failed)."""
        return self.done.is_set()

    def push(self, chunk: Any) -> None:
        """A sentence, or a piece of one (an ``ipc.client.Chunk``), arrived."""
        self.player._push(self, chunk)

    def produced(self) -> None:
        """No more chunks will come: play what is buffered to the end."""
        self.player._produced(self)

    def failed(self, message: str) -> None:
        """The source failed: end now, saying why (what was buffered is not played)."""
        self.player._end(self, error=message)

    def stop(self) -> None:
        """Stop this speech (from any thread), within a block."""
        self.player._end(self, stopped=True)

    def wait(self, timeout: float | None = None) -> Played:
        """Wait for its end (Ctrl-C still reaches a main thread waiting here); TimeoutError if it does not come."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done.wait(0.1):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("the speech did not end in time")
        return self.played

    def buffered_samples(self) -> int:
        return sum(len(s.samples) for s in self.segments[self.seg :]) - self.pos


class LocalPlayer:
    """This computer's speaker for a remote daemon's speech: a queue, a player thread, one output stream."""

    def __init__(
        self,
        device: str | None = None,
        volume: float = 1.0,
        *,
        prebuffer: str = "adaptive",
        sentence_pause_s: float = SENTENCE_PAUSE_S,
    ) -> None:
        #: An output device's name (as ``output_device`` in the daemon's settings); "" or None: the default.
        self.device = "" if device is None else str(device)
        self.volume = float(volume)
        self.prebuffer = prebuffer
        self.pause_s = float(sentence_pause_s)
        self.paused = False
        self.underruns = 0
        #: Seconds from the last stop/skip/interruption to the device being silenced.
        self.last_cut_latency_s: float | None = None
        self._cond = threading.Condition()
        self._items: list[Speech] = []
        self._seq = itertools.count()
        self._rate: int | None = None
        self._stream: OutputStream | None = None
        self._cut_at: float | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._rtfs: deque[float] = deque(maxlen=8)
        self._spc: deque[float] = deque(maxlen=8)

    @classmethod
    def for_this_computer(cls, path: Path | None = None) -> LocalPlayer:
        """A player on the output device, volume, pre-buffer and sentence pause chosen for this computer."""
        out = local_output(path)
        return cls(out.device, out.volume, prebuffer=out.prebuffer, sentence_pause_s=out.sentence_pause_s)

    def use(self, out: LocalOutput) -> None:
        """Follow a changed choice (``local_output()`` read again).

        The device and volume change now; the pre-buffer and pause from the next sentence on.
        """
        self.set_output(out.device, out.volume)
        with self._cond:
            self.prebuffer, self.pause_s = out.prebuffer, out.sentence_pause_s

    # -- the queue (any thread) ------------------------------------------------------------

    def speak(
        self, *, priority: str = "text", chars: int = 0, gain: float = 1.0, listener: Listener | None = None
    ) -> Speech:
        """Admit a new speech of ``priority`` (``chars`` long) by the daemon's rules; feed it with ``push``.

        A ``notification`` that finds other speech here ends at once with
        ``played.dropped``; a ``quick`` one displaces other quick speech and
        the text playing now; an ``urgent`` one interrupts what plays (which
        resumes from the start of its sentence afterwards).
        """
        if priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        displaced: list[Speech] = []
        interrupted: Speech | None = None
        with self._cond:
            seq = next(self._seq)
            speech = Speech(self, PRIORITY_RANK[priority], seq, max(0, int(chars)), float(gain), listener)
            speech.played.priority = priority
            current = self._items[0] if self._items else None
            playing = 0 if current is not None and current.started else None
            verdict = speaker_rules.admission(speech.rank, seq, self._items, playing)
            if verdict.dropped:
                speech.played.dropped = speech.played.stopped = True
                speech.done.set()
                return speech
            displaced = [self._items[i] for i in verdict.displaced]
            for other in displaced:
                self._items.remove(other)
            self._items.append(speech)
            self._items.sort(key=speaker_rules.playing_order)
            if playing is not None and current in displaced:
                self._cut()
            elif verdict.interrupts and current is not None:
                current.pos = 0  # it restarts its sentence after the urgent speech
                self._cut()
                interrupted = current
            self._ensure_thread()
            self._cond.notify_all()
        if interrupted is not None:
            self._tell(interrupted, "interrupted", sentence=interrupted.seg)
        for other in displaced:
            other.played.displaced = other.played.stopped = True
            self._close(other)
        return speech

    def play(
        self,
        chunks: Iterable[Any],
        *,
        priority: str = "text",
        chars: int = 0,
        gain: float = 1.0,
        listener: Listener | None = None,
    ) -> Played:
        """Admit a speech, feed it ``chunks`` from this thread, and wait for its end.

        The chunks' iteration stops as soon as the speech ends (stopped,
        displaced); Ctrl-C stops it and is raised again.
        """
        speech = self.speak(priority=priority, chars=chars, gain=gain, listener=listener)
        try:
            for chunk in chunks:
                if speech.over:
                    break
                speech.push(chunk)
            else:
                speech.produced()
            return speech.wait()
        except KeyboardInterrupt:
            speech.stop()
            raise
        except Exception as exc:
            speech.failed(str(exc))
            raise

    def stop(self) -> None:
        """Stop every speech here (from any thread); the current block is the last heard."""
        with self._cond:
            items = list(self._items)
        for speech in items:
            speech.stop()

    def pause(self) -> None:
        """Hold the speaker within a block (the device is released); ``resume`` goes on where it was."""
        with self._cond:
            self.paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        """Go on after ``pause``."""
        with self._cond:
            self.paused = False
            self._cond.notify_all()

    def skip(self) -> dict[str, Any]:
        """Skip to the next sentence of the speech playing now; ``sentence`` is None when nothing plays."""
        with self._cond:
            speech = self._items[0] if self._items else None
            if speech is None:
                return {"sentence": None}
            speech.seg += 1
            speech.pos = 0
            if speech.started:
                self._cut()
            self._cond.notify_all()
            return {"sentence": speech.seg}

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

    @property
    def current(self) -> Speech | None:
        """The speech playing (or about to)."""
        with self._cond:
            return self._items[0] if self._items else None

    def queue(self) -> list[Speech]:
        """Speech here, the playing one first."""
        with self._cond:
            return list(self._items)

    def close(self) -> None:
        """Stop everything and end the player thread."""
        self.stop()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # -- feeding (any thread) ------------------------------------------------------------------

    def _push(self, speech: Speech, chunk: Any) -> None:
        import numpy as np

        samples = np.asarray(chunk.samples, dtype=np.float32)
        final = bool(getattr(chunk, "final", True))
        with self._cond:
            if speech not in self._items:
                return
            if self._rate is None:
                self._rate = int(chunk.sample_rate)
            elif int(chunk.sample_rate) != self._rate:
                samples = resample(samples, int(chunk.sample_rate), self._rate)
            rate = self._rate
            now = time.monotonic()
            made_s = now - (speech.last_arrival or speech.requested)
            speech.last_arrival = now
            pause = np.zeros(int(self.pause_s * rate) if final else 0, dtype=np.float32)
            last = speech.segments[-1] if speech.segments else None
            if last is not None and last.open and last.index == chunk.index:
                last.samples = np.concatenate([last.samples, fade(samples, rate, start=False, end=final), pause])
                last.speech_samples += len(samples)
                last.made_s += made_s
                last.open = not final
            else:
                audio = np.concatenate([fade(samples, rate, end=final), pause])
                span = tuple(chunk.span)
                speech.segments.append(
                    _Segment(int(chunk.index), audio, len(samples), span, str(chunk.text), made_s, open=not final)  # type: ignore[arg-type]
                )
            if final:
                speech.played.chunks += 1
            self._cond.notify_all()

    def _produced(self, speech: Speech) -> None:
        with self._cond:
            if speech not in self._items:
                return
            speech.produced_all = True
            for seg in speech.segments:
                seg.open = False
            if self._rate and speech.segments:
                spoken = sum(s.speech_samples for s in speech.segments) / self._rate
                made = sum(s.made_s for s in speech.segments)
                if spoken > 0 and made > 0:
                    self._rtfs.append(made / spoken)
                    self._spc.append(spoken / max(1, speech.chars_total))
            self._cond.notify_all()

    def _end(self, speech: Speech, *, stopped: bool = False, error: str | None = None) -> None:
        """Take ``speech`` off the speaker (silencing it if it is heard) and report its end."""
        with self._cond:
            if speech not in self._items:
                return
            if speech is self._items[0] and speech.started:
                self._cut()
            self._items.remove(speech)
            speech.played.stopped = speech.played.stopped or stopped or error is not None
            speech.played.error = error
            self._cond.notify_all()
        self._close(speech)

    def _close(self, speech: Speech) -> None:
        if speech.done.is_set():
            return
        speech.done.set()
        self._tell(speech, "ended", played=speech.played)

    # -- internals (lock held) ---------------------------------------------------------------------

    def _cut(self) -> None:
        if self._cut_at is None:
            self._cut_at = time.monotonic()

    def _tell(self, speech: Speech, event: str, **data: Any) -> None:
        """Call the speech's listener (never with the lock held: it may ask the player things)."""
        if speech.listener is None:
            return
        try:
            speech.listener(event, data)
        except Exception:
            log.exception("local player: a listener failed on %s", event)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(target=self._run, name="local-player", daemon=True)
            self._thread.start()

    def _ready(self, speech: Speech) -> bool:
        rate = self._rate or 24000
        rtf = None
        if speech.segments:
            made = sum(s.made_s for s in speech.segments)
            spoken = sum(s.speech_samples for s in speech.segments) / rate
            pool = ([made / spoken] if spoken > 0 and made > 0 else []) + (
                [sorted(self._rtfs)[len(self._rtfs) // 2]] if self._rtfs else []
            )
            rtf = max(pool) if pool else None
        return speaker_rules.ready_to_start(
            buffered_s=speech.buffered_samples() / rate,
            segments=len(speech.segments),
            made_chars=sum(s.span[1] - s.span[0] for s in speech.segments),
            chars_total=speech.chars_total,
            produced_all=speech.produced_all,
            prebuffer=self.prebuffer,
            rtf=rtf,
            seconds_per_char=sorted(self._spc)[len(self._spc) // 2] if self._spc else None,
        )

    # -- the player thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never leave a waiter hanging
            log.exception("local player: the playback loop failed")
            for speech in self.queue():
                self._end(speech, error=f"playback failed: {exc}")
        finally:
            if self._stream is not None:
                self._stream.close(abort=True)

    def _loop(self) -> None:
        idle_since: float | None = None
        while True:
            events: list[tuple[str, dict[str, Any]]] = []
            finished: Speech | None = None
            with self._cond:
                if self._closing:
                    return
                stream = self._stream
                if self._cut_at is not None:
                    cut_at, self._cut_at = self._cut_at, None
                    if stream is not None and stream.is_open:
                        stream.drop_pending()
                        self.last_cut_latency_s = time.monotonic() - cut_at
                speech = self._items[0] if self._items else None
                if speech is None or self.paused:
                    if self.paused and stream is not None and stream.is_open:
                        pending = stream.drop_pending()
                        if speech is not None:  # resume exactly where the sound stopped
                            back = min(speech.pos, int(pending * (self._rate or 24000)))
                            speech.pos -= back
                            speech.played.seconds = max(0.0, speech.played.seconds - back / (self._rate or 24000))
                    if stream is not None and stream.is_open and idle_since and time.monotonic() - idle_since > 0.5:
                        stream.close()
                    idle_since = idle_since or time.monotonic()
                    self._cond.wait(0.05)
                    continue
                if not speech.started and not self._ready(speech):
                    self._cond.wait(0.01)
                    continue
                block, new_seg, done = speaker_rules.next_block(speech, int(BLOCK_S * (self._rate or 24000)))
                if done:
                    self._items.remove(speech)
                    finished = speech
                elif block is None:  # the next sentence has not arrived yet
                    if speech.started and not speech.starving:
                        speech.starving = True
                        speech.played.underruns += 1
                        self.underruns += 1
                        events.append(("underrun", {"sentence": speech.seg}))
                    self._cond.wait(0.01)
                    block = None
                else:
                    speech.starving = False
                    volume = self.volume * speech.gain
                    rate = self._rate or 24000
                    # What was buffered when playback was decided, before the device opens:
                    # opening it can take seconds on a busy machine, while more audio arrives.
                    buffered_at_start = 0 if speech.started else speech.buffered_samples() + len(block)
                    if self._stream is None or self._stream.sample_rate != rate:
                        if self._stream is not None:
                            self._stream.close(abort=True)
                        self._stream = OutputStream(self.device, rate)
                    stream = self._stream
                    if not speech.started:
                        speech.started = True
                        speech.played.first_sample_s = time.monotonic() - speech.requested
                        speech.played.prebuffer_s = buffered_at_start / rate
                        events.append(("started", {"first_sample_s": round(speech.played.first_sample_s, 4)}))
                    if new_seg is not None:
                        events.append(
                            ("sentence", {"sentence": new_seg.index, "span": list(new_seg.span), "text": new_seg.text})
                        )
            for event, data in events:
                self._tell(speech, event, **data)
            if finished is not None:
                self._close(finished)
                continue
            if block is None:
                continue
            idle_since = None
            try:
                self._pace(stream)
                stream.write(block * volume if volume != 1.0 else block)
            except AudioError as exc:
                log.error("audio here: %s", exc.message)
                self._end(speech, error=exc.message)
                continue
            with self._cond:
                speech.played.seconds += len(block) / (self._rate or 24000)

    def _pace(self, stream: OutputStream) -> None:
        """Sleep (interruptibly) while more than LEAD_S of audio is ahead of the clock."""
        while stream.is_open and (ahead := stream.ahead()) > LEAD_S:
            with self._cond:
                if self._cut_at is not None or self.paused or self._closing:
                    return
                self._cond.wait(ahead - LEAD_S)


@dataclass(frozen=True)
class LocalOutput:
    """This computer's speaker as its user chose it: the local daemon's settings, read from its file.

    The choice is made where it always was (the Settings page with "This
    computer" as the daemon, ``settings.set``, or by editing settings.json),
    and it holds for every speech heard here, from the local daemon or a
    remote one, whether or not the local daemon is running.
    """

    device: str = ""
    volume: float = 1.0
    prebuffer: str = "adaptive"
    sentence_pause_s: float = SENTENCE_PAUSE_S


def local_output(path: Path | None = None) -> LocalOutput:
    """Read ``output_device``, ``volume``, ``prebuffer`` and ``sentence_pause_ms`` from settings.json.

    A missing file, or a missing or bad value, gives that value's default
    (logged when bad): a typo in a settings file must not silence the speaker.
    """
    path = path or endpoints.settings_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    except (OSError, ValueError) as exc:
        log.warning("this computer's speaker: %s is unreadable (%s); using the defaults", path, exc)
        raw = {}
    raw = raw if isinstance(raw, dict) else {}

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    valid = {
        "output_device": lambda v: isinstance(v, str),
        "volume": lambda v: number(v) and VOLUME_RANGE[0] <= v <= VOLUME_RANGE[1],
        "prebuffer": lambda v: v in PREBUFFER_MODES,
        "sentence_pause_ms": lambda v: number(v) and 0 <= v <= 5000,
    }
    good = {}
    for key, ok in valid.items():
        if key in raw and not ok(raw[key]):
            log.warning("this computer's speaker: ignoring bad %s %r in %s", key, raw[key], path)
        elif key in raw:
            good[key] = raw[key]
    default = LocalOutput()
    return LocalOutput(
        device=str(good.get("output_device", default.device)),
        volume=float(good.get("volume", default.volume)),
        prebuffer=str(good.get("prebuffer", default.prebuffer)),
        sentence_pause_s=float(good.get("sentence_pause_ms", 1000 * default.sentence_pause_s)) / 1000,
    )
