"""The bridges the daemon runs for the user: started, watched, restarted with backoff, stopped.

With the ``bridge_openai`` or ``bridge_wyoming`` setting on, the daemon runs
``python -m chatterbox_tray.bridges openai|wyoming`` as its own child, so the
endpoint is there whenever the daemon is (issue 14). A bridge stays a plain
client of the protocol in its own process: a crash or a hung HTTP client
there never reaches the model, and the daemon never imports HTTP or Wyoming
code.

* The child is told this daemon's connection file (``--connection``) and
  ``--no-start``: it serves this daemon and never starts another.
* A child that exits is started again after 1, 2, 4, ... up to 60 s; one that
  ran a minute before dying starts the count again. Its exit is logged (its
  own output goes to the daemon's log: a taken port says so there).
* Turning a setting off, or changing the bridge's port or address, stops the
  child (SIGTERM, then SIGKILL after 5 s); the daemon's shutdown stops them all.
  On Linux a child also gets SIGTERM if the daemon dies without a shutdown
  (``PR_SET_PDEATHSIG``), so no orphan keeps the port.

One thread watches the children; settings changes only wake it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds before the n-th restart in a row of a bridge that keeps dying.
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
#: A child that ran this long before it died was healthy: its backoff starts over.
STABLE_S = 60.0
#: How often the watcher looks at the children when nothing wakes it.
POLL_S = 0.5
STOP_TIMEOUT_S = 5.0


@dataclass
class _Child:
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    restarts: int = 0
    next_start: float = 0.0
    last_exit: int | None = None


def _load_prctl() -> Any:
    """libc's prctl, looked up here: the child, between fork and exec, must not import or load anything."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: SIGTERM this child when the thread that started it (the watcher) goes."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def bridge_commands(settings: Any, connection: Path) -> dict[str, list[str]]:
    """The command of each bridge the settings turn on."""
    base = [sys.executable, "-m", "chatterbox_tray.bridges"]
    common = ["--connection", str(connection), "--no-start"]
    wanted: dict[str, list[str]] = {}
    if settings.bridge_openai:
        port = str(settings.bridge_openai_port)
        wanted["openai"] = [*base, "openai", "--host", "127.0.0.1", "--port", port, *common]
    if settings.bridge_wyoming:
        zeroconf = ["--zeroconf"] if settings.bridge_wyoming_zeroconf else []
        wanted["wyoming"] = [*base, "wyoming", "--uri", settings.bridge_wyoming_uri, *zeroconf, *common]
    return wanted


class BridgeSupervisor:
    """Runs the wanted bridges as children of the daemon and keeps them running."""

    def __init__(self, connection: Path) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self._wanted: dict[str, list[str]] = {}
        self._children: dict[str, _Child] = {}
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def apply(self, settings: Any) -> None:
        """Take the bridge settings: start, stop or restart children to match (in the watcher)."""
        wanted = bridge_commands(settings, self.connection)
        with self._lock:
            if self._closed:
                return
            self._wanted = wanted
            if self._thread is None and wanted:
                self._thread = threading.Thread(target=self._watch, name="bridges", daemon=True)
                self._thread.start()
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """Each wanted bridge: running or not, its pid, restarts so far, its last exit status."""
        with self._lock:
            return {
                name: {
                    "running": child.proc is not None and child.proc.poll() is None,
                    "pid": child.proc.pid if child.proc is not None else None,
                    "restarts": child.restarts,
                    "last_exit": child.last_exit,
                }
                for name, child in self._children.items()
                if name in self._wanted
            }

    def close(self) -> None:
        """Stop every child and the watcher (the daemon is shutting down)."""
        with self._lock:
            self._closed = True
            self._wanted = {}
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT_S * 2 + 5)

    # -- the watcher -----------------------------------------------------------------

    def _watch(self) -> None:
        while True:
            with self._lock:
                wanted, closed = dict(self._wanted), self._closed
            for name in [n for n, c in self._children.items() if wanted.get(n) != c.argv]:
                self._stop(name, self._children[name])
                with self._lock:
                    del self._children[name]
            if closed:
                return
            now = time.monotonic()
            for name, argv in wanted.items():
                with self._lock:
                    child = self._children.setdefault(name, _Child(argv))
                self._tend(name, child, now)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _tend(self, name: str, child: _Child, now: float) -> None:
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                return
            ran = now - child.started
            child.failures = 1 if ran >= STABLE_S else child.failures + 1
            child.last_exit = code
            delay = BACKOFF_S[min(child.failures, len(BACKOFF_S)) - 1]
            child.next_start = now + delay
            child.proc = None
            log.warning(
                "the %s bridge exited with status %s after %.1f s; starting it again in %.0f s", name, code, ran, delay
            )
        if now < child.next_start:
            return
        try:
            proc = subprocess.Popen(
                child.argv,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if _PRCTL is not None else None,
            )
        except OSError as exc:
            child.failures += 1
            child.next_start = now + BACKOFF_S[min(child.failures, len(BACKOFF_S)) - 1]
            log.error("cannot start the %s bridge: %s", name, exc)
            return
        with self._lock:
            if child.started:
                child.restarts += 1
            child.proc, child.started = proc, now
        log.info("started the %s bridge (pid %d)", name, proc.pid)

    @staticmethod
    def _stop(name: str, child: _Child) -> None:
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        log.info("stopped the %s bridge (pid %d)", name, proc.pid)
