"""A daemon killed in the middle of a write restarts whole (issue 12, section 6).

Killing the process from outside never lands inside a write (it takes
microseconds), so the daemon kills itself there: ``CHATTERBOX_TRAY_FAULT``
(tests/support/faults.py) names a write and a step, and the daemon SIGKILLs itself when
it reaches that step the given time. For the voice library (clip and
manifest), the settings file and the conditionals cache, at every step:

- the daemon died of SIGKILL at that step, and starts again;
- the state is the old one, or (once the rename happened) the new one, whole;
- nothing is left behind: no temporary file, no clip no voice names.

Real fake-engine daemons on real sockets; each case starts two.
"""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from chatterbox_tray.ipc import requests as rq
from chatterbox_tray.ipc.atomic import TMP_PREFIX
from tests.support.daemons import Clips, DaemonProcess
from tests.support.faults import FAULT_ENV, STEPS

#: After this step the new file is in place; before it, the old one is.
COMMITTED = "after-replace"


@pytest.fixture
def home_daemon():
    """A daemon home per test, removed afterwards."""
    made: list[DaemonProcess] = []

    def make(fault: str) -> DaemonProcess:
        d = DaemonProcess(env={FAULT_ENV: fault})
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


def die_during(d: DaemonProcess, request: rq.Request) -> None:
    """Send ``request`` and wait for the daemon to kill itself at its fault."""
    with d.client() as client:
        client.submit(request)
        code = d.proc.wait(timeout=60)
    assert code == -signal.SIGKILL, f"daemon exited with {code}, not by its fault:\n{d.log_text()}"
    assert "fault injection: killing process" in d.log_text()
    d.close_clients()


def restart_clean(d: DaemonProcess) -> None:
    """Start the same home again without the fault."""
    d.extra_env = {}
    d.start()


def sha256_hex(data: bytes) -> str:
    """The clip digest the library and the cache use."""
    return hashlib.sha256(data).hexdigest()


def leftovers(home: Path) -> list[str]:
    """Temporary files anywhere under the daemon's folders."""
    return sorted(
        str(p.relative_to(home))
        for folder in ("data", "cache", "config")
        for p in (home / folder).rglob("*")
        if p.name.startswith(TMP_PREFIX)
    )


@pytest.mark.parametrize("site", ["voices.clip", "voices.manifest"])
@pytest.mark.parametrize("step", STEPS)
def test_kill_while_adding_a_voice(home_daemon, clips: Clips, site: str, step: str) -> None:
    d = home_daemon(f"{site}:{step}:2")  # the first add saves; the second dies
    d.start()
    clip_a, clip_b = clips.new(), clips.new()
    with d.client() as client:
        client.voices_add("Alpha", data=clip_a)
    die_during(d, rq.voices_add("Bravo", clip_b, "bravo.wav"))

    restart_clean(d)
    with d.client() as client:
        names = sorted(v["name"] for v in client.voices_list())
        new_state = site == "voices.manifest" and step == COMMITTED
        assert names == (["Alpha", "Bravo"] if new_state else ["Alpha"])
        if not new_state:  # the add can simply be made again
            client.voices_add("Bravo", data=clip_b)
    assert d.stop() == 0  # so no write is under way while we look
    manifest = json.loads((d.home / "data" / "voices.json").read_text(encoding="utf-8"))
    stored = {v["name"]: d.home / "data" / "voices" / v["file"] for v in manifest["voices"]}
    assert sha256_hex(stored["Alpha"].read_bytes()) == sha256_hex(clip_a)
    assert sha256_hex(stored["Bravo"].read_bytes()) == sha256_hex(clip_b)
    # Exactly the clips the voices name: no half-written or orphaned clip.
    assert sorted(p.name for p in (d.home / "data" / "voices").iterdir()) == sorted(p.name for p in stored.values())
    assert not list((d.home / "data").glob("voices.json.corrupt-*"))
    assert leftovers(d.home) == []


@pytest.mark.parametrize("step", STEPS)
def test_kill_while_saving_settings(home_daemon, step: str) -> None:
    d = home_daemon(f"settings:{step}:2")
    d.start()
    with d.client() as client:
        client.settings_set(sentence_pause_ms=123)
    die_during(d, rq.settings_set({"sentence_pause_ms": 456}))

    restart_clean(d)
    with d.client() as client:
        value = client.settings_get()["settings"]["sentence_pause_ms"]
    assert d.stop() == 0
    assert value == (456 if step == COMMITTED else 123)
    saved = json.loads((d.home / "config" / "settings.json").read_text(encoding="utf-8"))
    assert saved["sentence_pause_ms"] == value
    assert leftovers(d.home) == []


@pytest.mark.parametrize("step", STEPS)
def test_kill_while_writing_a_cache_entry(home_daemon, clips: Clips, step: str) -> None:
    d = home_daemon(f"cache:{step}:2")
    d.start()
    clip_a, clip_b = clips.new(), clips.new()
    with d.client() as client:
        client.voices_add("Alpha", data=clip_a)
        # Its background preparation writes entry 1.
        client.synthesize("One.", voice="Alpha").collect()
    # Bravo's background preparation writes entry 2 and dies there.
    die_during(d, rq.voices_add("Bravo", clip_b, "bravo.wav"))

    folder = d.home / "cache" / "conditionals"
    # What the crash left: Alpha's entry whole, Bravo's whole or absent.
    expected = {sha256_hex(clip_a)} | ({sha256_hex(clip_b)} if step == COMMITTED else set())
    assert whole_entries(folder) == expected

    restart_clean(d)
    with d.client() as client:
        # The voice itself was saved before the preparation began.
        tiers = {v["name"]: v["cache"] for v in client.voices_list()}
        assert tiers["Alpha"] == "disk"
        audio, rate = client.synthesize("Two.", voice="Bravo").collect()
        assert rate > 0 and audio.size > 0
        stats = client.cache_stats()
    assert stats["disk_errors"]["bad_file"] == 0
    assert d.stop() == 0
    assert leftovers(d.home) == []
    assert whole_entries(folder) == {sha256_hex(clip_a), sha256_hex(clip_b)}


def whole_entries(folder: Path) -> set[str]:
    """The clip digests of the cache's entry files, each checked to load whole."""
    found = set()
    for path in folder.glob("*.safetensors"):
        arrays = safetensors.numpy.load(path.read_bytes())  # raises on a truncated file
        assert arrays and all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
        found.add(path.name.split("-")[0])
    return found


@pytest.mark.parametrize("step", STEPS)
def test_kill_while_removing_a_voice(home_daemon, clips: Clips, step: str) -> None:
    d = home_daemon(f"voices.manifest:{step}:2")  # saved once by the add; the remove dies
    d.start()
    clip = clips.new()
    with d.client() as client:
        client.voices_add("Alpha", data=clip)
    die_during(d, rq.voices_remove("Alpha"))

    restart_clean(d)
    with d.client() as client:
        names = [v["name"] for v in client.voices_list()]
    assert d.stop() == 0
    removed = step == COMMITTED
    assert names == ([] if removed else ["Alpha"])
    clips_left = [p.name for p in (d.home / "data" / "voices").iterdir()]
    if removed:  # the list was saved without it; its clip, not yet deleted then, is swept at start
        assert clips_left == []
    else:
        assert len(clips_left) == 1
        assert sha256_hex((d.home / "data" / "voices" / clips_left[0]).read_bytes()) == sha256_hex(clip)
    assert leftovers(d.home) == []
