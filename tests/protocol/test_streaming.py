"""Token streaming through the daemon: a sentence made in pieces reaches clients and the speaker as one.

The fake engine stands in for a streaming engine here (``CHATTERBOX_TRAY_FAKE_PIECES``):
each sentence comes in three pieces. tests/integration/test_stream_joins.py
checks the real engine's own pieces and joins.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.support.daemons import Clips, DaemonProcess, EventLog

RATE = 24_000
FADE = int(0.005 * RATE)
PIECES = 3
TEXT = "First sentence here. A second one follows!"


@pytest.fixture(scope="module")
def streaming() -> Iterator[DaemonProcess]:
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_PIECES": str(PIECES)}).start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="module")
def voice(streaming: DaemonProcess, clips: Clips) -> str:
    with streaming.client() as client:
        client.voices_add("s", data=clips.new())
    return "s"


def test_synthesize_streams_each_sentence_in_pieces(streaming: DaemonProcess, voice: str) -> None:
    with streaming.client() as client:
        synthesis = client.synthesize(TEXT, voice=voice, seed=3)
        chunks = list(synthesis)
    assert [(c.index, c.piece, c.final) for c in chunks] == [
        (i, p, p == PIECES - 1) for i in range(2) for p in range(PIECES)
    ]
    assert {c.text for c in chunks if c.index == 0} == {"First sentence here."}
    assert synthesis.summary["chunks"] == 2  # sentences, not pieces
    with streaming.client() as client:
        audio, _ = client.synthesize(TEXT, voice=voice, seed=3).collect()
    np.testing.assert_array_equal(audio, np.concatenate([c.samples for c in chunks]))


def test_the_speaker_plays_pieces_as_whole_sentences(streaming: DaemonProcess, voice: str) -> None:
    with streaming.client() as client, streaming.events(("job", "voices")) as stream:
        log = EventLog(stream)
        log.sync(client)
        before = len(streaming.played())
        job = client.speak(TEXT, voice=voice, seed=3)["job"]
        end = client.wait(job, timeout=30)
        assert end["state"] == "finished", end
        log.wait_job(job, "finished")  # read the events up to its end
        sentences = [
            d["sentence"] for t, d in log.seen if t == "job" and d.get("job") == job and d["event"] == "sentence"
        ]
        assert sentences == [0, 1]  # one "sentence" event per sentence, not per piece
        pieces = [c for c in client.synthesize(TEXT, voice=voice, seed=3)]
    played = streaming.played()[before:]
    played = played[played != 0]
    whole = [np.concatenate([c.samples for c in pieces if c.index == i]) for i in range(2)]
    assert len(played) == sum(len(w) for w in whole)  # every sample once; pauses only between sentences
    offset = 0
    for sentence in whole:
        # Fades only at each sentence's two ends: inside, at the joins of its pieces, the audio is untouched.
        inner = slice(offset + FADE, offset + len(sentence) - FADE)
        np.testing.assert_allclose(played[inner], np.concatenate(whole)[inner], rtol=0, atol=1e-6)
        offset += len(sentence)
    assert end["playback"]["played_s"] == pytest.approx((offset + 2 * 0.25 * RATE) / RATE, abs=0.05)
