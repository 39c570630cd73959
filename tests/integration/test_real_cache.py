"""The real daemon's conditionals cache: memory, disk across restarts, corrupt files, same samples.

The daemon loads the random-weight checkpoint through chatterbox's own
``from_local`` (tests/support/checkpoint.py), as in test_real_daemon.py; this
module has its own daemon and home (tests/integration/conftest.py), so its
restarts find only its own cache entries and it can run beside that module.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.ipc.client import Client
from tests.support.daemons import Clips, DaemonProcess
from tests.support.realdaemon import START_S, synth

pytestmark = pytest.mark.integration

#: This module starts its daemon four times (the disk tier lives across
#: restarts). The warm-up, 9 s of S3Gen at each start, still runs at the
#: start of test_real_daemon.py's and the bridges' real daemons; not here.
WARM_UP = False
# Same seed, same samples needs the same thread count every time: a matrix
# product split over another number of threads adds in another order, and the
# daemon gives T3 fewer threads while other programs (other test workers) keep
# cores busy. Once, under load, the samples differed in their last bits.
DAEMON_ENV = {"CHATTERBOX_TRAY_CORES_FOLLOW_LOAD": "0"}


def test_miss_then_memory_then_disk_after_restart(real: DaemonProcess, clips: Clips) -> None:
    clip = clips.new()
    with real.client(timeout=120.0) as c:
        before = c.cache_stats()
        _, first = synth(c, "One.", voice_data=clip)
        _, second = synth(c, "Two.", voice_data=clip)
        mid = c.cache_stats()
    assert first["conditionals"]["tier"] == "prepared"
    assert second["conditionals"]["tier"] == "memory"
    assert mid["misses"] == before["misses"] + 1
    assert mid["hits"]["memory"] == before["hits"]["memory"] + 1

    real.restart(timeout=START_S)
    with real.client(timeout=120.0) as c:
        _, third = synth(c, "Three.", voice_data=clip)
        _, fourth = synth(c, "Four.", voice_data=clip)
        after = c.cache_stats()
    assert third["conditionals"]["tier"] == "disk"
    assert fourth["conditionals"]["tier"] == "memory"
    assert after["hits"]["disk"] >= 1
    assert after["seconds_saved"] > 0


def disk_entries(real: DaemonProcess, clip: bytes) -> list[Path]:
    sha = hashlib.sha256(clip).hexdigest()
    return sorted((real.home / "cache" / "conditionals").glob(f"{sha}-*.safetensors"))


def test_corrupt_disk_entry_is_recomputed(real: DaemonProcess, clips: Clips) -> None:
    clip = clips.new()
    with real.client(timeout=120.0) as c:
        synth(c, "Fill the cache.", voice_data=clip)
    [entry] = disk_entries(real, clip)
    good_size = entry.stat().st_size
    real.stop()
    entry.write_bytes(entry.read_bytes()[: good_size // 3])  # a truncated write
    real.start(timeout=START_S)
    with real.client(timeout=120.0) as c:
        # Found by the start-up check (header and size), before anyone used it.
        assert c.cache_stats()["disk_errors"]["bad_file"] == 1
        assert not disk_entries(real, clip)
        audio, summary = synth(c, "Read it back.", voice_data=clip)
        assert summary["conditionals"]["tier"] == "prepared"
        assert c.cache_stats()["disk_errors"]["bad_file"] == 1
        assert len(audio) > 0
    [entry] = disk_entries(real, clip)
    assert entry.stat().st_size == good_size  # rewritten whole


def test_same_content_elsewhere_hits_and_an_edited_file_misses(rc: Client, clips: Clips, tmp_path: Path) -> None:
    clip = clips.new()
    first = tmp_path / "a" / "voice.wav"
    first.parent.mkdir()
    first.write_bytes(clip)
    _, one = synth(rc, "Hello.", voice_path=first)
    assert one["conditionals"]["tier"] == "prepared"

    moved = tmp_path / "b" / "renamed.wav"
    moved.parent.mkdir()
    moved.write_bytes(clip)
    _, two = synth(rc, "Hello.", voice_path=moved)
    assert two["conditionals"]["tier"] == "memory"

    samples, rate = sf.read(io.BytesIO(clip), dtype="float32")
    samples[rate : rate + 100] *= 0.5  # an edit in place, same path, same length
    sf.write(first, samples, rate, subtype="PCM_16")
    _, three = synth(rc, "Hello.", voice_path=first)
    assert three["conditionals"]["tier"] == "prepared"


def test_same_seed_same_samples_with_fresh_and_cached_conditionals(real: DaemonProcess, clips: Clips) -> None:
    clip = clips.new()
    text = "Repeat after me."
    with real.client(timeout=120.0) as c:
        fresh, s1 = synth(c, text, voice_data=clip, seed=1234)
        memory, s2 = synth(c, text, voice_data=clip, seed=1234)
        other, _ = synth(c, text, voice_data=clip, seed=4321)
    real.restart(timeout=START_S)
    with real.client(timeout=120.0) as c:
        disk, s3 = synth(c, text, voice_data=clip, seed=1234)
    assert [s["conditionals"]["tier"] for s in (s1, s2, s3)] == ["prepared", "memory", "disk"]
    assert len(fresh) > 0
    np.testing.assert_array_equal(fresh, memory)
    np.testing.assert_array_equal(fresh, disk)
    assert not np.array_equal(fresh, other)  # the seed matters
