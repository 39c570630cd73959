"""Starting the daemon from a client, detached, the way Speech Dispatcher autospawns.

The daemon gets its own session (POSIX) or process group without a console
(Windows), so closing the terminal or the tray app does not take it down.
Its output goes to the log file, not to the caller's terminal.
"""

from __future__ import annotations

import subprocess
import sys

from . import endpoints


def spawn_daemon(extra_args: list[str]) -> subprocess.Popen:
    """Start ``python -m chatterbox_tray.daemon`` in the background."""
    path = endpoints.daemon_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "ab")  # noqa: SIM115 - handed to the child
    kwargs: dict = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log, "close_fds": True}
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        kwargs["creationflags"] = flags | subprocess.CREATE_NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    try:
        return subprocess.Popen([sys.executable, "-m", "chatterbox_tray.daemon", *extra_args], **kwargs)
    finally:
        log.close()
