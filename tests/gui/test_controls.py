"""Controls that show what the app is doing: a working state while speech is
made, Pause only when something plays, the wheel, and edits on the Settings page."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

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


def _wheel(widget, steps: int = -1) -> None:
    """One notch of the mouse wheel over ``widget`` (negative: towards the user)."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        centre,
        widget.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_changes_only_a_focused_control_and_nothing_is_saved_until_apply(qtbot, own_daemon):
    app = open_app(qtbot, own_daemon)
    try:
        window, page = app.window, app.window.settings
        window.show()
        window.show_page("Settings")
        with own_daemon.client() as client:
            before = client.settings_get()["settings"]
            qtbot.waitUntil(lambda: bool(page.daemon_settings) and page.output.count() > 1, timeout=10_000)
            window.speak.text.setFocus()
            memory, index, volume = page.memory_mb.value(), page.output.currentIndex(), page.volume.value()
            for widget in (page.memory_mb, page.output, page.volume, page.pause_ms, page.prebuffer):
                _wheel(widget)
            speak = window.speak
            seed, temperature = speak.seed.value(), speak.sliders["temperature"].value()
            for widget in (speak.seed, speak.sliders["temperature"].slider):
                _wheel(widget)
            assert (speak.seed.value(), speak.sliders["temperature"].value()) == (seed, temperature)
            assert (page.memory_mb.value(), page.output.currentIndex(), page.volume.value()) == (memory, index, volume)
            assert page.changes() == {}
            # Focused, the wheel works as usual; the change waits for Apply.
            page.output.setFocus()
            _wheel(page.output)
            assert page.output.currentIndex() != index
            wanted = page.output.currentData()
            assert page.changes() == {"output_device": wanted}
            page.volume.setValue(volume - 20)
            assert client.settings_get()["settings"]["output_device"] == before["output_device"]
            # Revert undoes both.
            qtbot.mouseClick(page.revert_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: page.output.currentIndex() == index and page.volume.value() == volume)
            assert page.changes() == {}
            page.output.setCurrentIndex(page.output.findData(wanted))
            qtbot.mouseClick(page.apply_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: client.settings_get()["settings"]["output_device"] == wanted, timeout=10_000)
    finally:
        app.close()


def test_the_settings_page_takes_ranges_choices_labels_and_tooltips_from_the_schema(qtbot, own_daemon):
    from chatterbox_tray.ipc.settings_schema import SETTINGS

    app = open_app(qtbot, own_daemon)
    try:
        page = app.window.settings
        qtbot.waitUntil(lambda: bool(page.daemon_settings), timeout=10_000)
        for combo, name in ((page.device, "device"), (page.prebuffer, "prebuffer"), (page.variant, "variant")):
            shown = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
            assert shown.items() <= SETTINGS[name].choices.items(), name
        pause, rate = SETTINGS["sentence_pause_ms"], SETTINGS["rate"]
        assert (page.pause_ms.minimum(), page.pause_ms.maximum()) == (pause.low, pause.high)
        assert (page.rate.minimum(), page.rate.maximum()) == (round(rate.low * 100), round(rate.high * 100))
        for widget, name in (
            (page.rate, "rate"),
            (page.memory_mb, "memory_cache_mb"),
            (page.idle_minutes, "unload_after_idle_minutes"),
            (page.bridge_openai, "bridge_openai"),
            (page.bridge_wyoming, "bridge_wyoming"),
        ):
            assert widget.toolTip() == SETTINGS[name].help, name
        form = page.output_box.layout()
        for widget in (page.output, page.prebuffer, page.pause_ms):
            assert form.labelForField(widget).text() in {s.label for s in SETTINGS.values()}
    finally:
        app.close()


def test_unsaved_settings_edits_survive_another_clients_change(qtbot, own_daemon):
    app = open_app(qtbot, own_daemon)
    try:
        page = app.window.settings
        with own_daemon.client() as client:
            before = client.settings_get()["settings"]
            qtbot.waitUntil(lambda: page.memory_mb.value() == before["memory_cache_mb"], timeout=10_000)
            mine = before["memory_cache_mb"] + 64
            page.memory_mb.setValue(mine)
            # Another client changes another setting: it is shown, and the edit stays.
            client.settings_set(disk_cache_mb=before["disk_cache_mb"] + 256)
            qtbot.waitUntil(lambda: page.disk_mb.value() == before["disk_cache_mb"] + 256, timeout=10_000)
            assert page.memory_mb.value() == mine
            assert page.changes() == {"memory_cache_mb": mine}
            # It changes the same setting: the edit stays and the page says a newer value arrived.
            client.settings_set(memory_cache_mb=before["memory_cache_mb"] + 128)
            qtbot.waitUntil(lambda: page.daemon_settings.get("memory_cache_mb") == before["memory_cache_mb"] + 128)
            assert page.memory_mb.value() == mine
            assert not page.banner.isHidden()
            assert "Voice cache in memory" in page.banner.label.text()
            # Revert takes theirs and clears the banner.
            page.revert()
            qtbot.waitUntil(lambda: page.memory_mb.value() == before["memory_cache_mb"] + 128)
            assert page.banner.isHidden() and page.changes() == {}
    finally:
        app.close()


def test_an_idle_model_shows_asleep_and_speaking_wakes_it(qtbot, own_daemon, clips):
    """The daemon unloads an idle model: the app says "asleep" without an alarming banner,
    Speak stays usable, the Settings page offers the idle time, and speaking wakes the model."""
    app = open_app(qtbot, own_daemon)
    try:
        _default_voice(qtbot, app, own_daemon, clips)
        state, window, settings = app.state, app.window, app.window.settings
        settings.refresh()
        qtbot.waitUntil(lambda: settings.idle_minutes.value() == 30, timeout=10_000)
        with own_daemon.client() as client:
            client.settings_set(unload_after_idle_minutes=0.02)
        qtbot.waitUntil(lambda: state.icon_state == "sleeping", timeout=20_000)
        assert window.status_text.text().startswith("Asleep")
        assert "Asleep" in app.tray.icon.toolTip()
        assert window.daemon_banner.banner.isHidden() and window.daemon_banner.progress.isHidden()
        assert window.speak.speak_button.isEnabled() and app.tray.speak_clipboard.isEnabled()
        qtbot.waitUntil(lambda: settings.loaded_label.text().startswith("Asleep"), timeout=10_000)
        # The page's own control: whole minutes, 0 reads "Never".
        settings.idle_minutes.setValue(0)
        assert settings.idle_minutes.text() == "Never"
        assert settings.changes() == {"unload_after_idle_minutes": 0}
        settings.apply()
        qtbot.waitUntil(lambda: settings.daemon_settings.get("unload_after_idle_minutes") == 0, timeout=10_000)
        window.speak.text.setPlainText("Wake up.")
        window.speak.speak()
        qtbot.waitUntil(lambda: state.model_state == "ready", timeout=30_000)
        qtbot.waitUntil(lambda: not state.busy, timeout=30_000)
        assert state.icon_state == "ready"
    finally:
        app.close()


def test_a_paused_speaker_shows_as_paused_while_the_model_sleeps(qtbot, own_daemon):
    """Asleep must not hide a paused speaker: the next Speak would be silent without a word."""
    app = open_app(qtbot, own_daemon)
    try:
        with own_daemon.client() as client:
            client.pause()
            client.settings_set(unload_after_idle_minutes=0.01)
        qtbot.waitUntil(lambda: app.state.model_state == "sleeping" and app.state.paused, timeout=20_000)
        assert app.state.icon_state == "paused"
        assert app.window.status_text.text().startswith("Paused")
        with own_daemon.client() as client:
            client.resume()
        qtbot.waitUntil(lambda: app.state.icon_state == "sleeping", timeout=10_000)
    finally:
        app.close()


def test_skip_moves_the_local_speaker_to_the_next_sentence(qtbot, tray_app, daemon, clips):
    """The Speak page's Skip button (with this computer's daemon): the daemon's speaker moves on."""
    page, state = tray_app.window.speak, tray_app.state
    _default_voice(qtbot, tray_app, daemon, clips)
    qtbot.waitUntil(lambda: not state.busy)
    assert not page.skip_button.isEnabled()  # nothing is speaking
    events: list[dict] = []
    state.job_event.connect(events.append)
    heard_at: list[int] = []  # the speaker's samples when each sentence began
    state.job_event.connect(lambda e: heard_at.append(len(daemon.played())) if e.get("event") == "sentence" else None)
    before = len(daemon.played())
    page.text.setPlainText(" ".join(SENTENCES))
    qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 1"), timeout=30_000)
    qtbot.waitUntil(page.skip_button.isEnabled, timeout=5_000)
    qtbot.mouseClick(page.skip_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Speaking sentence 2"), timeout=10_000)
    mine = [e for e in events if e.get("request") == page.request_id]
    sentence_0 = next(e for e in mine if e["event"] == "sentence" and e["sentence"] == 0)
    sentence_1 = next(e for e in mine if e["event"] == "sentence" and e["sentence"] == 1)
    assert mine.index(sentence_0) < mine.index(sentence_1)
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not state.busy, timeout=10_000)
    # The second sentence began long before the first (fake audio: 80 ms a character, 3.3 s) could play out.
    assert len(heard_at) >= 2 and 0 < heard_at[1] - before < 2.0 * 24000
