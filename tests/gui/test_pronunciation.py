"""Issue 21 in the tray app: the Pronunciation page, the Speak page's Insert menu, and "Read what I copy".

The real app against real fake-engine daemons of their own (rules and
speech jobs must not leak into other tests' daemon).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QGuiApplication, QImage

from chatterbox_tray.gui.app import TrayApp
from chatterbox_tray.ipc import endpoints
from tests.gui.conftest import open_app
from tests.support.daemons import Clips, DaemonProcess, EventLog, narrated_daemon


@pytest.fixture
def voiced(clips: Clips) -> Iterator[DaemonProcess]:
    """A fake original-model daemon with a default voice."""
    with narrated_daemon(clips) as proc:
        yield proc


@pytest.fixture
def app(qtbot, voiced: DaemonProcess, tmp_path, monkeypatch) -> Iterator[TrayApp]:
    monkeypatch.setenv(endpoints.HOME_ENV, str(tmp_path))  # the app's own gui.json, not the user's
    running = open_app(qtbot, voiced)
    yield running
    running.close()


def daemon_rules(daemon: DaemonProcess) -> list[dict]:
    with daemon.client() as c:
        return c.call("words.list")["rules"]


def test_add_edit_remove_and_a_bad_rule_is_refused_with_its_reason(qtbot, app: TrayApp, voiced) -> None:
    window = app.window
    window.show_page("Pronunciation")
    page = window.pronunciation
    page.word.setText("nginx")
    page.say.setText("engine x")
    page.add_button.click()
    qtbot.waitUntil(lambda: page.table.rowCount() == 1)
    assert page.table.item(0, 0).text() == "nginx" and page.table.item(0, 1).text() == "engine x"
    assert daemon_rules(voiced)[0]["say"] == "engine x"

    # Edit: the form holds the rule; Save replaces it in place.
    page.table.selectRow(0)
    assert page.add_button.text() == "Save" and page.word.text() == "nginx"
    page.say.setText("engine ex")
    page.add_button.click()
    qtbot.waitUntil(lambda: page.table.item(0, 1) is not None and page.table.item(0, 1).text() == "engine ex")

    # A bad regular expression: the daemon's reason on the page, nothing saved.
    page.clear_form()
    page.word.setText("(unclosed")
    page.say.setText("x")
    page.regex.setChecked(True)
    page.add_button.click()
    qtbot.waitUntil(page.banner.isVisible)
    assert "not a valid regular expression" in page.banner.label.text()
    assert [r["word"] for r in daemon_rules(voiced)] == ["nginx"]

    # Rules from another client show up here.
    with voiced.client() as c:
        c.call("words.add", {"word": "SQL", "say": "sequel"})
    qtbot.waitUntil(lambda: page.table.rowCount() == 2)

    page.table.selectRow(0)
    page.remove_button.click()
    qtbot.waitUntil(lambda: page.table.rowCount() == 1)
    assert [r["word"] for r in daemon_rules(voiced)] == ["SQL"]


def test_try_it_import_and_export(qtbot, app: TrayApp, voiced, tmp_path) -> None:
    page = app.window.pronunciation
    rules = tmp_path / "rules.txt"
    rules.write_text("# mine\nnginx\tengine x\n(\\d+)km\t\\1 kilometres\tregex\n", encoding="utf-8")
    page.import_path(str(rules))
    qtbot.waitUntil(lambda: page.table.rowCount() == 2)
    assert "2 new" in page.preview_label.text()

    page.example.setText("Run nginx for 5km. [pause 1s] Done [laugh].")
    with voiced.events(("job", "voices")) as stream:
        log = EventLog(stream)
        with voiced.client() as c:
            log.sync(c)
        page.try_button.click()
        queued = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued")
        assert queued["text"] == "Run nginx for 5km. [pause 1s] Done [laugh]."
        end = log.wait_job(queued["job"], "finished", "cancelled", "failed", timeout=30)
    assert end["event"] == "finished"
    qtbot.waitUntil(lambda: "engine x" in page.preview_label.text())
    shown = page.preview_label.text()
    assert "Run engine x for 5 kilometres." in shown and "[1 s of silence]" in shown and "has no tags" in shown

    out = tmp_path / "out.txt"
    page.export_path(str(out))
    assert "nginx\tengine x" in out.read_text(encoding="utf-8").splitlines()


def test_the_insert_menu_offers_pauses_and_says_the_original_has_no_tags(qtbot, app: TrayApp) -> None:
    page = app.window.speak
    button = page.tag_menu
    qtbot.waitUntil(lambda: button.loaded)
    texts = [a.text() for a in button.menu_.actions() if a.text()]
    assert texts[:3] == ["Pause, half a second", "Pause, 1 second", "Pause, 2 seconds"]
    no_tags = next(a for a in button.menu_.actions() if "has no tags" in a.text())
    assert not no_tags.isEnabled()
    page.text.setPlainText("Hello there.")
    cursor = page.text.textCursor()
    cursor.setPosition(len("Hello"))
    page.text.setTextCursor(cursor)
    next(a for a in button.menu_.actions() if a.text() == "Pause, 1 second").trigger()
    assert page.text.toPlainText() == "Hello [pause 1s] there."


def test_the_insert_menu_lists_a_turbos_tags(qtbot, clips: Clips, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(endpoints.HOME_ENV, str(tmp_path))
    turbo = DaemonProcess(args=("--engine", "fake", "--variant", "turbo")).start()
    app = open_app(qtbot, turbo)
    try:
        button = app.window.speak.tag_menu
        qtbot.waitUntil(lambda: "[laugh]" in button.tags)
        actions = {a.text(): a for a in button.menu_.actions()}
        assert "[clear throat]" in actions and actions["[laugh]"].isEnabled()
        app.window.speak.text.setPlainText("Well")
        cursor = app.window.speak.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        app.window.speak.text.setTextCursor(cursor)
        actions["[laugh]"].trigger()
        assert app.window.speak.text.toPlainText() == "Well [laugh] "
    finally:
        app.close()
        turbo.cleanup()


def test_read_what_i_copy(qtbot, app: TrayApp, voiced) -> None:
    tray = app.tray
    reader = tray.reader
    reader.ours_active = lambda: False  # offscreen, the test process counts as the active app
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("Copied before: never read.")
    assert not reader.enabled and not tray.read_copies.isChecked()
    assert "Reading what you copy" not in tray.icon.toolTip()

    with voiced.events(("job", "voices")) as stream:
        log = EventLog(stream)
        with voiced.client() as c:
            log.sync(c)
        tray.read_copies.trigger()  # one click on
        assert reader.enabled and "Reading what you copy" in tray.icon.toolTip()

        clipboard.setText("First copied text.")
        first = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued")
        assert first["text"] == "First copied text."
        clipboard.setText("First copied text.")  # the same again: not read twice
        image = QMimeData()
        image.setImageData(QImage(4, 4, QImage.Format.Format_RGB32))
        clipboard.setMimeData(image)  # an image: not read
        notices: list[str] = []
        reader.notice.connect(notices.append)
        clipboard.setText("x" * (reader.limit + 1))  # too long: skipped, with a word
        assert notices and "limit" in notices[0]
        reader.ours_active = lambda: True
        clipboard.setText("Copied in our own window.")  # ours: not read
        reader.ours_active = lambda: False
        tray.read_copies.trigger()  # one click off
        assert not reader.enabled and "Reading what you copy" not in tray.icon.toolTip()
        clipboard.setText("Copied after it was turned off.")
        with voiced.client() as c:
            log.sync(c)
        queued = [d["text"] for t, d in log.seen if t == "job" and d["event"] == "queued"]
    assert queued == ["First copied text."]


def test_the_speak_page_says_when_a_tag_was_left_out(qtbot, app: TrayApp) -> None:
    page = app.window.speak
    page.text.setPlainText("Well [laugh] then.")
    page.speak()
    qtbot.waitUntil(lambda: page.banner.isVisible() and "Removed [laugh]" in page.banner.label.text(), timeout=20_000)
