"""Model state over the protocol: loading, failure with a reason, retry, state events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog

#: Seconds the fake takes to load: long enough to subscribe and queue a job meanwhile.
LOAD_S = 1.5


@pytest.fixture(scope="module")
def failing_daemon() -> Iterator[DaemonProcess]:
    """A fake whose first load fails after LOAD_S (not waited for: tests watch it load)."""
    proc = DaemonProcess(
        env={
            "CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1",
            "CHATTERBOX_TRAY_FAKE_LOAD_DELAY": str(LOAD_S),
        }
    )
    proc.spawn()
    proc.wait_connectable()
    yield proc
    proc.cleanup()


def states(log: EventLog) -> list[str]:
    return [d["state"] for t, d in log.seen if t == "state"]


def test_load_failure_is_reported_and_retry_load_recovers(failing_daemon: DaemonProcess, clips: Clips) -> None:
    client = failing_daemon.client()
    log = EventLog(failing_daemon.events())
    log.sync(client)

    # While the model loads, control ops work and synthesis is queued.
    assert client.status()["state"] == "loading"
    client.voices_add("early", data=clips.new())
    waiting = client.synthesize("Waiting for the model.", voice="early")

    # The load fails: state event and status carry the reason ...
    failed = log.wait_for(lambda t, d: t == "state" and d["state"] == "failed")
    assert "CHATTERBOX_TRAY_FAKE_FAIL_LOADS" in failed["error"]
    assert "loading" in states(log)[:-1], states(log)
    status = client.status()
    assert status["state"] == "failed"
    assert "CHATTERBOX_TRAY_FAKE_FAIL_LOADS" in status["error"]
    with pytest.raises(ProtocolError) as err:
        client.wait_ready(timeout=5)
    assert err.value.code == "model_failed"

    # ... the job that waited for the model fails with it ...
    with pytest.raises(ProtocolError) as err:
        waiting.collect()
    assert err.value.code == "model_failed"
    assert "failed to load" in err.value.message

    # ... and new synthesis is refused at once with not_ready.
    with pytest.raises(ProtocolError) as err:
        client.synthesize("Hello.", voice="early").collect()
    assert err.value.code == "not_ready"
    assert "retry_load" in err.value.message

    # retry_load goes through loading to ready, with state events on the way.
    log.seen.clear()
    retry = client.retry_load()
    assert retry["started"] is True
    assert retry["state"] == "loading"
    assert client.retry_load()["started"] is False  # one load at a time
    log.wait_for(lambda t, d: t == "state" and d["state"] == "ready")
    seen = states(log)
    assert seen[0] == "loading"
    assert seen[-1] == "ready"
    assert "failed" not in seen
    progress = [d["progress"] for t, d in log.seen if t == "state" and d["state"] == "loading"]
    assert progress == sorted(progress), progress

    assert client.wait_ready(timeout=5)["error"] == ""
    audio, rate = client.synthesize("Now it works.", voice="early").collect()
    assert rate == 24_000
    assert len(audio) > 0


def test_a_model_setting_changed_after_a_failure_loads_the_model() -> None:
    """A failed first load, then a changed model setting: the daemon loads what the settings say now.

    Before, ``settings.set`` said "saved" and left the failure in place until
    a ``reload`` that nothing hinted at (issue 23 §6). ``retry_load`` then has
    nothing to start.
    """
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1"})
    proc.spawn()
    try:
        proc.wait_connectable()
        with proc.client() as client:
            log = EventLog(proc.events())
            log.sync(client)
            if client.status()["state"] != "failed":
                log.wait_for(lambda t, d: t == "state" and d["state"] == "failed")
            assert client.status()["variant"] == "original"
            assert client.settings_get()["loaded"] == {}, "nothing is loaded after a failure"
            log.seen.clear()
            result = client.settings_set(variant="turbo")
            assert result["loading"] is True
            assert result["reload_required"] is False
            assert client.retry_load()["started"] is False  # already loading
            log.wait_for(lambda t, d: t == "state" and d["state"] == "ready")
            status = client.status()
            assert status["variant"] == "turbo", status
            assert status["reload_required"] is False
            assert client.settings_get()["loaded"]["variant"] == "turbo"
            # A model that loaded keeps serving: a change waits for `reload` as before.
            later = client.settings_set(variant="original")
            assert later["loading"] is False
            assert later["reload_required"] is True
            assert client.status()["state"] == "ready"
    finally:
        proc.cleanup()


def test_a_setting_that_is_not_the_model_leaves_a_failure_alone() -> None:
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_FAIL_LOADS": "1"})
    proc.spawn()
    try:
        proc.wait_connectable()
        with proc.client() as client:
            log = EventLog(proc.events())
            log.sync(client)
            if client.status()["state"] != "failed":
                log.wait_for(lambda t, d: t == "state" and d["state"] == "failed")
            assert client.settings_set(volume=0.5)["loading"] is False
            assert client.status()["state"] == "failed"
    finally:
        proc.cleanup()
