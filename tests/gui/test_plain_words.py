"""The model's failures in our words (issue 23 §4): each kind of reason gets its sentence."""

from __future__ import annotations

import pytest

from chatterbox_tray.gui.plain_words import GENERIC, plain_failure


@pytest.mark.parametrize(
    ("reason", "start"),
    [
        (
            "checkpoint folder /m lacks s3gen_meanflow.safetensors (the turbo model needs ve.safetensors, "
            "s3gen_meanflow.safetensors)",
            "The chosen folder does not hold all of the model's files",
        ),
        ("could not load the turbo weights: … Got: ConnectError: [Errno -2] … try again..", "The model could not be"),
        ("cannot reach the Hugging Face hub for ResembleAI/chatterbox-turbo: timed out", "The model could not be"),
        (
            "the download of the weights failed at t3.safetensors (1.2 GiB of 3.0 GiB done): reset by peer",
            "The download of the model stopped part way",
        ),
        ("out of GPU memory loading the model on cuda: CUDA out of memory", "There is not enough memory"),
        ("the weights do not fit the model: size mismatch for tfmr", "The files found are not this model's"),
        ("chatterbox could not be imported: No module named 'perth'", "Chatterbox, the speech library"),
        ("RuntimeError: something nobody foresaw", GENERIC),
        ("", GENERIC),
    ],
)
def test_each_reason_is_said_plainly(reason: str, start: str) -> None:
    words = plain_failure(reason)
    assert words.startswith(start), words
    assert "Errno" not in words and "Error:" not in words and ".." not in words
