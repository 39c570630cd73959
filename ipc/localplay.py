"""Playing a remote daemon's speech on this computer's own speaker.

A daemon on another computer would speak on its own speaker, in another
room. So a client of a remote daemon asks for a ``synthesize`` stream and
plays the chunks here, as they come: the first sentence sounds while the next
is being made, sentences are followed by the daemon's pause, and Ctrl-C (or
``stop()`` from another thread) silences it within one 50 ms slice;
``pause()`` and ``resume()`` (the tray app) take effect within one slice too.

This is a small player on purpose: the daemon's own speaker
(daemon/player.py) arbitrates priorities between many clients; one
client's own stream needs none of that. sounddevice and numpy are imported
lazily so that ``ipc`` stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Write this much at a time, so a stop is heard within it.
SLICE_S = 0.05
#: Silence after each sentence (the daemon's default ``sentence_pause_ms``).
SENTENCE_PAUSE_S = 0.25


@dataclass
class Played:
    """What the local player did."""

    seconds: float = 0.0
    chunks: int = 0
    stopped: bool = False


class LocalPlayer:
    """One PortAudio stream on the default output (or ``device``), fed chunk by chunk."""

    def __init__(self, device: str | int | None = None, volume: float = 1.0) -> None:
        self.device = device
        self.volume = volume
        self._stop = threading.Event()
        self._paused = threading.Event()

    def stop(self) -> None:
        """Stop playing (from any thread); the current slice is the last heard."""
        self._stop.set()

    def pause(self) -> None:
        """Hold the stream after the current slice (from any thread); ``resume`` goes on where it was."""
        self._paused.set()

    def resume(self) -> None:
        """Go on after ``pause`` (within one slice)."""
        self._paused.clear()

    @property
    def paused(self) -> bool:
        """Whether ``pause`` holds the stream now."""
        return self._paused.is_set()

    def _hold(self) -> None:
        """While paused, write nothing (the device plays silence); a stop ends the wait at once."""
        while self._paused.is_set() and not self._stop.is_set():
            self._stop.wait(SLICE_S)

    def play(self, chunks: Iterable[Any]) -> Played:
        """Play ``Chunk``s (ipc.client) as they arrive; return what was played."""
        import numpy as np
        import sounddevice as sd

        played = Played()
        stream = None
        try:
            for chunk in chunks:
                if self._stop.is_set():
                    played.stopped = True
                    break
                if stream is None:
                    stream = sd.OutputStream(
                        samplerate=chunk.sample_rate, channels=1, dtype="float32", device=self.device
                    )
                    stream.start()
                samples = np.asarray(chunk.samples, dtype=np.float32) * np.float32(self.volume)
                if chunk.final:
                    pause = np.zeros(int(SENTENCE_PAUSE_S * chunk.sample_rate), dtype=np.float32)
                    samples = np.concatenate([samples, pause])
                step = max(1, int(SLICE_S * chunk.sample_rate))
                for start in range(0, len(samples), step):
                    self._hold()
                    if self._stop.is_set():
                        played.stopped = True
                        break
                    stream.write(samples[start : start + step])
                    played.seconds += min(step, len(samples) - start) / chunk.sample_rate
                played.chunks += 1
                if played.stopped:
                    break
        except KeyboardInterrupt:
            played.stopped = True
            if stream is not None:
                stream.abort()
            raise
        finally:
            if stream is not None:
                if played.stopped:
                    stream.abort()
                else:
                    stream.stop()  # lets what is buffered finish
                stream.close()
        return played
