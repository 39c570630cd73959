"""A progress bar for long exports on a terminal (``say -o book.flac < chapter.txt``).

A chapter takes minutes on a CPU; without a bar the terminal shows nothing
until the end. The bar is tqdm's (a maintained library, already installed
with chatterbox and huggingface_hub; docs/decisions.md says why not rich):
sentences done out of the total, seconds of audio made, time spent and
time left. tqdm is imported only when a bar is shown, so every other
command starts without it.

Shown only where a person watches: stderr is a terminal, and neither
``--quiet`` nor ``--json`` was given. Pipes and log files get no bar.
"""

from __future__ import annotations

import sys
from typing import Any


def wanted(*, quiet: bool = False) -> bool:
    """Whether a bar should be drawn on stderr."""
    if quiet or sys.stderr is None:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class ExportProgress:
    """Sentences made of ``total``, audio seconds and time left, on one terminal line."""

    #: ``{remaining}`` is tqdm's estimate from the sentences' rate so far;
    #: tqdm puts ", " before a non-empty ``{postfix}`` (the audio seconds).
    FORMAT = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} sentences{postfix} [{elapsed} spent, {remaining} left]"

    def __init__(self, total: int, what: str = "") -> None:
        from tqdm import tqdm

        self.audio_s = 0.0
        self._bar: Any = tqdm(
            total=max(int(total), 0),
            desc=what or None,
            file=sys.stderr,
            bar_format=("{desc}: " if what else "") + self.FORMAT,
            dynamic_ncols=True,
            leave=True,
            # The daemon sets TQDM_DISABLE for its own log; a terminal we draw on wants the bar.
            disable=False,
            mininterval=0.2,
            postfix=self._audio_text(),
        )

    def add_audio(self, seconds: float, sentence_done: bool) -> None:
        """Count a piece of audio; a finished sentence moves the bar on."""
        self.audio_s += max(float(seconds), 0.0)
        self._bar.set_postfix_str(self._audio_text(), refresh=not sentence_done)
        if sentence_done:
            self._bar.update(1)

    def write(self, line: str) -> None:
        """Print a line above the bar (``--verbose``'s sentences) without breaking it."""
        self._bar.write(line, file=self._bar.fp)

    def close(self) -> None:
        """Leave the bar as it ended, on its own line."""
        self._bar.close()

    def _audio_text(self) -> str:
        return f"{self.audio_s:.1f} s of audio"
