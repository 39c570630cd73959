"""Two computers on one machine: a daemon serving others over CURVE, and a client's own home.

Shared by the remote-mode protocol tests, the tray app's remote tests and
``bench/remote_bench.py``: each "computer" is a home folder
(``CHATTERBOX_TRAY_HOME``), and in-process pairing code runs as one of them
inside `home_env`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chatterbox_tray.ipc import endpoints

from .daemons import DaemonProcess, short_home


def free_port_pair() -> int:
    """A port P such that P and P + 1 (the pairing port) are both free on 127.0.0.1."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 1):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return port
    raise RuntimeError("no two free adjacent ports")


@contextlib.contextmanager
def home_env(home: Path) -> Iterator[None]:
    """Run in-process code as if on the computer whose folders are under ``home``."""
    old = os.environ.get(endpoints.HOME_ENV)
    os.environ[endpoints.HOME_ENV] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(endpoints.HOME_ENV, None)
        else:
            os.environ[endpoints.HOME_ENV] = old


def serving_daemon(env: dict[str, str] | None = None, **remote: Any) -> DaemonProcess:
    """A fake-engine daemon in a new home with remote mode on at a free loopback port (not started).

    ``remote`` adds to the ``remote`` settings object (e.g. ``max_queued_jobs``);
    the port is on the returned object as ``port``.
    """
    home = short_home()
    port = free_port_pair()
    (home / "config").mkdir(parents=True)
    settings = {"remote": {"enabled": True, "bind": f"127.0.0.1:{port}", **remote}}
    (home / "config" / "settings.json").write_text(json.dumps(settings))
    proc = DaemonProcess(home=home, env=env)
    proc.port = port  # type: ignore[attr-defined]
    return proc
