"""The Settings page's switches for the bridges the daemon runs (OpenAI endpoint, Wyoming server).

Real app, a daemon of the test's own, the real bridge as the daemon's child on
a free port, reached over HTTP.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import open_app
from tests.protocol.test_bridge_supervision import free_port, models, until
from tests.support.daemons import DaemonProcess


def test_the_openai_switch_starts_and_stops_the_endpoint(qtbot, own_daemon: DaemonProcess) -> None:
    port = free_port()
    with own_daemon.client() as client:
        client.settings_set(bridge_openai_port=port)
    app = open_app(qtbot, own_daemon)
    try:
        page = app.window.settings
        app.window.show()
        app.window.show_page("Settings")
        qtbot.waitUntil(page.isVisible)
        qtbot.waitUntil(lambda: "bridge_openai" in page.daemon_settings, timeout=15_000)
        box = page.bridge_openai
        assert f"http://127.0.0.1:{port}/v1" in box.text() and box.isEnabled() and not box.isChecked()
        assert "tcp://127.0.0.1:10200" in page.bridge_wyoming.text()
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
        assert page.changes() == {"bridge_openai": True}
        qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
        assert "tts-1" in until(lambda: models(port), what="the endpoint to answer")
        qtbot.waitUntil(lambda: page.daemon_settings.get("bridge_openai") is True, timeout=15_000)
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
        until(lambda: models(port) is None, what="the endpoint to go")
        with own_daemon.client() as client:
            assert client.settings_get()["settings"]["bridge_openai"] is False
    finally:
        app.close()
