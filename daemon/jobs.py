"""The job queue: work for the model, one job at a time, in order.

Synthesis and speech jobs run by priority rank (urgent, quick, text,
notification; ``synthesize`` ranks as text), first come first served within a
rank. A job is made one sentence at a time, and the worker puts a job back at
the head of its rank when a higher-ranked one arrives, so an urgent message is
synthesized next, not after a long chapter. ``synthesize`` jobs of the same
rank from different clients (this computer's user is one client, each
paired computer another) take turns sentence by sentence (the client
served least recently goes next; one client's own jobs stay in order), so a
long audiobook from one laptop does not hold up a quick text from another.
Speech jobs stay first come first served: they share one speaker, so making
another job's sentence between two of the playing job's would only starve it. Background jobs (preparing a newly
added voice's conditionals) run only when no synthesis waits, so adding a
voice never delays someone's speech. Cancelling a queued job removes it at
once; cancelling a running job sets its flag, which the engine checks between
model steps.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..ipc.messages import JobEvent
from .engine import SynthOptions
from .text import TextPiece

#: The one client every local job belongs to, for taking turns.
LOCAL_CLIENT = "local"

_ids = itertools.count(1)
_seqs = itertools.count()


@dataclass
class Job:
    """One unit of model work and who asked for it."""

    kind: str  # "synthesize", "speak" or "prepare"
    #: The requesting client's ZeroMQ identity and request id (None: internal).
    identity: bytes | None = None
    req_id: str | None = None
    #: Whose job: ``LOCAL_CLIENT`` or a remote client's key (set on admission; the recent
    #: jobs list shows a remote client its own texts only).
    client: str = LOCAL_CLIENT
    text: str = ""
    chunks: list[TextPiece] = field(default_factory=list)
    options: SynthOptions = field(default_factory=SynthOptions)
    #: Speaking rate (1.0: as the model made it); applied to the audio, not the model.
    rate: float = 1.0
    #: The voice: its library name (for events), clip bytes and their sha256.
    voice_name: str | None = None
    clip: bytes | None = None
    clip_sha256: str = ""
    id: str = field(default_factory=lambda: f"j{next(_ids)}")
    created: float = field(default_factory=time.perf_counter)
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Why ``cancel`` was set, for the job's end message ("the daemon is shutting down", ...).
    cancel_reason: str = "the job was cancelled"
    #: queued, running, playing, finished, failed, cancelled: written only by
    #: ``Coordinator`` (its ``end`` alone writes the final three).
    state: str = "queued"
    chunks_done: int = 0
    #: Priority rank (0 urgent .. 3 notification); "synthesize" ranks as text.
    rank: int = 2
    seq: int = field(default_factory=lambda: next(_seqs))
    #: Progress kept across preemptions: timings, tokens, first chunk time.
    tally: dict[str, Any] = field(default_factory=dict)
    #: The closing summary, once the model has made every sentence.
    summary: dict[str, Any] = field(default_factory=dict)
    #: True once the job's end event is out: nothing about it may follow.
    ended: bool = False
    #: Each chunk's tags (spans in its text), until the loaded model has said which it knows
    #: (``saytext.resolve_job``, before the first sentence), and what the summary tells the user.
    tag_spans: list[list[tuple[int, int]]] = field(default_factory=list)
    tags_resolved: bool = False
    warnings: list[str] = field(default_factory=list)
    #: Serialises the job's events between the worker and the main loop.
    event_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> dict[str, Any]:
        """What events and progress replies say about the job.

        ``request`` is the id of the request that made the job (as jupyter's
        ``parent_header``): a client matches events to what it asked for by
        it, even those that arrive before the reply that names the job.
        """
        return {
            "job": self.id,
            "request": self.req_id,
            "kind": self.kind,
            "state": self.state,
            "voice": self.voice_name,
            "chunks": len(self.chunks),
            "chunks_done": self.chunks_done,
        }

    def event(self, event: str, **extra: Any) -> JobEvent:
        """A ``job`` event about this job: what happened and the fields that go with it."""
        return JobEvent(event=event, **self.describe(), **extra)


class JobQueue:
    """A thread-safe two-lane FIFO: synthesis first, background work when idle.

    It orders jobs and nothing else: a job's ``state`` is the coordinator's
    to write (``coordinator.py``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._main: deque[Job] = deque()
        self._background: deque[Job] = deque()
        #: Whether the queue was closed (the daemon is stopping).
        self.closed = False
        self.running: Job | None = None
        #: Whose job it is, for taking turns. By default every job is the one
        #: local user's (the tray app, the CLI and scripts of one person keep
        #: first come first served among themselves); with remote mode the
        #: server maps each other computer's connections to its key.
        self.client_of: Callable[[Job], Hashable] = lambda job: LOCAL_CLIENT
        self._served: dict[Hashable, int] = {}
        self._turns = itertools.count()

    def put(self, job: Job) -> int:
        """Queue a job by (rank, arrival); return its position (as ``position``)."""
        with self._cond:
            if job.kind == "prepare":
                self._background.append(job)
                self._cond.notify_all()
                return len(self._main) + len(self._background) - 1
            at = next((i for i, j in enumerate(self._main) if (j.rank, j.seq) > (job.rank, job.seq)), len(self._main))
            self._main.insert(at, job)
            self._cond.notify_all()
            return at + (1 if self.running else 0)

    def ahead_of(self, job: Job) -> int:
        """The ``position`` ``job`` would get if it were put now."""
        with self._cond:
            at = sum(1 for j in self._main if (j.rank, j.seq) < (job.rank, job.seq))
            return at + (1 if self.running else 0)

    def should_yield(self, job: Job) -> bool:
        """Whether the worker should put ``job`` back after its sentence.

        A higher rank waits, or (``synthesize`` only) another client's
        synthesis of the same rank waits for its turn.
        """
        with self._cond:
            if self._main and self._main[0].rank < job.rank:
                return True
            if job.kind != "synthesize":
                return False
            mine = self.client_of(job)
            return any(j.rank == job.rank and j.kind == "synthesize" and self.client_of(j) != mine for j in self._main)

    def _pick(self) -> Job:
        """The next main-lane job: the head, or for synthesis the turn of the least recently served client."""
        head = self._main[0]
        if head.kind != "synthesize":
            return head
        firsts: dict[Hashable, Job] = {}
        for j in self._main:
            if j.rank == head.rank and j.kind == "synthesize":
                firsts.setdefault(self.client_of(j), j)
        client, job = min(firsts.items(), key=lambda item: (self._served.get(item[0], -1), item[1].seq))
        self._served[client] = next(self._turns)
        if len(self._served) > 1000:  # forget clients that have nothing queued
            waiting = {self.client_of(j) for j in self._main}
            self._served = {c: t for c, t in self._served.items() if c in waiting or c == client}
        return job

    def take(self, timeout: float | None = None) -> Job | None:
        """The next job to run, or None after ``timeout`` or when closed."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.closed and not self._main and not self._background:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)
            if self.closed:
                return None
            if self._main:
                job = self._pick()
                self._main.remove(job)
            else:
                job = self._background.popleft()
            self.running = job
            return job

    def done(self, job: Job) -> None:
        """Mark the running job as no longer running."""
        with self._cond:
            if self.running is job:
                self.running = None

    def remove(self, job: Job) -> bool:
        """Take a queued job out; False if it is not queued (running or gone)."""
        with self._cond:
            for lane in (self._main, self._background):
                if job in lane:
                    lane.remove(job)
                    return True
            return False

    def find(self, job_id: str | None = None, identity: bytes | None = None, req_id: str | None = None) -> list[Job]:
        """Queued and running jobs matching every given field."""
        with self._cond:
            jobs = [*([self.running] if self.running else []), *self._main, *self._background]
        return [
            j
            for j in jobs
            if (job_id is None or j.id == job_id)
            and (identity is None or j.identity == identity)
            and (req_id is None or j.req_id == req_id)
        ]

    def position(self, job: Job) -> int:
        """Jobs ahead of it for the model, the running one included (0: running or next); -1 if gone."""
        with self._cond:
            if self.running is job:
                return 0
            if job in self._main:
                return self._main.index(job) + (1 if self.running else 0)
            return -1

    def __len__(self) -> int:
        with self._cond:
            return len(self._main) + (1 if self.running else 0)

    def close(self) -> list[Job]:
        """Stop handing out jobs; return those still queued."""
        with self._cond:
            self.closed = True
            left = [*self._main, *self._background]
            self._main.clear()
            self._background.clear()
            self._cond.notify_all()
            return left
