"""Process, CPU, RAM and GPU figures for the ``stats`` op.

GPU memory comes from torch's allocator (what the model really holds);
utilization and temperature from NVML when the NVIDIA driver offers it. Every
source is optional: a missing one leaves its fields out rather than failing.
"""

from __future__ import annotations

import logging
import os
import sys
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
    try:
        stats.update(engine.memory())
    except Exception as exc:
        log.warning("engine memory figures failed: %s", exc)
    if engine.device.startswith("cuda"):
        stats.update(_nvml())
    return stats


def memory_figures(engine: Engine) -> dict[str, int]:
    """What the model's memory costs now: process RSS and, on CUDA, torch's allocator.

    Taken before and after a sleep so ``stats`` can show what unloading gave back.
    """
    import psutil

    figures = {"process_rss": int(psutil.Process(os.getpid()).memory_info().rss)}
    try:
        figures.update(
            {k: v for k, v in engine.memory().items() if k in ("gpu_memory_allocated", "gpu_memory_reserved")}
        )
    except Exception as exc:  # figures are optional: never fail a sleep over them
        log.warning("engine memory figures failed: %s", exc)
    return figures


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
