"""Chords, keys and the backend interface every platform's grabber implements.

Kept apart from the package's ``__init__`` (which picks a backend) so that the
backends import this module, not the package that imports them: no cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def register(self, chord: Chord) -> str:
        """Grab the chord; returns what the user should read (e.g. the trigger the desktop chose).

        Raises HotkeyError when it cannot be grabbed (taken, unsupported).
        """
        raise HotkeyError("global hotkeys are not available on this desktop")

    def unregister(self) -> None:
        """Release the chord (safe to call when nothing is registered)."""

    def _listen(self, run: Callable[..., None], name: str, *args: Any) -> None:
        """Wait for presses: ``run(*args)`` on a thread of its own, which ends soon after ``_stop`` is set."""
        self._stop.clear()
        self._thread = threading.Thread(target=run, args=args, name=name, daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        """End ``_listen``'s thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
