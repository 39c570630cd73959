"""The main window: the daemon's state on top, pages on the left, the chosen page on the right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QStackedWidget,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from ..ipc import requests as rq
from .connection import CONNECTED, FAILED, LOST, STARTING
from .icons import app_icon, state_icon
from .pages.pronunciation_page import PronunciationPage
from .pages.settings_page import SettingsPage
from .pages.speak_page import SpeakPage
from .pages.stats_page import StatsPage
from .pages.voices_page import VoicesPage
from .plain_words import plain_failure
from .state import LOCAL_CHOICE, AppState
from .widgets import Banner, ElidedLabel, arrange

PAGES = ("Speak", "Voices", "Pronunciation", "Stats", "Settings")
#: The banner's fallback button: the narrow column has room for this much of ``LOCAL_CHOICE``.
LOCAL_BUTTON = "Use this computer"
#: The first size: Stats (with its jobs table) and Settings fit without scrolling.
#: Smaller screens get what they have (``MainWindow.__init__``).
DEFAULT_SIZE = (980, 820)
#: The navigation column: the page list, and under it the daemon's state card.
NAV_WIDTH = 180


class DaemonBanner(QWidget):
    """The daemon's state when it is not simply ready: starting, loading (with progress), failed, lost.

    It lives in the navigation column, under the page list, where there is room
    to spare: appearing or going, it never moves a control the user aims at.
    """

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.banner = Banner(vertical=True)
        self.progress = QProgressBar(maximum=100, textVisible=True, maximumHeight=16)
        arrange(QVBoxLayout(self), self.banner, self.progress).setContentsMargins(0, 0, 0, 0)
        state.changed.connect(self.update_state)
        self.update_state()

    def update_state(self) -> None:
        """Show what the daemon is doing, or nothing when all is well."""
        s = self.state
        self.progress.hide()
        if s.remote and s.link in (FAILED, LOST):
            # A daemon on another computer cannot be started from here: offer this computer's.
            kind = "error" if s.link == FAILED else "warning"
            self.banner.show_message(s.link_detail, kind, LOCAL_BUTTON, self.use_local, closable=False)
            self.banner.action.setToolTip(f"{LOCAL_CHOICE} (saved as the app's choice)")
        elif s.link == FAILED:
            self.banner.show_message(s.link_detail, "error", "Retry", s.retry, closable=False)
        elif s.link == LOST:
            self.banner.show_message(
                f"{s.link_detail} Reconnecting…", "warning", "Start the daemon", s.conn.retry, closable=False
            )
        elif s.link != CONNECTED:
            text = "Starting the daemon…" if s.link == STARTING else "Connecting to the daemon…"
            if s.remote:
                text = f"Connecting to {s.remote}…"
            self.banner.show_message(text, "info", closable=False)
            self.progress.setRange(0, 0)
            self.progress.show()
        elif s.model_state == "failed":
            # Our words on the card; the daemon's reason (file names, a library's
            # message) in full behind Details, where nothing cuts it off.
            error = s.status.error or "no reason given"
            if s.remote:  # its owner loads it there: no reload from here
                said = f"{s.remote} could not load its model. Its owner can fix it there."
                self.banner.show_message(said, "error", LOCAL_BUTTON, self.use_local, closable=False, details=error)
            else:
                folder = ("Use a local folder…", self.use_local_folder)
                self.banner.show_message(
                    plain_failure(error), "error", "Retry", s.retry, closable=False, more=folder, details=error
                )
        elif s.model_state not in ("ready", "sleeping"):  # asleep is normal: the status line says so
            message = s.status.message or "Loading the model"
            # The first run's download says bytes, speed and time left in its message; stalled, it warns.
            stalled = bool((s.status.download or {}).get("stalled"))
            text = (message + ("" if stalled else "…")).replace("……", "…")  # the banner starts it in upper case
            self.banner.show_message(text, "warning" if stalled else "info", closable=False)
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * s.status.progress))
            self.progress.show()
        else:
            self.banner.hide()

    def use_local(self) -> None:
        """Fall back to this computer's daemon (saved as the app's choice)."""
        self.state.use_daemon(None)

    def use_local_folder(self) -> None:
        """Load the model from a folder on this computer (no internet): pick it, save it, load."""
        if folder := QFileDialog.getExistingDirectory(self, "Folder with the model's files", str(Path.home())):
            self.state.send(rq.settings_set({"checkpoint": folder}), on_result=lambda _: self.state.retry())


class MainWindow(QMainWindow):
    """Speak, Voices, Pronunciation, Stats and Settings; closing hides it to the tray when there is one."""

    def __init__(self, state: AppState, probe_microphone: bool = True) -> None:
        super().__init__()
        self.state = state
        self.quitting = False
        self.setWindowTitle("Chatterbox Tray")
        self.setWindowIcon(app_icon())
        width, height = DEFAULT_SIZE
        if (screen := QGuiApplication.primaryScreen()) is not None:  # leave room for panels and the frame
            room = screen.availableGeometry()
            width, height = min(width, room.width() - 40), min(height, room.height() - 60)
        self.resize(max(width, 640), max(height, 480))

        self.nav = QListWidget(objectName="nav")
        self.nav.addItems(PAGES)
        self.nav.setFixedWidth(NAV_WIDTH)
        self.nav.setStyleSheet(
            "#nav { border: none; background: palette(window); font-size: 11pt; }"
            "#nav::item { padding: 9px 14px; border-radius: 6px; margin: 1px 6px; }"
            "#nav::item:selected { background: palette(highlight); color: palette(highlighted-text); }"
        )
        self.speak = SpeakPage(state)
        self.voices = VoicesPage(state, probe_microphone=probe_microphone)
        self.pronunciation = PronunciationPage(state)
        self.stats = StatsPage(state)
        self.settings = SettingsPage(state)
        self.stack = QStackedWidget()
        for page in (self.speak, self.voices, self.pronunciation, self.stats, self.settings):
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.setCurrentRow(0)

        self.daemon_banner = DaemonBanner(state)
        self.daemon_banner.setFixedWidth(NAV_WIDTH)
        central = QWidget()
        arrange(QHBoxLayout(central), arrange(QVBoxLayout(), (self.nav, 1), self.daemon_banner), (self.stack, 1))
        self.setCentralWidget(central)

        self.status_icon = QLabel()
        self.status_text = ElidedLabel()  # a long line shortens; it never widens the window
        self.statusBar().addWidget(self.status_icon)
        self.statusBar().addWidget(self.status_text, 1)
        #: Speech being made: how far, since nothing is heard for a while on a CPU.
        self.status_progress = QProgressBar(maximumWidth=160, maximumHeight=14, textVisible=False)
        self.status_progress.setObjectName("makingProgress")
        self.statusBar().addPermanentWidget(self.status_progress)
        self.status_progress.hide()
        state.changed.connect(self._update_status)
        state.error.connect(lambda message: self.statusBar().showMessage(message, 8000))
        self._update_status()

    def show_page(self, name: str) -> None:
        """Switch to a page by its name."""
        self.nav.setCurrentRow(PAGES.index(name))

    def raise_window(self) -> None:
        """Show the window in front (from the tray, or a second copy of the app)."""
        self.show()
        self.setWindowState((self.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive)
        self.raise_()
        self.activateWindow()

    def _update_status(self) -> None:
        self.status_icon.setPixmap(state_icon(self.state.icon_state).pixmap(16, 16))
        text = self.state.summary
        if self.state.ready:
            text += f" · {self.state.status.variant} on {self.state.status.device}"
        self.status_text.setText(text)
        saving, progress = self.state.saving, None
        if saving is not None and not self.state.busy:  # a file being made (Save as…)
            progress = saving[1:]
        elif self.state.working and not self.state.paused:
            progress = self.state.making_progress()  # (0, 0): busy, no count yet
        if progress is not None:
            self.status_progress.setRange(0, progress[1])
            self.status_progress.setValue(progress[0])
        self.status_progress.setVisible(progress is not None)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.quitting and QSystemTrayIcon.isSystemTrayAvailable():
            event.ignore()
            self.hide()
            return
        event.accept()
