"""The first run's weight download, with figures a person can watch.

chatterbox's ``from_pretrained`` fetches about 3 GB from the Hugging Face hub
and says nothing while it does. So before it runs, the daemon fetches the
same files itself, into the same Hugging Face cache (chatterbox then finds
them there): it asks the hub for the files and their sizes, downloads each
with huggingface_hub's own ``hf_hub_download`` (a retry skips the files
already finished), and meanwhile watches the partial file grow,
so that ``status``, the tray app's banner and ``status --watch`` can say
bytes done, total, speed and time left.

A download that gets no byte for `STALL_S` seconds is reported as stalled
(it keeps trying: huggingface_hub retries a dropped connection); one that
fails raises `DownloadError` with a plain message, and ``retry_load`` starts
again where it stopped.

Only the loading thread writes the figures; `current` is what ``status``
shows (None when no download is under way or just failed).
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..ipc.formatting import human_bytes

log = logging.getLogger(__name__)

#: Seconds without a new byte before a download is said to have stalled.
STALL_S = 30.0
#: How often the partial file is measured.
POLL_S = 0.5
#: Speed is measured over this many seconds (a moving window).
SPEED_WINDOW_S = 5.0
#: huggingface_hub writes a download in pieces of its ``DOWNLOAD_CHUNK_SIZE``
#: (10 MiB): nothing reaches the file, hence the figures, in between. 1 MiB
#: pieces show progress (and tell a stall from a slow line) on lines down to
#: tens of KB/s, at no measurable cost.
CHUNK_BYTES = 1024 * 1024


class DownloadError(Exception):
    """The weights could not be downloaded; the message says why and what to do."""


class HubUnreachable(DownloadError):
    """The hub could not be asked what to download (offline, say): nothing was fetched."""


@dataclass
class DownloadProgress:
    """Where the download stands (``status``'s ``download`` object)."""

    repo: str
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    file: str = ""
    #: Bytes a second over the last few seconds; 0.0 before there is a measure.
    bytes_per_s: float = 0.0
    #: None until the speed is known.
    seconds_left: float | None = None
    stalled: bool = False
    #: Seconds since the last byte arrived.
    idle_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def describe(self) -> str:
        """One line for people: "downloading the weights: 1.2 GiB of 3.1 GiB, 25.0 MiB/s, about 1 min 16 s left"."""
        line = f"downloading the weights: {human_bytes(self.bytes_done)} of {human_bytes(self.bytes_total)}"
        if self.stalled:
            return f"{line}; stalled: no data for {self.idle_s:.0f} s (still trying; check the connection)"
        if self.bytes_per_s > 0:
            line += f", {human_bytes(self.bytes_per_s)}/s"
        if self.seconds_left is not None:
            line += f", about {_duration(self.seconds_left)} left"
        return line

    @property
    def fraction(self) -> float:
        """Share of the bytes done, 0 to 1."""
        return self.bytes_done / self.bytes_total if self.bytes_total else 0.0


#: What chatterbox's ``from_pretrained`` of each variant fetches (its own lists, chatterbox 0.1.7).
HUB_FILES: dict[str, tuple[str, ...]] = {
    "original": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json", "conds.pt"),
    "multilingual": (
        "ve.pt",
        "t3_mtl23ls_v2.safetensors",
        "s3gen.pt",
        "grapheme_mtl_merged_expanded_v1.json",
        "conds.pt",
        "Cangjie5_TC.json",
    ),
    "turbo": ("*.safetensors", "*.json", "*.txt", "*.pt", "*.model"),
}

_current: DownloadProgress | None = None
_lock = threading.Lock()


def fetch_weights(
    repo_id: str,
    patterns: Sequence[str],
    progress: Callable[[float, str], None],
    stall_s: float = STALL_S,
) -> None:
    """The load's download step: `fetch`, its figures as load progress from 0.10 to 0.70.

    Where the hub cannot even be asked (offline, with the weights cached
    from an earlier run), nothing is downloaded and the load goes on:
    chatterbox then reads its cache, or fails with its own reason.

    Raises:
        EngineError: ``model_failed``, when a file's download failed.
    """
    from .engine import EngineError

    try:
        fetch(repo_id, patterns, lambda p: progress(0.10 + 0.60 * p.fraction, p.describe()), stall_s=stall_s)
    except HubUnreachable as exc:
        log.info("not downloading: %s", exc)
    except DownloadError as exc:
        raise EngineError("model_failed", str(exc)) from exc


def current() -> dict[str, Any] | None:
    """The download under way, as JSON, or None."""
    with _lock:
        return _current.to_json() if _current is not None else None


def reset() -> None:
    """Forget the last download's figures (a new load begins)."""
    global _current
    with _lock:
        _current = None


def fetch(
    repo_id: str,
    patterns: Sequence[str],
    report: Callable[[DownloadProgress], None],
    *,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    stall_s: float = STALL_S,
    poll_s: float = POLL_S,
) -> int:
    """Download the files of ``repo_id`` matching ``patterns`` into the Hugging Face cache.

    Files already cached are skipped. ``report`` is called with the figures
    at every measure (about every ``poll_s``) from a helper thread, and at
    the end. Returns the number of bytes downloaded.

    Raises:
        HubUnreachable: the hub could not be asked (nothing was fetched).
        DownloadError: a file's download failed.
    """
    global _current
    from huggingface_hub import HfApi, constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.file_download import repo_folder_name

    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)

    if constants.HF_HUB_OFFLINE:
        raise HubUnreachable("HF_HUB_OFFLINE is set")
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, files_metadata=True)
    except Exception as exc:  # httpx, OSError, HfHubHTTPError: all mean "cannot reach the hub"
        raise HubUnreachable(f"cannot reach the Hugging Face hub for {repo_id}: {_reason(exc)}") from exc
    revision = info.sha
    wanted = [
        (s.rfilename, int(s.size or 0))
        for s in (info.siblings or [])
        if any(fnmatch.fnmatch(s.rfilename, p) for p in patterns)
    ]
    missing = [
        (name, size)
        for name, size in wanted
        if not isinstance(try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision), str)
    ]
    progress = DownloadProgress(repo=repo_id, bytes_total=sum(size for _, size in missing), files_total=len(missing))
    with _lock:
        _current = progress
    if not missing:
        return 0
    blobs = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model") / "blobs"
    # A killed earlier run's partial files stay (huggingface_hub names each
    # attempt's file uniquely and never resumes one): they are not ours to count.
    stale = set(blobs.glob("*.incomplete")) if blobs.is_dir() else set()
    done_before = 0  # bytes of the files finished
    stop = threading.Event()
    last_byte = time.monotonic()
    samples: list[tuple[float, int]] = []

    def measure() -> None:
        nonlocal last_byte
        now = time.monotonic()
        partial = sum(_size(p) for p in blobs.glob("*.incomplete") if p not in stale) if blobs.is_dir() else 0
        done = min(done_before + partial, progress.bytes_total)
        if done > progress.bytes_done:
            last_byte = now
        samples.append((now, done))
        while samples and now - samples[0][0] > SPEED_WINDOW_S:
            samples.pop(0)
        first_t, first_done = samples[0]
        speed = (done - first_done) / (now - first_t) if now > first_t else 0.0
        with _lock:
            progress.bytes_done = done
            progress.bytes_per_s = speed
            progress.idle_s = now - last_byte
            progress.stalled = progress.idle_s >= stall_s
            progress.seconds_left = (progress.bytes_total - done) / speed if speed > 0 else None
        report(progress)

    def watch() -> None:
        while not stop.wait(poll_s):
            measure()

    watcher = threading.Thread(target=watch, name="download-watch", daemon=True)
    watcher.start()
    try:
        for name, size in missing:
            with _lock:
                progress.file = name
            log.info("downloading %s/%s (%d bytes)", repo_id, name, size)
            try:
                # By branch, as chatterbox asks: that also records refs/main, which
                # an offline start later needs to find the files.
                hf_hub_download(repo_id, name, endpoint=endpoint, cache_dir=cache_dir)
            except Exception as exc:
                done = f"{human_bytes(progress.bytes_done)} of {human_bytes(progress.bytes_total)} done"
                raise DownloadError(
                    f"the download of the weights failed at {name} ({done}): {_reason(exc)}. "
                    "Check the connection and retry: the files already downloaded are kept"
                ) from exc
            done_before += size
            with _lock:
                progress.files_done += 1
    finally:
        stop.set()
        watcher.join()
    with _lock:
        progress.bytes_done, progress.seconds_left = progress.bytes_total, 0.0
        progress.stalled, progress.idle_s = False, 0.0
    report(progress)
    return progress.bytes_total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _reason(exc: BaseException) -> str:
    """An exception's message, one sentence, no trailing dots (hub messages end with "..")."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(". ")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
