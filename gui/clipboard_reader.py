"""Read what I copy: each new text on the clipboard is spoken (off until the user turns it on).

What is read: text only (not images, nor files, nor anything that has no
text); not the same text twice in a row; not what is copied in our own
windows (the app is the active one then: the user is editing, not asking to
hear); not longer than the user's limit (default 5 000 characters), which
is skipped with a word in the tray. Spoken with priority ``text`` (queued
after what is playing), or ``quick`` (in its place) if the user chooses.

It is never saved as on: each start of the app begins with it off, so text
copied at login is never read aloud by surprise. The priority and the limit
are saved (``gui.json``). Wayland compositors tell an app about clipboard
changes only while it has the focus, so there it reads what is copied in
X11 (XWayland) apps and in our own window only; docs/decisions.md says so.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

from ..ipc import requests as rq
from .state import AppState

#: The limits a user can choose, in characters; the default is the middle one.
LIMITS = (1_000, 5_000, 20_000)
DEFAULT_LIMIT = 5_000


class ClipboardReader(QObject):
    """Speaks each new clipboard text while ``enabled``."""

    enabled_changed = Signal(bool)
    #: Something the user should hear about (a text skipped as too long, a failed request).
    notice = Signal(str)

    def __init__(
        self,
        state: AppState,
        clipboard: QClipboard | None = None,
        *,
        priority: str = "text",
        limit: int = DEFAULT_LIMIT,
        ours_active: Callable[[], bool] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.clipboard = clipboard or QGuiApplication.clipboard()
        self.priority = priority if priority in ("text", "quick") else "text"
        self.limit = limit
        self.enabled = False
        #: The last text seen (spoken or not): the same text twice in a row is read once.
        self.last = ""
        self.ours_active = ours_active or (
            lambda: QGuiApplication.applicationState() == Qt.ApplicationState.ApplicationActive
        )
        self.clipboard.dataChanged.connect(self._changed)

    def set_enabled(self, on: bool) -> None:
        """Turn reading on or off. Turning it on does not read what is on the clipboard already."""
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self.last = self.clipboard.text().strip()
        self.enabled_changed.emit(on)

    def _changed(self) -> None:
        if not self.enabled:
            return
        data = self.clipboard.mimeData()
        if data is None or not data.hasText() or data.hasImage() or data.hasUrls():
            return
        text = data.text().strip()
        if not text or text == self.last:
            return
        self.last = text
        if self.ours_active():
            return  # copied in our own window: the user is editing there
        if len(text) > self.limit:
            self.notice.emit(
                f"Not read: the copied text is {len(text):,} characters long; the limit is {self.limit:,}."
            )
            return
        self.state.send(
            rq.speak(text, priority=self.priority), on_error=lambda code, message: self.notice.emit(message or code)
        )
