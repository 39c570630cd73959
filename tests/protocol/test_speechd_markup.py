"""`speechd install --markup` on the real speech-dispatcher: a pause reaches the daemon, and uninstall undoes it.

A private speech-dispatcher (tests/protocol/test_speechd.py's `Speechd`),
first as installed without --markup: its symbol pre-processing makes "[" and
"]" spaces. Then `chatterbox-tray speechd install --markup`, as a user runs
it: it writes SymbolsPreproc "no" and asks the running server to reload (its
pid file in the private runtime folder), and the next message keeps its
brackets: the pause is silence of the asked length. `speechd uninstall`
takes it away again. Skipped where speech-dispatcher is not installed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.protocol.test_speechd import CLI, Speechd, needs_speechd
from tests.support.daemons import Clips, DaemonProcess, EventLog, narrated_daemon
from tests.support.dotconf import directive

SR = 24_000
TEXT = "Run now. [pause 2s] Done."


@pytest.fixture(scope="module")
def markup_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    with narrated_daemon(clips) as proc:
        yield proc


def run_cli(sd: Speechd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=sd.env, capture_output=True, text=True, timeout=60)


def say_and_wait(sd: Speechd, daemon: DaemonProcess) -> tuple[dict, dict]:
    """Speak TEXT through speechd; the daemon's queued event and its end."""
    with daemon.client() as c, daemon.events(("job", "voices")) as stream:
        log = EventLog(stream)
        log.sync(c)
        sd.module_say("-w", TEXT)
        queued = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)
        end = log.wait_job(queued["job"], "finished", "cancelled", "failed", timeout=30)
    assert end["event"] == "finished", end
    return queued, end


def say_once_reloaded(sd: Speechd, daemon: DaemonProcess) -> tuple[dict, dict, np.ndarray]:
    """Speak TEXT once speech-dispatcher has read its configuration again.

    It reloads on SIGHUP in its own time: a message sent just before may
    still lose its brackets, so try again for a while (what was played is
    returned for the last try only).
    """
    deadline = time.monotonic() + 20
    while True:
        before = daemon.played_settled(most_s=2.0)  # the last try's tail is not counted as this one's
        queued, end = say_and_wait(sd, daemon)
        if "[pause" in queued["text"] or time.monotonic() > deadline:
            return queued, end, daemon.played()[before:]
        time.sleep(0.5)


@needs_speechd
def test_install_markup_lets_a_pause_through_and_uninstall_takes_it_away(markup_daemon: DaemonProcess) -> None:
    sd = Speechd(markup_daemon)
    try:
        assert sd.install.returncode == 0, sd.install.stderr
        queued, _ = say_and_wait(sd, markup_daemon)
        assert "[pause" not in queued["text"]  # speechd's defaults: the brackets became spaces

        out = run_cli(sd, "speechd", "install", "--markup")
        assert out.returncode == 0, out.stderr
        assert 'SymbolsPreproc "no" is in' in out.stdout and "other voices" in out.stdout
        assert "asked the running speech-dispatcher" in out.stdout  # the server found by its pid file
        assert directive(sd.user_conf.read_text(), "SymbolsPreproc") == ['SymbolsPreproc "no"']
        queued, end, played = say_once_reloaded(sd, markup_daemon)
        assert "[pause 2s]" in queued["text"], queued["text"] + sd.logs()
        assert end["summary"]["chunks"] == 3
        loud = np.flatnonzero(np.abs(played) > 1e-3)
        assert np.diff(loud).max() / SR == pytest.approx(2.0, abs=0.1)  # the pause, heard

        out = run_cli(sd, "speechd", "install")  # again, as after adding a voice: --markup stays
        assert out.returncode == 0 and 'SymbolsPreproc "no" is in' in out.stdout, out.stdout + out.stderr

        out = run_cli(sd, "speechd", "uninstall")
        assert out.returncode == 0, out.stderr
        assert sd.user_conf.read_text() == sd.user_text
    finally:
        sd.close()
