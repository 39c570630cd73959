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
import queue
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

from ..ipc import requests as rq
from ..ipc.limits import MAX_QUICK_CHARS
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
    _grabbed = Signal(int, str, bool, str, bool, bool)  # generation, chord, enabled, status, active, save

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
        self._grabbed.connect(self._on_grabbed, Qt.ConnectionType.QueuedConnection)
        make = backend or (lambda on_activate: platform_backend(on_activate, QGuiApplication.platformName()))
        self.backend = make(self._pressed.emit)
        self.status = ""
        self.active = False
        #: Backends that may block (the Wayland portal waits for the user to
        #: confirm in the desktop's dialog) grab in this thread, in order.
        self._generation = 0
        self._grabs: queue.Queue = queue.Queue()
        self._grabber: threading.Thread | None = None

    # -- the grab ------------------------------------------------------------------

    def start(self) -> None:
        """Grab the saved hotkey (if it is enabled)."""
        p = prefs.load()
        self.apply(p["hotkey"], p["hotkey_enabled"], save=False)

    def apply(self, text: str, enabled: bool = True, save: bool = True) -> bool:
        """Grab ``text`` (e.g. "Ctrl+Alt+S") in place of the current chord.

        Returns False if it could not be grabbed. A backend that may block
        grabs in the background: the status says so until it is done.
        """
        self._generation += 1
        if self.backend.may_block:
            if self._grabber is None:
                self._grabber = threading.Thread(target=self._grab_loop, name="hotkey-grab", daemon=True)
                self._grabber.start()
            self._grabs.put((self._generation, text, enabled, save))
            self.active = False
            self.status = f"Asking the desktop for {text}…" if enabled else "Off"
            self.status_changed.emit(self.status, self.active)
            return True
        status, active = self._grab(text, enabled)
        self._on_grabbed(self._generation, text, enabled, status, active, save)
        return active or not enabled

    def _grab(self, text: str, enabled: bool) -> tuple[str, bool]:
        """Release the current chord and grab ``text``: (status, active)."""
        self.backend.unregister()
        if not enabled:
            return "Off", False
        try:
            return f"Active: {self.backend.register(parse_chord(text))}", True
        except HotkeyError as exc:
            return str(exc), False

    def _grab_loop(self) -> None:
        while (request := self._grabs.get()) is not None:
            generation, text, enabled, save = request
            status, active = self._grab(text, enabled)
            self._grabbed.emit(generation, text, enabled, status, active, save)

    def _on_grabbed(self, generation: int, text: str, enabled: bool, status: str, active: bool, save: bool) -> None:
        if save and (active or not enabled):  # a chord that could not be grabbed is not saved
            prefs.save(hotkey=text, hotkey_enabled=enabled)
        if generation != self._generation:
            return  # a later chord was asked for; its result will follow
        self.status, self.active = status, active
        log.info("quick-speak hotkey: %s", self.status)
        self.status_changed.emit(self.status, self.active)

    def close(self) -> None:
        if self._grabber is not None:
            self._grabs.put(None)
        self.backend.unregister()

    # -- a press -------------------------------------------------------------------

    def trigger(self) -> None:
        """What the hotkey does: stop if speaking, else speak the selection."""
        if not self.state.connected:
            if self.state.remote:
                self.notify(f"Quick-speak: the daemon {self.state.remote} is not answering")
            else:
                self.notify("Quick-speak: the daemon is not running yet")
            return
        if self.state.busy:
            self.state.send(rq.stop(all=True))
            self.acted.emit("stop")
            return
        clipboard = QGuiApplication.clipboard()
        if clipboard.supportsSelection():
            self._speak(clipboard.text(QClipboard.Mode.Selection).strip() or clipboard.text())
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
        if not (text := text.strip()[:MAX_QUICK_CHARS]):
            self.notify("Quick-speak: nothing is selected and the clipboard holds no text")
            return
        self.state.send(
            rq.speak(text, priority="quick"),
            on_error=lambda code, message: self.notify(f"Quick-speak: {message or code}"),
        )
        self.acted.emit("speak")
