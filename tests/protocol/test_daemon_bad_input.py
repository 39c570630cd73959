"""Bad and hostile input over a raw DEALER socket: the daemon answers or drops, and goes on.

DESIGN.md: a malformed, unknown, oversized or hostile message gets an error
reply or is dropped with a log line; it never stops the daemon or another
client's job. Each test sends its message, checks the answer (or that none
came and the drop was logged), then checks that the daemon still answers a
ping and still completes a job.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import zmq

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import (
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSION,
    Message,
    ProtocolError,
    decode,
    encode,
    sign,
)
from tests.support.daemons import Clips, DaemonProcess, accepted, uid

#: How long to wait for a reply that should not come.
SILENCE_MS = 300


#: What must never reach a person: object reprs, addresses, tracebacks.
INTERNALS = re.compile(r"0x[0-9a-f]{6}|Traceback|<.* object at|_io\.|File \"")


def assert_for_people(message: str) -> None:
    """An error message a person can read: no Python internals in it."""
    assert message and not INTERNALS.search(message), f"internals in an error message: {message!r}"


class RawPeer:
    """A DEALER socket that sends whatever frames it is given."""

    def __init__(self, daemon: DaemonProcess) -> None:
        assert daemon.info is not None
        self.key = daemon.info.key_bytes
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(daemon.info.requests)

    def frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def signed(self, head: bytes, buffers: tuple[bytes, ...] = ()) -> None:
        """A header's raw bytes with a good signature."""
        self.frames([sign(self.key, [head, *buffers]), head, *buffers])

    def request(self, header: dict[str, Any], buffers: tuple[bytes, ...] = ()) -> None:
        self.frames(encode(self.key, header, buffers))

    def reply(self, timeout_ms: int = 5000) -> Message | None:
        if not self.sock.poll(timeout_ms):
            return None
        return decode(self.key, self.sock.recv_multipart())

    def error(self) -> dict[str, Any]:
        """The next reply, which must be an error; its header."""
        msg = self.reply()
        assert msg is not None, "no reply"
        assert msg.header["kind"] == "error", msg.header
        assert_for_people(msg.header["error"]["message"])
        return msg.header

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
def peer(daemon: DaemonProcess) -> RawPeer:
    raw = RawPeer(daemon)
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def voice(daemon: DaemonProcess, clips: Clips) -> str:
    with daemon.client() as c:
        return c.voices_add(uid("bad"), data=clips.new())["name"]


@pytest.fixture
def still_serving(daemon: DaemonProcess, voice: str):
    """After the test: the daemon is alive, answers a ping and completes a job."""
    yield
    assert daemon.alive, daemon.log_text()
    with daemon.client(timeout=5.0) as c:
        assert c.call("ping")["pong"] is True
        audio, rate = c.synthesize("Still here.", voice=voice).collect()
    assert rate == 24_000
    assert len(audio) > 0


def header(op: str = "ping", args: Any = None, **fields: Any) -> dict[str, Any]:
    head: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": uid("raw"), "op": op}
    if args is not None:
        head["args"] = args
    head.update(fields)
    return head


def drops(daemon: DaemonProcess) -> int:
    return daemon.log_text().count("dropped")


pytestmark = pytest.mark.usefixtures("still_serving")


# -- frames that cannot be read: dropped with a log line --------------------------------


@pytest.mark.parametrize(
    "frames",
    [
        [b""],
        [b"garbage"],
        [b"\x00\xff" * 100],
        [b"not a signature", b"{}", b"more"],
        [b"", b""],
    ],
    ids=["empty", "one-frame", "binary", "three-frames", "two-empty"],
)
def test_garbage_frames_are_dropped_and_logged(daemon: DaemonProcess, peer: RawPeer, frames: list[bytes]) -> None:
    before = drops(daemon)
    peer.frames(frames)
    assert peer.reply(SILENCE_MS) is None
    assert drops(daemon) == before + 1


def test_a_bad_signature_is_dropped_and_logged(daemon: DaemonProcess, peer: RawPeer) -> None:
    before = daemon.log_text().count("bad signature")
    frames = encode(b"not-the-key", header())
    peer.frames(frames)
    assert peer.reply(SILENCE_MS) is None
    # The same request signed with the key is answered: only the signature was wrong.
    peer.request(header())
    msg = peer.reply()
    assert msg is not None and msg.header["result"]["pong"] is True
    assert daemon.log_text().count("bad signature") == before + 1


def test_a_tampered_buffer_breaks_the_signature(daemon: DaemonProcess, peer: RawPeer, clips: Clips) -> None:
    frames = encode(peer.key, header("voices.add", {"name": uid("tamper")}), [clips.new()])
    frames[-1] = frames[-1][:-1] + bytes([frames[-1][-1] ^ 0xFF])
    peer.frames(frames)
    assert peer.reply(SILENCE_MS) is None


@pytest.mark.parametrize(
    "head",
    [
        b"{not json",
        b"\xff\xfe{}",
        b'["a", "list"]',
        b'"a string"',
        b"[" * 50_000,  # deeper than Python's recursion limit
        b'{"v": 1, "id": "x", "op": "ping", "n": ' + b"9" * 5000 + b"}",  # over int's digit limit
    ],
    ids=["not-json", "not-utf8", "list", "string", "deep-nesting", "huge-integer"],
)
def test_a_signed_header_that_is_not_a_json_object_is_dropped(
    daemon: DaemonProcess, peer: RawPeer, head: bytes
) -> None:
    before = drops(daemon)
    peer.signed(head)
    assert peer.reply(SILENCE_MS) is None
    assert drops(daemon) == before + 1


# -- requests that can be read but are wrong: an error reply ----------------------------


def test_a_header_without_an_id_gets_bad_message(peer: RawPeer) -> None:
    head = header()
    del head["id"]
    peer.request(head)
    error = peer.error()
    assert error["error"]["code"] == "bad_message"
    assert error["id"] == ""


@pytest.mark.parametrize("req_id", [7, "", "x" * 129, None], ids=repr)
def test_a_bad_id_gets_bad_message(peer: RawPeer, req_id: Any) -> None:
    peer.request(header(id=req_id))
    assert peer.error()["error"]["code"] == "bad_message"


def test_another_protocol_version_gets_unsupported_version(peer: RawPeer) -> None:
    head = header(v=PROTOCOL_VERSION + 1)
    peer.request(head)
    error = peer.error()
    assert error["id"] == head["id"]
    assert error["error"]["code"] == "unsupported_version"


@pytest.mark.parametrize("op", ["no.such.op", "PING", "", "__init__"])
def test_an_unknown_op_gets_unknown_op(peer: RawPeer, op: str) -> None:
    head = header(op)
    peer.request(head)
    error = peer.error()
    assert error["id"] == head["id"]
    assert error["error"]["code"] == "unknown_op"


@pytest.mark.parametrize("op", [None, 5, ["ping"]], ids=repr)
def test_an_op_that_is_not_a_string_gets_bad_message(peer: RawPeer, op: Any) -> None:
    peer.request(header(op=op))
    assert peer.error()["error"]["code"] == "bad_message"


@pytest.mark.parametrize("args", [[1, 2], "text", 3], ids=repr)
def test_args_that_are_not_an_object_get_bad_args(peer: RawPeer, args: Any) -> None:
    peer.request(header("status", args))
    assert peer.error()["error"]["code"] == "bad_args"


@pytest.mark.parametrize(
    ("op", "args", "names"),
    [
        ("synthesize", {}, "text"),
        ("synthesize", {"text": 42}, "text"),
        ("synthesize", {"text": "Hi.", "voice": ["a"]}, "voice"),
        ("synthesize", {"text": "Hi.", "voice_data": "yes"}, "voice_data"),
        ("synthesize", {"text": "Hi.", "voice_path": 3}, "voice_path"),
        ("voices.add", {}, "name"),
        ("voices.add", {"name": 12}, "name"),
        ("voices.rename", {"name": "a"}, "new_name"),
        ("voices.rename", {"name": "a", "new_name": False}, "new_name"),
        ("voices.remove", {}, "name"),
        ("voices.default", {"clear": "yes"}, "clear"),
        ("voices.default", {"name": 1.5}, "name"),
        ("cancel", {"job": ["j1"]}, "job"),
        ("cache.clear", {"voice": {}}, "voice"),
    ],
)
def test_missing_or_mistyped_arguments_get_bad_args_naming_them(
    peer: RawPeer, op: str, args: dict[str, Any], names: str
) -> None:
    peer.request(header(op, args))
    error = peer.error()["error"]
    assert error["code"] == "bad_args"
    assert repr(names) in error["message"]


def test_unknown_arguments_of_a_quick_op_are_ignored(peer: RawPeer) -> None:
    peer.request(header("ping", {"extra": [1, 2, 3]}), (b"an unexpected buffer",))
    msg = peer.reply()
    assert msg is not None and msg.header["result"]["pong"] is True


def test_an_oversized_header_gets_too_large(daemon: DaemonProcess, peer: RawPeer) -> None:
    head = header("ping", {"padding": "x" * (MAX_HEADER_BYTES + 1)})
    peer.request(head)
    error = peer.error()
    assert error["id"] == head["id"]
    assert error["error"]["code"] == "too_large"


def test_a_lone_surrogate_in_the_text_gets_bad_message(peer: RawPeer, voice: str) -> None:
    # Valid JSON (an escaped surrogate), but not valid Unicode: the daemon must
    # not echo it into a reply or event it then cannot encode.
    head = header("synthesize", {"text": "Hello \\ud800 there.", "voice": voice})
    raw = json.dumps(head).replace("\\\\ud800", "\\ud800").encode()
    peer.signed(raw)
    error = peer.error()
    assert error["id"] == head["id"]
    assert error["error"]["code"] == "bad_message"


def test_a_lone_surrogate_in_the_id_is_dropped(daemon: DaemonProcess, peer: RawPeer) -> None:
    raw = b'{"v": 1, "id": "\\udc80", "op": "ping"}'
    peer.signed(raw)
    assert peer.reply(SILENCE_MS) is None


def test_a_message_over_the_frame_limit_is_cut_off_by_zeromq(daemon: DaemonProcess) -> None:
    big = RawPeer(daemon)
    try:
        big.request(header("voices.add", {"name": uid("huge")}), (bytes(MAX_FRAME_BYTES + 1),))
        assert big.reply(SILENCE_MS) is None
        # libzmq dropped the connection; the socket reconnects and is served again.
        head = header()
        big.request(head)
        msg = big.reply()
        assert msg is not None and msg.header["id"] == head["id"]
    finally:
        big.close()


# -- clips that are not audio -----------------------------------------------------------


def corrupt_wav(clips: Clips) -> bytes:
    """A WAV whose header survives but whose format chunk is nonsense."""
    data = bytearray(clips.new())
    fmt = data.index(b"fmt ")
    data[fmt + 8 : fmt + 24] = b"\xff" * 16
    return bytes(data)


@pytest.mark.parametrize(
    "kind",
    ["text", "zeros", "corrupt-wav", "truncated-header"],
)
def test_clips_that_are_not_audio_are_clip_undecodable(client: Client, clips: Clips, kind: str) -> None:
    data = {
        "text": b"This is a text file, not audio.\n" * 200,
        "zeros": bytes(50_000),
        "corrupt-wav": corrupt_wav(clips),
        "truncated-header": clips.new()[:30],
    }[kind]
    with pytest.raises(ProtocolError) as err:
        client.voices_add(uid("junk"), data=data)
    assert err.value.code == "clip_undecodable"
    assert_for_people(err.value.message)
    with pytest.raises(ProtocolError) as err:
        client.synthesize("Hello.", voice_data=data).collect()
    assert err.value.code == "clip_undecodable"
    assert_for_people(err.value.message)
    path = clips.write(data, f"{uid('junk')}.wav")
    with pytest.raises(ProtocolError) as err:
        client.synthesize("Hello.", voice_path=path).collect()
    assert err.value.code == "clip_undecodable"
    assert_for_people(err.value.message)
    assert "as audio" in err.value.message  # says what was wrong, and what to use instead
    assert "WAV" in err.value.message


def test_a_text_file_given_as_a_voice_path_is_clip_undecodable(client: Client, clips: Clips) -> None:
    path = clips.folder / f"{uid('notes')}.txt"
    path.write_text("shopping list: eggs, milk\n" * 100)
    with pytest.raises(ProtocolError) as err:
        client.call("voices.add", {"name": uid("txt"), "path": str(path)})
    assert err.value.code == "clip_undecodable"


def test_a_truncated_wav_body_is_still_judged_on_what_is_left(client: Client) -> None:
    buf = io.BytesIO()
    t = np.arange(24_000 * 7) / 24_000
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24_000, format="WAV")
    cut = buf.getvalue()[: 44 + 2 * 24_000 * 2]  # two seconds of the seven
    with pytest.raises(ProtocolError) as err:
        client.voices_add(uid("cut"), data=cut)
    assert err.value.code == "clip_too_short"


# -- a running job survives all of it ------------------------------------------------------


def test_a_running_job_completes_while_hostile_messages_arrive(slow_daemon: DaemonProcess, clips: Clips) -> None:
    with slow_daemon.client() as c:
        name = c.voices_add(uid("busy"), data=clips.new())["name"]
    worker = slow_daemon.client()
    synthesis = worker.synthesize("One. Two. Three. Four. Five. Six.", voice=name)
    accepted(worker, synthesis)
    attacker = RawPeer(slow_daemon)
    try:
        attacker.frames([b"garbage"])
        attacker.frames(encode(b"wrong-key", header()))
        attacker.signed(b"[" * 50_000)
        attacker.signed(b"{not json")
        attacker.request(header("no.such.op"))
        attacker.request(header("synthesize", {"text": 1}))
        attacker.request(header("ping", {"padding": "x" * (MAX_HEADER_BYTES + 1)}))
        attacker.request(header("cancel", {"job": synthesis.job}, id="x" * 200))
        codes = []
        while (msg := attacker.reply(SILENCE_MS)) is not None:
            codes.append(msg.header["error"]["code"])
        assert sorted(codes) == ["bad_args", "bad_message", "too_large", "unknown_op"]
    finally:
        attacker.close()
    audio, _ = synthesis.collect()
    assert synthesis.summary["chunks"] == 6
    assert len(audio) > 0
    assert slow_daemon.alive


def test_a_number_sent_as_text_is_told_so(peer: RawPeer, voice: str) -> None:
    peer.request(header("synthesize", {"text": "Hi.", "voice": voice, "options": {"exaggeration": "0.5"}}))
    message = peer.error()["error"]["message"]
    assert "'exaggeration' must be a number, not the text '0.5'" in message


def test_a_volume_that_is_not_a_finite_number_is_told_so(client: Client) -> None:
    with pytest.raises(ProtocolError) as err:
        client.settings_set(volume=float("nan"))
    assert "finite number" in err.value.message
    assert_for_people(err.value.message)


def test_the_check_for_internals_can_fail() -> None:
    with pytest.raises(AssertionError):
        assert_for_people("could not decode (Error opening <_io.BytesIO object at 0x7fe2a1b2c3d4>)")
