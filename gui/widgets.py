"""Small widgets and formatting helpers shared by the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QBoxLayout,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

_STYLES = {
    "error": "background:#fde8e8; color:#8a1c1c; border:1px solid #f3b4b4;",
    "info": "background:#e8f0fd; color:#1c3f8a; border:1px solid #b4c8f3;",
    "warning": "background:#fdf5e0; color:#7a5200; border:1px solid #f0d48a;",
}


#: Seconds of speech, one definition wherever a page shows them (the Speak page's
#: "Done" line, the Stats page's recent jobs): the audio made for the text
#: (``audio_s`` of a job's summary), at the speed asked for. The pauses the
#: speaker puts between sentences are not speech and are not counted, so a
#: file saved from the same text lasts as long.
SPEECH_LABEL = "Speech"
SPEECH_TIP = "Seconds of speech made for the text, without the pauses the speaker puts between sentences"


def speech_seconds(summary: dict | None) -> float | None:
    """A job's seconds of speech (``SPEECH_TIP``): its summary's ``audio_s``; None when it has none."""
    value = (summary or {}).get("audio_s")
    return float(value) if isinstance(value, (int, float)) else None


class Banner(QFrame):
    """A message strip on a page: text, an optional action, a close button.

    Errors stay until closed or replaced; information fades after a while.
    A page's banner floats over the page's foot (`float_over`): it comes and
    goes without moving any control the pointer may be on.
    """

    def __init__(self, parent: QWidget | None = None, vertical: bool = False, over: QWidget | None = None) -> None:
        """``vertical`` stacks the text over the buttons, for a narrow column; ``over``: see ``float_over``."""
        super().__init__(parent)
        self.setObjectName("banner")
        self._vertical = vertical
        layout = QVBoxLayout(self) if vertical else QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.action = QPushButton()
        self.more = QPushButton()  # a second, rarer way out (failed load: "Use a local folder…")
        #: The exact reason behind a message said in plain words (a library's own text): one click away.
        self.details = ""
        self.details_button = QPushButton("Details…", toolTip="The exact reason, as the daemon gave it")
        self.details_button.clicked.connect(self.show_details)
        self.close_button = QPushButton("✕", flat=True, toolTip="Dismiss", clicked=self.hide)
        self.close_button.setFixedWidth(28)
        arrange(layout, (self.label, 1), self.action, self.more, self.details_button, self.close_button)
        self._callback: Callable[[], None] | None = None
        self._more_callback: Callable[[], None] | None = None
        self.action.clicked.connect(lambda: self._callback() if self._callback else None)
        self.more.clicked.connect(lambda: self._more_callback() if self._more_callback else None)
        self._timer = QTimer(self, singleShot=True, timeout=self.hide)
        self._host: QWidget | None = None
        self.hide()
        if over is not None:
            self.float_over(over)

    def float_over(self, host: QWidget, margin: int = 10) -> None:
        """Float over the bottom of ``host`` rather than take a place in its layout.

        A banner in a layout pushes what is below it when it appears and pulls
        it back when it goes: a click aimed at a row could land on another one
        (issue 23 §3). Floating, it covers part of the page for a while and
        moves nothing.
        """
        self._host, self._margin = host, margin
        self.setParent(host)
        self.setAutoFillBackground(True)
        host.installEventFilter(self)
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._host and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

    def _place(self) -> None:
        host = self._host
        if host is None:
            return
        width = max(200, host.width() - 2 * self._margin)
        layout = self.layout()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
        height = max(height, layout.totalMinimumSize().height())
        self.setGeometry(self._margin, max(0, host.height() - height - self._margin), width, height)
        self.raise_()

    def show_message(
        self,
        text: str,
        kind: str = "error",
        action: str = "",
        callback: Callable[[], None] | None = None,
        closable: bool = True,
        timeout_ms: int = 0,
        more: tuple[str, Callable[[], None]] | None = None,
        details: str = "",
    ) -> None:
        """Show ``text``; ``action`` names a button that calls ``callback``; ``more`` is (label, callback)
        of a second button; ``details``, the exact reason behind ``text``, is shown by "Details…"."""
        self.setStyleSheet(f"#banner {{ {_STYLES.get(kind, _STYLES['info'])} border-radius:6px; }}")
        self.label.setText(text[:1].upper() + text[1:])  # the daemon's messages start in lower case
        # A narrow banner cannot break a long path or name: the whole text is one hover away.
        self.label.setToolTip(self.label.text() if self._vertical else "")
        self.action.setText(action)
        self.action.setVisible(bool(action))
        self.close_button.setVisible(closable)
        self._callback = callback
        self.more.setText(more[0] if more else "")
        self.more.setVisible(more is not None)
        self._more_callback = more[1] if more else None
        self.details = details
        self.details_button.setVisible(bool(details))
        self.show()
        self._place()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def show_details(self) -> None:
        """The exact reason, selectable so that it can be copied into a bug report or a search."""
        box = QMessageBox(QMessageBox.Icon.Information, "Details", self.label.text(), parent=self.window())
        box.setInformativeText(self.details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()


class ElidedLabel(QLabel):
    """One line of text that never widens its window: shortened with "…" where it
    does not fit, and then the whole text is its tooltip.

    ``text()`` is the whole text. ``mode`` says where to cut: the end (status
    lines) or the middle (paths, whose end is what tells them apart).
    """

    def __init__(
        self, text: str = "", parent: QWidget | None = None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight
    ) -> None:
        super().__init__(parent)
        self._full = self._tip = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self._elide()

    def text(self) -> str:
        return self._full

    def setToolTip(self, tip: str) -> None:
        """A tooltip of its own, shown while the text is whole (a shortened text shows itself whole first)."""
        self._tip = tip
        self._elide()

    def elided(self) -> bool:
        """Whether what shows is shorter than the text."""
        return QLabel.text(self) != self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._full, self._mode, width) if width > 0 else self._full
        QLabel.setText(self, shown)
        tip = self._full if shown != self._full else ""
        QLabel.setToolTip(self, "\n".join(t for t in (tip, self._tip) if t))


class _WheelGuard(QObject):
    """Lets a control take the mouse wheel only when it has the keyboard focus.

    Otherwise the wheel event is ignored, so it goes on to the scroll area
    around it: scrolling a page must not change the settings it scrolls past.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()
            return True  # not for this widget; ignored, so its parents get it
        return False


def scrolled(page: QWidget, content: QWidget) -> tuple[QScrollArea, QVBoxLayout]:
    """Fill ``page`` with ``content`` in a frameless area that scrolls up and down only, so a small
    window shows every row rather than squeezing them; returns the area and the page's layout."""
    scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    outer = arrange(QVBoxLayout(page), (scroll, 1))
    outer.setContentsMargins(0, 0, 0, 0)
    return scroll, outer


AnyLayout = TypeVar("AnyLayout", QBoxLayout, QFormLayout)


def arrange(layout: AnyLayout, *items: QWidget | QLayout | int | tuple) -> AnyLayout:
    """Fill ``layout`` in order, and return it. An item is a widget or a layout; a number is
    an empty stretch of that factor (a box); a tuple is the arguments of ``addWidget`` (a box:
    a widget and its stretch) or of ``addRow`` (a form: a label and a field)."""
    for item in items:
        args = item if isinstance(item, tuple) else (item,)
        if isinstance(layout, QFormLayout):
            layout.addRow(*args)
        elif isinstance(item, int):
            layout.addStretch(item)
        elif isinstance(item, QLayout):
            layout.addLayout(item)
        else:
            layout.addWidget(*args)
    return layout


def item_table(name: str, columns: tuple[str, ...], stretch: int, **options: object) -> QTreeWidget:
    """A read-only list of rows, one selectable at a time, under ``columns``: column ``stretch`` takes the
    room left (eliding its text at the right), the others fit their contents."""
    table = QTreeWidget(rootIsDecorated=False, uniformRowHeights=True, objectName=name, **options)
    table.setHeaderLabels(list(columns))
    table.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.header().setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return table


def wheel_only_when_focused(owner: QWidget, *areas: QWidget) -> None:
    """Make the combo boxes, spin boxes and sliders in ``areas`` (else in ``owner``) ignore the wheel until
    clicked or tabbed to."""
    guard = owner.findChild(_WheelGuard) or _WheelGuard(owner)
    kinds = (QComboBox, QAbstractSpinBox, QSlider)  # not a QScrollBar: it scrolls the page
    for widget in [w for area in areas or (owner,) for kind in kinds for w in area.findChildren(kind)]:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel alone must not give focus
        widget.installEventFilter(guard)


def confirm(parent: QWidget, title: str, question: str, no_default: bool = True) -> bool:
    """Ask a yes-or-no question; Enter answers No when ``no_default``, else what the desktop's dialog picks."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    default = no if no_default else QMessageBox.StandardButton.NoButton
    return QMessageBox.question(parent, title, question, yes | no, default) == yes


def fmt_seconds(s: float | None) -> str:
    """Seconds for people: '0.42 s', '12.3 s', '3 min 05 s', '2 h 01 min'."""
    if s is None:
        return "–"
    s = float(s)
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


#: A voice's cache state, in words: "ready" is what matters to people (the tooltip says "conditionals").
CACHE_LABELS = {"memory": "Ready (in memory)", "disk": "Ready (on disk)", None: "Not yet"}
