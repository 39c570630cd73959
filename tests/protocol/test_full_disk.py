"""A full disk: a clear error, the daemon keeps serving, nothing stored is lost (issue 12, section 6).

The daemon's data, cache and config folders are each a small tmpfs, filled
to the last page with a filler file. Mounting needs root (CAP_SYS_ADMIN);
elsewhere the test is skipped and says why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess

FOLDERS = ("data", "cache", "config")


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)


def fill(folder: Path) -> Path:
    """Fill ``folder``'s file system until a write fails with ENOSPC; return the filler."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return filler


@pytest.fixture
def small_disks() -> Iterator[DaemonProcess]:
    """A daemon home whose data, cache and config folders are 3 MiB tmpfs mounts."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; run the suite as root (CI does)")
    d = DaemonProcess()
    mounted: list[Path] = []
    try:
        for name in FOLDERS:
            try:
                _mount_tmpfs(d.home / name, "3m")
            except (OSError, subprocess.CalledProcessError) as exc:
                pytest.skip(f"cannot mount a tmpfs here ({exc}); a container without CAP_SYS_ADMIN?")
            mounted.append(d.home / name)
        yield d
    finally:
        d.stop()
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
        d.cleanup()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(d: DaemonProcess) -> dict[str, str]:
    """Every stored file (but fillers) and its digest."""
    return {
        str(p.relative_to(d.home)): digest(p)
        for name in FOLDERS
        for p in sorted((d.home / name).rglob("*"))
        if p.is_file() and p.name != "filler.bin"
    }


def settled_snapshot(d: DaemonProcess, timeout: float = 30.0) -> dict[str, str]:
    """The snapshot once no save is under way: no temporary file, and the same twice in a row.

    The job history is saved by a writer thread after each job, so a snapshot
    taken just after a job may catch its temporary file mid-save.
    """
    deadline = time.monotonic() + timeout
    last = snapshot(d)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = snapshot(d)
        if now == last and not any(Path(name).name.startswith(".tmp-") for name in now):
            return now
        last = now
    raise AssertionError(f"the daemon's files never settled: {sorted(last)}")


def test_full_disks_refuse_clearly_and_lose_nothing(small_disks: DaemonProcess, clips: Clips) -> None:
    d = small_disks.start()
    clip_a, clip_b, clip_c = clips.new(), clips.new(), clips.new()
    with d.client() as client:
        client.voices_add("Alpha", data=clip_a)
        client.voices_default("Alpha")
        client.settings_set(sentence_pause_ms=150)
        client.synthesize("Warm.", voice="Alpha").collect()  # Alpha's cache entry is on disk
        assert client.voices_list()[0]["cache"] in ("memory", "disk")
        before = settled_snapshot(d)
        stats_before = client.cache_stats()
    assert stats_before["entries"]["disk"] == 1
    fillers = [fill(d.home / name) for name in FOLDERS]

    with d.client() as client:
        # A voice: clip or manifest cannot be saved.
        with pytest.raises(ProtocolError) as err:
            client.voices_add("Bravo", data=clip_b)
        assert err.value.code == "disk_full"
        assert "no space left" in err.value.message and "free some space" in err.value.message
        with pytest.raises(ProtocolError) as err:
            client.voices_rename("Alpha", "Zulu")
        assert err.value.code == "disk_full"
        # Settings: refused, and not applied either.
        with pytest.raises(ProtocolError) as err:
            client.settings_set(sentence_pause_ms=400)
        assert err.value.code == "disk_full" and "settings" in err.value.message
        assert client.settings_get()["settings"]["sentence_pause_ms"] == 150
        # A cache entry: the speech is made anyway; the failed write is counted.
        audio, rate = client.synthesize("Still speaking.", voice_data=clip_c).collect()
        assert audio.size > 0 and rate > 0
        stats = client.cache_stats()
        assert stats["disk_errors"]["write"] == stats_before["disk_errors"]["write"] + 1
        assert stats["entries"]["disk"] == 1
        # Still serving everyone.
        client.ping()
        assert [v["name"] for v in client.voices_list()] == ["Alpha"]
    assert "could not write" in d.log_text()
    assert settled_snapshot(d) == before

    # Restarted on the full disks, everything stored is there.
    assert d.stop() == 0
    d.start()
    with d.client() as client:
        voices = client.voices_list()
        assert [(v["name"], v["default"], v["cache"]) for v in voices] == [("Alpha", True, "disk")]
        assert client.settings_get()["settings"]["sentence_pause_ms"] == 150
    assert settled_snapshot(d) == before

    # With room again, the same requests succeed.
    for filler in fillers:
        filler.unlink()
    with d.client() as client:
        client.voices_add("Bravo", data=clip_b)
        client.settings_set(sentence_pause_ms=400)
        client.synthesize("Room again.", voice_data=clip_c).collect()
    sha_c = hashlib.sha256(clip_c).hexdigest()
    assert list((d.home / "cache" / "conditionals").glob(f"{sha_c}-*.safetensors"))
    saved = json.loads((d.home / "config" / "settings.json").read_text(encoding="utf-8"))
    assert saved["sentence_pause_ms"] == 400
