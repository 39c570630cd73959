"""Settings through the daemon: read, change, saved, applied; model changes need a reload."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import DaemonProcess, EventLog


@pytest.fixture
def own() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def saved(daemon: DaemonProcess) -> dict:
    return json.loads((daemon.home / "config" / "settings.json").read_text())


def test_settings_are_read_changed_saved_and_announced(own: DaemonProcess) -> None:
    with own.client() as c:
        got = c.settings_get()
        assert got["settings"]["disk_cache_mb"] == 1024
        assert "variant" in got["needs_reload"] and "engine" not in got["editable"]
        log = EventLog(own.events(("settings", "voices")))
        log.sync(c)
        result = c.settings_set(disk_cache_mb=10, sentence_pause_ms=100)
        assert result["reload_required"] is False
        assert log.wait_for(lambda t, d: t == "settings")["changed"] == ["disk_cache_mb", "sentence_pause_ms"]
        assert c.cache_stats()["budgets"]["disk_bytes"] == 10 * 2**20  # applied at once
        assert saved(own)["disk_cache_mb"] == 10
    own.restart()
    with own.client() as c:
        assert c.settings_get()["settings"]["sentence_pause_ms"] == 100  # kept across restarts


def test_bad_settings_are_refused_and_nothing_changes(own: DaemonProcess) -> None:
    with own.client() as c:
        for values in ({"volume": 3}, {"variant": "huge"}, {"engine": "fake"}, {"nonsense": 1}, {"disk_cache_mb": "x"}):
            with pytest.raises(ProtocolError) as err:
                c.settings_set(**values)
            assert err.value.code == "bad_args", values
        assert c.settings_get()["settings"]["volume"] == 1.0


def test_a_model_setting_needs_a_reload_which_loads_the_new_model(own: DaemonProcess) -> None:
    with own.client() as c:
        assert c.settings_set(variant="turbo")["reload_required"] is True
        assert c.hello()["variant"] == "original"  # still the loaded one
        assert c.reload()["started"] is True
        status = c.wait_ready(timeout=30)
        assert status["variant"] == "turbo" and status["model_id"].startswith("fake-turbo")
        assert c.settings_set(volume=0.8)["reload_required"] is False
