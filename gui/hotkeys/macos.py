"""macOS: Carbon's ``RegisterEventHotKey``, through ctypes.

It is still the supported way to grab a global chord, and unlike an event tap
it needs no Accessibility permission. Carbon delivers ``kEventHotKeyPressed``
to the application event target from the main run loop, which Qt's Cocoa
event loop drives, so ``register`` must be called on the main thread (it is:
the GUI calls it). Qt's "Ctrl" is Command on macOS and "Meta" is Control; the
modifiers below follow that. Not testable on Linux (see docs/packaging-tests.md).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import POINTER, c_uint32, c_void_p

from .chords import KEYS, Backend, Chord, HotkeyError

CMD_KEY, SHIFT_KEY, OPTION_KEY, CONTROL_KEY = 1 << 8, 1 << 9, 1 << 11, 1 << 12
_MODS = {"Ctrl": CMD_KEY, "Shift": SHIFT_KEY, "Alt": OPTION_KEY, "Meta": CONTROL_KEY}
K_EVENT_CLASS_KEYBOARD = int.from_bytes(b"keyb", "big")
K_EVENT_HOTKEY_PRESSED = 5
EVENT_HOTKEY_EXISTS_ERR = -9878
SIGNATURE = int.from_bytes(b"CbTr", "big")


class EventTypeSpec(ctypes.Structure):
    _fields_ = [("eventClass", ctypes.c_uint32), ("eventKind", ctypes.c_uint32)]


class EventHotKeyID(ctypes.Structure):
    _fields_ = [("signature", ctypes.c_uint32), ("id", ctypes.c_uint32)]


HANDLER = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _carbon() -> ctypes.CDLL:
    carbon = ctypes.CDLL("/System/Library/Frameworks/Carbon.framework/Carbon")
    carbon.GetApplicationEventTarget.restype = ctypes.c_void_p
    carbon.InstallEventHandler.argtypes = [
        c_void_p,
        HANDLER,
        c_uint32,
        POINTER(EventTypeSpec),
        c_void_p,
        POINTER(c_void_p),
    ]
    carbon.RegisterEventHotKey.argtypes = [c_uint32, c_uint32, EventHotKeyID, c_void_p, c_uint32, POINTER(c_void_p)]
    carbon.UnregisterEventHotKey.argtypes = [ctypes.c_void_p]
    carbon.RemoveEventHandler.argtypes = [ctypes.c_void_p]
    return carbon


class MacBackend(Backend):
    name = "macos"

    def __init__(self, on_activate: Callable[[], None]) -> None:
        super().__init__(on_activate)
        self._carbon: ctypes.CDLL | None = None
        self._handler_ref = ctypes.c_void_p()
        self._hotkey_ref = ctypes.c_void_p()
        self._callback = HANDLER(self._on_event)  # kept alive as long as we are

    def _on_event(self, _next: int, _event: int, _data: int) -> int:
        self.on_activate()
        return 0  # noErr

    def register(self, chord: Chord) -> str:
        self.unregister()
        keycode = KEYS[chord.key][2]
        if keycode is None:
            raise HotkeyError(f"{chord.key} cannot be a global hotkey on macOS")
        try:
            carbon = self._carbon or _carbon()
        except OSError as exc:
            raise HotkeyError(f"Carbon is not available: {exc}") from None
        self._carbon = carbon
        target = carbon.GetApplicationEventTarget()
        if not self._handler_ref:
            spec = EventTypeSpec(K_EVENT_CLASS_KEYBOARD, K_EVENT_HOTKEY_PRESSED)
            err = carbon.InstallEventHandler(
                target, self._callback, 1, ctypes.byref(spec), None, ctypes.byref(self._handler_ref)
            )
            if err:
                raise HotkeyError(f"macOS refused the hotkey handler (error {err})")
        mods = sum(_MODS[m] for m in chord.modifiers)  # one bit each
        err = carbon.RegisterEventHotKey(
            keycode, mods, EventHotKeyID(SIGNATURE, 1), target, 0, ctypes.byref(self._hotkey_ref)
        )
        if err:
            self._hotkey_ref = ctypes.c_void_p()
            if err == EVENT_HOTKEY_EXISTS_ERR:
                raise HotkeyError(f"{chord} is already taken by another application")
            raise HotkeyError(f"macOS refused the hotkey (error {err})")
        return f"{chord} (macOS)"

    def unregister(self) -> None:
        if self._carbon is not None and self._hotkey_ref:
            self._carbon.UnregisterEventHotKey(self._hotkey_ref)
            self._hotkey_ref = ctypes.c_void_p()
