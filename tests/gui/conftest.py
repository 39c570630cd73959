"""GUI tests: pytest-qt on the offscreen platform, against real fake-engine daemons.

The app under test is the real one (``TrayApp``): its worker thread talks to
a daemon subprocess over real ZeroMQ sockets. It is pointed at the daemon's
connection file and never starts a daemon itself, so each test decides which
daemon is up, down, hung or restarted.
"""

from __future__ import annotations

import os

# Before anything imports Qt: no display here.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator

import pytest

from chatterbox_tray.gui.app import TrayApp
from tests.support.daemons import DaemonProcess

#: How long the app may take to connect and load a fake model (generous: the machine may be busy).
CONNECT_TIMEOUT_MS = 30_000


def open_app(qtbot, daemon: DaemonProcess, ready: bool = True, hotkey_backend=None) -> TrayApp:
    """A started app connected to ``daemon`` (waits for the model to be ready unless told not to)."""
    app = TrayApp(daemon.connection_path, autostart=False, probe_microphone=False, hotkey_backend=hotkey_backend)
    qtbot.addWidget(app.window)
    app.start()
    if ready:
        try:
            qtbot.waitUntil(lambda: app.state.ready and bool(app.state.hello.capabilities), timeout=CONNECT_TIMEOUT_MS)
        except BaseException:
            app.close()
            raise
    return app


@pytest.fixture
def tray_app(qtbot, daemon: DaemonProcess) -> Iterator[TrayApp]:
    """The app, connected to the shared fake daemon with its model ready."""
    app = open_app(qtbot, daemon)
    yield app
    app.close()


@pytest.fixture
def own_daemon() -> Iterator[DaemonProcess]:
    """A fake daemon for one test (to restart, stop or hang)."""
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()
