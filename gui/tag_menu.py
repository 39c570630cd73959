"""The Speak page's Insert menu: pauses, and the tags the loaded model knows, put in at the cursor.

The tags come from the daemon (``tags.list``: the loaded model's own
tokenizer), asked again whenever the model changes, so the menu offers
exactly what this model can say: Turbo's ``[laugh]``, ``[sigh]``, ... and
none for the original (a line says so). Pauses work with every model.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMenu, QPlainTextEdit, QToolButton, QWidget

from ..ipc import requests as rq
from ..ipc.messages import JobEvent, TagsListResult
from .state import AppState

#: The pauses offered: (menu text, markup).
PAUSES = (
    ("Pause, half a second", "[pause 500ms]"),
    ("Pause, 1 second", "[pause 1s]"),
    ("Pause, 2 seconds", "[pause 2s]"),
)


class TagMenuButton(QToolButton):
    """ "Insert ▾": a menu of pauses and the model's tags; a pick goes in at the text's cursor."""

    def __init__(
        self, state: AppState, editor: QPlainTextEdit, page: QWidget | None = None, parent: QWidget | None = None
    ) -> None:
        """``page``: the Speak page, whose jobs' warnings (a tag this model does not know) it shows in its banner."""
        super().__init__(parent, text="Insert", objectName="tagMenuButton")
        self.state = state
        self.editor = editor
        self.page = page
        self._warned: set[str] = set()
        self.tags: list[str] = []
        self.variant = ""
        self.loaded = False
        self.setToolTip("Put a pause, or one of the model's tags ([laugh], [sigh], …), at the cursor")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_ = QMenu(self, objectName="tagMenu")
        self.setMenu(self.menu_)
        self._model_id = None
        state.changed.connect(self._model_maybe_changed)
        state.reconnected.connect(self.refresh)
        state.job_event.connect(self._job_event)
        self._fill()
        self.refresh()

    def refresh(self) -> None:
        """Ask the daemon which tags its model knows."""
        self.state.fetch(rq.tags_list(), self._set_tags)

    def _model_maybe_changed(self) -> None:
        model = (self.state.status.model_id, self.state.model_state == "ready")
        if model != self._model_id:
            self._model_id = model
            self.refresh()

    def _set_tags(self, result: TagsListResult) -> None:
        self.tags, self.variant, self.loaded = result.tags, result.variant, result.loaded
        self._fill()

    def _fill(self) -> None:
        self.menu_.clear()
        for title, markup in PAUSES:
            self.menu_.addAction(title, lambda m=markup: self.insert(m))
        self.menu_.addSeparator()
        if self.tags:
            self.menu_.addSection(f"Tags of the {self.variant} model")
            for tag in self.tags:
                self.menu_.addAction(tag, lambda t=tag: self.insert(t))
        else:
            why = (
                f"The {self.variant} model has no tags (Turbo has)" if self.loaded else "Tags: once the model is loaded"
            )
            self.menu_.addAction(why).setEnabled(False)

    def _job_event(self, data: dict[str, Any]) -> None:
        """Say once, on the page, what the daemon left out of the page's own job (a tag the model lacks)."""
        told = JobEvent.from_data(data)
        warnings, job = (told.summary or {}).get("warnings"), told.job
        if not warnings or self.page is None or job in self._warned or job != getattr(self.page, "job", None):
            return
        self._warned.add(job)
        banner = getattr(self.page, "banner", None)
        if banner is not None:
            banner.show_message(" ".join(w[0].upper() + w[1:] + "." for w in warnings), "warning", timeout_ms=12_000)

    def insert(self, markup: str) -> None:
        """Put ``markup`` at the cursor, with a space on each side where a word touches it."""
        cursor = self.editor.textCursor()
        text = self.editor.toPlainText()
        before = text[: cursor.selectionStart()][-1:] if cursor.selectionStart() else ""
        after = text[cursor.selectionEnd() : cursor.selectionEnd() + 1]
        prefix = " " if before and not before.isspace() else ""
        suffix = "" if after and after.isspace() else " "
        cursor.insertText(prefix + markup + suffix)
        self.editor.setTextCursor(cursor)
        self.editor.setFocus()
