"""The tray icon: the daemon's state at a glance, and everything one click away."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..ipc import requests as rq
from . import prefs
from .clipboard_reader import LIMITS, ClipboardReader
from .icons import state_icon
from .state import LOCAL_CHOICE, AppState


class Tray(QObject):
    """The icon and its menu. ``open_window``, ``speak_dialog`` and ``quit`` are for the app to act on."""

    open_window = Signal()
    open_settings = Signal()
    speak_dialog = Signal()
    quit = Signal(bool)  # True: stop the daemon too

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.icon = QSystemTrayIcon(state_icon("loading"))
        self.menu = QMenu(objectName="trayMenu")
        #: What is going on, in words (the tooltip is not shown on every desktop).
        self.status_line = self.menu.addAction("")
        self.status_line.setEnabled(False)
        self.retry = self.menu.addAction("Retry", self._retry)
        self.menu.addSeparator()
        self.speak_clipboard = self.menu.addAction("Speak clipboard", self.speak_clipboard_text)
        self.speak_more = self.menu.addAction("Speak…", self.speak_dialog.emit)
        self._add_read_copies()
        self.stop = self.menu.addAction("Stop", lambda: state.send(rq.stop(all=True)))
        self.pause = self.menu.addAction("Pause", lambda: state.send(rq.resume() if state.paused else rq.pause()))
        self.menu.addSeparator()
        self.voices_menu = self.menu.addMenu("Voice")
        self.voice_group = QActionGroup(self, exclusive=True)
        self.menu.addSeparator()
        self.menu.addAction("Open window", self.open_window.emit)
        self.settings = self.menu.addAction("Settings…", self.open_settings.emit)
        self.menu.addSeparator()
        self.menu.addAction("Quit", lambda: self.quit.emit(False))
        self.quit_and_stop = self.menu.addAction("Quit and stop the daemon", lambda: self.quit.emit(True))
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        state.changed.connect(self.update_state)
        state.voices_changed.connect(self._fill_voices)
        state.jobs_lost.connect(self._jobs_lost)
        self._fill_voices()  # and the state

    def speak_clipboard_text(self) -> None:
        """Speak what is on the clipboard, in place of what is playing (quick-speak)."""
        text = QGuiApplication.clipboard().text()
        if not text.strip():
            self.notify("The clipboard holds no text.", timeout_ms=3000)
            return
        self.state.send(
            rq.speak(text, priority="quick"), on_error=lambda code, message: self.notify(message or code, "error", 5000)
        )

    def notify(self, message: str, icon: str = "ready", timeout_ms: int = 4000) -> None:
        """A short message from the tray icon (quick-speak has no window to show it in), with a state's icon."""
        self.icon.showMessage("Chatterbox Tray", message, state_icon(icon), timeout_ms)

    def update_state(self) -> None:
        """Icon, tooltip and which items can be used."""
        s = self.state
        self.icon.setIcon(state_icon(s.icon_state))
        reading = "\nReading what you copy (the menu's \u201cRead what I copy\u201d stops it)"
        self.icon.setToolTip(f"Chatterbox Tray\n{s.summary}" + (reading if self.reader.enabled else ""))
        self.status_line.setText(_elide(s.summary))
        self.retry.setVisible(s.icon_state == "error")
        if s.remote and not s.connected:  # a daemon on another computer cannot be started from here
            self.retry.setText(LOCAL_CHOICE)
        else:
            self.retry.setText("Start the daemon" if not s.connected else "Retry loading the model")
        self.speak_clipboard.setEnabled(s.connected and s.model_state != "failed")
        self.stop.setEnabled(s.connected and s.busy)
        self.pause.setEnabled(s.connected and (s.busy or s.paused))  # as the Speak page's button
        self.pause.setText("Resume" if s.paused else "Pause")
        self.voices_menu.setEnabled(s.connected and bool(s.voices))
        self.quit_and_stop.setVisible(not s.remote)  # a daemon on another computer is its owner's to stop

    def _add_read_copies(self) -> None:
        """ "Read what I copy" (one click on, one click off) and its options, under the clipboard items."""
        saved = prefs.load()
        self.reader = ClipboardReader(
            self.state, priority=saved["read_copies_priority"], limit=saved["read_copies_limit"], parent=self
        )
        self.reader.notice.connect(self.notify)
        self.read_copies = QAction("Read what I copy", self.menu, objectName="readCopies", checkable=True)
        self.read_copies.toggled.connect(self.reader.set_enabled)
        self.menu.addAction(self.read_copies)
        self.reader.enabled_changed.connect(self._read_copies_changed)
        options = self.menu.addMenu("Reading copies")
        self.read_copies_quick = options.addAction("Interrupt what is playing")
        self.read_copies_quick.setCheckable(True)
        self.read_copies_quick.setChecked(self.reader.priority == "quick")
        self.read_copies_quick.setToolTip("Speak a copied text at once, in place of what plays (else after it)")
        self.read_copies_quick.toggled.connect(self._read_copies_priority)
        options.addSection("Longest text read")
        group = QActionGroup(self, exclusive=True)
        for limit in LIMITS:
            action = QAction(f"{limit:,} characters", group, checkable=True, checked=limit == self.reader.limit)
            action.triggered.connect(lambda _=False, n=limit: self._read_copies_limit(n))
            options.addAction(action)

    def _read_copies_changed(self, on: bool) -> None:
        self.read_copies.setChecked(on)
        self.update_state()
        if on:
            self.notify("Reading what you copy. Click \u201cRead what I copy\u201d again to stop.")

    def _read_copies_priority(self, quick: bool) -> None:
        self.reader.priority = "quick" if quick else "text"
        prefs.save(read_copies_priority=self.reader.priority)

    def _read_copies_limit(self, limit: int) -> None:
        self.reader.limit = limit
        prefs.save(read_copies_limit=limit)

    def _retry(self) -> None:
        if self.state.remote and not self.state.connected:
            self.state.use_daemon(None)
        else:
            self.state.retry()

    def _jobs_lost(self, jobs: list[str]) -> None:
        if jobs:  # a clipboard or hotkey job has no page to say it: the tray does
            self.notify("The daemon stopped before it finished speaking, so that speech was lost.", "error", 6000)

    def _fill_voices(self) -> None:
        self.voices_menu.clear()  # deletes the actions it owns, which leave their group
        for voice in self.state.voices:
            name = voice.name
            action = QAction(name, self.voices_menu, checkable=True, checked=voice.default)
            action.triggered.connect(lambda _=False, n=name: self.state.send(rq.voices_default(n)))
            self.voice_group.addAction(action)
            self.voices_menu.addAction(action)
        if not self.state.voices:
            self.voices_menu.addAction("No voices yet").setEnabled(False)
        self.update_state()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_window.emit()


def _elide(text: str, limit: int = 60) -> str:
    """A menu line short enough for any tray menu, shortened at a word ("…"; the icon's tooltip has it whole)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ·,:;") + "…"
