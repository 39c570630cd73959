"""X11: grab the chord on the root window with ``XGrabKey``.

The grab uses its own X connection and a thread that waits on its socket, so
it never touches Qt's connection or blocks the event loop. The chord is
grabbed four times, with and without Caps Lock and Num Lock, because X
matches modifiers exactly. A grab another client already holds fails with
BadAccess, which we report as "taken". Holding the keys down makes the X
server repeat KeyPress; presses closer together than ``REPEAT_S`` count once.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable

from .chords import KEYS, Backend, Chord, HotkeyError

#: Presses closer together than this are key repeat, not a second press.
REPEAT_S = 0.35


class X11Backend(Backend):
    name = "x11"

    def __init__(self, on_activate: Callable[[], None]) -> None:
        super().__init__(on_activate)
        self._display = None
        self._grabs: list[tuple[int, int]] = []

    def register(self, chord: Chord) -> str:
        from Xlib import XK, X, display, error

        self.unregister()
        try:
            disp = display.Display()
        except Exception as exc:  # no DISPLAY, or the server refused us
            raise HotkeyError(f"cannot reach the X server: {exc}") from None
        root = disp.screen().root
        keycode = disp.keysym_to_keycode(XK.string_to_keysym(KEYS[chord.key][0]))
        if not keycode:
            disp.close()
            raise HotkeyError(f"this keyboard has no {chord.key} key")
        masks = {"Ctrl": X.ControlMask, "Alt": X.Mod1Mask, "Shift": X.ShiftMask, "Meta": X.Mod4Mask}
        mods = sum(masks[m] for m in chord.modifiers)  # one bit each
        caught = error.CatchError(error.BadAccess)
        grabs = [(keycode, mods | extra) for extra in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask)]
        for code, mask in grabs:
            root.grab_key(code, mask, True, X.GrabModeAsync, X.GrabModeAsync, onerror=caught)
        disp.sync()
        if caught.get_error() is not None:
            for code, mask in grabs:
                root.ungrab_key(code, mask)
            disp.close()
            raise HotkeyError(f"{chord} is already taken by another application")
        self._display, self._grabs = disp, grabs
        self._listen(self._run, "hotkey-x11", disp, keycode)
        return f"{chord} (X11)"

    def _run(self, disp, keycode: int) -> None:
        from Xlib import X

        last = 0.0
        fd = disp.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready and not disp.pending_events():
                continue
            try:
                while disp.pending_events():
                    event = disp.next_event()
                    if event.type == X.KeyPress and event.detail == keycode:
                        now = time.monotonic()
                        if now - last > REPEAT_S:
                            self.on_activate()
                        last = now
            except Exception:  # the X server went away: nothing more will come
                return

    def unregister(self) -> None:
        disp, self._display = self._display, None
        if disp is None:
            return
        self._stop_listening()
        try:
            root = disp.screen().root
            for code, mask in self._grabs:
                root.ungrab_key(code, mask)
            disp.sync()
        except Exception:
            pass
        finally:
            self._grabs = []
            disp.close()
