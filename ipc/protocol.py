"""The wire format: how a message becomes ZeroMQ frames and back.

Every message is::

    [signature, header, *buffers]

``header`` is UTF-8 JSON (an object), ``buffers`` are raw binary frames (PCM
audio, clip bytes) that never pass through JSON. ``signature`` is the lowercase
hex HMAC-SHA256, keyed with the secret from the connection file, over each
following frame prefixed by its length as an 8-byte big-endian integer; the
length prefix stops bytes from being moved between frames without breaking
the signature. Events on the PUB socket carry one more frame in front, the
topic, so that SUB sockets can filter by prefix.

This module is the one place that knows the frame layout; it imports neither
torch nor Qt. ``docs/protocol.md`` describes the same thing for people, and a
test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import struct
from dataclasses import dataclass, field
from typing import Any

#: Version of the wire protocol, independent of the package version. Bumped
#: only when an existing client would misread a message.
PROTOCOL_VERSION = 1

#: Largest accepted header, in bytes; the daemon also caps a whole frame
#: (see MAX_FRAME_BYTES) at the socket so a hostile peer cannot exhaust memory.
#: It must hold a request carrying the longest text the daemon accepts
#: (100 000 characters: up to 4 bytes each in UTF-8, 6 for an escaped control
#: character), hence 1 MiB.
MAX_HEADER_BYTES = 1024 * 1024
#: Largest frame the daemon accepts: enough for a 60 s 48 kHz stereo WAV clip
#: with room to spare. Bigger messages are dropped by libzmq itself.
MAX_FRAME_BYTES = 64 * 1024 * 1024

#: Every request op, with a one-line summary (docs/protocol.md has the details).
OPS: dict[str, str] = {
    "hello": "protocol version, daemon version and what the loaded model supports",
    "ping": "round trip; answered even while the model loads",
    "status": "daemon state, load progress or failure reason, queue length",
    "retry_load": "load the model again after a failure",
    "voices.list": "the voice library",
    "voices.add": "add a voice from clip bytes (buffer 0) or a path",
    "voices.rename": "rename a voice",
    "voices.remove": "remove a voice and its clip",
    "voices.default": "get or set the default voice",
    "voices.play": "play a voice's reference clip on the daemon's speaker",
    "synthesize": "text to audio, streamed sentence by sentence",
    "cancel": "cancel a queued or running job",
    "speak": "queue text for the daemon's speaker; answers at once with the job id",
    "stop": "stop the playing speech job, one job, or all",
    "pause": "pause the speaker",
    "resume": "resume the speaker",
    "skip": "skip to the next sentence of the playing job",
    "playback": "the speaker's state, queue, device, volume and underruns",
    "wait": "answer when a job has ended",
    "audio.devices": "the audio output devices",
    "audio.set": "choose the output device and/or the volume (saved)",
    "settings.get": "every daemon setting, and which need a model reload",
    "settings.set": "change settings; saved and applied (model settings at the next reload)",
    "reload": "load the model again with the current settings",
    "cache.stats": "conditionals cache figures",
    "cache.clear": "drop cached conditionals, for one voice or all",
    "stats": "model, device, GPU, process RAM and CPU",
    "words.list": "the pronunciation rules",
    "words.add": "add, replace or edit a pronunciation rule (checked, then saved)",
    "words.remove": "remove a pronunciation rule",
    "words.import": "add many pronunciation rules at once, all or nothing",
    "text.preview": "what the model would be given for a text: rules, pauses and tags applied",
    "tags.list": "the tags the loaded model knows, and the pause markup's bounds",
    "shutdown": "stop the daemon cleanly",
}

#: Reply kinds. A request gets zero or more non-final replies, then exactly one
#: final reply ("result" or "error").
REPLY_KINDS = ("accepted", "progress", "chunk", "result", "error")
FINAL_KINDS = frozenset({"result", "error"})

#: Event topics on the PUB socket.
EVENT_TOPICS: dict[str, str] = {
    "state": "daemon state changed or load progress moved",
    "job": (
        "a job was queued, started, made a chunk, finished, failed or was cancelled; for speech also "
        "synthesized, sentence, position, paused, resumed, interrupted, underrun, dropped"
    ),
    "voices": "the voice library changed (added, removed, renamed, default)",
    "cache": "a voice's conditionals entered or left the cache",
    "playback": "the output device or the volume changed",
    "settings": "a client changed the daemon's settings",
    "words": "the pronunciation rules changed (added, changed, removed, imported)",
}

#: Structured error codes, grouped by who must act.
ERROR_CODES: dict[str, str] = {
    # The message itself was wrong: fix the client.
    "bad_message": "the frames or the header could not be parsed",
    "unsupported_version": "the header's protocol version is not one the daemon speaks",
    "unknown_op": "no such op",
    "bad_args": "an argument is missing, of the wrong type or out of range",
    "too_large": "a header or text is over its limit",
    # The request was understood but cannot be done as asked.
    "unknown_voice": "no voice with that name",
    "voice_exists": "a voice with that name already exists",
    "bad_name": "the voice name is empty, too long or has forbidden characters",
    "clip_undecodable": "the clip is not audio that soundfile or librosa can decode",
    "clip_too_short": "the clip is shorter than the minimum",
    "clip_too_long": "the clip is longer than the maximum",
    "clip_silent": "the clip holds no audible sound",
    "empty_text": "there is no text to speak",
    "unknown_language": "the loaded model does not support that language",
    "no_such_job": "no queued or running job with that id",
    "no_audio_device": "there is no audio output device to speak on",
    "no_such_device": "no output device has that name",
    "audio_device": "the audio device failed or vanished during playback",
    "cancelled": "the job was cancelled",
    "bad_rule": "a pronunciation rule cannot be used: a bad or too slow regular expression, no word, too long",
    "no_such_rule": "no pronunciation rule for that word",
    "bad_markup": "a pause in the text cannot be read or is longer than allowed",
    # The daemon cannot serve the request now.
    "not_ready": "the model is not loaded (see status for why)",
    "model_failed": "the model failed to load or to run",
    "internal": "an unexpected error inside the daemon; see its log",
    "busy": "the daemon cannot do that while a job runs",
    # A daemon serving other computers (docs/security.md).
    "unauthorized": "this computer's key is not, or no longer, authorized by the daemon",
    "not_allowed": "a remote client may not use that op or argument",
    "too_many_jobs": "this remote client already has as many jobs queued as it may",
    "disk_full": "a file could not be saved: its disk (or the user's quota) is full; nothing was changed",
}


#: The message of an ``internal`` error: the details stay in the daemon's log,
#: never in a reply (no tracebacks, reprs or addresses reach a person).
INTERNAL_MESSAGE = "something went wrong inside the daemon; its log has the details"


class CodedError(Exception):
    """An error with one of `ERROR_CODES` and a message for people.

    The base of every error the daemon can answer with: the engine's, the
    speaker's, the voice library's, a clip's and `ProtocolError` itself. The
    server turns any of them into an error reply in one place, so no handler
    converts one error into another.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message  # (also its str, as the exception's one argument)

    def to_json(self) -> dict[str, str]:
        """The ``error`` object of an error reply."""
        return {"code": self.code, "message": self.message}


class ProtocolError(CodedError):
    """A structured error: what the daemon replies and what clients raise."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def as_coded(error: BaseException, where: str) -> CodedError:
    """Any error as one a reply can carry: a `CodedError` as it is, anything else ``internal``.

    The unexpected kind is logged here with its traceback (``where`` says
    what failed); the reply says only `INTERNAL_MESSAGE`. The one place the
    daemon's server, handlers, worker and job ends make this choice.
    """
    if isinstance(error, CodedError):
        return error
    logging.getLogger("chatterbox_tray.daemon").error(
        "%s failed: %s: %s", where, type(error).__name__, error, exc_info=error
    )
    return ProtocolError("internal", INTERNAL_MESSAGE)


class SignatureError(ProtocolError):
    """The signature frame does not match: the sender does not hold the key."""

    def __init__(self) -> None:
        super().__init__("bad_message", "signature mismatch")


def sign(key: bytes, frames: list[bytes]) -> bytes:
    """HMAC-SHA256 over length-prefixed frames, as lowercase hex bytes."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in frames:
        mac.update(struct.pack(">Q", len(frame)))
        mac.update(frame)
    return mac.hexdigest().encode("ascii")


@dataclass(frozen=True)
class Message:
    """A decoded message: the header object and its binary buffers."""

    header: dict[str, Any]
    buffers: tuple[bytes, ...] = field(default_factory=tuple)


def encode(key: bytes, header: dict[str, Any], buffers: tuple[bytes, ...] | list = ()) -> list:
    """Turn a header and buffers into signed frames (without topic or identity)."""
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    body = [head, *buffers]
    return [sign(key, [bytes(b) if not isinstance(b, bytes) else b for b in body]), *body]


def decode(key: bytes, frames: list[bytes]) -> Message:
    """Check the signature and parse the header; raise ProtocolError if bad (and nothing else)."""
    if len(frames) < 2:
        raise ProtocolError("bad_message", f"expected at least 2 frames, got {len(frames)}")
    signature, head, *buffers = frames
    if not hmac.compare_digest(signature, sign(key, [head, *buffers])):
        raise SignatureError()
    if len(head) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"header is {len(head)} bytes, limit {MAX_HEADER_BYTES}")
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_message", f"header is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("bad_message", "header is nested too deeply to parse") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ProtocolError("bad_message", f"header cannot be parsed: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", "header must be a JSON object")
    return Message(header, tuple(buffers))


def request_header(req_id: str, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The header of a request."""
    return {"v": PROTOCOL_VERSION, "id": req_id, "op": op, "args": args or {}}


def reply_header(req_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    """The header of a reply: ``kind`` plus kind-specific fields."""
    return {"v": PROTOCOL_VERSION, "id": req_id, "kind": kind, **fields}


def event_header(topic: str, seq: int, data: dict[str, Any]) -> dict[str, Any]:
    """The header of an event; ``seq`` lets subscribers notice missed events."""
    return {"v": PROTOCOL_VERSION, "event": topic, "seq": seq, "data": data}


def check_request(header: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Validate a request header; return (id, op, args) or raise ProtocolError.

    The id is checked first so that even a bad request gets an error reply the
    client can match.
    """
    req_id = header.get("id")
    if not isinstance(req_id, str) or not 0 < len(req_id) <= 128:
        raise ProtocolError("bad_message", "'id' must be a string of 1 to 128 characters")
    version = header.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version", f"daemon speaks protocol {PROTOCOL_VERSION}, request has {version!r}"
        )
    op = header.get("op")
    if not isinstance(op, str):
        raise ProtocolError("bad_message", "'op' must be a string")
    if op not in OPS:
        raise ProtocolError("unknown_op", f"unknown op {op!r}")
    args = header.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("bad_args", "'args' must be a JSON object")
    return req_id, op, args


#: The Python types each kind of field accepts, and what they are in words (a float is always read
#: with ints: "a number").
_FIELD_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "bool": ((bool,), "true or false"),
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "dict": ((dict,), "an object"),
    "list": ((list,), "an array"),
}


class Args:
    """Typed access to a message's fields, raising ``bad_args`` with the name.

    ``ipc/messages.py`` reads every field of every message type through it
    (``Args(data).read("name", "str")``), so a wrong type or a value out of
    range is a clear error in the same words everywhere, never a traceback.
    """

    _MISSING = object()

    def __init__(self, args: dict[str, Any]) -> None:
        self._args = args

    def read(self, name: str, kind: str, default: Any = _MISSING, lo: Any = None, hi: Any = None) -> Any:
        """Argument ``name`` as a ``kind`` ("str", "bool", "int", "float", "dict" or "list"), within [lo, hi] if given.

        A "float" accepts ints too, and is read as a finite float.
        """
        types, words = _FIELD_KINDS[kind]
        value = self._args.get(name, self._MISSING)
        if value is self._MISSING or value is None:
            if default is self._MISSING:
                raise ProtocolError("bad_args", f"missing argument {name!r}")
            value = default
        # bool is an int in Python; never accept it where a number is meant.
        elif isinstance(value, bool) and bool not in types:
            raise ProtocolError("bad_args", f"argument {name!r} must be {words}")
        elif not isinstance(value, types):
            given = f"not the text {value!r}" if isinstance(value, str) else f"not {_json_kind(value)}"
            raise ProtocolError("bad_args", f"argument {name!r} must be {words}, {given}")
        if kind == "float" and value is not None:
            try:
                value = float(value)  # an integer of 309 digits or more overflows
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise ProtocolError("bad_args", f"argument {name!r} must be a finite number")
        if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            raise ProtocolError("bad_args", f"argument {name!r} must be between {lo} and {hi}")
        return value


#: A JSON value's kind in words, for error messages; bool first, as it is an int in Python.
_KINDS = ((bool, "true or false"), ((int, float), "a number"), (list, "a list"))


def _json_kind(value: Any) -> str:
    """What a JSON value that is neither text nor null is, in words ("a list", ...), for error messages."""
    return next((word for kind, word in _KINDS if isinstance(value, kind)), "an object")
