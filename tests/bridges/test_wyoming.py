"""The Wyoming server, driven by the ``wyoming`` package's own ``AsyncTcpClient``.

The bridge runs on its own event loop in a thread of this process, in front
of a real fake-engine daemon; each test talks to it over real TCP the way
Home Assistant does: one connection per request.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from chatterbox_tray.bridges.encoders import to_int16
from chatterbox_tray.bridges.wyoming_server import split_sentences
from tests.bridges.conftest import Library, RunningWyoming
from tests.support.daemons import DaemonProcess

TEXT = "Hello there. How are you today?"


@pytest.fixture
def wyoming(lib: Library) -> Iterator[RunningWyoming]:
    running = RunningWyoming(lib.daemon.connection_path)
    yield running
    running.stop()


async def exchange(port: int, *events: Event, until=AudioStop, timeout: float = 30.0) -> list[Event]:
    """Send events on one connection; read until an ``until`` event, an Error, or the server closing."""
    got: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=timeout) as client:
        for event in events:
            await client.write_event(event)
        while (event := await client.read_event()) is not None:
            got.append(event)
            if until.is_type(event.type) or Error.is_type(event.type):
                break
    return got


def pcm_of(events: list[Event]) -> bytes:
    return b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))


def direct_pcm(lib: Library, text: str, voice: str) -> bytes:
    with lib.daemon.client() as client:
        audio, _ = client.synthesize(text, voice=voice).collect()
    return to_int16(audio)


def test_describe_lists_library_voices_as_tts_voices(wyoming: RunningWyoming, lib: Library) -> None:
    events = asyncio.run(exchange(wyoming.port, Describe().event(), until=Info))
    info = Info.from_event(events[-1])
    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.installed and program.supports_synthesize_streaming
    names = {v.name for v in program.voices}
    assert {lib.default, lib.other} <= names
    assert all(v.installed and v.languages == ["en"] for v in program.voices)


def test_synthesize_answers_audio_start_chunks_stop(wyoming: RunningWyoming, lib: Library) -> None:
    events = asyncio.run(
        exchange(wyoming.port, Synthesize(text=TEXT, voice=SynthesizeVoice(name=lib.other.lower())).event())
    )
    kinds = [e.type for e in events]
    assert AudioStart.is_type(kinds[0]) and AudioStop.is_type(kinds[-1])
    assert all(AudioChunk.is_type(k) for k in kinds[1:-1]) and len(kinds) > 2
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24_000, 2, 1)
    # Same length as a direct client's audio of the same voice (the fake engine's noise is unseeded).
    assert len(pcm_of(events)) == len(direct_pcm(lib, TEXT, lib.other))


def test_synthesize_without_a_voice_uses_the_default(wyoming: RunningWyoming, lib: Library) -> None:
    events = asyncio.run(exchange(wyoming.port, Synthesize(text=TEXT).event()))
    got = np.frombuffer(pcm_of(events), dtype="<i2").astype(np.float32)
    want = np.frombuffer(direct_pcm(lib, TEXT, lib.default), dtype="<i2").astype(np.float32)
    other = np.frombuffer(direct_pcm(lib, TEXT, lib.other), dtype="<i2").astype(np.float32)
    # The fake engine's pitch follows the voice: the strongest frequency tells voices apart.
    peak = lambda x: int(np.argmax(np.abs(np.fft.rfft(x))))  # noqa: E731
    assert peak(got) == peak(want) != peak(other)


def test_unknown_voice_is_an_error_event(wyoming: RunningWyoming) -> None:
    events = asyncio.run(exchange(wyoming.port, Synthesize(text=TEXT, voice=SynthesizeVoice(name="nobody")).event()))
    assert Error.is_type(events[-1].type)
    err = Error.from_event(events[-1])
    assert err.code == "unknown_voice" and "nobody" in err.text


def test_streaming_speaks_each_sentence_as_it_arrives(wyoming: RunningWyoming, lib: Library) -> None:
    pieces = ["The bed ", "light is off. ", "The kitchen ", "lights are on", ". Anything else?"]
    events = asyncio.run(
        exchange(
            wyoming.port,
            SynthesizeStart(voice=SynthesizeVoice(name=lib.other)).event(),
            *[SynthesizeChunk(text=p).event() for p in pieces],
            # Home Assistant also sends the whole text for servers that do not stream: ignored inside a stream.
            Synthesize(text="".join(pieces), voice=SynthesizeVoice(name=lib.other)).event(),
            SynthesizeStop().event(),
            until=SynthesizeStopped,
        )
    )
    kinds = [e.type for e in events]
    assert AudioStart.is_type(kinds[0])
    assert AudioStop.is_type(kinds[-2]) and SynthesizeStopped.is_type(kinds[-1])
    assert sum(AudioStart.is_type(k) for k in kinds) == 1
    sentences = ["The bed light is off.", "The kitchen lights are on.", "Anything else?"]
    want = sum(len(direct_pcm(lib, s, lib.other)) for s in sentences)
    assert len(pcm_of(events)) == want  # each sentence once, none from the trailing Synthesize


def test_streaming_audio_starts_before_the_text_ends(slow_lib: Library) -> None:
    """The first sentence's audio arrives while the client has not yet sent the rest."""
    running = RunningWyoming(slow_lib.daemon.connection_path)

    async def scenario() -> tuple[bool, list[Event]]:
        async with AsyncTcpClient("127.0.0.1", running.port, read_timeout=30) as client:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text="First sentence here. And the second").event())
            first = await client.read_event()
            while first is not None and not AudioChunk.is_type(first.type):
                first = await client.read_event()
            got_audio_before_stop = first is not None
            await client.write_event(SynthesizeChunk(text=" one.").event())
            await client.write_event(SynthesizeStop().event())
            rest = []
            while (event := await client.read_event()) is not None:
                rest.append(event)
                if SynthesizeStopped.is_type(event.type):
                    break
        return got_audio_before_stop, rest

    try:
        before, rest = asyncio.run(scenario())
        assert before
        assert SynthesizeStopped.is_type(rest[-1].type) and AudioStop.is_type(rest[-2].type)
    finally:
        running.stop()


def test_no_daemon_is_an_error_event_not_a_hang(tmp_path) -> None:
    running = RunningWyoming(tmp_path / "daemon.json")
    try:
        events = asyncio.run(exchange(running.port, Synthesize(text=TEXT).event()))
        assert Error.is_type(events[-1].type)
        assert Error.from_event(events[-1]).code == "daemon_unavailable"
        events = asyncio.run(exchange(running.port, Describe().event(), until=Info))
        assert Error.is_type(events[-1].type)
    finally:
        running.stop()


def test_a_client_that_leaves_cancels_its_job(slow_lib: Library) -> None:
    running = RunningWyoming(slow_lib.daemon.connection_path)
    text = " ".join(f"Sentence number {i}." for i in range(12))

    async def leave_after_first_chunk() -> None:
        async with AsyncTcpClient("127.0.0.1", running.port, read_timeout=30) as client:
            await client.write_event(Synthesize(text=text).event())
            while (event := await client.read_event()) is not None and not AudioChunk.is_type(event.type):
                pass

    try:
        with slow_lib.daemon.events() as stream:
            from tests.support.daemons import EventLog

            log = EventLog(stream)
            with slow_lib.daemon.client() as client:
                log.sync(client)
            asyncio.run(leave_after_first_chunk())
            cancelled = log.wait_for(lambda t, d: d.get("event") == "cancelled", timeout=30)
        assert cancelled["event"] == "cancelled"
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("text", "done", "rest"),
    [
        ("Hello there. How are", ["Hello there."], "How are"),
        ('He said "stop." Then', ['He said "stop."'], "Then"),
        ("One!\nTwo? Three", ["One!", "Two?"], "Three"),
        ("No end yet", [], "No end yet"),
        ("Para one\n\nPara two", ["Para one"], "Para two"),
        ("Version 1.5 is out", [], "Version 1.5 is out"),
    ],
)
def test_split_sentences(text: str, done: list[str], rest: str) -> None:
    assert split_sentences(text) == (done, rest)


def test_loading_daemon_makes_the_job_wait_not_fail(clips) -> None:
    """Home Assistant does not retry: while the model loads, the request waits for it."""
    loading = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_LOAD_DELAY": "3"}).start(ready=False)
    running = RunningWyoming(loading.connection_path)
    try:
        with loading.client() as client:
            client.voices_add("V", data=clips.new())
            client.voices_default("V")
        events = asyncio.run(exchange(running.port, Synthesize(text=TEXT).event(), timeout=60))
        assert AudioStop.is_type(events[-1].type), events[-1]
        assert pcm_of(events)
    finally:
        running.stop()
        loading.cleanup()


def test_the_command_serves_and_stops_on_sigterm(lib: Library) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatterbox_tray.bridges",
            "wyoming",
            "--uri",
            "tcp://127.0.0.1:0",
            "--connection",
            str(lib.daemon.connection_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Wyoming text-to-speech server on tcp://127.0.0.1:"), line + proc.stderr.read()
        port = int(line.strip().rsplit(":", 1)[-1])
        events = asyncio.run(exchange(port, Describe().event(), until=Info))
        assert lib.other in {v.name for v in Info.from_event(events[-1]).tts[0].voices}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
