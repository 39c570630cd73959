"""CUDA graphs of T3's decode step: written, tested on the CPU where it can be, unmeasured on a GPU.

On a GPU one decode step is ~30 layers of small kernels, and launching them
costs more than running them; a CUDA graph replays the whole step with one
launch. A graph fixes every tensor's address and shape, so:

* the step attends over a fixed-length window of the KV cache (a *bucket*,
  a multiple of ``CACHE_STEP``) with a mask for the slots not yet written,
  and writes the new key/value at a position held in a tensor;
* there is one graph per (batch, bucket): CFG's batch of two and Turbo's
  batch of one never share one, and a longer utterance moves to the next
  bucket;
* graphs belong to one ``FastT3`` and to its current KV buffers: a reload
  makes a new ``FastT3`` (and a new ``StepGraphs``), and reallocated
  buffers drop every graph captured on the old ones;
* capture and replay happen on one thread only (the daemon's worker): CUDA
  graph capture is not safe against other work on the same stream, and the
  static buffers would be shared between callers.

Off unless ``cuda_graphs`` is switched on (``auto`` means off until it has
been measured on a GPU; docs/engine.md).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import torch
from torch import Tensor

from .t3_decode import CACHE_STEP, FastT3


def bucket_for(length: int, capacity: int, step: int = CACHE_STEP) -> int:
    """The attention window for a step that writes position ``length``: the next multiple of ``step``.

    Never more than the cache's capacity; a position at or past it is a bug
    in the caller (the budget sized the cache).
    """
    if length >= capacity:
        raise ValueError(f"position {length} is outside a KV cache of {capacity}")
    return min(capacity, (length // step + 1) * step)


class WrongThread(RuntimeError):
    """A graph was used from a thread other than the one that captured it."""


class StepGraphs:
    """Per-(batch, bucket) CUDA graphs of ``FastT3``'s step, for one model's one set of KV buffers."""

    def __init__(self, fast: FastT3) -> None:
        self.fast = fast
        self.graphs: dict[tuple[int, int], Any] = {}
        self.static: dict[tuple[int, int], tuple[Tensor, Tensor, Tensor]] = {}
        self.thread: int | None = None
        #: The KV buffer the graphs were captured on, weakly (an ``id`` of it is not enough: a freed
        #: buffer's id can come back as the new buffer's, and its graphs would replay on freed memory).
        self._kv_ref: weakref.ref[Tensor] | None = None

    def _check(self) -> None:
        me = threading.get_ident()
        if self.thread is None:
            self.thread = me
        elif self.thread != me:
            raise WrongThread("CUDA graphs of the decode step are captured and replayed on the worker thread only")
        kv = self.fast.kv
        buffer = None if kv is None else kv.k
        if (None if self._kv_ref is None else self._kv_ref()) is not buffer:
            # new buffers (a longer utterance, another batch): old graphs point at freed memory
            self.graphs.clear()
            self.static.clear()
            self._kv_ref = None if buffer is None else weakref.ref(buffer)

    def key(self, batch: int, position: int) -> tuple[int, int]:
        """The graph a step at ``position`` replays."""
        kv = self.fast.kv
        assert kv is not None
        return batch, bucket_for(position, kv.capacity)

    def step(self, embed: Tensor) -> Tensor:
        """One decode step through the graph for its (batch, bucket), capturing it the first time."""
        self._check()
        kv = self.fast.kv
        assert kv is not None
        pos = kv.length
        key = self.key(embed.shape[0], pos)
        if key not in self.graphs:
            self._capture(key, embed)
        x, position, out = self.static[key]
        x.copy_(embed.to(x.dtype))
        position.fill_(pos)
        self.graphs[key].replay()
        kv.length = pos + 1
        return out.clone()

    def _capture(self, key: tuple[int, int], embed: Tensor) -> None:
        fast = self.fast
        kv = fast.kv
        assert kv is not None
        batch, bucket = key
        x = torch.zeros(batch, 1, embed.shape[-1], device=embed.device, dtype=fast._dtype())
        position = torch.full((1,), kv.length, device=embed.device, dtype=torch.long)
        # Warm up on a side stream (allocations, lazy kernels), as torch's docs advise.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                fast.step_static(x, position, bucket)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fast.step_static(x, position, bucket)
        self.graphs[key] = graph
        self.static[key] = (x, position, out)


def use_cuda_graphs(fast: FastT3) -> StepGraphs:
    """Replay ``fast``'s decode step from CUDA graphs (one per batch and cache bucket) from now on."""
    fast.graphs = StepGraphs(fast)
    return fast.graphs
