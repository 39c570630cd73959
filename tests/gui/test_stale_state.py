"""Controls that follow what is true now: Set as default, rename, Play clip,
banners that come and go without moving controls, the Settings page after a
load, Language for English-only models, and a clip checked before its name."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from PySide6.QtWidgets import QApplication, QInputDialog

from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, uid


def test_voice_buttons_follow_the_selection_rename_and_the_clip(qtbot, tray_app, daemon, clips):
    window, page = tray_app.window, tray_app.window.voices
    window.show()
    window.show_page("Voices")
    name, other, new = uid("stale"), uid("stale"), uid("renamed")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        client.voices_add(other, data=clips.new())
        client.voices_default(name)
        qtbot.waitUntil(lambda: {name, other} <= set(page.names()) and tray_app.state.default_voice == name)
        # "Set as default" is off for the default voice.
        page.select(name)
        assert not page.default_button.isEnabled()
        page.select(other)
        assert page.default_button.isEnabled()
        # A failed rename says why; the banner appears below the buttons, which do not move.
        top = page.add_button.mapTo(window, page.add_button.rect().topLeft()).y()
        page.rename_to(other, name)  # taken
        qtbot.waitUntil(lambda: not page.banner.isHidden())
        QApplication.processEvents()
        assert page.add_button.mapTo(window, page.add_button.rect().topLeft()).y() == top
        # A good rename keeps the voice selected and clears the error.
        page.rename_to(other, new)
        qtbot.waitUntil(lambda: new in page.names() and page.selected() == new)
        assert page.banner.isHidden()
        # Play clip turns into Stop while the clip plays, and back.
        if tray_app.state.supports("voices.play"):
            page.play()
            qtbot.waitUntil(lambda: page.play_button.text() == "Stop")
            page.play()  # Stop
            qtbot.waitUntil(lambda: page.play_button.text() == "Play clip", timeout=15_000)
        client.voices_remove(new)
        client.voices_remove(name)


def test_a_clip_is_checked_before_the_name_is_asked(qtbot, tray_app, monkeypatch, tmp_path):
    page = tray_app.window.voices
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(24000 * 2, dtype="float32"), 24000)
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: asked.append(a) or ("x", False))
    page.add_file(short)
    assert asked == []
    assert not page.banner.isHidden() and "2.0 s" in page.banner.label.text()
    assert "more than 5 s" in page.banner.label.text()


def test_settings_show_the_loaded_model_after_a_load_and_language_only_for_multilingual(qtbot):
    daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_LOAD_DELAY": "3"}).start(ready=False)
    app = open_app(qtbot, daemon, ready=False)
    try:
        page = app.window.settings
        qtbot.waitUntil(lambda: bool(page.daemon_settings), timeout=30_000)
        if not app.state.ready:
            assert page.loaded_label.text() == "No model loaded yet."
        qtbot.waitUntil(lambda: app.state.ready, timeout=30_000)
        qtbot.waitUntil(lambda: page.loaded_label.text().startswith("Loaded: original"), timeout=10_000)
        # The original model speaks English only: Language cannot be changed, nor sent.
        assert not page.language.isEnabled()
        page.variant.setCurrentIndex(page.variant.findData("multilingual"))
        assert page.language.isEnabled()
        page.language.setCurrentText("fr")
        assert page.changes()["language"] == "fr"
        page.variant.setCurrentIndex(page.variant.findData("original"))
        assert "language" not in page.changes()
    finally:
        app.close()
        daemon.cleanup()
