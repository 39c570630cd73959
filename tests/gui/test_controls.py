"""Controls that show what the app is doing: a working state while speech is
made, Pause only when something plays, the wheel, and edits on the Settings page."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, uid

SENTENCES = ["Hello there, this is the first sentence.", "And this is the second one.", "Then a third."]


def _default_voice(qtbot, app, daemon, clips) -> str:
    name = uid("ctl")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        client.voices_default(name)
    qtbot.waitUntil(lambda: app.state.default_voice == name)
    return name


def test_making_speech_shows_in_the_status_bar_tray_and_icon(qtbot, clips):
    """While a job is being made and nothing plays yet, the app says so, with progress."""
    slow = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "2"}).start()
    app = open_app(qtbot, slow)
    try:
        _default_voice(qtbot, app, slow, clips)
        state, window, page = app.state, app.window, app.window.speak
        page.text.setPlainText(" ".join(SENTENCES * 3))
        page.speak()
        qtbot.waitUntil(lambda: state.icon_state == "working" and state.making_progress()[1] == 9, timeout=15_000)
        assert window.status_text.text().startswith("Making speech… 0 of 9 sentences made")
        assert "Making speech… 0 of 9 sentences made" in app.tray.icon.toolTip()
        assert not window.status_progress.isHidden()
        assert (window.status_progress.value(), window.status_progress.maximum()) == (0, 9)
        # Progress counts sentences as they are made (the first takes 2 s here: say it now).
        job = next(iter(state.speech_jobs))
        state.conn.event.emit("job", {"job": job, "kind": "speak", "event": "chunk", "index": 0, "chunks": 9})
        if state.working:
            assert window.status_progress.value() == 1
            assert "1 of 9 sentences made" in window.status_text.text()
        page.stop()
        qtbot.waitUntil(lambda: not state.busy, timeout=30_000)
        assert window.status_progress.isHidden()
        assert window.status_text.text().startswith("Ready")
        assert state.icon_state == "ready"
    finally:
        app.close()
        slow.cleanup()


def test_pause_needs_something_to_pause_and_a_paused_speaker_shows_everywhere(qtbot, tray_app, daemon):
    window, page, tray = tray_app.window, tray_app.window.speak, tray_app.tray
    qtbot.waitUntil(lambda: not tray_app.state.busy)
    assert not page.pause_button.isEnabled()
    assert not tray.pause.isEnabled()
    # Another client pauses the idle speaker: the app shows it and offers Resume.
    with daemon.client() as client:
        client.pause()
        try:
            qtbot.waitUntil(lambda: tray_app.state.paused, timeout=10_000)
            assert tray_app.state.icon_state == "paused"
            assert window.status_text.text().startswith("Paused")
            assert "Paused" in tray.icon.toolTip()
            assert page.pause_button.isEnabled() and page.pause_button.text() == "Resume"
            assert tray.pause.isEnabled() and tray.pause.text() == "Resume"
            qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: not tray_app.state.paused, timeout=10_000)
        finally:
            client.resume()
    assert tray_app.state.icon_state == "ready"
    assert not page.pause_button.isEnabled()
