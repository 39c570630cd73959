"""The daemon's state and work: model lifecycle, the worker, voices and cache.

Threads: the server's main loop (sockets, quick requests), one loader thread
while the model loads, and one worker that runs jobs on the model in order.
They meet here. Everything a thread wants to tell a client goes through the
``Outbox``, which the main loop alone turns into socket sends, because ZeroMQ
sockets must stay on one thread.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from chatterbox_tray.ipc import endpoints
from chatterbox_tray.ipc.protocol import ProtocolError

from .condcache import CacheKey, ConditionalsCache
from .engine import Cancelled, Engine, EngineError
from .jobs import Job, JobQueue
from .player import Player
from .settings import Settings
from .text import token_budget
from .voices import VoiceLibrary

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class Outbox(Protocol):
    """Where threads leave messages for the main loop to send."""

    def reply(self, identity: bytes, req_id: str, kind: str, buffers: tuple = (), **fields: Any) -> None:
        """A reply to one client's request."""

    def event(self, topic: str, data: dict[str, Any]) -> None:
        """A broadcast to every subscriber."""


def make_engine(settings: Settings) -> Engine:
    """The engine the settings ask for (imports the heavy one only when needed)."""
    if settings.engine == "fake":
        from .fake_engine import FakeEngine

        return FakeEngine(settings.variant)
    from .chatterbox_engine import ChatterboxEngine

    return ChatterboxEngine(settings.variant, settings.checkpoint, settings.device)


class Service:
    """Model, cache, voices and the job worker, shared by all clients."""

    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.out = outbox
        self.started = time.time()
        self.state = "starting"
        self.progress = 0.0
        self.message = "starting"
        self.error = ""
        self.engine: Engine = make_engine(settings)
        self.cache = ConditionalsCache(
            endpoints.cache_dir() / "conditionals",
            settings.memory_cache_mb * MIB,
            settings.disk_cache_mb * MIB,
        )
        self.voices = VoiceLibrary(endpoints.data_dir())
        self.queue = JobQueue()
        self.player = Player(
            24_000,
            device=settings.output_device,
            volume=settings.volume,
            prebuffer=settings.prebuffer,
            sentence_pause_ms=settings.sentence_pause_ms,
            event=lambda job, data: self.job_event(job, data) if job is not None else self.out.event("job", data),
            ended=self._speech_ended,
        )
        #: What the loaded model was loaded with (settings may have moved on).
        self.loaded_settings: dict[str, Any] = {}
        #: Requests waiting for a job's end (identity, request id, whether the
        #: job stops if that client goes away), and the ends of recent jobs.
        self.waiters: dict[str, list[tuple[bytes, str, bool]]] = {}
        self.ended: dict[str, dict[str, Any]] = {}
        #: The last jobs' summaries, for clients' "recent jobs" views.
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="worker", daemon=True)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Begin loading the model and start the worker."""
        self._worker.start()
        self.load_model()

    def load_model(self) -> bool:
        """Start a load in the background unless one is running or the model is ready."""
        with self._lock:
            if self.state in ("loading", "warming_up", "ready"):
                return False
            self._set_state("loading", 0.0, "loading the model")
        threading.Thread(target=self._load, name="loader", daemon=True).start()
        return True

    def apply_settings(self, new: Settings) -> None:
        """Take new settings: cache budgets and playback at once, the model at ``reload``."""
        self.settings = new
        self.cache.set_budgets(new.memory_cache_mb * MIB, new.disk_cache_mb * MIB)
        self.player.set_output(new.output_device, new.volume)
        self.player.prebuffer = new.prebuffer
        self.player.pause_s = new.sentence_pause_ms / 1000

    def reload_required(self) -> bool:
        """Whether the loaded model differs from what the settings ask for."""
        wanted = {k: getattr(self.settings, k) for k in ("variant", "checkpoint", "device")}
        return any(self.loaded_settings.get(k) != v for k, v in wanted.items())

    def reload_model(self) -> bool:
        """Swap in the model the settings ask for; refused while a job runs or a load is under way."""
        with self._lock:
            if self.state in ("loading", "warming_up"):
                return False
            if self.queue.running is not None and self.queue.running.kind != "prepare":
                raise ProtocolError("busy", "a job is running; stop it or wait, then reload")
            self._ready.clear()
            old, self.engine = self.engine, make_engine(self.settings)
            self._set_state("loading", 0.0, "loading the model")
        old.unload()
        threading.Thread(target=self._load, name="loader", daemon=True).start()
        return True

    def _set_state(self, state: str, progress: float, message: str, error: str = "") -> None:
        self.state, self.progress, self.message, self.error = state, progress, message, error
        self.out.event("state", self.status())

    def _load(self) -> None:
        try:
            self.engine.load(lambda frac, what: self._set_state("loading", frac, what))
            if self.settings.warmup:
                self._set_state("warming_up", 0.95, "warming up")
                start = time.perf_counter()
                self.engine.warmup()
                log.info("warm-up took %.1f s", time.perf_counter() - start)
        except EngineError as exc:
            log.error("model load failed: %s", exc.message)
            self.engine.unload()
            self._set_state("failed", 0.0, "failed", exc.message)
            self._fail_waiting(exc.code, exc.message)
            return
        except Exception as exc:  # any load failure leaves a live daemon with a reason
            log.error("model load failed:\n%s", traceback.format_exc())
            self.engine.unload()
            message = f"{type(exc).__name__}: {exc}"
            self._set_state("failed", 0.0, "failed", message)
            self._fail_waiting("model_failed", message)
            return
        self.player.rate = self.engine.sample_rate
        self.loaded_settings = {k: getattr(self.settings, k) for k in ("variant", "checkpoint", "device")}
        self._ready.set()
        self._set_state("ready", 1.0, "ready")
        log.info("model %s ready on %s", self.engine.model_id, self.engine.device)
        # Voices added while the model was away get their conditionals now.
        for voice in self.voices.list():
            if self.cache_tier(voice.sha256) is None:
                self.queue.put(Job("prepare", voice_name=voice.name, clip_sha256=voice.sha256))

    def _fail_waiting(self, code: str, message: str) -> None:
        """A failed load fails the synthesis jobs that were waiting for it."""
        for job in self.queue.find():
            if job.kind == "synthesize" and self.queue.remove(job):
                self.finish(job, "failed", ProtocolError(code, f"the model failed to load: {message}"))

    def stop(self) -> None:
        """Cancel everything and let the worker end."""
        for job in self.queue.close():
            self.finish(job, "cancelled", ProtocolError("cancelled", "the daemon is shutting down"))
        running = self.queue.running
        if running is not None:
            running.cancel.set()
        self._ready.set()  # wake a worker waiting for the model
        self._worker.join(timeout=10)
        self.player.close()

    def status(self) -> dict[str, Any]:
        """What ``status`` replies and ``state`` events carry."""
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "message": self.message,
            "error": self.error,
            "variant": self.engine.variant,
            "model_id": self.engine.model_id,
            "device": self.engine.device,
            "queue": len(self.queue),
            "reload_required": bool(self.loaded_settings) and self.reload_required(),
        }

    # -- voices and cache ------------------------------------------------------------

    def cache_key(self, sha256: str) -> CacheKey:
        """The cache key of a clip for the loaded model."""
        return CacheKey(self.engine.model_id, sha256, self.engine.prep_version)

    def cache_tier(self, sha256: str) -> str | None:
        """Where a clip's conditionals are: "memory", "disk", or None (not yet / no model)."""
        if not self.engine.model_id:
            return None
        return self.cache.tier_of(self.cache_key(sha256))

    def voice_json(self, name: str) -> dict[str, Any]:
        """A voice as the protocol shows it: library fields, cache state, default flag."""
        voice = self.voices.get(name)
        data = voice.to_json()
        data.pop("file", None)  # where we keep it is our business
        data["cache"] = self.cache_tier(voice.sha256)
        data["default"] = self.voices.default is not None and self.voices.default.lower() == voice.name.lower()
        return data

    def queue_prepare(self, name: str) -> None:
        """Prepare a voice's conditionals in the background (after any synthesis)."""
        voice = self.voices.get(name)
        if self.state == "ready" and self.cache_tier(voice.sha256) is None:
            self.queue.put(Job("prepare", voice_name=voice.name, clip_sha256=voice.sha256))

    # -- the worker --------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self.queue.take()
            if job is None:
                return
            if not self._ready.is_set():
                self.job_event(job, {**job.describe(), "event": "waiting_for_model"})
            while not self._ready.wait(0.2):
                if job.cancel.is_set() or self.state == "failed":
                    break
            try:
                if job.cancel.is_set():
                    raise Cancelled()
                if self.state == "failed":
                    raise ProtocolError("model_failed", f"the model failed to load: {self.error}")
                if self.state != "ready":
                    raise ProtocolError("not_ready", f"the model is not loaded: {self.error or self.state}")
                if job.kind == "prepare":
                    self._run_prepare(job)
                else:
                    self._run_synthesis(job)
            except Cancelled:
                self.finish(job, "cancelled", ProtocolError("cancelled", "the job was cancelled"))
            except ProtocolError as exc:
                self.finish(job, "failed", exc)
            except EngineError as exc:
                self.finish(job, "failed", ProtocolError(exc.code, exc.message))
            except Exception as exc:  # one bad job must not end the worker
                log.error("job %s failed:\n%s", job.id, traceback.format_exc())
                self.finish(job, "failed", ProtocolError("internal", f"{type(exc).__name__}: {exc}"))
            finally:
                self.queue.done(job)

    def finish(self, job: Job, state: str, error: ProtocolError | None = None) -> None:
        """End a job that did not finish normally (cancelled, failed), or a prepare job."""
        if job.kind == "speak":
            self.player.remove(job, state, error)  # the player reports its end, once
            return
        job.state = state
        event = {**job.describe(), "event": state}
        if error is not None:
            event["error"] = error.to_json()
            if job.identity is not None and job.req_id is not None:
                self.out.reply(job.identity, job.req_id, "error", error=error.to_json())
        if job.kind in ("synthesize", "speak"):
            self.job_event(job, event, end=True)
            self._resolve_waiters(job, state, error)

    def job_event(self, job: Job, data: dict[str, Any], *, end: bool = False) -> None:
        """Publish an event about a job, unless its end event is already out.

        The worker and the main loop both report on a job (a stop can land
        while a sentence is being made), and clients track jobs by their events,
        so the end event must be the last word. ``end=True`` marks it so.
        """
        with job.event_lock:
            if job.ended:
                return
            job.ended = end
            self.out.event("job", data)

    def _speech_ended(self, job: Job, state: str, error: Exception | None, playback: dict[str, Any]) -> None:
        """The player is done with a speak job: finished, cancelled, or failed."""
        if state != "finished" and not job.cancel.is_set():
            job.cancel.set()  # stop making audio nobody will hear
            if self.queue.remove(job):
                pass
        if error is not None and not isinstance(error, ProtocolError):
            error = ProtocolError(getattr(error, "code", "audio_device"), getattr(error, "message", str(error)))
        job.state = state
        event = {**job.describe(), "event": state, "playback": playback}
        if job.summary:
            event["summary"] = job.summary
            self.recent.append({**job.summary, "playback": playback})
        if error is not None:
            event["error"] = error.to_json()
        self.job_event(job, event, end=True)
        self._resolve_waiters(job, state, error, playback)

    # -- waiting for a job's end ------------------------------------------------------

    def add_waiter(
        self, job_id: str, identity: bytes, req_id: str, stop_on_disconnect: bool = False
    ) -> dict[str, Any] | None:
        """Answer when ``job_id`` ends; returns its end now if it already ended.

        With ``stop_on_disconnect`` the job is stopped if this client vanishes
        before it ends (see ``forget_client``).
        """
        with self._lock:
            if job_id in self.ended:
                return self.ended[job_id]
            self.waiters.setdefault(job_id, []).append((identity, req_id, stop_on_disconnect))
            return None

    def _resolve_waiters(
        self, job: Job, state: str, error: ProtocolError | None, playback: dict[str, Any] | None = None
    ) -> None:
        end = {
            "job": job.id,
            "kind": job.kind,
            "state": state,
            "summary": job.summary or None,
            "playback": playback,
            "error": error.to_json() if error is not None else None,
        }
        with self._lock:
            self.ended[job.id] = end
            while len(self.ended) > 500:
                self.ended.pop(next(iter(self.ended)))
            waiting = self.waiters.pop(job.id, [])
        for identity, req_id, _ in waiting:
            self.out.reply(identity, req_id, "result", result=end)

    def forget_client(self, identity: bytes) -> None:
        """A client vanished: drop its waits; stop the jobs it waited on with ``stop_on_disconnect``.

        Other speech it asked for keeps playing: it belongs to the daemon.
        """
        doomed = []
        with self._lock:
            for job_id in list(self.waiters):
                mine = [w for w in self.waiters[job_id] if w[0] == identity]
                if any(w[2] for w in mine):
                    doomed.append(job_id)
                self.waiters[job_id] = [w for w in self.waiters[job_id] if w[0] != identity]
                if not self.waiters[job_id]:
                    del self.waiters[job_id]
        for job_id in doomed:
            log.info("the client waiting for job %s went away; stopping the job", job_id)
            self.stop_job(job_id, "stopped: the client waiting for it went away")

    def stop_job(self, job_id: str, message: str) -> bool:
        """Stop a speech job or cancel a synthesis job by id; False if it is not running or queued."""
        error = ProtocolError("cancelled", message)
        for job in self.player.jobs():
            if job.id == job_id:
                job.cancel.set()
                self.queue.remove(job)
                return self.player.remove(job, "cancelled", error)
        for job in self.queue.find(job_id=job_id):
            if job.kind == "prepare":
                continue
            job.cancel.set()
            if self.queue.remove(job):
                self.finish(job, "cancelled", error)
            return True
        return False

    def probe_waiters(self) -> None:
        """Send a progress reply now to every ``stop_on_disconnect`` wait.

        A send to a client that has gone fails at once (ROUTER_MANDATORY), and
        the server then calls ``forget_client``: so a job whose client was
        killed stops before newly queued speech has to wait behind it, not
        only at the next once-a-second keepalive.
        """
        with self._lock:
            waits = [(job_id, w) for job_id, ws in self.waiters.items() for w in ws if w[2]]
        for job_id, (identity, req_id, _) in waits:
            self.out.reply(identity, req_id, "progress", progress={"job": job_id, "waiting": True, "model": self.state})

    def keepalives(self) -> list[tuple[bytes, str, dict[str, Any]]]:
        """(identity, request id, progress) for every request still waiting on a job."""
        out = []
        for job in self.queue.find():
            if job.identity is not None and job.req_id is not None and job.kind == "synthesize":
                out.append(
                    (
                        job.identity,
                        job.req_id,
                        {**job.describe(), "position": self.queue.position(job), "model": self.state},
                    )
                )
        with self._lock:
            waits = [(job_id, w) for job_id, ws in self.waiters.items() for w in ws]
        for job_id, (identity, req_id, _) in waits:
            out.append((identity, req_id, {"job": job_id, "waiting": True, "model": self.state}))
        return out

    def _clip_bytes(self, job: Job) -> bytes:
        if job.clip is not None:
            return job.clip
        return self.voices.get(job.voice_name or "").file.read_bytes()

    def _conditionals(self, job: Job) -> tuple[Any, str, float]:
        before = self.cache_tier(job.clip_sha256)
        result = self.cache.get_or_prepare(
            self.cache_key(job.clip_sha256), lambda: self.engine.prepare(self._clip_bytes(job))
        )
        if before is None:
            self.out.event("cache", {"sha256": job.clip_sha256, "voice": job.voice_name, "tier": "memory"})
        return result.tensors, result.tier, result.seconds

    def _run_prepare(self, job: Job) -> None:
        if self.cache_tier(job.clip_sha256) is None:
            _, tier, seconds = self._conditionals(job)
            log.info("prepared voice %s in %.2f s (%s)", job.voice_name, seconds, tier)
        job.state = "finished"

    def _run_synthesis(self, job: Job) -> None:
        """Make the job's sentences from ``job.chunks_done`` on, streaming or playing each.

        Returns early, with the job back in the queue, when a higher-ranked job
        arrives: the tally in ``job.tally`` carries the timings across.
        """
        tally = job.tally
        started = time.perf_counter()
        if not tally:
            tally.update(
                queue_wait=started - job.created, t3=0.0, s3=0.0, audio=0.0, tokens=0, first_chunk=None, busy=0.0
            )
            # For speech, "started" means the first sample reached the speaker.
            event = "synthesizing" if job.kind == "speak" else "started"
            self.job_event(job, {**job.describe(), "event": event})
        conds, tier, cond_seconds = self._conditionals(job)
        tally.setdefault("tier", tier)
        tally.setdefault("cond_seconds", cond_seconds)
        rate = self.engine.sample_rate
        for index in range(job.chunks_done, len(job.chunks)):
            chunk = job.chunks[index]
            if job.cancel.is_set():
                raise Cancelled()
            seed = job.options.seed
            options = replace(job.options, seed=None if seed is None else seed + index)
            budget = token_budget(chunk.text, self.settings.max_tokens_per_chunk)
            made = time.perf_counter()
            result = self.engine.generate(chunk.text, conds, options, budget, job.cancel)
            samples = result.samples.astype("<f4", copy=False)
            tally["t3"] += result.t3_seconds
            tally["s3"] += result.s3gen_seconds
            tally["tokens"] += result.tokens
            tally["audio"] += len(samples) / rate
            job.chunks_done = index + 1
            span = (chunk.start, chunk.end)
            if job.kind == "speak":
                self.player.push(job, index, samples, span, chunk.text, time.perf_counter() - made)
            elif job.identity is not None and job.req_id is not None:
                self.out.reply(
                    job.identity,
                    job.req_id,
                    "chunk",
                    (samples.tobytes(),),
                    index=index,
                    sample_rate=rate,
                    samples=len(samples),
                    text=chunk.text,
                    span=list(span),
                    tokens=result.tokens,
                    budget=budget,
                )
            if tally["first_chunk"] is None:
                tally["first_chunk"] = time.perf_counter() - job.created
            self.job_event(job, {**job.describe(), "event": "chunk", "index": index, "span": list(span)})
            if job.chunks_done < len(job.chunks) and self.queue.outranked(job):
                tally["busy"] += time.perf_counter() - started
                log.info("job %s waits for a higher-priority job", job.id)
                self.queue.put(job)
                return
        tally["busy"] += time.perf_counter() - started
        audio = tally["audio"]
        summary = {
            "job": job.id,
            "voice": job.voice_name,
            "sample_rate": rate,
            "chunks": len(job.chunks),
            "tokens": tally["tokens"],
            "queue_wait_s": round(tally["queue_wait"], 4),
            "conditionals": {"tier": tally["tier"], "seconds": round(tally["cond_seconds"], 4)},
            "t3_s": round(tally["t3"], 4),
            "s3gen_s": round(tally["s3"], 4),
            "synthesis_s": round(tally["busy"], 4),
            "audio_s": round(audio, 4),
            "rtf": round(tally["busy"] / audio, 4) if audio else None,
            "time_to_first_chunk_s": round(tally["first_chunk"] or 0.0, 4),
        }
        job.summary = summary
        if job.kind == "speak":
            self.player.produced(job)
            self.job_event(job, {**job.describe(), "event": "synthesized", "summary": summary})
            return
        job.state = "finished"
        self.recent.append(summary)
        if job.identity is not None and job.req_id is not None:
            self.out.reply(job.identity, job.req_id, "result", result=summary)
        self.job_event(job, {**job.describe(), "event": "finished", "summary": summary}, end=True)
        self._resolve_waiters(job, "finished", None)


def read_clip_path(path: str) -> bytes:
    """A clip given by path: read it, or fail with a clear error."""
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ProtocolError("bad_args", f"cannot read voice file {path}: {exc.strerror or exc}") from None
