"""Voice library and cache ops over real sockets: add, list, rename, remove, default, events, tiers.

The shared daemon keeps its voices for the whole session, so every test here
names its voices with ``uid()`` and uses fresh clip bytes. The cache-tier test
starts its own daemon, since it restarts it and reads exact figures.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, uid, voiced_tone, wav_bytes


def listed(client: Client, name: str) -> dict[str, Any] | None:
    """The voice as voices.list shows it, or None."""
    return next((v for v in client.voices_list() if v["name"].casefold() == name.casefold()), None)


def wait_cache(client: Client, name: str, tier: str | None, tries: int = 200) -> dict[str, Any]:
    """Poll voices.list until the voice's cache state is ``tier`` (background preparation)."""
    for _ in range(tries):
        voice = listed(client, name)
        assert voice is not None, f"{name} is not listed"
        if voice["cache"] == tier:
            return voice
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached cache state {tier!r}: {voice}")


def say(client: Client, **voice: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """One short synthesis; its audio and summary."""
    synthesis = client.synthesize("Cache me if you can.", seed=1, **voice)
    audio, _ = synthesis.collect()
    return audio, synthesis.summary


def code_of(fn, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ProtocolError) as err:
        fn(*args, **kwargs)
    return err.value.code


@pytest.fixture
def default_restored(client: Client) -> Iterator[None]:
    before = client.voices_default()["default"]
    yield
    if before is None or listed(client, before) is None:
        client.voices_default(clear=True)
    else:
        client.voices_default(before)


@pytest.fixture
def log(daemon: DaemonProcess, client: Client) -> EventLog:
    events = EventLog(daemon.events())
    events.sync(client)
    return events


# -- add and list ----------------------------------------------------------------------


def test_add_from_bytes_returns_the_voice_and_lists_it_with_its_cache_state(client: Client, clips: Clips) -> None:
    data = clips.new()
    name = uid("Add Bytes")
    voice = client.voices_add(name, data=data)
    assert voice["name"] == name
    assert voice["sha256"] == hashlib.sha256(data).hexdigest()
    assert 6.0 <= voice["duration_s"] <= 8.0
    assert voice["sample_rate"] > 0
    assert voice["source_name"] == ""
    assert voice["default"] is (client.voices_default()["default"] == name)  # the first voice becomes it
    assert voice["cache"] in (None, "memory")  # prepared in the background
    assert "file" not in voice  # where the daemon keeps clips is its own business
    assert voice["added_at"].endswith("+00:00")

    # The background preparation fills the cache without anyone asking.
    shown = wait_cache(client, name, "memory")
    assert {k: shown[k] for k in ("sha256", "duration_s", "sample_rate")} == {
        k: voice[k] for k in ("sha256", "duration_s", "sample_rate")
    }
    names = [v["name"] for v in client.voices_list()]
    assert names == sorted(names, key=str.casefold)


def test_add_from_a_path_the_daemon_reads(client: Client, clips: Clips) -> None:
    path = clips.write(clips.new(), f"{uid('narrator')}.wav")
    name = uid("bypath")
    voice = client.call("voices.add", {"name": name, "path": str(path)})
    assert voice["source_name"] == path.name
    assert voice["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # The library keeps its own copy: the original may go.
    path.unlink()
    audio, _ = client.synthesize("Still speaks.", voice=name).collect()
    assert len(audio) > 0


def test_the_client_sends_a_files_bytes_and_name(client: Client, clips: Clips) -> None:
    path = clips.write(clips.new(), f"{uid('mine')}.flac.wav")
    voice = client.voices_add(uid("client"), path=path)
    assert voice["source_name"] == path.name


def test_add_needs_a_clip_buffer_or_a_readable_path(client: Client, clips: Clips) -> None:
    assert code_of(client.call, "voices.add", {"name": uid("none")}) == "bad_args"
    missing = clips.folder / "missing.wav"
    with pytest.raises(ProtocolError) as err:
        client.call("voices.add", {"name": uid("none"), "path": str(missing)})
    assert err.value.code == "bad_args"
    assert "missing.wav" in err.value.message


def test_a_name_taken_in_any_case_is_voice_exists(client: Client, clips: Clips) -> None:
    name = uid("Taken")
    client.voices_add(name, data=clips.new())
    count = len(client.voices_list())
    assert code_of(client.voices_add, name.upper(), data=clips.new()) == "voice_exists"
    assert len(client.voices_list()) == count


@pytest.mark.parametrize(
    "name", ["", "a/b", "back\\slash", ".hidden", " padded", "padded ", "line\nbreak", "x" * 65], ids=repr
)
def test_bad_names_are_bad_name(client: Client, clips: Clips, name: str) -> None:
    count = len(client.voices_list())
    assert code_of(client.voices_add, name, data=clips.new()) == "bad_name"
    assert len(client.voices_list()) == count


def clip_failures(clips: Clips) -> dict[str, bytes]:
    """Clips that fail each check, keyed by the error code they must get."""
    return {
        "clip_too_short": voiced_tone(3.0),
        "clip_too_long": voiced_tone(61.0, sr=8_000),
        "clip_silent": wav_bytes(np.zeros(24_000 * 7, dtype=np.float32), 24_000),
        "clip_undecodable": b"RIFF....WAVEfmt this is not really a wave file" * 10,
    }


def test_each_clip_failure_has_its_own_code_and_adds_nothing(client: Client, clips: Clips, log: EventLog) -> None:
    before = client.voices_list()
    codes = {}
    for expected, data in clip_failures(clips).items():
        codes[expected] = code_of(client.voices_add, uid("fail"), data=data)
        path = clips.write(data, f"{uid('fail')}.wav")
        assert code_of(client.call, "voices.add", {"name": uid("fail"), "path": str(path)}) == expected
    assert codes == {code: code for code in clip_failures(clips)}  # four distinct codes, each as expected
    assert client.voices_list() == before
    log.sync(client)  # a fresh marker event: anything published by the failures came before it
    assert not [d for t, d in log.seen if t == "voices" and d.get("action") == "added"]


def test_clip_failure_messages_say_what_is_wrong(client: Client, clips: Clips) -> None:
    failures = clip_failures(clips)
    with pytest.raises(ProtocolError) as err:
        client.voices_add(uid("short"), data=failures["clip_too_short"])
    assert "5.0 s" in err.value.message
    with pytest.raises(ProtocolError) as err:
        client.voices_add(uid("long"), data=failures["clip_too_long"])
    assert "60 s" in err.value.message
    with pytest.raises(ProtocolError) as err:
        client.voices_add(uid("quiet"), data=failures["clip_silent"])
    assert "dBFS" in err.value.message


# -- rename, remove, default -----------------------------------------------------------


def test_rename_keeps_the_clip_and_its_cache_entry(client: Client, clips: Clips) -> None:
    old, new = uid("old"), uid("new")
    voice = client.voices_add(old, data=clips.new())
    wait_cache(client, old, "memory")
    renamed = client.voices_rename(old, new)
    assert renamed["name"] == new
    assert renamed["sha256"] == voice["sha256"]
    assert renamed["cache"] == "memory"
    assert listed(client, old) is None
    _, summary = say(client, voice=new)
    assert summary["conditionals"]["tier"] == "memory"
    assert code_of(client.synthesize("Hi.", voice=old).collect) == "unknown_voice"


def test_rename_errors(client: Client, clips: Clips) -> None:
    a, b = uid("ra"), uid("rb")
    client.voices_add(a, data=clips.new())
    client.voices_add(b, data=clips.new())
    assert code_of(client.voices_rename, uid("ghost"), uid("x")) == "unknown_voice"
    assert code_of(client.voices_rename, a, b.upper()) == "voice_exists"
    assert code_of(client.voices_rename, a, "no/slash") == "bad_name"
    assert client.voices_rename(a, a.upper())["name"] == a.upper()  # a change of case alone is fine


@pytest.mark.usefixtures("default_restored")
def test_remove_drops_the_voice_its_default_and_its_cache_entry(client: Client, clips: Clips) -> None:
    data = clips.new()
    name = uid("gone")
    client.voices_add(name, data=data)
    wait_cache(client, name, "memory")
    client.voices_default(name)
    assert client.voices_remove(name) == {"removed": name}
    assert listed(client, name) is None
    assert client.voices_default()["default"] is None
    assert code_of(client.voices_remove, name) == "unknown_voice"
    _, summary = say(client, voice_data=data)
    assert summary["conditionals"]["tier"] == "prepared"  # its entry went with it


def test_removing_one_of_two_voices_on_the_same_clip_keeps_the_cache_entry(client: Client, clips: Clips) -> None:
    data = clips.new()
    first, second = uid("twin"), uid("twin")
    client.voices_add(first, data=data)
    client.voices_add(second, data=data)
    wait_cache(client, second, "memory")
    client.voices_remove(first)
    assert listed(client, second)["cache"] == "memory"
    _, summary = say(client, voice=second)
    assert summary["conditionals"]["tier"] == "memory"


@pytest.mark.usefixtures("default_restored")
def test_default_get_set_and_clear(client: Client, clips: Clips) -> None:
    a, b = uid("da"), uid("db")
    client.voices_add(a, data=clips.new())
    client.voices_add(b, data=clips.new())
    assert client.voices_default(a.upper()) == {"default": a}  # stored as the voice spells it
    assert client.voices_default() == {"default": a}
    assert client.call("voices.list")["default"] == a
    assert [v["name"] for v in client.voices_list() if v["default"]] == [a]
    client.voices_default(b)
    assert [v["name"] for v in client.voices_list() if v["default"]] == [b]
    assert code_of(client.voices_default, uid("ghost")) == "unknown_voice"
    assert client.voices_default() == {"default": b}  # a failed set changes nothing
    # Renaming the default voice keeps it the default.
    c = uid("dc")
    client.voices_rename(b, c)
    assert client.voices_default() == {"default": c}
    assert client.voices_default(clear=True) == {"default": None}
    assert not [v for v in client.voices_list() if v["default"]]


@pytest.mark.usefixtures("default_restored")
def test_every_library_change_publishes_a_voices_event(client: Client, clips: Clips, log: EventLog) -> None:
    name, new = uid("ev"), uid("ev2")
    added = client.voices_add(name, data=clips.new())
    client.voices_rename(name, new)
    client.voices_default(new)
    client.voices_remove(new)
    log.wait_for(lambda t, d: t == "voices" and d.get("action") == "removed" and d.get("name") == new)
    ours = [
        d
        for t, d in log.seen
        if t == "voices" and (d.get("voice", {}).get("name") in (name, new) or d.get("name") in (name, new))
    ]
    assert [d["action"] for d in ours] == ["added", "renamed", "default", "removed"]
    assert ours[0]["voice"]["sha256"] == added["sha256"]
    assert ours[1]["old_name"] == name and ours[1]["voice"]["name"] == new
    assert ours[2]["name"] == new
    assert ours[3]["name"] == new


# -- the cache over the protocol --------------------------------------------------------


@pytest.fixture
def own_daemon() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def test_cache_tiers_miss_memory_then_disk_after_a_restart_then_clear(own_daemon: DaemonProcess, clips: Clips) -> None:
    data, other = clips.new(), clips.new()
    c = own_daemon.client()
    events = EventLog(own_daemon.events())
    events.sync(c)

    stats = c.cache_stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (
        {"memory": 0, "disk": 0},
        0,
        {"memory": 0, "disk": 0},
    )
    assert Path(stats["directory"]).is_relative_to(own_daemon.home)
    assert stats["budgets"]["memory_bytes"] > 0 and stats["budgets"]["disk_bytes"] > 0

    # A miss prepares and stores in both tiers, and says so on the event socket.
    first, summary = say(c, voice_data=data)
    assert summary["conditionals"]["tier"] == "prepared"
    sha = hashlib.sha256(data).hexdigest()
    assert events.wait_for(lambda t, d: t == "cache" and d.get("sha256") == sha)["tier"] == "memory"
    stats = c.cache_stats()
    assert stats["misses"] == 1
    assert stats["entries"] == {"memory": 1, "disk": 1}
    assert stats["bytes"]["memory"] > 0 and stats["bytes"]["disk"] > 0
    assert stats["prepare_seconds_total"] > 0

    # The next request is a memory hit, and the audio is the same.
    again, summary = say(c, voice_data=data)
    assert summary["conditionals"]["tier"] == "memory"
    assert np.array_equal(first, again)
    stats = c.cache_stats()
    assert stats["hits"] == {"memory": 1, "disk": 0}
    assert stats["requests"] == 2
    assert stats["hit_rate"] == pytest.approx(0.5)
    assert stats["seconds_saved"] >= 0

    # A voice made from the same bytes is cached already.
    voice = c.voices_add("Keeper", data=data)
    assert voice["cache"] == "memory"
    c.voices_default("Keeper")

    # After a restart the memory tier is empty and the disk tier answers.
    own_daemon.restart()
    c = own_daemon.client()
    assert c.voices_default() == {"default": "Keeper"}
    assert listed(c, "Keeper")["cache"] == "disk"
    stats = c.cache_stats()
    assert (stats["hits"], stats["misses"]) == ({"memory": 0, "disk": 0}, 0)
    assert stats["entries"] == {"memory": 0, "disk": 1}
    from_disk, summary = say(c)  # the default voice
    assert summary["voice"] == "Keeper"
    assert summary["conditionals"]["tier"] == "disk"
    assert np.array_equal(first, from_disk)
    assert listed(c, "Keeper")["cache"] == "memory"  # promoted
    assert c.cache_stats()["hits"] == {"memory": 0, "disk": 1}

    # Clearing one voice drops its entry from both tiers, with an event.
    events = EventLog(own_daemon.events())
    events.sync(c)
    c.voices_add("Other", data=other)
    say(c, voice="Other")  # its entry in both tiers when the answer comes (a background one may lag on disk)
    assert c.cache_clear("keeper") == {"removed": 1}
    cleared = events.wait_for(lambda t, d: t == "cache" and d.get("cleared") is not None)
    assert cleared == {"sha256": sha, "voice": "keeper", "tier": None, "cleared": 1}
    assert listed(c, "Keeper")["cache"] is None
    assert listed(c, "Other")["cache"] == "memory"
    assert c.cache_stats()["entries"] == {"memory": 1, "disk": 1}
    _, summary = say(c, voice="Keeper")
    assert summary["conditionals"]["tier"] == "prepared"

    # Clearing everything empties both tiers.
    assert c.cache_clear() == {"removed": 2}
    stats = c.cache_stats()
    assert stats["entries"] == {"memory": 0, "disk": 0}
    assert stats["bytes"] == {"memory": 0, "disk": 0}
    assert [v["cache"] for v in c.voices_list()] == [None, None]
    assert code_of(c.cache_clear, "nobody") == "unknown_voice"


def test_the_first_voice_added_becomes_the_default(clips: Clips) -> None:
    """A library without a default: the voice added becomes it, and clients hear so (issue 23 §6).

    Speech Dispatcher, the hotkey and scripts name no voice; with no default
    they failed, silently through Speech Dispatcher.
    """
    proc = DaemonProcess()
    proc.start()
    try:
        with proc.client() as client:
            log = EventLog(proc.events())
            log.sync(client)
            assert client.voices_default() == {"default": None}
            first = client.voices_add("First", data=clips.new())
            assert first["default"] is True
            log.wait_for(lambda t, d: t == "voices" and d.get("action") == "default" and d.get("name") == "First")
            assert client.voices_default() == {"default": "First"}
            second = client.voices_add("Second", data=clips.new())
            assert second["default"] is False
            assert client.voices_default() == {"default": "First"}
    finally:
        proc.cleanup()


def test_check_judges_a_clip_as_add_would_and_adds_nothing(client: Client, clips: Clips) -> None:
    """voices.add with check: the clip's verdict before anyone names it (issue 23 §4)."""
    from chatterbox_tray.ipc import requests as rq

    before = client.voices_list()
    result = client.request(rq.voices_check(clips.new(), "clip.wav"))
    assert result["checked"] is True and 6.0 <= result["duration_s"] <= 8.0 and result["sample_rate"] > 0
    assert client.voices_list() == before
    bad = [
        (b"not audio at all" * 100, "clip_undecodable"),
        (wav_bytes(np.zeros(24_000 * 7, dtype=np.float32), 24_000), "clip_silent"),
        (voiced_tone(seconds=2.0), "clip_too_short"),
    ]
    for data, code in bad:
        with pytest.raises(ProtocolError) as err:
            client.request(rq.voices_check(data, "clip.wav"))
        assert err.value.code == code
    assert client.voices_list() == before
