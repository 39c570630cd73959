"""Property-based fuzzing of one real daemon over a real socket (issue 12, section 6).

A fake-engine daemon gets, on a plain ZeroMQ DEALER socket:

- every op but ``shutdown`` with arguments drawn from the documented names
  and any JSON values, and with random buffers;
- signed headers of any shape;
- frames of random bytes.

For each, every reply must be one of the shapes docs/protocol.md lists (its
"Replies" table and "The reply stream"), in a documented order, with a
documented error code and a plain message; none may be ``internal`` (that
would be a bug); and the daemon must still answer ``ping`` at the end. A
message that gets no reply must be followed by a ``ping`` that does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatterbox_tray.ipc.limits import OPTION_RANGES
from chatterbox_tray.ipc.protocol import (
    ERROR_CODES,
    FINAL_KINDS,
    OPS,
    PROTOCOL_VERSION,
    REPLY_KINDS,
    decode,
    encode,
)
from tests.support.daemons import DaemonProcess, voiced_tone
from tests.support.fuzz import INTERNALS, SCALARS
from tests.support.fuzz import json_values as fuzz_json

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: Every argument name the protocol documents, plus a stray one.
ARG_NAMES = [
    "name", "new_name", "source_name", "path", "text", "voice", "voice_data", "voice_path", "options",
    "priority", "quick", "job", "request", "all", "stop_on_disconnect", "device", "volume", "values",
    "clear", "exaggeration", "cfg_weight", "temperature", "seed", "language", "bogus",
]  # fmt: skip
OPTION_NAMES = sorted(OPTION_RANGES)
CHUNK_FIELDS = ("index", "sample_rate", "samples", "text", "span", "tokens", "budget", "piece", "final")
#: A reply stream may stay open while progress keeps coming (a wait on a paused job): stop reading then.
STREAM_READ_S = 8.0
GAP_S = 15.0

#: Besides the shared values: names, languages and priorities a daemon knows, and path-like strings.
scalars = SCALARS | st.sampled_from(["", "Alpha", "narrator", "en", "urgent", "text", "j1", "/", "~"])
json_values = fuzz_json(scalars, 3)
#: Settings to stay away from: they would stop the fuzzed daemon from doing anything.
SAFE_VALUES = st.dictionaries(
    st.sampled_from(["volume", "sentence_pause_ms", "prebuffer", "exaggeration", "bogus", "max_chunk_chars"]),
    json_values,
    max_size=2,
)
args_strategy = st.dictionaries(st.sampled_from(ARG_NAMES), json_values, max_size=4)


class RawClient:
    """A DEALER socket that signs what it sends and checks every reply it reads."""

    def __init__(self, d: DaemonProcess) -> None:
        assert d.info is not None
        self.key = d.info.key_bytes
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(d.info.requests)
        self.ops: dict[str, str] = {}  # request id -> op, for replies that come late
        self.kinds_seen: dict[str, int] = {}

    def close(self) -> None:
        self.sock.close()

    def send(self, header: dict[str, Any], buffers: tuple[bytes, ...] = ()) -> None:
        if isinstance(header.get("id"), str):
            self.ops[header["id"]] = header.get("op") if isinstance(header.get("op"), str) else ""
        self.sock.send_multipart(encode(self.key, header, buffers))

    def send_raw(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def request(self, op: Any, args: Any, buffers: tuple[bytes, ...] = ()) -> list[dict[str, Any]]:
        """Send one request; return the replies to it (all checked)."""
        req_id = uuid.uuid4().hex
        self.send({"v": PROTOCOL_VERSION, "id": req_id, "op": op, "args": args}, buffers)
        return self.replies(req_id)

    def replies(self, req_id: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        started = time.monotonic()
        while True:
            if not self.sock.poll(GAP_S * 1000):
                raise AssertionError(f"no reply to {req_id} ({self.ops.get(req_id)}) within {GAP_S} s; got {got}")
            header, _buffers = self.read()
            if header["id"] != req_id:
                continue  # a late reply to an earlier request (checked in read)
            got.append(header)
            if header["kind"] in FINAL_KINDS:
                check_stream(self.ops.get(req_id, ""), got)
                return got
            if time.monotonic() - started > STREAM_READ_S and all(h["kind"] == "progress" for h in got[-3:]):
                check_stream(self.ops.get(req_id, ""), got, final=False)
                return got  # a wait on a job that will not end soon: alive, documented

    def read(self) -> tuple[dict[str, Any], tuple[bytes, ...]]:
        msg = decode(self.key, self.sock.recv_multipart())
        check_reply(msg.header, msg.buffers, self.ops.get(msg.header.get("id"), None))
        self.kinds_seen[msg.header["kind"]] = self.kinds_seen.get(msg.header["kind"], 0) + 1
        return msg.header, msg.buffers

    def ping_answered(self) -> None:
        """A ping gets its result (the daemon is up and its loop free)."""
        got = self.request("ping", {})
        assert got[-1]["kind"] == "result", got


def check_reply(header: dict[str, Any], buffers: tuple[bytes, ...], op: str | None) -> None:
    """One reply has a documented shape (docs/protocol.md, Replies)."""
    assert header.get("v") == PROTOCOL_VERSION, header
    # An empty id only on the bad_message of a request without a usable one.
    assert isinstance(header.get("id"), str) and len(header["id"]) <= 128, header
    if not header["id"]:
        assert header.get("error", {}).get("code") == "bad_message", header
    kind = header.get("kind")
    assert kind in REPLY_KINDS, header
    if kind == "error":
        error = header["error"]
        assert set(error) == {"code", "message"}, header
        assert error["code"] in ERROR_CODES, header
        assert error["code"] != "internal", f"an internal error is a bug: {header}"
        assert isinstance(error["message"], str) and error["message"], header
        assert not INTERNALS.search(error["message"]), header
        assert not buffers
    elif kind == "result":
        assert isinstance(header["result"], dict), header
    elif kind == "accepted":
        assert op in (None, "synthesize"), header
        assert isinstance(header["job"], str) and isinstance(header["position"], int)
        assert isinstance(header["chunks"], int) and header["chunks"] > 0
    elif kind == "progress":
        assert op in (None, "synthesize", "wait"), header
        assert isinstance(header["progress"], dict), header
    elif kind == "chunk":
        assert op in (None, "synthesize"), header
        assert all(f in header for f in CHUNK_FIELDS), header
        assert len(buffers) == 1 and len(buffers[0]) == 4 * header["samples"], header


def check_stream(op: str, headers: list[dict[str, Any]], final: bool = True) -> None:
    """The replies to one request come in a documented order (The reply stream)."""
    kinds = [h["kind"] for h in headers]
    if final:
        assert kinds[-1] in FINAL_KINDS and not FINAL_KINDS & set(kinds[:-1]), kinds
    if op == "synthesize":
        if kinds != ["error"]:
            assert kinds[0] == "accepted" and "accepted" not in kinds[1:], kinds
            assert set(kinds[1:-1]) <= {"progress", "chunk"}, kinds
    elif op == "wait":
        assert set(kinds[:-1] if final else kinds) <= {"progress"}, kinds
    else:
        assert len(kinds) == 1, kinds


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[DaemonProcess]:
    """A daemon of its own: fuzzing changes its settings and voices."""
    d = DaemonProcess().start()
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def raw(fuzzed: DaemonProcess) -> Iterator[RawClient]:
    client = RawClient(fuzzed)
    # Something for the names to hit: a voice, the default.
    clip = voiced_tone(6.0)
    assert client.request("voices.add", {"name": "Alpha"}, (clip,))[-1]["kind"] == "result"
    yield client
    client.close()


CLIP = voiced_tone(5.5, f0=180.0)
buffers_strategy = st.one_of(
    st.just(()),
    st.lists(st.binary(max_size=64), min_size=1, max_size=2).map(tuple),
    st.just((CLIP,)),
)


@settings(FUZZ, max_examples=2000)
@given(
    op=st.sampled_from(sorted(set(OPS) - {"shutdown", "settings.set"})),
    args=st.one_of(args_strategy, json_values),
    buffers=buffers_strategy,
)
def test_every_op_with_any_arguments(fuzzed: DaemonProcess, raw: RawClient, op: str, args: Any, buffers) -> None:
    raw.request(op, args, buffers)
    assert fuzzed.alive


@settings(FUZZ, max_examples=300)
@given(values=st.one_of(SAFE_VALUES, json_values))
def test_settings_set_with_any_values(fuzzed: DaemonProcess, raw: RawClient, values: Any) -> None:
    raw.request("settings.set", {"values": values})
    assert fuzzed.alive


speech_args = st.fixed_dictionaries(
    {"text": st.one_of(st.text(st.characters(codec="utf-8"), min_size=1, max_size=80), json_values)},
    optional={
        "voice": st.one_of(st.just("Alpha"), st.just("alpha"), json_values),
        "voice_data": st.booleans(),
        "options": st.one_of(
            st.dictionaries(
                st.sampled_from(["exaggeration", "cfg_weight", "temperature", "seed", "language"]), scalars
            ),
            json_values,
        ),
        "priority": st.one_of(st.sampled_from(["urgent", "message", "text", "notification", "progress"]), scalars),
        "quick": st.booleans(),
    },
)


@settings(FUZZ, max_examples=600)
@given(op=st.sampled_from(["synthesize", "speak"]), args=speech_args, buffers=buffers_strategy)
def test_speech_with_nearly_right_arguments(
    fuzzed: DaemonProcess, raw: RawClient, op: str, args: dict, buffers
) -> None:
    if "voice" not in args and "voice_data" not in args:
        args["voice"] = "Alpha"
    raw.request(op, args, buffers)
    assert fuzzed.alive


headers = st.dictionaries(
    st.sampled_from(["v", "id", "op", "args", "kind", "x"]),
    st.one_of(json_values, st.sampled_from(sorted(set(OPS) - {"shutdown"}))),
    max_size=5,
)


@settings(FUZZ, max_examples=400)
@given(header=headers, buffers=st.lists(st.binary(max_size=16), max_size=2).map(tuple))
def test_any_signed_header(fuzzed: DaemonProcess, raw: RawClient, header: dict, buffers) -> None:
    if header.get("op") == "shutdown":
        header["op"] = "ping"
    raw.send(header, buffers)
    # Answered (with a documented shape, checked on reading) or dropped: either
    # way the next ping is answered.
    raw.ping_answered()
    assert fuzzed.alive


@settings(FUZZ, max_examples=300)
@given(frames=st.lists(st.binary(max_size=80), min_size=1, max_size=4))
def test_any_frames(fuzzed: DaemonProcess, raw: RawClient, frames: list[bytes]) -> None:
    raw.send_raw(frames)
    raw.ping_answered()
    assert fuzzed.alive


def test_the_fuzzed_daemon_is_still_whole(fuzzed: DaemonProcess, raw: RawClient) -> None:
    """After all of the above: alive, serving, and its log free of handler failures."""
    raw.ping_answered()
    status = raw.request("status", {})[-1]
    assert status["kind"] == "result"
    assert fuzzed.alive
    assert "handler for" not in fuzzed.log_text()  # the server's line for an internal error
    print("reply kinds seen:", raw.kinds_seen)
    # The fuzz reached past the argument checks: jobs were accepted and made audio.
    for kind in ("error", "result", "accepted", "chunk"):
        assert raw.kinds_seen.get(kind, 0) > 10, raw.kinds_seen
