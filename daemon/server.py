"""The daemon's sockets and main loop.

ROUTER answers requests, PUB broadcasts events, and an inproc PULL wakes the
loop when a worker thread has left a message in the outbox. The loop never
runs model code, so ``ping``, ``status`` and ``cancel`` are answered at once
even while a long text is being spoken: that is why there is no separate
control socket.

Bad input never stops the loop: unsigned or garbled frames are logged and
dropped, signed but malformed requests get a structured error, and a handler
that raises unexpectedly answers ``internal``. A client that disappears is
noticed when a send to it fails (``ROUTER_MANDATORY``); its jobs are
cancelled. Jobs send a progress reply every second, so this is noticed even
before the first chunk.

With remote mode on, a second ROUTER serves other computers over TCP with
CURVE (daemon/remote_gate.py is its gatekeeper). Its connections' identities
are prefixed with ``REMOTE_PREFIX`` inside the daemon, so the rest of the
daemon treats a remote client like any other and replies find their socket.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from ..ipc import endpoints
from ..ipc.messages import REQUESTS, ErrorReply, Event, Reply, Result
from ..ipc.protocol import MAX_FRAME_BYTES, ProtocolError, SignatureError, as_coded, check_request, decode, encode
from ..ipc.remote import RemoteSettings
from .handlers import HANDLERS, ReceivedRequest
from .instance import InstanceLock
from .jobs import LOCAL_CLIENT
from .remote_gate import JOB_OPS, LOCAL_ONLY_OPS, PATH_ARGS, REMOTE_PREFIX, Gate, PortInUse, received
from .service import Service
from .settings import Settings

log = logging.getLogger(__name__)

KEEPALIVE_S = 1.0
#: Remote connections remembered (for the job cap and turns) before idle ones are forgotten.
MAX_REMOTE_CONNECTIONS = 4096
REVOKED_MESSAGE = "this computer's key is no longer authorized by the daemon (revoked); pair again to use it"


class Server:
    """Binds the sockets, runs the loop, and implements the Outbox for Service."""

    def __init__(self, settings: Settings, remote: RemoteSettings | None = None) -> None:
        self.settings = settings
        self.remote_settings = remote or RemoteSettings()
        self.gate: Gate | None = None
        self.run_dir = endpoints.ensure_private_dir(endpoints.runtime_dir())
        self.lock = InstanceLock(self.run_dir / "daemon.lock")
        self.lock.acquire()  # raises AlreadyRunning before we touch any socket
        self.key = endpoints.new_key()
        self._key = self.key.encode("ascii")
        self.ctx = zmq.Context()
        #: What the main loop sends next (``_flush``): sends queued by other threads.
        self._pending: deque[Callable[[], Any]] = deque()
        self._local = threading.local()
        self._main_thread = threading.get_ident()
        self._stop = threading.Event()
        self._seq = 0
        self.service = Service(settings, self)

    # -- Outbox ----------------------------------------------------------------

    def reply(self, identity: bytes, req_id: str, reply: Reply) -> None:
        """Queue a reply for the main loop to send."""
        self._pending.append(functools.partial(self._send, identity, reply.to_header(req_id), reply.buffers))
        self._poke()

    def event(self, event: Event) -> None:
        """Queue an event for the main loop to publish."""
        self._pending.append(functools.partial(self._publish, event))
        self._poke()

    def _poke(self) -> None:
        if threading.get_ident() == self._main_thread:
            return  # the loop drains after every handler
        sock = getattr(self._local, "push", None)
        if sock is None:
            sock = self._local.push = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect("inproc://wake")
        with contextlib.suppress(zmq.ZMQError):
            sock.send(b"", zmq.NOBLOCK)

    # -- set-up -------------------------------------------------------------------

    def _bind(self) -> endpoints.ConnectionInfo:
        req_ep, ev_ep = endpoints.local_endpoints(self.run_dir)
        for ep in (req_ep, ev_ep):  # a crashed daemon's socket files; we hold the lock now
            if ep.startswith("ipc://"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(ep[len("ipc://") :])
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.LINGER, 500)
        self.router.bind(req_ep)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 500)
        self.pub.bind(ev_ep)
        self.wake = self.ctx.socket(zmq.PULL)
        self.wake.bind("inproc://wake")
        info = endpoints.ConnectionInfo(
            requests=self.router.getsockopt_string(zmq.LAST_ENDPOINT),
            events=self.pub.getsockopt_string(zmq.LAST_ENDPOINT),
            key=self.key,
            pid=os.getpid(),
            transport="tcp" if req_ep.startswith("tcp") else "ipc",
        )
        if self.remote_settings.enabled:
            self._bind_remote()
        endpoints.write_connection(info)
        return info

    def _bind_remote(self) -> None:
        """Serve other computers too; with the port taken, go on serving this one and say why.

        A daemon that exits because of remote mode would leave this
        computer's own clients (the tray, the hotkey, Speech Dispatcher)
        without speech for a setting they never see; so the local sockets
        stay, and ``status`` and the log say "remote mode off: port N is in
        use". A bad key file still stops the daemon (``__main__`` says why).
        """
        curve_ep, _ = self.remote_settings.endpoints()
        gate = Gate(self.ctx, self.remote_settings)
        try:
            curve, _ = gate.bind()
        except PortInUse as exc:
            message = (
                f"{exc} ({curve_ep} or the pairing port after it is taken by another program); "
                "this computer is served, other computers are not. Free the port or change remote.bind "
                "in settings.json, then restart the daemon"
            )
            log.error("%s", message)
            self.service.remote = {"enabled": True, "serving": None, "error": message}
            return
        self.gate = gate
        self.service.remote = {"enabled": True, "serving": curve, "error": None}
        # Turns are per computer: all of one key's connections are one client.
        self.service.queue.client_of = lambda job: gate.connections.get(job.identity, LOCAL_CLIENT)

    def _unbind(self) -> None:
        """Close the sockets, remove their files and the connection file, and let go of the lock."""
        with contextlib.suppress(FileNotFoundError):
            info = endpoints.read_connection()
            if info.pid == os.getpid():
                endpoints.connection_file().unlink()
        for name in ("router", "pub"):
            sock = getattr(self, name, None)
            if sock is None:
                continue
            ep = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            sock.close()
            if ep.startswith("ipc://"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(ep[len("ipc://") :])
        if self.gate is not None:
            self.gate.close()
        wake = getattr(self, "wake", None)
        if wake is not None:
            wake.close(0)
        self.lock.release()

    def request_stop(self, *_: Any) -> None:
        """Ask the loop to end (signal handlers and the shutdown op call this)."""
        self._stop.set()

    # -- the loop ----------------------------------------------------------------

    def run(self) -> int:
        """Serve until asked to stop; return the exit status."""
        try:
            info = self._bind()
        except BaseException:  # a bad key file, a socket that cannot be bound: leave nothing behind
            self._unbind()
            raise
        log.info("listening on %s (events %s), pid %d", info.requests, info.events, info.pid)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self.service.start()
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        if self.gate is not None:
            for sock in (self.gate.zap, self.gate.router, self.gate.pairing_sock):
                poller.register(sock, zmq.POLLIN)
        next_keepalive = time.monotonic() + KEEPALIVE_S
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self.wake in ready:
                    while self.wake.poll(0):
                        self.wake.recv()
                if self.router in ready:
                    for frames in received(self.router):
                        self._handle(frames)
                if self.gate is not None:
                    self._serve_remote(ready)
                self._flush()
                if time.monotonic() >= next_keepalive:
                    self._keepalive()
                    self.service.idle_tick()
                    next_keepalive = time.monotonic() + KEEPALIVE_S
        finally:
            self._shutdown()
        return 0

    def _serve_remote(self, ready: dict) -> None:
        """ZAP first (it holds up handshakes), then pairing, then requests from other computers."""
        gate = self.gate
        assert gate is not None
        if gate.zap in ready:
            gate.answer_zap()
        if gate.pairing_sock in ready:
            gate.answer_pairing()
        if gate.router in ready:
            for frames in received(gate.router, copy=False):
                if len(frames) < 2:
                    continue
                key = frames[1].get("User-Id")
                identity = REMOTE_PREFIX + frames[0].bytes
                name = gate.client_of(key)
                if name is None:
                    # Revoked since it connected: ZAP checked the key only then.
                    log.warning("refused a message from a revoked key (%s)", key)
                    req_id = (_readable_id(frames[2].bytes) if len(frames) > 2 else None) or ""
                    refused = ErrorReply.of(ProtocolError("unauthorized", REVOKED_MESSAGE))
                    self._send(identity, refused.to_header(req_id))
                    gate.connections.pop(identity, None)
                    self._client_gone(identity)
                    continue
                if identity not in gate.connections and len(gate.connections) >= MAX_REMOTE_CONNECTIONS:
                    self._forget_idle_connections()
                gate.connections[identity] = key
                self._handle([identity, *(f.bytes for f in frames[1:])], remote=name)

    def _forget_idle_connections(self) -> None:
        """Drop remembered remote connections that have no job (they may be long closed)."""
        assert self.gate is not None
        busy = {j.identity for j in self.service.coordinator.jobs()}
        self.gate.connections = {i: k for i, k in self.gate.connections.items() if i in busy}

    def _remote_refusal(self, name: str, identity: bytes, header: dict[str, Any]) -> ProtocolError | None:
        """Why a remote client may not make this request, or None."""
        op, args = header.get("op"), header.get("args")
        if op in LOCAL_ONLY_OPS:
            return ProtocolError("not_allowed", f"{op} is for the daemon's own user, not for other computers")
        if isinstance(args, dict) and any(a in args for a in PATH_ARGS):
            return ProtocolError("not_allowed", "a path names a file on the daemon's machine; send the clip's bytes")
        if op in JOB_OPS and self.gate is not None:
            key = self.gate.connections.get(identity)
            mine = {i for i, k in self.gate.connections.items() if k == key}
            queued = sum(1 for j in self.service.coordinator.jobs() if j.identity in mine and not j.ended)
            cap = self.remote_settings.max_queued_jobs
            if queued >= cap:
                log.warning("remote client %s is over its cap of %d queued jobs", name, cap)
                return ProtocolError(
                    "too_many_jobs",
                    f"this computer already has {queued} jobs queued (the limit is {cap}); wait for one to end",
                )
        return None

    def _handle(self, frames: list[bytes], remote: str | None = None) -> None:
        identity, body = frames[0], frames[1:]
        key = self._key if remote is None else self.gate.signing_key  # type: ignore[union-attr]
        try:
            msg = decode(key, body)
        except SignatureError:
            log.warning("dropped a message with a bad signature (%d frames)", len(body))
            return
        except ProtocolError as exc:
            # With two frames or more the signature was good: the sender holds the
            # key, so an oversized header whose id can be read gets an answer
            # rather than leaving its client to time out.
            req_id = _readable_id(body[1]) if len(body) >= 2 else None
            if req_id is None:
                log.warning("dropped an unreadable message: %s", exc.message)
            else:
                log.warning("refused request %r: %s", req_id, exc.message)
                self._send(identity, ErrorReply.of(exc).to_header(req_id))
            return
        except Exception as exc:  # deeply nested JSON (RecursionError), huge integers (ValueError), ...
            log.warning("dropped an unreadable message: %s: %s", type(exc).__name__, exc)
            return
        req_id = msg.header.get("id") if isinstance(msg.header.get("id"), str) else ""
        try:
            if b"\\u" in body[1] and _has_lone_surrogates(msg.header):
                # Valid JSON, but not valid Unicode: echoed in a reply or event, it
                # would make the daemon's own JSON unencodable.
                raise ProtocolError("bad_message", "the header holds a lone surrogate (not valid Unicode)")
            req_id, op, args = check_request(msg.header)
            if remote is not None and (refusal := self._remote_refusal(remote, identity, msg.header)):
                raise refusal
            client = LOCAL_CLIENT if remote is None else self.gate.connections.get(identity, remote)  # type: ignore[union-attr]
            request = ReceivedRequest(identity, req_id, op, REQUESTS[op].from_data(args, msg.buffers), client)
            result = HANDLERS[op](self.service, request)
            if result is not None:
                self._send(identity, Result.of(result).to_header(req_id))
            if op == "shutdown":
                self.request_stop()
        except Exception as exc:  # a protocol code as it is, anything else "internal" (logged)
            error = as_coded(exc, f"handler for {msg.header.get('op')!r}")
            self._send(identity, ErrorReply.of(error).to_header(req_id[:128]))

    def _send(self, identity: bytes, header: dict[str, Any], buffers: tuple = ()) -> bool:
        router, key = self.router, self._key
        if identity.startswith(REMOTE_PREFIX):
            if self.gate is None:
                return False
            router, key = self.gate.router, self.gate.signing_key
            wire_id = identity[len(REMOTE_PREFIX) :]
        else:
            wire_id = identity
        try:
            frames = encode(key, header, buffers)
        except ValueError as exc:  # UnicodeEncodeError: one bad reply must not stop the loop
            log.error("dropped a reply that cannot be encoded: %s", exc)
            return False
        try:
            router.send_multipart([wire_id, *frames], zmq.NOBLOCK, copy=False)
            return True
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self._client_gone(identity)
            else:
                log.warning("could not send to a client: %s", exc)
            return False

    def _client_gone(self, identity: bytes) -> None:
        if self.gate is not None:
            self.gate.connections.pop(identity, None)
        self.service.coordinator.client_gone(identity)

    def _flush(self) -> None:
        while self._pending:
            self._pending.popleft()()

    def _publish(self, event: Event) -> None:
        try:
            frames = encode(self._key, event.to_header(self._seq + 1))
        except ValueError as exc:  # as in _send: never fatal
            log.error("dropped a %s event that cannot be encoded: %s", event.topic, exc)
            return
        self._seq += 1
        self.pub.send_multipart([event.topic.encode(), *frames], copy=False)

    def _keepalive(self) -> None:
        for identity, req_id, progress in self.service.coordinator.keepalives():
            self._send(identity, progress.to_header(req_id))

    def _shutdown(self) -> None:
        log.info("shutting down")
        self.service.stop()
        self._flush()
        self._unbind()


def _readable_id(head: bytes) -> str | None:
    """The request id in a signed header that ``decode`` refused, if one can be read."""
    try:
        header = json.loads(head)
    except Exception:  # anything at all: this is only a courtesy to the sender
        return None
    req_id = header.get("id") if isinstance(header, dict) else None
    if isinstance(req_id, str) and 0 < len(req_id) <= 128 and not _has_lone_surrogates(req_id):
        return req_id
    return None


def _has_lone_surrogates(value: Any) -> bool:
    """Whether a decoded JSON value holds a string that cannot be encoded as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
