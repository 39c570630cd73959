"""The bridges' encoders and voice lookup, without a daemon."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.bridges import encoders
from chatterbox_tray.bridges.upstream import UnknownVoice, VoiceTable, resolve_voice

RATE = 24_000


def tone(seconds: float, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "wav", "pcm"])
def test_streaming_formats_give_bytes_before_the_end_and_decode_whole(fmt: str) -> None:
    enc = encoders.encoder(fmt, RATE)
    assert enc.streams
    fed = [enc.feed(tone(1.0)) for _ in range(3)]
    assert all(fed), [len(b) for b in fed]  # every second of audio let some bytes out
    data = b"".join(fed) + enc.finish()
    if fmt == "pcm":
        assert len(data) == 2 * 3 * RATE
        return
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    # libsndfile reads the stream to its end (a VBR MP3 without its header frame would stop short).
    assert 3 * RATE <= len(samples) <= 3 * RATE + 4800


def test_flac_is_sent_whole_with_a_complete_header() -> None:
    enc = encoders.encoder("flac", RATE)
    assert not enc.streams
    assert enc.feed(tone(1.0)) == b""
    data = enc.finish()
    info = sf.info(io.BytesIO(data))
    assert info.frames == RATE and info.samplerate == RATE


def test_an_empty_wav_is_still_a_wav() -> None:
    data = encoders.encoder("wav", RATE).finish()
    assert data.startswith(b"RIFF") and len(data) == 44
    assert sf.read(io.BytesIO(data))[0].size == 0


def test_int16_conversion_clips_and_rounds() -> None:
    got = np.frombuffer(encoders.to_int16(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], dtype=np.float32)), "<i2")
    assert got.tolist() == [-32767, -32767, 0, 16384, 32767, 32767]


def test_stream_sink_drops_writes_to_bytes_already_sent() -> None:
    sink = encoders._StreamSink()
    sink.write(b"abcdef")
    assert sink.take() == b"abcdef"
    sink.write(b"gh")
    sink.seek(2)
    sink.write(b"XY")  # a header fix-up: those bytes have left
    sink.seek(0, 2)
    sink.write(b"ij")
    assert sink.take() == b"ghij"
    assert sink.tell() == 10


@pytest.mark.parametrize(("name", "words"), [("aac", ["aac", "mp3", "wav"]), ("ogg", ["unknown", "pcm"])])
def test_formats_we_cannot_make_are_refused_in_plain_words(name: str, words: list[str]) -> None:
    with pytest.raises(encoders.UnsupportedFormat) as info:
        encoders.check_format(name)
    assert all(w in str(info.value) for w in words)
    assert encoders.check_format("MP3") == "mp3"


LIBRARY = [
    {"name": "Narrator", "default": True},
    {"name": "Ann", "default": False},
]


def test_voice_lookup_order() -> None:
    table = {"nova": "ann", "echo": "Gone"}
    assert resolve_voice("ANN", LIBRARY, table) == "Ann"  # a library name, any case
    assert resolve_voice("nova", LIBRARY, table) == "Ann"  # the table
    assert resolve_voice("alloy", LIBRARY, table) is None  # an OpenAI name: the default
    assert resolve_voice("echo", LIBRARY, table) is None  # a table entry whose voice is gone
    assert resolve_voice(None, LIBRARY, table) is None
    with pytest.raises(UnknownVoice, match="library voices: Narrator, Ann"):
        resolve_voice("nobody", LIBRARY, table)


def test_without_a_default_voice_openai_names_say_what_to_do() -> None:
    library = [{"name": "Ann", "default": False}]
    with pytest.raises(UnknownVoice, match="no default voice"):
        resolve_voice("alloy", library, {})
    with pytest.raises(UnknownVoice, match="no default voice"):
        resolve_voice(None, library, {})
    with pytest.raises(UnknownVoice, match="voice library is empty"):
        resolve_voice("x", [], {})


def test_voice_table_is_reread_and_a_broken_file_is_empty(tmp_path) -> None:
    path = tmp_path / "openai-voices.json"
    table = VoiceTable(path)
    assert table.table() == {}
    path.write_text(json.dumps({"Alloy": "Ann"}), encoding="utf-8")
    assert table.table() == {"alloy": "Ann"}
    path.write_text("{not json", encoding="utf-8")
    assert table.table() == {}
    path.write_text(json.dumps({"alloy": 3}), encoding="utf-8")
    assert table.table() == {}
