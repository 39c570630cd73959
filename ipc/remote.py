"""A daemon on another computer: keys, the authorized list, pinned daemons.

Both sides keep their CurveZMQ key pair in their config folder (the secret
key readable by its owner only). The daemon keeps ``authorized_keys``, one
named client public key a line, as ssh does; a client keeps ``daemons.json``,
the daemons it paired with and each one's pinned public key. The daemon
reads its list again whenever the file changes, so ``remote revoke`` takes
effect on the client's next message (docs/security.md).

Here and not in daemon/ because both the CLI (``chatterbox-tray remote``)
and the daemon read these files, and ipc/ imports nothing from daemon/.
Light: zmq and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import endpoints
from .atomic import OWNER_ONLY, write_atomic

#: ``remote.bind``'s default port; pairing listens on the next one.
DEFAULT_PORT = 7361
#: Queued or playing jobs one remote client may have at once (``too_many_jobs`` beyond).
DEFAULT_MAX_QUEUED = 4
#: The ZAP domain of the daemon's CURVE socket.
ZAP_DOMAIN = "chatterbox-remote"
#: A name for a daemon or a client: what ``remote add`` and ``revoke`` take.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The environment variable naming the daemon clients use (``--daemon`` wins).
DAEMON_ENV = "CHATTERBOX_TRAY_DAEMON"


class RemoteError(Exception):
    """A remote-mode problem in plain words (bad name, unknown daemon, bad file)."""


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a usable name; RemoteError otherwise."""
    if not NAME_RE.match(name):
        raise RemoteError(
            f"{what} {name!r} is not usable: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def default_client_name() -> str:
    """What a daemon calls this computer unless told otherwise: its short host name."""
    import socket

    return socket.gethostname().split(".")[0] or "client"


def remote_dir() -> Path:
    """Where both sides keep their remote-mode files (inside the config folder)."""
    return endpoints.config_dir() / "remote"


# -- key pairs -------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """A CurveZMQ key pair, both halves Z85 text (40 characters)."""

    public: str
    secret: str


def fingerprint(public_z85: str) -> str:
    """A short, readable fingerprint of a public key: SHA-256 of its 32 bytes, 64 bits shown."""
    from zmq.utils import z85

    digest = hashlib.sha256(z85.decode(public_z85.encode("ascii"))).hexdigest()[:16]
    return "SHA256:" + ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def load_or_create_keypair(path: Path) -> KeyPair:
    """The key pair in ``path``, made on first use; the file is 0600 (a looser one is refused).

    A secret key others can read is no secret: rather than use it quietly,
    the daemon stops and says so (the owner fixes it with chmod 600).
    """
    import zmq

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        public, secret = zmq.curve_keypair()
        pair = KeyPair(public.decode("ascii"), secret.decode("ascii"))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps({"public": pair.public, "secret": pair.secret}) + "\n", mode=OWNER_ONLY)
        return pair
    except ValueError as exc:
        raise RemoteError(f"{path} is not a key file ({exc}); move it away to make a new key pair") from None
    if os.name != "nt":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise RemoteError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        pair = KeyPair(str(data["public"]), str(data["secret"]))
        if zmq.curve_public(pair.secret.encode("ascii")).decode("ascii") != pair.public:
            raise ValueError("the public key does not match the secret key")
    except (KeyError, TypeError, ValueError) as exc:
        raise RemoteError(f"{path} is not a usable key file ({exc})") from None
    return pair


def server_key_file() -> Path:
    """The daemon's own key pair."""
    return remote_dir() / "server_key.json"


def client_key_file() -> Path:
    """This machine's key pair as a client of remote daemons."""
    return remote_dir() / "client_key.json"


# -- the daemon's authorized clients ------------------------------------------------


def authorized_keys_file() -> Path:
    """The daemon's authorized clients: ``NAME KEY`` a line, ``#`` comments."""
    return remote_dir() / "authorized_keys"


def read_authorized(path: Path | None = None) -> dict[str, str]:
    """Client name to public key (Z85). A missing file is an empty list; bad lines are skipped."""
    path = path or authorized_keys_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and NAME_RE.match(parts[0]) and len(parts[1]) == 40:
            out[parts[0]] = parts[1]
    return out


def write_authorized(keys: dict[str, str], path: Path | None = None) -> None:
    """Replace the authorized list, atomically, owner-only."""
    path = path or authorized_keys_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = ["# chatterbox-tray: clients allowed to use this daemon over the network (NAME KEY)"]
    lines += [f"{name} {key}" for name, key in keys.items()]
    write_atomic(path, "\n".join(lines) + "\n", mode=OWNER_ONLY)


def authorize(name: str, key: str, path: Path | None = None) -> str:
    """Add a client key; returns the name it was stored under (made unique with -2, -3...)."""
    keys = read_authorized(path)
    for existing, value in keys.items():
        if value == key:
            return existing  # pairing again from the same machine changes nothing
    stored, n = name, 2
    while stored in keys:
        stored, n = f"{name}-{n}", n + 1
    keys[stored] = key
    write_authorized(keys, path)
    return stored


def revoke(name: str, path: Path | None = None) -> str:
    """Remove a client by name; returns its key. RemoteError if there is no such client."""
    keys = read_authorized(path)
    if name not in keys:
        raise RemoteError(f"no authorized client is called {name!r} (authorized: {', '.join(keys) or 'none'})")
    key = keys.pop(name)
    write_authorized(keys, path)
    return key


# -- the daemon's remote settings ---------------------------------------------------


@dataclass(frozen=True)
class RemoteSettings:
    """The ``remote`` object of settings.json. Only its owner edits it: no client can, over any socket."""

    enabled: bool = False
    #: ``HOST:PORT`` of the CURVE socket; pairing listens on PORT + 1.
    bind: str = f"0.0.0.0:{DEFAULT_PORT}"
    max_queued_jobs: int = DEFAULT_MAX_QUEUED

    def endpoints(self) -> tuple[str, str]:
        """The CURVE socket's and the pairing socket's tcp:// endpoints."""
        host, port = split_host_port(self.bind, DEFAULT_PORT)
        return f"tcp://{host}:{port}", f"tcp://{host}:{port + 1}"


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` as (host, port); RemoteError in plain words when it is not."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host:
        raise RemoteError(f"{text!r} has no host; write HOST or HOST:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65534:
        raise RemoteError(f"{text!r}: the port must be a number from 1 to 65534")
    return host, int(port)


def remote_settings(raw: Any) -> RemoteSettings:
    """Read settings.json's ``remote`` value; RemoteError naming the bad field."""
    if raw is None:
        return RemoteSettings()
    if not isinstance(raw, dict):
        raise RemoteError('settings \'remote\' must be an object like {"enabled": true, "bind": "0.0.0.0:7361"}')
    enabled, bind = raw.get("enabled", False), raw.get("bind", RemoteSettings.bind)
    cap = raw.get("max_queued_jobs", DEFAULT_MAX_QUEUED)
    if not isinstance(enabled, bool):
        raise RemoteError("settings remote.enabled must be true or false")
    if not isinstance(bind, str):
        raise RemoteError("settings remote.bind must be a string HOST:PORT")
    split_host_port(bind, DEFAULT_PORT)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 1000:
        raise RemoteError("settings remote.max_queued_jobs must be a whole number from 1 to 1000")
    return RemoteSettings(enabled, bind, cap)


# -- the daemons a client paired with -----------------------------------------------


@dataclass(frozen=True)
class RemoteDaemon:
    """A daemon this client paired with, and its pinned key."""

    name: str
    host: str
    port: int
    server_key: str
    #: What the daemon said about itself at pairing ("RTX 4090"), for display.
    label: str = ""

    @property
    def requests(self) -> str:
        """The daemon's CURVE request endpoint."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"

    @property
    def where(self) -> str:
        """Its address and what it said about itself, for people: "gpu-box:7361, RTX 4090"."""
        return f"{self.host}:{self.port}" + (f", {self.label}" if self.label else "")


def daemons_file() -> Path:
    """The client's pinned daemons."""
    return remote_dir() / "daemons.json"


def read_daemons(path: Path | None = None) -> dict[str, RemoteDaemon]:
    """Name to pinned daemon; a missing file is none."""
    path = path or daemons_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise RemoteError(f"{path} is unreadable ({exc})") from None
    out = {}
    for name, item in (raw or {}).items():
        try:
            out[name] = RemoteDaemon(
                name, str(item["host"]), int(item["port"]), str(item["server_key"]), str(item.get("label", ""))
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _write_daemons(daemons: dict[str, RemoteDaemon], path: Path, paired: str = "") -> None:
    """Write the pinned daemons; the one just ``paired`` gets the time too."""
    data = {n: {k: v for k, v in asdict(d).items() if k != "name"} for n, d in daemons.items()}
    if paired:
        data[paired]["paired_at"] = round(time.time())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(data, indent=2) + "\n", mode=OWNER_ONLY)


def save_daemon(daemon: RemoteDaemon, path: Path | None = None) -> None:
    """Pin a daemon (replacing one of the same name)."""
    path = path or daemons_file()
    _write_daemons({**read_daemons(path), daemon.name: daemon}, path, paired=daemon.name)


def forget_daemon(name: str, path: Path | None = None) -> None:
    """Unpin a daemon; RemoteError if there is none of that name."""
    path = path or daemons_file()
    daemons = read_daemons(path)
    if name not in daemons:
        raise RemoteError(f"no daemon called {name!r} is paired (paired: {', '.join(daemons) or 'none'})")
    del daemons[name]
    _write_daemons(daemons, path)


@dataclass(frozen=True)
class CurveConnection(endpoints.ConnectionInfo):
    """A ConnectionInfo for a daemon on another computer (``transport`` "curve").

    Its pinned public key, this client's key pair and the daemon's paired
    name; never written to a connection file.
    """

    server_key: str = ""
    public_key: str = ""
    secret_key: str = ""
    name: str = ""


def remote_connection(name: str) -> CurveConnection:
    """What a client needs to reach the paired daemon ``name`` (CURVE keys included)."""
    daemons = read_daemons()
    if name not in daemons:
        raise RemoteError(
            f"no daemon called {name!r} is paired (paired: {', '.join(daemons) or 'none'}); "
            "pair with: chatterbox-tray remote add NAME HOST CODE"
        )
    daemon = daemons[name]
    mine = load_or_create_keypair(client_key_file())
    return CurveConnection(
        requests=daemon.requests,
        events="",
        key=signing_key(daemon.server_key),
        pid=0,
        transport="curve",
        server_key=daemon.server_key,
        public_key=mine.public,
        secret_key=mine.secret,
        name=name,
    )


def signing_key(server_public: str) -> str:
    """The HMAC key of a CURVE connection: the daemon's public key text.

    It is no secret and adds no protection (CURVE encrypts and authenticates
    every frame); it keeps one frame layout for every transport.
    """
    return server_public
