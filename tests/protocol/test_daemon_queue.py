"""The job queue over real sockets: order, cancelling, vanished clients, one prepare per voice.

Most tests use the slow fake (every chunk takes SLOW_CHUNK_S) so that a job is
still queued or running when the test acts on it. Assertions are about order
and counts, read from the job events the daemon publishes, never about time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from chatterbox_tray.ipc.client import Client, Synthesis
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, accepted, uid


def sentences(n: int) -> str:
    """Text of ``n`` short sentences: ``n`` chunks, so ``n`` slow steps."""
    return " ".join(f"Sentence number {i} is here." for i in range(1, n + 1))


@pytest.fixture(scope="module")
def voice(slow_daemon: DaemonProcess, clips: Clips) -> str:
    """A voice on the slow daemon, prepared before any test times a job."""
    with slow_daemon.client() as c:
        name = c.voices_add(uid("q"), data=clips.new())["name"]
        c.synthesize("Warm.", voice=name).collect()
    return name


@pytest.fixture
def log(slow_daemon: DaemonProcess) -> EventLog:
    """A live subscription to the slow daemon's events."""
    events = EventLog(slow_daemon.events())
    with slow_daemon.client() as c:
        events.sync(c)
    return events


def start(daemon: DaemonProcess, text: str, voice: str, **options: Any) -> tuple[Client, Synthesis, dict]:
    """A new client with one synthesis request, its ``accepted`` reply already read."""
    client = daemon.client()
    synthesis = client.synthesize(text, voice=voice, **options)
    return client, synthesis, accepted(client, synthesis)


def kinds(log: EventLog, job: str) -> list[str]:
    return [event for _, event in log.job_events(job)]


def first_chunk(client: Client, synthesis: Synthesis) -> dict[str, Any]:
    """Read replies up to the first chunk without the Synthesis iterator.

    An abandoned iterator cancels its job when it is collected, which would
    hide whether the daemon noticed a vanished client by itself.
    """
    for msg in client.replies(synthesis.req_id, 10.0):
        if msg.header["kind"] == "chunk":
            return msg.header
    raise AssertionError("the job ended without a chunk")


def vanished(daemon: DaemonProcess) -> int:
    """How many times the daemon has logged that a client vanished with jobs."""
    return daemon.log_text().count("a client vanished")


def index_of(log: EventLog, job: str, event: str) -> int:
    for i, (topic, data) in enumerate(log.seen):
        if topic == "job" and data.get("job") == job and data.get("event") == event:
            return i
    raise AssertionError(f"no {event} event of {job} in {log.seen}")


# -- order ---------------------------------------------------------------------------


def test_jobs_run_one_at_a_time_in_the_order_they_came(slow_daemon: DaemonProcess, voice: str, log: EventLog) -> None:
    started = [start(slow_daemon, sentences(2), voice) for _ in range(3)]
    jobs = [head["job"] for _, _, head in started]
    positions = [head["position"] for _, _, head in started]
    assert positions[2] == positions[1] + 1  # the second and third wait behind the first

    for _, synthesis, _ in started:
        audio, _ = synthesis.collect()
        assert len(audio) > 0
        assert synthesis.summary["chunks"] == 2
    for job in jobs:
        log.wait_job(job, "finished")

    bounds = [(job, e) for job, e in log.job_events(*jobs) if e in ("started", "finished")]
    assert bounds == [(j, e) for j in jobs for e in ("started", "finished")]
    for job in jobs:  # every chunk of a job lies between its start and its end
        assert kinds(log, job) == ["queued", "started", "chunk", "chunk", "finished"]


def test_every_event_of_a_job_names_the_request_that_made_it(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    _, synthesis, head = start(slow_daemon, sentences(2), voice)
    _, other, other_head = start(slow_daemon, "Another one.", voice)
    synthesis.collect()
    other.collect()
    log.wait_job(head["job"], "finished")
    log.wait_job(other_head["job"], "finished")
    for req_id, job in ((synthesis.req_id, head["job"]), (other.req_id, other_head["job"])):
        events = [d for t, d in log.seen if t == "job" and d.get("job") == job]
        assert [d["event"] for d in events] == ["queued", "started", *["chunk"] * (len(events) - 3), "finished"]
        assert [d["request"] for d in events] == [req_id] * len(events)
    assert synthesis.req_id != other.req_id


def test_a_queued_job_gets_progress_with_its_position(slow_daemon: DaemonProcess, voice: str) -> None:
    _, first, _ = start(slow_daemon, sentences(8), voice)
    waiting_client, waiting, _ = start(slow_daemon, "Waiting here.", voice)
    progress = None
    for msg in waiting_client.replies(waiting.req_id, 10.0):
        if msg.header["kind"] == "progress":
            progress = msg.header["progress"]
            break
    assert progress is not None
    assert progress["job"] == waiting.job
    assert progress["request"] == waiting.req_id  # the request that made the job
    assert progress["state"] == "queued"
    assert progress["position"] == 1  # one job ahead of it: the running one
    assert progress["model"] == "ready"
    first.cancel()
    waiting.collect()
    assert waiting.summary["chunks"] == 1


# -- cancelling ----------------------------------------------------------------------


def test_cancelling_a_queued_job_removes_it_and_the_running_one_goes_on(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    _, running, _ = start(slow_daemon, sentences(4), voice)
    _, queued, _ = start(slow_daemon, "Never spoken.", voice)
    with slow_daemon.client() as other:
        assert other.cancel(queued.job) == {"cancelled": [queued.job]}
        with pytest.raises(ProtocolError) as err:
            other.cancel(queued.job)
        assert err.value.code == "no_such_job"

    with pytest.raises(ProtocolError) as err:
        queued.collect()
    assert err.value.code == "cancelled"
    running.collect()
    assert running.summary["chunks"] == 4
    log.wait_job(running.job, "finished")
    assert kinds(log, queued.job) == ["queued", "cancelled"]
    assert kinds(log, running.job)[-1] == "finished"


def test_cancelling_a_running_job_stops_it_between_chunks_and_the_next_job_runs(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    client, running, _ = start(slow_daemon, sentences(20), voice)
    _, after, _ = start(slow_daemon, "After the cancel.", voice)
    stream = iter(running)
    first = next(stream)
    assert first.index == 0
    with slow_daemon.client() as other:
        assert other.status()["queue"] == 2  # answered while the model works
        assert other.cancel(running.job) == {"cancelled": [running.job]}

    got = [first]
    with pytest.raises(ProtocolError) as err:
        got.extend(stream)
    assert err.value.code == "cancelled"
    assert len(got) < 20

    audio, _ = after.collect()
    assert len(audio) > 0
    log.wait_job(after.job, "finished")
    events = kinds(log, running.job)
    assert events[:3] == ["queued", "started", "chunk"]
    assert events[-1] == "cancelled"
    assert "finished" not in events
    assert events.count("chunk") < 20
    assert index_of(log, running.job, "cancelled") < index_of(log, after.job, "started")
    assert client.call("ping")["pong"] is True  # the cancelled client goes on as usual


def test_leaving_the_loop_early_cancels_the_job(slow_daemon: DaemonProcess, voice: str, log: EventLog) -> None:
    client, synthesis, _ = start(slow_daemon, sentences(20), voice)
    for chunk in synthesis:
        assert chunk.index == 0
        break
    log.wait_job(synthesis.job, "cancelled")
    assert "finished" not in kinds(log, synthesis.job)
    # Stale replies of the cancelled request never pass for the next one's.
    audio, rate = client.synthesize("Next one.", voice=voice).collect()
    assert rate == 24_000
    assert len(audio) > 0


def test_cancel_by_request_id_only_reaches_the_senders_own_jobs(slow_daemon: DaemonProcess, voice: str) -> None:
    owner, synthesis, _ = start(slow_daemon, sentences(8), voice)
    with slow_daemon.client() as stranger, pytest.raises(ProtocolError) as err:
        stranger.call("cancel", {"request": synthesis.req_id})
    assert err.value.code == "no_such_job"
    assert owner.call("cancel", {"request": synthesis.req_id}) == {"cancelled": [synthesis.job]}
    with pytest.raises(ProtocolError) as err:
        synthesis.collect()
    assert err.value.code == "cancelled"


def test_cancel_without_a_job_or_request_is_bad_args(slow_daemon: DaemonProcess) -> None:
    with slow_daemon.client() as c, pytest.raises(ProtocolError) as err:
        c.call("cancel", {})
    assert err.value.code == "bad_args"


# -- clients that vanish -------------------------------------------------------------


def test_a_client_that_closes_its_socket_mid_stream_has_its_job_cancelled(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    noticed = vanished(slow_daemon)
    leaver, gone, _ = start(slow_daemon, sentences(20), voice)
    _, other, _ = start(slow_daemon, sentences(2), voice)
    first_chunk(leaver, gone)
    leaver.close()

    log.wait_job(gone.job, "cancelled")
    audio, _ = other.collect()
    assert other.summary["chunks"] == 2
    assert len(audio) > 0
    assert kinds(log, gone.job).count("chunk") < 20
    assert vanished(slow_daemon) == noticed + 1  # the daemon noticed; the client sent no cancel


def test_a_client_that_vanishes_while_queued_never_starts(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    noticed = vanished(slow_daemon)
    _, running, _ = start(slow_daemon, sentences(16), voice)
    leaver, queued, _ = start(slow_daemon, "Nobody will hear this.", voice)
    leaver.close()
    log.wait_job(queued.job, "cancelled")  # noticed by the keepalive, before its turn
    running.cancel()
    assert kinds(log, queued.job) == ["queued", "cancelled"]
    assert vanished(slow_daemon) == noticed + 1


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from chatterbox_tray.ipc import endpoints
    from chatterbox_tray.ipc.client import Client
    client = Client(endpoints.read_connection(Path(sys.argv[1])))
    synthesis = client.synthesize(sys.argv[3], voice=sys.argv[2])
    stream = iter(synthesis)  # kept: a collected iterator would cancel the job itself
    chunk = next(stream)
    print(synthesis.job, chunk.index, flush=True)
    time.sleep(600)
    """
)


def test_a_killed_client_process_has_its_job_cancelled_and_others_are_served(
    slow_daemon: DaemonProcess, voice: str, log: EventLog
) -> None:
    noticed = vanished(slow_daemon)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(slow_daemon.connection_path), voice, sentences(20)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        job, index = child.stdout.readline().split()
        assert index == "0"
        _, other, _ = start(slow_daemon, sentences(2), voice)
        child.kill()
        child.wait(timeout=10)
        log.wait_job(job, "cancelled")
        audio, _ = other.collect()
        assert len(audio) > 0
        assert "finished" not in kinds(log, job)
        assert vanished(slow_daemon) == noticed + 1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


# -- preparing voices ----------------------------------------------------------------


def test_a_voice_added_while_busy_is_prepared_after_the_waiting_synthesis(
    slow_daemon: DaemonProcess, voice: str, clips: Clips, log: EventLog
) -> None:
    _, running, _ = start(slow_daemon, sentences(6), voice)
    with slow_daemon.client() as c:
        added = c.voices_add(uid("late"), data=clips.new())
    assert added["cache"] is None
    _, waiting, _ = start(slow_daemon, "I was here first.", voice)
    running.collect()
    waiting.collect()
    prepared = log.wait_for(lambda t, d: t == "cache" and d.get("sha256") == added["sha256"])
    assert prepared["tier"] == "memory"
    cache_event = next(i for i, (t, d) in enumerate(log.seen) if t == "cache" and d is prepared)
    assert index_of(log, waiting.job, "started") < cache_event


@pytest.fixture(scope="module")
def prep_daemon() -> Iterator[DaemonProcess]:
    """A fake whose prepare takes a while, so that two requests overlap it."""
    proc = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_PREPARE_DELAY": "0.5"}).start()
    yield proc
    proc.cleanup()


def misses_and_hits(client: Client) -> tuple[int, int]:
    stats = client.cache_stats()
    return stats["misses"], stats["hits"]["memory"] + stats["hits"]["disk"]


def test_two_requests_for_one_uncached_voice_prepare_it_once(prep_daemon: DaemonProcess, clips: Clips) -> None:
    data = clips.new()
    with prep_daemon.client() as a, prep_daemon.client() as b:
        misses, hits = misses_and_hits(a)
        first = a.synthesize("One voice.", voice_data=data, seed=9)
        # Two clients' requests arriving together are read in either order (the
        # ROUTER socket queues fairly): wait until the first is in, then send
        # the second while the first one's voice is still being prepared.
        accepted(a, first)
        second = b.synthesize("One voice.", voice_data=data, seed=9)
        audio_a, _ = first.collect()
        audio_b, _ = second.collect()
        assert np.array_equal(audio_a, audio_b)
        assert [first.summary["conditionals"]["tier"], second.summary["conditionals"]["tier"]] == [
            "prepared",
            "memory",
        ]
        assert misses_and_hits(a) == (misses + 1, hits + 1)


def test_a_voice_used_right_after_adding_is_prepared_once(prep_daemon: DaemonProcess, clips: Clips) -> None:
    with prep_daemon.client() as c:
        misses, _ = misses_and_hits(c)
        background = c.cache_stats()["prepared_in_background"]
        prepare_seconds = c.cache_stats()["prepare_seconds_total"]
        name = c.voices_add(uid("fresh"), data=clips.new())["name"]
        synthesis = c.synthesize("Straight away.", voice=name)
        synthesis.collect()
        # Whichever ran first, the background preparation or the synthesis,
        # made the entry; the other found it. Only a request's is a miss.
        tier = synthesis.summary["conditionals"]["tier"]
        assert tier in ("prepared", "memory")
        made_by_request = tier == "prepared"
        assert misses_and_hits(c)[0] == misses + made_by_request
        assert c.cache_stats()["prepared_in_background"] == background + (not made_by_request)
        assert c.cache_stats()["prepare_seconds_total"] > prepare_seconds
        assert next(v for v in c.voices_list() if v["name"] == name)["cache"] == "memory"
