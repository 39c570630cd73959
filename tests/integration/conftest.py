"""The real daemon for the integration tests: one per module, on its own home.

Each module gets its own daemon (module scope), so pytest-xdist can run two
modules' real daemons on two workers at once, and a module's restarts
exercise the disk tier of its own cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatterbox_tray.ipc.client import Client
from tests.support.checkpoint import ensure_checkpoint, loader_env
from tests.support.daemons import DaemonProcess
from tests.support.realdaemon import START_S, TOKENS


@pytest.fixture(scope="module")
def real() -> Iterator[DaemonProcess]:
    """A real daemon (original variant, test checkpoint), restartable on the same home."""
    ckpt = ensure_checkpoint("original")
    proc = DaemonProcess(
        args=("--checkpoint", str(ckpt), "--device", "cpu", "--max-tokens-per-chunk", str(TOKENS)),
        env=loader_env(ckpt),
    )
    proc.start(timeout=START_S)
    yield proc
    proc.cleanup()


@pytest.fixture
def rc(real: DaemonProcess) -> Iterator[Client]:
    """A client of the real daemon with a timeout that suits CPU synthesis."""
    with real.client(timeout=120.0) as c:
        yield c
