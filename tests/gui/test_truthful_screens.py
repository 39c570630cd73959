"""Screens that tell the truth (issue 23 §2): the page, the status bar and the tray agree.

Real fake-engine daemons over real sockets; the app is the real one.
"""

from __future__ import annotations

import time

from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, uid

SENTENCES = ["Hello there, this is the first sentence.", "And this is the second one.", "Then a third."]


def _voice(qtbot, app, daemon, clips) -> str:
    name = uid("truth")
    with daemon.client() as client:
        client.voices_add(name, data=clips.new())
        client.voices_default(name)
    qtbot.waitUntil(lambda: app.state.default_voice == name)
    return name


def test_pause_then_resume_before_the_first_audio(qtbot, clips):
    """Paused while speech is being made: the page and the status bar say paused, with how far it is;
    resumed: both say it is being made again (not "Speaking"), and it plays as soon as it is made.

    Before: "resumed" counted as sound on the speaker, so the status bar said
    "Speaking" over a silent speaker while the page still said "Paused", and
    the "n of m sentences made" line was gone.
    """
    slow = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "1.0"}).start()
    app = open_app(qtbot, slow)
    try:
        _voice(qtbot, app, slow, clips)
        state, window, page = app.state, app.window, app.window.speak
        page.text.setPlainText(" ".join(SENTENCES))
        page.speak()
        qtbot.waitUntil(lambda: state.icon_state == "working" and state.making_progress()[1] == 3, timeout=15_000)
        page.toggle_pause()
        qtbot.waitUntil(lambda: state.paused, timeout=10_000)
        assert state.icon_state == "paused"
        assert window.status_text.text().startswith("Paused · "), window.status_text.text()
        assert " of 3 sentences made" in window.status_text.text()  # the page and the status bar agree
        assert page.progress_label.text().startswith("Paused · made "), page.progress_label.text()
        assert " of 3 sentences" in page.progress_label.text()
        # Made while paused: the count goes on, the page still says paused.
        qtbot.waitUntil(lambda: state.making_progress() == (3, 3), timeout=15_000)
        qtbot.waitUntil(lambda: "made 3 of 3" in page.progress_label.text(), timeout=5_000)
        assert page.progress_label.text().startswith("Paused")

        seen: dict[str, str] = {}

        def on_event(data):  # the moment the resume arrives, before any sound
            if data.get("event") == "resumed" and "status" not in seen:
                seen["status"] = window.status_text.text()
                seen["page"] = page.progress_label.text()
                seen["icon"] = state.icon_state

        state.job_event.connect(on_event)
        resumed_at = time.monotonic()
        page.toggle_pause()
        qtbot.waitUntil(lambda: "status" in seen, timeout=10_000)
        assert seen["status"].startswith("Making speech… 3 of 3 sentences made"), seen
        assert seen["page"] == "Made 3 of 3 sentences…", seen
        assert seen["icon"] == "working", seen
        # Everything is made: it plays at once.
        qtbot.waitUntil(lambda: state.speaking, timeout=10_000)
        assert time.monotonic() - resumed_at < 3.0
        assert window.status_text.text().startswith("Speaking")
        qtbot.waitUntil(lambda: not state.busy, timeout=30_000)
        assert page.progress_label.text().startswith("Done")
    finally:
        app.close()
        slow.cleanup()


def test_saving_a_file_shows_in_the_status_bar_and_the_tray(qtbot, slow_daemon, clips, tmp_path):
    """Save as…: not only the Speak page but the status bar, its progress bar, the tray icon and its tooltip."""
    app = open_app(qtbot, slow_daemon)
    try:
        name = uid("save")
        with slow_daemon.client() as client:
            client.voices_add(name, data=clips.new())
        state, window, page = app.state, app.window, app.window.speak
        qtbot.waitUntil(lambda: page.voice.findData(name) >= 0)
        page.voice.setCurrentIndex(page.voice.findData(name))
        page.text.setPlainText(" ".join(f"This is sentence number {n} of a save." for n in range(1, 9)))
        out = tmp_path / "chapter.wav"
        page.save_to(str(out))
        qtbot.waitUntil(lambda: page.progress.value() >= 1, timeout=15_000)
        assert window.status_text.text().startswith("Saving chapter.wav…"), window.status_text.text()
        assert " of 8 sentences made" in window.status_text.text()
        assert "Saving chapter.wav…" in app.tray.icon.toolTip()
        assert app.tray.status_line.text().startswith("Saving chapter.wav")
        assert state.icon_state == "working"
        assert not window.status_progress.isHidden() and window.status_progress.maximum() == 8
        qtbot.waitUntil(lambda: out.exists(), timeout=30_000)
        qtbot.waitUntil(lambda: window.status_text.text().startswith("Ready"), timeout=5_000)
        assert state.icon_state == "ready" and window.status_progress.isHidden()
        assert state.summary.startswith("Ready") and app.tray.icon.toolTip() == f"Chatterbox Tray\n{state.summary}"
    finally:
        app.close()


def test_seconds_of_speech_are_the_same_on_the_speak_and_stats_pages(qtbot, clips):
    """One definition, one label: the Speak page's "Done: … of speech" is the Stats page's Speech column.

    Before: the Speak page said what was played (the pauses between sentences
    counted, 7.14 s) and the Stats page's "Audio" the speech made (6.24 s).
    """
    from chatterbox_tray.gui.pages.stats_page import JOB_COLUMNS
    from chatterbox_tray.gui.widgets import SPEECH_LABEL

    proc = DaemonProcess().start()
    app = open_app(qtbot, proc)
    try:
        _voice(qtbot, app, proc, clips)
        page, stats = app.window.speak, app.window.stats
        page.text.setPlainText(" ".join(SENTENCES))
        page.speak()
        qtbot.waitUntil(lambda: page.progress_label.text().startswith("Done: "), timeout=30_000)
        spoken = page.progress_label.text().removeprefix("Done: ").split(" of speech")[0]
        stats.refresh()
        column = JOB_COLUMNS.index(SPEECH_LABEL)
        qtbot.waitUntil(lambda: stats.jobs.topLevelItemCount() >= 1, timeout=10_000)
        assert stats.jobs.topLevelItem(0).text(column) == spoken
        assert stats.jobs.headerItem().text(column) == "Speech"
    finally:
        app.close()
        proc.cleanup()


def test_a_job_lost_to_a_daemon_crash_is_listed_as_lost(qtbot, clips):
    """kill -9 while speech is being made; the daemon comes back: the Stats page lists the job as lost."""
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "2"}).start()
    app = open_app(qtbot, proc)
    try:
        _voice(qtbot, app, proc, clips)
        page, stats = app.window.speak, app.window.stats
        text = f"Lost with the daemon {uid()}. And another sentence."
        page.text.setPlainText(text)
        page.speak()
        qtbot.waitUntil(lambda: app.state.busy, timeout=10_000)
        qtbot.wait(300)  # the history file is written on a thread of its own
        proc.kill()
        proc.start()
        qtbot.waitUntil(lambda: app.state.ready, timeout=30_000)
        qtbot.waitUntil(lambda: page.progress_label.text() == "Lost", timeout=10_000)
        stats.refresh()

        def lost_row():
            for i in range(stats.jobs.topLevelItemCount()):
                item = stats.jobs.topLevelItem(i)
                if item.toolTip(1) == text:
                    return item
            return None

        qtbot.waitUntil(lambda: lost_row() is not None, timeout=10_000)
        item = lost_row()
        assert item.text(0).endswith("(lost)"), item.text(0)
        assert "crash" in item.toolTip(0)
        assert item.text(3) == "speech"
    finally:
        app.close()
        proc.cleanup()


#: What a first run without a connection said (issue 23 §4): the hub library's message, raw.
OFFLINE = (
    "could not load the turbo weights: An error happened while trying to locate the files on the Hub and we "
    "cannot find the appropriate snapshot folder for the specified revision on the local disk. Please check "
    "your internet connection and try again.. Got: ConnectError: [Errno -2] Name or service not known. "
    "Connect to the internet once so the weights can be downloaded, or set a local checkpoint folder."
)


def test_a_failed_reload_is_told_as_it_is_on_the_card_and_the_settings_page(qtbot, tmp_path):
    """A model that loaded, then a reload from a folder without the model's files, fails.

    Before: the Settings banner still said "Loading the model…", "Loaded: … on cpu"
    stayed although nothing was loaded, the failure card listed the missing files
    twice and cut a name off ("s3gen_meanflow.safetenso"), and the two-sentence
    line beside "Reload the model now" was squeezed into one row.
    """
    from PySide6.QtWidgets import QLabel

    from chatterbox_tray.gui.window import DEFAULT_SIZE

    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_FAIL_CHECKPOINT": "no-model"}).start()
    app = open_app(qtbot, proc)
    try:
        window, page = app.window, app.window.settings
        window.resize(*DEFAULT_SIZE)
        window.show()
        window.show_page("Settings")
        good = tmp_path / "home" / "ann" / "models" / "chatterbox" / "turbo"
        good.mkdir(parents=True)
        with proc.client() as client:
            client.settings_set(checkpoint=str(good))
            client.reload()
            client.wait_ready(timeout=30)
        qtbot.waitUntil(lambda: "…/chatterbox/turbo on cpu." in page.loaded_label.text(), timeout=10_000)
        assert str(good) in page.loaded_label.toolTip()  # a long folder is shortened, whole in the tooltip
        # Another model asked for: the two sentences show, on two lines, not squeezed into one.
        folder = tmp_path / "no-model-here"
        folder.mkdir(parents=True)
        with proc.client() as client:
            client.settings_set(checkpoint=str(folder), variant="turbo")
        qtbot.waitUntil(lambda: "reload to use it" in page.loaded_label.text(), timeout=10_000)
        qtbot.wait(100)
        label = page.loaded_label
        assert label.height() >= label.heightForWidth(label.width()), "the label is squeezed"

        page.reload_model()
        qtbot.waitUntil(lambda: app.state.model_state == "failed", timeout=30_000)
        qtbot.wait(300)  # the banner's and the page's answers to the new state
        assert "Loading the model" not in page.banner.label.text() or not page.banner.isVisible()
        assert page.banner.isVisible() and page.banner.label.text().startswith("The model could not be loaded.")
        assert not page.loaded_label.text().startswith("Loaded"), page.loaded_label.text()
        assert "last load failed" in page.loaded_label.text()

        card = window.daemon_banner.banner
        text, reason = card.label.text(), app.state.status.error
        assert "s3gen_meanflow.safetensors" in reason
        assert "s3gen_meanflow" not in text, "the card says it in words; the file names are behind Details"
        assert text.startswith("The chosen folder does not hold all of the model's files")
        assert card.details == reason and card.details_button.isVisible()
        # Nothing on the card is cut: every word fits the card's width.
        for widget in card.findChildren(QLabel):
            words = widget.text().split()
            widest = max(widget.fontMetrics().horizontalAdvance(w) for w in words)
            assert widest <= widget.contentsRect().width(), f"a word is cut off on the card: {widget.text()}"
            assert widget.height() >= widget.heightForWidth(widget.width())
    finally:
        app.close()
        proc.cleanup()


def test_the_first_runs_download_failure_is_said_in_our_words(qtbot):
    """No connection on the first run: the card says so plainly; the library's message is behind Details."""
    proc = DaemonProcess(
        env={"CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1", "CHATTERBOX_TRAY_FAKE_FAIL_MESSAGE": OFFLINE}
    ).start(ready=False)
    app = open_app(qtbot, proc, ready=False)
    try:
        qtbot.waitUntil(lambda: app.state.model_state == "failed", timeout=30_000)
        card = app.window.daemon_banner.banner
        qtbot.waitUntil(card.isVisible)
        text = card.label.text()
        assert text.startswith("The model could not be downloaded: there is no connection to the internet")
        assert "ConnectError" not in text and "Errno" not in text and ".." not in text
        assert card.details == OFFLINE
        assert card.action.text() == "Retry" and card.more.text() == "Use a local folder…"
    finally:
        app.close()
        proc.cleanup()
