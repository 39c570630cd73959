"""A self-healing link to the daemon for long-lived clients (the tray app), without Qt.

``DaemonLink`` owns the request and event sockets and runs one loop in one
thread. It sleeps in a single poll on the request socket, the event socket and
an inproc wake socket (``submit`` pokes it when a request is queued), so it
neither polls on a timer nor delays a request. It notices a dead or restarted
daemon (a heartbeat ping, the connection file's pid), reconnects, and starts a
daemon when none answers (if asked to). Only the waiting is its own (``ipc.core``
says what every client shares). ``gui/connection.py`` runs it in a QThread and
turns what it reports into Qt signals.

With ``remote`` (a paired daemon's name, ipc/remote.py) it links to a daemon
on another computer over CURVE instead: no events socket (a remote daemon
publishes none to other computers), no connection file, no autostart; a
daemon that does not answer is reported as lost, with why, and tried again
every few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zmq

from . import endpoints
from . import requests as rq
from .client import Client, EventStream
from .core import ClientCore, DaemonFinder, DaemonUnavailable, pid_alive
from .messages import HelloResult, StateEvent
from .protocol import FINAL_KINDS, Message, ProtocolError
from .requests import Request

log = logging.getLogger(__name__)

#: No word from the daemon for this long makes the worker ping it...
HEARTBEAT_S = 1.0
#: ...and a ping unanswered for this long means it is gone.
HEARTBEAT_TIMEOUT_S = 4.0
#: How long a connection attempt waits for the first ping.
CONNECT_PING_S = 1.5
#: How often the connected worker looks at the connection file (a restarted daemon).
FILE_CHECK_S = 1.0

#: How often a link to an unreachable remote daemon tries again.
REMOTE_RETRY_S = 5.0

#: Link states, as ``LinkSink.on_link`` reports them.
CONNECTING, STARTING, CONNECTED, LOST, FAILED = "connecting", "starting", "connected", "lost", "failed"


class LinkSink(Protocol):
    """What a ``DaemonLink`` reports, called on the link's thread."""

    def on_link(self, state: str, detail: str) -> None:
        """The link's state changed; ``detail`` says why, for people."""

    def on_connected(self, info: endpoints.ConnectionInfo, hello: HelloResult, status: StateEvent) -> None:
        """A daemon answers (after every reconnection too), with its ``hello`` and ``status`` read by type."""

    def on_event(self, topic: str, data: dict[str, Any]) -> None:
        """One broadcast event."""

    def on_message(self, req_id: str, header: dict[str, Any], buffers: list[bytes]) -> None:
        """A reply to a submitted request (also the ``timeout``/``unavailable`` errors the link makes)."""

    def on_gap(self) -> None:
        """Events were lost: the client should ask again what it keeps."""


@dataclass
class _Pending:
    op: str
    timeout: float
    deadline: float
    internal: bool = False
    slow: bool = False  # the daemon may hold up pings while it answers (``Request.slow``)


class DaemonLink:
    """Owns the sockets and runs the loop (``run``) in the thread that calls it.

    Everything it learns goes to ``sink``, called on that thread: the Qt
    client forwards each call as a queued signal to the GUI thread. Other
    threads talk to it only through ``submit`` and ``stop`` (a queue and the
    wake socket); ``submit``, ``stop`` and ``dispose`` belong to one thread.
    """

    def __init__(
        self,
        sink: LinkSink,
        connection_path: Path | None,
        autostart: bool,
        daemon_args: list[str],
        remote: str | None = None,
    ) -> None:
        self._sink = sink
        self.remote = remote
        self._running = False
        #: Which daemon, whether it runs and speaks our protocol, when to start one: every client's policy.
        self.finder = DaemonFinder(
            remote, connection_path=connection_path, autostart=autostart, daemon_args=daemon_args
        )
        self.commands: queue.SimpleQueue = queue.SimpleQueue()
        #: Ids for the GUI's requests and the worker's own; the key is set per daemon.
        self.core = ClientCore(b"")
        self._stop = False
        self._ctx = zmq.Context()
        self._ctx.setsockopt(zmq.LINGER, 0)  # every socket made from it: a closed one drops what it still holds
        wake_address = f"inproc://gui-link-wake-{id(self):x}"
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake_address)
        self._wake_tx = self._ctx.socket(zmq.PAIR)  # used by the GUI thread only
        self._wake_tx.connect(wake_address)
        self._dealer: zmq.Socket | None = None
        self._events: EventStream | None = None
        self._info: endpoints.ConnectionInfo | None = None
        self._pending: dict[str, _Pending] = {}
        self._last_heard = 0.0
        self._last_file_check = 0.0
        self._heartbeat: str | None = None
        self._seq = 0
        self._state = ""

    # -- control from the owner's thread -----------------------------------------

    def submit(self, command: tuple) -> None:
        """Queue a command and wake the loop: ("req", id, Request, timeout) or ("retry",)."""
        self.commands.put(command)
        self._wake()

    def stop(self) -> None:
        """Ask the loop to end; the caller waits for its thread, then calls ``dispose()``."""
        self._stop = True
        self._wake()

    def dispose(self) -> None:
        """Close the wake sockets and the context once the loop has ended."""
        if self._running:
            return  # stuck (it should not be): leave its sockets rather than hang the GUI
        for sock in (self._wake_rx, self._wake_tx):
            if not sock.closed:
                sock.close(0)
        if not self._ctx.closed:
            self._ctx.term()

    def _wake(self) -> None:
        # A full pipe means the worker has wake-ups waiting already; a closed one, that it is gone.
        with contextlib.suppress(zmq.Again, zmq.ZMQError):
            self._wake_tx.send(b"", zmq.NOBLOCK)

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """The loop: connect (or start a daemon), serve, reconnect; until ``stop``."""
        self._running = True
        try:
            while not self._stop:
                if self._dealer is None:
                    self._connect_once()
                else:
                    self._serve_once()
        except Exception:  # never die silently: the GUI must learn the link is gone
            log.exception("daemon link worker crashed")
            self._set_link(FAILED, "the connection to the daemon failed unexpectedly (see the log)")
        finally:
            self._close_sockets()
            self._wake_rx.close(0)  # the context ends in dispose(), after the owner's end closed too
            self._running = False

    def _set_link(self, state: str, detail: str = "") -> None:
        self._state = state
        self._sink.on_link(state, detail)

    # -- not connected ---------------------------------------------------------------

    def _connect_once(self) -> None:
        self._drain_commands()
        try:
            info = self.finder.find()
            if self.remote is not None and self._state not in (CONNECTING, LOST, FAILED):
                self._set_link(CONNECTING, f"Looking for {self.remote}…")
            if info is not None and self._open(info):
                return
            if self.remote is None and self.finder.start():
                self._set_link(STARTING, "Starting the daemon…")
                return
        except DaemonUnavailable as exc:
            self._set_link(FAILED, _sentence(str(exc)))
            self._sleep(REMOTE_RETRY_S if self.remote else 2.0)
            return
        if self.remote is not None and info is not None:
            why = self.finder.silent(info, CONNECT_PING_S)
            self._set_link(LOST, f"{_sentence(why)}. Trying again; choose the local daemon to use this computer's own.")
            self._sleep(REMOTE_RETRY_S)
            return
        if self.finder.starting:
            self._sleep(0.15)
            return
        if self._state not in (CONNECTING, LOST, FAILED):
            self._set_link(CONNECTING, "Looking for the daemon…")
        self._sleep(0.3)

    def _open(self, info: endpoints.ConnectionInfo) -> bool:
        client = Client(info, timeout=CONNECT_PING_S, context=self._ctx)
        try:
            client.ping()
            hello = HelloResult.from_data(client.request(rq.hello(), 3.0))
            status = StateEvent.from_data(client.request(rq.status(), 3.0))
        except (DaemonUnavailable, ProtocolError) as exc:
            log.info("daemon at %s did not answer: %s", info.requests, exc)
            client.close()
            return False
        self._dealer, self._info = client.socket, info  # the link's now: its loop reads every reply
        self.core.key = info.key_bytes
        self._events = EventStream(info, context=self._ctx) if info.events else None
        self._seq = 0
        self._last_heard = self._last_file_check = time.monotonic()
        self._heartbeat = None
        self.finder.found()
        self._set_link(CONNECTED, f"remote daemon {self.remote}" if self.remote else f"daemon pid {info.pid}")
        self._sink.on_connected(info, hello, status)
        return True

    # -- connected -------------------------------------------------------------------------

    def _serve_once(self) -> None:
        assert self._dealer is not None
        poller = zmq.Poller()
        poller.register(self._dealer, zmq.POLLIN)
        if self._events is not None:
            poller.register(self._events.socket, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        ready = dict(poller.poll(self._next_due_ms()))
        if self._dealer in ready:
            self._read_replies()
        if self._events is not None and self._events.socket in ready:
            self._read_events()
        if self._wake_rx in ready:
            self._drain_wake()
        self._drain_commands()
        self._check_health()

    def _next_due_ms(self) -> int:
        """Milliseconds until the next timed duty: a request's deadline, the file check, a heartbeat."""
        now = time.monotonic()
        due = [self._last_file_check + FILE_CHECK_S]
        due.extend(p.deadline for p in self._pending.values())
        if self._heartbeat is None:
            due.append(self._last_heard + HEARTBEAT_S)
        return max(0, int((min(due) - now) * 1000) + 1)

    def _drain_wake(self) -> None:
        with contextlib.suppress(zmq.Again):
            while True:
                self._wake_rx.recv(zmq.NOBLOCK)

    def _received(self, sock: zmq.Socket, decode: Callable[[list], Message], what: str) -> Iterator[Message]:
        """The messages waiting on ``sock``, decoded; a bad one is logged and dropped."""
        while sock.poll(0):
            try:
                msg = decode(sock.recv_multipart())
            except ProtocolError as exc:
                log.warning("dropping a bad %s: %s", what, exc)
                continue
            self._last_heard = time.monotonic()
            yield msg

    def _read_replies(self) -> None:
        assert self._dealer is not None and self._info is not None
        for msg in self._received(self._dealer, self.core.decode_reply, "reply"):
            req_id = str(msg.header.get("id", ""))
            pending = self._pending.get(req_id)
            if pending is None:
                continue  # an abandoned request's late answer
            if msg.header.get("kind") in FINAL_KINDS:
                del self._pending[req_id]
            else:
                pending.deadline = time.monotonic() + pending.timeout
            if req_id == self._heartbeat:
                self._heartbeat = None
            elif not pending.internal:
                self._sink.on_message(req_id, msg.header, list(msg.buffers))

    def _read_events(self) -> None:
        assert self._events is not None and self._info is not None
        gap = False
        for msg in self._received(self._events.socket, self.core.decode_event, "event"):
            seq = msg.header.get("seq")
            if isinstance(seq, int):
                gap = gap or (self._seq > 0 and seq != self._seq + 1)
                self._seq = seq
            self._sink.on_event(str(msg.header.get("event")), msg.header.get("data") or {})
        if gap:
            self._sink.on_gap()

    def _drain_commands(self) -> None:
        """Send the queued requests; while no daemon is connected they fail at once rather than pile up."""
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            if cmd[0] == "retry":
                self.finder.retry()
                continue
            _, req_id, request, timeout = cmd
            if self._dealer is None:
                self._fail(req_id, "unavailable", "not connected to the daemon")
                continue
            try:
                self._send(req_id, request)
            except zmq.ZMQError as exc:
                self._fail(req_id, "unavailable", f"could not send to the daemon: {exc}")
                continue
            self._pending[req_id] = _Pending(request.op, timeout, time.monotonic() + timeout, slow=request.slow)

    def _check_health(self) -> None:
        now = time.monotonic()
        for req_id, pending in list(self._pending.items()):
            if now > pending.deadline:
                del self._pending[req_id]
                if req_id == self._heartbeat:
                    self._heartbeat = None
                    if any(p.slow for p in self._pending.values()):
                        continue  # it decodes a clip in its socket loop; its own timeout bounds that
                    self._lose("The daemon stopped answering.")
                    return
                why = f"the daemon did not answer '{pending.op}' in {pending.timeout:.0f} s"
                self._fail(req_id, "timeout", why)
        if self.remote is None and now - self._last_file_check > FILE_CHECK_S:
            self._last_file_check = now
            info = self.finder.local_info()
            assert self._info is not None
            if info is None or info.pid != self._info.pid or info.key != self._info.key:
                self._lose("The daemon stopped." if info is None else "The daemon restarted.")
                return
            if not pid_alive(self._info.pid):
                self._lose("The daemon stopped.")
                return
        if self._heartbeat is None and now - self._last_heard > HEARTBEAT_S:
            req_id = self._heartbeat = self._send(self.core.new_id(), rq.ping())
            self._pending[req_id] = _Pending("ping", HEARTBEAT_TIMEOUT_S, now + HEARTBEAT_TIMEOUT_S, internal=True)

    def _lose(self, why: str) -> None:
        self._close_sockets()
        for req_id, pending in self._pending.items():
            if not pending.internal:
                self._fail(req_id, "unavailable", why)
        self._pending.clear()
        self.finder.retry(after_s=3.0)  # a daemon restarted by hand gets a moment to come back first
        self._set_link(LOST, why)

    # -- helpers -------------------------------------------------------------------------

    def _send(self, req_id: str, request: Request) -> str:
        assert self._dealer is not None
        self._dealer.send_multipart(self.core.encode(req_id, request), copy=False)
        return req_id

    def _fail(self, req_id: str, code: str, message: str) -> None:
        self._sink.on_message(req_id, {"kind": "error", "error": {"code": code, "message": message}}, [])

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake for a command (a request fails at once, a retry acts at once)."""
        if self._wake_rx.poll(int(seconds * 1000)):
            self._drain_wake()
            self._drain_commands()

    def _close_sockets(self) -> None:
        if self._dealer is not None:
            self._dealer.close(0)
        if self._events is not None:
            self._events.close()
        self._dealer = self._events = None


def _sentence(words: str) -> str:
    """The policy's words ("the daemon exited…") as the start of a sentence, for the app's banner."""
    return words[:1].upper() + words[1:]
