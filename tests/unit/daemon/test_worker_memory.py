"""The worker hands freed memory back once the daemon has been idle a while, not after every job."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from chatterbox_tray.daemon import worker as worker_module
from chatterbox_tray.daemon.jobs import Job, JobQueue
from chatterbox_tray.daemon.worker import Worker


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


def test_freed_memory_goes_back_after_an_idle_spell_once_per_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[float] = []
    ended = threading.Event()
    monkeypatch.setattr(worker_module, "IDLE_TRIM_S", 0.2)
    monkeypatch.setattr(worker_module, "give_back_freed_memory", lambda: trims.append(time.monotonic()))
    queue = JobQueue()
    playing: list[object] = []  # the speaker's jobs
    svc = SimpleNamespace(
        queue=queue,
        player=SimpleNamespace(jobs=lambda: list(playing)),
        model=SimpleNamespace(wait_ready=lambda _timeout: True, state="ready", error=None),
        # A prepare job that fails at once (this stub has no engine): the worker ends it and goes on.
        coordinator=SimpleNamespace(running=lambda job: None, event=lambda *a: None, end=lambda *a: ended.set()),
    )
    worker = Worker(svc)  # type: ignore[arg-type]
    worker.start()
    try:
        time.sleep(0.5)
        assert trims == []  # nothing was freed yet: an idle daemon does not trim again and again
        queue.put(Job("prepare", voice_name="a", clip_sha256="0" * 64))
        assert ended.wait(5)
        first_done = time.monotonic()
        assert wait_for(lambda: len(trims) == 1)
        assert trims[0] - first_done >= 0.15  # after the idle spell, not as the job ended
        time.sleep(0.6)
        assert len(trims) == 1  # once per idle spell
        ended.clear()
        queue.put(Job("prepare", voice_name="b", clip_sha256="1" * 64))
        assert ended.wait(5)
        queue.put(Job("prepare", voice_name="c", clip_sha256="2" * 64))  # a burst: no trim in between
        assert wait_for(lambda: len(trims) == 2)
        playing.append("a speech still playing")
        ended.clear()
        queue.put(Job("prepare", voice_name="d", clip_sha256="3" * 64))
        assert ended.wait(5)
        time.sleep(0.6)
        assert len(trims) == 2  # not while the speaker plays: the trim holds malloc's locks
        playing.clear()
        assert wait_for(lambda: len(trims) == 3)  # once it falls silent
    finally:
        queue.close()
        worker.join(5)
    assert not worker.is_alive()
