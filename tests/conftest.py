"""Shared fixtures: fake-engine daemons on real ZeroMQ sockets, clients, clips.

A daemon costs a few seconds to start (the conditionals cache imports torch),
so the plain one is shared by the whole session and tests keep to their own
voices and clips (``uid()`` names, ``clips.new()`` bytes). Tests that need a
slow, failing or killed daemon start their own. When a test fails, the logs of
the daemons it used are added to its report.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatterbox_tray.ipc.client import Client
from tests.support.daemons import STARTED, Clips, DaemonProcess

#: Per-chunk delay of the slow daemon: long enough that a job is still running
#: when a test acts on it, short enough to keep the suite fast.
SLOW_CHUNK_S = 0.25

_FIRST_DAEMON = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_FIRST_DAEMON] = len(STARTED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        used = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, DaemonProcess)]
        used += STARTED[item.stash.get(_FIRST_DAEMON, len(STARTED)) :]
        for daemon in dict.fromkeys(used):
            report.sections.append((f"daemon log {daemon.log_path}", daemon.log_text()))
    return report


@pytest.fixture(scope="session", autouse=True)
def _reap_daemons() -> Iterator[None]:
    """Safety net: no daemon outlives the session, whatever a test did."""
    yield
    for daemon in STARTED:
        if daemon.alive:
            daemon.kill()


@pytest.fixture(scope="session")
def daemon() -> Iterator[DaemonProcess]:
    """The shared daemon: fake engine, original variant, no delays."""
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="session")
def slow_daemon() -> Iterator[DaemonProcess]:
    """A multilingual fake whose every chunk takes SLOW_CHUNK_S (queue and cancel tests)."""
    proc = DaemonProcess(
        args=("--engine", "fake", "--variant", "multilingual"),
        env={"CHATTERBOX_TRAY_FAKE_DELAY": str(SLOW_CHUNK_S)},
    ).start()
    yield proc
    proc.cleanup()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[Client]:
    """A client of the shared daemon."""
    with daemon.client() as c:
        yield c


@pytest.fixture(scope="session")
def clips() -> Iterator[Clips]:
    """Reference clips (espeak-ng speech, else voiced tones) and a folder to save them."""
    folder = Path(tempfile.mkdtemp(prefix="cbtclips", dir="/tmp"))
    yield Clips(folder)
    shutil.rmtree(folder, ignore_errors=True)
