"""The message types: every reply and event round-trips, and the wire rules the fields declare.

Requests are round-tripped one builder each in test_requests.py; docs/protocol.md's
examples are read as their types in tests/unit/test_protocol_doc.py.
"""

from __future__ import annotations

import json

import pytest

from chatterbox_tray.ipc import messages as m
from chatterbox_tray.ipc.protocol import EVENT_TOPICS, OPS, REPLY_KINDS, ProtocolError

STATUS = {
    "state": "ready",
    "progress": 1.0,
    "message": "ready",
    "error": "",
    "variant": "turbo",
    "model_id": "turbo:1",
    "device": "cpu",
    "queue": 0,
    "reload_required": False,
    "speaker_paused": False,
    "download": None,
}
PLAYBACK = {"state": "idle", "job": None, "queue": [], "volume": 1.0, "device": "", "underruns": 0}
PLAYBACK |= {"prebuffer": "adaptive", "recent_rtf": None, "last_stop_latency_ms": None, "device_latency_ms": 4.0}

#: One message of every reply kind and event topic, as the daemon sends them.
SAMPLES: list[m.Reply | m.Event] = [
    m.Accepted(job="j1", position=0, chunks=2),
    m.Progress({"job": "j1", "waiting": True, "model": "ready"}),
    m.ChunkReply(index=0, sample_rate=24000, samples=1, text="Hi.", span=[0, 3], tokens=5, budget=50, audio=b"\0" * 4),
    m.Result({"pong": True}),
    m.ErrorReply({"code": "unknown_voice", "message": "no voice called 'x'"}),
    m.StateEvent(**STATUS),
    m.JobEvent(event="queued", job="j1", request="r-1", kind="speak", state="queued", voice="Ann", chunks=1),
    m.VoicesEvent("default", name=None),
    m.CacheEvent(None, None, None, 3),
    m.PlaybackEvent(**PLAYBACK),
    m.SettingsEvent({"rate": 1.0}, ["rate"]),
    m.WordsEvent("imported", None, 12),
]


def test_every_reply_kind_and_event_topic_has_a_type() -> None:
    assert set(m.REPLIES) == set(REPLY_KINDS) and set(m.EVENTS) == set(EVENT_TOPICS)
    assert {type(s) for s in SAMPLES} == {*m.REPLIES.values(), *m.EVENTS.values()}


@pytest.mark.parametrize("message", SAMPLES, ids=lambda s: type(s).__name__)
def test_each_reply_and_event_round_trips_through_json(message: m.Reply | m.Event) -> None:
    if isinstance(message, m.Reply):
        header = json.loads(json.dumps(message.to_header("r-1")))
        assert header["id"] == "r-1" and header["kind"] == message.kind
        assert m.Reply.from_header(header, message.buffers) == message
    else:
        header = json.loads(json.dumps(message.to_header(7)))
        assert (header["event"], header["seq"]) == (message.topic, 7)
        assert m.Event.from_header(header) == message


def test_what_is_sent_when_a_field_is_none() -> None:
    # Optional fields are left out; nullable required ones and ``sent()`` ones are null.
    assert m.CacheEvent("ab", "Ann", "memory").to_data() == {"sha256": "ab", "voice": "Ann", "tier": "memory"}
    assert m.JobEvent(event="paused").to_data() == {"event": "paused"}  # the speaker itself: no job fields
    started = {"event": "started", "job": "j1", "request": None, "voice": None}
    assert m.JobEvent(event="started", job="j1").to_data() == started
    assert m.VoicesEvent("removed", name="Ann").to_data() == {"action": "removed", "name": "Ann"}
    assert m.VoicesEvent("default", name=None).to_data() == {"action": "default", "name": None}
    # ``flag()`` and quiet defaults are sent only when they say something.
    assert m.Wait(job="j1").args == {"job": "j1"}
    assert m.Speak(text="Hi.", volume=1.0).args == {"text": "Hi.", "options": {}, "priority": "text"}
    assert m.Speak(text="Hi.", volume=0.5).args["volume"] == 0.5
    # A buffer never travels in the header.
    assert "clip" not in m.Synthesize(text="Hi.", voice_data=True, clip=b"x").args


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("voices.rename", {"name": "a"}, "missing argument 'new_name'"),
        ("voices.rename", {"name": "a", "new_name": None}, "missing argument 'new_name'"),
        ("voices.remove", {"name": 5}, "argument 'name' must be a string, not a number"),
        ("voices.default", {"clear": 1}, "argument 'clear' must be true or false"),
        ("speak", {"text": "Hi.", "volume": 2}, "argument 'volume' must be between 0.0 and 1.0"),
        ("speak", {"text": "Hi.", "rate": True}, "argument 'rate' must be a number"),
        ("speak", {"text": "Hi.", "priority": "loud"}, "priority must be one of urgent, quick, text, notification"),
        ("synthesize", {"text": "Hi.", "options": []}, "argument 'options' must be an object, not a list"),
        ("words.import", {"rules": {}}, "argument 'rules' must be an array, not an object"),
        ("cancel", {}, "give 'job' or 'request'"),
        ("settings.set", {}, "missing argument 'values'"),
    ],
)
def test_a_wrong_argument_gets_bad_args_naming_it(op: str, args: dict, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        m.Request.from_header({"v": 1, "id": "r-1", "op": op, "args": args})
    assert caught.value.code == "bad_args" and message in caught.value.message


def test_unknown_arguments_are_ignored_but_unknown_options_refused() -> None:
    header = {"v": 1, "id": "r-1", "op": "voices.remove", "args": {"name": "a", "later": 1}}
    assert m.Request.from_header(header) == m.VoicesRemove("a")
    with pytest.raises(ProtocolError, match=r"unknown option\(s\): speed"):
        m.SpeechOptions.from_data({"speed": 2})
    with pytest.raises(ProtocolError, match=r"between 0\.05 and 2\.0"):
        m.SpeechOptions.from_data({"temperature": 0.0})
    with pytest.raises(ProtocolError, match="finite"):
        m.SpeechOptions.from_data({"exaggeration": float("nan")})


def test_a_clip_check_needs_no_name_and_a_clip_travels_as_buffer_0() -> None:
    header = {"v": 1, "id": "r-1", "op": "voices.add", "args": {"check": True}}
    assert m.Request.from_header(header, [b"RIFF"]) == m.VoicesAdd(name="", clip=b"RIFF", check=True)
    with pytest.raises(ProtocolError, match="missing argument 'name'"):
        m.Request.from_header({**header, "args": {}}, [b"RIFF"])


def test_the_header_is_checked_before_the_arguments() -> None:
    with pytest.raises(ProtocolError) as caught:
        m.Request.from_header({"v": 2, "id": "r-1", "op": "ping"})
    assert caught.value.code == "unsupported_version"
    with pytest.raises(ProtocolError) as caught:
        m.Request.from_header({"v": 1, "id": "r-1", "op": "pong"})
    assert caught.value.code == "unknown_op"
    with pytest.raises(ProtocolError, match="unknown reply kind"):
        m.Reply.from_header({"kind": "shrug"})
    with pytest.raises(ProtocolError, match="unknown event topic"):
        m.Event.from_header({"event": "weather", "data": {}})


def test_a_raw_request_sends_what_it_is_given() -> None:
    raw = m.RawRequest("voices.add", {"name": 7}, (b"x",))
    assert raw.op == "voices.add" and raw.args == {"name": 7} and raw.buffers == (b"x",)
    assert raw.to_header("r-1") == {"v": 1, "id": "r-1", "op": "voices.add", "args": {"name": 7}}


def test_the_typed_results_round_trip_and_a_dropped_speech_says_only_that() -> None:
    dropped = m.SpeakResult("j3", True, None, "notification")
    assert dropped.to_data() == {"job": "j3", "dropped": True, "position": None, "priority": "notification"}
    assert m.SpeakResult.from_data(dropped.to_data()) == dropped
    end = m.WaitResult("j3", "speak", "cancelled", None, {"played_s": 0.0}, {"code": "cancelled", "message": "x"})
    assert m.WaitResult.from_data(json.loads(json.dumps(end.to_data()))) == end
    assert set(m.RESULTS) <= set(OPS)


def test_a_request_reads_its_own_result_by_type() -> None:
    from chatterbox_tray.ipc import requests as rq

    assert m.Status().read_result(STATUS) == m.StateEvent(**STATUS)
    assert isinstance(rq.voices_check(b"c").read_result({"checked": True}), m.ClipChecked)
    assert isinstance(rq.voices_add("Ann", b"c").read_result({"name": "Ann"}), m.VoiceInfo)
    assert m.Stats().read_result({"gpu_name": "x"}) == {"gpu_name": "x"}  # no type: the object as it came
    assert m.RawRequest("status").read_result({"state": 3}) == {"state": 3}  # unchecked
    with pytest.raises(ProtocolError, match="'queue' must be an integer"):
        m.Status().read_result({**STATUS, "queue": "many"})


def test_a_result_holds_typed_objects_and_writes_them_back_as_they_came() -> None:
    voice = {"name": "Ann", "sha256": "ab", "duration_s": 7.0, "sample_rate": 24000, "added_at": "t"}
    voice |= {"source_name": "", "cache": None, "default": True}
    listed = m.VoicesListResult.from_data(json.loads(json.dumps({"voices": [voice], "default": "Ann"})))
    assert listed.voices == [m.VoiceInfo(**voice)] and listed.voices[0].default
    assert json.dumps(listed.to_data()) == json.dumps({"voices": [voice], "default": "Ann"})  # the same bytes
    assert m.Result.of(listed).to_data() == {"result": {"voices": [voice], "default": "Ann"}}
    with pytest.raises(ProtocolError, match="argument 'sample_rate' must be an integer"):
        m.VoicesListResult.from_data({"voices": [{**voice, "sample_rate": "fast"}]})


def test_what_the_daemon_sends_may_lack_a_field_but_not_have_a_wrong_one() -> None:
    # A field an older daemon did not send yet reads as its zero value, as `.get(name) or 0` did.
    state = m.Event.from_header({"event": "state", "data": {"state": "ready", "progress": 1}})
    assert isinstance(state, m.StateEvent)
    assert (state.state, state.progress, state.queue, state.message, state.download) == ("ready", 1.0, 0, "", None)
    with pytest.raises(ProtocolError, match="argument 'queue' must be an integer"):
        m.Event.from_header({"event": "state", "data": {"state": "ready", "queue": "many"}})
    # A request is the daemon's to refuse: nothing missing is filled in.
    with pytest.raises(ProtocolError, match="missing argument 'name'"):
        m.VoicesRemove.from_data({})
