"""daemon/coordinator.py: a job's life, in process, with the real queue and a paused real speaker.

The speaker stays paused, so nothing reaches an audio device; what is checked
is what the coordinator publishes and answers, in what order, and that a job
ends exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatterbox_tray.daemon.coordinator import Coordinator
from chatterbox_tray.daemon.history import JobHistory
from chatterbox_tray.daemon.jobs import Job, JobQueue
from chatterbox_tray.daemon.player import Player
from chatterbox_tray.daemon.text import split_sentences
from chatterbox_tray.ipc.limits import PRIORITY_RANK
from chatterbox_tray.ipc.messages import Event, Reply, SpeakResult
from chatterbox_tray.ipc.protocol import ProtocolError


class Outbox:
    """Collects what the coordinator hands the main loop, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def reply(self, identity: bytes, req_id: str, reply: Reply) -> None:
        self.sent.append(("reply", (identity, req_id, reply.kind, reply.to_data())))

    def event(self, event: Event) -> None:
        self.sent.append(("event", (event.topic, event.to_data())))

    def job_events(self, job: Job) -> list[dict[str, Any]]:
        """The data of every ``job`` event about ``job``, in order."""
        return [p[1] for kind, p in self.sent if kind == "event" and p[0] == "job" and p[1].get("job") == job.id]

    def events(self, job: Job) -> list[str]:
        return [d["event"] for d in self.job_events(job)]

    def replies(self, req_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(kind, fields) of every reply to ``req_id``, in order."""
        return [(p[2], p[3]) for kind, p in self.sent if kind == "reply" and p[1] == req_id]


@pytest.fixture
def out() -> Outbox:
    return Outbox()


@pytest.fixture
def coord(out: Outbox, tmp_path: Path) -> Iterator[Coordinator]:
    queue = JobQueue()
    coordinator = Coordinator(out, queue, lambda: "ready", JobHistory(tmp_path / "history.json"))
    player = Player(24_000, event=coordinator.event, started=coordinator.playing, ended=coordinator.end)
    player.set_paused(True)
    coordinator.player = player
    out.sent.clear()
    yield coordinator
    player.close()


def synthesis(text: str = "One. Two.", identity: bytes = b"client", req_id: str = "r1") -> Job:
    return Job("synthesize", identity=identity, req_id=req_id, text=text, chunks=split_sentences(text))


def speech(priority: str = "text", req_id: str = "s1") -> Job:
    text = "Hello there."
    return Job("speak", req_id=req_id, text=text, chunks=split_sentences(text), rank=PRIORITY_RANK[priority])


def test_synthesis_is_accepted_then_announced_then_queued(coord: Coordinator, out: Outbox) -> None:
    job = synthesis()
    assert coord.admit(job) is None
    assert out.sent[0][0] == "reply" and out.sent[0][1][2] == "accepted"
    assert out.sent[1] == ("event", ("job", {**job.describe(), "event": "queued", "text": job.text}))
    assert out.sent[1][1][1]["request"] == "r1"
    assert coord.queue.find(job_id=job.id) == [job]
    assert job.state == "queued"


def test_cancelling_a_queued_job_ends_it_once(coord: Coordinator, out: Outbox) -> None:
    job = synthesis()
    coord.admit(job)
    assert coord.wait(job.id, b"waiter", "w1") is None
    assert coord.cancel(job, "stopped")
    assert job.state == "cancelled" and job.ended and job.cancel.is_set()
    assert coord.queue.find(job_id=job.id) == []
    assert out.events(job) == ["queued", "cancelled"]
    assert [k for k, _ in out.replies("r1")] == ["accepted", "error"]
    assert out.replies("r1")[1][1]["error"] == {"code": "cancelled", "message": "stopped"}
    ((kind, fields),) = out.replies("w1")
    assert kind == "result" and fields["result"]["state"] == "cancelled"
    # Nothing more: a second end, a late event, a second cancel.
    before = list(out.sent)
    assert not coord.end(job, "failed", ProtocolError("internal", "late"))
    coord.event(job, {**job.describe(), "event": "chunk"})
    assert not coord.cancel(job)
    assert out.sent == before
    assert job.state == "cancelled"


def test_a_running_synthesis_is_flagged_and_ended_by_whoever_runs_it(coord: Coordinator, out: Outbox) -> None:
    job = synthesis()
    coord.admit(job)
    assert coord.queue.take(timeout=0) is job
    coord.running(job)
    assert coord.cancel(job)  # flagged: the worker ends it at its next check
    assert job.cancel.is_set() and not job.ended and job.state == "running"
    assert coord.end(job, "cancelled", ProtocolError("cancelled", "the job was cancelled"))
    assert out.events(job) == ["queued", "cancelled"]
    # A stopped job is in the recent list too, with its text, so people see what they stopped.
    assert [(e["job"], e["state"], e["text"]) for e in coord.recent] == [(job.id, "cancelled", job.text[:120])]


def test_a_finished_synthesis_answers_with_its_summary(coord: Coordinator, out: Outbox) -> None:
    job = synthesis()
    coord.admit(job)
    job.summary = {"job": job.id, "chunks": 2}
    assert coord.end(job, "finished")
    assert out.replies("r1")[-1] == ("result", {"result": job.summary})
    data = out.job_events(job)[-1]
    assert data["event"] == "finished" and data["summary"] == job.summary
    [entry] = coord.recent
    assert {k: entry[k] for k in job.summary} == job.summary
    assert entry["text"] == job.text[:120] and entry["state"] == "finished" and entry["ended_at"] > 0
    assert coord.wait(job.id, b"late", "w2")["state"] == "finished"  # answered at once


def test_wait_for_an_unknown_job_is_no_such_job(coord: Coordinator) -> None:
    with pytest.raises(ProtocolError) as err:
        coord.wait("j999999", b"c", "w")
    assert err.value.code == "no_such_job"


def test_a_vanished_client_loses_its_synthesis_without_an_answer(coord: Coordinator, out: Outbox) -> None:
    mine, theirs = synthesis(req_id="a"), synthesis(identity=b"other", req_id="b")
    coord.admit(mine)
    coord.admit(theirs)
    coord.client_gone(b"client")
    assert mine.state == "cancelled" and theirs.state == "queued"
    assert [k for k, _ in out.replies("a")] == ["accepted"]  # nobody to answer


def test_quick_speech_replaces_queued_text_speech(coord: Coordinator, out: Outbox) -> None:
    first = speech("quick", "s1")
    result = coord.admit(first, "quick")
    assert result is not None and result.dropped is False
    second = speech("quick", "s2")
    result = coord.admit(second, "quick")
    assert result is not None and result.replaced == [first.id]
    assert out.events(first) == ["queued", "cancelled"]
    assert first.state == "cancelled" and first.cancel.is_set()
    assert coord.queue.find(job_id=first.id) == []
    ended = out.job_events(first)[-1]
    assert ended["error"]["message"] == f"replaced by quick job {second.id}"
    assert ended["playback"] == {}


def test_a_notification_over_speech_is_dropped_and_nothing_follows(coord: Coordinator, out: Outbox) -> None:
    coord.admit(speech("text", "s1"), "text")
    note = speech("notification", "n1")
    assert coord.admit(note, "notification") == SpeakResult(note.id, True, None, "notification")
    assert out.events(note) == ["dropped"]
    assert not coord.end(note, "cancelled")
    assert out.events(note) == ["dropped"]


def test_stopping_speech_ends_it_with_its_playback(coord: Coordinator, out: Outbox) -> None:
    job = speech()
    coord.admit(job, "text")
    coord.player.push(job, 0, np.zeros(2400, dtype=np.float32), (0, 12), job.text, 0.01)
    assert coord.cancel(job, "stopped")
    assert coord.player.jobs() == []
    ended = out.job_events(job)[-1]
    assert ended["event"] == "cancelled"
    assert ended["playback"]["priority"] == "text" and ended["playback"]["played_s"] == 0.0
    assert ended["request"] == "s1"


def test_a_failed_load_fails_the_waiting_synthesis_only(coord: Coordinator, out: Outbox) -> None:
    waiting, spoken = synthesis(), speech()
    coord.admit(waiting)
    coord.admit(spoken, "text")
    coord.fail_waiting("model_failed", "no weights")
    assert waiting.state == "failed"
    assert out.replies("r1")[-1][1]["error"]["code"] == "model_failed"
    assert spoken.state == "queued"
