"""Layouts that hold still and fit (issue 23 §3), at the window's default size.

No control may move under the pointer because a message came or went; the
Stats page fits the window, asleep or not, with every column of the recent
jobs in view; long texts wrap at words or elide with the whole text a hover
away.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QWidget,
)

from chatterbox_tray.gui.window import DEFAULT_SIZE, PAGES
from tests.gui.conftest import open_app
from tests.support.daemons import DaemonProcess, uid

CONTROLS = (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit)
LONG = (
    "Could not add “a voice with a long name”: the clip is 3.2 s long, and a voice needs more than 5 s "
    "of one person speaking, so record or choose a longer one and add it again."
)


def _at_default_size(qtbot, window) -> None:
    window.resize(*DEFAULT_SIZE)  # the offscreen screen is smaller than a desktop's
    window.show()
    qtbot.waitExposed(window)


def _places(window, page: QWidget) -> dict[int, tuple[int, int, int, int]]:
    """Where each visible control of ``page`` is in the window (the banner's own buttons aside)."""
    places = {}
    for widget in page.findChildren(QWidget):
        if not isinstance(widget, CONTROLS) or not widget.isVisible() or page.banner.isAncestorOf(widget):
            continue
        top_left = widget.mapTo(window, QPoint(0, 0))
        places[id(widget)] = (top_left.x(), top_left.y(), widget.width(), widget.height())
    return places


@pytest.mark.parametrize("name", PAGES)
def test_a_message_coming_or_going_moves_no_control(qtbot, tray_app, clips, daemon, name):
    """Before: the Voices page's banner pushed the list 40 px down and pulled it back when it closed,
    so a click meant for one row landed on another (the default voice)."""
    window = tray_app.window
    with daemon.client() as client:  # rows in the voice list
        for _ in range(3):
            client.voices_add(uid("row"), data=clips.new())
    qtbot.waitUntil(lambda: len(window.voices.names()) >= 3)
    _at_default_size(qtbot, window)
    window.show_page(name)
    page = window.stack.currentWidget()
    qtbot.waitUntil(page.isVisible)
    qtbot.wait(100)
    before = _places(window, page)
    assert before, "the page shows controls"
    page.banner.show_message(LONG, "error", "Try again", lambda: None)
    qtbot.wait(100)
    assert page.banner.isVisible()
    during = _places(window, page)
    page.banner.hide()
    qtbot.wait(100)
    after = _places(window, page)
    assert during == before, f"{name}: a message appearing moved controls"
    assert after == before, f"{name}: a message going moved controls"
    # The message itself is whole: wrapped at words, all of it inside the page.
    page.banner.show_message(LONG, "error", "Try again", lambda: None)
    qtbot.wait(50)
    label = page.banner.label
    assert label.wordWrap() and label.heightForWidth(label.width()) <= label.height()
    assert page.rect().contains(page.banner.geometry())


def test_the_stats_page_fits_the_window_when_the_model_is_asleep(qtbot, clips):
    """Asleep, the memory line says what the unload gave back: it wraps, the page stays as wide as the
    window (no part cut off, no sideways scrolling), and every column of the recent jobs is in view.

    Before: the memory line widened the page past the window, cutting off the RAM plot and
    "Forget the prepared voices…", and the "First audio" column needed sideways scrolling.
    """
    proc = DaemonProcess().start()
    app = open_app(qtbot, proc)
    try:
        window, page = app.window, app.window.stats
        with proc.client() as client:
            voice = uid("stats")
            client.voices_add(voice, data=clips.new())
            for n in range(6):
                client.synthesize(
                    f"Recent job number {n}, with a text long enough to need more room than its column has.",
                    voice=voice,
                ).collect()
            client.settings_set(unload_after_idle_minutes=0.02)
        qtbot.waitUntil(lambda: app.state.model_state == "sleeping", timeout=30_000)
        _at_default_size(qtbot, window)
        window.show_page("Stats")
        qtbot.waitUntil(lambda: "idle unload at" in page.values["rss"].text(), timeout=15_000)
        qtbot.waitUntil(lambda: page.jobs.topLevelItemCount() >= 6, timeout=15_000)
        qtbot.wait(200)  # a layout pass
        scroll = page.findChild(QScrollArea)
        content = scroll.widget()
        assert content.width() <= scroll.viewport().width(), "the page is wider than the window"
        right = scroll.viewport().mapTo(window, QPoint(scroll.viewport().width(), 0)).x()
        for widget in (page.clear_button, page.plots_box, *page.plots.values(), page.values["rss"]):
            edge = widget.mapTo(window, QPoint(widget.width(), 0)).x()
            assert edge <= right, f"{widget} is cut off at the right"
        # Every column in view, none scrolled to: the text elides, with the whole text as its tooltip.
        header = page.jobs.header()
        assert page.jobs.horizontalScrollBar().maximum() == 0
        last = header.count() - 1
        assert header.sectionViewportPosition(last) + header.sectionSize(last) <= page.jobs.viewport().width()
        first_audio = [page.jobs.headerItem().text(i) for i in range(header.count())].index("First audio")
        assert header.sectionSize(first_audio) >= header.sectionSizeHint(first_audio)
        item = page.jobs.topLevelItem(0)
        assert item.toolTip(1).startswith("Recent job number 5, with a text long enough")
    finally:
        app.close()
        proc.cleanup()


def test_long_lines_shorten_with_the_whole_text_a_hover_away(qtbot, tray_app):
    """A long status line, progress line or settings path never widens the window past its default size
    (which would cut the page's right side off); it is shortened with "…" and its tooltip has it whole."""
    from chatterbox_tray.gui.tray import _elide

    window = tray_app.window
    _at_default_size(qtbot, window)
    folder = "/home/ann/" + "/".join(f"a-rather-long-folder-name-{n}" for n in range(8))
    lines = {
        window.status_text: "Speaking · voice: " + "Narrator with a very long name " * 6,
        window.speak.progress_label: f"Making {'a-very-long-file-name-' * 6}.flac: 3 of 20 sentences, 12.5 s of audio",
        window.settings.file_label: f"Saved in {folder}/settings.json",
    }
    for label, text in lines.items():
        label.setText(text)
    for name in PAGES:
        window.show_page(name)
        qtbot.wait(50)
        assert window.minimumSizeHint().width() <= DEFAULT_SIZE[0], f"{name}: a long line widens the window"
    window.show_page("Settings")
    qtbot.wait(50)
    for label, text in lines.items():
        label.setText(text)  # again: the status line follows the daemon meanwhile
        if label.isVisible():
            assert label.text() == text
            assert label.elided() and text in label.toolTip(), text
    assert window.settings.file_label.elided()
    # The tray menu's status line is shortened at a word.
    summary = "Paused: nothing will be heard until you resume (the model is asleep) · voice: Narrator"
    line = _elide(summary)
    assert line.endswith("…") and len(line) <= 60
    assert line[:-1].split()[-1] in summary.split(), "cut in the middle of a word"
