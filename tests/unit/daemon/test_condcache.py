"""Tests for daemon/condcache.py: the two-tier conditionals cache."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch

from chatterbox_tray.daemon import condcache
from chatterbox_tray.daemon.condcache import (
    CacheKey,
    CacheResult,
    ConditionalsCache,
    CondTensors,
)

MIB = 1 << 20
WAIT = 10.0  # seconds a test waits for another thread before failing


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key(audio: str = "voice-a", model: str = "original@abc123", prep: str = "v1") -> CacheKey:
    return CacheKey(model_id=model, audio_sha256=sha(audio), prep_version=prep)


def conds(n_floats: int = 256, seed: int = 0) -> CondTensors:
    """Fake conditionals whose tensors take exactly ``n_floats * 4 + 40`` bytes."""
    g = torch.Generator().manual_seed(seed)
    return {
        "t3.speaker_emb": torch.randn(1, n_floats, generator=g),
        "t3.cond_prompt_speech_tokens": torch.arange(5, dtype=torch.int64).reshape(1, 5),
    }


def size_of(n_floats: int) -> int:
    return n_floats * 4 + 5 * 8


class Prepare:
    """A ``prepare`` callable that counts its calls."""

    def __init__(self, tensors: CondTensors | None = None, seed: int = 0) -> None:
        self.tensors = tensors if tensors is not None else conds(seed=seed)
        self.calls = 0

    def __call__(self) -> CondTensors:
        self.calls += 1
        return self.tensors


def assert_same(a: CondTensors, b: CondTensors) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def entry_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(".safetensors"))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "conditionals"


@pytest.fixture
def cache(cache_dir: Path) -> ConditionalsCache:
    return ConditionalsCache(cache_dir, memory_budget_bytes=64 * MIB, disk_budget_bytes=64 * MIB)


class FakeClock:
    """Stands in for condcache's perf_counter; ``prepare`` advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- keys ------------------------------------------------------------------------


def test_key_digest_depends_on_every_part() -> None:
    base = key()
    others = [key(audio="voice-b"), key(model="turbo@abc123"), key(prep="v2")]
    digests = {base.digest} | {k.digest for k in others}
    assert len(digests) == 4
    assert key().digest == base.digest, "the digest is deterministic"
    assert len(base.digest) == 64


def test_key_parts_are_not_ambiguous() -> None:
    a = CacheKey(model_id="m|x", audio_sha256=sha("a"), prep_version="p")
    b = CacheKey(model_id="m", audio_sha256=sha("a"), prep_version="x|p")
    assert a.digest != b.digest


def test_key_filename_starts_with_the_audio_sha() -> None:
    k = key()
    assert k.filename == f"{k.audio_sha256}-{k.digest}.safetensors"


@pytest.mark.parametrize("bad", ["", "abc", sha("x").upper(), "../" + sha("x")[3:], sha("x") + "0"])
def test_key_rejects_malformed_audio_sha(bad: str) -> None:
    with pytest.raises(ValueError):
        CacheKey(model_id="m", audio_sha256=bad, prep_version="p")


def test_keys_are_hashable_values() -> None:
    assert key() == key()
    assert len({key(), key(), key(prep="v2")}) == 2


# -- memory tier -----------------------------------------------------------------


def test_miss_then_memory_hit(cache: ConditionalsCache) -> None:
    prepare = Prepare()
    first = cache.get_or_prepare(key(), prepare)
    second = cache.get_or_prepare(key(), prepare)
    assert isinstance(first, CacheResult)
    assert first.tier == "prepared"
    assert second.tier == "memory"
    assert prepare.calls == 1
    assert_same(first.tensors, prepare.tensors)
    assert_same(second.tensors, prepare.tensors)
    assert cache.tier_of(key()) == "memory"
    assert cache.tier_of(key(audio="other")) is None


def test_cache_keeps_its_own_cpu_copies(cache: ConditionalsCache) -> None:
    original = conds()
    original["grad"] = torch.ones(3, requires_grad=True)
    original["view"] = torch.arange(12.0).reshape(3, 4).t()  # not contiguous
    cache.get_or_prepare(key(), lambda: original)
    with torch.no_grad():
        original["t3.speaker_emb"].zero_()
        original["grad"].zero_()
    hit = cache.get_or_prepare(key(), Prepare())
    assert hit.tier == "memory"
    assert hit.tensors["t3.speaker_emb"].abs().sum() > 0, "caller's later edits must not leak in"
    assert torch.equal(hit.tensors["grad"], torch.ones(3))
    for tensor in hit.tensors.values():
        assert tensor.device.type == "cpu"
        assert not tensor.requires_grad
        assert tensor.is_contiguous()


def test_results_are_fresh_dicts(cache: ConditionalsCache) -> None:
    cache.get_or_prepare(key(), Prepare())
    hit = cache.get_or_prepare(key(), Prepare())
    hit.tensors.clear()
    again = cache.get_or_prepare(key(), Prepare())
    assert set(again.tensors) == {"t3.speaker_emb", "t3.cond_prompt_speech_tokens"}


def test_memory_lru_eviction_under_budget(cache_dir: Path) -> None:
    entry = size_of(256)
    cache = ConditionalsCache(cache_dir, memory_budget_bytes=2 * entry + 10, disk_budget_bytes=MIB)
    a, b, c = key("a"), key("b"), key("c")
    cache.get_or_prepare(a, Prepare(seed=1))
    cache.get_or_prepare(b, Prepare(seed=2))
    assert cache.get_or_prepare(a, Prepare()).tier == "memory"  # a is now most recent
    cache.get_or_prepare(c, Prepare(seed=3))

    assert cache.tier_of(a) == "memory"
    assert cache.tier_of(c) == "memory"
    assert cache.tier_of(b) == "disk", "least recently used goes, but stays on disk"
    stats = cache.stats()
    assert stats["entries"]["memory"] == 2
    assert stats["bytes"]["memory"] == 2 * entry

    prepare_b = Prepare()
    result = cache.get_or_prepare(b, prepare_b)
    assert result.tier == "disk"
    assert prepare_b.calls == 0
    assert_same(result.tensors, conds(seed=2))
    # Promoting b evicted the least recent of a and c: a (hit before c was added).
    assert cache.tier_of(a) == "disk"
    assert cache.tier_of(b) == "memory"


def test_entry_larger_than_memory_budget_is_kept_on_disk_only(cache_dir: Path) -> None:
    cache = ConditionalsCache(cache_dir, memory_budget_bytes=100, disk_budget_bytes=MIB)
    prepare = Prepare()
    assert cache.get_or_prepare(key(), prepare).tier == "prepared"
    assert cache.tier_of(key()) == "disk"
    assert cache.stats()["entries"]["memory"] == 0
    assert cache.stats()["bytes"]["memory"] == 0
    assert cache.get_or_prepare(key(), prepare).tier == "disk"
    assert prepare.calls == 1


def test_shrinking_memory_budget_evicts(cache: ConditionalsCache) -> None:
    for name in "abc":
        cache.get_or_prepare(key(name), Prepare())
    assert cache.stats()["entries"]["memory"] == 3
    cache.set_budgets(memory_budget_bytes=size_of(256))
    assert cache.stats()["entries"]["memory"] == 1
    assert cache.tier_of(key("c")) == "memory"
    assert cache.stats()["budgets"]["memory_bytes"] == size_of(256)


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_budgets_must_be_non_negative_ints(cache_dir: Path, bad: object) -> None:
    with pytest.raises(ValueError):
        ConditionalsCache(cache_dir, memory_budget_bytes=bad, disk_budget_bytes=0)  # type: ignore[arg-type]


# -- disk tier -------------------------------------------------------------------


def test_disk_hit_after_restart(cache_dir: Path) -> None:
    first = ConditionalsCache(cache_dir, MIB, MIB)
    original = Prepare()
    first.get_or_prepare(key(), original)

    second = ConditionalsCache(cache_dir, MIB, MIB)
    assert second.tier_of(key()) == "disk"
    prepare = Prepare()
    result = second.get_or_prepare(key(), prepare)
    assert result.tier == "disk"
    assert prepare.calls == 0
    assert_same(result.tensors, original.tensors)
    assert second.tier_of(key()) == "memory", "a disk hit is promoted into memory"
    assert second.get_or_prepare(key(), prepare).tier == "memory"


def test_other_model_or_prep_version_misses(cache_dir: Path) -> None:
    cache = ConditionalsCache(cache_dir, MIB, MIB)
    cache.get_or_prepare(key(), Prepare())
    for other in (key(model="turbo@abc123"), key(prep="v2")):
        prepare = Prepare()
        assert cache.get_or_prepare(other, prepare).tier == "prepared"
        assert prepare.calls == 1


def test_disk_file_is_safetensors_with_the_key_in_its_metadata(cache: ConditionalsCache, cache_dir: Path) -> None:
    cache.get_or_prepare(key(), Prepare())
    path = cache_dir / key().filename
    assert entry_files(cache_dir) == [path]
    with safetensors.safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == {"t3.speaker_emb", "t3.cond_prompt_speech_tokens"}
    assert meta["audio_sha256"] == key().audio_sha256
    assert meta["model_id"] == key().model_id
    assert meta["prep_version"] == key().prep_version
    assert float(meta["prepare_seconds"]) >= 0.0
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * 7)


def _huge_header(path: Path) -> None:
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}")


def _bad_json(path: Path) -> None:
    header = b"{not json"
    path.write_bytes(len(header).to_bytes(8, "little") + header)


def _foreign_metadata(path: Path) -> None:
    tensors = conds(seed=99)
    meta = {"format": "chatterbox-tray/conditionals", "format_version": "1"}
    meta.update(model_id="someone-else", audio_sha256=sha("x"), prep_version="v1")
    path.write_bytes(safetensors.torch.save(tensors, metadata=meta))


def _no_metadata(path: Path) -> None:
    path.write_bytes(safetensors.torch.save(conds(seed=99)))


@pytest.mark.parametrize(
    "damage",
    [_truncate, _garbage, _huge_header, _bad_json, _foreign_metadata, _no_metadata],
)
def test_bad_disk_file_is_recomputed_and_replaced(cache_dir: Path, damage: Callable[[Path], None]) -> None:
    ConditionalsCache(cache_dir, MIB, MIB).get_or_prepare(key(), Prepare(seed=1))
    path = cache_dir / key().filename
    damage(path)

    cache = ConditionalsCache(cache_dir, MIB, MIB)
    prepare = Prepare(seed=1)
    result = cache.get_or_prepare(key(), prepare)
    assert result.tier == "prepared"
    assert prepare.calls == 1
    assert_same(result.tensors, conds(seed=1))
    stats = cache.stats()
    assert stats["disk_errors"]["bad_file"] == 1
    assert stats["misses"] == 1
    assert stats["hits"] == {"memory": 0, "disk": 0}

    # The file was replaced by a sound one: a fresh instance hits it.
    fresh = ConditionalsCache(cache_dir, MIB, MIB)
    again = fresh.get_or_prepare(key(), Prepare())
    assert again.tier == "disk"
    assert_same(again.tensors, conds(seed=1))


def test_foreign_file_under_another_keys_name_is_not_served(cache_dir: Path) -> None:
    """A file copied over another key's name carries the wrong key: recomputed."""
    cache = ConditionalsCache(cache_dir, 0, MIB)
    cache.get_or_prepare(key("a"), Prepare(seed=1))
    cache.get_or_prepare(key("b"), Prepare(seed=2))
    os.replace(cache_dir / key("a").filename, cache_dir / key("b").filename)
    prepare = Prepare(seed=2)
    result = ConditionalsCache(cache_dir, 0, MIB).get_or_prepare(key("b"), prepare)
    assert result.tier == "prepared"
    assert_same(result.tensors, conds(seed=2))


def test_write_failure_is_not_an_error_and_misses_next_time(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(condcache.os, "replace", disk_full)
    cache = ConditionalsCache(cache_dir, MIB, MIB)
    prepare = Prepare()
    result = cache.get_or_prepare(key(), prepare)
    assert result.tier == "prepared"
    assert_same(result.tensors, prepare.tensors)
    assert cache.stats()["disk_errors"]["write"] == 1
    assert list(cache_dir.iterdir()) == [], "no entry and no temporary file is left"
    monkeypatch.undo()

    again = Prepare()
    assert ConditionalsCache(cache_dir, MIB, MIB).get_or_prepare(key(), again).tier == "prepared"
    assert again.calls == 1


def test_write_failure_on_fsync_leaves_nothing(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(condcache.os, "fsync", broken_fsync)
    cache = ConditionalsCache(cache_dir, MIB, MIB)
    assert cache.get_or_prepare(key(), Prepare()).tier == "prepared"
    assert list(cache_dir.iterdir()) == []
    assert cache.tier_of(key()) == "memory"


def test_unwritable_directory_still_serves_from_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ConditionalsCache(blocker / "conditionals", MIB, MIB)
    prepare = Prepare()
    assert cache.get_or_prepare(key(), prepare).tier == "prepared"
    assert cache.get_or_prepare(key(), prepare).tier == "memory"
    assert prepare.calls == 1
    stats = cache.stats()
    assert stats["disk_errors"]["write"] == 1
    assert stats["entries"]["disk"] == 0


def test_disk_pruning_by_budget_drops_least_recently_used(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A still clock makes every file's stored prepare time "0.0", so all files
    # have the same size.
    monkeypatch.setattr(condcache, "_clock", FakeClock())
    probe_dir = cache_dir.parent / "probe"
    ConditionalsCache(probe_dir, 0, MIB).get_or_prepare(key("probe"), Prepare())
    file_size = entry_files(probe_dir)[0].stat().st_size

    # No memory tier, so every hit is a disk hit and refreshes its file.
    cache = ConditionalsCache(cache_dir, 0, 2 * file_size + file_size // 2)
    a, b, c = key("a"), key("b"), key("c")
    cache.get_or_prepare(a, Prepare(seed=1))
    cache.get_or_prepare(b, Prepare(seed=2))
    assert cache.get_or_prepare(a, Prepare()).tier == "disk"
    cache.get_or_prepare(c, Prepare(seed=3))

    assert cache.tier_of(b) is None, "b was least recently used"
    assert cache.tier_of(a) == "disk"
    assert cache.tier_of(c) == "disk"
    stats = cache.stats()
    assert stats["entries"]["disk"] == 2
    assert stats["bytes"]["disk"] == 2 * file_size
    assert stats["bytes"]["disk"] <= stats["budgets"]["disk_bytes"]

    cache.set_budgets(disk_budget_bytes=file_size)
    assert cache.tier_of(a) is None, "shrinking the budget prunes at once"
    assert cache.tier_of(c) == "disk"
    cache.set_budgets(disk_budget_bytes=0)
    assert entry_files(cache_dir) == []


def test_memory_hits_keep_the_disk_file_warm(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(condcache, "_clock", clock)
    cache = ConditionalsCache(cache_dir, MIB, MIB)
    cache.get_or_prepare(key(), Prepare())
    path = cache_dir / key().filename
    os.utime(path, ns=(1, 1))
    cache.get_or_prepare(key(), Prepare())
    assert path.stat().st_mtime_ns == 1, "not touched again within the interval"
    clock.now += 3600
    cache.get_or_prepare(key(), Prepare())
    assert path.stat().st_mtime_ns > 1


def test_stale_temp_files_are_removed_at_start(cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True)
    stale = cache_dir / ".tmp-crashed.partial"
    fresh = cache_dir / ".tmp-writing.partial"
    for p in (stale, fresh):
        p.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    ConditionalsCache(cache_dir, MIB, MIB)
    assert not stale.exists()
    assert fresh.exists(), "a temporary file still being written is left alone"


# -- single flight ---------------------------------------------------------------


class WaitWatchingEvent(threading.Event):
    """An Event that says when someone starts waiting on it."""

    waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        type(self).waiting.set()
        return super().wait(timeout)


@pytest.fixture
def watched_flights(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every flight's ``done`` event report when a waiter arrives."""
    WaitWatchingEvent.waiting = threading.Event()

    class WatchedFlight(condcache._Flight):
        def __init__(self, epoch: int) -> None:
            super().__init__(epoch)
            self.done = WaitWatchingEvent()

    monkeypatch.setattr(condcache, "_Flight", WatchedFlight)
    return WaitWatchingEvent.waiting


class SlowPrepare(Prepare):
    """Blocks inside ``prepare`` until released."""

    def __init__(self, seed: int = 0, error: Exception | None = None) -> None:
        super().__init__(seed=seed)
        self.started = threading.Event()
        self.release = threading.Event()
        self.error = error

    def __call__(self) -> CondTensors:
        self.calls += 1
        self.started.set()
        if not self.release.wait(WAIT):
            raise TimeoutError("test never released prepare")
        if self.error is not None:
            raise self.error
        return self.tensors


def run_in_thread(fn: Callable[[], CacheResult]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_single_flight_prepares_once(cache: ConditionalsCache, watched_flights: threading.Event) -> None:
    slow = SlowPrepare()
    second = Prepare()
    t1, out1 = run_in_thread(lambda: cache.get_or_prepare(key(), slow))
    assert slow.started.wait(WAIT)
    t2, out2 = run_in_thread(lambda: cache.get_or_prepare(key(), second))
    assert watched_flights.wait(WAIT), "the second caller should wait on the first"
    slow.release.set()
    t1.join(WAIT)
    t2.join(WAIT)

    assert slow.calls == 1
    assert second.calls == 0
    r1, r2 = out1["result"], out2["result"]
    assert isinstance(r1, CacheResult) and isinstance(r2, CacheResult)
    assert r1.tier == "prepared"
    assert r2.tier == "memory"
    assert_same(r1.tensors, r2.tensors)
    stats = cache.stats()
    assert stats["misses"] == 1
    assert stats["hits"] == {"memory": 1, "disk": 0}


def test_other_keys_are_not_blocked_by_a_slow_prepare(cache: ConditionalsCache) -> None:
    cache.get_or_prepare(key("warm"), Prepare())
    slow = SlowPrepare()
    t1, out1 = run_in_thread(lambda: cache.get_or_prepare(key("slow"), slow))
    assert slow.started.wait(WAIT)
    try:
        # Both return while "slow" is still preparing: no global lock is held.
        assert cache.get_or_prepare(key("warm"), Prepare()).tier == "memory"
        other = Prepare()
        assert cache.get_or_prepare(key("other"), other).tier == "prepared"
        assert other.calls == 1
        assert cache.tier_of(key("slow")) is None
        assert cache.stats()["misses"] == 3
    finally:
        slow.release.set()
        t1.join(WAIT)
    assert isinstance(out1["result"], CacheResult)


def test_prepare_error_reaches_every_waiter_and_caches_nothing(
    cache: ConditionalsCache, cache_dir: Path, watched_flights: threading.Event
) -> None:
    boom = RuntimeError("model fell over")
    slow = SlowPrepare(error=boom)
    t1, out1 = run_in_thread(lambda: cache.get_or_prepare(key(), slow))
    assert slow.started.wait(WAIT)
    t2, out2 = run_in_thread(lambda: cache.get_or_prepare(key(), Prepare()))
    assert watched_flights.wait(WAIT)
    slow.release.set()
    t1.join(WAIT)
    t2.join(WAIT)

    assert out1.get("error") is boom
    assert out2.get("error") is boom
    assert cache.tier_of(key()) is None
    assert entry_files(cache_dir) == []
    stats = cache.stats()
    assert stats["prepare_failures"] == 1
    assert stats["entries"] == {"memory": 0, "disk": 0}
    assert stats["hits"] == {"memory": 0, "disk": 0}

    retry = Prepare()
    assert cache.get_or_prepare(key(), retry).tier == "prepared"
    assert retry.calls == 1


def test_prepare_error_in_the_calling_thread(cache: ConditionalsCache) -> None:
    def fail() -> CondTensors:
        raise ValueError("clip too odd")

    with pytest.raises(ValueError, match="clip too odd"):
        cache.get_or_prepare(key(), fail)
    assert cache.tier_of(key()) is None


@pytest.mark.parametrize(
    "bad",
    [[torch.zeros(1)], {"a": [1.0, 2.0]}, {1: torch.zeros(1)}],
    ids=["list", "not-a-tensor", "not-a-str-key"],
)
def test_prepare_must_return_a_dict_of_tensors(cache: ConditionalsCache, bad: object) -> None:
    with pytest.raises(TypeError):
        cache.get_or_prepare(key(), lambda: bad)  # type: ignore[arg-type,return-value]
    assert cache.tier_of(key()) is None


def test_clear_during_prepare_stores_nothing(cache: ConditionalsCache, cache_dir: Path) -> None:
    slow = SlowPrepare()
    t1, out1 = run_in_thread(lambda: cache.get_or_prepare(key(), slow))
    assert slow.started.wait(WAIT)
    cache.clear()
    slow.release.set()
    t1.join(WAIT)
    result = out1["result"]
    assert isinstance(result, CacheResult) and result.tier == "prepared"
    assert cache.tier_of(key()) is None
    assert entry_files(cache_dir) == []


def test_many_threads_many_keys(cache: ConditionalsCache) -> None:
    """A stress run: every key prepared exactly once however requests interleave."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def make_prepare(name: str) -> Callable[[], CondTensors]:
        def prepare() -> CondTensors:
            with lock:
                counts[name] = counts.get(name, 0) + 1
            time.sleep(0.01)
            return conds(seed=len(name))

        return prepare

    names = [f"v{i}" for i in range(6)]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(30):
                name = names[(i + offset) % len(names)]
                cache.get_or_prepare(key(name), make_prepare(name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert counts == dict.fromkeys(names, 1)
    stats = cache.stats()
    assert stats["misses"] == len(names)
    assert stats["hits"]["memory"] + stats["hits"]["disk"] == 8 * 30 - len(names)


# -- clear -----------------------------------------------------------------------


def test_clear_one_clip_then_all(cache_dir: Path) -> None:
    cache = ConditionalsCache(cache_dir, MIB, MIB)
    a1, a2, b = key("a"), key("a", model="turbo@1"), key("b")
    for k in (a1, a2, b):
        cache.get_or_prepare(k, Prepare())
    # a2 only on disk: counted once all the same.
    fresh = ConditionalsCache(cache_dir, MIB, MIB)
    fresh.get_or_prepare(a1, Prepare())
    fresh.get_or_prepare(b, Prepare())
    assert fresh.tier_of(a2) == "disk"

    assert fresh.clear(sha("a")) == 2
    assert fresh.tier_of(a1) is None
    assert fresh.tier_of(a2) is None
    assert fresh.tier_of(b) == "memory"
    assert [p.name for p in entry_files(cache_dir)] == [b.filename]

    assert fresh.clear() == 1
    assert fresh.tier_of(b) is None
    assert entry_files(cache_dir) == []
    assert fresh.stats()["entries"] == {"memory": 0, "disk": 0}
    assert fresh.clear() == 0


def test_clear_rejects_a_malformed_sha(cache: ConditionalsCache) -> None:
    with pytest.raises(ValueError):
        cache.clear("../../etc")


def test_clear_leaves_other_files_alone(cache: ConditionalsCache, cache_dir: Path) -> None:
    cache.get_or_prepare(key(), Prepare())
    other = cache_dir / "README.txt"
    other.write_text("not ours")
    assert cache.clear() == 1
    assert other.exists()


# -- stats -----------------------------------------------------------------------


def test_stats_before_any_request(cache: ConditionalsCache, cache_dir: Path) -> None:
    stats = cache.stats()
    assert stats["hits"] == {"memory": 0, "disk": 0}
    assert stats["misses"] == 0
    assert stats["requests"] == 0
    assert stats["hit_rate"] == 0.0
    assert stats["entries"] == {"memory": 0, "disk": 0}
    assert stats["bytes"] == {"memory": 0, "disk": 0}
    assert stats["prepare_seconds_total"] == 0.0
    assert stats["seconds_saved"] == 0.0
    assert stats["budgets"] == {"memory_bytes": 64 * MIB, "disk_bytes": 64 * MIB}
    assert stats["directory"] == str(cache_dir)
    json.dumps(stats)


def test_stats_numbers(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(condcache, "_clock", clock)

    def timed_prepare(seconds: float, seed: int = 0) -> Callable[[], CondTensors]:
        def prepare() -> CondTensors:
            clock.now += seconds
            return conds(seed=seed)

        return prepare

    cache = ConditionalsCache(cache_dir, MIB, MIB)
    assert cache.get_or_prepare(key("a"), timed_prepare(2.0)).seconds == 2.0
    cache.get_or_prepare(key("b"), timed_prepare(0.5))
    hit = cache.get_or_prepare(key("a"), timed_prepare(99.0))
    assert hit.tier == "memory"
    assert hit.seconds == 0.0
    cache.get_or_prepare(key("a"), timed_prepare(99.0))

    stats = cache.stats()
    assert stats["hits"] == {"memory": 2, "disk": 0}
    assert stats["misses"] == 2
    assert stats["requests"] == 4
    assert stats["hit_rate"] == 0.5
    assert stats["prepare_seconds_total"] == 2.5
    assert stats["seconds_saved"] == 4.0  # two hits on "a", which cost 2.0 to prepare
    entry_bytes = size_of(256)
    assert stats["entries"] == {"memory": 2, "disk": 2}
    assert stats["bytes"]["memory"] == 2 * entry_bytes
    assert stats["bytes"]["disk"] == sum(p.stat().st_size for p in entry_files(cache_dir))
    json.dumps(stats)

    # A new instance reads what "a" cost from the file's metadata.
    restarted = ConditionalsCache(cache_dir, MIB, MIB)
    assert restarted.get_or_prepare(key("a"), timed_prepare(99.0)).tier == "disk"
    stats = restarted.stats()
    assert stats["hits"] == {"memory": 0, "disk": 1}
    assert stats["misses"] == 0
    assert stats["hit_rate"] == 1.0
    assert stats["seconds_saved"] == 2.0
    assert stats["prepare_seconds_total"] == 0.0


def test_stats_without_stored_cost_use_the_average(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(condcache, "_clock", clock)

    def prepare() -> CondTensors:
        clock.now += 3.0
        return conds()

    # A file with the right key but no prepare_seconds (say, from an older build).
    cache_dir.mkdir(parents=True)
    meta = {
        "format": "chatterbox-tray/conditionals",
        "format_version": "1",
        "model_id": key("old").model_id,
        "audio_sha256": key("old").audio_sha256,
        "prep_version": key("old").prep_version,
    }
    (cache_dir / key("old").filename).write_bytes(safetensors.torch.save(conds(), metadata=meta))

    cache = ConditionalsCache(cache_dir, MIB, MIB)
    cache.get_or_prepare(key("new"), prepare)
    assert cache.get_or_prepare(key("old"), prepare).tier == "disk"
    assert cache.stats()["seconds_saved"] == 3.0


# -- numpy conditionals (the fake engine's) -------------------------------------------


def test_numpy_conditionals_round_trip_through_memory_and_disk(cache_dir: Path) -> None:
    import numpy as np

    raw = {
        "t3.speaker_emb": np.arange(256, dtype=np.float32).reshape(1, 256),
        "tokens": np.arange(5, dtype=np.int64).reshape(1, 5),
    }
    first = ConditionalsCache(cache_dir, 10 * MIB, 10 * MIB, tensors="numpy")
    made = first.get_or_prepare(key(), lambda: raw)
    assert made.tier == "prepared"
    assert first.stats()["bytes"]["memory"] == 256 * 4 + 5 * 8
    raw["t3.speaker_emb"][0, 0] = -1.0  # the cache holds its own copy
    assert made.tensors["t3.speaker_emb"][0, 0] == 0.0
    again = ConditionalsCache(cache_dir, 10 * MIB, 10 * MIB, tensors="numpy")
    hit = again.get_or_prepare(key(), lambda: pytest.fail("a disk hit must not prepare"))
    assert hit.tier == "disk"
    assert isinstance(hit.tensors["tokens"], np.ndarray)
    assert hit.tensors["tokens"].tolist() == [[0, 1, 2, 3, 4]]
    assert hit.tensors["t3.speaker_emb"][0, 255] == 255.0


def test_numpy_cache_refuses_torch_tensors(cache_dir: Path) -> None:
    cache = ConditionalsCache(cache_dir, 10 * MIB, 10 * MIB, tensors="numpy")
    with pytest.raises(TypeError, match="ndarray"):
        cache.get_or_prepare(key(), lambda: conds())


def test_a_fake_engine_daemon_never_imports_torch(tmp_path: Path) -> None:
    """The fake engine's whole path (prepare, cache, disk) stays torch-free: test daemons start fast."""
    import subprocess
    import sys

    probe = f"""
import sys, threading
from pathlib import Path
from chatterbox_tray.daemon.condcache import CacheKey, ConditionalsCache
from chatterbox_tray.daemon.engine import SynthOptions
from chatterbox_tray.daemon.fake_engine import FakeEngine
engine = FakeEngine()
cache = ConditionalsCache(Path({str(tmp_path)!r}), 1 << 20, 1 << 20, tensors=engine.tensor_format)
key = CacheKey(engine.model_id, "a" * 64, engine.prep_version)
conds = cache.get_or_prepare(key, lambda: engine.prepare(b"clip")).tensors
engine.generate("Hello there.", conds, SynthOptions(), 50, threading.Event())
ConditionalsCache(Path({str(tmp_path)!r}), 1 << 20, 1 << 20, tensors="numpy").get_or_prepare(key, lambda: 1 / 0)
import chatterbox_tray.daemon.server
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_sole_writer_removes_every_temp_file_at_start(cache_dir: Path) -> None:
    # The daemon holds its instance lock: nobody else can be writing here.
    cache_dir.mkdir(parents=True)
    fresh = cache_dir / ".tmp-writing.partial"
    fresh.write_bytes(b"half")
    ConditionalsCache(cache_dir, MIB, MIB, sole_writer=True)
    assert not fresh.exists()


# -- what the figures count (issue 12, section 5) -------------------------------------


def test_background_preparation_is_neither_hit_nor_miss(cache: ConditionalsCache) -> None:
    prepare = Prepare()
    result = cache.get_or_prepare(key(), prepare, background=True)
    assert result.tier == "prepared" and prepare.calls == 1
    stats = cache.stats()
    assert stats["misses"] == 0 and stats["requests"] == 0 and stats["hit_rate"] == 0.0
    assert stats["prepared_in_background"] == 1
    assert stats["entries"] == {"memory": 1, "disk": 1}
    assert stats["prepare_seconds_total"] >= 0.0
    # The first request for that voice is then a hit, as the user sees it.
    assert cache.get_or_prepare(key(), prepare).tier == "memory"
    stats = cache.stats()
    assert (stats["hits"]["memory"], stats["misses"], stats["requests"], stats["hit_rate"]) == (1, 0, 1, 1.0)
    # A background pass over a voice already cached counts nothing either.
    cache.get_or_prepare(key(), prepare, background=True)
    assert cache.stats()["requests"] == 1 and cache.stats()["prepared_in_background"] == 1


def test_a_request_that_waits_for_a_background_preparation_is_a_hit(cache: ConditionalsCache) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> CondTensors:
        started.set()
        assert release.wait(WAIT)
        return conds()

    background = threading.Thread(target=lambda: cache.get_or_prepare(key(), slow, background=True))
    background.start()
    assert started.wait(WAIT)
    results: list[CacheResult] = []
    request = threading.Thread(target=lambda: results.append(cache.get_or_prepare(key(), Prepare())))
    request.start()
    time.sleep(0.05)  # let it join the flight
    release.set()
    background.join(WAIT)
    request.join(WAIT)
    assert results[0].tier == "memory"
    stats = cache.stats()
    assert (stats["hits"]["memory"], stats["misses"], stats["prepared_in_background"]) == (1, 0, 1)


def test_requests_that_prepare_are_misses(cache: ConditionalsCache) -> None:
    cache.get_or_prepare(key("a"), Prepare(seed=1))
    cache.get_or_prepare(key("b"), Prepare(seed=2))
    cache.get_or_prepare(key("a"), Prepare(seed=1))
    stats = cache.stats()
    assert (stats["misses"], stats["hits"]["memory"], stats["requests"]) == (2, 1, 3)
    assert stats["hit_rate"] == pytest.approx(1 / 3)
    assert stats["prepared_in_background"] == 0


def _write_entries(cache_dir: Path, *names: str) -> dict[str, Path]:
    cache = ConditionalsCache(cache_dir, 64 * MIB, 64 * MIB)
    for i, name in enumerate(names):
        cache.get_or_prepare(key(name), Prepare(seed=i))
    return {name: cache_dir / key(name).filename for name in names}


def test_corrupt_disk_entries_are_found_at_start_and_never_counted(cache_dir: Path) -> None:
    files = _write_entries(cache_dir, "good", "truncated", "garbage", "padded", "renamed")
    good_size = files["good"].stat().st_size
    data = files["truncated"].read_bytes()
    files["truncated"].write_bytes(data[: len(data) - 7])  # a write cut short
    files["garbage"].write_bytes(os.urandom(len(data)))
    files["padded"].write_bytes(files["padded"].read_bytes() + b"\0" * 16)
    # A whole file under another entry's name: its metadata does not match it.
    files["renamed"].write_bytes(files["good"].read_bytes())

    cache = ConditionalsCache(cache_dir, 64 * MIB, 64 * MIB)
    assert entry_files(cache_dir) == [files["good"]]
    stats = cache.stats()
    assert stats["entries"]["disk"] == 1 and stats["bytes"]["disk"] == good_size
    assert stats["disk_errors"]["bad_file"] == 4
    # The good one still loads.
    assert cache.get_or_prepare(key("good"), Prepare(seed=0)).tier == "disk"


def test_a_file_damaged_after_start_is_not_counted_once_seen(cache_dir: Path) -> None:
    files = _write_entries(cache_dir, "a", "b")
    cache = ConditionalsCache(cache_dir, 64 * MIB, 64 * MIB)
    assert cache.stats()["entries"]["disk"] == 2
    data = files["b"].read_bytes()
    files["b"].write_bytes(data[: len(data) // 2])
    stats = cache.stats()
    assert stats["entries"]["disk"] == 1 and stats["disk_errors"]["bad_file"] == 1
    assert not files["b"].exists()


def test_checking_entries_reads_each_file_once(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_entries(cache_dir, "a", "b", "c")
    checks: list[str] = []
    real = condcache._file_problem
    monkeypatch.setattr(condcache, "_file_problem", lambda f, size, m: checks.append(m.group(0)) or real(f, size, m))
    cache = ConditionalsCache(cache_dir, 64 * MIB, 64 * MIB)
    assert len(checks) == 3
    for _ in range(3):
        assert cache.stats()["entries"]["disk"] == 3
    assert len(checks) == 3, "unchanged files are not read again"
