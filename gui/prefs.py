"""The tray app's own preferences: the quick-speak hotkey, and which daemon to use.

Settings the daemon owns live in the daemon; these belong to one desktop
session's app, so they sit beside the daemon's settings file, in ``gui.json``
under the same config folder, written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.atomic import write_atomic
from ..ipc.remote import DAEMON_ENV
from .hotkeys import DEFAULT_HOTKEY

#: ``daemon``: a paired daemon's name (``chatterbox-tray remote add``), or "local".
#: ``read_copies_*``: "Read what I copy" (its on/off is never saved: it starts off).
DEFAULTS: dict[str, Any] = {
    "hotkey": DEFAULT_HOTKEY,
    "hotkey_enabled": True,
    "daemon": "local",
    "read_copies_priority": "text",
    "read_copies_limit": 5000,
}


def path() -> Path:
    return endpoints.config_dir() / "gui.json"


def load() -> dict[str, Any]:
    """The saved preferences over the defaults; a missing or broken file gives the defaults."""
    try:
        saved = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    return {k: saved.get(k, v) if isinstance(saved.get(k, v), type(v)) else v for k, v in DEFAULTS.items()}


def save(**changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the file and return the result."""
    prefs = load() | {k: v for k, v in changes.items() if k in DEFAULTS}
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, json.dumps(prefs, indent=2))
    return prefs


def chosen_daemon() -> str | None:
    """The daemon the app starts with: ``$CHATTERBOX_TRAY_DAEMON``, else the saved choice; None is this computer's.

    The environment wins, as it does for the CLI and scripts: it is this
    session's explicit choice. "local" (or empty) is this computer's daemon.
    """
    name = os.environ.get(DAEMON_ENV) or str(load()["daemon"])
    return None if name in ("", "local") else name
