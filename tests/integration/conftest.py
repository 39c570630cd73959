"""The real daemon for the integration tests: one per module, on its own home.

Each module gets its own daemon (module scope), so pytest-xdist can run two
modules' real daemons on two workers at once, and a module's restarts
exercise the disk tier of its own cache.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatterbox_tray.ipc.client import Client
from tests.support.checkpoint import ensure_checkpoint, loader_env
from tests.support.daemons import Clips, DaemonProcess
from tests.support.realdaemon import START_S, TOKENS


@pytest.fixture(scope="module", autouse=True)
def _give_the_memory_back() -> Iterator[None]:
    """After each module, free the models it loaded in this worker and hand the pages back.

    A worker runs several real-model modules in turn (tests/conftest.py's
    lanes). Models hold reference cycles, so they wait for a full collection,
    and glibc keeps freed heap pages unless asked: without both, a worker kept
    7 GB after ``test_fast_t3`` while it ran the next module's daemon.
    """
    yield
    gc.collect()
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@pytest.fixture(scope="module")
def real(request: pytest.FixtureRequest) -> Iterator[DaemonProcess]:
    """A real daemon (original variant, test checkpoint), restartable on the same home.

    It warms up at every start, as a user's daemon does, unless the module
    sets ``WARM_UP = False`` (one that restarts its daemon several times and
    tests something else). A module's ``DAEMON_ENV`` is added to its environment.
    """
    ckpt = ensure_checkpoint("original")
    warm_up = () if getattr(request.module, "WARM_UP", True) else ("--no-warmup",)
    proc = DaemonProcess(
        args=("--checkpoint", str(ckpt), "--device", "cpu", "--max-tokens-per-chunk", str(TOKENS), *warm_up),
        env={**loader_env(ckpt), **getattr(request.module, "DAEMON_ENV", {})},
    )
    proc.start(timeout=START_S)
    yield proc
    proc.cleanup()


@pytest.fixture
def rc(real: DaemonProcess) -> Iterator[Client]:
    """A client of the real daemon with a timeout that suits CPU synthesis."""
    with real.client(timeout=120.0) as c:
        yield c


@pytest.fixture(scope="session")
def clips() -> Iterator[Clips]:
    """Reference clips cut to 5.5 s: every real synthesis runs S3Gen over the whole reference."""
    folder = Path(tempfile.mkdtemp(prefix="cbtclips", dir="/tmp"))
    yield Clips(folder, seconds=5.5)
    shutil.rmtree(folder, ignore_errors=True)
