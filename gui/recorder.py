"""Recording a reference clip from the microphone, with a level meter.

The microphone is the GUI's own (the daemon owns only the speaker). Whether
there is an input device is asked in a child process first, as the daemon
does for output: a broken ALSA setup can make PortAudio abort() the process
that scans the devices, and that must not be the tray app.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import threading
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..ipc.limits import CLIP_MAX_SECONDS, CLIP_MIN_SECONDS, CLIP_SILENCE_RMS_DBFS
from .widgets import arrange

RATE = 24_000
MIN_S, MAX_S = CLIP_MIN_SECONDS, CLIP_MAX_SECONDS  # the daemon's clip limits (docs/protocol.md)

_PROBE = """
import json, sounddevice as sd
devs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
print(json.dumps([d["name"] for d in devs]))
"""


def probe_inputs(timeout: float = 10.0) -> tuple[list[str], str]:
    """Input device names, and why there are none (blocking: call it off the GUI thread)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"the audio system did not answer: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [], f"the audio system is not usable: {tail}"
    try:
        names = list(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return [], "the audio system gave no device list"
    return names, "" if names else "there is no microphone or other input device"


class InputProbe(QObject):
    """Runs ``probe_inputs`` on a thread and reports on the GUI thread."""

    done = Signal(list, str)

    def start(self) -> None:
        """Probe in the background."""
        threading.Thread(target=lambda: self.done.emit(*probe_inputs()), daemon=True, name="input-probe").start()


class RecordDialog(QDialog):
    """Record a clip, see its level, name it; ``clip()`` is a WAV file's bytes."""

    def __init__(
        self, parent: QWidget | None = None, suggested_name: str = "", inputs: list[str] | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record a voice")
        self._blocks: list = []
        self._level = 0.0
        self._stream = None
        self._started = 0.0
        self._lock = threading.Lock()

        intro = QLabel(
            "Read anything aloud for 10 to 20 seconds in a quiet room, at your usual pace. "
            f"The clip must be longer than {MIN_S:.0f} s and at most {MAX_S:.0f} s.",
            wordWrap=True,
        )
        self.name = QLineEdit(suggested_name, placeholderText="Voice name")
        self.meter = QProgressBar(textVisible=False, maximum=100, maximumHeight=14)
        self.meter.setToolTip("Input level: aim for the upper half without touching the end")
        self.elapsed = QLabel("0.0 s")
        #: Which microphone: the system's default first, then what the probe found.
        self.device = QComboBox(toolTip="The microphone to record from")
        self.device.addItem("System default", None)
        for name in inputs or []:
            self.device.addItem(name, name)
        self.record_button = QPushButton("Record", clicked=self.toggle)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
        self.error = QLabel(wordWrap=True, styleSheet="color:#b42318")

        form = arrange(QFormLayout(), ("Name", self.name), ("Microphone", self.device))
        arrange(form, ("Level", self.meter), ("Length", self.elapsed))
        layout = arrange(QVBoxLayout(self), intro, form)
        layout.addWidget(self.record_button, alignment=Qt.AlignmentFlag.AlignLeft)
        arrange(layout, self.error, self.buttons)
        self._timer = QTimer(self, interval=50, timeout=self._tick)

    def toggle(self) -> None:
        """Start or stop recording."""
        (self._start if self._stream is None else self._stop)()

    def _start(self) -> None:
        import sounddevice as sd

        self._blocks = []
        self.error.clear()
        try:
            self._stream = sd.InputStream(
                samplerate=RATE, channels=1, dtype="float32", callback=self._callback, device=self.device.currentData()
            )
            self._stream.start()
        except Exception as exc:  # PortAudio raises its own error types
            self._stream = None
            self.error.setText(f"Could not open the microphone: {exc}")
            return
        self._started = time.monotonic()
        self.record_button.setText("Stop")
        self._timer.start()

    def _callback(self, indata, frames, when, status) -> None:  # PortAudio's thread
        block = indata[:, 0].copy()
        peak = float(abs(block).max()) if len(block) else 0.0
        with self._lock:
            room = int(MAX_S * RATE) - sum(len(b) for b in self._blocks)
            if room > 0:  # a take stops at the limit, and what reached it is kept
                self._blocks.append(block[:room])
            self._level = peak

    def _stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self._timer.stop()
        self.record_button.setText("Record again")
        self._tick()
        seconds = self.seconds()
        ok = MIN_S < seconds <= MAX_S
        if not ok:
            self.error.setText(
                f"The clip is {seconds:.1f} s long; it must be over {MIN_S:.0f} s and at most {MAX_S:.0f} s."
            )
        elif self.rms_dbfs() < CLIP_SILENCE_RMS_DBFS:
            ok = False
            self.error.setText(
                "Nothing was heard: is the microphone connected, chosen above and not muted? Then record again."
            )
        elif seconds >= MAX_S:
            self.error.setText(f"Recording stopped at the {MAX_S:.0f} s limit; the take is kept.")
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(ok)
        self.meter.setValue(0)

    def _tick(self) -> None:
        with self._lock:
            level = self._level
        db = 20 * math.log10(max(level, 1e-5))
        self.meter.setValue(max(0, min(100, round((db + 60) / 60 * 100))))
        self.elapsed.setText(f"{self.seconds():.1f} s")
        if self._stream is not None and self.seconds() >= MAX_S:
            self._stop()

    def seconds(self) -> float:
        """Length of what was recorded."""
        with self._lock:
            return sum(len(b) for b in self._blocks) / RATE

    def rms_dbfs(self) -> float:
        """Loudness of the take (dBFS): a silent one means no microphone is really there."""
        import numpy as np

        with self._lock:
            audio = np.concatenate(self._blocks) if self._blocks else np.zeros(1, dtype=np.float32)
        return 20 * math.log10(max(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))), 1e-10))

    def clip(self) -> bytes:
        """The recording as WAV bytes (16-bit, 24 kHz, mono)."""
        import numpy as np
        import soundfile as sf

        with self._lock:
            audio = np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)
        buf = io.BytesIO()
        sf.write(buf, audio, RATE, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    def done(self, result: int) -> None:
        """Close the stream whatever way the dialog ends."""
        if self._stream is not None:
            self._stop()
        super().done(result)
