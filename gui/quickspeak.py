"""Quick-speak: a global hotkey that speaks the selected text, or stops.

Pressing the hotkey while anything is speaking stops all speech (it is the
"be quiet" key too). Otherwise it takes the text to speak from

- the PRIMARY selection where there is one (X11, and Wayland compositors with
  primary-selection support): what is highlighted, no copy needed;
- elsewhere (Windows, macOS) by pressing Copy in the focused app and reading
  the clipboard once it changes ("copy-then-read");
- the clipboard as it is, when neither yields text,

and sends it with the ``quick`` priority, which replaces any quick-speak that
is playing. The chord and whether it is on are the app's own preferences
(gui.json); the backend comes from ``hotkeys.platform_backend``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

from chatterbox_tray.ipc.quick import MAX_QUICK_CHARS

from . import prefs
from .hotkeys import Backend, HotkeyError, parse_chord, platform_backend
from .hotkeys.copy import send_copy
from .state import AppState

log = logging.getLogger(__name__)

#: After pressing Copy, how long to wait for the clipboard to change.
COPY_WAIT_MS = 400


class QuickSpeak(QObject):
    """Owns the hotkey grab and what a press does."""

    #: (message for people, whether the hotkey is active): for the Settings page.
    status_changed = Signal(str, bool)
    #: A request went out: "speak" or "stop" (tests and the tray listen).
    acted = Signal(str)
    _pressed = Signal()  # backends call from their own threads; this hops to the GUI thread
    _copied = Signal(bool)

    def __init__(
        self,
        state: AppState,
        notify: Callable[[str], None] | None = None,
        backend: Callable[[Callable[[], None]], Backend] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.notify = notify or (lambda message: state.error.emit(message))
        self._pressed.connect(self.trigger, Qt.ConnectionType.QueuedConnection)
        self._copied.connect(self._after_copy, Qt.ConnectionType.QueuedConnection)
        self.backend = (
            backend(self._pressed.emit)
            if backend is not None
            else platform_backend(self._pressed.emit, QGuiApplication.platformName())
        )
        self.status = ""
        self.active = False

    # -- the grab ------------------------------------------------------------------

    def start(self) -> None:
        """Grab the saved hotkey (if it is enabled)."""
        p = prefs.load()
        self.apply(p["hotkey"], p["hotkey_enabled"], save=False)

    def apply(self, text: str, enabled: bool = True, save: bool = True) -> bool:
        """Grab ``text`` (e.g. "Ctrl+Alt+S") in place of the current chord; False if it could not be."""
        self.backend.unregister()
        self.active = False
        ok = True
        if not enabled:
            self.status = "Off"
        else:
            try:
                self.status = f"Active: {self.backend.register(parse_chord(text))}"
                self.active = True
            except HotkeyError as exc:
                self.status = str(exc)
                ok = False
        if save and (ok or not enabled):
            prefs.save(hotkey=text, hotkey_enabled=enabled)
        log.info("quick-speak hotkey: %s", self.status)
        self.status_changed.emit(self.status, self.active)
        return ok

    def close(self) -> None:
        self.backend.unregister()

    # -- a press -------------------------------------------------------------------

    def trigger(self) -> None:
        """What the hotkey does: stop if speaking, else speak the selection."""
        if not self.state.connected:
            self.notify("Quick-speak: the daemon is not running yet")
            return
        if self.state.busy:
            self.state.call("stop", {"all": True})
            self.acted.emit("stop")
            return
        clipboard = QGuiApplication.clipboard()
        if clipboard.supportsSelection():
            text = clipboard.text(QClipboard.Mode.Selection)
            self._speak(text if text.strip() else clipboard.text())
            return
        # Copy-then-read: press Copy in the focused app (off the GUI thread: it
        # waits for the hotkey's modifiers to be released), then read the clipboard.
        threading.Thread(target=lambda: self._copied.emit(send_copy()), name="quick-copy", daemon=True).start()

    def _after_copy(self, pressed: bool) -> None:
        if not pressed:
            self._speak(QGuiApplication.clipboard().text())
            return
        QTimer.singleShot(COPY_WAIT_MS, lambda: self._speak(QGuiApplication.clipboard().text()))

    def _speak(self, text: str) -> None:
        text = text.strip()[:MAX_QUICK_CHARS]
        if not text:
            self.notify("Quick-speak: nothing is selected and the clipboard holds no text")
            return
        self.state.call(
            "speak",
            {"text": text, "priority": "quick"},
            on_error=lambda code, message: self.notify(f"Quick-speak: {message or code}"),
        )
        self.acted.emit("speak")
