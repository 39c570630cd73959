"""T3 on its own thread (daemon/token_stream.py): order, successors, drop, cancel, errors.

A plain Python generator stands in for the T3 loop: what is tested is the
hand-over between threads, which is the same whatever makes the tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from chatterbox_tray.daemon.engine import Cancelled
from chatterbox_tray.daemon.token_stream import TokenStream


def counting(tokens: list[int], running: list[str], name: str, gate: threading.Event | None = None):
    def loop(stop) -> Iterator[int]:
        running.append(f"{name} start")
        for t in tokens:
            if gate is not None:
                gate.wait(5)
            if stop.is_set():
                raise Cancelled()
            yield t
        running.append(f"{name} end")

    return loop


def test_tokens_arrive_in_order_and_a_successor_runs_only_after_its_predecessor() -> None:
    log: list[str] = []
    cancel = threading.Event()
    first = TokenStream("a", counting([1, 2, 3], log, "a"), cancel)
    second = TokenStream("b", counting([4, 5], log, "b"), cancel)
    first.then(second)
    assert list(first) == [1, 2, 3]
    assert list(second) == [4, 5]
    assert log == ["a start", "a end", "b start", "b end"]  # never two loops at once


def test_finished_tokens_hands_over_a_finished_run_whole_and_nothing_of_an_unfinished_one() -> None:
    log: list[str] = []
    gate = threading.Event()
    stream = TokenStream("a", counting([7, 8, 9], log, "a", gate), threading.Event()).start()
    assert stream.finished_tokens() is None
    gate.set()
    deadline = time.monotonic() + 5
    while (tokens := stream.finished_tokens()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tokens == [7, 8, 9]


def test_drop_stops_a_running_stream_and_its_successor_never_starts() -> None:
    log: list[str] = []
    gate = threading.Event()
    first = TokenStream("a", counting(list(range(100)), log, "a", gate), threading.Event()).start()
    second = TokenStream("b", counting([1], log, "b"), threading.Event())
    first.then(second)
    threading.Timer(0.2, gate.set).start()
    first.drop()  # sets the stop flag, then waits: the loop sees it at its next token
    assert not second.started
    assert "b start" not in log


def test_the_jobs_cancel_flag_ends_the_loop_with_cancelled() -> None:
    cancel = threading.Event()
    cancel.set()
    stream = TokenStream("a", counting([1, 2], [], "a"), cancel)
    with pytest.raises(Cancelled):
        list(stream)


def test_an_error_in_t3_reaches_the_reader() -> None:
    def broken(_stop) -> Iterator[int]:
        yield 1
        raise RuntimeError("T3 broke")

    stream = TokenStream("a", broken, threading.Event())
    with pytest.raises(RuntimeError, match="T3 broke"):
        list(stream)
    assert stream.finished_tokens() is None
