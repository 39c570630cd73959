"""The Wayland backend against a GlobalShortcuts portal on a private D-Bus.

No desktop here implements org.freedesktop.portal.GlobalShortcuts, so the
test runs a stand-in portal on its own ``dbus-daemon``: it follows the
portal's documented contract (Request objects at
``/org/freedesktop/portal/desktop/request/SENDER/TOKEN`` answered by a
``Response`` signal; ``CreateSession``, ``BindShortcuts``, ``Activated``),
records what the app asked for, and can press the shortcut. What it proves:
our D-Bus conversation is well formed and an activation reaches
``on_activate``; what it cannot: that a given desktop's portal behaves the same
(see docs/hotkey.md).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.io.blocking import Proxy, open_dbus_connection

from chatterbox_tray.gui.hotkeys import HotkeyError, parse_chord
from chatterbox_tray.gui.hotkeys.portal import INTERFACE, OBJECT_PATH, SHORTCUT_ID, PortalBackend


class FakePortal(threading.Thread):
    """org.freedesktop.portal.Desktop's GlobalShortcuts, as the spec describes it."""

    def __init__(self, address: str, accept: bool = True, bind_delay: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.conn = open_dbus_connection(bus=address)
        reply = Proxy(__import__("jeepney").message_bus, self.conn).RequestName("org.freedesktop.portal.Desktop", 4)
        assert reply == (1,), reply
        self.accept = accept
        self.bind_delay = bind_delay  # the user taking their time in the desktop's dialog
        self.calls: list[tuple[str, tuple]] = []
        self.sessions: list[str] = []
        self.closed: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                msg = self.conn.receive(timeout=0.2)
            except TimeoutError:
                continue
            except OSError:
                return
            if msg.header.message_type != MessageType.method_call:
                continue
            fields = msg.header.fields
            member, path = fields.get(HeaderFields.member), fields.get(HeaderFields.path)
            sender = fields[HeaderFields.sender][1:].replace(".", "_")
            self.calls.append((member, msg.body))
            if member == "CreateSession":
                options = msg.body[0]
                request = f"{OBJECT_PATH}/request/{sender}/{options['handle_token'][1]}"
                session = f"{OBJECT_PATH}/session/{sender}/{options['session_handle_token'][1]}"
                self.sessions.append(session)
                self.conn.send(new_method_return(msg, "o", (request,)))
                self._respond(request, 0, {"session_handle": ("s", session)})
            elif member == "BindShortcuts":
                session, shortcuts, _parent, options = msg.body
                request = f"{OBJECT_PATH}/request/{sender}/{options['handle_token'][1]}"
                self.conn.send(new_method_return(msg, "o", (request,)))
                bound = [
                    (sid, {"description": props["description"], "trigger_description": ("s", "Ctrl+Alt+S")})
                    for sid, props in shortcuts
                ]
                time.sleep(self.bind_delay)
                if self.accept:
                    self._respond(request, 0, {"shortcuts": ("a(sa{sv})", bound)})
                else:
                    self._respond(request, 1, {})
            elif member == "Close" and path in self.sessions:
                self.closed.append(path)
                self.conn.send(new_method_return(msg))
            else:
                self.conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(member),)))

    def _respond(self, request: str, code: int, results: dict) -> None:
        addr = DBusAddress(request, interface="org.freedesktop.portal.Request")
        self.conn.send(new_signal(addr, "Response", "ua{sv}", (code, results)))

    def press(self, shortcut_id: str = SHORTCUT_ID, session: str | None = None) -> None:
        addr = DBusAddress(OBJECT_PATH, interface=INTERFACE)
        body = (session or self.sessions[-1], shortcut_id, 123, {})
        self.conn.send(new_signal(addr, "Activated", "osta{sv}", body))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)
        self.conn.close()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is not installed (Debian: dbus-daemon)")
    sock = tmp_path / "bus"
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"unix:path={sock}"
    proc.kill()
    proc.wait()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_portal_binds_our_shortcut_and_its_activation_speaks(bus):
    portal = FakePortal(bus)
    portal.start()
    pressed = []
    backend = PortalBackend(lambda: pressed.append(1), bus=bus)
    try:
        assert backend.register(parse_chord("Ctrl+Alt+S")) == "Ctrl+Alt+S (desktop shortcut)"
        members = [m for m, _ in portal.calls]
        assert members == ["CreateSession", "BindShortcuts"]
        session, shortcuts, parent, _options = portal.calls[1][1]
        assert session == portal.sessions[0] and parent == ""
        assert shortcuts[0][0] == SHORTCUT_ID and shortcuts[0][1]["preferred_trigger"] == ("s", "CTRL+ALT+s")
        portal.press()
        assert wait_for(lambda: pressed == [1])
        portal.press(shortcut_id="someone-else")  # another shortcut of ours would not exist; ignored
        portal.press(session="/org/freedesktop/portal/desktop/session/x/other")  # another app's session
        portal.press()
        assert wait_for(lambda: len(pressed) == 2)
        time.sleep(0.3)
        assert pressed == [1, 1]
    finally:
        backend.unregister()
        portal.stop()
    assert portal.closed == portal.sessions  # the session was closed on unregister


def test_a_refused_shortcut_is_an_error(bus):
    portal = FakePortal(bus, accept=False)
    portal.start()
    try:
        with pytest.raises(HotkeyError, match="not accepted"):
            PortalBackend(lambda: None, bus=bus).register(parse_chord("Ctrl+Alt+S"))
    finally:
        portal.stop()


def test_no_portal_on_the_bus_says_so(bus):
    with pytest.raises(HotkeyError, match="no GlobalShortcuts portal"):
        PortalBackend(lambda: None, bus=bus).register(parse_chord("Ctrl+Alt+S"))


def test_the_app_stays_responsive_while_the_desktop_asks_the_user(qtbot, bus, daemon, monkeypatch, tmp_path):
    """The portal's dialog can take as long as the user likes: the grab happens
    off the GUI thread, the Settings page says it is waiting, then active."""
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication

    from tests.gui.conftest import open_app

    monkeypatch.setenv("CHATTERBOX_TRAY_HOME", str(tmp_path))
    portal = FakePortal(bus, bind_delay=3.0)
    portal.start()
    ticks = []
    timer = QTimer(interval=50, timeout=lambda: ticks.append(1))
    app = None
    try:
        app = open_app(qtbot, daemon, hotkey_backend=lambda cb: PortalBackend(cb, bus=bus))
        status = app.window.settings.hotkey_status
        timer.start()
        qtbot.waitUntil(lambda: status.text().startswith("Active:"), timeout=15_000)
        assert status.text() == "Active: Ctrl+Alt+S (desktop shortcut)"
        # While the portal held its answer (3 s), the event loop kept running.
        assert len(ticks) >= 20
        QGuiApplication.clipboard().setText("Spoken through the portal's shortcut.")
        acted = []
        app.quick.acted.connect(acted.append)
        portal.press()
        qtbot.waitUntil(lambda: acted == ["speak"], timeout=10_000)
    finally:
        timer.stop()
        if app is not None:
            app.close()
        portal.stop()
