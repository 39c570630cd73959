"""T3 on its own thread: one sentence's speech tokens, read as they are made.

On the fast path the worker thread turns speech tokens into audio (S3Gen)
while this thread makes them (T3), so the two networks work at the same
time instead of taking turns: T3 decodes the next piece, or the next
sentence, while S3Gen vocodes this one. Measured in docs/engine.md
("T3 and S3Gen at the same time").

Rules that keep it correct:

* **One T3 loop at a time.** ``FastT3`` holds one KV cache. A stream may
  have a successor (the job's next sentence, made ahead); the successor
  starts on this thread's exit, never beside it, and
  ``TokenStream.drop`` stops a stream and its successors and waits for
  them, so the engine can use ``FastT3`` itself afterwards.
* **Its own random stream.** The loop draws from a ``torch.Generator``
  seeded from the job's seed, never from torch's global stream, which the
  worker thread's S3Gen (noise, HiFT's phases) draws from: the same seed
  gives the same audio however the two threads interleave.
* **Cancel within a token.** The loop checks the job's cancel flag and the
  stream's own stop flag every token.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator

from .engine import Cancelled

log = logging.getLogger(__name__)

#: Marks the end of a stream's tokens in its queue.
_END = object()


class _EitherSet:
    """``is_set`` of the job's cancel flag or the stream's stop flag (what the T3 loop checks)."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


class TokenStream:
    """One sentence's T3 run on a thread of its own; iterate to get its tokens as they come.

    ``loop(cancel)`` returns the token iterator (``FastT3.turbo`` or
    ``FastT3.original`` with their arguments bound); it is called on the
    stream's thread. ``key`` says which sentence this is, so the engine can
    tell whether a stream made ahead is the one it now needs.
    ``threads()`` is torch's intra-op thread count for this thread's next
    token (None: leave it); asked before every token, so T3 can take all the
    cores while S3Gen is idle and share them while it works.
    """

    def __init__(
        self,
        key: Hashable,
        loop: Callable[[_EitherSet], Iterator[int]],
        cancel: threading.Event,
        threads: Callable[[], int | None] | None = None,
    ) -> None:
        self.key = key
        self._loop = loop
        self._cancel = cancel
        self._stop = threading.Event()
        self._threads = threads
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="t3", daemon=True)
        self._successor: TokenStream | None = None
        self._lock = threading.Lock()
        self._done = False
        self.started = False
        #: Seconds the thread spent in T3 so far (prefill and decode).
        self.t3_seconds = 0.0

    @property
    def running(self) -> bool:
        """Whether T3 is working on this sentence now (started, not ended)."""
        with self._lock:
            return self.started and not self._done

    def start(self) -> TokenStream:
        with self._lock:
            if not self.started and not self._stop.is_set():
                self.started = True
                self._thread.start()
        return self

    def then(self, successor: TokenStream) -> None:
        """Run ``successor`` on this stream's end (at once if it has ended)."""
        with self._lock:
            self._successor = successor
            done = self._done
        if done and not self._stop.is_set():
            successor.start()

    def _run(self) -> None:
        import torch

        start = time.perf_counter()
        current = 0

        def share_cores() -> None:
            nonlocal current
            wanted = self._threads() if self._threads is not None else None
            if wanted and wanted != current:
                if not current:
                    torch.get_num_threads()  # torch's lazy per-thread set-up first, so it cannot undo the next line
                torch.set_num_threads(wanted)
                current = wanted

        try:
            share_cores()
            with torch.inference_mode():
                for token in self._loop(_EitherSet(self._cancel, self._stop)):
                    self.t3_seconds = time.perf_counter() - start
                    self._queue.put(token)
                    share_cores()
            self._queue.put(_END)
        except Cancelled as exc:
            self._queue.put(exc)
        except BaseException as exc:  # handed to the reader, who reports it with the job
            log.debug("T3 thread failed: %r", exc)
            self._queue.put(exc)
        finally:
            self.t3_seconds = time.perf_counter() - start
            with self._lock:
                self._done = True
                successor = self._successor
            if successor is not None and not self._stop.is_set() and not self._cancel.is_set():
                successor.start()

    def __iter__(self) -> Iterator[int]:
        """The tokens, each as soon as T3 has drawn it; re-raises what ended the loop early."""
        self.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def finished_tokens(self) -> list[int] | None:
        """All the tokens, if T3 has finished this sentence without error; else None (nothing is taken)."""
        with self._lock:
            if not self._done or self._stop.is_set():
                return None
        items: list[object] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not items or items[-1] is not _END:  # it failed: leave the error for the reader
            for item in items:
                self._queue.put(item)
            return None
        return [t for t in items[:-1] if isinstance(t, int)]

    def drop(self) -> None:
        """Stop this stream and every successor, and wait until their threads are gone."""
        stream: TokenStream | None = self
        while stream is not None:
            with stream._lock:
                stream._stop.set()
                following = stream._successor
            if stream.started:
                stream._thread.join()
            stream = following
