"""Recovery from the GUI alone: the tray menu in the failed state, a local
folder from the failure banner, and speech lost with its daemon."""

from __future__ import annotations

from PySide6.QtCore import Qt

from chatterbox_tray.gui import window as window_module
from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, EventLog, uid

SENTENCES = ["Hello there, this is the first sentence.", "And this is the second one.", "Then a third."]


def test_the_tray_menu_in_the_failed_state_has_a_status_line_retry_and_settings(qtbot):
    daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1000"}).start(ready=False)
    app = open_app(qtbot, daemon, ready=False)
    try:
        qtbot.waitUntil(lambda: app.state.model_state == "failed", timeout=30_000)
        tray = app.tray
        assert tray.status_line.text() == app.state.summary == "The model failed to load"
        assert not tray.status_line.isEnabled()  # a line to read, not a command
        assert tray.retry.isVisible() and tray.retry.isEnabled()
        assert tray.menu.actions().index(tray.retry) < tray.menu.actions().index(tray.speak_clipboard)
        with daemon.events() as stream:
            log = EventLog(stream)
            tray.retry.trigger()
            assert log.wait_for(lambda t, d: t == "state" and d.get("state") == "loading", timeout=15)
        qtbot.waitUntil(lambda: app.state.model_state == "failed", timeout=30_000)
        tray.settings.trigger()
        assert app.window.isVisible() and app.window.stack.currentWidget() is app.window.settings
    finally:
        app.close()
        daemon.cleanup()


def test_the_failure_banner_loads_from_a_local_folder(qtbot, monkeypatch, tmp_path):
    daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1"}).start(ready=False)
    app = open_app(qtbot, daemon, ready=False)
    try:
        qtbot.waitUntil(lambda: app.state.model_state == "failed", timeout=30_000)
        banner = app.window.daemon_banner.banner
        assert banner.more.isVisible() and banner.more.text() == "Use a local folder…"
        monkeypatch.setattr(window_module.QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
        qtbot.mouseClick(banner.more, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: app.state.ready, timeout=30_000)
        with daemon.client() as client:
            assert client.settings_get()["settings"]["checkpoint"] == str(tmp_path)
        assert not banner.isVisible()
    finally:
        app.close()
        daemon.cleanup()


def test_speech_lost_with_its_daemon_is_reported_and_the_page_resets(qtbot, own_daemon, clips):
    app = open_app(qtbot, own_daemon)
    try:
        name = uid("lost")
        with own_daemon.client() as client:
            client.voices_add(name, data=clips.new())
            client.voices_default(name)
        qtbot.waitUntil(lambda: app.state.default_voice == name)
        page = app.window.speak
        page.text.setPlainText(" ".join(SENTENCES * 10))
        page.speak()
        qtbot.waitUntil(lambda: page.job is not None and app.state.busy, timeout=15_000)
        told = []  # the tray tells it too (a clipboard job has no page)
        app.tray.icon.showMessage = lambda title, message, *rest: told.append(message)
        own_daemon.kill()
        own_daemon.start()
        qtbot.waitUntil(lambda: page.progress_label.text() == "Lost", timeout=30_000)
        assert not page.in_progress and page.job is None
        assert not page.banner.isHidden() and "lost" in page.banner.label.text()
        assert any("lost" in message for message in told)
        qtbot.waitUntil(lambda: app.state.ready, timeout=30_000)
        assert page.speak_button.isEnabled() and not page.stop_button.isEnabled()
        assert app.state.icon_state == "ready"
    finally:
        app.close()
