"""The Settings page: the daemon's settings (read from and written to it), plus the app's own.

The daemon owns its settings: this page shows what ``settings.get`` says, sends
only what the user changed with ``settings.set``, and re-reads them when a
``settings`` event says another client changed them. Only "start with the
session", the hotkey and which daemon to use belong to the app itself.

The daemon choice is one compact row (the page fits the default window
without scrolling): "This computer" and every paired daemon
(``ipc.remote.read_daemons``), and "Pair with a daemon…" (``PairDialog``).
A daemon on another computer is set up by its owner there: its settings are
shown, greyed.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...ipc import messages as m
from ...ipc import remote
from ...ipc import requests as rq
from ...ipc.settings_schema import SETTINGS
from .. import autostart, prefs
from ..pairdialog import PairDialog
from ..plain_words import plain_failure
from ..state import AppState
from ..widgets import Banner, ElidedLabel, arrange, scrolled, wheel_only_when_focused

#: Settings on sliders in hundredths of the daemon's value.
PERCENT = ("volume", "rate")
#: Settings an older daemon does not have: none of them is sent to it.
NEWER = ("rate", "bridge_openai", "bridge_wyoming")


class SettingsPage(QWidget):
    """Model, cache, output and desktop settings."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.daemon_settings: dict[str, Any] = {}
        self.loaded: dict[str, Any] = {}
        #: Unsaved edits kept while another client's change was shown around them.
        self.kept: dict[str, Any] = {}
        self._model_state = ""

        # model
        self.variant = QComboBox(currentIndexChanged=self._update_language)
        # The model box's two radio buttons: one parent, so each excludes the other.
        self.source_hub = QRadioButton("Hugging Face hub (downloaded once, then cached)")
        self.source_local = QRadioButton("Local folder")
        self.checkpoint = QLineEdit(placeholderText="Folder with the model's files")
        browse = QPushButton("Browse…", clicked=self._browse)
        self.source_local.toggled.connect(lambda on: (self.checkpoint.setEnabled(on), browse.setEnabled(on)))
        self.device = _choices("device")
        self.language = QComboBox(editable=True, toolTip=SETTINGS["language"].help)
        self.loaded_label = QLabel(wordWrap=True, objectName="loadedLabel")
        self.loaded_label.setStyleSheet("color: palette(placeholder-text);")
        # Room for its two sentences ("Loaded: …", "…reload to use it") whether or not the
        # second shows: the form's row would squeeze it into one line, and the rows
        # below must not move when it changes.
        self.loaded_label.setMinimumHeight(2 * self.loaded_label.fontMetrics().lineSpacing() + 2)
        self.loaded_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        #: The banner said "Loading the model…" for a reload asked here: the model's next state replaces it.
        self._announced_loading = False
        self.reload_button = QPushButton("Reload the model now", clicked=self.reload_model)
        self.idle_minutes = QSpinBox(maximum=24 * 60, suffix=" min idle", singleStep=5, specialValueText="Never")
        self.idle_minutes.setToolTip(SETTINGS["unload_after_idle_minutes"].help)
        # One row for both: the page must fit the default window without scrolling.
        device_row = arrange(QHBoxLayout(), (self.device, 1))
        device_row.addSpacing(12)
        arrange(device_row, QLabel("Unload after"), self.idle_minutes)
        model_box = QGroupBox("Model")
        arrange(
            QFormLayout(model_box),
            (SETTINGS["variant"].label, self.variant),
            (SETTINGS["checkpoint"].label, self.source_hub),
            # The folder beside its choice, one row: the page fits the default window
            # with the two lines the loaded model's line keeps for itself.
            ("", arrange(QHBoxLayout(), self.source_local, (self.checkpoint, 1), browse)),
            (SETTINGS["language"].label, self.language),
            (SETTINGS["device"].label, device_row),
            arrange(QHBoxLayout(), (self.loaded_label, 1), self.reload_button),
        )

        # cache
        self.memory_mb = QSpinBox(maximum=1_048_576, suffix=" MiB", singleStep=64)
        self.disk_mb = QSpinBox(maximum=16_777_216, suffix=" MiB", singleStep=256)
        self.memory_mb.setToolTip(SETTINGS["memory_cache_mb"].help)
        cache_box = QGroupBox("Voice cache")
        arrange(QFormLayout(cache_box), ("In memory", self.memory_mb), ("On disk", self.disk_mb))

        # output
        self.output = QComboBox()
        self.volume = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.volume_label = QLabel("100 %", minimumWidth=44)
        self.volume.valueChanged.connect(lambda v: self.volume_label.setText(f"{v} %"))
        self.prebuffer = _choices("prebuffer")
        pause = SETTINGS["sentence_pause_ms"]
        self.pause_ms = QSpinBox(minimum=pause.low, maximum=pause.high, suffix=" ms", singleStep=50)
        # In hundredths (50..200): the daemon's ``rate``, the default of every request that gives none.
        rate = SETTINGS["rate"]
        low, high = round(rate.low * 100), round(rate.high * 100)
        self.rate = QSlider(Qt.Orientation.Horizontal, minimum=low, maximum=high, singleStep=5, pageStep=25, value=100)
        self.rate.setObjectName("rateSetting")
        self.rate_label = QLabel("1.00×", minimumWidth=44)
        self.rate.valueChanged.connect(lambda v: self.rate_label.setText(f"{v / 100:.2f}×"))
        self.rate.setToolTip(rate.help)
        output_box = self.output_box = QGroupBox("Speaker")
        arrange(
            QFormLayout(output_box),
            (SETTINGS["output_device"].label, self.output),
            (SETTINGS["volume"].label, arrange(QHBoxLayout(), (self.volume, 1), self.volume_label)),
            (SETTINGS["prebuffer"].label, self.prebuffer),
            (SETTINGS["sentence_pause_ms"].label, self.pause_ms),
            (SETTINGS["rate"].label, arrange(QHBoxLayout(), (self.rate, 1), self.rate_label)),
        )

        # the app's own
        self.autostart = QCheckBox("Start Chatterbox Tray when I log in", checked=autostart.is_enabled())
        self.autostart.toggled.connect(self._set_autostart)
        self.hotkey_box = QGroupBox("Quick-speak hotkey", objectName="hotkeyBox")
        self.hotkey = QKeySequenceEdit(objectName="hotkeyEdit", enabled=False, editingFinished=self._apply_hotkey)
        self.hotkey.setMaximumSequenceLength(1)
        self.hotkey.setClearButtonEnabled(True)
        self.hotkey_enabled = QCheckBox("On", enabled=False, toggled=self._apply_hotkey)
        self.hotkey_status = QLabel("Not available", objectName="hotkeyStatus", wordWrap=True)
        hotkey_help = QLabel(
            "Press it with text selected in any app to hear it; press it again to stop. "
            "Where the app cannot grab keys (some Wayland desktops), bind the command "
            "<code>chatterbox-tray quick</code> in your desktop's keyboard settings instead.",
            wordWrap=True,
            styleSheet="color: palette(placeholder-text);",
        )
        arrange(
            QFormLayout(self.hotkey_box),
            ("Speak the selection", arrange(QHBoxLayout(), (self.hotkey, 1), self.hotkey_enabled)),
            ("", self.hotkey_status),
            hotkey_help,
        )
        self.quick: Any = None
        # The bridges (daemon settings): the daemon runs them as its children.
        self.bridge_openai = QCheckBox(objectName="bridgeOpenai", toolTip=SETTINGS["bridge_openai"].help)
        self.bridge_wyoming = QCheckBox(objectName="bridgeWyoming", toolTip=SETTINGS["bridge_wyoming"].help)
        self._show_bridge_places({})
        # Which daemon the app uses: one row with "start when I log in" (the page must fit the window).
        self.daemon_choice = QComboBox(objectName="daemonChoice", activated=self._daemon_picked)
        self.daemon_choice.setToolTip(
            "The daemon that makes the speech: this computer's, or one paired on another computer "
            "(its speech plays here)"
        )
        self.daemon_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.daemon_choice.setMinimumContentsLength(14)
        self.pair_button = QPushButton("Pair with a daemon…", objectName="pairDaemon", clicked=self.open_pairing)
        self.pair_dialog: PairDialog | None = None
        desktop_box = QGroupBox("Desktop")
        arrange(
            QVBoxLayout(desktop_box),
            arrange(QHBoxLayout(), self.autostart, 1, QLabel("Daemon"), self.daemon_choice, self.pair_button),
            # one row: the page fits the default window without scrolling
            arrange(QHBoxLayout(), self.bridge_openai, self.bridge_wyoming, 1),
        )

        self.apply_button = QPushButton("Apply", default=True, clicked=self.apply)
        self.revert_button = QPushButton("Revert", clicked=self.revert)
        self.file_label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)  # a long path, shortened in its middle
        self.file_label.setStyleSheet("color: palette(placeholder-text);")

        content = QWidget()
        arrange(QVBoxLayout(content), model_box, cache_box, output_box, desktop_box, self.hotkey_box, 1)
        scroll, outer = scrolled(self, content)
        arrange(outer, arrange(QHBoxLayout(), (self.file_label, 1), self.revert_button, self.apply_button))
        # Over the foot of the form, just above Apply (what it says is mostly about
        # applying), in no layout: showing or hiding it moves none of the controls.
        self.banner = Banner(over=scroll)

        wheel_only_when_focused(self, model_box, cache_box, output_box)  # not the daemon's choice

        state.reconnected.connect(self.refresh)
        state.settings_event.connect(lambda _: self.refresh())
        state.playback_event.connect(self._on_playback)
        state.hello_changed.connect(self._fill_variants)
        state.changed.connect(self._update_enabled)
        state.daemon_changed.connect(lambda _: self.fill_daemons())
        self.daemon_boxes = (model_box, cache_box, output_box, self.bridge_openai, self.bridge_wyoming)
        #: The daemon's settings this page shows, each in its control (``_set_field``, ``_field``).
        self.fields: dict[str, QWidget] = {
            "variant": self.variant,
            "checkpoint": self.checkpoint,
            "device": self.device,
            "language": self.language,
            "memory_cache_mb": self.memory_mb,
            "disk_cache_mb": self.disk_mb,
            "prebuffer": self.prebuffer,
            "sentence_pause_ms": self.pause_ms,
            "output_device": self.output,
            "volume": self.volume,
            "unload_after_idle_minutes": self.idle_minutes,
            "rate": self.rate,
            "bridge_openai": self.bridge_openai,
            "bridge_wyoming": self.bridge_wyoming,
        }
        self.fill_daemons()
        self._update_enabled()

    # -- reading -----------------------------------------------------------------

    def revert(self) -> None:
        """Drop unsaved edits: show the daemon's settings again."""
        self.banner.hide()  # what it said was about the edits
        self.kept = {}
        self._read({})

    def refresh(self) -> None:
        """Read the daemon's settings again, keeping what the user changed and has not applied.

        For changes the user did not make (another client, a reconnect, a model
        that finished loading): they must not wipe edits in progress.
        """
        self._read({**self.kept, **self.changes()} if self.daemon_settings else {})

    def _read(self, edits: dict[str, Any]) -> None:
        """Ask for the settings and output devices; ``edits`` stay shown over what comes."""
        before = dict(self.daemon_settings)
        self.state.send(
            rq.settings_get(), on_result=lambda r: self._show_merged(r, edits, before), on_error=self._error
        )
        self.state.send(rq.audio_devices(), on_result=self._show_devices, on_error=self._no_devices)

    def _show_merged(self, result: m.SettingsGetResult, edits: dict[str, Any], before: dict[str, Any]) -> None:
        self._show(result)
        now = self.daemon_settings
        self.kept = {k: v for k, v in edits.items() if now.get(k) != v}  # the same value arrived: no edit left
        for key, value in self.kept.items():
            self._set_field(key, value)
        if newer := [k for k in self.kept if now.get(k) != before.get(k)]:
            names = ", ".join(f"{SETTINGS[k].label} ({_shown(k, now.get(k))})" for k in newer)
            self.banner.show_message(
                f"Another app changed {names} while you were editing. Your unsaved value is kept: "
                "Apply to use yours, or Revert to take the new one.",
                "warning",
                "Revert",
                self.revert,
            )
        elif self.kept and now != before:
            self.banner.show_message(
                "Another app changed other settings; they are shown, and your unsaved edits are kept.",
                "info",
                timeout_ms=6000,
            )

    def _set_field(self, key: str, value: Any) -> None:
        """Show ``value`` for setting ``key`` (the daemon's, or an unsaved edit put back)."""
        widget = self.fields[key]
        if key == "checkpoint":
            self.source_local.setChecked(bool(value))
            self.source_hub.setChecked(not value)
            self.checkpoint.setText(str(value))
        elif key == "language":
            self.language.setCurrentText(str(value))
        elif isinstance(widget, QComboBox):
            if (index := widget.findData(value)) >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, (QSpinBox, QSlider)):
            widget.setValue(int(_in_units(key, value)))

    def _field(self, key: str) -> Any:
        """What the page shows for setting ``key``, in the units of ``_in_units``; None: nothing to send."""
        widget = self.fields[key]
        if key == "checkpoint":
            return self.checkpoint.text().strip() if self.source_local.isChecked() else ""
        if key == "language":
            return (self.language.currentText().strip() or "en") if self.language.isEnabled() else None
        if key == "output_device":
            return self.output.currentData() if self.output.isEnabled() else None
        if isinstance(widget, QComboBox):
            return widget.currentData()
        return widget.isChecked() if isinstance(widget, QCheckBox) else widget.value()

    def _show(self, result: m.SettingsGetResult) -> None:
        s = self.daemon_settings = dict(result.settings)
        self.loaded = dict(result.loaded)
        self._fill_variants(self.state.hello)
        self.language.clear()
        self.language.addItems(self.state.languages() or ["en"])
        for key in self.fields:
            self._set_field(key, s.get(key, SETTINGS[key].default))
        self.checkpoint.setEnabled(bool(s.get("checkpoint")))
        for key in NEWER:
            self.fields[key].setEnabled(key in s)
        self._show_bridge_places(s)
        self._update_language()
        if not self.state.remote:  # a remote daemon's file is on its computer (``_update_enabled`` says so)
            self.file_label.setText(f"Saved in {result.file}")
        self._show_loaded()

    def _show_bridge_places(self, s: dict[str, Any]) -> None:
        """The switches' words say where each bridge listens (its address is a daemon setting)."""
        port = s.get("bridge_openai_port", SETTINGS["bridge_openai_port"].default)
        uri = s.get("bridge_wyoming_uri", SETTINGS["bridge_wyoming_uri"].default)
        self.bridge_openai.setText(f"OpenAI speech API on http://127.0.0.1:{port}/v1")
        self.bridge_wyoming.setText(f"Home Assistant (Wyoming) on {uri}")

    def _show_loaded(self) -> None:
        s, loaded = self.daemon_settings, self.loaded
        model_state = self.state.model_state
        self.loaded_label.setToolTip("")
        self.reload_button.setVisible(False)
        if model_state == "failed":  # nothing is loaded, whatever was before
            self.loaded_label.setText("No model is loaded: the last load failed. Apply a change, or Retry.")
            return
        if not loaded:  # before the first load is done, and during a reload (the old model is gone)
            self.loaded_label.setText("No model loaded yet.")
            return
        checkpoint = str(loaded.get("checkpoint") or "")
        # A long folder is shortened to its last parts; the tooltip has it whole.
        source = _short_path(checkpoint) if checkpoint else "the hub"
        variant = loaded.get("variant")
        if variant == "auto":  # say which model "auto" chose
            variant = f"{self.state.status.variant or 'auto'} (automatic)"
        text = f"Loaded: {variant} from {source} on {self.state.status.device or loaded.get('device')}."
        if model_state == "sleeping":
            text = f"Asleep (unloaded while idle): {variant} from {source}; it loads again when you speak."
        differs = any(loaded.get(k) != s.get(k) for k in ("variant", "checkpoint", "device"))
        if differs:
            text += " The settings above ask for another model: reload to use it."
        self.loaded_label.setText(text)
        self.loaded_label.setToolTip(f"{text}\n{checkpoint}" if checkpoint else "")
        self.reload_button.setVisible(differs)

    def _fill_variants(self, hello: m.HelloResult) -> None:
        current = self.variant.currentData()
        names = SETTINGS["variant"].choices
        self.variant.clear()
        for v in hello.variants or list(names):
            self.variant.addItem(names.get(v, v), v)
        if current:
            self.variant.setCurrentIndex(max(0, self.variant.findData(current)))

    def _show_devices(self, result: m.AudioDevicesResult) -> None:
        self.output.clear()
        self.output.addItem("System default", "")
        for dev in result.devices:
            self.output.addItem(f"{dev.name} ({dev.hostapi})", dev.name)
        chosen = self.kept.get("output_device", result.device)
        if chosen and self.output.findData(chosen) < 0:
            self.output.addItem(f"{chosen} (not connected)", chosen)
        self.output.setCurrentIndex(max(0, self.output.findData(chosen)))
        self.output.setEnabled(True)

    def _no_devices(self, code: str, message: str) -> None:
        self.output.clear()
        self.output.addItem("No audio output available")
        self.output.setEnabled(False)
        self.output.setToolTip(message)

    def _on_playback(self, event: m.PlaybackEvent) -> None:
        """Another client set the volume or device: show it, unless the user is changing it here."""
        if not self.daemon_settings:
            return
        edited = "volume" in self.changes()
        self.daemon_settings["volume"] = event.volume
        if not edited and "volume" not in self.kept:
            self.volume.setValue(round(100 * event.volume))

    # -- writing -----------------------------------------------------------------------

    def changes(self) -> dict[str, Any]:
        """Settings whose shown value differs from the daemon's."""
        s, changed = self.daemon_settings, {}
        for key in self.fields:
            value = self._field(key)
            if value is None or (key in NEWER and key not in s):
                continue
            if value != _in_units(key, s.get(key, SETTINGS[key].default)):
                changed[key] = value / 100 if key in PERCENT else value
        return changed

    def apply(self) -> None:
        """Send the changed settings to the daemon."""
        values = self.changes()
        if self.source_local.isChecked() and not values.get("checkpoint", self.daemon_settings.get("checkpoint")):
            self.banner.show_message("Choose the folder that holds the model's files, or use the hub.")
            return
        if not values:
            self.banner.show_message("Nothing to apply: these are the daemon's settings.", "info", timeout_ms=3000)
            return
        self.state.send(rq.settings_set(values), on_result=self._applied, on_error=self._error)

    def _applied(self, result: m.SettingsSetResult) -> None:
        self.daemon_settings = dict(result.settings)
        self.kept = {}
        if result.loading:  # after a failed load, the daemon loads the new model at once
            self._announced_loading = True
            self.banner.show_message("Saved. Loading the model with the new settings…", "info")
        elif result.reload_required:
            self.banner.show_message(
                "Saved. The model settings take effect when the model is loaded again.",
                "warning",
                action="Reload now",
                callback=self.reload_model,
            )
        else:
            self.banner.show_message("Saved.", "info", timeout_ms=3000)
        self._read({})

    def reload_model(self) -> None:
        """Load the model again with the current settings."""

        def started(result: m.LoadResult) -> None:
            if result.started:
                # Until the model is ready or has failed (``_update_enabled`` replaces it).
                self._announced_loading = True
                self.banner.show_message("Loading the model…", "info")
            else:
                self.banner.show_message("The daemon is busy: try again when it is idle.", "info", timeout_ms=4000)

        self.state.send(rq.reload(), on_result=started, on_error=self._error)

    def _browse(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Model folder", self.checkpoint.text()):
            self.checkpoint.setText(folder)
            self.source_local.setChecked(True)

    # -- the quick-speak hotkey (the app's own) --------------------------------------------

    def attach_quick_speak(self, quick: Any) -> None:
        """Show and edit ``quick``'s hotkey (a ``QuickSpeak``)."""
        self.quick = quick
        saved = prefs.load()
        with QSignalBlocker(self.hotkey), QSignalBlocker(self.hotkey_enabled):  # showing it changes nothing
            self.hotkey.setKeySequence(QKeySequence(saved["hotkey"]))
            self.hotkey_enabled.setChecked(saved["hotkey_enabled"])
        self.hotkey.setEnabled(True)
        self.hotkey_enabled.setEnabled(True)
        quick.status_changed.connect(self._show_hotkey_status)
        self._show_hotkey_status(quick.status or "Not grabbed yet", quick.active)

    def _apply_hotkey(self) -> None:
        if self.quick is None:
            return
        text = self.hotkey.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
        if not text:
            self.hotkey_enabled.setChecked(False)  # cleared: off (applies through toggled)
            self.quick.apply("", False)
            return
        self.quick.apply(text, self.hotkey_enabled.isChecked())

    def _show_hotkey_status(self, message: str, active: bool) -> None:
        self.hotkey_status.setText(message)
        self.hotkey_status.setStyleSheet("" if active or message == "Off" else "color: #b3261e;")

    # -- which daemon (the app's own) ---------------------------------------------------------

    def fill_daemons(self) -> None:
        """ "This computer" and every paired daemon; the one in use chosen."""
        try:
            paired = remote.read_daemons()
        except remote.RemoteError as exc:
            paired = {}
            self.banner.show_message(str(exc))
        self.daemon_choice.clear()
        self.daemon_choice.addItem("This computer", "")
        for name, daemon in sorted(paired.items()):
            self.daemon_choice.addItem(name, name)
            self.daemon_choice.setItemData(self.daemon_choice.count() - 1, daemon.where, Qt.ItemDataRole.ToolTipRole)
        current = self.state.remote or ""
        if current and self.daemon_choice.findData(current) < 0:
            self.daemon_choice.addItem(f"{current} (not paired)", current)
        self.daemon_choice.setCurrentIndex(max(0, self.daemon_choice.findData(current)))

    def _daemon_picked(self, index: int) -> None:
        self.state.use_daemon(self.daemon_choice.itemData(index) or None)

    def open_pairing(self) -> PairDialog:
        """The pairing form (kept, so a pairing in progress survives closing it)."""
        if self.pair_dialog is None:
            self.pair_dialog = PairDialog(self)
            self.pair_dialog.paired.connect(lambda _: self.fill_daemons())
            self.pair_dialog.use.connect(self.state.use_daemon)
        self.pair_dialog.show()
        self.pair_dialog.raise_()
        return self.pair_dialog

    def _set_autostart(self, on: bool) -> None:
        try:
            autostart.set_enabled(on)
        except OSError as exc:
            self.banner.show_message(f"Could not change starting with the session: {exc}")
            with QSignalBlocker(self.autostart):
                self.autostart.setChecked(autostart.is_enabled())

    def _error(self, code: str, message: str) -> None:
        if code == "unknown_op":
            message = "This daemon has no settings ops: update it."
        self.banner.show_message(message or code)

    def _update_language(self) -> None:
        """Language is for the multilingual model only: the others speak English and ignore it."""
        multi = self.variant.currentData() == "multilingual"
        self.language.setEnabled(multi)
        english_only = "This model speaks English only: choose the multilingual variant for others"
        self.language.setToolTip(SETTINGS["language"].help if multi else english_only)

    def _update_enabled(self) -> None:
        model_state = self.state.model_state
        if model_state != self._model_state:
            self._model_state = model_state
            if model_state in ("ready", "failed", "sleeping") and self.daemon_settings:
                self.refresh()  # what is loaded changed: "No model loaded yet" must not stay
            elif self.daemon_settings:
                self._show_loaded()
            if self._announced_loading and model_state in ("ready", "failed"):
                # "Loading the model…" must not outlive the load.
                self._announced_loading = False
                if model_state == "ready":
                    self.banner.show_message("The model is loaded.", "info", timeout_ms=4000)
                else:
                    error = self.state.status.error
                    self.banner.show_message(
                        f"The model could not be loaded. {plain_failure(error)}", "error", details=error
                    )
        # A daemon on another computer is set up there, by its owner (it refuses settings.set).
        editable = self.state.connected and not self.state.remote
        for widget in (self.apply_button, self.revert_button, self.output, self.volume, self.reload_button):
            widget.setEnabled(editable)
        for box in self.daemon_boxes:
            box.setEnabled(not self.state.remote)
        self.output_box.setToolTip("")
        if self.state.remote:
            self.file_label.setText(f"The settings of {self.state.remote} are changed on that computer")
            # This box is that computer's speaker; what is heard here plays on this
            # computer's device and volume (docs/decisions.md).
            self.output_box.setToolTip(
                f"The speaker of {self.state.remote}. Speech from it plays here, on this computer's "
                "output device and volume: choose This computer as the daemon to change those."
            )


def _choices(name: str) -> QComboBox:
    """A box of the setting's choices, in the schema's words."""
    combo = QComboBox()
    for value, words in SETTINGS[name].choices.items():
        combo.addItem(words, value)
    return combo


def _short_path(path: str, parts: int = 2) -> str:
    """A folder by its last ``parts`` names: "/home/ann/models/chatterbox/turbo" -> "…/chatterbox/turbo"."""
    names = PurePath(path).parts
    return path if len(names) <= parts + 1 else "…/" + "/".join(names[-parts:])


def _in_units(key: str, value: Any) -> Any:
    """A daemon value of setting ``key`` in the units its control shows."""
    if key in PERCENT:
        return round(100 * float(value))
    if key == "unload_after_idle_minutes":  # whole, and never "Never" unless 0; a fraction set elsewhere stays
        minutes = float(value or 0)
        return 0 if minutes <= 0 else max(1, round(minutes))
    return bool(value) if key in NEWER else value


def _shown(key: str, value: Any) -> str:
    """A setting's value as the page shows it (banners)."""
    if key == "volume":
        return f"{round(100 * float(value or 0))} %"
    if key == "rate":
        return f"{float(value or 1):.2f}×"
    return str(value) or {"output_device": "system default", "checkpoint": "the hub"}.get(key, "")
