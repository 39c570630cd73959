"""The tray app's entry point: one copy per user, a tray icon, a window, a link to the daemon.

``chatterbox-tray-gui`` (or ``python -m chatterbox_tray.gui``) starts it. A
second copy finds the first through a ``QLocalServer`` named after the user
and the daemon's runtime folder, asks it to show its window, and exits.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from ..ipc import endpoints
from ..ipc import requests as rq
from . import prefs
from .connection import Connection, default_daemon_args
from .hotkeys import Backend
from .icons import app_icon
from .quickspeak_hotkey import QuickSpeak
from .state import AppState
from .tray import Tray
from .window import MainWindow

log = logging.getLogger(__name__)


def instance_name() -> str:
    """The single-instance server's name: one per user and daemon home."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    where = hashlib.sha256(str(endpoints.runtime_dir()).encode()).hexdigest()[:10]
    return f"chatterbox-tray-gui-{user}-{where}"


class TrayApp(QObject):
    """The whole app, minus the QApplication: connection, state, window and tray."""

    def __init__(
        self,
        connection_path: Path | None = None,
        *,
        autostart: bool = True,
        daemon_args: list[str] | None = None,
        probe_microphone: bool = True,
        hotkey_backend: Callable[[Callable[[], None]], Backend] | None = None,
        daemon: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``daemon``: a paired remote daemon's name, or None for this computer's (``prefs.chosen_daemon``)."""
        super().__init__(parent)
        self.conn = Connection(connection_path, autostart=autostart, daemon_args=daemon_args, remote=daemon)
        self.state = AppState(self.conn)
        self.window = MainWindow(self.state, probe_microphone=probe_microphone)
        self.tray = Tray(self.state)
        self.tray.open_window.connect(self.window.raise_window)
        self.tray.open_settings.connect(lambda: (self.window.show_page("Settings"), self.window.raise_window()))
        self.tray.speak_dialog.connect(self.speak_dialog)
        self.tray.quit.connect(self.quit)
        self.quick = QuickSpeak(self.state, notify=self.tray.notify, backend=hotkey_backend)
        self.window.settings.attach_quick_speak(self.quick)
        self.server: QLocalServer | None = None
        self._closed = False

    def start(self, minimized: bool = False) -> None:
        """Connect (in the background) and show the tray icon, and the window unless minimized."""
        self.conn.start()
        self.quick.start()
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray.icon.show()
        if not minimized or not QSystemTrayIcon.isSystemTrayAvailable():
            self.window.show()

    def speak_dialog(self) -> None:
        """The Speak page, in front, ready to type."""
        self.window.show_page("Speak")
        self.window.raise_window()
        self.window.speak.text.setFocus()

    def quit(self, stop_daemon: bool = False) -> None:
        """Leave the app; with ``stop_daemon``, shut the daemon down first."""
        if stop_daemon and self.state.connected and not self.state.remote:  # another computer's is not ours
            self.state.send(rq.shutdown(), on_result=lambda _: self._exit(), on_error=lambda c, m: self._exit())
            QTimer.singleShot(3000, self._exit)  # never hang on a daemon that does not answer
        else:
            self._exit()

    def _exit(self) -> None:
        if self._closed:
            return  # the shutdown answer came first; this is the fallback timer, after the window is gone
        self.close()
        QApplication.quit()

    def close(self) -> None:
        """Stop the link and hide everything (tests call this; quitting does too)."""
        self._closed = True
        self.quick.close()
        self.state.here.stop(all=True)
        self.tray.icon.hide()
        self.window.quitting = True
        self.window.close()
        self.conn.close()
        if self.server is not None:
            self.server.close()

    # -- single instance ------------------------------------------------------------

    def listen(self, name: str) -> bool:
        """Serve ``name`` so later copies can reach this one."""
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_peer)
        if not self.server.listen(name):
            QLocalServer.removeServer(name)  # left behind by a copy that crashed
            return self.server.listen(name)
        return True

    def _on_peer(self) -> None:
        assert self.server is not None
        while (sock := self.server.nextPendingConnection()) is not None:
            sock.readyRead.connect(lambda s=sock: self._on_peer_message(s))

    def _on_peer_message(self, sock: QLocalSocket) -> None:
        if bytes(sock.readAll().data()).decode(errors="replace").strip().startswith("show"):
            self.window.raise_window()
        sock.disconnectFromServer()


def signal_first_copy(name: str, timeout_ms: int = 1000) -> bool:
    """Ask a running copy to show its window; False when there is none."""
    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(timeout_ms):
        return False
    sock.write(b"show\n")
    sock.flush()
    sock.waitForBytesWritten(timeout_ms)
    sock.disconnectFromServer()
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the tray app."""
    parser = argparse.ArgumentParser(prog="chatterbox-tray-gui", description="The Chatterbox Tray app.")
    parser.add_argument("--minimized", action="store_true", help="start in the tray, without the window")
    parser.add_argument("--no-start", action="store_true", help="do not start the daemon when none answers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Chatterbox Tray")
    app.setApplicationDisplayName("Chatterbox Tray")
    app.setDesktopFileName("chatterbox-tray")
    app.setWindowIcon(app_icon())
    name = instance_name()
    if signal_first_copy(name):
        print("Chatterbox Tray is already running; showed its window.", file=sys.stderr)
        return 0
    app.setQuitOnLastWindowClosed(not QSystemTrayIcon.isSystemTrayAvailable())
    tray_app = TrayApp(autostart=not args.no_start, daemon_args=default_daemon_args(), daemon=prefs.chosen_daemon())
    if not tray_app.listen(name):
        log.warning("could not listen as %s: a second copy will not find this one", name)
    tray_app.start(minimized=args.minimized)
    app.aboutToQuit.connect(tray_app.close)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
