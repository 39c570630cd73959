"""The recorder dialog: a take that reaches the limit is kept, a silent take is refused, a microphone picker.

PortAudio's callback is fed directly: the test machine has no microphone, and
what is under test is what the dialog does with the blocks it gets.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from PySide6.QtWidgets import QDialogButtonBox

from chatterbox_tray.gui.recorder import MAX_S, RATE, RecordDialog


class _Stream:
    def stop(self) -> None: ...

    def close(self) -> None: ...


def _take(qtbot, seconds: float, amplitude: float = 0.3, inputs=None) -> RecordDialog:
    dialog = RecordDialog(None, "Mine", inputs=inputs)
    qtbot.addWidget(dialog)
    dialog._stream = _Stream()  # as if recording
    block = (amplitude * np.sin(np.arange(RATE // 10) / 7)).astype("float32")[:, None]
    for _ in range(round(seconds * 10)):
        dialog._callback(block, len(block), None, None)
    dialog._tick()  # the timer stops the take at the limit
    if dialog._stream is not None:
        dialog._stop()
    return dialog


def test_a_take_that_reaches_the_limit_is_kept(qtbot):
    dialog = _take(qtbot, MAX_S + 4.7)
    assert dialog.seconds() == MAX_S
    assert dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
    assert "kept" in dialog.error.text()
    audio, rate = sf.read(io.BytesIO(dialog.clip()))
    assert rate == RATE and len(audio) == MAX_S * RATE


def test_a_silent_take_is_refused_and_the_microphone_can_be_chosen(qtbot):
    dialog = _take(qtbot, 10, amplitude=0.0, inputs=["USB mic", "Webcam"])
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
    assert "Nothing was heard" in dialog.error.text()
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == ["System default", "USB mic", "Webcam"]
    assert _take(qtbot, 10).buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()


def test_record_is_off_without_a_microphone(qtbot, tray_app):
    page = tray_app.window.voices
    page._inputs_found([], "there is no microphone or other input device")
    assert not page.record_button.isEnabled()
    assert "no microphone" in page.record_button.toolTip()
    page._inputs_found(["USB mic"], "")
    assert page.record_button.isEnabled()
