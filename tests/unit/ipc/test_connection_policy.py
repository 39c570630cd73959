"""ipc/core.py's DaemonFinder, the one connection policy, and the "play here" pieces every client shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatterbox_tray.ipc import endpoints, spawn
from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.client import Chunk
from chatterbox_tray.ipc.core import DaemonFinder, DaemonUnavailable
from chatterbox_tray.ipc.messages import ChunkReply
from chatterbox_tray.ipc.protocol import PROTOCOL_VERSION, ProtocolError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.HOME_ENV, str(tmp_path))
    return tmp_path


def _write(pid: int, protocol: int = PROTOCOL_VERSION) -> Path:
    info = endpoints.ConnectionInfo("ipc://req", "ipc://ev", "ab" * 32, pid, protocol)
    endpoints.connection_file().parent.mkdir(parents=True, exist_ok=True)
    return endpoints.write_connection(info)


def test_a_live_daemon_of_our_protocol_is_found_and_a_dead_one_is_not(home: Path) -> None:
    assert DaemonFinder().find() is None  # no connection file
    _write(os.getpid())
    assert DaemonFinder().find().pid == os.getpid()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _write(int(dead.stdout))
    assert DaemonFinder().find() is None


def test_another_protocol_version_is_refused_with_which_side_to_update(home: Path) -> None:
    _write(os.getpid(), protocol=PROTOCOL_VERSION + 1)
    with pytest.raises(DaemonUnavailable, match="update the client"):
        DaemonFinder().find()
    _write(os.getpid(), protocol=PROTOCOL_VERSION - 1)
    with pytest.raises(DaemonUnavailable, match="update the daemon"):
        DaemonFinder().find()


@pytest.mark.parametrize(("status", "refused"), [(1, True), (3, False), (0, False)])
def test_a_started_daemon_that_exits_is_reported_unless_another_won_the_race(
    home: Path, monkeypatch: pytest.MonkeyPatch, status: int, refused: bool
) -> None:
    started = []
    monkeypatch.setattr(
        spawn,
        "spawn_daemon",
        lambda args: started.append(args) or subprocess.Popen([sys.executable, "-c", f"exit({status})"]),
    )
    finder = DaemonFinder(autostart=True, daemon_args=["--engine", "fake"])
    assert finder.start() and started == [["--engine", "fake"]]
    assert not finder.start()  # one at a time, and at most once every AUTOSTART_EVERY_S
    finder._started.wait()
    if refused:
        with pytest.raises(DaemonUnavailable, match=f"exited with status {status}:\n.*daemon.log"):
            finder.find()
        finder.retry()
        assert finder.start()
    else:
        assert finder.find() is None and not finder.start()


def test_a_remote_or_unstarted_daemon_is_never_started(home: Path) -> None:
    assert not DaemonFinder().start()  # autostart off
    assert not DaemonFinder("gpu-box", autostart=True).start()
    with pytest.raises(DaemonUnavailable, match="gpu-box"):
        DaemonFinder("gpu-box").find()  # never paired: the pairing's own words


def test_play_here_keeps_what_only_a_speaker_uses() -> None:
    speak = rq.speak("Hello there.", voice="Ann", priority="quick", volume=0.5, options={"seed": 3}, rate=1.5)
    here = rq.PlayHere.of(speak)
    assert here.synthesize.op == "synthesize" and here.synthesize.stream
    assert here.synthesize.args == {"text": "Hello there.", "voice": "Ann", "options": {"seed": 3}, "rate": 1.5}
    assert (here.priority, here.gain, here.chars) == ("quick", 0.5, 12)
    assert (rq.PlayHere.of(rq.speak("Hi.")).priority, rq.PlayHere.of(rq.speak("Hi.")).gain) == ("text", 1.0)


def test_a_chunk_reply_becomes_a_chunk() -> None:
    import numpy as np

    samples = np.arange(4, dtype="<f4")
    header = {"kind": "chunk", "index": 2, "sample_rate": 24000, "samples": 4, "text": "Hi.", "span": [4, 7]}
    header.update(tokens=5, budget=50, piece=1)
    chunk = Chunk.from_reply(ChunkReply.from_header(header, [samples.tobytes()]))
    assert (chunk.index, chunk.sample_rate, chunk.text, chunk.span, chunk.piece, chunk.final) == (
        2,
        24000,
        "Hi.",
        (4, 7),
        1,
        True,
    )
    assert list(chunk.samples) == [0, 1, 2, 3]
    with pytest.raises(ProtocolError, match="without audio"):
        Chunk.from_reply(ChunkReply.from_header(header, []))


def test_connect_reports_a_daemon_that_runs_but_does_not_answer(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatterbox_tray.ipc.client import connect

    endpoints.connection_file().parent.mkdir(parents=True, exist_ok=True)
    silent = endpoints.ConnectionInfo(f"ipc://{home}/nobody.sock", f"ipc://{home}/ev.sock", "ab" * 32, os.getpid())
    endpoints.write_connection(silent)
    with pytest.raises(DaemonUnavailable, match="no daemon is running"):
        connect(autostart=False, daemon="local")
    # The daemon started here finds the lock taken (status 3): the one that holds it is named.
    monkeypatch.setattr(spawn, "spawn_daemon", lambda args: subprocess.Popen([sys.executable, "-c", "exit(3)"]))
    with pytest.raises(DaemonUnavailable, match=rf"the daemon \(pid {os.getpid()}\) did not answer within 1.5 s"):
        connect(daemon="local", start_timeout=20)
