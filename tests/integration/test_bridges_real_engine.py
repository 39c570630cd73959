"""Both bridges in front of the real daemon: the real chatterbox classes, the test checkpoint.

The checkpoint has random weights (tests/support/checkpoint.py), so the audio
is noise, but every call, shape and cost on the way is the real one. The token
budget is tiny, as in tests/integration, because T3 costs about 0.3 s a token
on two CPU cores.
"""

from __future__ import annotations

import asyncio
import io
import time

import openai
import pytest
import soundfile as sf
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from tests.bridges.conftest import RunningWyoming, start_bridge
from tests.support.daemons import Clips, DaemonProcess

# The real model on a shared 2-core machine: loading and warm-up alone have taken 6 minutes under load.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def real(real: DaemonProcess, clips: Clips) -> DaemonProcess:
    """This module's real daemon (tests/integration/conftest.py) with a default voice."""
    with real.client(timeout=120.0) as client:
        client.voices_add("Real", data=clips.new())
        client.voices_default("Real")
    return real


def test_openai_speech_through_the_real_model(real: DaemonProcess) -> None:
    running = start_bridge(real)
    try:
        client = openai.OpenAI(base_url=running.url, api_key="x", max_retries=0, timeout=1800)
        with client.audio.speech.with_streaming_response.create(
            model="chatterbox-original", voice="alloy", input="Hi there.", response_format="wav"
        ) as resp:
            data = resp.read()
        samples, rate = sf.read(io.BytesIO(data))
        assert rate == 24_000 and samples.size > 0
        with real.client() as daemon:
            # The response ends with the last audio; the job's end (and its entry) follows at once.
            deadline = time.monotonic() + 30
            while not (recent := daemon.stats()["recent_jobs"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            last = recent[-1]
        # The daemon's last job is the one the bridge asked for, and all its audio came through.
        assert last["audio_s"] == pytest.approx(samples.size / rate, abs=0.01)
    finally:
        running.stop()


def test_wyoming_synthesize_through_the_real_model(real: DaemonProcess) -> None:
    running = RunningWyoming(real.connection_path)

    async def speak() -> list:
        events = []
        async with AsyncTcpClient("127.0.0.1", running.port, read_timeout=1800) as client:
            await client.write_event(Synthesize(text="Hello.").event())
            while (event := await client.read_event()) is not None:
                events.append(event)
                if AudioStop.is_type(event.type):
                    break
        return events

    try:
        events = asyncio.run(speak())
        assert AudioStart.is_type(events[0].type) and AudioStop.is_type(events[-1].type)
        audio = b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))
        assert len(audio) > 0 and len(audio) % 2 == 0
    finally:
        running.stop()
