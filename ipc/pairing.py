"""Pairing a client with a remote daemon by a short one-time code.

``remote invite`` on the daemon's machine makes a code such as
``7KQD-M9XD-3FHT``: the first group names the invite (it travels in the
clear), the other two are the secret (40 bits). The code itself never
travels: both sides stretch the secret with scrypt into a key ``K`` (the
daemon keeps only ``K``, in an owner-only invite file, never the code), and
each side proves it knows ``K`` with an HMAC over the whole exchange (both
public keys, both names, both nonces). The client checks the daemon's proof
before it pins the daemon's key or reveals its own proof, so a machine that
pretends to be the daemon learns nothing it can use; the daemon adds the
client's key only after the client's proof checks out, and then deletes the
invite, so a code works once. docs/security.md has the threat model.

Messages on the pairing socket are single JSON frames (no HMAC signature:
there is no shared key yet; the proofs are the authentication).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import remote
from .atomic import OWNER_ONLY, write_atomic

#: Crockford's base32 without I, L, O, U: nothing to misread when typing a code.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: How long an invite lasts.
INVITE_TTL_S = 300.0
#: Pairing attempts one invite survives before it is deleted (wrong codes included).
MAX_ATTEMPTS = 3
#: scrypt's cost: about 50 ms and 16 MiB once per side, so that guessing the
#: 40-bit secret from an overheard proof takes far longer than an invite lives.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
#: How long a client waits for the daemon's pairing answers.
PAIR_TIMEOUT_S = 10.0


class PairingError(remote.RemoteError):
    """Pairing failed; the message says why in plain words, and nothing was changed."""


@dataclass(frozen=True)
class Invite:
    """One pending invite as the daemon keeps it."""

    id: str
    key: bytes
    salt: bytes
    expires: float


def new_code() -> tuple[str, str, str]:
    """(invite id, secret, the code a person types)."""
    invite_id = "".join(secrets.choice(ALPHABET) for _ in range(4))
    secret = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return invite_id, secret, f"{invite_id}-{secret[:4]}-{secret[4:]}"


def parse_code(code: str) -> tuple[str, str]:
    """(invite id, secret) from what a person typed (case, spaces and dashes forgiven)."""
    clean = "".join(c for c in code.upper() if c not in " -")
    clean = clean.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(clean) != 12 or any(c not in ALPHABET for c in clean):
        raise PairingError(f"{code!r} is not a pairing code: it looks like 7KQD-M9XD-3FHT (12 letters and digits)")
    return clean[:4], clean[4:]


def stretch(secret: str, salt: bytes) -> bytes:
    """The key both sides derive from the code's secret."""
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, **SCRYPT)


def transcript(invite_id: str, name: str, client_key: str, server_key: str, nc: str, ns: str) -> bytes:
    """Everything both proofs cover, in one canonical byte string."""
    return json.dumps([invite_id, name, client_key, server_key, nc, ns], separators=(",", ":")).encode()


def proof(key: bytes, role: str, data: bytes) -> str:
    """``role`` ("server" or "client") proves it holds ``key`` for this exchange."""
    return hmac.new(key, role.encode() + b"\0" + data, hashlib.sha256).hexdigest()


# -- invite files (daemon side) ----------------------------------------------------


def invites_dir() -> Path:
    """The daemon's pending invites, one owner-only file each."""
    return remote.remote_dir() / "invites"


def create_invite(ttl: float = INVITE_TTL_S) -> tuple[str, Invite]:
    """Make an invite: write its file, return (the code to show, the invite)."""
    invite_id, secret, code = new_code()
    salt = secrets.token_bytes(16)
    invite = Invite(invite_id, stretch(secret, salt), salt, time.time() + ttl)
    folder = invites_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"id": invite_id, "key": invite.key.hex(), "salt": salt.hex(), "expires": invite.expires}
    write_atomic(folder / f"{invite_id}.json", json.dumps(data), mode=OWNER_ONLY)
    return code, invite


def load_invite(invite_id: str) -> Invite | None:
    """A pending invite by id; None when there is none or it has expired (an expired one is deleted)."""
    if len(invite_id) != 4 or any(c not in ALPHABET for c in invite_id):
        return None
    path = invites_dir() / f"{invite_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        invite = Invite(data["id"], bytes.fromhex(data["key"]), bytes.fromhex(data["salt"]), float(data["expires"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if invite.expires < time.time():
        drop_invite(invite_id)
        return None
    return invite


def drop_invite(invite_id: str) -> bool:
    """Delete an invite; True if this call deleted it (so only one pairing can use it)."""
    try:
        os.unlink(invites_dir() / f"{invite_id}.json")
    except FileNotFoundError:
        return False
    return True


def prune_invites() -> None:
    """Delete expired invites."""
    folder = invites_dir()
    if folder.is_dir():
        for path in folder.glob("*.json"):
            load_invite(path.stem)


# -- the exchange (client side) ------------------------------------------------------


@dataclass(frozen=True)
class Paired:
    """What pairing gave the client."""

    daemon: remote.RemoteDaemon
    #: The name the daemon stored this client under (for ``remote revoke``).
    client_name: str
    fingerprint: str


def pair(name: str, host: str, code: str, client_name: str, timeout: float = PAIR_TIMEOUT_S) -> Paired:
    """Pair with the daemon at ``host`` using ``code``; pin it as ``name``.

    Raises PairingError (wrong, used or expired code; no answer; a daemon
    whose proof does not check out) with nothing changed on this machine.
    """
    import zmq
    from zmq.utils import z85

    remote.check_name(name, "daemon name")
    remote.check_name(client_name, "client name")
    invite_id, secret = parse_code(code)
    host_only, port = remote.split_host_port(host, remote.DEFAULT_PORT)
    mine = remote.load_or_create_keypair(remote.client_key_file())
    nc = secrets.token_hex(16)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, 65536)
    bracket = f"[{host_only}]" if ":" in host_only else host_only
    sock.connect(f"tcp://{bracket}:{port + 1}")
    try:

        def ask(message: dict[str, Any]) -> dict[str, Any]:
            sock.send(json.dumps(message).encode())
            if not sock.poll(int(timeout * 1000)):
                raise PairingError(
                    f"no answer from {host_only} port {port + 1} within {timeout:.0f} s: is the daemon "
                    "running there with remote.enabled, and does its firewall let this port through?"
                )
            try:
                answer = json.loads(sock.recv())
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise PairingError(f"{host_only} answered with something that is not a pairing reply")
            if not answer.get("ok"):
                raise PairingError(str(answer.get("message") or "the daemon refused the pairing"))
            return answer

        start = {"v": 1, "op": "pair.start", "invite": invite_id, "name": client_name, "nonce": nc}
        first = ask({**start, "client_key": mine.public})
        try:
            server_key, ns, salt = str(first["server_key"]), str(first["nonce"]), bytes.fromhex(first["salt"])
            their_proof = str(first["proof"])
            z85.decode(server_key.encode("ascii"))
        except (KeyError, ValueError, TypeError):
            raise PairingError(f"{host_only} sent a malformed pairing reply") from None
        key = stretch(secret, salt)
        data = transcript(invite_id, client_name, mine.public, server_key, nc, ns)
        if not hmac.compare_digest(proof(key, "server", data), their_proof):
            raise PairingError(
                "the code does not match (mistyped, or not the code the daemon showed); "
                "nothing was changed: check the code, or make a new one with `chatterbox-tray remote invite`"
            )
        done = ask({"v": 1, "op": "pair.finish", "invite": invite_id, "nonce": nc, "proof": proof(key, "client", data)})
        daemon = remote.RemoteDaemon(name, host_only, port, server_key, str(done.get("label", "")))
        remote.save_daemon(daemon)
        return Paired(daemon, str(done.get("name", client_name)), remote.fingerprint(server_key))
    finally:
        sock.close(0)
