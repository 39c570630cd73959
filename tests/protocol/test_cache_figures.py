"""cache.stats means what docs/protocol.md says, over a real daemon (issue 12, section 5).

- Preparing a newly added voice in the background is counted apart
  (``prepared_in_background``), never as a miss; the first request for that
  voice is then a hit.
- Disk entries are checked at start-up: a corrupt file is removed and counted
  as a bad file before the daemon answers anyone (tests/unit/daemon/
  test_condcache.py shows it is never counted as an entry).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest

from tests.support.daemons import Clips, DaemonProcess, EventLog


@pytest.fixture
def own_daemon() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def test_background_preparation_is_no_miss_and_corrupt_entries_are_not_counted(
    own_daemon: DaemonProcess, clips: Clips
) -> None:
    first_clip, second_clip = clips.new(), clips.new()
    c = own_daemon.client()
    events = EventLog(own_daemon.events())
    events.sync(c)
    for name, clip in (("First", first_clip), ("Second", second_clip)):
        c.voices_add(name, data=clip)
        sha = hashlib.sha256(clip).hexdigest()
        events.wait_for(lambda t, d, sha=sha: t == "cache" and d.get("sha256") == sha)
    stats = c.cache_stats()
    assert stats["prepared_in_background"] == 2
    assert (stats["misses"], stats["requests"], stats["hit_rate"]) == (0, 0, 0.0)
    assert stats["entries"] == {"memory": 2, "disk": 2}
    assert stats["prepare_seconds_total"] > 0

    c.synthesize("Ready already.", voice="First").collect()
    stats = c.cache_stats()
    assert (stats["hits"]["memory"], stats["misses"], stats["hit_rate"]) == (1, 0, 1.0)

    # A disk entry damaged while the daemon was stopped.
    assert own_daemon.stop() == 0
    folder = own_daemon.home / "cache" / "conditionals"
    second_sha = hashlib.sha256(second_clip).hexdigest()
    (damaged,) = folder.glob(f"{second_sha}-*.safetensors")
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    own_daemon.start()
    c = own_daemon.client()
    # Found at start-up, before the daemon listened: removed and counted as bad.
    log = own_daemon.log_text()
    assert "truncated" in log and log.index("truncated") < log.index("listening on")
    assert not damaged.exists() or damaged.read_bytes() != data[: len(data) // 2]
    # The voice it belonged to is then prepared again in the background: no miss.
    # (Its disk entry is written just after the preparation is counted: wait for both.)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        stats = c.cache_stats()
        if stats["prepared_in_background"] >= 1 and stats["entries"]["disk"] >= 2:
            break
        time.sleep(0.05)
    assert stats["disk_errors"]["bad_file"] == 1
    assert (stats["prepared_in_background"], stats["misses"], stats["requests"]) == (1, 0, 0)
    assert stats["entries"]["disk"] == 2
    assert {v["name"]: v["cache"] for v in c.voices_list()} == {"First": "disk", "Second": "memory"}
