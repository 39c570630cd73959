"""Synthesis over real sockets with the fake engine: chunks, summaries, voices, seeds, errors.

The fake's audio is a tone whose pitch comes from the voice's conditionals
plus seeded noise, so equal samples mean "same voice, same seed" and unequal
ones mean something changed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, accepted, uid

TEXT = "The first sentence is here. A second one follows! Is this the third?"
SENTENCES = ["The first sentence is here.", "A second one follows!", "Is this the third?"]


@pytest.fixture(scope="module")
def voice_a(daemon: DaemonProcess, clips: Clips) -> tuple[str, bytes]:
    """A library voice on the shared daemon and its clip bytes."""
    data = clips.new()
    with daemon.client() as c:
        name = c.voices_add(uid("syn"), data=data)["name"]
    return name, data


@pytest.fixture(scope="module")
def voice_b(daemon: DaemonProcess, clips: Clips) -> tuple[str, bytes]:
    """A second voice with other bytes (hence another pitch)."""
    data = clips.new()
    with daemon.client() as c:
        name = c.voices_add(uid("syn"), data=data)["name"]
    return name, data


@pytest.fixture
def default_restored(client: Client) -> Iterator[None]:
    """Put the shared daemon's default voice back as it was."""
    before = client.voices_default()["default"]
    yield
    if before is None:
        client.voices_default(clear=True)
    else:
        client.voices_default(before)


def raw_replies(client: Client, args: dict[str, Any], buffers: tuple = ()) -> list:
    """Every reply to one synthesize request, as decoded messages."""
    req_id = client.send("synthesize", args, buffers)
    return list(client.replies(req_id, 10.0))


def collect(client: Client, text: str, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    synthesis = client.synthesize(text, **kwargs)
    audio, rate = synthesis.collect()
    assert rate == 24_000
    return audio, synthesis.summary


def error_of(client: Client, text: str, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        client.synthesize(text, **kwargs).collect()
    return err.value


# -- the stream --------------------------------------------------------------------


def test_replies_are_accepted_then_one_float32_chunk_per_sentence_then_result(
    client: Client, voice_a: tuple[str, bytes]
) -> None:
    replies = raw_replies(client, {"text": TEXT, "voice": voice_a[0]})
    kinds = [m.header["kind"] for m in replies if m.header["kind"] != "progress"]
    assert kinds == ["accepted", "chunk", "chunk", "chunk", "result"]

    first = replies[0].header
    assert first["kind"] == "accepted"
    assert first["chunks"] == 3
    assert isinstance(first["job"], str) and first["job"]
    assert isinstance(first["position"], int) and first["position"] >= 0

    chunks = [m for m in replies if m.header["kind"] == "chunk"]
    assert [m.header["index"] for m in chunks] == [0, 1, 2]
    assert [m.header["text"] for m in chunks] == SENTENCES
    for msg in chunks:
        head = msg.header
        assert head["sample_rate"] == 24_000
        assert len(msg.buffers) == 1
        frame = msg.buffers[0]
        assert len(frame) == 4 * head["samples"] > 0  # float32: four bytes a sample
        samples = np.frombuffer(frame, dtype="<f4")
        assert np.isfinite(samples).all()
        assert 0.05 < float(np.max(np.abs(samples))) <= 1.0
        start, end = head["span"]
        assert TEXT[start:end] == head["text"]
        assert 0 < head["tokens"] <= head["budget"]
    spans = [m.header["span"] for m in chunks]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # in order, no overlap

    summary = replies[-1].header["result"]
    total = sum(m.header["samples"] for m in chunks)
    assert summary["job"] == first["job"]
    assert summary["voice"] == voice_a[0]
    assert summary["sample_rate"] == 24_000
    assert summary["chunks"] == 3
    assert summary["tokens"] == sum(m.header["tokens"] for m in chunks)
    assert summary["audio_s"] == pytest.approx(total / 24_000, abs=1e-4)
    assert summary["queue_wait_s"] >= 0
    assert summary["conditionals"]["tier"] in ("memory", "disk", "prepared")
    assert summary["conditionals"]["seconds"] >= 0
    assert summary["t3_s"] >= 0
    assert summary["s3gen_s"] >= 0
    assert summary["synthesis_s"] >= summary["t3_s"] + summary["s3gen_s"] - 1e-3
    assert summary["rtf"] == pytest.approx(summary["synthesis_s"] / summary["audio_s"], rel=1e-2, abs=1e-3)
    assert 0 <= summary["time_to_first_chunk_s"] <= summary["queue_wait_s"] + summary["synthesis_s"] + 1e-3


def test_the_client_yields_chunks_with_spans_and_keeps_the_summary(client: Client, voice_a: tuple[str, bytes]) -> None:
    synthesis = client.synthesize(TEXT, voice=voice_a[0])
    chunks = list(synthesis)
    assert [c.index for c in chunks] == [0, 1, 2]
    assert [TEXT[slice(*c.span)] for c in chunks] == SENTENCES
    assert all(c.samples.dtype == np.float32 and c.sample_rate == 24_000 for c in chunks)
    assert synthesis.job == synthesis.summary["job"]
    assert synthesis.summary["chunks"] == 3
    # A longer sentence makes longer audio (the fake follows the text's length).
    assert len(chunks[0].samples) > len(chunks[2].samples)


def test_job_events_follow_the_job_from_queued_to_finished(
    daemon: DaemonProcess, client: Client, voice_a: tuple[str, bytes]
) -> None:
    log = EventLog(daemon.events())
    log.sync(client)
    synthesis = client.synthesize(TEXT, voice=voice_a[0])
    synthesis.collect()
    finished = log.wait_job(synthesis.job, "finished")
    events = [e for _, e in log.job_events(synthesis.job)]
    assert events == ["queued", "started", "chunk", "chunk", "chunk", "finished"]
    chunk_events = [d for t, d in log.seen if t == "job" and d["job"] == synthesis.job and d["event"] == "chunk"]
    assert [d["index"] for d in chunk_events] == [0, 1, 2]
    assert [TEXT[slice(*d["span"])] for d in chunk_events] == SENTENCES
    assert finished["summary"] == synthesis.summary
    assert finished["voice"] == voice_a[0]
    assert finished["chunks_done"] == 3


# -- voices --------------------------------------------------------------------------


def test_a_voice_by_name_path_or_bytes_gives_the_same_audio_from_the_same_cache_entry(
    client: Client, clips: Clips, voice_a: tuple[str, bytes]
) -> None:
    name, data = voice_a
    by_name, _ = collect(client, "Hello there.", voice=name, seed=11)
    path = clips.write(data, f"{uid('copy')}.wav")
    by_path, path_summary = collect(client, "Hello there.", voice_path=path, seed=11)
    by_bytes, bytes_summary = collect(client, "Hello there.", voice_data=data, seed=11)

    assert np.array_equal(by_name, by_path)
    assert np.array_equal(by_name, by_bytes)
    assert path_summary["voice"] == path.name
    assert bytes_summary["voice"] == "(sent clip)"
    # The key is the bytes, not the path: the named voice's entry serves both.
    assert path_summary["conditionals"]["tier"] == "memory"
    assert bytes_summary["conditionals"]["tier"] == "memory"


def test_different_voices_give_different_audio(
    client: Client, voice_a: tuple[str, bytes], voice_b: tuple[str, bytes]
) -> None:
    a, _ = collect(client, "Hello there.", voice=voice_a[0], seed=3)
    b, _ = collect(client, "Hello there.", voice=voice_b[0], seed=3)
    assert len(a) == len(b)
    assert not np.allclose(a, b)


def test_voice_names_are_looked_up_ignoring_case(client: Client, voice_a: tuple[str, bytes]) -> None:
    upper, summary = collect(client, "Hello there.", voice=voice_a[0].upper(), seed=4)
    exact, _ = collect(client, "Hello there.", voice=voice_a[0], seed=4)
    assert np.array_equal(upper, exact)
    assert summary["voice"] == voice_a[0]


@pytest.mark.usefixtures("default_restored")
def test_without_a_voice_the_default_voice_speaks(
    client: Client, voice_a: tuple[str, bytes], voice_b: tuple[str, bytes]
) -> None:
    client.voices_default(voice_b[0])
    audio, summary = collect(client, "Hello there.", seed=5)
    named, _ = collect(client, "Hello there.", voice=voice_b[0], seed=5)
    assert summary["voice"] == voice_b[0]
    assert np.array_equal(audio, named)

    client.voices_default(voice_a[0])
    _, summary = collect(client, "Hello there.", seed=5)
    assert summary["voice"] == voice_a[0]

    client.voices_default(clear=True)
    err = error_of(client, "Hello there.")
    assert err.code == "unknown_voice"
    assert "default" in err.message


# -- seeds ---------------------------------------------------------------------------


def test_the_same_seed_repeats_the_audio_and_another_seed_does_not(client: Client, voice_a: tuple[str, bytes]) -> None:
    first, _ = collect(client, TEXT, voice=voice_a[0], seed=1234)
    again, _ = collect(client, TEXT, voice=voice_a[0], seed=1234)
    other, _ = collect(client, TEXT, voice=voice_a[0], seed=1235)
    assert np.array_equal(first, again)
    assert len(other) == len(first)
    assert not np.array_equal(first, other)


def test_without_a_seed_two_runs_differ(client: Client, voice_a: tuple[str, bytes]) -> None:
    one, _ = collect(client, "Hello there.", voice=voice_a[0])
    two, _ = collect(client, "Hello there.", voice=voice_a[0])
    assert len(one) == len(two)
    assert not np.array_equal(one, two)


def test_chunk_i_uses_seed_plus_i(client: Client, voice_a: tuple[str, bytes]) -> None:
    chunks = list(client.synthesize("Same words. Same words.", voice=voice_a[0], seed=40))
    alone = list(client.synthesize("Same words.", voice=voice_a[0], seed=41))
    assert len(chunks) == 2
    assert not np.array_equal(chunks[0].samples, chunks[1].samples)  # sentences do not share noise
    assert np.array_equal(chunks[1].samples, alone[0].samples)


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n\t ", "... !!! ???", "\n\n.\n\n"], ids=repr)
def test_text_with_nothing_to_say_is_empty_text(client: Client, voice_a: tuple[str, bytes], text: str) -> None:
    assert error_of(client, text, voice=voice_a[0]).code == "empty_text"


def test_text_over_the_limit_is_too_large(client: Client, voice_a: tuple[str, bytes]) -> None:
    limit = client.hello()["limits"]["max_text_chars"]
    err = error_of(client, "a" * (limit + 1), voice=voice_a[0])
    assert err.code == "too_large"
    assert client.call("ping")["pong"] is True


def test_text_at_the_advertised_limit_is_accepted(client: Client, voice_a: tuple[str, bytes]) -> None:
    limit = client.hello()["limits"]["max_text_chars"]
    # Sentences end in "!": with full stops, daemon/text.py's abbreviation check
    # (re.search over all the text before each stop) makes this take seconds.
    text = ("A plain sentence of prose, as a chapter would have it! " * (limit // 50))[:limit]
    synthesis = client.synthesize(text, voice=voice_a[0])
    head = accepted(client, synthesis)
    synthesis.cancel()
    assert head["chunks"] > 1000


def test_an_unknown_voice_is_unknown_voice(client: Client) -> None:
    err = error_of(client, "Hello.", voice=uid("nobody"))
    assert err.code == "unknown_voice"


def test_a_missing_voice_file_is_bad_args(client: Client, clips: Clips) -> None:
    err = error_of(client, "Hello.", voice_path=clips.folder / "no-such-clip.wav")
    assert err.code == "bad_args"
    assert "no-such-clip.wav" in err.message


def test_voice_data_without_a_buffer_is_bad_args(client: Client) -> None:
    with pytest.raises(ProtocolError) as err:
        client.call("synthesize", {"text": "Hello.", "voice_data": True})
    assert err.value.code == "bad_args"


def test_a_language_the_english_model_lacks_is_unknown_language(client: Client, voice_a: tuple[str, bytes]) -> None:
    err = error_of(client, "Bonjour.", voice=voice_a[0], language="fr")
    assert err.code == "unknown_language"
    assert "en" in err.message  # names what is supported


def test_the_multilingual_model_takes_its_languages_and_refuses_others(
    slow_daemon: DaemonProcess, clips: Clips
) -> None:
    with slow_daemon.client() as c:
        name = c.voices_add(uid("ml"), data=clips.new())["name"]
        assert c.hello()["capabilities"]["languages"] == ["en", "fr", "de"]
        audio, summary = collect(c, "Bonjour.", voice=name, language="FR")
        assert len(audio) > 0
        assert summary["chunks"] == 1
        err = error_of(c, "Hola.", voice=name, language="es")
        assert err.code == "unknown_language"
        assert "fr" in err.message


@pytest.mark.parametrize(
    "options",
    [
        {"exaggeration": 2.5},
        {"exaggeration": -0.1},
        {"cfg_weight": 1.5},
        {"temperature": 0.0},
        {"temperature": 9},
        {"seed": -1},
        {"seed": 2**31},
        {"seed": 1.5},
        {"seed": "42"},
        {"exaggeration": "high"},
        {"exaggeration": True},
        {"exaggeration": float("nan")},
        {"cfg_weight": float("inf")},
        {"language": 7},
        {"speed": 1.2},
    ],
    ids=repr,
)
def test_bad_option_values_are_bad_args(client: Client, voice_a: tuple[str, bytes], options: dict) -> None:
    err = error_of(client, "Hello.", voice=voice_a[0], **options)
    assert err.code == "bad_args"
    assert next(iter(options)) in err.message


def test_options_that_are_not_an_object_are_bad_args(client: Client, voice_a: tuple[str, bytes]) -> None:
    with pytest.raises(ProtocolError) as err:
        client.call("synthesize", {"text": "Hello.", "voice": voice_a[0], "options": [1, 2]})
    assert err.value.code == "bad_args"


def test_options_in_range_are_accepted(client: Client, voice_a: tuple[str, bytes]) -> None:
    options = {"exaggeration": 2, "cfg_weight": 0.0, "temperature": 0.05, "seed": 2**31 - 1, "language": "EN"}
    audio, summary = collect(client, "Hello.", voice=voice_a[0], **options)
    assert len(audio) > 0
    assert summary["chunks"] == 1
