"""One daemon per user; clean exits on request and on signals; crash leftovers reclaimed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.daemons import DaemonProcess


@pytest.fixture
def own() -> DaemonProcess:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def leftovers(proc: DaemonProcess) -> list[str]:
    return sorted(p.name for p in proc.run_dir.iterdir() if p.name != "daemon.lock")


def test_a_second_daemon_exits_with_a_clear_message(own: DaemonProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "chatterbox_tray.daemon", "--engine", "fake"],
        env=own.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 3
    assert f"already running (pid {own.pid})" in second.stderr
    with own.client() as c:  # the first one is untouched
        assert c.status()["state"] == "ready"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_stop_the_daemon_cleanly(own: DaemonProcess, sig: signal.Signals) -> None:
    assert "daemon.json" in leftovers(own)
    own.close_clients()
    own.proc.send_signal(sig)
    assert own.proc.wait(timeout=30) == 0
    assert leftovers(own) == []  # sockets and connection file removed


def test_shutdown_op_stops_the_daemon_cleanly(own: DaemonProcess) -> None:
    with own.client() as c:
        assert c.shutdown()["stopping"] is True
    assert own.proc.wait(timeout=30) == 0
    assert leftovers(own) == []


def test_a_crashed_daemons_socket_and_lock_are_reclaimed(own: DaemonProcess) -> None:
    dead_pid = own.pid
    own.proc.send_signal(signal.SIGKILL)
    own.proc.wait(timeout=30)
    assert {"daemon.json", "req.sock"} <= set(leftovers(own))  # what a crash leaves behind
    own.start()
    assert own.pid != dead_pid
    with own.client() as c:
        assert c.hello()["pid"] == own.pid
        assert c.status()["state"] == "ready"
    assert os.stat(own.run_dir).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("how", ["shutdown", "SIGTERM"])
def test_every_job_ends_saying_the_daemon_is_shutting_down(clips, how: str) -> None:
    """The running job too, not only the queued ones (it used to get "the job was cancelled")."""
    from chatterbox_tray.ipc.protocol import ProtocolError

    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "2.0"}).start()
    try:
        with proc.client(timeout=60.0) as a, proc.client(timeout=60.0) as b, proc.client() as c:
            a.voices_add("sd", data=clips.new())
            running = a.synthesize("One. Two. Three.", voice="sd")
            queued = b.synthesize("Waiting behind it.", voice="sd")
            assert running.job is None
            for msg in a.replies(running.req_id, 30.0):  # until the worker has it
                if msg.header["kind"] == "progress" and msg.header["progress"]["state"] == "running":
                    break
            if how == "shutdown":
                c.shutdown()
            else:
                proc.proc.send_signal(signal.SIGTERM)
            for synthesis in (running, queued):
                with pytest.raises(ProtocolError) as err:
                    synthesis.collect()
                assert err.value.code == "cancelled"
                assert err.value.message == "the daemon is shutting down"
        assert proc.proc.wait(timeout=30) == 0
    finally:
        proc.cleanup()
