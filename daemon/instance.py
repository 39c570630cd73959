"""One daemon per user: an OS file lock in the private runtime folder.

A second process binding the same ipc path would silently take the socket
over, so binding cannot decide who runs; the lock does. The OS drops the lock
when its holder dies, so a crashed daemon's lock is reclaimed by simply
taking it, and its leftover socket files are then removed before binding.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO


class AlreadyRunning(RuntimeError):
    """Another daemon of this user holds the lock."""


class InstanceLock:
    """An exclusive, non-blocking lock on ``<runtime>/daemon.lock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning with the holder's pid."""
        fh = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held for the process's life
        try:
            if sys.platform == "win32":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise AlreadyRunning(f"another Chatterbox Tray daemon is already running (pid {holder})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Drop the lock (the OS would at exit anyway)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
