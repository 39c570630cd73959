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
from dataclasses import dataclass

#: The default chord: free on stock GNOME, KDE, Windows and macOS.
DEFAULT_HOTKEY = "Ctrl+Alt+S"

MODIFIERS = ("Ctrl", "Alt", "Shift", "Meta")

# Keys a chord may end in: Qt name -> (X11 keysym name, Windows virtual key, macOS virtual keycode).
_MAC_LETTERS = dict(
    zip(
        "ASDFHGZXCVBQWERYTOUIPLJKNM",
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 31, 32, 34, 35, 37, 38, 40, 45, 46],
        strict=True,
    )
)
_MAC_DIGITS = {"1": 18, "2": 19, "3": 20, "4": 21, "5": 23, "6": 22, "7": 26, "8": 28, "9": 25, "0": 29}
_MAC_F = [122, 120, 99, 118, 96, 97, 98, 100, 101, 109, 103, 111]  # F1..F12

KEYS: dict[str, tuple[str, int, int | None]] = {}
for _c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    KEYS[_c] = (_c.lower(), ord(_c), _MAC_LETTERS[_c])
for _c in "0123456789":
    KEYS[_c] = (_c, ord(_c), _MAC_DIGITS[_c])
for _n in range(1, 25):
    KEYS[f"F{_n}"] = (f"F{_n}", 0x6F + _n, _MAC_F[_n - 1] if _n <= 12 else None)
KEYS["Space"] = ("space", 0x20, 49)
KEYS["Pause"] = ("Pause", 0x13, None)
KEYS["Ins"] = ("Insert", 0x2D, None)


class HotkeyError(Exception):
    """A chord that cannot be used here; the message is for people."""


@dataclass(frozen=True)
class Chord:
    """Modifiers plus one key, e.g. Ctrl+Alt+S."""

    modifiers: frozenset[str]
    key: str

    def __str__(self) -> str:
        return "+".join([m for m in MODIFIERS if m in self.modifiers] + [self.key])

    def xdg_trigger(self) -> str:
        """The portal's preferred_trigger form (XDG shortcuts spec): CTRL+ALT+s."""
        names = {"Ctrl": "CTRL", "Alt": "ALT", "Shift": "SHIFT", "Meta": "LOGO"}
        return "+".join([names[m] for m in MODIFIERS if m in self.modifiers] + [KEYS[self.key][0]])


def parse_chord(text: str) -> Chord:
    """ "Ctrl+Alt+S" -> Chord; HotkeyError for anything a global hotkey cannot be."""
    parts = [p.strip() for p in text.replace(" ", "").split("+") if p.strip()]
    if not parts:
        raise HotkeyError("no key given")
    *mods, key = parts
    canon = {m.lower(): m for m in MODIFIERS} | {"control": "Ctrl", "super": "Meta", "win": "Meta", "cmd": "Ctrl"}
    modifiers = set()
    for m in mods:
        if m.lower() not in canon:
            raise HotkeyError(f"{m} is not a modifier (use Ctrl, Alt, Shift or Meta)")
        modifiers.add(canon[m.lower()])
    key = {k.lower(): k for k in KEYS}.get(key.lower(), key)
    if key not in KEYS:
        raise HotkeyError(f"{key} cannot be a global hotkey here (use a letter, a digit, F1-F24, Space, Pause or Ins)")
    if not modifiers and not key.startswith("F") and key not in ("Pause", "Ins"):
        raise HotkeyError("a letter, digit or Space needs a modifier, or typing it would speak")
    return Chord(frozenset(modifiers), key)


class Backend:
    """What every backend offers. ``on_activate`` may be called from any thread."""

    name = "none"
    #: True when ``register`` may wait on the user (the portal's dialog): the
    #: app then calls it off the GUI thread so the window never freezes.
    may_block = False

    def __init__(self, on_activate: Callable[[], None]) -> None:
        self.on_activate = on_activate

    def register(self, chord: Chord) -> str:
        """Grab the chord; returns what the user should read (e.g. the trigger the desktop chose).

        Raises HotkeyError when it cannot be grabbed (taken, unsupported).
        """
        raise HotkeyError("global hotkeys are not available on this desktop")

    def unregister(self) -> None:
        """Release the chord (safe to call when nothing is registered)."""


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
