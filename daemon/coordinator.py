"""The one owner of a job's life: admit, cancel, end, and who waits for it.

Every change of a job's ``state`` is written here, and nowhere else; handlers,
the server, the worker and the speaker call these public methods:

* `admit` / `admit_clip`: a new job is announced and queued (or dropped, or it
  displaces others on the speaker);
* `running`, `requeue`, `playing`: the worker and the speaker report progress;
* `cancel`: a client stops a job (a running synthesis is flagged and ended by
  the worker at its next check);
* `end`: the only way a job ends. It sets the final state, publishes the end
  event (after which no event about the job goes out), answers the requesting
  client and everyone waiting, and takes the job off the queue and speaker.
  Calling it again for an ended job does nothing, so the worker and the
  speaker may both try (a stop can land while a sentence is being made);
* `client_gone`: a client vanished; its waits and its synthesis go with it.

Threads: the main loop, the worker and the player thread all call in. One
lock serialises ends; a job's ``event_lock`` orders its events. The speaker's
own lock is never held while calling in here (it calls `end` after
releasing it), and `end` takes the speaker's lock only before the job's
``event_lock``, so the three never wait on each other in a circle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..ipc.messages import Accepted, ErrorReply, Event, JobEvent, Progress, Reply, Result, SpeakResult, WaitResult
from ..ipc.protocol import CodedError, ProtocolError, as_coded
from .history import JobHistory
from .jobs import Job, JobQueue
from .player import Dropped

if TYPE_CHECKING:
    import numpy as np

    from .player import Player

log = logging.getLogger(__name__)

#: How much of a job's text its "recent jobs" entry keeps.
RECENT_TEXT_CHARS = 120

#: How many ended jobs ``wait`` can still answer for.
ENDED_KEPT = 500


class Outbox(Protocol):
    """Where threads leave messages for the main loop to send."""

    def reply(self, identity: bytes, req_id: str, reply: Reply) -> None:
        """A reply to one client's request."""

    def event(self, event: Event) -> None:
        """A broadcast to every subscriber."""


class Coordinator:
    """Jobs from admission to end: the queue, the speaker's share of them, and waiters."""

    def __init__(self, outbox: Outbox, queue: JobQueue, model_state: Callable[[], str], recent: JobHistory) -> None:
        self.out = outbox
        self.queue = queue
        self._model_state = model_state
        #: Set by the service once the speaker exists (it calls back in here).
        self.player: Player | None = None
        #: The last jobs' summaries, for clients' "recent jobs" views (kept across restarts).
        self.recent = recent
        #: Requests waiting for a job's end (identity, request id, whether the
        #: job stops if that client goes away), and the ends of recent jobs.
        self._waiters: dict[str, list[tuple[bytes, str, bool]]] = {}
        self._ended: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # waiters and ended
        self._ending = threading.RLock()  # one end at a time

    # -- admission -----------------------------------------------------------------

    def admit(self, job: Job, priority: str | None = None, volume: float = 1.0) -> SpeakResult | None:
        """Announce and queue a new ``synthesize`` or ``speak`` job.

        ``synthesize``: the ``accepted`` reply and the ``queued`` event go out
        before the worker can see the job, so they come before anything the
        worker says about it; returns None (the answer streams later).

        ``speak``: the job goes on the speaker (``priority``, ``volume``) and
        in the queue; returns ``speak``'s result (dropped, position, replaced).
        """
        job.client = str(self.queue.client_of(job))
        if job.kind == "synthesize":
            assert job.identity is not None and job.req_id is not None
            position = self.queue.ahead_of(job)
            self.out.reply(job.identity, job.req_id, Accepted(job=job.id, position=position, chunks=len(job.chunks)))
            self._enqueue(job)
            return None
        assert job.kind == "speak" and priority is not None
        try:
            displaced = self._speaker.admit(job, priority, volume)
        except Dropped as exc:
            with job.event_lock:  # a dropped notification never ran: it keeps its state
                job.ended = True
                self.out.event(job.event("dropped", priority=priority, reason=str(exc)))
            return SpeakResult(job.id, True, None, priority)
        for other in displaced:
            self.end(other, "cancelled", ProtocolError("cancelled", f"replaced by {priority} job {job.id}"), {})
        position = self.queue.ahead_of(job)
        self._enqueue(job, priority=priority)
        # A job whose waiting client was killed (Speech Dispatcher stops its module's
        # command with SIGKILL) must not hold up this one until the next keepalive.
        self.probe_waiters()
        return SpeakResult(job.id, False, position, priority, len(job.chunks), [o.id for o in displaced])

    def admit_clip(self, job: Job, samples: np.ndarray, text: str) -> None:
        """Play ready-made audio (a voice's clip) as quick speech; the model never sees it."""
        displaced = self._speaker.admit(job, "quick")
        for other in displaced:
            self.end(other, "cancelled", ProtocolError("cancelled", f"replaced by {job.id}"), {})
        self.out.event(job.event("queued", priority="quick", text=text))
        self._speaker.push(job, 0, samples, (0, len(text)), text, 0.0)
        self._speaker.produced(job)

    def admit_background(self, job: Job) -> None:
        """Queue the daemon's own work (preparing a voice); it publishes no job events."""
        self.queue.put(job)

    # -- progress (worker and speaker) ---------------------------------------------

    def running(self, job: Job) -> None:
        """The worker took ``job`` from the queue."""
        with job.event_lock:
            if not job.ended:
                job.state = "running"

    def requeue(self, job: Job) -> None:
        """The worker puts ``job`` back for a higher-ranked one (after the chunk in hand)."""
        self._put(job)

    def playing(self, job: Job) -> None:
        """The speaker played ``job``'s first sample."""
        with job.event_lock:
            if not job.ended:
                job.state = "playing"

    def event(self, job: Job | None, event: JobEvent) -> None:
        """Publish an event about a job, unless its end event is already out.

        The worker, the speaker and the main loop all report on a job, and
        clients track jobs by their events, so the end event must be the last.
        ``job`` None: the speaker's news about itself (paused or resumed with
        nothing on it).
        """
        if job is None:
            self.out.event(event)
            return
        with job.event_lock:
            if not job.ended:
                self.out.event(event)

    # -- stopping and ending ----------------------------------------------------------

    def cancel(self, job: Job, message: str = "the job was cancelled") -> bool:
        """Stop a job a client named; False if it had already ended.

        Speech and queued synthesis end now. A running synthesis is flagged:
        the engine checks the flag between model steps and the worker ends it.
        """
        job.cancel_reason = message
        job.cancel.set()
        if job.kind == "speak" or self.queue.remove(job):
            return self.end(job, "cancelled", ProtocolError("cancelled", message))
        return not job.ended  # running: the worker ends it

    def end(
        self,
        job: Job,
        state: str,
        error: Exception | None = None,
        playback: dict[str, Any] | None = None,
    ) -> bool:
        """End a job: final state, end event, answers; False if it had already ended.

        ``state`` is ``finished``, ``failed`` or ``cancelled``. ``playback`` is
        the speaker's report for speech (taken from the speaker when not
        given). A job that did not finish is flagged, so its synthesis stops
        making audio nobody will hear.
        """
        with self._ending:
            if job.ended:
                return False
            if state != "finished":
                job.cancel.set()
            self.queue.remove(job)
            if job.kind == "speak":
                report = self._speaker.remove(job)
                playback = playback if playback is not None else (report or {})
            else:
                playback = None  # only speech has a playback report
            coded = _coded(error)
            error_json = None if coded is None else coded.to_json()
            if job.kind == "synthesize" and job.identity is not None and job.req_id is not None:
                if coded is not None:
                    self.out.reply(job.identity, job.req_id, ErrorReply.of(coded))
                elif state == "finished":
                    self.out.reply(job.identity, job.req_id, Result(job.summary))
            with job.event_lock:
                job.state = state
                job.ended = True
                if job.kind != "prepare":
                    summary = job.summary if job.summary and (state == "finished" or job.kind == "speak") else None
                    self.out.event(job.event(state, playback=playback, summary=summary, error=error_json))
        if job.kind == "prepare":
            return True
        if state != "failed":  # speech or synthesis
            # Text and time so that a person can tell jobs apart; stopped ones too.
            entry = _recent_entry(job, job.summary, state=state, ended_at=round(time.time(), 3))
            if job.kind == "speak":
                entry["playback"] = playback
            self.recent.append(entry)
        else:
            self.recent.drop(job.id)
        self._resolve_waiters(job, state, error_json, playback)
        return True

    def fail_waiting(self, code: str, message: str) -> None:
        """A failed model load fails the synthesis jobs that were waiting for it."""
        for job in self.queue.find():
            if job.kind == "synthesize" and self.queue.remove(job):
                self.end(job, "failed", ProtocolError(code, f"the model failed to load: {message}"))

    def shutdown(self) -> None:
        """Stop handing out jobs; end the queued ones and flag the running one."""
        for job in self.queue.close():
            self.end(job, "cancelled", ProtocolError("cancelled", "the daemon is shutting down"))
        running = self.queue.running
        if running is not None:
            running.cancel_reason = "the daemon is shutting down"
            running.cancel.set()

    # -- clients ---------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Queued, running and speaking jobs, each once."""
        return list({j.id: j for j in [*self.queue.find(), *self._speaker.jobs()]}.values())

    def find(self, job_id: str) -> Job | None:
        """A queued, running or speaking job a client can name (not background work)."""
        return next((j for j in self.jobs() if j.id == job_id and j.kind != "prepare"), None)

    def wait(
        self, job_id: str, identity: bytes, req_id: str, stop_on_disconnect: bool = False
    ) -> dict[str, Any] | None:
        """Answer ``req_id`` when ``job_id`` ends; returns its end now if it already ended.

        With ``stop_on_disconnect`` the job is stopped if this client vanishes
        before it ends (see `client_gone`). Raises ``no_such_job``.
        """
        known = self.find(job_id) is not None
        with self._lock:
            if job_id in self._ended:
                return self._ended[job_id]
            if not known:
                raise ProtocolError("no_such_job", f"no job {job_id}")
            self._waiters.setdefault(job_id, []).append((identity, req_id, stop_on_disconnect))
            return None

    def _resolve_waiters(
        self, job: Job, state: str, error_json: dict[str, Any] | None, playback: dict[str, Any] | None
    ) -> None:
        end = WaitResult(job.id, job.kind, state, job.summary or None, playback, error_json).to_data()
        with self._lock:
            self._ended[job.id] = end
            while len(self._ended) > ENDED_KEPT:
                self._ended.pop(next(iter(self._ended)))
            waiting = self._waiters.pop(job.id, [])
        for identity, req_id, _ in waiting:
            self.out.reply(identity, req_id, Result(end))

    def client_gone(self, identity: bytes) -> None:
        """A client vanished: drop its waits, stop what it waited on with
        ``stop_on_disconnect``, and cancel its synthesis (nobody would read it).

        Speech it asked for keeps playing: it belongs to the daemon.
        """
        doomed = []
        with self._lock:
            for job_id in list(self._waiters):
                mine = [w for w in self._waiters[job_id] if w[0] == identity]
                if any(w[2] for w in mine):
                    doomed.append(job_id)
                self._waiters[job_id] = [w for w in self._waiters[job_id] if w[0] != identity]
                if not self._waiters[job_id]:
                    del self._waiters[job_id]
        for job_id in doomed:
            job = self.find(job_id)
            if job is not None:
                log.info("the client waiting for job %s went away; stopping the job", job_id)
                self.cancel(job, "stopped: the client waiting for it went away")
        jobs = [j for j in self.queue.find(identity=identity) if j.kind == "synthesize"]
        if jobs:
            log.info("a client vanished; cancelling its %d job(s)", len(jobs))
        for job in jobs:
            job.identity = None  # nobody to answer
            self.cancel(job)

    def probe_waiters(self) -> None:
        """Send a progress reply now to every ``stop_on_disconnect`` wait.

        A send to a client that has gone fails at once (ROUTER_MANDATORY), and
        the server then calls `client_gone`: so a job whose client was killed
        stops before newly queued speech has to wait behind it, not only at
        the next once-a-second keepalive.
        """
        for identity, req_id, progress in self.keepalives(probing=True):
            self.out.reply(identity, req_id, progress)

    def keepalives(self, probing: bool = False) -> list[tuple[bytes, str, Progress]]:
        """(identity, request id, ``Progress``) of each request waiting on a job; ``probing``: stop_on_disconnect's."""
        model = self._model_state()
        out = []
        for job in [] if probing else self.queue.find():
            if job.identity is not None and job.req_id is not None and job.kind == "synthesize":
                progress = {**job.describe(), "position": self.queue.position(job), "model": model}
                out.append((job.identity, job.req_id, Progress(progress)))
        with self._lock:
            waits = [(job_id, w) for job_id, ws in self._waiters.items() for w in ws if w[2] or not probing]
        for job_id, (identity, req_id, _) in waits:
            out.append((identity, req_id, Progress({"job": job_id, "waiting": True, "model": model})))
        return out

    # -- internals -----------------------------------------------------------------------

    @property
    def _speaker(self) -> Player:
        assert self.player is not None, "the service gives the coordinator its speaker at start"
        return self.player

    def _enqueue(self, job: Job, **queued: Any) -> None:
        """Announce a new job (``queued``: the event's fields), save it as running, and queue it.

        Saved as running so that if the daemon dies before its end, the next one lists it as lost.
        """
        self.out.event(job.event("queued", **queued, text=job.text[:200]))
        self.recent.begin(_recent_entry(job, {}, started_at=round(time.time(), 3)))
        self._put(job)

    def _put(self, job: Job) -> None:
        with job.event_lock:
            job.state = "queued"
        self.queue.put(job)


def _recent_entry(job: Job, summary: dict[str, Any], **when: Any) -> dict[str, Any]:
    """A job's "recent jobs" entry: its summary (else its id and voice), text, ``when`` fields, owner and kind."""
    head = summary or {"job": job.id, "voice": job.voice_name}
    return {**head, "text": job.text[:RECENT_TEXT_CHARS], **when, "client": job.client, "kind": job.kind}


def _coded(error: Exception | None) -> CodedError | None:
    """Any error as one with a protocol code (every daemon error already is one)."""
    return None if error is None else as_coded(error, "a job")
