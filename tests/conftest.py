"""Shared fixtures: fake-engine daemons on real ZeroMQ sockets, clients, clips.

A daemon costs a few seconds to start (the conditionals cache imports torch),
so the plain one is shared by the whole session and tests keep to their own
voices and clips (``uid()`` names, ``clips.new()`` bytes). Tests that need a
slow, failing or killed daemon start their own. When a test fails, the logs of
the daemons it used are added to its report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatterbox_tray.ipc.client import Client
from tests.support.daemons import STARTED, Clips, DaemonProcess


def _cores() -> int:
    """The cores this process may run on (all of them where affinity is unknown, as on macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _share_the_cores() -> None:
    """Under pytest-xdist, give each worker's torch its share of the cores.

    Two workers each running a real model with one thread per core would put
    four busy threads on two cores, and OpenMP threads that wait by spinning
    then slow every step many times over. Set before anything imports torch,
    and inherited by the daemons the tests start.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers > 1:
        share = max(1, _cores() // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))


_share_the_cores()


def _numba_cache_per_worker() -> None:
    """Give each xdist worker its own numba cache (librosa's ``cache=True`` kernels).

    On a fresh environment two workers compiling the same kernel write its
    cache files at once, and one can load the other's half-written file: a
    worker died of a segmentation fault inside librosa's ``pyin`` that way, and
    xdist then waited for it for ever. Set before anything imports numba.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        folder = Path(tempfile.gettempdir()) / f"chatterbox-tray-numba-{getattr(os, 'getuid', lambda: 0)()}-{worker}"
        os.environ.setdefault("NUMBA_CACHE_DIR", str(folder))


_numba_cache_per_worker()

#: Per-chunk delay of the slow daemon: long enough that a job is still running
#: when a test acts on it, short enough to keep the suite fast.
SLOW_CHUNK_S = 0.25

_FIRST_DAEMON = pytest.StashKey[int]()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores, at most eight.

    Most tests wait on daemons, sockets, Qt and the sound card rather than
    compute, so one more worker than cores keeps both cores busy; the real
    model's tests each run single-threaded (``_share_the_cores``), at most
    ``MODEL_LANES`` of them at once. Beyond eight, workers only add start-up.
    """
    return min(8, _cores() + 1)


#: How many real-model modules may run at once. Each holds one to two models
#: (3 to 6 GB); three at once on a 24 GB machine left it reclaiming pages
#: instead of running.
MODEL_LANES = 2


#: Where the tests that load the real model live (docs/decisions.md, the tests' layers).
REAL_MODEL_TESTS = "tests/integration/"

#: Seconds each real-model file took on one worker of a parallel run on two
#: cores (stop 18), only to share them fairly between the lanes. A file not
#: listed counts as ``_UNLISTED_S``; nothing checks these against the clock.
REAL_MODEL_FILE_SECONDS = {
    "tests/integration/test_real_cache.py": 416,
    "tests/integration/test_real_daemon.py": 283,
    "tests/integration/test_fast_t3.py": 212,
    "tests/integration/test_variants.py": 143,
    "tests/integration/test_bridges_real_engine.py": 96,
    "tests/integration/test_quick_load.py": 50,
    "tests/integration/test_reload_memory.py": 45,
    "tests/integration/test_stream_joins.py": 14,
}
_UNLISTED_S = 60


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _rank(item: pytest.Item) -> int:
    return 0 if _module(item).startswith(REAL_MODEL_TESTS) else 1 if item.get_closest_marker("long") else 2


def model_lanes(modules: list[str], lanes: int) -> dict[str, str]:
    """Deal real-model files into lanes, longest first, each to the lane with the least so far."""
    load = [0.0] * lanes
    dealt: dict[str, str] = {}
    for module in sorted(modules, key=lambda m: -REAL_MODEL_FILE_SECONDS.get(m, _UNLISTED_S)):
        lane = load.index(min(load))
        load[lane] += REAL_MODEL_FILE_SECONDS.get(module, _UNLISTED_S)
        dealt[module] = f"real-model-{lane}"
    return dealt


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole files per worker, but the real-model files in ``MODEL_LANES`` lanes.

    A worker runs a file whole, so a module's daemon starts once (as
    ``--dist loadfile``). The files under ``REAL_MODEL_TESTS`` are dealt into a
    few lanes (``model_lanes``), each run whole by one worker: at most that
    many models are in memory at once while the other workers run everything
    else. (``xdist_group`` markers would say the same, but pytest 9.2 no longer
    lets xdist 3.8 tag the node ids it groups by.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModelLanes(LoadScopeScheduling):
        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            self.lanes: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            if not module.startswith(REAL_MODEL_TESTS):
                return module
            if self.lanes is None:
                collection = next(iter(self.registered_collections.values()))
                real = {n.split("::")[0] for n in collection if n.startswith(REAL_MODEL_TESTS)}
                self.lanes = model_lanes(sorted(real), MODEL_LANES)
            return self.lanes.get(module, "real-model-0")

    return ModelLanes(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long modules first, so parallel workers end together.

    The real model's modules (``REAL_MODEL_TESTS``) come first, then soaks
    (``long``), then everything else, each in its usual order. pytest-xdist
    hands out work in this order (``--no-loadscope-reorder``); a long file
    picked up last would leave one worker running alone at the end.
    """
    rank: dict[str, int] = {}
    for item in items:
        rank[_module(item)] = min(rank.get(_module(item), 2), _rank(item))
    items.sort(key=lambda item: rank[_module(item)])


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
