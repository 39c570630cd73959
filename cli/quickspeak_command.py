"""Quick-speak from the command line: ``say --selection`` and the ``quick`` toggle.

``chatterbox-tray quick`` is what a desktop's own shortcut settings bind when
the tray app cannot grab a key itself (Wayland without the GlobalShortcuts
portal, or no tray app at all). Like the tray app's hotkey it toggles: when
something is speaking it stops all speech; otherwise it speaks the selected
text (PRIMARY on X11 and Wayland, else the clipboard) with the ``quick``
priority, which replaces whatever quick-speak was playing, and returns at once.
With a remote daemon the speech plays here, in this process, until it ends
or the next press stops it.
A keypress pays only this module's start-up (no torch, no Qt, no numpy at
import): see docs/hotkey.md for the measured figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal

from ..ipc import endpoints
from ..ipc import messages as m
from ..ipc import requests as rq
from ..ipc.client import Client
from ..ipc.core import pid_alive
from ..ipc.limits import MAX_QUICK_CHARS
from .selection import SelectionError, read_selection


def selected_text() -> str:
    """The selection (or clipboard) as text to speak; SystemExit with a message when there is none."""
    try:
        text = read_selection()
    except SelectionError as exc:
        raise SystemExit(f"chatterbox-tray: {exc}") from None
    text = text.strip()
    if not text:
        raise SystemExit("chatterbox-tray: nothing is selected and the clipboard is empty")
    return text[:MAX_QUICK_CHARS]


def cmd_quick(client: Client, args: argparse.Namespace) -> int:
    """Stop all speech if any is playing, else speak the selection and return."""
    if client.remote:
        return _quick_here(client, args)
    playback = m.PlaybackEvent.from_data(client.playback())
    if playback.state in ("playing", "paused") or playback.queue:  # anything playing, paused or queued
        stopped = m.StopResult.from_data(client.stop(all=True)).stopped
        print(json.dumps({"stopped": stopped}) if args.json else f"stopped {len(stopped)} job(s)")
        return 0
    text = selected_text()
    result = client.request(rq.speak(text, voice=args.voice, priority="quick"))
    print(json.dumps(result) if args.json else m.SpeakResult.from_data(result).job)
    return 0


def _quick_here(client: Client, args: argparse.Namespace) -> int:
    """The toggle with a remote daemon: speech plays in this process, which the next press stops.

    The playing process leaves its pid in the runtime folder; the next press
    finds it alive and sends it SIGTERM (which stops and cancels its job).
    """
    from .speak_and_wait import speak_and_wait

    run_dir = endpoints.ensure_private_dir(endpoints.runtime_dir())
    pidfile = run_dir / "quick-remote.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        if pid != os.getpid() and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            print(json.dumps({"stopped": [pid]}) if args.json else "stopped")
            return 0
    text = selected_text()
    pidfile.write_text(str(os.getpid()))
    try:
        spoken = speak_and_wait(client, rq.speak(text, voice=args.voice, priority="quick"))
    finally:
        with contextlib.suppress(OSError):
            if pidfile.read_text() == str(os.getpid()):
                pidfile.unlink()
    print(
        json.dumps(spoken.end.to_data() if spoken.end else {"interrupted": True})
        if args.json
        else ("stopped" if spoken.interrupted else "done")
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``quick`` on the CLI."""
    quick = sub.add_parser(
        "quick", help="speak the selected text, or stop if something is speaking (bind this to a shortcut)"
    )
    quick.add_argument("-v", "--voice", help="voice name (default: the default voice)")
    quick.set_defaults(func=cmd_quick)
