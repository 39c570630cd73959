"""Global hotkeys: one key chord, grabbed system-wide, that fires ``activated``.

Each platform grabs keys its own way, so each has a backend module:

- ``x11``: ``XGrabKey`` on the root window (python-xlib, its own connection and thread);
- ``windows``: ``RegisterHotKey`` in a thread with a message loop (ctypes);
- ``macos``: Carbon's ``RegisterEventHotKey`` (ctypes; needs no accessibility permission);
- ``portal``: the XDG GlobalShortcuts portal on Wayland, where apps cannot grab keys:
  the desktop asks the user to confirm the shortcut and tells us when it fires.

A chord is written as Qt's portable text ("Ctrl+Alt+S"): ``Ctrl``, ``Alt``,
``Shift`` and ``Meta`` (the Windows/Super key; on macOS Qt calls Command "Ctrl"
and Control "Meta", and so do we) plus one key from ``KEYS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .chords import DEFAULT_HOTKEY, KEYS, MODIFIERS, Backend, Chord, HotkeyError, parse_chord

__all__ = ["DEFAULT_HOTKEY", "KEYS", "MODIFIERS", "Backend", "Chord", "HotkeyError", "parse_chord", "platform_backend"]


def platform_backend(on_activate: Callable[[], None], qt_platform: str = "") -> Backend:
    """The backend for this session: decided by the OS and, on Linux, Qt's platform plugin."""
    if sys.platform == "win32":
        from .windows import WindowsBackend

        return WindowsBackend(on_activate)
    if sys.platform == "darwin":
        from .macos import MacBackend

        return MacBackend(on_activate)
    if qt_platform == "xcb" or (
        not qt_platform and os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    ):
        from .x11 import X11Backend

        return X11Backend(on_activate)
    if qt_platform.startswith("wayland") or os.environ.get("WAYLAND_DISPLAY"):
        from .portal import PortalBackend

        return PortalBackend(on_activate)
    return Backend(on_activate)
