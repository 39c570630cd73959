"""Issue 21 through the OpenAI and Wyoming bridges: a rule, a pause and a tag change what comes back.

The daemon does the work, so a bridge only passes the text on; these tests
show that nothing on the way (JSON, Wyoming events) loses it. The fake
engine's tone lasts as long as its text, so a rule that lengthens a word
lengthens the audio; a pause is a run of exact zeros.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.bridges.conftest import Library, RunningBridge
from tests.bridges.test_openai import raw
from tests.bridges.test_wyoming import exchange, pcm_of, wyoming  # noqa: F401 - the fixture

SR = 24_000
TEXT = "Run nginx now. [pause 1.5s] Done [laugh]."


@pytest.fixture
def nginx_rule(lib: Library) -> Iterator[None]:
    """A rule on the shared bridge daemon, for one test only."""
    with lib.daemon.client() as c:
        c.call("words.add", {"word": "nginx", "say": "engine x"})
    yield
    with lib.daemon.client() as c:
        c.call("words.remove", {"word": "nginx"})


def longest_silence_s(samples: np.ndarray) -> float:
    quiet = np.concatenate([[0], (np.abs(samples) < 1e-3).astype(int), [0]])
    edges = np.flatnonzero(np.diff(quiet))
    return float((edges[1::2] - edges[::2]).max() / SR)


def first_sound_s(samples: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(samples) >= 1e-3)
    runs = np.split(loud, np.flatnonzero(np.diff(loud) > SR // 10) + 1)
    return len(runs[0]) / SR


def openai_speech(bridge: RunningBridge, lib: Library, text: str) -> np.ndarray:
    body = json.dumps({"model": "tts-1", "input": text, "voice": lib.default, "response_format": "wav"}).encode()
    status, _, data = raw(bridge, "POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
    assert status == 200, data[:300]
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == SR
    return samples


def test_openai_bridge_hears_the_rule_the_pause_and_the_tag(bridge: RunningBridge, lib: Library, nginx_rule) -> None:
    samples = openai_speech(bridge, lib, TEXT)
    assert longest_silence_s(samples) == pytest.approx(1.5, abs=0.02)
    assert first_sound_s(samples) == pytest.approx(2 * len("Run engine x now.") / 25, abs=0.02)
    # "[laugh]" is not spoken by the original model: "Done." alone is the rest.
    assert len(samples) / SR == pytest.approx(2 * len("Run engine x now.") / 25 + 1.5 + 2 * len("Done.") / 25, abs=0.05)


def test_openai_bridge_says_why_a_pause_is_refused(bridge: RunningBridge, lib: Library) -> None:
    body = json.dumps({"model": "tts-1", "input": "Wait [pause 20s] now.", "voice": lib.default}).encode()
    status, _, data = raw(bridge, "POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
    assert status == 400 and b"at most 10 s" in data


def test_wyoming_bridge_hears_the_rule_and_the_pause(wyoming, lib: Library, nginx_rule) -> None:  # noqa: F811
    events = asyncio.run(exchange(wyoming.port, Synthesize(text=TEXT, voice=SynthesizeVoice(name=lib.default)).event()))
    samples = np.frombuffer(pcm_of(events), dtype="<i2").astype(np.float32) / 32768
    assert longest_silence_s(samples) == pytest.approx(1.5, abs=0.02)
    assert first_sound_s(samples) == pytest.approx(2 * len("Run engine x now.") / 25, abs=0.02)
