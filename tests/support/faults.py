"""Fault injection for tests: die at a named step of a file write.

A crash in the middle of a write is the case atomic writes exist for, and
the one a test cannot reach by killing a process from outside: the write
takes microseconds. So `install` makes each write step of ``ipc/atomic.py``
call `step` (its ``fault_hook``), and when the environment variable `FAULT_ENV` names that write and that step, the
process kills itself there with SIGKILL (no ``finally``, no ``atexit``, no
flush: what a power cut or the OOM killer leaves).

The variable reads ``<site>:<step>`` or ``<site>:<step>:<n>`` (die at the
n-th time that step is reached, counting from 1), for example
``CHATTERBOX_TRAY_FAULT=voices.manifest:after-tmp-write``. Sites are the
callers' names for their writes (`SITES`); steps are `STEPS`. Unset, as it
always is outside the tests, `step` costs one dictionary lookup.

Test-only, so it lives here and not in the product: a daemon that should die
at a fault runs as ``python -m tests.support.faults chatterbox_tray.daemon
ARGS`` (`DaemonProcess` does so when its environment names a fault), which
installs the hook and then runs the daemon's module.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading

from chatterbox_tray.ipc import atomic

__all__ = ["FAULT_ENV", "SITES", "STEPS", "install", "step"]

FAULT_ENV = "CHATTERBOX_TRAY_FAULT"

#: The writes that name themselves (the ``site`` argument of ``ipc/atomic.py``'s functions).
SITES = ("voices.clip", "voices.manifest", "settings", "cache")

#: The steps of one atomic write, in order:
#: ``tmp-open``: the temporary file exists, empty;
#: ``tmp-half``: half the bytes are written, nothing flushed;
#: ``after-tmp-write``: the temporary file is whole and fsync'd, the target untouched;
#: ``after-replace``: the target is replaced, the folder not yet fsync'd.
STEPS = ("tmp-open", "tmp-half", "after-tmp-write", "after-replace")

_counts: dict[str, int] = {}
_lock = threading.Lock()


def step(site: str, name: str) -> None:
    """Kill this process if `FAULT_ENV` asks for ``site:name`` (at this occurrence)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec or not site:
        return
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3) or parts[0] != site or parts[1] != name:
        return
    occurrence = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else 1
    target = f"{site}:{name}"
    with _lock:
        _counts[target] = _counts.get(target, 0) + 1
        if _counts[target] != occurrence:
            return
    sys.stderr.write(f"fault injection: killing process {os.getpid()} at {target}\n")
    sys.stderr.flush()
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)  # Windows: no SIGKILL; as abrupt as it gets


def install() -> None:
    """Make this process's atomic writes call `step` at each of their steps."""
    atomic.fault_hook = step


if __name__ == "__main__":  # python -m tests.support.faults MODULE ARGS...: MODULE, with faults installed
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
