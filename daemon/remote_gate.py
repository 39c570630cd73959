"""Serving other computers: the CURVE socket's gatekeeper and the pairing socket.

Only when settings.json says ``"remote": {"enabled": true}`` (or the daemon
runs with ``--remote-bind``). Then the daemon also binds

* a ``ROUTER`` on TCP with CURVE (``remote.bind``), whose ZAP domain is
  answered here, on the main loop's own ``REP`` socket at
  ``inproc://zeromq.zap.01``: a key not in ``authorized_keys`` is refused and
  the refusal logged with the peer's address. The ZAP socket is bound before
  the CURVE socket, and the CURVE socket enforces its domain, so no
  connection is ever accepted without asking us;
* a plain ``ROUTER`` on the next port for pairing (ipc/pairing.py): it answers
  only requests naming a live invite.

ZAP runs once per connection, so revocation is also checked on every
message: ZAP's reply sets the connection's User-Id to the client's key, each
received frame carries it (``frame.get("User-Id")``), and `Gate.client_of`
looks it up in the authorized list, re-read whenever the file changes.

Nothing here blocks: the invite key was stretched by ``remote invite``, so
pairing costs the loop two HMACs; the authorized list is re-read only when
its mtime moves.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils import z85

from ..ipc import pairing, remote

log = logging.getLogger(__name__)

#: Internal identities of remote connections start with this; a local ROUTER
#: identity is either 5 bytes (libzmq's own) or does not start with a zero byte.
REMOTE_PREFIX = b"\x00remote:"
#: Ops a remote client may not use: they change or stop the daemon for its owner, or change
#: the user's own dictionary (another computer may read it: its text is spoken with it).
_OWNER_OPS = frozenset({"shutdown", "settings.set", "reload", "retry_load", "audio.set", "cache.clear"})
LOCAL_ONLY_OPS = _OWNER_OPS | {"words.add", "words.remove", "words.import"}
#: Arguments that name a file on the daemon's machine; remote clients send bytes.
PATH_ARGS = ("path", "voice_path")
#: Ops that add a job to a client's share of the queue.
JOB_OPS = frozenset({"synthesize", "speak"})
#: A pairing exchange must finish within this after it started.
PAIR_STEP_S = 30.0


@dataclass
class _PendingPairing:
    """A pairing exchange between its two steps."""

    name: str
    client_key: str
    nc: str
    ns: str
    started: float
    data: bytes


class PortInUse(Exception):
    """Another program holds remote mode's port (or the pairing port after it)."""


def _port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@dataclass
class Gate:
    """The remote sockets, who is authorized, and each remote connection's client."""

    ctx: zmq.Context
    settings: remote.RemoteSettings
    keys: remote.KeyPair = field(init=False)
    router: zmq.Socket = field(init=False)
    pairing_sock: zmq.Socket = field(init=False)
    zap: zmq.Socket = field(init=False)
    _authorized: dict[str, str] = field(default_factory=dict)  # key -> name
    _mtime: float | None = None
    _pending: dict[str, _PendingPairing] = field(default_factory=dict)
    _attempts: dict[str, int] = field(default_factory=dict)
    _failed_port: int = 0
    #: internal identity -> client key, for the per-client job cap.
    connections: dict[bytes, str] = field(default_factory=dict)

    def bind(self) -> tuple[str, str]:
        """Bind ZAP, then the CURVE socket, then pairing; return the two TCP endpoints.

        Raises PortInUse when either port is taken (the caller goes on without
        remote mode), RemoteError or ZMQError otherwise; whatever was bound
        before the failure is closed again.
        """
        self.keys = remote.load_or_create_keypair(remote.server_key_file())
        self._reload()
        try:
            return self._bind_sockets()
        except zmq.ZMQError as exc:
            self.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"remote mode off: port {self._failed_port} is in use") from None
            raise

    def _bind_sockets(self) -> tuple[str, str]:
        self.zap = self.ctx.socket(zmq.REP)
        self.zap.setsockopt(zmq.LINGER, 0)
        self.zap.bind("inproc://zeromq.zap.01")
        curve_ep, pair_ep = self.settings.endpoints()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.CURVE_SERVER, 1)
        self.router.setsockopt(zmq.CURVE_SECRETKEY, self.keys.secret.encode("ascii"))
        self.router.setsockopt(zmq.ZAP_DOMAIN, remote.ZAP_DOMAIN.encode())
        self.router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.router.setsockopt(zmq.LINGER, 500)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        self.router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        self._failed_port = _port_of(curve_ep)
        self.router.bind(curve_ep)
        self.pairing_sock = self.ctx.socket(zmq.ROUTER)
        self.pairing_sock.setsockopt(zmq.LINGER, 0)
        self.pairing_sock.setsockopt(zmq.MAXMSGSIZE, 65536)
        self._failed_port = _port_of(pair_ep)
        self.pairing_sock.bind(pair_ep)
        pairing.prune_invites()
        curve = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        paired = self.pairing_sock.getsockopt_string(zmq.LAST_ENDPOINT)
        mechanism = {zmq.CURVE: "CURVE", zmq.NULL: "NULL", zmq.PLAIN: "PLAIN"}.get(
            self.router.getsockopt(zmq.MECHANISM), "unknown"
        )
        log.info(
            "serving the network with CURVE on %s (mechanism %s; pairing on %s), key %s, %d authorized client(s)",
            curve,
            mechanism,
            paired,
            remote.fingerprint(self.keys.public),
            len(self._authorized),
        )
        return curve, paired

    @property
    def signing_key(self) -> bytes:
        """The HMAC key of messages on the CURVE socket (see ipc.remote.signing_key)."""
        return remote.signing_key(self.keys.public).encode("ascii")

    def close(self) -> None:
        """Close the sockets (those that were made: a failed bind closes what it had)."""
        for name in ("router", "pairing_sock", "zap"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close(0)

    # -- who is authorized -------------------------------------------------------------

    def _reload(self) -> None:
        path = remote.authorized_keys_file()
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime and self._mtime is not None:
            return
        self._mtime = mtime
        self._authorized = {key: name for name, key in remote.read_authorized(path).items()}

    def client_of(self, user_id: str | None) -> str | None:
        """The authorized name of a connection's key now, or None (unknown or revoked)."""
        if not user_id:
            return None
        self._reload()
        return self._authorized.get(user_id)

    # -- ZAP (RFC 27) --------------------------------------------------------------------

    def answer_zap(self) -> None:
        """Answer the waiting ZAP requests: 200 for an authorized key, 400 (logged) otherwise."""
        for frames in received(self.zap):
            if len(frames) < 6:
                self.zap.send_multipart([b"1.0", b"", b"500", b"malformed ZAP request", b"", b""])
                continue
            version, request_id, domain, address, _identity, mechanism = frames[:6]
            peer = address.decode("utf-8", "replace")
            status, text, user = b"400", b"not authorized", b""
            if version != b"1.0" or domain != remote.ZAP_DOMAIN.encode() or mechanism != b"CURVE" or len(frames) != 7:
                log.warning("refused a connection from %s: not CURVE in our domain", peer)
            else:
                key = z85.encode(frames[6]).decode("ascii")
                name = self.client_of(key)
                if name is None:
                    log.warning("refused a connection from %s: key %s is not authorized", peer, remote.fingerprint(key))
                else:
                    status, text, user = b"200", b"OK", key.encode("ascii")
                    log.info("remote client %s connected from %s", name, peer)
            self.zap.send_multipart([b"1.0", request_id, status, text, user, b""])

    # -- pairing ---------------------------------------------------------------------------

    def answer_pairing(self) -> None:
        """Answer the waiting pairing messages (ipc/pairing.py has the exchange)."""
        for frames in received(self.pairing_sock, most=20):
            if len(frames) != 2:
                continue
            identity, body = frames
            try:
                message = json.loads(body)
                if not isinstance(message, dict):
                    raise ValueError("not an object")
                reply = self._pair_step(message, identity)
            except pairing.PairingError as exc:
                reply = {"ok": False, "code": "bad_code", "message": str(exc)}
            except Exception as exc:  # hostile input of any shape: answered, never fatal
                log.warning("pairing: refused a malformed message: %s: %s", type(exc).__name__, exc)
                reply = {"ok": False, "code": "bad_message", "message": "that is not a pairing message"}
            with contextlib.suppress(zmq.ZMQError):
                self.pairing_sock.send_multipart([identity, json.dumps(reply).encode()], zmq.NOBLOCK)

    def _pair_step(self, message: dict[str, Any], identity: bytes) -> dict[str, Any]:
        op, invite_id = message.get("op"), str(message.get("invite", ""))
        refused = pairing.PairingError(
            "the daemon knows no such invite: the code is wrong, or it expired, or it was already used; "
            "make a new one with `chatterbox-tray remote invite` on the daemon's machine"
        )
        invite = pairing.load_invite(invite_id)
        if invite is None:
            log.warning("pairing: refused an attempt for an unknown, used or expired invite")
            raise refused
        if op == "pair.start":
            name = remote.check_name(str(message["name"]), "client name")
            client_key, nc = str(message["client_key"]), str(message["nonce"])
            z85.decode(client_key.encode("ascii"))
            if len(client_key) != 40 or not 16 <= len(nc) <= 64:
                raise ValueError("bad key or nonce")
            self._count_attempt(invite_id)
            ns = secrets.token_hex(16)
            data = pairing.transcript(invite_id, name, client_key, self.keys.public, nc, ns)
            self._pending[invite_id] = _PendingPairing(name, client_key, nc, ns, time.monotonic(), data)
            return {
                "ok": True,
                "salt": invite.salt.hex(),
                "server_key": self.keys.public,
                "nonce": ns,
                "proof": pairing.proof(invite.key, "server", data),
            }
        if op == "pair.finish":
            pending = self._pending.get(invite_id)
            if pending is None or pending.nc != str(message.get("nonce")):
                raise pairing.PairingError("no pairing is under way for that code; start again")
            if time.monotonic() - pending.started > PAIR_STEP_S:
                del self._pending[invite_id]
                raise pairing.PairingError("the pairing took too long; start again")
            expected = pairing.proof(invite.key, "client", pending.data)
            if not hmac.compare_digest(expected, str(message.get("proof", ""))):
                del self._pending[invite_id]
                log.warning("pairing: a wrong proof for invite %s", invite_id)
                raise pairing.PairingError("the code does not match; nothing was changed")
            if not pairing.drop_invite(invite_id):  # someone else used it meanwhile
                raise refused
            del self._pending[invite_id]
            self._attempts.pop(invite_id, None)
            stored = remote.authorize(pending.name, pending.client_key)
            self._mtime = None  # re-read at once
            log.info("pairing: authorized client %s (key %s)", stored, remote.fingerprint(pending.client_key))
            return {"ok": True, "name": stored, "label": machine_label()}  # the GPU's name once loaded
        raise ValueError(f"unknown op {op!r}")

    def _count_attempt(self, invite_id: str) -> None:
        self._attempts[invite_id] = self._attempts.get(invite_id, 0) + 1
        if self._attempts[invite_id] > pairing.MAX_ATTEMPTS:
            pairing.drop_invite(invite_id)
            self._pending.pop(invite_id, None)
            log.warning("pairing: invite %s deleted after %d attempts", invite_id, pairing.MAX_ATTEMPTS)
            raise pairing.PairingError("too many attempts with this code; it was cancelled, make a new one")


def received(sock: zmq.Socket, most: int = 100, copy: bool = True) -> Iterator[list[Any]]:
    """The messages waiting on ``sock``, ``most`` at a time, so that the loop's other work keeps flowing."""
    for _ in range(most):
        try:
            yield sock.recv_multipart(zmq.NOBLOCK, copy=copy)
        except zmq.Again:
            return


def machine_label() -> str:
    """What a remote client shows for this daemon: "gpu-box, NVIDIA GeForce RTX 4090".

    The GPU's name only when torch is already loaded (never imported for
    this: the fake engine and a still-loading model go without it).
    """
    try:
        host = os.uname().nodename.split(".")[0]
    except AttributeError:  # Windows
        host = os.environ.get("COMPUTERNAME", "")
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return f"{host}, {torch.cuda.get_device_name(0)}"
    except Exception:  # a broken driver must not break pairing
        log.debug("no GPU name for the pairing label", exc_info=True)
    return host
