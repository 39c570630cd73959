"""The Voices page: the library with cache states; add, record, play, rename, delete, set default."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...audio import file_formats
from ...ipc import requests as rq
from ...ipc.messages import JobEvent, VoiceInfo
from ..recorder import InputProbe, RecordDialog
from ..state import JOB_ENDS, AppState
from ..widgets import CACHE_LABELS, Banner, arrange, confirm, fmt_seconds, item_table

CLIP_FILTERS = "Audio clips (*.wav *.flac *.ogg *.opus *.mp3 *.m4a *.aac);;All files (*)"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif"}
COLUMNS = ("Name", "Length", "Voice ready", "Added", "From file")
#: What a voice's cache state (``CACHE_LABELS``) means for the next speech with it.
CACHE_TIPS = {
    "memory": "Voice ready in memory: speaking starts at once (its conditionals are prepared)",
    "disk": "Voice ready on disk: loaded in a moment (conditionals in the voice cache)",
    None: "Not prepared yet for the loaded model: the first speech with it takes longer",
}


class VoicesPage(QWidget):
    """The voice library, kept in step with the daemon's ``voices`` and ``cache`` events."""

    def __init__(self, state: AppState, parent: QWidget | None = None, probe_microphone: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.setAcceptDrops(True)
        self.table = item_table("voiceTable", COLUMNS, 0, alternatingRowColors=True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self.set_default())
        self.hint = QLabel(objectName="hint", styleSheet="color: palette(mid);")  # its words: ``_fill``

        self.add_button = QPushButton("Add from file…", clicked=self.add_dialog)
        self.record_button = QPushButton("Record…", enabled=False, toolTip="Looking for a microphone…")
        self.record_button.clicked.connect(self.record)
        self.play_button = QPushButton("Play clip", clicked=self.play)
        self.rename_button = QPushButton("Rename…", clicked=self.rename)
        self.delete_button = QPushButton("Delete", clicked=self.delete)
        self.default_button = QPushButton("Set as default", clicked=self.set_default)
        buttons = arrange(QHBoxLayout(), self.add_button, self.record_button, 1, self.play_button, self.rename_button)
        arrange(buttons, self.default_button, self.delete_button)
        arrange(QVBoxLayout(self), buttons, (self.table, 1), self.hint)
        # Over the page's foot, in no layout: a message coming or going moves no row or button.
        self.banner = Banner(over=self)

        self.inputs: list[str] = []
        #: The job playing a reference clip ("Play clip" is then "Stop").
        self.playing_job: str | None = None
        #: A name to select once the list has it (after a rename or an add).
        self._select_next: str | None = None
        state.voices_changed.connect(self._fill)
        state.job_event.connect(self._on_job_event)
        state.jobs_lost.connect(lambda _: self._playing(None))
        state.changed.connect(self._update_buttons)
        state.hello_changed.connect(lambda _: self._update_buttons())
        self._fill()
        if probe_microphone:
            self._probe = InputProbe(self)
            self._probe.done.connect(self._inputs_found)
            self._probe.start()

    # -- the list ----------------------------------------------------------------

    def names(self) -> list[str]:
        """Voice names as listed (tests)."""
        return [
            self.table.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) for i in range(self.table.topLevelItemCount())
        ]

    def selected(self) -> str | None:
        """The selected voice's name."""
        items = self.table.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def select(self, name: str) -> None:
        """Select a voice by name."""
        names = self.names()
        if name in names:
            self.table.setCurrentItem(self.table.topLevelItem(names.index(name)))

    def _fill(self) -> None:
        keep = self.selected()
        self.table.clear()
        for voice in self.state.voices:
            self.table.addTopLevelItem(self._item(voice))
        if self._select_next and self._select_next in self.names():
            keep, self._select_next = self._select_next, None
        if keep:
            self.select(keep)
        self.hint.setText(
            "Drop audio files here to add them as voices. A voice is 5 to 60 s of one person speaking."
            if self.state.voices
            else "No voices yet. Add a clip of someone speaking (5 to 60 s), record one, or drop audio files here."
        )
        self._update_buttons()

    def _item(self, voice: VoiceInfo) -> QTreeWidgetItem:
        name, added, cache = voice.name, voice.added_at, voice.cache
        with contextlib.suppress(ValueError):
            added = datetime.fromisoformat(added).astimezone().strftime("%Y-%m-%d %H:%M")
        item = QTreeWidgetItem(
            [
                f"★  {name}" if voice.default else name,
                fmt_seconds(voice.duration_s),
                CACHE_LABELS.get(cache, str(cache)),
                added,
                voice.source_name,
            ]
        )
        item.setData(0, Qt.ItemDataRole.UserRole, name)
        item.setToolTip(0, "The default voice" if voice.default else "Double-click to make it the default")
        item.setToolTip(2, CACHE_TIPS.get(cache, ""))
        if voice.default:
            font = QFont(item.font(0))
            font.setBold(True)
            item.setFont(0, font)
        return item

    # -- actions -------------------------------------------------------------------------

    def add_dialog(self) -> None:
        """Pick clip files and add them."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Add voices from clips", str(Path.home()), CLIP_FILTERS)
        for path in paths:
            self.add_file(Path(path))

    def add_file(self, path: Path, name: str | None = None) -> None:
        """Add a clip file as a voice: the clip is checked first, then its name asked for (the file's, unless given).

        Every check the daemon makes of a clip (it decodes, is long enough and
        not too long, is not silent) comes before the name: nobody names a
        voice that can never be.
        """
        if problem := file_formats.clip_problem(path):  # the header alone says so: at once
            self.banner.show_message(f"Cannot add this clip: {problem}.")
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.banner.show_message(f"Could not read {path}: {exc}")
            return
        if name is not None:
            self.add_bytes(name.strip(), data, path.name)
            return

        def refused(code: str, message: str) -> None:
            if code == "bad_args":  # a daemon that cannot check alone: it judges the clip when adding
                self._name_and_add(path, data)
            else:
                self.banner.show_message(f"Cannot add {path.name}: {(message or code).rstrip('.')}.")

        self.state.send(
            rq.voices_check(data, path.name), on_result=lambda _: self._name_and_add(path, data), on_error=refused
        )

    def _name_and_add(self, path: Path, data: bytes) -> None:
        """The clip is fit to be a voice: ask for its name, then add it."""
        name, ok = QInputDialog.getText(
            self, "Add a voice", f"Name for the voice in {path.name}:", text=self._unique(path.stem)
        )
        if ok and name.strip():
            self.add_bytes(name.strip(), data, path.name)

    def add_bytes(self, name: str, data: bytes, source_name: str = "") -> None:
        """Send a clip's bytes to the daemon as a new voice."""
        self.banner.show_message(f"Adding “{name}”…", "info", closable=False)
        self.state.send(
            rq.voices_add(name, data, source_name),
            on_result=self._added,
            on_error=lambda code, message: self.banner.show_message(f"Could not add “{name}”: {message or code}"),
        )

    def _added(self, voice: VoiceInfo) -> None:
        self.banner.show_message(
            f"Added “{voice.name}”. It is being made ready in the background.", "info", timeout_ms=5000
        )
        self.select(voice.name)

    def record(self) -> None:
        """Record a clip from the microphone and add it."""
        dialog = RecordDialog(self, self._unique("My voice"), inputs=self.inputs)
        if dialog.exec() and dialog.name.text().strip():
            self.add_bytes(dialog.name.text().strip(), dialog.clip(), "recording.wav")

    def play(self) -> None:
        """Play the selected voice's reference clip on the daemon's speaker, or stop the one playing."""
        if self.playing_job:
            self.state.send(rq.stop(self.playing_job), on_error=lambda c, m: self._playing(None))
            return
        if name := self.selected():
            self.state.send(rq.voices_play(name), on_result=lambda r: self._playing(r.job), on_error=self._show_error)

    def _playing(self, job: str | None) -> None:
        """The job playing a reference clip now, or None."""
        self.playing_job = job
        self._update_buttons()

    def _on_job_event(self, data: dict[str, Any]) -> None:
        told = JobEvent.from_data(data)
        if self.playing_job and told.job == self.playing_job and told.event in JOB_ENDS:
            self._playing(None)

    def rename(self) -> None:
        """Rename the selected voice."""
        name = self.selected()
        if not name:
            return
        new, ok = QInputDialog.getText(self, "Rename voice", f"New name for “{name}”:", text=name)
        if ok and new.strip() and new.strip() != name:
            self.rename_to(name, new.strip())

    def rename_to(self, name: str, new_name: str) -> None:
        """Ask the daemon to rename a voice."""
        self._select_next = new_name
        self.state.send(rq.voices_rename(name, new_name), on_result=self._renamed, on_error=self._show_error)

    def _renamed(self, voice: VoiceInfo) -> None:
        self.banner.hide()  # an earlier error (a taken name) no longer applies
        name = voice.name or self._select_next
        if name and name in self.names():
            self.select(name)
            self._select_next = None

    def delete(self) -> None:
        """Delete the selected voice, after asking."""
        name = self.selected()
        question = f"Delete the voice “{name}”? Its clip and its prepared voice are removed."
        if name and confirm(self, "Delete voice", question):
            self.delete_voice(name)

    def delete_voice(self, name: str) -> None:
        """Ask the daemon to remove a voice."""
        self.state.send(rq.voices_remove(name), on_error=self._show_error)

    def set_default(self) -> None:
        """Make the selected voice the default."""
        if name := self.selected():
            self.state.send(rq.voices_default(name), on_error=self._show_error)

    def _show_error(self, code: str, message: str) -> None:
        if code == "unknown_op":
            message = "This daemon cannot do that yet: update Chatterbox Tray."
        self.banner.show_message(message or code)

    def _unique(self, base: str) -> str:
        taken = {v.name.lower() for v in self.state.voices}
        name, n = base, 2
        while name.lower() in taken:
            name, n = f"{base} {n}", n + 1
        return name

    # -- drag and drop ---------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._dropped_paths(event)
        event.acceptProposedAction()
        for path in paths:
            self.add_file(path)

    @staticmethod
    def _dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        return [p for p in paths if p.suffix.lower() in AUDIO_SUFFIXES]

    # -- state ---------------------------------------------------------------------------------

    def _inputs_found(self, names: list[str], why: str) -> None:
        self.inputs = names
        self._update_buttons()
        self.record_button.setToolTip(
            f"Record a voice from {names[0]}" if names else f"Recording is not available: {why}."
        )

    def _update_buttons(self) -> None:
        connected = self.state.connected
        has = connected and self.selected() is not None
        self.add_button.setEnabled(connected)
        self.record_button.setEnabled(connected and bool(self.inputs))
        for button in (self.rename_button, self.delete_button):
            button.setEnabled(has)
        is_default = has and self.selected() == self.state.default_voice
        self.default_button.setEnabled(has and not is_default)
        self.default_button.setToolTip("This is the default voice" if is_default else "Make it the default voice")
        can_play, playing = self.state.supports("voices.play"), self.playing_job is not None
        play_tip = (
            "Play the reference clip on the speaker" if can_play else "This daemon cannot play clips yet: update it"
        )
        self.play_button.setText("Stop" if playing else "Play clip")
        self.play_button.setEnabled(connected if playing else has and can_play)
        self.play_button.setToolTip("Stop the clip" if playing else play_tip)
