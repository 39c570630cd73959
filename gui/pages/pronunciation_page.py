"""The Pronunciation page: the rules the daemon applies to every text, from every app.

A rule is a word or phrase (whole words, any case unless asked) or a regular
expression, and what to say instead. The daemon stores them (privately,
``words.json``) and checks each one: a bad regular expression is refused
with its reason, shown here, and nothing is saved. "Try it" speaks an
example and shows what the model is given for it; Import and Export read and
write the plain rules file the CLI uses (``chatterbox-tray words``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...ipc import requests as rq
from ...ipc.markup import format_rules_file, parse_rules_file
from ...ipc.messages import TextPreviewResult, WordsAddResult, WordsImportResult, WordsListResult
from ...ipc.protocol import ProtocolError
from ..state import AppState
from ..widgets import Banner, arrange

COLUMNS = ("Word or phrase", "Say", "Regular expression", "Match case")
FILE_FILTERS = "Rules files (*.txt *.tsv);;JSON (*.json);;All files (*)"
EXAMPLE = "Run nginx and SQL on the server. [pause 500ms] Dr. Smith agrees."
#: The empty form, for a new rule.
NEW_RULE = {"word": "", "say": "", "regex": False, "case_sensitive": False}


class PronunciationPage(QWidget):
    """A table of rules; a form to add or edit one; try it, import, export."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.rules: list[dict[str, Any]] = []
        #: The rule being edited (its word as stored), or None when the form adds one.
        self.editing: str | None = None

        intro = QLabel(
            "Say a word the way you want, in every app: the daemon applies these rules to every text it "
            "speaks. Add pauses with [pause 500ms] or [pause 1.5s]; with the Turbo model, tags such as "
            "[laugh] (the Speak page's Insert menu lists them).",
            wordWrap=True,
        )
        self.table = QTableWidget(0, len(COLUMNS), objectName="rulesTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column in (0, 1):  # the word and what to say share the room the check columns leave
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.itemDoubleClicked.connect(lambda _item: self.word.setFocus())
        self.empty = QLabel("No rules yet. Add one below, or import a file.", alignment=Qt.AlignmentFlag.AlignCenter)

        self.word = QLineEdit(placeholderText="nginx")
        self.say = QLineEdit(placeholderText="engine x")
        self.regex = QCheckBox("Regular expression", toolTip=r"The word is a Python regular expression; say may use \1")
        self.case = QCheckBox("Match case", toolTip="Only this exact capitalisation (default: any case)")
        self.add_button = QPushButton("Add", default=True, objectName="addRule", clicked=self.submit)
        self.new_button = QPushButton("New", toolTip="Clear the form to add another rule", clicked=self.clear_form)
        self.remove_button = QPushButton("Remove", toolTip="Remove the selected rule", clicked=self.remove_selected)
        self.word.returnPressed.connect(self.submit)
        self.say.returnPressed.connect(self.submit)
        self.import_button = QPushButton("Import…", toolTip="Add the rules of a file (one a line: word, tab, say)")
        self.export_button = QPushButton("Export…", toolTip="Save the rules to a plain file")
        self.import_button.clicked.connect(lambda: self.import_path())
        self.export_button.clicked.connect(lambda: self.export_path())
        buttons = arrange(QHBoxLayout(), self.add_button, self.new_button, self.remove_button, 1)
        arrange(buttons, self.import_button, self.export_button)
        form_box = QGroupBox("Rule")
        arrange(
            QFormLayout(form_box),
            ("Word or phrase", self.word),
            ("Say instead", self.say),
            ("", arrange(QHBoxLayout(), self.regex, self.case, 1)),
            buttons,
        )

        self.example = QLineEdit(EXAMPLE, objectName="tryText", returnPressed=self.preview)
        self.try_button = QPushButton("Speak it", toolTip="Speak the example with the rules", clicked=self.try_it)
        self.preview_button = QPushButton("Show", toolTip="Show what the model is given, without speaking")
        self.preview_button.clicked.connect(self.preview)
        self.preview_label = QLabel(
            " ", wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse, objectName="preview"
        )
        try_box = QGroupBox("Try it")
        try_row = arrange(QHBoxLayout(), (self.example, 1), self.preview_button, self.try_button)
        arrange(QVBoxLayout(try_box), try_row, self.preview_label)

        arrange(QVBoxLayout(self), intro, (self.table, 1), self.empty, form_box, try_box)
        #: A refused rule's reason (a bad regular expression...), over the page's foot.
        self.banner = Banner(over=self)

        state.words_event.connect(lambda _data: self.refresh())
        state.reconnected.connect(self.refresh)
        state.changed.connect(self._update_buttons)
        self.refresh()
        self._update_buttons()

    # -- the list --------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask the daemon for the rules."""
        self.state.fetch(rq.words_list(), self._set_rules)

    def _set_rules(self, result: WordsListResult) -> None:
        selected = self.selected_word()
        self.rules = list(result.rules)
        self.table.setRowCount(len(self.rules))
        for row, rule in enumerate(self.rules):
            flags = ["yes" if rule[key] else "" for key in ("regex", "case_sensitive")]  # the COLUMNS' last two
            for column, text in enumerate([rule["word"], rule["say"] or "(skipped)", *flags]):
                self.table.setItem(row, column, QTableWidgetItem(text))
            if rule["word"] == selected:
                self.table.selectRow(row)
        self.empty.setVisible(not self.rules)
        self._update_buttons()

    def selected_word(self) -> str | None:
        """The selected rule's word, or None."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.rules[rows[0].row()]["word"] if rows and rows[0].row() < len(self.rules) else None

    def _selected(self) -> None:
        word = self.selected_word()
        rule = next((r for r in self.rules if r["word"] == word), None)
        if rule is not None:
            self._edit(rule)

    # -- editing ------------------------------------------------------------------------

    def clear_form(self) -> None:
        """Empty the form: the next Add adds a new rule."""
        self.table.clearSelection()
        self._edit(NEW_RULE)
        self.word.setFocus()

    def _edit(self, rule: dict[str, Any]) -> None:
        """Put ``rule`` in the form: Save changes it (``NEW_RULE``: Add adds one)."""
        self.editing = rule["word"] or None
        self.word.setText(rule["word"])
        self.say.setText(rule["say"])
        self.regex.setChecked(rule["regex"])
        self.case.setChecked(rule["case_sensitive"])
        self.banner.hide()
        self._update_buttons()

    def submit(self) -> None:
        """Add the form's rule, or save the edited one; the daemon checks it first."""
        word = self.word.text() if self.regex.isChecked() else self.word.text().strip()
        if not word:
            self.banner.show_message("Type the word or phrase to find.")
            return
        request = rq.words_add(
            word,
            self.say.text().strip(),
            regex=self.regex.isChecked(),
            case_sensitive=self.case.isChecked(),
            old_word=self.editing,
        )
        self.state.send(request, on_result=self._added, on_error=self._error_callback)

    def _added(self, result: WordsAddResult) -> None:
        self.banner.hide()
        self.editing = result.rule["word"]
        self.refresh()

    def remove_selected(self) -> None:
        """Remove the selected rule (or the one in the form)."""
        if (word := self.selected_word() or self.editing) is not None:
            self.state.send(rq.words_remove(word), on_result=lambda _r: self._removed(), on_error=self._error_callback)

    def _removed(self) -> None:
        self.clear_form()
        self.refresh()

    # -- try it ----------------------------------------------------------------------------

    def try_it(self) -> None:
        """Speak the example (replacing what is playing) and show what the model is given."""
        if text := self.example.text().strip():
            self.state.send(rq.speak(text, priority="quick"), on_error=self._error_callback)
            self.preview()

    def preview(self) -> None:
        """Show the sentences the model would be given for the example."""
        if text := self.example.text().strip():
            self.state.send(rq.text_preview(text), on_result=self._show_preview, on_error=self._error_callback)

    def _show_preview(self, result: TextPreviewResult) -> None:
        parts = [f"[{c['pause_s']:g} s of silence]" if "pause_s" in c else c["text"] for c in result.chunks]
        text = "The model is given: " + "  ·  ".join(p for p in parts if p)
        if result.warnings:
            text += "\n" + "\n".join(result.warnings)
        self.preview_label.setText(text)

    # -- files ---------------------------------------------------------------------------------

    def import_path(self, path: str = "") -> None:
        """Add the rules of a plain rules file (or a JSON export) at ``path``, else of one the user picks;
        one bad rule and nothing changes."""
        path = path or QFileDialog.getOpenFileName(self, "Import pronunciation rules", "", FILE_FILTERS)[0]
        if not path:
            return
        try:
            with open(path, encoding="utf-8") as f:
                rules = parse_rules_file(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            self.banner.show_message(f"Cannot read {path}: {exc}")
            return
        except ProtocolError as exc:
            self.banner.show_message(exc.message)
            return
        self.state.send(rq.words_import(rules), on_result=self._imported, on_error=self._error_callback)

    def _imported(self, result: WordsImportResult) -> None:
        self.banner.hide()
        self.preview_label.setText(
            f"Imported: {result.added} new, {result.replaced} replaced; {result.count} rules in all."
        )
        self.refresh()

    def export_path(self, path: str = "") -> None:
        """Save the rules as they are now to ``path``, else to a file the user picks, as a plain file that
        Import (and ``chatterbox-tray words import``) reads."""
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export pronunciation rules", "pronunciation.txt", FILE_FILTERS)
        if not path:
            return
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(format_rules_file(self.rules))
        except OSError as exc:
            QMessageBox.warning(self, "Export", f"Cannot write {path}: {exc.strerror or exc}")

    # -- helpers ------------------------------------------------------------------------

    def _error_callback(self, code: str, message: str) -> None:
        self.banner.show_message(message or code, "error")

    def _update_buttons(self) -> None:
        connected = self.state.connected
        self.add_button.setText("Save" if self.editing else "Add")
        for button in (self.add_button, self.import_button, self.try_button, self.preview_button):
            button.setEnabled(connected)
        self.remove_button.setEnabled(connected and (self.selected_word() or self.editing) is not None)
        self.export_button.setEnabled(bool(self.rules))
