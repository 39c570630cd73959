"""Fixtures for the bridges: fake-engine daemons on real sockets, bridges on free ports.

The bridges' tests start their own daemons, because they set a default voice
and add voices that the shared daemon's tests must not see. A bridge runs in
this process on port 0 (a free port), talking to the daemon through its
connection file exactly as ``python -m chatterbox_tray.bridges`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chatterbox_tray.bridges.openai_server import BridgeServer, Config
from chatterbox_tray.bridges.upstream import DaemonClients
from tests.support.daemons import Clips, DaemonProcess

#: Per-chunk delay of the slow daemon: long enough that a stream's first bytes
#: are plainly before its job's end, short enough for a quick test.
SLOW_CHUNK_S = 0.4


@dataclass
class Library:
    """A daemon with voices: ``default`` is the default voice, ``other`` another one."""

    daemon: DaemonProcess
    default: str = "Narrator"
    other: str = "Ann"
    extra: dict[str, Any] = field(default_factory=dict)


def _library(daemon: DaemonProcess, clips: Clips) -> Library:
    lib = Library(daemon)
    with daemon.client() as client:
        client.voices_add(lib.default, data=clips.new())
        client.voices_add(lib.other, data=clips.new())
        client.voices_default(lib.default)
    return lib


@pytest.fixture(scope="session")
def lib(clips: Clips) -> Iterator[Library]:
    """A fake-engine daemon of our own with two voices, one of them the default."""
    proc = DaemonProcess().start()
    yield _library(proc, clips)
    proc.cleanup()


@pytest.fixture(scope="session")
def slow_lib(clips: Clips) -> Iterator[Library]:
    """The same with every chunk taking SLOW_CHUNK_S."""
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": str(SLOW_CHUNK_S)}).start()
    yield _library(proc, clips)
    proc.cleanup()


class RunningBridge:
    """An OpenAI bridge serving in a thread of this process."""

    def __init__(self, config: Config) -> None:
        self.server = BridgeServer(config)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def start_bridge(daemon: DaemonProcess, **kwargs: Any) -> RunningBridge:
    """A bridge for ``daemon`` on a free loopback port; kwargs go to Config."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("voice_table", daemon.home / "openai-voices.json")
    return RunningBridge(Config(connection=daemon.connection_path, **kwargs))


@pytest.fixture
def bridge(lib: Library) -> Iterator[RunningBridge]:
    """An OpenAI bridge without a key for the ``lib`` daemon."""
    running = start_bridge(lib.daemon)
    yield running
    running.stop()


class RunningWyoming:
    """A Wyoming bridge serving on its own event loop in a thread.

    ``asyncio.run`` owns the loop, so stopping cancels every task and waits for
    the worker threads, as when the command gets SIGTERM.
    """

    def __init__(self, connection: Path) -> None:
        from chatterbox_tray.bridges.wyoming_server import run

        self.port = 0
        self._ready = threading.Event()

        def started(server: Any) -> None:
            self.port = server._server.sockets[0].getsockname()[1]
            self._ready.set()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            with contextlib.suppress(asyncio.CancelledError):
                await run("tcp://127.0.0.1:0", DaemonClients(connection), started)

        self.thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self.thread.start()
        assert self._ready.wait(10), "the Wyoming bridge did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(10)
