"""The Speak page: text, voice, options; speak it, stop it, pause it, or save it to a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from ...audio import file_formats
from ...ipc import messages as m
from ...ipc import requests as rq
from ...ipc.limits import OPTION_RANGES, RATE_RANGE
from ...ipc.requests import Request
from ..connection import FAILED
from ..state import JOB_ENDS, AppState
from ..tag_menu import TagMenuButton
from ..widgets import SPEECH_TIP, Banner, ElidedLabel, arrange, fmt_seconds, speech_seconds, wheel_only_when_focused

#: Options every variant may have, in display order, with what they do (docs/protocol.md).
#: Their (min, max, default) until the daemon announces its own: ``ipc.limits.OPTION_RANGES``.
OPTIONS = {
    "exaggeration": ("Exaggeration", "Emotional intensity: higher is more expressive."),
    "cfg_weight": ("Pace (CFG)", "Guidance weight: lower gives slower, more deliberate speech."),
    "temperature": ("Temperature", "Randomness of the delivery: lower is steadier."),
}
#: The speaking rate's slider: not a model option (the daemon stretches the audio), so
#: always there; its default is the daemon's ``rate`` setting (Settings page).
RATE_SPEC = ("Speed", "Speaking rate: 2.00 is twice as fast, 0.50 half as fast; the pitch stays.")
STEPS = 100  # slider steps per unit
SAVE_FILTERS = file_formats.dialog_filters()


def utf16_offset(text: str, index: int) -> int:
    """A code-point index (the protocol's spans) as a UTF-16 index (Qt's text positions)."""
    return len(text[:index].encode("utf-16-le")) // 2


class OptionSlider(QWidget):
    """A labelled slider for one generation option, in the units the daemon takes."""

    def __init__(
        self,
        name: str,
        parent: QWidget | None = None,
        spec: tuple[str, str] | None = None,
        limits: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.title, self.help = spec or OPTIONS.get(name, (name, ""))
        lo, hi, default = limits or OPTION_RANGES.get(name, (0.0, 1.0, 0.5))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.value_label = QLabel(minimumWidth=40, alignment=Qt.AlignmentFlag.AlignRight)
        arrange(QHBoxLayout(self), (self.slider, 1), self.value_label).setContentsMargins(0, 0, 0, 0)
        self.slider.valueChanged.connect(lambda v: self.value_label.setText(f"{v / STEPS:.2f}"))
        self._has_value = False
        self.set_range(lo, hi, default)
        self.setToolTip(self.help)

    def set_range(self, lo: float, hi: float, default: float) -> None:
        """Take the range and default the daemon announced, keeping the value if it fits."""
        old = self.value() if self._has_value else default
        self._has_value = True
        self.default = default
        self.slider.setRange(round(lo * STEPS), round(hi * STEPS))
        self.set_value(old if lo <= old <= hi else default)

    def value(self) -> float:
        """The option's value."""
        return self.slider.value() / STEPS

    def set_value(self, value: float) -> None:
        """Move the slider."""
        self.slider.setValue(round(value * STEPS))
        self.value_label.setText(f"{self.value():.2f}")


class SpeakPage(QWidget):
    """Type or paste text, pick a voice and options, and hear it (or save it)."""

    spoken = Signal(str)  # job id of a speak request the daemon accepted

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        #: The id of the last ``speak`` request sent: the daemon puts it in its job's
        #: events, so they are ours even when they arrive before the answer.
        self.request_id: str | None = None
        self.job: str | None = None
        self.job_chunks = 0
        #: The last event of that request's job; once it is an end, nothing revives the job.
        self.heard: str | None = None
        self.spoken_text = ""
        #: A speak request was sent and its job has not ended (nor failed, nor been lost).
        self.in_progress = False
        self.saving: dict[str, Any] | None = None
        #: What the progress line said when the speaker paused: it comes back on resume.
        self._before_pause = ""

        self.text = QPlainTextEdit(placeholderText="Type or paste text to speak…", objectName="speakText")
        font = self.text.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)  # text to read along with, not a form field
        self.text.setFont(font)
        self.voice = QComboBox(minimumWidth=200, activated=self._voice_picked)
        self.voice.setToolTip("The current voice: also used by the tray, the hotkey and scripts that name none")
        self.language = QComboBox(toolTip="Language (multilingual model)")
        self.sliders = {name: OptionSlider(name) for name in OPTIONS}
        self.rate = OptionSlider("rate", spec=RATE_SPEC, limits=(*RATE_RANGE, 1.0))
        self.rate.setObjectName("rateSlider")
        self.seed = QSpinBox(minimum=-1, maximum=2_147_483_647, value=-1, specialValueText="Random")
        self.seed.setToolTip("The same seed, text and voice give the same take")
        defaults = QPushButton("Defaults", toolTip="Put every option back to the model's default")
        defaults.clicked.connect(self.reset_options)

        options = QGroupBox("Voice and options")
        self.language_row = QLabel("Language")
        self.option_labels = {name: QLabel(slider.title) for name, slider in self.sliders.items()}
        arrange(
            QFormLayout(options),
            ("Voice", self.voice),
            (self.language_row, self.language),
            *((self.option_labels[name], slider) for name, slider in self.sliders.items()),
            (QLabel(self.rate.title, toolTip=self.rate.help), self.rate),
            ("Seed", arrange(QHBoxLayout(), (self.seed, 1), defaults)),
        )

        self.speak_button = QPushButton(
            "Speak", default=True, toolTip="Speak the text (Ctrl+Enter)", clicked=self.speak, objectName="speakButton"
        )
        self.stop_button = QPushButton("Stop", toolTip="Stop speaking (Esc)", clicked=self.stop)
        self.pause_button = QPushButton("Pause", toolTip="Pause or resume the speaker", clicked=self.toggle_pause)
        self.skip_button = QPushButton("Skip", toolTip="Skip to the next sentence", clicked=self.skip)
        self.save_button = QPushButton("Save as…", toolTip="Make the audio and save it to a file", clicked=self.save_as)
        self.cancel_save_button = QPushButton("Cancel save", toolTip="Stop making the file; nothing is saved")
        self.cancel_save_button.clicked.connect(self.cancel_save)
        self.cancel_save_button.setVisible(False)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.speak)
        QShortcut(QKeySequence("Escape"), self, activated=self.stop)
        #: Pauses and the model's tags, put in at the cursor (gui/tag_menu.py).
        self.tag_menu = TagMenuButton(state, self.text, page=self)

        self.progress = QProgressBar(textVisible=False, maximumHeight=8)
        self.progress_label = ElidedLabel(" ")  # a long file name shortens; it never widens the page
        self.progress_label.setObjectName("progressLabel")

        buttons = arrange(QHBoxLayout(), self.speak_button, self.stop_button, self.pause_button, self.skip_button)
        arrange(buttons, self.tag_menu, 1, self.cancel_save_button, self.save_button)
        arrange(QVBoxLayout(self), (self.text, 1), buttons, self.progress, self.progress_label, options)

        # Over the page's foot, in no layout: a message coming or going moves nothing.
        self.banner = Banner(over=self)

        wheel_only_when_focused(self)

        state.voices_changed.connect(self._fill_voices)
        state.hello_changed.connect(self._apply_capabilities)
        state.job_event.connect(self._on_job_event)
        state.jobs_lost.connect(self._jobs_lost)
        state.changed.connect(self._update_buttons)
        state.reconnected.connect(lambda: state.fetch(rq.settings_get(), self._rate_setting_changed))
        state.settings_event.connect(self._rate_setting_changed)
        self._fill_voices()
        self._apply_capabilities(state.hello)
        self._update_buttons()

    # -- what to send ------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The generation options to send: only those the loaded model uses."""
        ranges = self.state.option_ranges()
        opts: dict[str, Any] = {name: s.value() for name, s in self.sliders.items() if name in ranges}
        if self.seed.value() >= 0:
            opts["seed"] = self.seed.value()
        if self.language.isVisible() and self.language.currentText():
            opts["language"] = self.language.currentText()
        return opts

    def speak_request(self) -> Request:
        """The ``speak`` request for what is on the page now (it replaces earlier quick speech)."""
        return rq.speak(self.text.toPlainText(), priority="quick", **self._what_to_say())

    def synthesize_request(self) -> Request:
        """The ``synthesize`` request (Save as…) for what is on the page now."""
        return rq.synthesize(self.text.toPlainText(), **self._what_to_say())

    def _what_to_say(self) -> dict[str, Any]:
        return {"voice": self.voice.currentData() or None, "options": self.options(), "rate": self.rate.value()}

    # -- actions ---------------------------------------------------------------------

    def speak(self) -> None:
        """Send the text to the daemon's speaker (replacing what it is saying)."""
        text = self.text.toPlainText()
        if not text.strip():
            self.banner.show_message(
                "There is nothing to speak: type or paste some text first.", "info", timeout_ms=4000
            )
            return
        self.banner.hide()
        self.text.setExtraSelections([])  # no sentence highlighted
        self.spoken_text = text
        self.job = self.heard = None
        self.progress.setRange(0, 0)  # busy until the daemon answers
        self.progress_label.setText("Sending…")
        self.in_progress = True
        self.request_id = self.state.send(self.speak_request(), on_result=self._spoke, on_error=self._failed)

    def stop(self) -> None:
        """Silence the speaker (everything queued too) and cancel a save in progress."""
        self.state.send(rq.stop(all=True))
        if self.saving and self.saving.get("job"):
            self.state.send(rq.cancel(self.saving["job"]), on_error=lambda c, m: None)

    def cancel_save(self) -> None:
        """Cancel the save in progress (by its request: it may not have a job yet); nothing is written."""
        if self.saving is not None and self.saving.get("request"):
            self.progress_label.setText("Cancelling…")
            self.state.send(rq.cancel(request=self.saving["request"]), on_error=lambda c, m: None)

    def toggle_pause(self) -> None:
        """Pause the speaker, or resume it."""
        self.state.send(rq.resume() if self.state.paused else rq.pause())

    def skip(self) -> None:
        """Skip to the next sentence of what is speaking (this computer's speaker with a remote daemon)."""
        self.state.send(rq.skip())

    def reset_options(self) -> None:
        """Every option back to its default."""
        for slider in (*self.sliders.values(), self.rate):
            slider.set_value(slider.default)
        self.seed.setValue(-1)

    # -- the speaking rate's default: the daemon's setting -------------------------------

    def _rate_setting_changed(self, told: m.SettingsGetResult | m.SettingsEvent) -> None:
        """A ``settings.get`` result or ``settings`` event: take its ``rate`` as the slider's default.

        The slider follows the new default unless the user has moved it away
        from the old one (their choice for this page stays).
        """
        rate = told.settings.get("rate")
        if not isinstance(rate, (int, float)) or isinstance(rate, bool):
            return  # an older daemon: no rate setting
        untouched = abs(self.rate.value() - self.rate.default) < 0.5 / STEPS
        self.rate.default = float(rate)
        if untouched:
            self.rate.set_value(float(rate))

    def save_as(self) -> None:
        """Ask for a file, then synthesize into it (streamed; Stop cancels)."""
        if not self.text.toPlainText().strip():
            self.banner.show_message(
                "There is nothing to save: type or paste some text first.", "info", timeout_ms=4000
            )
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, "Save speech as", str(Path.home() / "speech.wav"), SAVE_FILTERS
        )
        if path:
            if not Path(path).suffix:  # the filter the user picked says the format
                path += file_formats.extension_for_filter(chosen)
            self.save_to(path)

    def save_to(self, path: str) -> None:
        """Synthesize the text into ``path`` (its extension picks the format)."""
        if not Path(path).suffix:
            path += ".wav"
        try:  # before synthesizing: a bad name or folder is said at once
            file_formats.check_writable(path)
        except file_formats.AudioFileError as exc:
            self.banner.show_message(f"Cannot save: {exc}", "error")
            return
        request = self.synthesize_request()
        self.saving = {
            "path": path,
            "chunks": [],
            "rate": 24000,
            "total": 0,
            "job": None,
            "request": None,
            "text_chars": max(1, len(request.args.get("text", ""))),
            "audio_s": 0.0,
            "started": time.monotonic(),
        }
        self.progress.setRange(0, 0)
        self.progress_label.setText(f"Making {Path(path).name}…")
        self.saving["request"] = self.state.send(
            request, on_message=self._save_chunk, on_result=self._save_done, on_error=self._save_failed
        )
        self._report_saving(0)
        self._update_buttons()

    def _report_saving(self, made: int) -> None:
        """The status bar and the tray say a file is being made, as this page does."""
        if self.saving is None:
            self.state.set_saving(None)
        else:
            self.state.set_saving((Path(self.saving["path"]).name, made, int(self.saving.get("total") or 0)))

    # -- answers -------------------------------------------------------------------------

    def _spoke(self, spoken: m.SpeakResult) -> None:
        if spoken.dropped:
            self.in_progress = False
            self.progress_label.setText("Dropped: something else is speaking.")
            return
        self.job_chunks = spoken.chunks or 0
        self.spoken.emit(spoken.job)
        if self.heard is not None:
            return  # its events beat this answer here and already said more (or that it ended)
        self.job = spoken.job
        self.progress.setRange(0, max(1, self.job_chunks))
        self.progress.setValue(0)
        self.progress_label.setText("Queued…" if spoken.position else "Making the first sentence…")

    def _failed(self, code: str, message: str) -> None:
        self.in_progress = False
        self._show_end(" ")
        self.banner.show_message(message or code, "error")

    def _show_end(self, line: str, done: bool = False) -> None:
        """The progress bar full (``done``) or empty, and the last word on the progress line."""
        self.progress.setRange(0, 1)
        self.progress.setValue(int(done))
        self.progress_label.setText(line)

    def _on_job_event(self, data: dict[str, Any]) -> None:
        told = m.JobEvent.from_data(data)  # the state read it already: it is well formed
        job, request = told.job, told.request
        if self.saving is not None and (
            (job and job == self.saving.get("job")) or (request and request == self.saving.get("request"))
        ):
            if told.event == "waiting_for_model":
                self.progress_label.setText("Waiting for the model to load…")
            return
        if not job:
            return
        if request and request == self.request_id:
            if self.heard in JOB_ENDS:
                return  # a late event of a job that ended must not bring it back
            self.job = job  # it may come before the answer that names the job
        elif job != self.job:
            return
        event = self.heard = told.event
        chunks = told.chunks or self.job_chunks or 1
        index = told.sentence or 0
        if event == "sentence":
            self.progress.setRange(0, chunks)
            self.progress.setValue(index + 1)
            self.progress_label.setText(f"Speaking sentence {index + 1} of {chunks}")
            if told.span is not None and len(told.span) == 2:
                self._highlight(*told.span)
        elif event == "position":
            secs = told.seconds or 0.0
            self.progress_label.setText(f"Speaking sentence {index + 1} of {chunks} · {fmt_seconds(secs)} played")
        elif event == "chunk" and not self.progress.value():
            made = max(told.chunks_done or 0, (-1 if told.index is None else told.index) + 1)
            line = f"Made {made} of {chunks} sentences…"
            if self.state.paused:  # still made while paused; heard once resumed
                self._before_pause = line
                line = f"Paused · made {made} of {chunks} sentences; nothing plays until you resume"
            self.progress_label.setText(line)
        elif event == "paused":
            self._before_pause = self.progress_label.text()
            done, total = self.state.job_progress.get(job, (0, 0))
            made = f" · made {done} of {total} sentences; nothing plays until you resume"
            # Nothing heard yet: keep saying how far it is.
            self.progress_label.setText("Paused" + (made if total and not self.progress.value() else ""))
        elif event == "resumed":
            self.progress_label.setText(self._before_pause or "Resumed")
        elif event == "underrun":
            self.progress_label.setText("Waiting for the next sentence…")
        elif event == "interrupted":
            self.progress_label.setText("Interrupted by an urgent message; it will go on after it")
        elif event in JOB_ENDS:
            self.text.setExtraSelections([])
            self.job = None
            self.in_progress = False
            playback = told.playback or {}
            if event == "finished":
                first = playback.get("first_sample_s")
                after = f", first sound after {fmt_seconds(first)}" if first is not None else ""
                # Seconds of speech as the Stats page counts them (``SPEECH_TIP``).
                speech = speech_seconds(told.summary)
                if speech is None:  # an older daemon: what was played
                    speech = playback.get("played_s")
                self._show_end(f"Done: {fmt_seconds(speech)} of speech{after}", done=True)
                self.progress_label.setToolTip(SPEECH_TIP)
            elif event == "cancelled":
                self._show_end("Stopped")
            elif event == "dropped":
                self._show_end("Dropped: something else is speaking.")
            else:
                err = told.error or {}
                self._show_end("Failed")
                self.banner.show_message(str(err.get("message") or err.get("code") or "speech failed"), "error")

    def _jobs_lost(self, jobs: list[str]) -> None:
        """The daemon went away with our speech (or save): say so and reset, or the page waits forever."""
        if self.saving is not None:
            self._save_failed("unavailable", "The daemon stopped before the file was made: nothing was saved.")
        if not self.in_progress:
            return
        self.in_progress = False
        self.job = None
        self.heard = "failed"  # a late event of that job must not bring it back
        self.text.setExtraSelections([])
        self._show_end("Lost")
        self.banner.show_message(
            "The daemon stopped before this speech was finished, so it was lost. Press Speak to hear it again.",
            "warning",
            "Speak again",
            self.speak,
        )
        self._update_buttons()

    def _save_chunk(self, reply: m.Reply) -> None:
        if self.saving is None:
            return
        if isinstance(reply, m.Accepted):
            self.saving.update(job=reply.job, total=reply.chunks)
            self.progress.setRange(0, max(1, self.saving["total"]))
            self.progress.setValue(0)
            self._report_saving(0)
        elif isinstance(reply, m.ChunkReply) and reply.audio is not None:
            self.saving["chunks"].append(reply.audio)
            self.saving["rate"] = reply.sample_rate
            self.saving["audio_s"] += reply.samples / self.saving["rate"]
            if reply.final:  # a sentence may come in pieces; count sentences
                made = reply.index + 1
                self.progress.setValue(made)
                self.progress_label.setText(self._save_line(made, reply.span))
                self._report_saving(made)

    def _save_line(self, made: int, span: Any) -> str:
        """ "Making book.flac: 3 of 8 sentences, 12.5 s of audio, about 40 s left"."""
        saving = self.saving or {}
        total = saving.get("total") or "?"
        line = f"Making {Path(saving.get('path', '')).name}: {made} of {total} sentences"
        line += f", {fmt_seconds(saving.get('audio_s', 0.0))} of audio"
        # Time left from the share of the text done (sentences differ in length).
        if isinstance(span, list) and len(span) == 2:
            done = span[1] / saving["text_chars"]
        else:
            done = made / total if isinstance(total, int) else 0.0
        if 0 < done < 1:
            elapsed = time.monotonic() - saving.get("started", time.monotonic())
            line += f", about {fmt_seconds(elapsed * (1 - done) / done)} left"
        return line

    def _save_done(self, summary: dict[str, Any]) -> None:
        import numpy as np

        saving, self.saving = self.saving, None
        self._report_saving(0)
        self._update_buttons()
        if saving is None:
            return
        audio = np.frombuffer(b"".join(saving["chunks"]), dtype="<f4")
        path = Path(saving["path"])
        try:
            file_formats.write_audio(path, audio, saving["rate"])
        except (OSError, RuntimeError, ValueError) as exc:
            self._failed("io", f"Could not write {path}: {exc}")
            return
        self._show_end(f"Saved {path.name}: {fmt_seconds(len(audio) / saving['rate'])} of audio", done=True)

    def _save_failed(self, code: str, message: str) -> None:
        self.saving = None
        self._report_saving(0)
        self._update_buttons()
        if code == "cancelled":
            self._show_end("Save cancelled: nothing was written")
        else:
            self._failed(code, message)

    # -- display ---------------------------------------------------------------------------

    def _highlight(self, start: int, end: int) -> None:
        text = self.text.toPlainText()
        if text != self.spoken_text:
            return  # edited since: the span no longer points at the right words
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(utf16_offset(text, start))
        cursor.setPosition(utf16_offset(text, end), QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setBackground(QColor("#fff1a8"))
        fmt.setForeground(QColor("#000000"))
        selection.format = fmt
        selection.cursor = cursor
        self.text.setExtraSelections([selection])
        self.text.setTextCursor(QTextCursor(cursor.block()))  # keep the sentence in view
        self.text.ensureCursorVisible()

    def highlighted(self) -> str:
        """The text highlighted now (tests)."""
        sels = self.text.extraSelections()
        return sels[0].cursor.selectedText() if sels else ""

    def _fill_voices(self) -> None:
        current = self.state.default_voice
        with QSignalBlocker(self.voice):
            self.voice.clear()
            for voice in self.state.voices:
                self.voice.addItem(voice.name, voice.name)
            if not self.state.voices:
                self.voice.addItem("No voices yet: add one on the Voices page", None)
            index = self.voice.findData(current) if current else -1
            self.voice.setCurrentIndex(max(0, index))  # no default yet: the first voice is what Speak uses

    def _voice_picked(self, index: int) -> None:
        if (name := self.voice.itemData(index)) and name != self.state.default_voice:
            self.state.send(rq.voices_default(name))

    def _apply_capabilities(self, hello: m.HelloResult) -> None:
        caps = hello.capabilities
        ranges = self.state.option_ranges()
        variant = (caps or {}).get("variant") or hello.variant or "this model"
        for name, slider in self.sliders.items():
            supported = caps is None or name in ranges
            if name in ranges:
                r = ranges[name]
                slider.set_range(float(r["min"]), float(r["max"]), float(r["default"]))
            if caps is None:
                tip = f"{slider.help}\nAvailable once the model has loaded."
            elif supported:
                tip = slider.help
            else:
                tip = f"{str(variant).capitalize()} ignores {slider.title.lower()}: the model has no such control."
            for widget in (slider, self.option_labels[name]):
                widget.setEnabled(supported and caps is not None)
                widget.setToolTip(tip)
        languages = self.state.languages()
        self.language.clear()
        self.language.addItems(languages)
        if "en" in languages:
            self.language.setCurrentText("en")
        for widget in (self.language, self.language_row):
            widget.setVisible(len(languages) > 1)

    def _update_buttons(self) -> None:
        if self.state.link == FAILED and (self.in_progress or self.saving is not None):
            self._jobs_lost([])  # no daemon to come back: the job is gone
            return
        connected = self.state.connected
        failed = self.state.model_state == "failed"
        self.speak_button.setEnabled(connected and not failed)
        self.save_button.setEnabled(connected and not failed and self.saving is None)
        self.cancel_save_button.setVisible(self.saving is not None)
        self.stop_button.setEnabled(connected and (self.state.busy or self.saving is not None))
        # Pausing an idle speaker would only make the next Speak silent: Pause
        # needs something to pause; a speaker paused anyway (another client) can be resumed.
        self.pause_button.setEnabled(connected and (self.state.busy or self.state.paused))
        self.pause_button.setText("Resume" if self.state.paused else "Pause")
        self.skip_button.setEnabled(connected and self.state.speaking)
        pause_tip = "Pause the speaker" if self.state.busy else "Nothing is playing: nothing to pause"
        self.pause_button.setToolTip("Resume the speaker" if self.state.paused else pause_tip)
