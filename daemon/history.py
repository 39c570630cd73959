"""The recent jobs list, kept across restarts.

``stats`` shows the last jobs so a person can tell what was said and how it
went; a daemon restart (an update, a crash, a reboot) must not wipe that.
Entries hold the start of what people said, so the file is private (0600, in
the private data folder) like their voices. A job is written when it starts,
as ``running``, and replaced when it ends: one still ``running`` when the
file is read again was lost with a daemon that died (a crash, a kill), and
is listed as ``lost``. Writes happen on a thread of
their own: a job's end is announced without waiting for the disk, and a
failed write (a full disk) is logged and never stops a job from ending.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..ipc.atomic import OWNER_ONLY, write_atomic
from .storage import remove_temp_files_of

log = logging.getLogger(__name__)

#: How many ended jobs are kept.
HISTORY_LENGTH = 50
#: The state of a job written at its start; read back by the next daemon, it becomes ``LOST``.
RUNNING, LOST = "running", "lost"


class JobHistory:
    """The last ``HISTORY_LENGTH`` ended jobs' summaries, oldest first, saved in ``path``."""

    def __init__(self, path: Path, length: int = HISTORY_LENGTH) -> None:
        """Only one daemon writes ``path`` (it holds the instance lock): a temporary file of it is a crash's."""
        self.path = path
        remove_temp_files_of(path)
        self._entries: deque[dict[str, Any]] = deque(_read(path), maxlen=length)
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        #: Entries appended so far, and how many of them are on disk.
        self._version = self._saved = 0
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="history", daemon=True)
        self._writer.start()

    def begin(self, entry: dict[str, Any]) -> None:
        """A job started: it is saved as running, so that a daemon dying before its end leaves it lost."""
        with self._lock:
            self._entries.append({**entry, "state": RUNNING})
            self._version += 1
        self._dirty.set()

    def append(self, entry: dict[str, Any]) -> None:
        """Add an ended job, in place of its running entry; it reaches the disk shortly after."""
        with self._lock:
            self._forget_locked(entry.get("job"))
            self._entries.append(entry)
            self._version += 1
        self._dirty.set()

    def drop(self, job: str) -> None:
        """A job ended that is not listed (it failed): its running entry goes."""
        with self._lock:
            if self._forget_locked(job):
                self._version += 1
                self._dirty.set()

    def _forget_locked(self, job: Any) -> bool:
        running = [e for e in self._entries if e.get("state") == RUNNING and job and e.get("job") == job]
        for e in running:
            self._entries.remove(e)
        return bool(running)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Ended and lost jobs, oldest first (not those still running)."""
        with self._lock:
            return iter([e for e in self._entries if e.get("state") != RUNNING])

    def flush(self) -> None:
        """Save what is unsaved and stop the writer (at shutdown).

        Waits for a save in progress: the process exits right after, and a
        save cut off there would leave its temporary file and lose the last
        entries.
        """
        self._closing = True
        self._dirty.set()
        self._writer.join(timeout=10)

    def _write_loop(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            self._write()
            if self._closing:
                return

    def _write(self) -> None:
        with self._lock:
            if self._version == self._saved:
                return
            version = self._version
            data = json.dumps(list(self._entries), ensure_ascii=False)
        try:
            write_atomic(self.path, data + "\n", mode=OWNER_ONLY)
            self._saved = version
        except OSError as exc:  # a full or read-only disk: the list lives on in memory
            log.warning("could not save the recent jobs to %s: %s", self.path, exc)


def _read(path: Path) -> list[dict[str, Any]]:
    """The saved list; a missing, unreadable or foreign file gives an empty one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("recent jobs in %s are unreadable (%s); starting a new list", path, exc)
        return []
    if not isinstance(data, list):
        log.warning("recent jobs in %s are not a list; starting a new list", path)
        return []
    entries = [entry for entry in data if isinstance(entry, dict)]
    for entry in entries:
        if entry.get("state") == RUNNING:  # its daemon died before the job's end
            entry["state"] = LOST
    return entries
