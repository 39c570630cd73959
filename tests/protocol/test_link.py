"""The Qt-free daemon link (ipc/link.py) against a real fake-engine daemon, in a plain thread.

The tray app runs the same loop in a QThread (tests/gui); here nothing but
the link and a recording sink, so a failure points at the link itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.link import CONNECTED, DaemonLink
from tests.support.daemons import DaemonProcess, short_home, voiced_tone


class Recorder:
    """A LinkSink that keeps every call, in order, for the test thread to search."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._cond = threading.Condition()

    def _put(self, kind: str, *args: Any) -> None:
        with self._cond:
            self.calls.append((kind, args))
            self._cond.notify_all()

    def on_link(self, state: str, detail: str) -> None:
        self._put("link", state, detail)

    def on_connected(self, info: Any, hello: dict[str, Any], status: dict[str, Any]) -> None:
        self._put("connected", info, hello, status)

    def on_event(self, topic: str, data: dict[str, Any]) -> None:
        self._put("event", topic, data)

    def on_message(self, req_id: str, header: dict[str, Any], buffers: list[bytes]) -> None:
        self._put("message", req_id, header, buffers)

    def on_gap(self) -> None:
        self._put("gap")

    def all(self, kind: str, where: Any = None) -> list[tuple[Any, ...]]:
        """Every call of ``kind`` so far (for which ``where(args)`` holds), in order."""
        with self._cond:
            return [args for got, args in self.calls if got == kind and (where is None or where(args))]

    def find(self, kind: str, where: Any = None, timeout: float = 30.0) -> tuple[Any, ...]:
        """The first call of ``kind`` (for which ``where(args)`` holds), waiting for it."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.all(kind, where), timeout), f"no {kind} call: {self.calls}"
        return self.all(kind, where)[0]


@pytest.fixture
def running(daemon: DaemonProcess) -> Iterator[tuple[DaemonLink, Recorder]]:
    sink = Recorder()
    link = DaemonLink(sink, daemon.connection_path, autostart=False, daemon_args=[])
    thread = threading.Thread(target=link.run, name="link-test", daemon=True)
    thread.start()
    try:
        yield link, sink
    finally:
        link.stop()
        thread.join(10)
        assert not thread.is_alive()
        link.dispose()


def test_the_link_connects_answers_requests_and_forwards_events(
    running: tuple[DaemonLink, Recorder], daemon: DaemonProcess
) -> None:
    link, sink = running
    assert sink.find("link", where=lambda a: a[0] == CONNECTED)[1] == f"daemon pid {daemon.pid}"
    info, hello, status = sink.find("connected")
    assert info.pid == daemon.pid and "status" in hello.ops and status.state
    req_id = link.core.new_id()
    link.submit(("req", req_id, rq.status(), 10.0))
    _, header, _ = sink.find("message", where=lambda a: a[0] == req_id)
    assert header["kind"] == "result" and header["result"]["state"] in ("loading", "warming_up", "ready")
    # A stream: its non-final replies, then the final one; its job's events name the request.
    synth_id = link.core.new_id()
    link.submit(("req", synth_id, rq.synthesize("Hello from the link.", voice_data=voiced_tone(6.0)), 30.0))
    sink.find("message", where=lambda a: a[0] == synth_id and a[1]["kind"] in ("result", "error"))
    replies = sink.all("message", where=lambda a: a[0] == synth_id)
    kinds = [header["kind"] for _, header, _ in replies]
    assert kinds[0] == "accepted" and kinds[-1] == "result" and "chunk" in kinds, kinds
    assert all(buffers and buffers[0] for _, header, buffers in replies if header["kind"] == "chunk")
    job = replies[0][1]["job"]
    _, data = sink.find("event", where=lambda a: a[0] == "job" and a[1].get("request") == synth_id)
    assert data["job"] == job


def test_daemon_errors_come_back_as_error_replies(running: tuple[DaemonLink, Recorder]) -> None:
    link, sink = running
    sink.find("connected")
    req_id = link.core.new_id()
    link.submit(("req", req_id, rq.voices_remove("no such voice at all"), 10.0))
    _, header, _ = sink.find("message", where=lambda a: a[0] == req_id)
    assert header["kind"] == "error" and header["error"]["code"] == "unknown_voice"


def test_without_a_daemon_requests_fail_at_once_and_stop_is_prompt() -> None:
    sink = Recorder()
    link = DaemonLink(sink, short_home() / "run" / "daemon.json", autostart=False, daemon_args=[])
    thread = threading.Thread(target=link.run, name="link-test-none", daemon=True)
    thread.start()
    try:
        assert sink.find("link")[0] == "connecting"
        req_id = link.core.new_id()
        link.submit(("req", req_id, rq.status(), 10.0))
        _, header, _ = sink.find("message", where=lambda a: a[0] == req_id, timeout=10.0)
        assert header["error"]["code"] == "unavailable"
    finally:
        link.stop()
        thread.join(10)
    assert not thread.is_alive()
    link.dispose()
