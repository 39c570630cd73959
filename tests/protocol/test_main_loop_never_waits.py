"""The daemon's main loop never waits on decoding a clip (issue: a bad or long clip stalled every client).

Each test starts the work with one client and, before its answer comes,
pings from another. Before the fix the main loop decoded in place, so the
add's answer was always out before the ping's; now the ping is answered
while the clip is still being decoded. Order, not wall-clock time, is checked.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import DaemonProcess, uid


@pytest.fixture(scope="module")
def fresh() -> Iterator[DaemonProcess]:
    """A daemon of its own: the first decode of an odd format is the slowest one (imports)."""
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def long_clip(fmt: str, subtype: str, seconds: float = 59.0) -> bytes:
    """A voiced clip, never silent; 59 s is nearly the longest a voice may have."""
    rate = 24_000
    t = np.arange(int(seconds * rate)) / rate
    audio = (
        0.3 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 0.3 * t)) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    )
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, 1, format=fmt, subtype=subtype) as out:
        for start in range(0, len(audio), rate):  # libsndfile's Vorbis encoder crashes on one huge write
            out.write(audio[start : start + rate].astype(np.float32))
    return buf.getvalue()


def ping_during(daemon: DaemonProcess, request: rq.Request) -> tuple[bool, object]:
    """Send ``request`` then a ping on the same socket; (was the ping answered first, the request's outcome).

    One socket keeps the order: the daemon reads the request before the ping.
    A main loop that did the work in place would answer the request first.
    """
    with daemon.client(timeout=120.0) as client:
        work_id = client.submit(request)
        ping_id = client.submit(rq.ping())
        arrived = []
        while len(arrived) < 2:
            assert client._sock.poll(120_000), "the daemon did not answer"
            header = client._core.decode_reply(client._sock.recv_multipart()).header
            if header["id"] in (work_id, ping_id) and header["kind"] in ("result", "error"):
                arrived.append(header)
        outcome: object = arrived[0] if arrived[0]["id"] == work_id else arrived[1]
        if outcome["kind"] == "error":
            outcome = ProtocolError(outcome["error"]["code"], outcome["error"]["message"])
        return arrived[0]["id"] == ping_id, outcome


def test_the_first_decode_of_a_bad_clip_does_not_stall_pings(fresh: DaemonProcess) -> None:
    first, outcome = ping_during(fresh, rq.voices_add(uid("bad"), b"root:x:0:0:root:/root:/bin/bash\n" * 200))
    assert first
    assert isinstance(outcome, ProtocolError) and outcome.code == "clip_undecodable"


FORMATS = [("MP3", "MPEG_LAYER_III"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]


@pytest.mark.parametrize(("fmt", "subtype"), FORMATS)
def test_decoding_a_long_clip_does_not_stall_pings(fresh: DaemonProcess, fmt: str, subtype: str) -> None:
    """20 minutes of audio: decoded (a few hundred ms) before it is refused as too long."""
    first, outcome = ping_during(fresh, rq.voices_add(uid(fmt.lower()), long_clip(fmt, subtype, 1200.0)))
    assert first
    assert isinstance(outcome, ProtocolError) and outcome.code == "clip_too_long"


@pytest.mark.parametrize(("fmt", "subtype"), FORMATS)
def test_a_60_s_clip_added_off_the_main_loop_is_a_voice(fresh: DaemonProcess, fmt: str, subtype: str) -> None:
    name = uid(fmt.lower())
    _, outcome = ping_during(fresh, rq.voices_add(name, long_clip(fmt, subtype)))
    assert not isinstance(outcome, ProtocolError), outcome
    with fresh.client() as client:
        assert any(v["name"] == name for v in client.voices_list())
        client.voices_remove(name)


@pytest.mark.parametrize("op", ["synthesize", "speak"])
def test_a_clip_sent_with_the_text_is_checked_off_the_main_loop(fresh: DaemonProcess, op: str) -> None:
    """A bad clip sent with ``synthesize``/``speak`` still fails at once, and pings do not wait on it."""
    build = rq.synthesize if op == "synthesize" else rq.speak
    first, outcome = ping_during(fresh, build("Hello there.", voice_data=long_clip("MP3", "MPEG_LAYER_III", 1200.0)))
    assert first
    assert isinstance(outcome, ProtocolError) and outcome.code == "clip_too_long"


def test_a_good_clip_sent_with_the_text_is_spoken(fresh: DaemonProcess) -> None:
    with fresh.client() as client:
        audio, rate = client.synthesize("Hello there.", voice_data=long_clip("FLAC", "PCM_16", 8.0)).collect()
    assert rate == 24_000 and len(audio) > 0
