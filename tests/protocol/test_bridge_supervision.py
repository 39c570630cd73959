"""The daemon runs the bridges when told (settings ``bridge_openai``, ``bridge_wyoming``; daemon/bridge_supervisor.py).

A fake-engine daemon of the test's own; the bridges are the real ones, as
the daemon's child processes, reached with plain HTTP and the ``wyoming``
package's own client on free loopback ports.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import DaemonProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def models(port: int) -> list[str] | None:
    """The model ids GET /v1/models lists, or None while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as resp:
            return [m["id"] for m in json.loads(resp.read())["data"]]
    except (urllib.error.URLError, ConnectionError, OSError, http.client.HTTPException):
        return None  # HTTPException: a bridge stopped while it answered (IncompleteRead)


def bridge(client: Client, name: str) -> dict[str, Any]:
    return client.stats()["bridges"].get(name) or {}


@pytest.fixture
def sup_daemon() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def test_the_openai_setting_starts_restarts_and_stops_the_endpoint(sup_daemon: DaemonProcess) -> None:
    port = free_port()
    with sup_daemon.client() as c:
        assert c.stats()["bridges"] == {}
        c.settings_set(bridge_openai=True, bridge_openai_port=port)
        assert "tts-1" in until(lambda: models(port), what="the endpoint to answer")
        first = bridge(c, "openai")
        assert first["running"] and first["restarts"] == 0
        child = psutil.Process(first["pid"])
        assert child.ppid() == sup_daemon.proc.pid
        assert "--no-start" in child.cmdline() and str(sup_daemon.connection_path) in child.cmdline()

        # It dies: the daemon starts it again, and it answers again.
        os.kill(first["pid"], signal.SIGKILL)
        again = until(lambda: (b := bridge(c, "openai")).get("restarts") == 1 and b["running"] and b, what="a restart")
        assert again["pid"] != first["pid"] and again["last_exit"] == -signal.SIGKILL
        until(lambda: models(port), what="the restarted endpoint to answer")

        # Off: the process ends and the port no longer answers.
        c.settings_set(bridge_openai=False)
        until(lambda: not psutil.pid_exists(again["pid"]) or psutil.Process(again["pid"]).status() == "zombie")
        until(lambda: models(port) is None, what="the endpoint to go")
        assert c.stats()["bridges"] == {}


def test_bad_bridge_settings_are_refused_in_plain_words(sup_daemon: DaemonProcess) -> None:
    with sup_daemon.client() as c:
        for values, words in (
            ({"bridge_openai_port": 0}, "bridge_openai_port must be a port number from 1 to 65535"),
            ({"bridge_openai_port": 70000}, "bridge_openai_port must be a port number from 1 to 65535"),
            ({"bridge_wyoming_uri": "10200"}, "bridge_wyoming_uri must start with tcp://"),
            ({"bridge_openai": "yes"}, "bridge_openai must be bool"),
        ):
            with pytest.raises(ProtocolError) as info:
                c.settings_set(**values)
            assert info.value.code == "bad_args" and words in info.value.message


async def describe(port: int) -> Info | None:
    try:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            while (event := await asyncio.wait_for(client.read_event(), 10)) is not None:
                if Info.is_type(event.type):
                    return Info.from_event(event)
    except (OSError, asyncio.TimeoutError):
        return None
    return None


def test_the_wyoming_setting_runs_the_server_with_the_daemon_and_across_restarts(sup_daemon: DaemonProcess) -> None:
    port = free_port()
    with sup_daemon.client() as c:
        c.settings_set(bridge_wyoming=True, bridge_wyoming_uri=f"tcp://127.0.0.1:{port}")
        info = until(lambda: asyncio.run(describe(port)), what="the Wyoming server to answer")
        assert info.tts and info.tts[0].installed
        pid = bridge(c, "wyoming")["pid"]
    # The daemon's shutdown stops it...
    sup_daemon.stop()
    until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", what="the bridge to end")
    assert asyncio.run(describe(port)) is None
    # ...and the saved setting brings it back with the next daemon.
    sup_daemon.start()
    until(lambda: asyncio.run(describe(port)), what="the Wyoming server to come back")
    with sup_daemon.client() as c:
        assert bridge(c, "wyoming")["pid"] != pid
        c.settings_set(bridge_wyoming=False)
    until(lambda: asyncio.run(describe(port)) is None, what="the Wyoming server to go")
