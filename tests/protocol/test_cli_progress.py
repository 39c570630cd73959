"""``say -o book.flac < chapter.txt`` shows a progress bar on a terminal (issue 12, section 7).

The CLI runs as a subprocess against the shared fake daemon, its stderr on a
real pseudo-terminal (what a person's shell gives it), stdin a chapter from
a file. The bar must say how many sentences of how many are made, how many
seconds of audio, and the time left; ``--quiet`` silences it, and so does
stderr being a pipe.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import soundfile as sf

from tests.support.daemons import Clips, DaemonProcess, uid

CHAPTER = " ".join(f"This is sentence number {n} of the chapter." for n in range(1, 7)) + "\n"
SENTENCES = 6
EXE = Path(sys.executable).with_name("chatterbox-tray")


def run_on_a_terminal(daemon: DaemonProcess, chapter: Path, *args: str) -> tuple[int, str]:
    """Run ``chatterbox-tray ARGS < chapter`` with stderr on a pty; return (status, what the pty showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "chatterbox_tray.cli.main"]
    with open(chapter, "rb") as stdin:
        proc = subprocess.Popen([*command, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=slave, env=daemon.env())
    os.close(slave)
    shown = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        shown += data
    os.close(master)
    proc.stdout.close()
    return proc.wait(timeout=60), shown.decode("utf-8", "replace")


def voice(daemon: DaemonProcess, clips: Clips) -> str:
    with daemon.client() as c:
        return c.voices_add(uid("bar"), data=clips.new())["name"]


def test_an_export_on_a_terminal_shows_sentences_audio_and_time_left(
    daemon: DaemonProcess, clips: Clips, tmp_path: Path
) -> None:
    name = voice(daemon, clips)
    chapter = tmp_path / "chapter.txt"
    chapter.write_text(CHAPTER, encoding="utf-8")
    book = tmp_path / "book.flac"
    status, shown = run_on_a_terminal(daemon, chapter, "say", "-v", name, "-o", str(book))
    assert status == 0, shown
    audio_s = sf.info(str(book)).duration
    # Every state the bar was drawn in, as the terminal received them.
    states = re.findall(r"(\d+)/(\d+) sentences, ([\d.]+) s of audio \[([^\]]*) spent, ([^\]]*) left\]", shown)
    assert states, shown
    assert all(int(total) == SENTENCES for _done, total, *_ in states)
    assert states[0][0] == "0" and states[-1][0] == str(SENTENCES)
    assert float(states[-1][2]) == round(audio_s, 1)
    done = [int(d) for d, *_ in states]
    assert done == sorted(done), "the bar never goes back"
    assert "book.flac: 100%" in shown
    assert f"-> {book}" in shown  # the summary line after it


def test_quiet_and_pipes_get_no_bar(daemon: DaemonProcess, clips: Clips, tmp_path: Path) -> None:
    name = voice(daemon, clips)
    chapter = tmp_path / "chapter.txt"
    chapter.write_text(CHAPTER, encoding="utf-8")
    status, shown = run_on_a_terminal(daemon, chapter, "say", "--quiet", "-v", name, "-o", str(tmp_path / "q.flac"))
    assert status == 0, shown
    assert shown == "", "--quiet prints nothing on success"
    assert sf.info(str(tmp_path / "q.flac")).duration > 0

    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "chatterbox_tray.cli.main"]
    with open(chapter, "rb") as stdin:
        piped = subprocess.run(
            [*command, "say", "-v", name, "-o", str(tmp_path / "p.flac")],
            stdin=stdin,
            capture_output=True,
            env=daemon.env(),
            timeout=60,
        )
    assert piped.returncode == 0, piped.stderr
    stderr = piped.stderr.decode()
    assert "sentences" not in stderr and "\r" not in stderr
    assert "-> " in stderr  # the summary line is still there for logs
