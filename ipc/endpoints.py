"""Where the daemon listens and how a client finds it.

On POSIX the daemon binds two ``ipc://`` sockets inside a per-user directory
with mode 0700: libzmq never chmods the socket files (they follow the umask),
so the directory is what keeps other users out. On Windows, which has no
usable ipc transport, it binds TCP on 127.0.0.1 with ephemeral ports.

Either way it writes a *connection file* (``daemon.json``, mode 0600) holding
the endpoints and a random HMAC key. Every message is signed with that key, so
on Windows only a process that can read the user's file can talk to the
daemon, and on POSIX the key is a second fence behind the directory.

The folders all come from platformdirs; ``CHATTERBOX_TRAY_HOME`` moves them
under one folder (tests, portable installs).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import OWNER_ONLY, write_atomic
from .protocol import PROTOCOL_VERSION, ProtocolError

APP_NAME = "chatterbox-tray"
HOME_ENV = "CHATTERBOX_TRAY_HOME"
#: Set to "1", a POSIX daemon binds loopback TCP as on Windows (benchmarks, tests of that path).
LOCAL_TCP_ENV = "CHATTERBOX_TRAY_LOCAL_TCP"
#: libzmq's ipc paths are limited to 107 bytes (sun_path minus the NUL).
MAX_IPC_PATH = 107


def _user_dir(under_home: str, platform_dir: str) -> Path:
    """``$CHATTERBOX_TRAY_HOME/under_home`` when that is set, else platformdirs' ``platform_dir`` for the app."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / under_home
    import platformdirs

    return Path(getattr(platformdirs, platform_dir)(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """User settings (settings.json)."""
    return _user_dir("config", "user_config_dir")


def settings_file() -> Path:
    """The daemon's settings.json (its owner edits it; ``audio.local_player`` reads this computer's speaker from it)."""
    return config_dir() / "settings.json"


def data_dir() -> Path:
    """The voice library: clips and their manifest."""
    return _user_dir("data", "user_data_dir")


def cache_dir() -> Path:
    """The conditionals cache's disk tier."""
    return _user_dir("cache", "user_cache_dir")


def daemon_log() -> Path:
    """The daemon's log file (its folder is made when a client starts a daemon)."""
    return _user_dir("log", "user_log_dir") / "daemon.log"


def runtime_dir() -> Path:
    """The per-user folder holding the sockets, lock and connection file.

    XDG_RUNTIME_DIR when the session has one (it is per-user, 0700 and wiped
    at logout); otherwise a ``chatterbox-tray-<uid>`` folder in the temp dir.
    Kept short because ipc paths are limited to 107 bytes.
    """
    if os.environ.get(HOME_ENV) or sys.platform == "win32":
        return _user_dir("run", "user_runtime_dir")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        return Path(xdg) / APP_NAME
    return Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as a 0700 folder owned by us, or refuse if someone else owns it.

    A folder in /tmp could have been made by another user to catch our
    sockets; we never use one we do not own.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform != "win32":
        info = path.stat()
        if info.st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to uid {info.st_uid}, not to us; refusing to use it")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
    return path


def connection_file() -> Path:
    """The daemon's connection file."""
    return runtime_dir() / "daemon.json"


@dataclass(frozen=True)
class ConnectionInfo:
    """What a client needs to reach the daemon: endpoints and key."""

    requests: str
    events: str
    key: str
    pid: int
    protocol: int = PROTOCOL_VERSION
    transport: str = "ipc"

    @property
    def key_bytes(self) -> bytes:
        """The HMAC key as bytes (the file holds it as hex)."""
        return self.key.encode("ascii")


def new_key() -> str:
    """A fresh random key for a daemon run."""
    return secrets.token_hex(32)


def local_endpoints(run_dir: Path) -> tuple[str, str]:
    """The request and event endpoints a daemon should bind.

    ``tcp://127.0.0.1:*`` on Windows; the daemon rewrites the ``*`` to the
    bound port before writing the connection file.
    """
    if sys.platform == "win32" or os.environ.get(LOCAL_TCP_ENV) == "1":
        return "tcp://127.0.0.1:*", "tcp://127.0.0.1:*"
    req, ev = run_dir / "req.sock", run_dir / "events.sock"
    if len(str(ev).encode()) > MAX_IPC_PATH:
        raise OSError(f"socket path {ev} is over libzmq's {MAX_IPC_PATH}-byte limit; set {HOME_ENV}")
    return f"ipc://{req}", f"ipc://{ev}"


def write_connection(info: ConnectionInfo, path: Path | None = None) -> Path:
    """Write the connection file atomically, readable by the user only."""
    path = path or connection_file()
    write_atomic(path, json.dumps(asdict(info)), mode=OWNER_ONLY)
    return path


def read_connection(path: Path | None = None) -> ConnectionInfo:
    """Read the connection file; raise FileNotFoundError or ProtocolError."""
    path = path or connection_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ConnectionInfo(
            requests=str(data["requests"]),
            events=str(data["events"]),
            key=str(data["key"]),
            pid=int(data["pid"]),
            protocol=int(data.get("protocol", 0)),
            transport=str(data.get("transport", "ipc")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError("bad_message", f"connection file {path} is unreadable: {exc}") from None
