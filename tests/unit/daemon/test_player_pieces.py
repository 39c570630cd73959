"""daemon/player.py: a sentence that arrives in pieces (token streaming) plays as one sentence.

In process, on a paused real speaker: nothing reaches a device; what is
checked is the audio the player would write, block by block.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from chatterbox_tray.audio import playback_loop
from chatterbox_tray.audio.output import fade
from chatterbox_tray.audio.playback_loop import BLOCK_S
from chatterbox_tray.audio.speaker_rules import next_block
from chatterbox_tray.daemon.jobs import Job
from chatterbox_tray.daemon.player import Player
from chatterbox_tray.daemon.text import split_sentences

RATE = 24_000
#: Samples the player writes at a time.
BLOCK = int(BLOCK_S * RATE)


@pytest.fixture
def player() -> Iterator[Player]:
    events: list[dict[str, Any]] = []
    p = Player(RATE, event=lambda job, data: events.append(data), started=lambda job: None, ended=lambda *a: None)
    p.set_paused(True)
    yield p
    p.close()


def speech(text: str = "One. Two.") -> Job:
    return Job("speak", req_id="s1", text=text, chunks=split_sentences(text))


def tone(n: int, f: float = 220.0) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * f * np.arange(n) / RATE)).astype(np.float32)


def drain(player: Player, job: Job) -> tuple[np.ndarray, list[int]]:
    """Everything the player would write for ``job``, and the sentence index each block begins."""
    item = player._find(job)
    assert item is not None
    blocks, begun = [], []
    while True:
        block, new, _done = next_block(item, BLOCK)
        if block is None:
            return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), begun
        blocks.append(block)
        if new is not None:
            begun.append(new.index)


def test_pieces_of_a_sentence_join_with_fades_only_at_its_ends(player: Player) -> None:
    job = speech()
    player.admit(job, "text")
    a, b, c = tone(4000), tone(3000, 330.0), tone(5000, 440.0)
    player.push(job, 0, a, (0, 4), "One.", 0.1, final=False)
    player.push(job, 0, b, (0, 4), "One.", 0.1, final=True)
    player.push(job, 1, c, (5, 9), "Two.", 0.1)
    player.produced(job)
    played, begun = drain(player, job)
    pause = np.zeros(int(player.pause_s * RATE), np.float32)
    expected = np.concatenate([fade(np.concatenate([a, b]), RATE), pause, fade(c, RATE), pause])
    np.testing.assert_array_equal(played, expected)
    assert begun == [0, 1]  # one "sentence" start per sentence, not per piece


def test_the_player_waits_at_the_end_of_an_unfinished_sentence(player: Player) -> None:
    job = speech()
    player.admit(job, "text")
    player.push(job, 0, tone(2000), (0, 4), "One.", 0.1, final=False)
    first, _ = drain(player, job)
    assert len(first) == 2000  # the piece, no pause: more of the sentence is coming
    item = player._find(job)
    assert next_block(item, BLOCK) == (None, None, False)  # waiting (an underrun), not moving on
    player.push(job, 0, tone(1000), (0, 4), "One.", 0.1, final=True)
    rest, begun = drain(player, job)
    assert len(rest) == 1000 + int(player.pause_s * RATE)
    assert begun == []  # still the same sentence


def test_pieces_are_wanted_while_a_listener_waits_and_not_while_the_speaker_holds_enough(player: Player) -> None:
    job = speech("One sentence here. Another one follows it.")
    player.admit(job, "text")
    assert player.wants_pieces(job, 18)  # nothing made yet: the first sound waits on this sentence
    player.push(job, 0, tone(RATE), (0, 18), "One sentence here.", 2.0, final=True)
    assert not player.wants_pieces(job, 24)  # pre-buffering: whole sentences reach the start sooner
    item = player._find(job)
    item.started = True  # playing, with 1 s (and the pause) held
    assert player.wants_pieces(job, 24)  # 24 characters take longer to make whole than 1.25 s lasts
    player.push(job, 1, tone(8 * RATE), (19, 43), "Another one follows it.", 2.0, final=True)
    assert not player.wants_pieces(job, 24)  # 9 s held: plenty of time to make a sentence whole
    assert not player.wants_pieces(speech(), 10)  # not on the speaker at all


def test_a_sentence_still_being_made_starts_only_when_the_rest_comes_in_time(player: Player) -> None:
    job = speech("A sentence of about forty characters here.")
    player.admit(job, "text")
    item = player._find(job)
    # A first piece of 0.6 s that took 1.5 s to make, in a sentence that can last 2.1 s at most.
    player.push(job, 0, tone(int(0.6 * RATE)), (0, 42), "A sentence…", 1.5, final=False, longest_s=2.1)
    seg = item.segments[0]
    assert not player._may_enter(item, seg)  # 0.6 s would run out long before the next piece
    # A second piece: 1.0 s more, made in 0.8 s (faster than it plays); 0.5 s at most to come.
    player.push(job, 0, tone(RATE), (0, 42), "A sentence…", 0.8, final=False, longest_s=2.1)
    assert player._may_enter(item, seg)
    player.prebuffer = "off"
    player.push(job, 0, tone(10), (0, 42), "A sentence…", 5.0, final=False, longest_s=2.1)
    assert player._may_enter(item, seg)  # pre-buffer off: never wait


class FakeStream:
    """An output stream that keeps time as a device would and remembers what was written."""

    def __init__(self, device_name: str, sample_rate: int) -> None:
        self.device_name, self.sample_rate = device_name, sample_rate
        self.is_open = False
        self._t0 = self._written = 0.0

    def ahead(self) -> float:
        return self._written - (time.monotonic() - self._t0)

    def write(self, samples: np.ndarray) -> None:
        if not self.is_open or self.ahead() < 0:
            self.is_open, self._t0, self._written = True, time.monotonic(), 0.0
        self._written += len(samples) / self.sample_rate

    def drop_pending(self) -> float:
        pending = max(0.0, self.ahead())
        self.close()
        return pending

    def close(self, abort: bool = False) -> None:
        self.is_open = False

    def latency_ms(self) -> None:
        return None


def test_a_pause_resumes_where_the_sound_stopped_and_counts_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the device held at the pause plays again after it, and ``played_s`` counts it once (issue 20 §2)."""
    monkeypatch.setattr(playback_loop, "OutputStream", FakeStream)
    told: queue.SimpleQueue = queue.SimpleQueue()
    p = Player(
        RATE,
        event=lambda job, data: told.put(data.event),
        started=lambda job: None,
        ended=lambda job, state, error, playback: told.put((state, playback)),
    )
    job = speech("One.")
    p.admit(job, "text")
    p.push(job, 0, tone(RATE), (0, 4), "One.", 0.1)
    p.produced(job)
    while told.get(timeout=5) != "started":
        pass
    time.sleep(0.3)
    p.set_paused(True)
    time.sleep(0.2)
    p.set_paused(False)
    while not isinstance(end := told.get(timeout=5), tuple):
        pass
    p.close()
    assert end[0] == "finished"
    assert abs(end[1]["played_s"] - (1.0 + p.pause_s)) <= BLOCK_S


def test_the_pace_to_plan_by_leaves_out_first_sentences_and_silence(player: Player) -> None:
    """A job's first sentence also fills the pipeline (slower); pause markup's silence costs nothing."""
    job = speech("One. Two. Three.")
    player.admit(job, "text")
    item = player._find(job)
    player.push(job, 0, tone(2 * RATE), (0, 4), "One.", 4.0, final=True)  # 2.0 s of work a second
    assert player._rtf_estimate(item) == pytest.approx(2.0)  # nothing better known yet
    assert not player._rtfs  # a first sentence is no one's steady pace
    player.push(job, 1, np.zeros(RATE, np.float32), (5, 5), "", 0.0, final=True)  # a pause: silence
    player.push(job, 2, tone(2 * RATE), (5, 9), "Two.", 2.6, final=True)  # 1.3 once the pipeline is full
    assert player._rtf_estimate(item) == pytest.approx(1.3)
    assert list(player._rtfs) == [pytest.approx(1.3)]
    later = speech("Four. Five.")
    player.admit(later, "text")
    player.push(later, 0, tone(2 * RATE), (0, 5), "Four.", 3.2, final=True)  # 1.6: as first sentences go
    # the next job plans by the steady pace measured before, not its own (slower) first sentence
    assert player._rtf_estimate(player._find(later)) == pytest.approx(1.3)


def test_a_loaded_model_s_measured_pace_replaces_the_old_one_until_sentences_are_measured(player: Player) -> None:
    """A fresh daemon's first paragraph plans by the warm-up's steady pace, not by its slow first sentence."""
    old = speech("One. Two.")
    player.admit(old, "text")
    player.push(old, 0, tone(RATE), (0, 4), "One.", 2.0, final=True)
    player.push(old, 1, tone(RATE), (5, 9), "Two.", 3.0, final=True)  # the model before: 3.0
    player.expect_pace(1.25)  # a reload: its warm-up measured 1.25
    assert list(player._rtfs) == [pytest.approx(1.25)]
    job = speech("Three. Four.")
    player.admit(job, "text")
    player.push(job, 0, tone(2 * RATE), (0, 6), "Three.", 3.0, final=True)  # a first sentence: 1.5
    assert player._rtf_estimate(player._find(job)) == pytest.approx(1.25)  # 0.75 x 1.5 = 1.125: no busier
    busier = speech("Five. Six.")
    player.admit(busier, "text")
    player.push(busier, 0, tone(2 * RATE), (0, 5), "Five.", 5.0, final=True)  # 2.5: another program woke up
    assert player._rtf_estimate(player._find(busier)) == pytest.approx(1.875)  # 0.75 x 2.5, not the quiet 1.25
    player.expect_pace(None)  # an engine that measured nothing: the first sentence stands in, whole
    assert not player._rtfs
    assert player._rtf_estimate(player._find(job)) == pytest.approx(1.5)
