"""The two-tier conditionals cache: memory (LRU), then disk, then compute.

Preparing a voice's conditionals (chatterbox's ``prepare_conditionals``) costs
about a second warm and much more cold; the result is about 135 KB of tensors.
So every voice's conditionals are kept: in memory under a byte budget, and on
disk under the user's cache folder so that a restarted daemon does not prepare
them again.

Here conditionals are a flat ``dict[str, torch.Tensor]`` of CPU tensors
(`CondTensors`, keys such as ``"t3.speaker_emb"`` or ``"gen.prompt_feat"``);
the engine converts them to and from chatterbox's ``Conditionals``. The cache
knows nothing about the model.

Why it is built the way it is:

- Key (`CacheKey`): the model's identity, the SHA-256 of the clip's bytes and
  the preprocessing settings. Not the path (the same bytes elsewhere hit; an
  edited file at the same path misses) and not the exaggeration (chatterbox
  applies it at generate time, so one entry serves them all).
- Memory tier on the CPU only: servers that kept conditionals on the GPU saw
  VRAM grow by about 200 MiB a voice.
- Disk entries are safetensors files, which hold tensors and string metadata
  and nothing executable: torch's pickle-based loader has had code-execution
  bugs even in ``weights_only`` mode. Each file carries its key in its
  metadata, so a foreign or mixed-up file is recognised and recomputed.
- Writes go to a temporary file in the same folder, are flushed, fsync'd and
  ``os.replace``d into place, so a reader sees a whole old file or a whole
  new one, never half of one. A crash or a full disk leaves at worst a stray
  temporary file (removed at the next start) and a miss.
- The disk is never a reason to fail a request: a failed write is logged and
  is a miss next time; an unreadable, truncated or foreign file is logged,
  deleted and recomputed.
- Single flight: two requests for the same uncached voice (say a quick-speak
  and the GUI's preview) prepare it once; requests for other voices go on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..ipc.atomic import OWNER_ONLY, TMP_PREFIX, TMP_SUFFIX, commit_temp, discard_temp, write_temp
from .storage import remove_file

if TYPE_CHECKING:
    import torch

# torch and safetensors.torch are imported where tensors are first touched, not
# here: importing them takes seconds, and a daemon (the fake engine's in tests,
# or the real one while its model loads on another thread) must answer ping
# before that. Python caches the import, so later calls pay nothing.

log = logging.getLogger(__name__)

CondTensors = dict[str, "torch.Tensor"]
"""Conditionals as a flat dict of CPU tensors; the engine maps them to chatterbox's."""

# Bumping the format version changes every digest: old files are then never
# read again and age out of the disk budget like any other cold entry.
_FORMAT = "chatterbox-tray/conditionals"
_FORMAT_VERSION = "1"
_SUFFIX = ".safetensors"
_CANNOT_REMOVE = "conditionals cache: cannot remove"
# Temporary files older than this at start-up were left by a crash.
_STALE_TMP_SECONDS = 600.0
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_FILE_RE = re.compile(r"([0-9a-f]{64})-([0-9a-f]{64})\.safetensors")
# A safetensors header larger than this is not one of ours.
_MAX_HEADER_BYTES = 1 << 20
# Memory hits refresh their file's mtime (the disk tier's LRU clock) at most
# this often: a voice used all day from memory must not look cold on disk,
# but a syscall on every hit would be waste.
_TOUCH_INTERVAL_S = 60.0
# Timings; a module global so tests can substitute a fake clock.
_clock = time.perf_counter


@dataclass(frozen=True)
class CacheKey:
    """What identifies one voice's conditionals.

    Attributes:
        model_id: the model's identity: variant plus a fingerprint of its
            weights (the caller computes it). Other weights give other
            conditionals.
        audio_sha256: lowercase hex SHA-256 of the reference clip's bytes.
        prep_version: every preprocessing setting that changes the result
            (e.g. loudness normalisation on or off), as one string.

    Raises:
        ValueError: when ``audio_sha256`` is not 64 lowercase hex digits (it
            becomes part of a file name, so it is checked strictly).
    """

    model_id: str
    audio_sha256: str
    prep_version: str

    def __post_init__(self) -> None:
        if not isinstance(self.audio_sha256, str) or not _SHA256_RE.fullmatch(self.audio_sha256):
            raise ValueError(f"audio_sha256 must be 64 lowercase hex digits: {self.audio_sha256!r}")
        if not isinstance(self.model_id, str) or not isinstance(self.prep_version, str):
            raise ValueError("model_id and prep_version must be strings")

    @cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of all parts of the key; names the disk file."""
        # JSON keeps the parts unambiguous: ("a|b", "c") and ("a", "b|c") differ.
        payload = json.dumps(
            [_FORMAT, _FORMAT_VERSION, self.model_id, self.audio_sha256, self.prep_version],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        """The disk file's name: ``<audio_sha256>-<digest>.safetensors``.

        The clip's digest comes first so `ConditionalsCache.clear` can find
        every entry of one clip from the names alone.
        """
        return f"{self.audio_sha256}-{self.digest}{_SUFFIX}"


@dataclass(frozen=True)
class CacheResult:
    """The answer to `ConditionalsCache.get_or_prepare`.

    Attributes:
        tensors: the conditionals. Shared with the cache: treat them as
            read-only (``.to(device)`` for the GPU copies them anyway).
        tier: where they came from: ``"memory"``, ``"disk"``, or
            ``"prepared"`` (computed by this call).
        seconds: wall time of the call: lookup, load, or prepare and store.
    """

    tensors: CondTensors
    tier: Literal["memory", "disk", "prepared"]
    seconds: float


@dataclass
class _Entry:
    tensors: CondTensors
    nbytes: int
    # What preparing this entry cost; None when unknown (an old or odd file).
    prepare_seconds: float | None
    # _clock() when its disk file was last marked used.
    touched: float = 0.0


@dataclass
class _Flight:
    """One preparation in progress, which later askers for the same key wait on."""

    epoch: int
    done: threading.Event = field(default_factory=threading.Event)
    result: _Entry | None = None
    error: BaseException | None = None


class ConditionalsCache:
    """Conditionals by `CacheKey`: memory LRU, then safetensors files, then ``prepare``.

    Thread-safe: the daemon serves several clients from worker threads, and
    the GUI's stats request may come while a job prepares a voice. One lock
    guards the in-memory state and is held only for dictionary updates, never
    while preparing or doing file I/O, so a slow preparation of one voice
    never holds up a hit on another. A second lock serialises the steps that
    change the set of disk files (replace, prune, clear), so pruning never
    races a write or a clear. Lock order: disk lock, then state lock.
    """

    def __init__(
        self,
        directory: Path,
        memory_budget_bytes: int,
        disk_budget_bytes: int,
        tensors: Literal["torch", "numpy"] = "torch",
        sole_writer: bool = False,
    ) -> None:
        """Open (and create) the cache under ``directory``.

        Args:
            directory: where disk entries live (the daemon passes platformdirs'
                user cache dir joined with ``"conditionals"``).
            memory_budget_bytes: most bytes of tensors kept in memory.
            disk_budget_bytes: most bytes of entry files kept on disk.
            tensors: what the engine's ``prepare`` returns: torch tensors (the
                real engine) or numpy arrays (the fake one, so that a test
                daemon never imports torch at all). The files are the same
                safetensors format either way.
            sole_writer: no other process writes this folder (the daemon holds
                its instance lock), so every temporary file found now is a
                crash's leftover and is removed; otherwise only those older
                than ten minutes are.
        """
        if tensors not in ("torch", "numpy"):
            raise ValueError(f"tensors must be 'torch' or 'numpy', not {tensors!r}")
        self._tensors = tensors
        self._dir = Path(directory)
        self._memory_budget = _check_budget("memory_budget_bytes", memory_budget_bytes)
        self._disk_budget = _check_budget("disk_budget_bytes", disk_budget_bytes)
        self._lock = threading.Lock()
        self._disk_lock = threading.Lock()
        self._memory: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._memory_bytes = 0
        self._flights: dict[CacheKey, _Flight] = {}
        # Bumped by clear(): a preparation that began before a clear does not
        # put its (possibly just-cleared) result back into either tier.
        self._epoch = 0
        self._last_touch_ns = 0
        self._hits = {"memory": 0, "disk": 0}
        self._misses = 0
        self._prepared = 0
        self._prepared_in_background = 0
        # Entry files whose header and size were checked: name -> (inode,
        # size, mtime). A file is checked again only when one of them changes.
        self._verified: dict[str, tuple[int, int, int]] = {}
        self._prepare_failures = 0
        self._prepare_seconds_total = 0.0
        self._seconds_saved = 0.0
        self._disk_write_failures = 0
        self._disk_bad_files = 0
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Not fatal: the memory tier still works, and every disk write
            # will fail (logged) until the folder can be made.
            log.warning("conditionals cache: cannot create %s: %s", self._dir, exc)
        self._remove_stale_temp_files(0.0 if sole_writer else _STALE_TMP_SECONDS)
        # Corrupt, truncated or foreign files are removed now, not counted as
        # entries until someone happens to load them.
        self._checked_entry_files()

    # -- public API ---------------------------------------------------------

    def get_or_prepare(
        self, key: CacheKey, prepare: Callable[[], CondTensors], *, background: bool = False
    ) -> CacheResult:
        """Return the conditionals for ``key``, calling ``prepare`` only on a miss.

        Looks in memory, then on disk (a disk hit is promoted into memory),
        then calls ``prepare`` and stores its result in both tiers. While one
        thread prepares a key, other threads asking for the same key wait for
        that result (reported as a memory hit) instead of preparing again.

        ``prepare``'s tensors are copied to the CPU before they are kept, so
        the cache never holds GPU memory and the caller may reuse its own.

        ``background``: nobody asked for speech; the daemon is preparing a
        newly added voice ahead of use. Such a call is no request: it counts
        as neither hit nor miss, and a preparation it makes is counted in
        ``prepared_in_background`` (`stats`).

        Raises:
            Exception: whatever ``prepare`` raised, in the preparing thread
                and in every thread waiting on it; nothing is cached then.
            TypeError: when ``prepare`` returns something other than a dict
                of str to tensor.
        """
        start = _clock()
        hit: CacheResult | None = None
        flight: _Flight | None = None
        leader = False
        touch = False
        # One critical section for the memory check and the flight lookup:
        # with a gap between them, a flight could end unseen and the key be
        # prepared twice.
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
                touch = start - entry.touched >= _TOUCH_INTERVAL_S
                if touch:
                    entry.touched = start
                seconds = _clock() - start
                if not background:
                    self._record_hit_locked("memory", entry.prepare_seconds, seconds)
                hit = CacheResult(dict(entry.tensors), "memory", seconds)
            else:
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = _Flight(self._epoch)
                    self._flights[key] = flight
        if hit is not None:
            if touch:  # outside the lock: file I/O
                self._touch(self._dir / key.filename)
            return hit
        if flight is None:  # cannot happen: set whenever there was no hit
            raise RuntimeError("conditionals cache: no flight for a miss")
        if not leader:
            return self._wait(flight, start, background)
        try:
            return self._lead(key, prepare, flight, start, background)
        except BaseException as exc:
            with self._lock:
                self._flights.pop(key, None)
            flight.error = exc
            flight.done.set()
            raise

    def tier_of(self, key: CacheKey) -> Literal["memory", "disk"] | None:
        """Where ``key`` is cached now, without touching its LRU position.

        ``"disk"`` means a file of that name exists; whether it is sound is
        only checked when it is loaded.
        """
        with self._lock:
            if key in self._memory:
                return "memory"
        return "disk" if (self._dir / key.filename).is_file() else None

    def clear(self, audio_sha256: str | None = None) -> int:
        """Remove the entries of one clip (by its SHA-256), or all entries.

        Both tiers are cleared. A preparation already running when this is
        called still answers its callers but stores nothing.

        Returns:
            The number of distinct entries (keys) removed from either tier;
            an entry held in memory and on disk counts once.
        """
        if audio_sha256 is not None and not _SHA256_RE.fullmatch(audio_sha256):
            raise ValueError(f"audio_sha256 must be 64 lowercase hex digits: {audio_sha256!r}")
        removed: set[str] = set()
        with self._disk_lock:
            with self._lock:
                self._epoch += 1
                for key in list(self._memory):
                    if audio_sha256 is None or key.audio_sha256 == audio_sha256:
                        entry = self._memory.pop(key)
                        self._memory_bytes -= entry.nbytes
                        removed.add(key.digest)
            for path, match in self._entry_files():
                if (audio_sha256 is None or match.group(1) == audio_sha256) and remove_file(path, _CANNOT_REMOVE):
                    removed.add(match.group(2))
        log.info(
            "conditionals cache: cleared %d entries (%s)",
            len(removed),
            "all" if audio_sha256 is None else f"clip {audio_sha256[:12]}",
        )
        return len(removed)

    def set_budgets(self, memory_budget_bytes: int | None = None, disk_budget_bytes: int | None = None) -> None:
        """Change either budget (None keeps it); shrinking evicts at once."""
        memory = None if memory_budget_bytes is None else _check_budget("memory_budget_bytes", memory_budget_bytes)
        disk = None if disk_budget_bytes is None else _check_budget("disk_budget_bytes", disk_budget_bytes)
        with self._disk_lock:
            with self._lock:
                if memory is not None:
                    self._memory_budget = memory
                    self._evict_memory_locked()
                if disk is not None:
                    self._disk_budget = disk
            if disk is not None:
                self._prune_disk_locked()

    def stats(self) -> dict[str, Any]:
        """The cache's figures as a JSON-ready dict: ``cache.stats``' result, each field in docs/protocol.md.

        Hits, misses and the hit rate count requests only, never background
        preparations; the disk figures are the folder's entry files now, each
        checked (header and size) once, so a corrupt file is removed rather
        than counted.
        """
        checked = self._checked_entry_files()
        disk_entries = len(checked)
        disk_bytes = sum(size for _path, size in checked)
        with self._lock:
            hits = dict(self._hits)
            total_hits = hits["memory"] + hits["disk"]
            requests = total_hits + self._misses
            return {
                "hits": hits,
                "misses": self._misses,
                "requests": requests,
                "hit_rate": (total_hits / requests) if requests else 0.0,
                "entries": {"memory": len(self._memory), "disk": disk_entries},
                "bytes": {"memory": self._memory_bytes, "disk": disk_bytes},
                "prepared_in_background": self._prepared_in_background,
                "prepare_seconds_total": self._prepare_seconds_total,
                "prepare_failures": self._prepare_failures,
                "seconds_saved": self._seconds_saved,
                "disk_errors": {
                    "write": self._disk_write_failures,
                    "bad_file": self._disk_bad_files,
                },
                "budgets": {
                    "memory_bytes": self._memory_budget,
                    "disk_bytes": self._disk_budget,
                },
                "directory": str(self._dir),
            }

    # -- lookup and preparation ------------------------------------------------

    def _wait(self, flight: _Flight, start: float, background: bool) -> CacheResult:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        entry = flight.result
        if entry is None:  # cannot happen: done is set after result or error
            raise RuntimeError("conditionals cache: preparation ended without a result")
        seconds = _clock() - start
        if not background:  # a request that found the work under way: a hit
            with self._lock:
                self._record_hit_locked("memory", entry.prepare_seconds, seconds)
        return CacheResult(dict(entry.tensors), "memory", seconds)

    def _lead(
        self,
        key: CacheKey,
        prepare: Callable[[], CondTensors],
        flight: _Flight,
        start: float,
        background: bool,
    ) -> CacheResult:
        entry = self._load_from_disk(key)
        if entry is not None:
            self._touch(self._dir / key.filename)
            entry.touched = _clock()
            seconds = _clock() - start
            with self._lock:
                if flight.epoch == self._epoch:
                    self._store_memory_locked(key, entry)
                self._flights.pop(key, None)
                if not background:
                    self._record_hit_locked("disk", entry.prepare_seconds, seconds)
            flight.result = entry
            flight.done.set()
            return CacheResult(dict(entry.tensors), "disk", seconds)

        if not background:
            with self._lock:
                self._misses += 1
        prep_start = _clock()
        try:
            raw = prepare()
            prepare_seconds = _clock() - prep_start
            tensors = _cpu_copy(raw, self._tensors)
        except BaseException:
            with self._lock:
                self._prepare_failures += 1
            raise
        entry = _Entry(tensors, _nbytes(tensors), prepare_seconds, touched=_clock())
        with self._lock:
            self._prepared += 1
            if background:
                self._prepared_in_background += 1
            self._prepare_seconds_total += prepare_seconds
            if flight.epoch == self._epoch:
                self._store_memory_locked(key, entry)
        # Written before the flight ends: a request arriving after that and
        # missing memory (entry over the memory budget) then finds the file.
        self._write_to_disk(key, entry, flight.epoch)
        with self._lock:
            self._flights.pop(key, None)
        flight.result = entry
        flight.done.set()
        return CacheResult(dict(tensors), "prepared", _clock() - start)

    def _record_hit_locked(
        self, tier: Literal["memory", "disk"], prepare_seconds: float | None, seconds: float
    ) -> None:
        self._hits[tier] += 1
        if prepare_seconds is None:
            # No stored cost (old file): the average preparation so far stands in.
            prepare_seconds = self._prepare_seconds_total / self._prepared if self._prepared else 0.0
        self._seconds_saved += max(0.0, prepare_seconds - seconds)

    # -- memory tier -------------------------------------------------------------

    def _store_memory_locked(self, key: CacheKey, entry: _Entry) -> None:
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_bytes -= old.nbytes
        if entry.nbytes > self._memory_budget:
            # Keeping it would evict everything else and then itself.
            return
        self._memory[key] = entry
        self._memory_bytes += entry.nbytes
        self._evict_memory_locked()

    def _evict_memory_locked(self) -> None:
        while self._memory and self._memory_bytes > self._memory_budget:
            _key, entry = self._memory.popitem(last=False)
            self._memory_bytes -= entry.nbytes

    # -- disk tier -------------------------------------------------------------

    def _load_from_disk(self, key: CacheKey) -> _Entry | None:
        """Load and check ``key``'s file; None on a miss. Never raises."""
        path = self._dir / key.filename
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._drop_bad_file(path, f"unreadable ({exc})")
            return None
        problem = _file_problem(io.BytesIO(data), len(data), _FILE_RE.fullmatch(path.name))
        if problem is None:
            try:
                tensors = _safetensors(self._tensors).load(data)
            except Exception as exc:  # safetensors raises its own error type; any means corrupt
                problem = f"corrupt ({type(exc).__name__}: {exc})"
        if problem is not None:
            self._drop_bad_file(path, problem)
            return None
        (length,) = struct.unpack("<Q", data[:8])
        metadata = json.loads(data[8 : 8 + length])["__metadata__"]  # checked by _file_problem
        try:
            prepare_seconds: float | None = float(metadata.get("prepare_seconds", ""))
        except ValueError:
            prepare_seconds = None
        return _Entry(tensors, _nbytes(tensors), prepare_seconds)

    def _checked_entry_files(self) -> list[tuple[Path, int]]:
        """The entry files whose header and size are sound, with their sizes.

        Each file is read (its header only) the first time it is seen and
        again when it changes; a bad one is removed and counted as a bad file.
        """
        good: list[tuple[Path, int]] = []
        seen: set[str] = set()
        for path, match in self._entry_files():
            try:
                st = path.stat()
                ident = (st.st_ino, st.st_size, st.st_mtime_ns)
                problem = None
                if self._verified.get(path.name) != ident:  # new or changed: read its header
                    with open(path, "rb") as f:
                        st = os.fstat(f.fileno())  # the very file read, even if replaced meanwhile
                        ident = (st.st_ino, st.st_size, st.st_mtime_ns)
                        problem = _file_problem(f, st.st_size, match)
            except FileNotFoundError:
                continue  # pruned or cleared meanwhile
            except OSError as exc:
                problem, ident = f"unreadable ({exc})", (0, 0, 0)
            if problem:
                self._drop_bad_file(path, problem, inode=ident[0] or None)
                continue
            seen.add(path.name)
            self._verified[path.name] = ident
            good.append((path, ident[1]))
        for name in set(self._verified) - seen:
            self._verified.pop(name, None)
        return good

    def _drop_bad_file(self, path: Path, why: str, inode: int | None = None) -> None:
        """Remove a bad entry file (only that inode, when given: a good file may have replaced it)."""
        with self._disk_lock:
            try:
                if inode is not None and path.stat().st_ino != inode:
                    return  # replaced meanwhile by a good write
            except OSError:
                return  # gone meanwhile (pruned, cleared)
            log.warning("conditionals cache: %s is %s; removing it and preparing again", path, why)
            with self._lock:
                self._disk_bad_files += 1
            remove_file(path, _CANNOT_REMOVE)

    def _write_to_disk(self, key: CacheKey, entry: _Entry, epoch: int) -> None:
        """Store ``entry`` atomically and prune; log, never raise, on failure."""
        final = self._dir / key.filename
        metadata = {**_key_metadata(key), "prepare_seconds": repr(entry.prepare_seconds or 0.0)}
        tmp: Path | None = None
        try:
            payload = _safetensors(self._tensors).save(entry.tensors, metadata=metadata)
            tmp = write_temp(self._dir, payload, mode=OWNER_ONLY, site="cache")
            with self._disk_lock:
                with self._lock:
                    current = epoch == self._epoch
                if current:
                    commit_temp(tmp, final, site="cache")
                    tmp = None
                    self._touch(final)
                    self._prune_disk_locked()
        except Exception as exc:
            with self._lock:
                self._disk_write_failures += 1
            log.warning(
                "conditionals cache: could not write %s (%s: %s); it will be prepared again next time",
                final,
                type(exc).__name__,
                exc,
            )
        finally:
            if tmp is not None:
                discard_temp(tmp)

    def _touch(self, path: Path) -> None:
        """Mark ``path`` most recently used (pruning goes by mtime).

        The time is kept strictly increasing within this process: file
        systems' own timestamps are coarse enough (a clock tick) for two
        quick writes to tie.
        """
        with self._lock:
            now = max(time.time_ns(), self._last_touch_ns + 1)
            self._last_touch_ns = now
        try:
            os.utime(path, ns=(now, now))
        except OSError as exc:
            log.debug("conditionals cache: cannot touch %s: %s", path, exc)

    def _prune_disk_locked(self) -> None:
        """Delete least recently used files until under the disk budget."""
        files: list[tuple[int, str, Path, int]] = []
        total = 0
        for path, _match in self._entry_files():
            try:
                st = path.stat()
            except OSError:
                continue
            files.append((st.st_mtime_ns, path.name, path, st.st_size))
            total += st.st_size
        if total <= self._disk_budget:
            return
        files.sort()
        for _mtime, _name, path, size in files:
            if total <= self._disk_budget:
                break
            if not remove_file(path, _CANNOT_REMOVE):
                continue
            total -= size
            log.debug("conditionals cache: pruned %s (%d bytes)", path.name, size)

    def _names(self) -> list[str]:
        """The folder's file names; none while it cannot be read."""
        try:
            return os.listdir(self._dir)
        except OSError:
            return []

    def _entry_files(self) -> list[tuple[Path, re.Match[str]]]:
        return [(self._dir / name, match) for name in self._names() if (match := _FILE_RE.fullmatch(name))]

    def _remove_stale_temp_files(self, age: float) -> None:
        cutoff = time.time() - age
        for name in self._names():
            if not (name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)):  # ipc/atomic.py's temporary files
                continue
            path = self._dir / name
            try:
                if age <= 0 or path.stat().st_mtime < cutoff:
                    path.unlink()
                    log.info("conditionals cache: removed stale temporary file %s", path)
            except OSError:
                continue


def _check_budget(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    return value


def _safetensors(kind: str) -> Any:
    """safetensors' module for torch tensors or numpy arrays (imported on first use)."""
    if kind == "numpy":
        import safetensors.numpy

        return safetensors.numpy
    import safetensors.torch

    return safetensors.torch


def _cpu_copy(raw: Mapping[str, Any], kind: str = "torch") -> CondTensors:
    """Detached, contiguous CPU copies: the cache owns its tensors outright."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"prepare() must return a dict of tensors, not {type(raw).__name__}")
    if kind == "numpy":
        import numpy as np

        arrays: CondTensors = {}
        for name, array in raw.items():
            if not isinstance(name, str) or not isinstance(array, np.ndarray):
                raise TypeError(
                    f"prepare() must return dict[str, ndarray]; got {type(name).__name__} -> {type(array).__name__}"
                )
            arrays[name] = np.ascontiguousarray(array).copy()
        return arrays
    import torch

    out: CondTensors = {}
    for name, tensor in raw.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"prepare() must return dict[str, Tensor]; got {type(name).__name__} -> {type(tensor).__name__}"
            )
        out[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return out


def _nbytes(tensors: Mapping[str, Any]) -> int:
    # torch tensors count numel * element_size; numpy arrays know their nbytes.
    return sum(t.numel() * t.element_size() if hasattr(t, "element_size") else int(t.nbytes) for t in tensors.values())


#: Bytes per element of the safetensors dtypes the conditionals use.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _file_problem(f: Any, size: int, match: re.Match[str]) -> str | None:
    """Why an open entry file is not a whole entry of the key its name says, or None.

    Cheap: reads the header only. Checks that the header parses, that its
    metadata is ours and gives back the digest in the file's name, that
    every tensor's byte range fits its dtype and shape, and that the file
    is exactly as long as the header says (a truncated write fails that).
    """
    head = f.read(8)
    if len(head) < 8:
        return "shorter than a safetensors header"
    (length,) = struct.unpack("<Q", head)
    if length > _MAX_HEADER_BYTES or 8 + length > size:
        return "truncated (its header is cut off)"
    try:
        header = json.loads(f.read(length))
    except (ValueError, RecursionError):
        return "corrupt (its header is not JSON)"
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        return "not a conditionals entry (no metadata)"
    metadata = header["__metadata__"]
    try:
        key = CacheKey(metadata.get("model_id"), metadata.get("audio_sha256"), metadata.get("prep_version"))
    except ValueError:
        return "foreign (its metadata names no key)"
    if _metadata_problem(metadata, key) or key.filename != match.group(0):
        return "foreign (its metadata does not match its name)"
    end = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = tensor["data_offsets"]
            count = 1
            for dim in tensor["shape"]:
                count *= int(dim)
            width = _DTYPE_BYTES[tensor["dtype"]]
        except (TypeError, KeyError, ValueError):
            return f"corrupt (tensor {name!r} is described wrongly)"
        if (
            not (isinstance(begin, int) and isinstance(stop, int) and 0 <= begin <= stop)
            or stop - begin != count * width
        ):
            return f"corrupt (tensor {name!r} has the wrong size)"
        end = max(end, stop)
    if 8 + length + end != size:
        return f"truncated or padded ({size} bytes where its header says {8 + length + end})"
    return None


def _key_metadata(key: CacheKey) -> dict[str, str]:
    """What an entry file's metadata says of its format and key."""
    return {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model_id": key.model_id,
        "audio_sha256": key.audio_sha256,
        "prep_version": key.prep_version,
    }


def _metadata_problem(metadata: Mapping[str, Any], key: CacheKey) -> str | None:
    """Why a file's metadata does not belong to ``key``, or None if it does."""
    for name, value in _key_metadata(key).items():
        if metadata.get(name) != value:
            return f"foreign (its {name} is {metadata.get(name)!r}, expected {value!r})"
    return None
