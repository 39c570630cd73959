"""The client core that every client shares: request ids, frames, replies, and how to find the daemon.

The blocking client (``ipc.client``: scripts, the CLI, Speech Dispatcher) and
the Qt client (``gui.connection``) both send requests built by
``ipc.requests`` through a ``ClientCore`` and decode replies with it; they
differ only in how they wait for the answers (a blocking poll, or a worker
thread that turns replies into Qt signals). So reply decoding, the error a
reply carries, the timeouts and the connection policy (``DaemonFinder``:
which daemon, whether it lives and speaks our protocol version, when to
start one, what to say when none answers) are written once.

Light: zmq and the standard library only.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
import uuid
from pathlib import Path

from . import endpoints
from .protocol import PROTOCOL_VERSION, Message, ProtocolError, decode, encode
from .remote import RemoteError, remote_connection
from .requests import Request

#: How long a plain request waits for its answer. The daemon answers control
#: requests from its main loop, which model work never blocks.
DEFAULT_TIMEOUT = 10.0
#: How long a streaming request (synthesize, wait) waits between two replies.
#: The daemon sends a "progress" reply at least every second while a job is
#: queued or running.
STREAM_GAP_TIMEOUT = 30.0
#: Start a daemon at most this often, so one that dies at once is not respawned in a loop.
AUTOSTART_EVERY_S = 30.0


class DaemonUnavailable(ConnectionError):
    """No daemon answered: none runs, it died, or it is not ours."""


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
        return encode(self.key, request.to_header(req_id), request.buffers)

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


class DaemonFinder:
    """The connection policy every client follows (the CLI, the tray app, the bridges, Speech Dispatcher).

    ``remote`` names a paired daemon on another computer (ipc/remote.py),
    never started from here. Otherwise it is this computer's, found by its
    connection file: refused when it speaks another protocol version, and,
    with ``autostart``, started when none runs, at most once every
    ``AUTOSTART_EVERY_S``. Each front end adds its own remedy to the words.
    """

    def __init__(
        self,
        remote: str | None = None,
        *,
        connection_path: Path | None = None,
        autostart: bool = False,
        daemon_args: list[str] | None = None,
    ) -> None:
        self.remote = remote
        self.connection_path = connection_path
        self.autostart = autostart
        self.daemon_args = list(daemon_args or [])
        self._started: subprocess.Popen | None = None
        self._started_at = -AUTOSTART_EVERY_S
        self._blocked = False

    def find(self) -> endpoints.ConnectionInfo | None:
        """The daemon to try now, or None while none runs; DaemonUnavailable, with why, when trying is useless.

        Useless: the pairing is broken, the daemon speaks another protocol version, or the one started here exited.
        """
        if self.remote is not None:
            try:
                return remote_connection(self.remote)
            except RemoteError as exc:
                raise DaemonUnavailable(str(exc)) from None
        info = self.local_info()
        if info is not None and info.protocol != PROTOCOL_VERSION:
            older = "daemon" if info.protocol < PROTOCOL_VERSION else "client"
            raise DaemonUnavailable(
                f"the daemon speaks protocol {info.protocol} and this client {PROTOCOL_VERSION}: update the {older}"
            )
        if info is not None and pid_alive(info.pid):
            return info
        code = self._started.poll() if self._started is not None else None
        if code is not None:
            self._started = None
            if code not in (0, 3):  # 3: another daemon won the race to start; it will answer
                self._blocked = True
                raise DaemonUnavailable(f"the daemon exited with status {code}:\n{daemon_log_tail()}")
        return None

    def local_info(self) -> endpoints.ConnectionInfo | None:
        """This computer's daemon's connection file as it is now; None when there is none or it is unreadable."""
        try:
            return endpoints.read_connection(self.connection_path)
        except (ProtocolError, OSError):  # FileNotFoundError is an OSError
            return None

    @property
    def starting(self) -> bool:
        """A daemon started from here is still starting."""
        return self._started is not None and self._started.poll() is None

    def start(self) -> bool:
        """Start a daemon when the policy allows it now; raises DaemonUnavailable when it cannot be started."""
        recently = time.monotonic() - self._started_at < AUTOSTART_EVERY_S
        if self.remote is not None or not self.autostart or self._blocked or self.starting or recently:
            return False
        from .spawn import spawn_daemon

        self._started_at = time.monotonic()
        try:
            self._started = spawn_daemon(self.daemon_args)
        except OSError as exc:
            self._blocked = True
            raise DaemonUnavailable(f"could not start the daemon: {exc}") from None
        return True

    def found(self) -> None:
        """A daemon answered: what was started has done its work, and a later loss may start another."""
        self._started, self._blocked = None, False

    def retry(self, after_s: float = 0.0) -> None:
        """Allow a start again, ``after_s`` from now (a daemon restarted by hand gets a moment)."""
        self._blocked = False
        self._started_at = time.monotonic() - AUTOSTART_EVERY_S + after_s

    def silent(self, info: endpoints.ConnectionInfo, waited_s: float) -> str:
        """Why the remote daemon did not answer, for people (a local one that does not is started again)."""
        where = info.requests.removeprefix("tcp://")
        return (
            f"the remote daemon {self.remote!r} at {where} did not answer within {waited_s:g} s: it may be off, "
            "unreachable, behind a firewall, or no longer accept this computer's key"
        )


def daemon_log_tail(lines: int = 6) -> str:
    """The last lines of the daemon's log, to show why it did not start."""
    path = endpoints.daemon_log()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(tail) + f"\n(log: {path})"
