"""Playing a remote daemon's speech on this computer's own speaker.

A daemon on another computer would speak on its own speaker, in another
room. So a client of a remote daemon asks for a ``synthesize`` stream and
plays the chunks here, as they come, with the daemon's own playback loop
(``audio/playback_loop.py``), and so with its rules and timing; here the
"synthesis speed" the pre-buffer plans by is how fast the chunks arrive,
network and queue included. What is this module's own: a speech is a stream
of chunks, and its news goes to a listener.

One ``LocalPlayer`` is one speaker: the tray app keeps one for all its
speech (the Speak page, the hotkey, the tray menu), so a quick-speak while a
long text plays behaves as with a local daemon. The CLI plays one stream a
process (``play``).

numpy and sounddevice are imported lazily so that clients stay light.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.limits import PRIORITIES, PRIORITY_RANK
from ..ipc.settings_schema import SETTINGS
from .output import AudioError, resample
from .playback_loop import PlaybackLoop, Track

log = logging.getLogger(__name__)

#: The daemon's default ``sentence_pause_ms``.
SENTENCE_PAUSE_S = SETTINGS["sentence_pause_ms"].default / 1000

#: What a speech's listener hears about (from the player thread):
#: ``started`` (first_sample_s), ``sentence`` (sentence, span, text),
#: ``interrupted`` (sentence), ``underrun`` (sentence), ``position`` (seconds, sentence;
#: every half second played) and ``ended`` (the ``Played``).
Listener = Callable[[str, dict[str, Any]], None]


@dataclass
class Played:
    """What the local player did with one speech (``Speech.played``: a snapshot)."""

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


@dataclass(eq=False, kw_only=True)
class Speech(Track):
    """One stream on the local speaker (a ``playback_loop.Track``): ``push`` chunks (any thread), then ``produced``."""

    player: LocalPlayer
    listener: Listener | None = None
    last_arrival: float | None = None
    #: How many sentences came and how it ended: ``played``'s fields that its ``Track`` does not keep.
    outcome: Played = field(default_factory=Played)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def played(self) -> Played:
        """What the player did with it so far (all of it once it is ``over``)."""
        track = {name: getattr(self, name) for name in ("underruns", "first_sample_s", "prebuffer_s")}
        return replace(self.outcome, seconds=self.played_s, priority=PRIORITIES[self.rank], **track)

    @property
    def over(self) -> bool:
        """It has ended (played out, stopped, displaced, dropped or failed)."""
        return self.done.is_set()

    def push(self, chunk: Any) -> None:
        """A sentence, or a piece of one (an ``ipc.client.Chunk``), arrived."""
        import numpy as np

        player, rate = self.player, int(chunk.sample_rate)
        samples = np.asarray(chunk.samples, dtype=np.float32)
        final = bool(getattr(chunk, "final", True))
        with player._cond:
            if self not in player._items:
                return
            if player.rate is None:
                player.rate = rate
            elif rate != player.rate:
                samples = resample(samples, rate, player.rate)
            # Here the "synthesis time" of a piece is the wait for its arrival
            # (the daemon's queue and the network included).
            now = time.monotonic()
            made_s = now - (self.last_arrival or self.requested)
            self.last_arrival = now
            player._add(self, int(chunk.index), samples, tuple(chunk.span), str(chunk.text), made_s, final=final)  # type: ignore[arg-type]
            self.outcome.chunks += int(final)

    def produced(self) -> None:
        """No more chunks will come: play what is buffered to the end."""
        with self.player._cond:
            if self in self.player._items:
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


class LocalPlayer(PlaybackLoop):
    """This computer's speaker for a remote daemon's speech: a ``PlaybackLoop`` whose thread starts with a speech.

    ``device`` is an output device's name (as ``output_device`` in the daemon's
    settings); "" or None: the default.
    """

    def __init__(
        self,
        device: str | None = None,
        volume: float = 1.0,
        *,
        prebuffer: str = "adaptive",
        sentence_pause_s: float = SENTENCE_PAUSE_S,
    ) -> None:
        # The rate is the first chunk's (later chunks of another rate are resampled to it).
        super().__init__(
            None,
            device="" if device is None else str(device),
            volume=volume,
            prebuffer=prebuffer,
            pause_s=sentence_pause_s,
            name="local-player",
        )

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

        The rules are ``speaker_rules.admission``'s: a dropped notification ends at once, ``played.dropped``.
        """
        if priority not in PRIORITY_RANK:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        speech = Speech(
            player=self,
            rank=PRIORITY_RANK[priority],
            chars_total=max(0, int(chars)),
            gain=float(gain),
            listener=listener,
        )
        displaced = self._admit(speech)
        if displaced is None:
            speech.outcome.dropped = speech.outcome.stopped = True
            speech.done.set()
        for other in displaced or []:
            other.outcome.displaced = other.outcome.stopped = True
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
        for speech in self.queue():
            speech.stop()

    def pause(self, paused: bool = True) -> None:
        """Hold the speaker within a block (the device is released); ``resume`` goes on where it was."""
        with self._cond:
            self.paused = paused
            self._cond.notify_all()

    def resume(self) -> None:
        """Go on after ``pause``."""
        self.pause(False)

    def skip(self) -> dict[str, Any]:
        """Skip to the next sentence of the speech playing now; ``sentence`` is None when nothing plays."""
        skipped = self._skip()
        return {"sentence": skipped[1] if skipped else None}

    @property
    def current(self) -> Speech | None:
        """The speech playing (or about to)."""
        with self._cond:
            return self._current()

    def queue(self) -> list[Speech]:
        """Speech here, the playing one first."""
        with self._cond:
            return list(self._items)

    def close(self) -> None:
        """Stop everything and end the player thread."""
        self.stop()
        self._stop_thread()

    # -- ending a speech (any thread) -----------------------------------------------------------

    def _end(self, speech: Speech, *, stopped: bool = False, error: str | None = None) -> None:
        """Take ``speech`` off the speaker (silencing it if it is heard) and report its end."""
        if self._take_off(speech):
            speech.outcome.stopped = speech.outcome.stopped or stopped or error is not None
            speech.outcome.error = error
            self._close(speech)

    def _close(self, speech: Speech) -> None:
        if speech.done.is_set():
            return
        speech.done.set()
        self._tell(speech, "ended", {"played": speech.played})

    # -- what the loop tells (``PlaybackLoop``) --------------------------------------------------

    def _tell(self, speech: Speech, event: str, data: dict[str, Any]) -> None:
        """Call the speech's listener (never with the lock held: it may ask the player things)."""
        if speech.listener is None:
            return
        try:
            speech.listener(event, data)
        except Exception:
            log.exception("local player: a listener failed on %s", event)

    def _ended(self, speech: Speech, state: str, error: AudioError | None) -> None:
        if error is not None:
            speech.outcome.stopped, speech.outcome.error = True, error.message
        self._close(speech)


@dataclass(frozen=True)
class LocalOutput:
    """This computer's speaker as its user chose it: the local daemon's settings, read from its file.

    The choice is made where it always was (the Settings page with "This
    computer" as the daemon, ``settings.set``, or by editing settings.json),
    and it holds for every speech heard here, from the local daemon or a
    remote one, whether or not the local daemon is running.
    """

    device: str = SETTINGS["output_device"].default
    volume: float = SETTINGS["volume"].default
    prebuffer: str = SETTINGS["prebuffer"].default
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
    # Checked as the daemon checks them (ipc/settings_schema.py), each on its own.
    good = {}
    for key in ("output_device", "volume", "prebuffer", "sentence_pause_ms"):
        good[key] = raw.get(key, SETTINGS[key].default)
        if SETTINGS[key].problem(good[key]):
            log.warning("this computer's speaker: ignoring bad %s %r in %s", key, good[key], path)
            good[key] = SETTINGS[key].default
    return LocalOutput(
        good["output_device"], float(good["volume"]), good["prebuffer"], good["sentence_pause_ms"] / 1000
    )
