"""The client core that every client shares: request ids, frames, replies, liveness.

The blocking client (``ipc.client``: scripts, the CLI, Speech Dispatcher) and
the Qt client (``gui.connection``) both send requests built by
``ipc.requests`` through a ``ClientCore`` and decode replies with it; they
differ only in how they wait for the answers (a blocking poll, or a worker
thread that turns replies into Qt signals). So reply decoding, the error a
reply carries, the timeouts and the check whether the daemon's process lives
are written once.

Light: zmq and the standard library only.
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

from .protocol import FINAL_KINDS, Message, ProtocolError, decode, encode, request_header
from .requests import Request

#: How long a plain request waits for its answer. The daemon answers control
#: requests from its main loop, which model work never blocks.
DEFAULT_TIMEOUT = 10.0
#: How long a streaming request (synthesize, wait) waits between two replies.
#: The daemon sends a "progress" reply at least every second while a job is
#: queued or running.
STREAM_GAP_TIMEOUT = 30.0


class DaemonUnavailable(ConnectionError):
    """No daemon answered: none runs, it died, or it is not ours."""


def reply_error(header: dict[str, Any]) -> ProtocolError:
    """The ``ProtocolError`` an error reply carries."""
    err = header.get("error") or {}
    return ProtocolError(str(err.get("code", "internal")), str(err.get("message", "")))


def reply_result(header: dict[str, Any]) -> dict[str, Any]:
    """A final reply's result (``{}`` when it has none)."""
    return header.get("result") or {}


def is_final(header: dict[str, Any]) -> bool:
    """Whether this reply is the last one its request gets."""
    return header.get("kind") in FINAL_KINDS


def default_timeout(request: Request, plain: float = DEFAULT_TIMEOUT) -> float:
    """How long a client waits for (the next reply to) ``request``."""
    if request.timeout is not None:
        return request.timeout
    return STREAM_GAP_TIMEOUT if request.stream else plain


class ClientCore:
    """Request ids and the signed frames of one connection (one daemon key).

    Ids are unique per core (a random prefix and a counter), so a client that
    gave up on a request can tell its late answer from the answer it waits
    for now. ``new_id`` may be called from any thread (``itertools.count`` is
    atomic under the GIL); the frames are sent by whichever thread owns the
    socket.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def new_id(self) -> str:
        """A fresh request id."""
        return f"{self._prefix}-{next(self._ids)}"

    def encode(self, req_id: str, request: Request) -> list:
        """The frames of ``request`` under id ``req_id``."""
        return encode(self.key, request_header(req_id, request.op, request.args), request.buffers)

    def decode_reply(self, frames: list) -> Message:
        """A reply from the request socket; ProtocolError when it is forged or malformed."""
        return decode(self.key, frames)

    def decode_event(self, frames: list) -> Message:
        """An event from the broadcast socket (its first frame is the topic)."""
        return decode(self.key, frames[1:])


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (POSIX); elsewhere the ping decides."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # no cheap check
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
