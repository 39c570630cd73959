"""The tray icon: the daemon's state at a glance, and everything one click away."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ..ipc import requests as rq
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
        self.menu = QMenu()
        self.menu.setObjectName("trayMenu")
        #: What is going on, in words (the tooltip is not shown on every desktop).
        self.status_line = self.menu.addAction("")
        self.status_line.setEnabled(False)
        self.retry = self.menu.addAction("Retry", self._retry)
        self.menu.addSeparator()
        self.speak_clipboard = self.menu.addAction("Speak clipboard", self.speak_clipboard_text)
        self.speak_more = self.menu.addAction("Speak…", self.speak_dialog.emit)
        self.stop = self.menu.addAction("Stop", lambda: state.send(rq.stop(all=True)))
        self.pause = self.menu.addAction("Pause", self.toggle_pause)
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
        self._fill_voices()
        self.update_state()

    def show(self) -> None:
        """Put the icon in the tray."""
        self.icon.show()

    def hide(self) -> None:
        """Take the icon out of the tray."""
        self.icon.hide()

    def speak_clipboard_text(self) -> None:
        """Speak what is on the clipboard, in place of what is playing (quick-speak)."""
        text = QGuiApplication.clipboard().text()
        if not text.strip():
            self.icon.showMessage("Chatterbox Tray", "The clipboard holds no text.", state_icon("ready"), 3000)
            return
        self.state.send(
            rq.speak(text, priority="quick"),
            on_error=lambda code, message: self.icon.showMessage(
                "Chatterbox Tray", message or code, state_icon("error"), 5000
            ),
        )

    def notify(self, message: str) -> None:
        """A short message from the tray icon (quick-speak has no window to show it in)."""
        self.icon.showMessage("Chatterbox Tray", message, state_icon("ready"), 4000)

    def toggle_pause(self) -> None:
        """Pause or resume the speaker."""
        self.state.send(rq.resume() if self.state.paused else rq.pause())

    def update_state(self) -> None:
        """Icon, tooltip and which items can be used."""
        s = self.state
        self.icon.setIcon(state_icon(s.icon_state))
        self.icon.setToolTip(f"Chatterbox Tray\n{s.summary}")
        self.status_line.setText(_elide(s.summary))
        failed = s.icon_state == "error"
        self.retry.setVisible(failed)
        if s.remote and not s.connected:  # a daemon on another computer cannot be started from here
            self.retry.setText(LOCAL_CHOICE)
        else:
            self.retry.setText("Start the daemon" if not s.connected else "Retry loading the model")
        usable = s.connected and s.model_state != "failed"
        self.speak_clipboard.setEnabled(usable)
        self.speak_more.setEnabled(True)
        self.stop.setEnabled(s.connected and s.busy)
        self.pause.setEnabled(s.connected and (s.busy or s.paused))  # as the Speak page's button
        self.pause.setText("Resume" if s.paused else "Pause")
        self.voices_menu.setEnabled(s.connected and bool(s.voices))
        self.quit_and_stop.setVisible(not s.remote)  # a daemon on another computer is its owner's to stop

    def _retry(self) -> None:
        if self.state.remote and not self.state.connected:
            self.state.use_daemon(None)
        else:
            self.state.retry()

    def _jobs_lost(self, jobs: list[str]) -> None:
        if jobs:  # a clipboard or hotkey job has no page to say it: the tray does
            self.icon.showMessage(
                "Chatterbox Tray",
                "The daemon stopped before it finished speaking, so that speech was lost.",
                state_icon("error"),
                6000,
            )

    def _fill_voices(self) -> None:
        self.voices_menu.clear()
        for action in self.voice_group.actions():
            self.voice_group.removeAction(action)
        for voice in self.state.voices:
            name = voice["name"]
            action = QAction(name, self.voices_menu, checkable=True, checked=bool(voice.get("default")))
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
    """A menu line short enough for any tray menu."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
