"""Process, CPU, RAM and GPU figures for the ``stats`` op.

GPU memory comes from torch's allocator (what the model really holds);
utilization and temperature from NVML when the NVIDIA driver offers it. Every
source is optional: a missing one leaves its fields out rather than failing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .engine import Engine

log = logging.getLogger(__name__)
_nvml_ok: bool | None = None


def _nvml() -> dict[str, Any]:
    global _nvml_ok
    if _nvml_ok is False:
        return {}
    try:
        import pynvml

        if _nvml_ok is None:
            pynvml.nvmlInit()
            _nvml_ok = True
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            "gpu_utilization_pct": int(util.gpu),
            "gpu_temperature_c": int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
            "gpu_memory_used_device": int(mem.used),
        }
    except Exception as exc:  # no driver, no GPU, no pynvml: just no figures
        if _nvml_ok is None:
            log.info("NVML not available: %s", exc)
        _nvml_ok = False
        return {}


def system_stats(engine: Engine) -> dict[str, Any]:
    """Everything we can measure cheaply, as JSON-ready numbers."""
    import psutil

    proc = psutil.Process(os.getpid())
    with proc.oneshot():
        mem = proc.memory_info()
        stats: dict[str, Any] = {
            "pid": proc.pid,
            "process_rss": int(mem.rss),
            "process_cpu_pct": proc.cpu_percent(interval=None),
            "threads": proc.num_threads(),
        }
    vm = psutil.virtual_memory()
    stats.update(
        system_ram_total=int(vm.total),
        system_ram_used=int(vm.total - vm.available),
        system_cpu_pct=psutil.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count(),
        variant=engine.variant,
        model_id=engine.model_id,
        device=engine.device,
        sample_rate=engine.sample_rate,
    )
    stats.update(_engine_memory(engine))
    if engine.device.startswith("cuda"):
        stats.update(_nvml())
    return stats


def memory_figures(engine: Engine) -> dict[str, int]:
    """What the model's memory costs now: process RSS and, on CUDA, torch's allocator.

    Taken before and after a sleep so ``stats`` can show what unloading gave back.
    """
    import psutil

    figures = {"process_rss": int(psutil.Process(os.getpid()).memory_info().rss)}
    gpu = ("gpu_memory_allocated", "gpu_memory_reserved")
    return {**figures, **{k: v for k, v in _engine_memory(engine).items() if k in gpu}}


def _engine_memory(engine: Engine) -> dict[str, Any]:
    """``engine.memory()``; none when it fails (figures are optional: never fail a request or a sleep over them)."""
    try:
        return engine.memory()
    except Exception as exc:
        log.warning("engine memory figures failed: %s", exc)
        return {}


def give_back_freed_memory() -> None:
    """Return freed heap pages to the system (glibc keeps them otherwise).

    Tensors are freed when the model is dropped, but small allocations stay in
    malloc's arenas and the process would still look as big as before.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError) as exc:  # musl or another libc: nothing to trim
        log.debug("malloc_trim unavailable: %s", exc)


class CpuShare:
    """How many cores the other programs on this computer leave us, measured as we go.

    Beside a busy program, torch's threads wait at every parallel op for a
    thread of ours that the scheduler has parked (a decode step is hundreds
    of short ops), so two threads on one free core run slower than one
    (measured: docs/engine.md, "A shared CPU"). Every ``every_s`` this reads
    the system's busy CPU seconds and this process's (``psutil``: /proc/stat
    and /proc/self/stat on Linux); what the others used, smoothed, is taken
    from the cores. Cheap between readings: the engine asks before every token.
    """

    def __init__(self, every_s: float = 1.0, counters: Callable[[], tuple[float, float, float]] | None = None) -> None:
        """``counters``: (now, all busy CPU seconds, ours), for tests; psutil's by default."""
        import psutil

        self._lock = threading.Lock()  # T3's thread and the worker both ask
        self.cores = psutil.cpu_count() or 1
        self.every_s = every_s
        self._counters = counters or _cpu_counters(psutil)
        self._last = self._counters()
        self._due = 0.0  # when the next reading is due (time.monotonic)
        #: Cores the other programs kept busy lately (smoothed).
        self.others = 0.0

    def free_cores(self) -> int:
        """Whole cores free for us now (at least one)."""
        if time.monotonic() >= self._due:
            with self._lock:
                self._due = time.monotonic() + self.every_s
                now = self._counters()
                then, self._last = self._last, now
                wall = now[0] - then[0]
                if wall > 0:
                    others = max(0.0, (now[1] - then[1] - (now[2] - then[2])) / wall)
                    self.others = 0.5 * self.others + 0.5 * min(others, float(self.cores))
        return max(1, min(self.cores, round(self.cores - self.others)))


def _cpu_counters(psutil: Any) -> Callable[[], tuple[float, float, float]]:
    proc = psutil.Process(os.getpid())

    def read() -> tuple[float, float, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        # guest time is counted in user time already
        busy = sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        return time.monotonic(), busy, sum(proc.cpu_times()[:2])

    return read
