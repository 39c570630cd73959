"""daemon/jobs.py: the JobQueue's order, lanes, positions and close, without a daemon."""

from __future__ import annotations

import threading

from chatterbox_tray.daemon.jobs import Job, JobQueue
from chatterbox_tray.ipc.limits import PRIORITY_RANK

URGENT, QUICK, TEXT, NOTE = (PRIORITY_RANK[p] for p in ("urgent", "quick", "text", "notification"))


def job(kind: str = "synthesize", rank: int = TEXT, **fields: object) -> Job:
    return Job(kind, rank=rank, **fields)  # type: ignore[arg-type]


def drain(queue: JobQueue) -> list[Job]:
    out = []
    while (taken := queue.take(timeout=0)) is not None:
        out.append(taken)
        queue.done(taken)
    return out


def test_first_come_first_served_within_a_rank() -> None:
    queue = JobQueue()
    jobs = [job() for _ in range(3)]
    for j in jobs:
        queue.put(j)
    assert drain(queue) == jobs


def test_rank_before_arrival() -> None:
    queue = JobQueue()
    text, note, urgent, quick = job(rank=TEXT), job("speak", NOTE), job("speak", URGENT), job("speak", QUICK)
    for j in (text, note, urgent, quick):
        queue.put(j)
    assert drain(queue) == [urgent, quick, text, note]


def test_a_job_put_back_keeps_its_place_at_the_head_of_its_rank() -> None:
    queue = JobQueue()
    first, second = job(), job()
    queue.put(first)
    queue.put(second)
    assert queue.take(timeout=0) is first
    queue.put(first)  # preempted after a chunk: it arrived before `second`
    queue.done(first)
    assert drain(queue) == [first, second]


def test_background_work_runs_only_when_no_synthesis_waits() -> None:
    queue = JobQueue()
    prepare = job("prepare")
    queue.put(prepare)
    later = job()
    queue.put(later)
    assert drain(queue) == [later, prepare]


def test_positions_count_the_running_job() -> None:
    queue = JobQueue()
    a, b, c = job(), job(), job()
    assert queue.put(a) == 0
    assert queue.put(b) == 1
    assert queue.take(timeout=0) is a
    assert queue.position(a) == 0  # running
    assert queue.position(b) == 1  # behind the running one
    assert queue.ahead_of(c) == 2
    assert queue.put(c) == 2
    assert len(queue) == 3
    queue.done(a)
    assert queue.position(a) == -1  # gone
    assert queue.position(b) == 0


def test_a_job_yields_when_a_higher_rank_waits() -> None:
    queue = JobQueue()
    running = job("speak", TEXT)
    queue.put(running)
    assert queue.take(timeout=0) is running
    assert not queue.should_yield(running)
    queue.put(job("speak", TEXT))
    assert not queue.should_yield(running)
    queue.put(job("speak", URGENT))
    assert queue.should_yield(running)


def test_remove_takes_only_queued_jobs() -> None:
    queue = JobQueue()
    running, queued, prepare = job(), job(), job("prepare")
    for j in (running, queued, prepare):
        queue.put(j)
    assert queue.take(timeout=0) is running
    assert not queue.remove(running)  # running: the worker ends it
    assert queue.remove(queued)
    assert not queue.remove(queued)  # already gone
    assert queue.remove(prepare)
    assert queue.take(timeout=0) is None


def test_find_matches_every_given_field() -> None:
    queue = JobQueue()
    mine = job(identity=b"me", req_id="r1")
    other = job(identity=b"you", req_id="r1")
    for j in (mine, other):
        queue.put(j)
    assert queue.find(identity=b"me") == [mine]
    assert queue.find(req_id="r1") == [mine, other]
    assert queue.find(identity=b"me", req_id="r2") == []
    assert queue.find(job_id=other.id) == [other]


def test_take_waits_for_a_job_and_close_wakes_it() -> None:
    queue = JobQueue()
    assert queue.take(timeout=0.01) is None
    got: list[Job | None] = []
    taker = threading.Thread(target=lambda: got.append(queue.take()))
    taker.start()
    left = job()
    queue.put(left)
    taker.join(timeout=10)
    assert got == [left]
    queue.done(left)
    queue.put(pending := job())
    waiter = threading.Thread(target=lambda: got.append(queue.take()))
    assert queue.close() == [pending]  # the queued ones, for their owner to end
    waiter.start()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert got == [left, None]


def test_the_queue_never_writes_a_jobs_state() -> None:
    """State is the coordinator's (daemon/coordinator.py); the queue only orders."""
    queue = JobQueue()
    j = job()
    j.state = "custom"
    queue.put(j)
    assert queue.take(timeout=0) is j
    queue.put(j)
    assert j.state == "custom"


def by_identity() -> JobQueue:
    queue = JobQueue()
    queue.client_of = lambda j: j.identity  # as the server maps remote computers
    return queue


def test_local_jobs_are_one_client_and_keep_first_come_first_served() -> None:
    queue = JobQueue()
    tray, script = job(identity=b"tray"), job(identity=b"script")
    queue.put(tray)
    assert queue.take(timeout=0) is tray
    queue.put(script)
    assert not queue.should_yield(tray)


def test_synthesis_of_different_clients_takes_turns_and_each_clients_order_holds() -> None:
    queue = by_identity()
    book1, book2 = job(identity=b"A"), job(identity=b"A")
    for j in (book1, book2):
        queue.put(j)
    assert queue.take(timeout=0) is book1
    assert not queue.should_yield(book1)  # only its own client waits
    quick = job(identity=b"B")
    queue.put(quick)
    assert queue.should_yield(book1)  # another client's synthesis of the same rank waits
    queue.put(book1)  # the worker puts it back after its sentence
    queue.done(book1)
    assert queue.take(timeout=0) is quick  # B's turn: A was served last
    assert queue.should_yield(quick)  # after one sentence, A's turn again
    queue.put(quick)
    queue.done(quick)
    assert drain(queue) == [book1, quick, book2]  # A's turn (book1 before its own book2), then B, then A


def test_speech_jobs_do_not_take_turns() -> None:
    queue = by_identity()
    first, other = job("speak", identity=b"A"), job("speak", identity=b"B")
    queue.put(first)
    assert queue.take(timeout=0) is first
    queue.put(other)
    assert not queue.should_yield(first)  # one speaker: interleaving would starve the playing job


def test_turns_follow_the_client_of_mapping() -> None:
    queue = JobQueue()
    queue.client_of = lambda j: b"laptop" if j.identity in (b"c1", b"c2") else j.identity
    running, same_computer = job(identity=b"c1"), job(identity=b"c2")
    queue.put(running)
    assert queue.take(timeout=0) is running
    queue.put(same_computer)
    assert not queue.should_yield(running)  # two connections of one computer are one client
