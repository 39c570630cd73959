"""The Speak page: the request it sends, highlighting, Stop, Pause, errors, Save as…."""

from __future__ import annotations

import pytest
import soundfile as sf
from PySide6.QtCore import Qt

from chatterbox_tray.gui.pages import speak_page as page_module
from chatterbox_tray.ipc.messages import SpeakResult
from tests.support.daemons import EventLog, uid

SENTENCES = ["Hello there, this is the first sentence.", "And this is the second one.", "Then a third."]


def _voice(qtbot, tray_app, daemon, clips) -> str:
    name = uid("spk")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        client.voices_default(name)
    qtbot.waitUntil(lambda: tray_app.state.default_voice == name)
    assert tray_app.window.speak.voice.currentData() == name
    return name


def test_speak_sends_the_right_request_and_highlights_sentences(qtbot, tray_app, daemon, clips):
    voice = _voice(qtbot, tray_app, daemon, clips)
    page = tray_app.window.speak
    page.voice.setCurrentIndex(page.voice.findData(voice))
    page.sliders["exaggeration"].set_value(0.7)
    page.sliders["temperature"].set_value(0.6)
    page.seed.setValue(7)
    text = " ".join(SENTENCES)
    page.text.setPlainText(text)
    with daemon.events() as stream, daemon.client() as client:
        log = EventLog(stream)
        log.sync(client)
        request = page.speak_request()
        args = request.args
        assert request.op == "speak" and args["voice"] == voice and args["priority"] == "quick" and args["text"] == text
        assert args["options"] == {"exaggeration": 0.7, "cfg_weight": 0.5, "temperature": 0.6, "seed": 7}
        saved = page.synthesize_request()
        assert saved.op == "synthesize" and saved.args == {k: v for k, v in args.items() if k != "priority"}
        qtbot.mouseClick(page.speak_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.job is not None)
        queued = log.wait_job(page.job, "queued")
        assert queued["text"] == text and queued["voice"] == voice and queued["priority"] == "quick"
        # The tray icon says it is speaking while it plays, and a sentence is highlighted.
        qtbot.waitUntil(lambda: tray_app.state.icon_state == "speaking", timeout=15_000)
        qtbot.waitUntil(lambda: page.highlighted() in SENTENCES, timeout=15_000)
        job = page.job
        assert client.wait(job, timeout=60)["state"] == "finished"
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Done"))
    assert page.highlighted() == ""
    qtbot.waitUntil(lambda: tray_app.state.icon_state == "ready")


def test_stop_and_pause(qtbot, tray_app, daemon, clips):
    _voice(qtbot, tray_app, daemon, clips)
    page = tray_app.window.speak
    page.text.setPlainText(" ".join(SENTENCES * 4))
    page.speak()
    qtbot.waitUntil(lambda: tray_app.state.speaking, timeout=30_000)
    job = page.job
    assert page.stop_button.isEnabled()
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: tray_app.state.icon_state == "paused" and page.pause_button.text() == "Resume", timeout=15_000
    )
    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tray_app.state.paused and page.pause_button.text() == "Pause", timeout=15_000)
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.progress_label.text() == "Stopped", timeout=15_000)
    with daemon.client() as client:
        assert client.wait(job)["state"] == "cancelled"
    qtbot.waitUntil(lambda: not tray_app.state.busy, timeout=15_000)
    assert not page.stop_button.isEnabled()


def test_daemon_errors_are_shown(qtbot, tray_app):
    page = tray_app.window.speak
    page.text.setPlainText("... !!! ...")  # nothing to say: the daemon answers empty_text
    page.speak()
    qtbot.waitUntil(lambda: page.banner.isVisible())
    assert "no text to speak" in page.banner.label.text().lower()
    assert page.job is None


def test_save_as_writes_the_audio(qtbot, tray_app, daemon, clips, tmp_path):
    _voice(qtbot, tray_app, daemon, clips)
    page = tray_app.window.speak
    page.text.setPlainText(" ".join(SENTENCES))
    out = tmp_path / "speech.flac"
    page.save_to(str(out))
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Saved"), timeout=30_000)
    info = sf.info(str(out))
    assert info.format == "FLAC" and info.samplerate == 24000 and info.duration > 1.0


@pytest.mark.parametrize(("name", "chosen_filter", "fmt"), [("speech.mp3", "", "MP3"), ("speech", "FLAC", "FLAC")])
def test_save_as_encodes_what_the_name_or_filter_says(
    qtbot, tray_app, daemon, clips, tmp_path, name, chosen_filter, fmt
):
    from PySide6.QtWidgets import QFileDialog

    _voice(qtbot, tray_app, daemon, clips)
    page = tray_app.window.speak
    page.text.setPlainText(SENTENCES[0])
    filters = page_module.SAVE_FILTERS.split(";;")
    picked = next((f for f in filters if f.startswith(chosen_filter)), filters[0]) if chosen_filter else filters[0]
    target = str(tmp_path / name)
    original = QFileDialog.getSaveFileName
    QFileDialog.getSaveFileName = staticmethod(lambda *a, **k: (target, picked))
    try:
        page.save_as()
    finally:
        QFileDialog.getSaveFileName = original
    qtbot.waitUntil(lambda: page.progress_label.text().startswith("Saved"), timeout=30_000)
    written = next(tmp_path.iterdir())
    assert sf.info(str(written)).format == fmt
    assert written.suffix.lower() == {"MP3": ".mp3", "FLAC": ".flac"}[fmt]


def test_save_as_to_a_missing_folder_says_so_before_synthesizing(qtbot, tray_app, tmp_path):
    page = tray_app.window.speak
    page.text.setPlainText(SENTENCES[0])
    page.save_to(str(tmp_path / "gone" / "x.wav"))
    assert page.saving is None
    assert "does not exist" in page.banner.label.text()


def test_tray_speaks_the_clipboard(qtbot, tray_app, daemon, clips):
    from PySide6.QtGui import QGuiApplication

    _voice(qtbot, tray_app, daemon, clips)
    text = f"Clipboard text number {uid('n')}."
    QGuiApplication.clipboard().setText(text)
    with daemon.events() as stream, daemon.client() as client:
        log = EventLog(stream)
        log.sync(client)
        tray_app.tray.speak_clipboard.trigger()
        queued = log.wait_for(lambda t, d: t == "job" and d.get("event") == "queued" and d.get("text") == text)
        assert queued["priority"] == "quick"
        tray_app.tray.stop.trigger() if tray_app.tray.stop.isEnabled() else client.stop(all=True)
        client.wait(queued["job"])


def test_a_lost_end_event_does_not_leave_the_app_busy(qtbot, tray_app):
    """If a job's end event never arrives (events are not resent), the app
    asks the speaker once things go quiet, and the real daemon's empty queue
    clears the phantom job."""
    state = tray_app.state
    state.conn.event.emit("job", {"job": "j-phantom", "kind": "speak", "event": "queued"})
    assert state.busy and tray_app.window.speak.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not state.busy, timeout=20_000)
    assert tray_app.state.icon_state == "ready"


def test_a_late_event_after_the_end_does_not_revive_a_job(qtbot, tray_app):
    state = tray_app.state
    for event in ("queued", "started", "cancelled", "position", "chunk"):
        state.conn.event.emit("job", {"job": "j-late", "kind": "speak", "event": event})
    assert not state.busy
    assert tray_app.state.icon_state == "ready"


def test_events_that_beat_the_answer_are_matched_by_their_request_id(qtbot, tray_app):
    """The daemon's job events name the request that made the job, so the page
    follows its job before the ``speak`` answer arrives; an answer or event that
    comes after the end does not bring the job back."""
    state, page = tray_app.state, tray_app.window.speak
    text = "One sentence. Another one."
    page.text.setPlainText(text)
    page.spoken_text, page.request_id, page.job, page.heard = text, "r-early-1", None, None
    other = {"job": "j-other", "kind": "speak", "request": "r-someone-else", "chunks": 2}
    mine = {"job": "j-early", "kind": "speak", "request": "r-early-1", "chunks": 2}
    state.conn.event.emit("job", {**other, "event": "sentence", "sentence": 1, "span": [14, 26]})
    assert page.job is None and page.highlighted() == ""  # not ours: ignored
    state.conn.event.emit("job", {**mine, "event": "sentence", "sentence": 0, "span": [0, 13]})
    assert page.job == "j-early" and page.highlighted() == "One sentence."
    assert page.progress_label.text() == "Speaking sentence 1 of 2"
    state.conn.event.emit("job", {**mine, "event": "finished", "playback": {"played_s": 2.0}})
    assert page.job is None and page.progress_label.text().startswith("Done")
    # The answer, late: the job stays over and the label keeps what the events said.
    page._spoke(SpeakResult(job="j-early", dropped=False, position=0, chunks=2))
    assert page.job is None and page.progress_label.text().startswith("Done")
    # A late event of the same request does not revive it either.
    state.conn.event.emit("job", {**mine, "event": "position", "sentence": 1, "seconds": 1.0})
    assert page.job is None and page.progress_label.text().startswith("Done")
    state.conn.event.emit("job", {**other, "event": "cancelled"})
    assert not state.busy


def test_save_as_shows_its_progress_and_can_be_cancelled(qtbot, slow_daemon, clips, tmp_path):
    """A long save says how far it is (sentences, audio, time left); Cancel save ends it, writing nothing."""
    from .conftest import open_app

    app = open_app(qtbot, slow_daemon)
    try:
        name = uid("save")
        with slow_daemon.client() as client:
            client.voices_add(name, data=clips.new())
        page = app.window.speak
        qtbot.waitUntil(lambda: page.voice.findData(name) >= 0)
        page.voice.setCurrentIndex(page.voice.findData(name))
        sentences = [f"This is sentence number {n} of a long save." for n in range(1, 21)]
        page.text.setPlainText(" ".join(sentences))
        out = tmp_path / "long.flac"
        assert not page.cancel_save_button.isVisible()

        page.save_to(str(out))
        assert page.cancel_save_button.isVisibleTo(page) and not page.save_button.isEnabled()
        # Two sentences made (0.25 s each on this daemon): the line says so.
        qtbot.waitUntil(lambda: page.progress.value() >= 2, timeout=15_000)
        line = page.progress_label.text()
        assert line.startswith("Making long.flac: ") and " of 20 sentences, " in line, line
        assert " of audio, about " in line and line.endswith(" left"), line
        assert page.progress.maximum() == 20
        job = page.saving["job"]

        qtbot.mouseClick(page.cancel_save_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.saving is None, timeout=10_000)
        assert page.progress_label.text() == "Save cancelled: nothing was written"
        assert not out.exists()
        assert page.save_button.isEnabled() and not page.cancel_save_button.isVisibleTo(page)
        with slow_daemon.client() as client:
            ended = client.wait(job, timeout=10)
        assert ended["state"] == "cancelled" and not ended["summary"]  # stopped before its end
    finally:
        app.close()
