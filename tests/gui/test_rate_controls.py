"""The speaking rate in the app: the Speak page's Speed slider and the Settings page's default.

A daemon of the test's own (the rate setting must not leak into other tests),
the real app with real widgets, real keys on the sliders.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, uid

TEXT = "A sentence to hear faster. And one more for luck."


def test_the_speed_slider_sets_the_rate_of_what_is_spoken_and_saved(qtbot, own_daemon: DaemonProcess, clips, tmp_path):
    with own_daemon.client() as client:
        voice = uid("rate")
        client.voices_add(voice, data=clips.new())
        client.voices_default(voice)
    app = open_app(qtbot, own_daemon)
    try:
        page = app.window.speak
        slider = page.rate.slider
        assert page.rate.value() == 1.0 and (slider.minimum(), slider.maximum()) == (50, 200)
        page.show()
        slider.setFocus()
        for _ in range(50):  # arrow keys, as a user would: 1.00 -> 1.50
            qtbot.keyClick(slider, Qt.Key.Key_Right)
        assert page.rate.value() == 1.5 and page.rate.value_label.text() == "1.50"
        page.text.setPlainText(TEXT)
        assert page.speak_request().args["rate"] == 1.5
        assert page.synthesize_request().args["rate"] == 1.5
        qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.job is not None, timeout=15_000)
        with own_daemon.client() as client:
            end = client.wait(page.job, timeout=60)
        assert end["state"] == "finished" and end["summary"]["rate"] == 1.5
        # Defaults puts it back to the daemon's rate setting.
        defaults = next(b for b in page.findChildren(QPushButton) if b.text() == "Defaults")
        qtbot.mouseClick(defaults, Qt.MouseButton.LeftButton)
        assert page.rate.value() == 1.0
    finally:
        app.close()


def test_the_settings_default_reaches_the_daemon_and_the_speak_page(qtbot, own_daemon: DaemonProcess):
    app = open_app(qtbot, own_daemon)
    try:
        settings, speak = app.window.settings, app.window.speak
        qtbot.waitUntil(lambda: "rate" in settings.daemon_settings, timeout=15_000)
        assert settings.rate.isEnabled() and settings.rate.value() == 100
        settings.rate.setValue(75)
        assert settings.changes() == {"rate": 0.75}
        qtbot.mouseClick(settings.apply_button, Qt.MouseButton.LeftButton)
        with own_daemon.client() as client:
            qtbot.waitUntil(lambda: client.settings_get()["settings"]["rate"] == 0.75, timeout=15_000)
            # The Speak page's slider, untouched, follows the new default...
            qtbot.waitUntil(lambda: speak.rate.value() == 0.75, timeout=15_000)
            assert speak.rate.default == 0.75
            # ...but once the user has moved it, another client's change only moves the default.
            speak.rate.set_value(1.25)
            client.settings_set(rate=1.5)
            qtbot.waitUntil(lambda: speak.rate.default == 1.5, timeout=15_000)
            assert speak.rate.value() == 1.25
            qtbot.waitUntil(lambda: settings.rate.value() == 150, timeout=15_000)
            assert settings.rate_label.text() == "1.50×"
    finally:
        app.close()


def test_a_new_app_takes_the_daemons_rate_as_the_speed_default(qtbot, own_daemon: DaemonProcess):
    with own_daemon.client() as client:
        client.settings_set(rate=0.6)
    app = open_app(qtbot, own_daemon)
    try:
        qtbot.waitUntil(lambda: app.window.speak.rate.value() == 0.6, timeout=15_000)
    finally:
        app.close()
