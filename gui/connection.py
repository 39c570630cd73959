"""The GUI's daemon link: ``ipc.link.DaemonLink`` in a QThread, speaking Qt signals.

The GUI thread never touches the daemon's sockets. It queues requests built
by ``ipc.requests`` with ``send()`` and gets each answer back as a call of
the callbacks it gave, on the GUI thread, through queued signals. The link
itself (sockets, heartbeat, reconnection, autostart, the inproc wake socket)
is Qt-free in ``ipc/link.py``; this module only adapts it to Qt. So a busy,
loading or dead daemon can slow nothing but the answers themselves: the
event loop never waits for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from PySide6.QtCore import QObject, QThread, Signal

from ..ipc import endpoints
from ..ipc.core import DEFAULT_TIMEOUT, default_timeout
from ..ipc.link import CONNECTED, CONNECTING, FAILED, LOST, STARTING, DaemonLink
from ..ipc.messages import ErrorReply, HelloResult, Reply, Request, Result, StateEvent
from ..ipc.protocol import FINAL_KINDS, ProtocolError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

__all__ = ["CONNECTED", "CONNECTING", "FAILED", "LOST", "STARTING", "Connection", "default_daemon_args"]

log = logging.getLogger(__name__)

#: A one-shot request's answer is late after this many seconds (the daemon
#: answers from its socket loop, which never waits for the model). Streams
#: (synthesize, wait) use ``STREAM_GAP_TIMEOUT`` between replies.
REQUEST_TIMEOUT = DEFAULT_TIMEOUT

#: Gets the op's result as its type (``Request.read_result``: ``messages.RESULTS``), else its object.
OnResult = Callable[[Any], None]
OnError = Callable[[str, str], None]
OnMessage = Callable[[Reply], None]


class Callbacks(TypedDict, total=False):
    """What ``send`` calls with a request's answers (``Connection.send`` says when)."""

    on_result: OnResult | None
    on_error: OnError | None
    on_message: OnMessage | None


class _Worker(QThread):
    """Runs the link's loop; each ``LinkSink`` call it gets is told by ``told``, delivered on the GUI thread."""

    #: The call without its "on_" ("link", "connected", "event", "message", "gap"), and its arguments.
    told = Signal(str, object)

    def __init__(
        self, connection_path: Path | None, autostart: bool, daemon_args: list[str], remote: str | None = None
    ) -> None:
        super().__init__()
        self.loop = DaemonLink(self, connection_path, autostart, daemon_args, remote=remote)

    def run(self) -> None:
        self.loop.run()

    # -- LinkSink: called on this thread -------------------------------------------------

    def on_link(self, state: str, detail: str) -> None:
        self.told.emit("link", (state, detail))

    def on_connected(self, info: endpoints.ConnectionInfo, hello: HelloResult, status: StateEvent) -> None:
        self.told.emit("connected", (info, hello, status))

    def on_event(self, topic: str, data: dict[str, Any]) -> None:
        self.told.emit("event", (topic, data))

    def on_message(self, req_id: str, header: dict[str, Any], buffers: list[bytes]) -> None:
        self.told.emit("message", (req_id, header, buffers))

    def on_gap(self) -> None:
        self.told.emit("gap", ())


class Connection(QObject):
    """The GUI's handle on the daemon: requests with callbacks, and signals.

    ``link_changed(state, detail)``: connecting, starting, connected, lost or
    failed (``detail`` says why, for people). ``connected(hello, status)``
    (a ``HelloResult`` and a ``StateEvent``) after every (re)connection. ``event(topic, data)`` for each daemon event.

    ``remote`` names a paired daemon on another computer (ipc/remote.py);
    None is this computer's. ``switch`` moves to another daemon without
    waiting for the old link's thread: it ends on its own, and what it still
    reports is dropped.
    """

    link_changed = Signal(str, str)
    connected = Signal(object, object)
    event = Signal(str, object)
    gap = Signal()

    def __init__(
        self,
        connection_path: Path | None = None,
        *,
        autostart: bool = True,
        daemon_args: list[str] | None = None,
        remote: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.pid: int | None = None
        self.remote = remote
        #: Request id -> the request and what its answers are given to.
        self._callbacks: dict[str, tuple[Request, Callbacks]] = {}
        self._where = (connection_path, autostart, daemon_args or [])
        #: Links left by ``switch`` whose threads have not ended yet.
        self._retired: list[_Worker] = []
        self._started = False
        self._worker = self._new_worker(remote)

    def _new_worker(self, remote: str | None) -> _Worker:
        worker = _Worker(*self._where, remote=remote)
        worker.told.connect(self._on_told)
        worker.finished.connect(self._reap)
        return worker

    def _on_told(self, call: str, args: tuple[Any, ...]) -> None:
        """What the current link tells: to ``_on_link`` and the like, else to the signal of its name (``event``,
        ``gap``); a link that ``switch`` left is not heard."""
        if self.sender() is self._worker:
            (getattr(self, f"_on_{call}", None) or getattr(self, call).emit)(*args)

    def start(self) -> None:
        """Start the worker: it connects (or starts a daemon) in the background."""
        self._started = True
        self._worker.start()

    def switch(self, remote: str | None) -> None:
        """Link to another daemon (a paired name, or None for this computer's); never blocks.

        Requests still waiting for the old daemon fail with ``unavailable``.
        """
        old = self._worker
        old.loop.stop()
        self._retired.append(old)
        self.remote = remote
        self.pid = None
        self._worker = self._new_worker(remote)
        waiting, self._callbacks = self._callbacks, {}
        for request, callbacks in waiting.values():
            if (on_error := callbacks.get("on_error")) is not None:
                try:
                    on_error("unavailable", "the app switched to another daemon")
                except Exception:
                    log.exception("callback for %s failed", request.op)
        if self._started:
            self._worker.start()

    def _reap(self) -> None:
        for worker in [w for w in self._retired if w.isFinished()]:
            worker.loop.dispose()
            self._retired.remove(worker)

    def close(self, wait_s: float = 3.0) -> None:
        """Stop the worker and close the sockets; callbacks of pending requests are dropped."""
        for worker in (*self._retired, self._worker):
            worker.loop.stop()
        for worker in (*self._retired, self._worker):
            worker.wait(int(wait_s * 1000))
            worker.loop.dispose()
        self._retired.clear()
        self._callbacks.clear()

    def retry(self) -> None:
        """After a failed start: allow starting the daemon again, now."""
        self._worker.loop.submit(("retry",))

    def send(self, request: Request, **callbacks: Unpack[Callbacks]) -> str:
        """Queue a request built by ``ipc.requests``; never blocks. Callbacks run on the GUI thread.

        Returns the request id (the daemon puts it in the events of the job the
        request makes). ``on_result`` gets the result read as its op's type
        (``Request.read_result``). ``on_error(code, message)`` gets the daemon's
        errors and also ``timeout`` and ``unavailable`` (no daemon connected), and
        ``bad_args`` for a result that is not its type. ``on_message`` gets the
        non-final replies of streams (accepted, progress, chunk).
        """
        req_id = self._worker.loop.core.new_id()
        self._callbacks[req_id] = (request, callbacks)
        self._worker.loop.submit(("req", req_id, request, default_timeout(request, REQUEST_TIMEOUT)))
        return req_id

    def _on_link(self, state: str, detail: str) -> None:
        if state != CONNECTED:
            self.pid = None
        self.link_changed.emit(state, detail)

    def _on_connected(self, info: endpoints.ConnectionInfo, hello: HelloResult, status: StateEvent) -> None:
        self.pid = info.pid
        self.connected.emit(hello, status)

    def _on_message(self, req_id: str, header: dict[str, Any], buffers: list[bytes]) -> None:
        final = header.get("kind") in FINAL_KINDS
        waiting = self._callbacks.pop(req_id, None) if final else self._callbacks.get(req_id)
        if waiting is None:
            return
        request, callbacks = waiting
        try:
            try:
                reply = Reply.from_header(header, buffers)
                result = request.read_result(reply.result) if isinstance(reply, Result) else None
            except ProtocolError as exc:  # a malformed reply fails its request, as an error reply would
                log.warning("a bad reply to %s: %s", request.op, exc)
                if not final:
                    return
                reply = ErrorReply.of(exc)
            if isinstance(reply, ErrorReply):
                error = reply.raised()
                if (on_error := callbacks.get("on_error")) is not None:
                    on_error(error.code, error.message)
                else:
                    log.warning("%s failed: %s (%s)", request.op, error.message, error.code)
            elif isinstance(reply, Result):
                if (on_result := callbacks.get("on_result")) is not None:
                    on_result(result)
            elif (on_message := callbacks.get("on_message")) is not None:
                on_message(reply)
        except Exception:  # a bug in one callback must not take the link down
            log.exception("callback for %s failed", request.op)


def default_daemon_args() -> list[str]:
    """Extra daemon arguments from the environment (tests and the screenshot script)."""
    return [a for a in os.environ.get("CHATTERBOX_TRAY_DAEMON_ARGS", "").split() if a]
