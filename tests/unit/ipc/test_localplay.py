"""The local player (a remote daemon's speech on this computer): pause, resume and stop.

Real PortAudio, into an ALSA file sink in this process (the suite's speaker).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Chunk
from chatterbox_tray.ipc.localplay import SENTENCE_PAUSE_S, LocalPlayer, Played
from tests.support.daemons import write_alsa_file_sink

RATE = 24_000


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process's default ALSA output writes into a file (PortAudio started again to see it)."""
    import sounddevice as sd

    path = tmp_path / "played.raw"
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_alsa_file_sink(tmp_path / "asound.conf", path)))
    sd._terminate()
    sd._initialize()
    yield path
    sd._terminate()
    sd._initialize()


def heard(path: Path) -> int:
    """Samples the sink has received so far."""
    return path.stat().st_size // 4 if path.exists() else 0


def tone(seconds: float, index: int) -> Chunk:
    t = np.arange(int(seconds * RATE)) / RATE
    return Chunk(index, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, "text", (0, 4))


def settle(path: Path, timeout: float = 10.0) -> int:
    """The sink's size once it stops growing (the pipe to ``cat`` has caught up)."""
    last, since = heard(path), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = heard(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 0.5:
            break
    return last


def test_pause_holds_the_stream_and_resume_plays_the_rest(sink: Path) -> None:
    # The file sink takes samples as fast as they come (no clock), so the test
    # feeds the player itself: one sentence, pause, then the next.
    feed: queue.SimpleQueue = queue.SimpleQueue()

    asked = threading.Event()

    def chunks() -> Iterator[Chunk]:
        yield feed.get()
        asked.set()  # the first sentence is written: the player asks for the next
        while (item := feed.get()) is not None:
            yield item

    first, second = tone(0.5, 0), tone(0.5, 1)
    sentence = len(first.samples) + int(SENTENCE_PAUSE_S * RATE)
    player = LocalPlayer()
    result: list[Played] = []
    thread = threading.Thread(target=lambda: result.append(player.play(chunks())))
    thread.start()
    feed.put(first)
    assert asked.wait(10)
    player.pause()
    assert player.paused
    feed.put(second)
    feed.put(None)
    held = settle(sink)
    assert 0 < held <= sentence  # the second one waits
    time.sleep(0.3)
    assert heard(sink) == held
    assert thread.is_alive()
    player.resume()
    thread.join(20)
    assert not thread.is_alive()
    played = result[0]
    assert not played.stopped and played.chunks == 2
    assert round(played.seconds * RATE) == 2 * sentence
    assert settle(sink) >= 2 * sentence  # every sample reached the speaker after the pause


def test_stop_while_paused_ends_at_once_and_says_stopped(sink: Path) -> None:
    feed: queue.SimpleQueue = queue.SimpleQueue()
    asked = threading.Event()

    def chunks() -> Iterator[Chunk]:
        yield feed.get()
        asked.set()
        yield feed.get()

    first = tone(0.5, 0)
    feed.put(first)
    player = LocalPlayer()
    result: list[Played] = []
    thread = threading.Thread(target=lambda: result.append(player.play(chunks())))
    thread.start()
    assert asked.wait(10)
    player.pause()
    feed.put(tone(2.0, 1))
    settle(sink)
    assert thread.is_alive()  # held by the pause
    player.stop()
    thread.join(5)
    assert not thread.is_alive()
    played = result[0]
    assert played.stopped  # and nothing of the second sentence was written:
    assert round(played.seconds * RATE) == len(first.samples) + int(SENTENCE_PAUSE_S * RATE)
