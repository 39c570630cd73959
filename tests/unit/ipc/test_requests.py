"""The client core in process: one builder per op, ids, frames, replies, byte figures.

Every client (the CLI, Speech Dispatcher, the tray app) sends what
``ipc.requests`` builds, so these tests pin each request's shape and check it
against the protocol's own validation, without a daemon.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chatterbox_tray.ipc import core, protocol
from chatterbox_tray.ipc import messages as m
from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.formatting import human_bytes
from chatterbox_tray.ipc.requests import Request

#: One call of every builder, as the clients make them.
BUILT: dict[str, Request] = {
    "hello": rq.hello(),
    "ping": rq.ping(),
    "status": rq.status(),
    "retry_load": rq.retry_load(),
    "voices.list": rq.voices_list(),
    "voices.add": rq.voices_add("Narrator", b"RIFF....", "clip.wav"),
    "voices.rename": rq.voices_rename("a", "b"),
    "voices.remove": rq.voices_remove("a"),
    "voices.default": rq.voices_default("a"),
    "voices.play": rq.voices_play("a"),
    "synthesize": rq.synthesize("Hello.", voice="a", options={"seed": 1}),
    "cancel": rq.cancel("j-1"),
    "speak": rq.speak("Hello.", priority="quick"),
    "wait": rq.wait("j-1"),
    "stop": rq.stop(all=True),
    "pause": rq.pause(),
    "resume": rq.resume(),
    "skip": rq.skip(),
    "playback": rq.playback(),
    "settings.get": rq.settings_get(),
    "settings.set": rq.settings_set({"device": "cpu"}),
    "reload": rq.reload(),
    "audio.devices": rq.audio_devices(),
    "audio.set": rq.audio_set(volume=0.5),
    "cache.stats": rq.cache_stats(),
    "cache.clear": rq.cache_clear(),
    "stats": rq.stats(),
    "shutdown": rq.shutdown(),
    "words.list": rq.words_list(),
    "words.add": rq.words_add("nginx", "engine x", old_word="NGINX"),
    "words.remove": rq.words_remove("nginx"),
    "words.import": rq.words_import([{"word": "SQL", "say": "sequel"}], merge=False),
    "text.preview": rq.text_preview("Run nginx. [pause 1s] Done."),
    "tags.list": rq.tags_list(),
}


def test_every_op_has_one_builder_and_its_requests_pass_the_protocols_check() -> None:
    assert set(BUILT) == set(protocol.OPS)
    for op, request in BUILT.items():
        assert request.op == op
        assert callable(getattr(rq, op.replace(".", "_")))
        req_id, checked_op, args = protocol.check_request(request.to_header("r-1"))
        assert (req_id, checked_op, args) == ("r-1", op, request.args)
        json.dumps(request.args)  # the header is JSON: nothing else may be in the arguments
        # Read back as the daemon reads it: the same type, the same fields.
        assert Request.from_header(request.to_header("r-1"), request.buffers) == request


def test_speak_builds_the_text_voice_priority_volume_and_options() -> None:
    request = rq.speak(
        "Hi.", voice="narrator", priority="urgent", volume=0.25, options={"exaggeration": 0.7, "seed": 3}
    )
    assert request == m.Speak(text="Hi.", voice="narrator", priority="urgent", volume=0.25, options=request.options)
    assert request.args == {
        "text": "Hi.",
        "options": {"exaggeration": 0.7, "seed": 3},
        "priority": "urgent",
        "volume": 0.25,
        "voice": "narrator",
    }
    assert not request.stream and request.timeout is None
    # The defaults: the text priority, no volume, no voice, no options (the default voice).
    assert rq.speak("Hi.").args == {"text": "Hi.", "options": {}, "priority": "text"}


def test_a_voice_path_is_sent_absolute_and_voice_bytes_travel_as_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    by_path = rq.speak("Hi.", voice_path="clip.wav")
    assert by_path.args["voice_path"] == str(tmp_path / "clip.wav")  # the daemon has another working folder
    assert by_path.buffers == ()
    by_data = rq.synthesize("Hi.", voice_data=b"\x00\x01")
    assert by_data.args["voice_data"] is True and by_data.buffers == (b"\x00\x01",)
    assert "voice" not in by_data.args and "voice_path" not in by_data.args


def test_synthesize_and_speak_share_the_text_voice_and_options() -> None:
    said = rq.speak("Two. Sentences.", voice="v", options={"temperature": 0.6})
    made = rq.synthesize("Two. Sentences.", voice="v", options={"temperature": 0.6})
    assert made.args == {k: v for k, v in said.args.items() if k != "priority"}
    assert made.stream and not said.stream  # synthesize streams chunks; speak answers at once


def test_the_options_are_copied_not_shared() -> None:
    options = {"seed": 1}
    request = rq.speak("Hi.", options=options)
    options["seed"] = 2
    assert request.args["options"] == {"seed": 1}


def test_the_small_builders() -> None:
    added = rq.voices_add("n", bytearray(b"ab"))
    assert (added.args, added.buffers, added.timeout, added.slow) == (
        {"name": "n", "source_name": ""},
        (b"ab",),
        rq.VOICES_ADD_TIMEOUT,
        True,
    )
    assert rq.voices_check(b"ab").args == {"source_name": "", "check": True}
    assert not [op for op, request in BUILT.items() if request.slow and op != "voices.add"]
    assert rq.voices_default().args == {}
    assert rq.voices_default(clear=True).args == {"clear": True}
    assert rq.cancel(request="r-9").args == {"request": "r-9"}
    with pytest.raises(ValueError):
        rq.cancel()
    with pytest.raises(ValueError):
        rq.cancel("j-1", request="r-1")
    waiting = rq.wait("j-1", stop_on_disconnect=True)
    assert waiting.args == {"job": "j-1", "stop_on_disconnect": True} and waiting.stream
    assert rq.wait("j-1").args == {"job": "j-1"}
    assert rq.stop().args == {"all": False}
    assert rq.stop("j-2").args == {"all": False, "job": "j-2"}
    assert rq.audio_set().args == {}
    assert rq.audio_set(device="").args == {"device": ""}  # "" is the system default, not "unset"
    assert rq.cache_clear("v").args == {"voice": "v"} and rq.cache_clear("").args == {}
    assert rq.settings_set({"a": 1}).args == {"values": {"a": 1}}


def test_timeouts_by_kind_of_request() -> None:
    assert core.default_timeout(rq.status()) == core.DEFAULT_TIMEOUT
    assert core.default_timeout(rq.status(), plain=2.5) == 2.5
    assert core.default_timeout(rq.wait("j")) == core.STREAM_GAP_TIMEOUT
    assert core.default_timeout(rq.synthesize("x")) == core.STREAM_GAP_TIMEOUT
    assert core.default_timeout(rq.voices_add("n", b"x")) == rq.VOICES_ADD_TIMEOUT


def test_the_core_signs_what_it_sends_and_refuses_what_it_cannot_verify() -> None:
    client, other = core.ClientCore(b"k" * 32), core.ClientCore(b"x" * 32)
    ids = {client.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert not ids & {other.new_id() for _ in range(100)}  # another client's ids never collide with ours
    request = rq.voices_add("n", b"clip-bytes", "c.wav")
    frames = client.encode("r-1", request)
    msg = client.decode_reply(frames)
    assert msg.header["id"] == "r-1" and msg.header["op"] == "voices.add" and msg.header["args"] == request.args
    assert list(msg.buffers) == [b"clip-bytes"]
    with pytest.raises(protocol.ProtocolError):
        other.decode_reply(frames)
    assert client.decode_event([b"job", *frames]).header["id"] == "r-1"


def test_replies_are_read_one_way() -> None:
    reply = m.Reply.from_header({"kind": "error", "error": {"code": "unknown_voice", "message": "no voice 'x'"}})
    assert isinstance(reply, m.ErrorReply)
    error = reply.raised()
    assert (error.code, error.message) == ("unknown_voice", "no voice 'x'")
    assert m.ErrorReply({}).raised().code == "internal"
    assert m.Reply.from_header({"kind": "result", "result": {"a": 1}}) == m.Result({"a": 1})
    assert m.Reply.from_header({"kind": "result"}) == m.Result({})  # an older daemon's gap reads as empty
    with pytest.raises(protocol.ProtocolError, match="unknown reply kind"):
        m.Reply.from_header({"kind": "shrug"})


def test_pid_alive() -> None:
    assert core.pid_alive(os.getpid())
    assert not core.pid_alive(0) and not core.pid_alive(-1)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "–"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3.5 * 1024**3, "3.5 GiB"),
        (2 * 1024**4, "2.0 TiB"),
        (5000 * 1024**4, "5000.0 TiB"),
    ],
)
def test_human_bytes(n: float | None, text: str) -> None:
    assert human_bytes(n) == text


def test_human_bytes_says_what_it_is_told_for_no_figure() -> None:
    assert human_bytes(None, missing="-") == "-"
