"""Windows: ``RegisterHotKey`` in a thread of our own with a message loop.

``RegisterHotKey`` with no window posts ``WM_HOTKEY`` to the registering
thread's queue, so that thread runs ``GetMessageW`` until we post it
``WM_QUIT``. ``MOD_NOREPEAT`` makes a held chord fire once. Only ctypes: no
pywin32. Not testable on Linux (see docs/packaging-tests.md).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

from .chords import KEYS, Backend, Chord, HotkeyError

WM_HOTKEY, WM_QUIT = 0x0312, 0x0012
MOD_ALT, MOD_CONTROL, MOD_SHIFT, MOD_WIN, MOD_NOREPEAT = 0x1, 0x2, 0x4, 0x8, 0x4000
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
_MODS = {"Ctrl": MOD_CONTROL, "Alt": MOD_ALT, "Shift": MOD_SHIFT, "Meta": MOD_WIN}


class WindowsBackend(Backend):
    name = "windows"

    def __init__(self, on_activate: Callable[[], None]) -> None:
        super().__init__(on_activate)
        self._thread_id = 0

    def register(self, chord: Chord) -> str:
        self.unregister()
        ready = threading.Event()
        result: dict[str, object] = {}
        thread = threading.Thread(target=self._run, args=(chord, ready, result), name="hotkey-win", daemon=True)
        thread.start()
        if not ready.wait(5):
            raise HotkeyError("the hotkey thread did not start")
        if "error" in result:
            thread.join(timeout=1)
            raise HotkeyError(str(result["error"]))
        self._thread, self._thread_id = thread, int(result["thread_id"])  # type: ignore[arg-type]
        return f"{chord} (Windows)"

    def _run(self, chord: Chord, ready: threading.Event, result: dict[str, object]) -> None:
        from ctypes import wintypes

        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
        msg = wintypes.MSG()
        user32.PeekMessageW(ctypes.byref(msg), None, 0, 0, 0)  # create this thread's message queue
        result["thread_id"] = kernel32.GetCurrentThreadId()
        mods = MOD_NOREPEAT + sum(_MODS[m] for m in chord.modifiers)  # one bit each
        if not user32.RegisterHotKey(None, 1, mods, KEYS[chord.key][1]):
            err = ctypes.get_last_error()  # type: ignore[attr-defined]
            result["error"] = (
                f"{chord} is already taken by another application"
                if err == ERROR_HOTKEY_ALREADY_REGISTERED
                else f"Windows refused the hotkey (error {err})"
            )
            ready.set()
            return
        ready.set()
        try:
            while user32.GetMessageW(ctypes.byref(msg), None, 0, 0) > 0:
                if msg.message == WM_HOTKEY:
                    self.on_activate()
        finally:
            user32.UnregisterHotKey(None, 1)

    def unregister(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        ctypes.windll.user32.PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)  # type: ignore[attr-defined]
        thread.join(timeout=2)
