"""The Stats page: model and daemon state, live GPU (or CPU and RAM) plots, cache figures, recent jobs."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...ipc import requests as rq
from ...ipc.formatting import human_bytes  # 1536 -> '1.5 KiB'; an en dash for no figure
from ...ipc.messages import CacheStatsResult, StateEvent
from ..plots import Sparkline
from ..state import AppState
from ..widgets import SPEECH_LABEL, SPEECH_TIP, Banner, arrange, confirm, fmt_seconds, item_table, scrolled

POLL_MS = 2000
HISTORY = 150  # samples: five minutes at one every two seconds
#: The recent jobs' columns. The text stretches and elides; every other column
#: fits its contents, so that all of them show at the default window size.
JOB_COLUMNS = ("Ended", "Text", "Voice", "Kind", SPEECH_LABEL, "First audio", "RTF", "Voice from")
JOB_COLUMN_TIPS = {
    SPEECH_LABEL: SPEECH_TIP,
    "First audio": "From the request to the first sound (speech), or to the first audio sent (a file)",
    "RTF": "Real-time factor: seconds of work per second of audio; below 1 is faster than speech",
    "Voice from": "Where the voice's conditionals came from: the memory or disk cache, or prepared for this job",
}


#: The daemon's figures and the cache's: key -> title, in the order their grids show them.
DAEMON_FIGURES = {
    "state": "State",
    "model": "Model",
    "device": "Device",
    "pid": "Process",
    "uptime": "Up for",
    "rss": "Memory",
}
CACHE_FIGURES = {
    "hits": "Hits",
    "misses": "Misses",
    "hit_rate": "Hit rate",
    "background": "Prepared ahead",
    "entries": "Entries",
    "bytes_memory": "In memory",
    "bytes_disk": "On disk",
    "prepare": "Time preparing",
    "saved": "Time saved",
    "errors": "Disk errors",
}
#: What each cache figure counts, as docs/protocol.md (cache.stats) defines it.
CACHE_TIPS = {
    "hits": "Speech requests whose voice was ready: in memory, or read back from disk",
    "misses": "Speech requests that had to prepare their voice first",
    "hit_rate": "Hits out of all speech requests; preparing a new voice ahead of time is not a request",
    "background": "Voices prepared ahead of use, after they were added or when the model became ready",
    "entries": "Prepared voices kept now; a file on disk counts once its header and size were checked",
    "prepare": "Time spent preparing voices, ahead of use included",
    "saved": "For each hit, what preparing the voice would have taken, less what the hit took",
    "errors": "Failed writes (a full disk, say) and damaged files found and removed",
}


def _grid(values: dict[str, QLabel], titles: dict[str, str], tips: dict[str, str], columns: int = 2) -> QGridLayout:
    """The figures named in ``titles``, each beside its title; their labels are made here, into ``values``."""
    grid = QGridLayout()
    grid.setHorizontalSpacing(18)
    for i, (key, title) in enumerate(titles.items()):
        # A long figure (the memory line after an idle unload, a failure's reason)
        # wraps at words instead of widening the page past the window.
        value = values[key] = QLabel("–", wordWrap=True, toolTip=tips.get(key, ""))
        value.setTextInteractionFlags(value.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse)
        row, col = divmod(i, columns)
        grid.addWidget(QLabel(title, styleSheet="color: palette(placeholder-text);"), row, col * 2)
        grid.addWidget(value, row, col * 2 + 1)
    for col in range(columns):
        grid.setColumnStretch(col * 2 + 1, 1)
    return grid


class StatsPage(QWidget):
    """What the daemon is doing and what the cache saves, refreshed every two seconds."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.stats: dict[str, Any] = {}
        self.cache: CacheStatsResult | None = None
        self.gpu: bool | None = None

        self.values: dict[str, QLabel] = {}
        daemon_box = QGroupBox("Daemon")
        daemon_box.setLayout(_grid(self.values, DAEMON_FIGURES, {}))

        self.plots_box = QGroupBox("Last five minutes")
        self.plots_layout = QGridLayout(self.plots_box)
        self.plots: dict[str, Sparkline] = {}

        cache_box = QGroupBox("Voice cache")
        cache_box.setToolTip(
            "Each voice, once prepared for the loaded model (its conditionals), is kept here so speech starts sooner"
        )
        self.clear_button = QPushButton(
            "Forget the prepared voices…",
            toolTip="Empty the voice cache (the cached conditionals); each voice is prepared again when it next speaks",
            clicked=self.clear_cache,
        )
        figures = _grid(self.values, CACHE_FIGURES, CACHE_TIPS)
        arrange(QVBoxLayout(cache_box), figures, arrange(QHBoxLayout(), 1, self.clear_button))

        jobs_box = QGroupBox("Recent jobs")
        self.jobs = item_table("recentJobs", JOB_COLUMNS, JOB_COLUMNS.index("Text"), minimumHeight=150)
        self.jobs.header().setStretchLastSection(False)
        for name, tip in JOB_COLUMN_TIPS.items():
            self.jobs.headerItem().setToolTip(JOB_COLUMNS.index(name), tip)
        rtf_help = QLabel(
            f"{SPEECH_LABEL}: {SPEECH_TIP[0].lower()}{SPEECH_TIP[1:]}. "
            "RTF (real-time factor): seconds of work per second of audio; below 1 is faster than speech.",
            wordWrap=True,
            styleSheet="color: palette(placeholder-text);",
        )
        arrange(QVBoxLayout(jobs_box), self.jobs, rtf_help)

        content = QWidget()
        arrange(QVBoxLayout(content), daemon_box, self.plots_box, cache_box, jobs_box, 1)
        scrolled(self, content)
        self.banner = Banner(over=self)  # in no layout: it moves nothing

        self._timer = QTimer(self, interval=POLL_MS, timeout=self.refresh)
        state.changed.connect(self._on_changed)
        state.cache_event.connect(lambda _: self.refresh_cache())
        state.reconnected.connect(self._on_reconnected)
        self._build_plots(gpu=False)
        self._on_changed()

    # -- polling -------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask for fresh figures."""
        self.state.fetch(rq.stats(), self._set_stats)
        self.refresh_cache()

    def refresh_cache(self) -> None:
        """Ask for the cache figures."""
        self.state.fetch(rq.cache_stats(), self._set_cache)

    def clear_cache(self) -> None:
        """Drop every cached entry, after asking."""
        question = (
            "Forget the prepared voice of every voice? The voices stay; each is prepared again the next time it "
            "speaks, which takes a few seconds."
        )
        if confirm(self, "Forget the prepared voices", question, no_default=False):
            self.state.send(
                rq.cache_clear(),
                on_result=lambda r: self.banner.show_message(
                    f"Removed {r.removed} cache entries.", "info", timeout_ms=4000
                ),
                on_error=lambda c, m: self.banner.show_message(m or c),
            )

    def _on_changed(self) -> None:
        if self.state.connected and not self._timer.isActive():
            self._timer.start()
            self.refresh()
        elif not self.state.connected:
            self._timer.stop()
            self.values["state"].setText(self.state.summary)
        else:
            self.values["state"].setText(self._state_text(self.state.status))

    def _on_reconnected(self) -> None:
        for plot in self.plots.values():
            plot.clear()
        self.refresh()

    # -- figures ------------------------------------------------------------------------

    def _build_plots(self, gpu: bool) -> None:
        if self.gpu == gpu:
            return
        self.gpu = gpu
        for plot in self.plots.values():
            plot.deleteLater()
        cpu = Sparkline("CPU", [("daemon", "#7a4cc2"), ("all", "#b9a5dd")], maximum=100, unit=" %", capacity=HISTORY)
        if gpu:
            self.plots = {
                "memory": Sparkline("GPU memory", [("used", "#2f6fdf"), ("reserved", "#9bb7ee")], capacity=HISTORY),
                "util": Sparkline("GPU use", [("", "#1f9d55")], maximum=100, unit=" %", capacity=HISTORY),
                "temp": Sparkline("Temperature", [("", "#d64545")], maximum=100, unit=" °C", capacity=HISTORY),
                "cpu": cpu,
            }
            self.plots_box.setTitle("GPU, last five minutes")
        else:
            self.plots = {
                "cpu": cpu,
                "ram": Sparkline("RAM", [("daemon", "#2f6fdf"), ("all", "#9bb7ee")], capacity=HISTORY),
            }
            self.plots_box.setTitle("CPU and memory, last five minutes (no GPU in use)")
        self.plots["memory" if gpu else "ram"].format_value = human_bytes
        for i, plot in enumerate(self.plots.values()):
            self.plots_layout.addWidget(plot, i // 2, i % 2)

    def _set_stats(self, s: dict[str, Any]) -> None:
        self.stats = s
        gpu = "gpu_memory_total" in s
        self._build_plots(gpu)
        cpus = max(1, int(s.get("cpu_count") or 1))
        daemon_cpu = float(s.get("process_cpu_pct", 0.0)) / cpus
        self.plots["cpu"].add([daemon_cpu, s.get("system_cpu_pct")])
        memory = self.plots["memory" if gpu else "ram"]
        total = s.get("gpu_memory_total" if gpu else "system_ram_total")
        memory.maximum = float(total) if total else None
        memory.caption = f"of {human_bytes(total)}" if total else ""
        if gpu:
            used = s.get("gpu_memory_used_device", s.get("gpu_memory_allocated"))
            memory.add([used, s.get("gpu_memory_reserved")])
            self.plots["util"].add([s.get("gpu_utilization_pct")])
            self.plots["temp"].add([s.get("gpu_temperature_c")])
        else:
            memory.add([s.get("process_rss"), s.get("system_ram_used")])
        self.plots["cpu"].caption = f"{cpus} CPUs"
        status = StateEvent.from_data(s["status"]) if s.get("status") else self.state.status
        v = self.values
        v["state"].setText(self._state_text(status))
        model_id = s.get("model_id") or ""
        v["model"].setText(f"{s.get('variant', '')}" + (f" ({model_id})" if model_id else ""))
        device = s.get("device", "")
        v["device"].setText(f"{device} · {s['gpu_name']}" if s.get("gpu_name") else str(device))
        v["pid"].setText(f"pid {s.get('pid', '–')}, {s.get('threads', '–')} threads")
        v["uptime"].setText(fmt_seconds(s.get("uptime_s")))
        peak = f", GPU peak {human_bytes(s['gpu_memory_peak'])}" if "gpu_memory_peak" in s else ""
        v["rss"].setText(f"{human_bytes(s.get('process_rss'))} RAM{peak}{_slept(s.get('last_sleep'))}")
        self._fill_jobs(list(s.get("recent_jobs") or []))

    def _set_cache(self, c: CacheStatsResult) -> None:
        self.cache = c
        v = self.values
        entries, size, budgets = c.entries, c.bytes, c.budgets
        v["hits"].setText(f"{c.hits.get('memory', 0)} memory, {c.hits.get('disk', 0)} disk")
        v["misses"].setText(str(c.misses))
        v["hit_rate"].setText(f"{100 * c.hit_rate:.0f} % of {c.requests}")
        ahead = c.prepared_in_background
        v["background"].setText(f"{ahead} voice{'' if ahead == 1 else 's'}")
        v["entries"].setText(f"{entries.get('memory', 0)} in memory, {entries.get('disk', 0)} on disk")
        v["bytes_memory"].setText(f"{human_bytes(size.get('memory'))} of {human_bytes(budgets.get('memory_bytes'))}")
        v["bytes_disk"].setText(f"{human_bytes(size.get('disk'))} of {human_bytes(budgets.get('disk_bytes'))}")
        v["prepare"].setText(fmt_seconds(c.prepare_seconds_total))
        v["saved"].setText(fmt_seconds(c.seconds_saved))
        writes, bad = c.disk_errors.get("write", 0), c.disk_errors.get("bad_file", 0)
        v["errors"].setText(f"{writes} failed writes, {bad} bad files" if writes or bad else "none")

    def _fill_jobs(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs.clear()
        for job in reversed(jobs):  # newest first
            playback = job.get("playback")
            first = playback.get("first_sample_s") if playback else job.get("time_to_first_chunk_s")
            rtf = job.get("rtf")
            cond = job.get("conditionals") or {}
            tier = {"memory": "memory", "disk": "disk", "prepared": "prepared"}.get(cond.get("tier"), "–")
            state = job.get("state", "finished")
            if state == "lost":  # its daemon died (a crash, a kill) before it ended
                ended = f"{_clock(job.get('started_at'))} (lost)"
            else:
                ended = _clock(job.get("ended_at")) + ("" if state == "finished" else " (stopped)")
            kind = job.get("kind") or ("speak" if playback else "synthesize")
            text = " ".join(str(job.get("text") or job.get("job", "")).split())
            values = {
                "Ended": ended,
                "Text": text,
                "Voice": str(job.get("voice", "")),
                "Kind": "speech" if kind == "speak" else "file",
                SPEECH_LABEL: fmt_seconds(job.get("audio_s")),
                "First audio": fmt_seconds(first),
                "RTF": f"{rtf:.2f}" if isinstance(rtf, (int, float)) else "–",
                "Voice from": f"{tier} ({fmt_seconds(cond.get('seconds'))})" if cond else "–",
            }
            item = QTreeWidgetItem([values[c] for c in JOB_COLUMNS])
            item.setToolTip(JOB_COLUMNS.index("Text"), text)  # the column elides it
            if state == "lost":
                item.setToolTip(0, "The daemon stopped (a crash or a kill) before this job ended: it never finished")
            self.jobs.addTopLevelItem(item)

    @staticmethod
    def _state_text(told: StateEvent) -> str:
        if told.state in ("loading", "starting", "warming_up"):
            return f"{told.message or told.state} ({100 * told.progress:.0f} %)"
        if told.state == "failed":
            return f"failed: {told.error}"
        if told.state == "sleeping":
            return "asleep: unloaded while idle; loads again when you speak"
        return told.state + (f", {told.queue} job(s) for the model" if told.queue else "")


def _slept(sleep: Any) -> str:
    """What the last idle unload gave back, e.g. "; idle unload at 14:05: 3.1 GB → 410 MB"."""
    if not isinstance(sleep, dict):
        return ""
    before, after = sleep.get("memory_before") or {}, sleep.get("memory_after") or {}
    key = "gpu_memory_reserved" if "gpu_memory_reserved" in before else "process_rss"
    what = "GPU" if key.startswith("gpu") else "RAM"
    freed = f"{human_bytes(before.get(key))} → {human_bytes(after.get(key))}"
    return f"; idle unload at {_clock(sleep.get('at'))}: {what} {freed}"


def _clock(when: Any) -> str:
    """Unix time -> local "14:05:09"; an en dash for none."""
    return time.strftime("%H:%M:%S", time.localtime(float(when))) if isinstance(when, (int, float)) else "–"
