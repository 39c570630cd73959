"""The synthesis worker: one thread that runs jobs on the model, in queue order.

It takes a job, waits for the model if it must, makes the job's sentences
one at a time, and hands each one on (`Worker._deliver`: to the speaker for
``speak``, as a ``chunk`` reply for ``synthesize``). It reports through the
coordinator and never decides a job's fate itself: every way out of a job
ends in ``Coordinator.end``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ipc.messages import ChunkReply
from ..ipc.protocol import ProtocolError, as_coded
from .engine import Cancelled, GenResult, Upcoming
from .jobs import Job
from .saytext import resolve_job, silence_samples
from .stretch import Stretcher
from .sysstats import give_back_freed_memory
from .text import TextPiece, token_budget

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

#: Seconds without a job after which the worker gives freed memory back (``Worker._give_memory_back``).
IDLE_TRIM_S = 5.0

#: Sentences after the current one handed to the engine (it may start on them early).
UPCOMING = 3
#: Speech tokens per second of audio (S3Gen's tokenizer, every variant), and the
#: silence tokens Turbo adds after a sentence: a token budget's longest audio.
SPEECH_TOKENS_PER_S = 25
SPEECH_PAD_TOKENS = 3


class Worker(threading.Thread):
    """The thread that runs jobs on the model (``start`` it; it ends once the queue is closed)."""

    def __init__(self, service: Service) -> None:
        super().__init__(name="worker", daemon=True)
        self.svc = service

    def run(self) -> None:
        """Take jobs until the queue closes."""
        svc = self.svc
        freed_since = False  # whether memory was freed since it was last given back
        while True:
            job = svc.queue.take(timeout=IDLE_TRIM_S if freed_since else None)
            if job is None:
                if svc.queue.closed:
                    return
                if not svc.player.jobs():  # idle for IDLE_TRIM_S, and nothing is playing
                    self._give_memory_back()
                    freed_since = False
                continue
            freed_since = True
            svc.coordinator.running(job)
            if not svc.model.wait_ready(0):
                svc.coordinator.event(job, job.event("waiting_for_model"))
            while not svc.model.wait_ready(0):
                if job.cancel.is_set() or svc.model.state == "failed":
                    break
                if svc.model.state == "sleeping":  # unloaded after idle minutes: this job wakes it
                    svc.model.load()
                svc.model.wait_ready(0.2)
            try:
                if job.cancel.is_set():
                    raise Cancelled()
                if svc.model.state == "failed":
                    raise ProtocolError("model_failed", f"the model failed to load: {svc.model.error}")
                if svc.model.state != "ready":
                    raise ProtocolError("not_ready", f"the model is not loaded: {svc.model.error or svc.model.state}")
                if job.kind == "prepare":
                    self._run_prepare(job)
                else:
                    self._run_synthesis(job)
            except Cancelled:
                svc.coordinator.end(job, "cancelled", ProtocolError("cancelled", job.cancel_reason))
            except Exception as exc:  # coded errors as they are; one bad job must not end the worker
                svc.coordinator.end(job, "failed", as_coded(exc, f"job {job.id}"))
            finally:
                svc.queue.done(job)

    @staticmethod
    def _give_memory_back() -> None:
        """Hand the memory jobs freed back to the system once the daemon has been idle a while.

        glibc keeps freed heap pages in its arenas: a Turbo daemon on a CPU
        grew from 2.76 GiB ready to 3.33 GiB after four paragraphs and stayed
        there while idle (2.90 GiB with this). Trimming 2.3 GiB took 73 ms,
        here on the worker thread; waiting ``IDLE_TRIM_S`` first keeps it
        from the middle of a burst of jobs, which would only fault the pages
        back in, and it waits for the speaker to fall silent too: the trim
        holds malloc's locks, which the player thread's next block may need.
        """
        start = time.perf_counter()
        give_back_freed_memory()
        log.debug("gave freed memory back in %.1f ms", 1000 * (time.perf_counter() - start))

    def _run_prepare(self, job: Job) -> None:
        svc = self.svc
        keep = svc.kept_in_t3(job.voice_name)
        if svc.cache_tier(job.clip_sha256) is None or keep:
            conds, tier, seconds = svc.conditionals(job, background=True)
            log.info("prepared voice %s in %.2f s (%s)", job.voice_name, seconds, tier)
            if keep:  # the first say in it starts sooner
                svc.model.engine.keep_voice(conds)
        svc.coordinator.end(job, "finished")

    def _run_synthesis(self, job: Job) -> None:
        """Make the job's sentences from ``job.chunks_done`` on, streaming or playing each.

        Returns early, with the job back in the queue, when a higher-ranked job
        arrives: the tally in ``job.tally`` carries the timings across.
        """
        svc = self.svc
        tally = job.tally
        started = time.perf_counter()
        if not tally:
            tally.update(
                queue_wait=started - job.created, t3=0.0, s3=0.0, audio=0.0, tokens=0, first_chunk=None, busy=0.0
            )
            # For speech, "started" means the first sample reached the speaker.
            event = "synthesizing" if job.kind == "speak" else "started"
            svc.coordinator.event(job, job.event(event))
        resolve_job(job, svc.model.engine)  # the loaded model's tags stay, others leave the text
        conds, tier, cond_seconds = svc.conditionals(job)
        tally.setdefault("tier", tier)
        tally.setdefault("cond_seconds", cond_seconds)
        engine = svc.model.engine
        for index in range(job.chunks_done, len(job.chunks)):
            chunk = job.chunks[index]
            if job.cancel.is_set():
                raise Cancelled()
            sentence = self._sentence(job, index)
            budget = sentence.budget
            made = time.perf_counter()
            # A streaming engine hands over a sentence in pieces while a listener
            # waits for it (``hurry``), and may start on the next one early.
            if chunk.pause_s is not None:  # pause markup: silence, never the model
                pieces = iter([self._silence(job, index, chunk, engine.sample_rate)])
            else:
                pieces = engine.generate_stream(
                    chunk.text,
                    conds,
                    sentence.options,
                    budget,
                    job.cancel,
                    hurry=self._hurry(job, index, chunk),
                    upcoming=self._upcoming(job, index),
                )
            # The speaking rate stretches each piece as it comes (one stream per
            # sentence), so a faster or slower voice starts as soon as at 1.0.
            stretcher = Stretcher(job.rate, engine.sample_rate) if job.rate != 1.0 else None
            piece_no, held_tokens = 0, 0
            for result in pieces:
                tally["t3"] += result.t3_seconds
                tally["s3"] += result.s3gen_seconds
                tally["tokens"] += result.tokens
                samples = result.samples
                if stretcher is not None:
                    samples = stretcher.push(samples)
                    if result.final:
                        samples = np.concatenate([samples, stretcher.flush()])
                    elif not len(samples):
                        held_tokens += result.tokens  # held back (tens of ms): it comes with the next piece
                        continue
                    result = replace(result, tokens=result.tokens + held_tokens)
                    held_tokens = 0
                samples = samples.astype("<f4", copy=False)
                tally["audio"] += len(samples) / engine.sample_rate
                now = time.perf_counter()
                # Silence costs the model nothing: 0 keeps it out of the speaker's pace figures.
                made_s = 0.0 if chunk.pause_s is not None else now - made
                self._deliver(job, index, chunk, samples, result, budget, made_s, piece_no)
                piece_no += 1
                made = now
                if tally["first_chunk"] is None:
                    tally["first_chunk"] = now - job.created
            job.chunks_done = index + 1
            svc.coordinator.event(job, job.event("chunk", index=index, span=[chunk.start, chunk.end]))
            if job.chunks_done < len(job.chunks) and svc.queue.should_yield(job):
                tally["busy"] += time.perf_counter() - started
                log.debug("job %s gives the model to a higher-priority job or another client's turn", job.id)
                svc.coordinator.requeue(job)
                return
        tally["busy"] += time.perf_counter() - started
        job.summary = self._summary(job, engine.sample_rate)
        if job.kind == "speak":
            svc.player.produced(job)
            svc.coordinator.event(job, job.event("synthesized", summary=job.summary))
            return  # the speaker ends it once it is played
        svc.coordinator.end(job, "finished")

    def _hurry(self, job: Job, index: int, chunk: TextPiece) -> Callable[[], bool]:
        """Whether someone is waiting for this sentence's audio now (small pieces pay only then).

        Speech: the speaker says (``Player.wants_pieces``), and never while
        it is paused (no one hears the pieces before it resumes). A
        ``synthesize`` client gets its first sentence in pieces (it may be
        playing them as they come) and the rest whole, which costs less.
        """
        if job.kind == "speak":
            player = self.svc.player
            return lambda: not player.paused and player.wants_pieces(job, len(chunk.text))
        return lambda: index == 0

    def _upcoming(self, job: Job, index: int) -> list[Upcoming]:
        """The job's next sentences, so the engine can start on them while this one is finished."""
        following = range(index + 1, min(index + 1 + UPCOMING, len(job.chunks)))
        return [self._sentence(job, i) for i in following if job.chunks[i].pause_s is None]

    def _sentence(self, job: Job, index: int) -> Upcoming:
        """Chunk ``index`` as the engine is given it: its options (the job's seed plus the index) and token budget."""
        text, seed = job.chunks[index].text, job.options.seed
        options = replace(job.options, seed=None if seed is None else seed + index)
        return Upcoming(text, options, token_budget(text, self.svc.settings.max_tokens_per_chunk))

    def _silence(self, job: Job, index: int, chunk: TextPiece, rate: int) -> GenResult:
        """A pause chunk's audio: silence, so long that the gap heard is the one asked for (``saytext``)."""
        speaker = self.svc.player.pause_s if job.kind == "speak" else None
        n = silence_samples(chunk.pause_s or 0.0, rate, job.rate, speaker, first=index == 0)
        return GenResult(np.zeros(n, dtype=np.float32), 0.0, 0.0, 0)

    def _deliver(
        self,
        job: Job,
        index: int,
        chunk: TextPiece,
        samples: np.ndarray,
        result: GenResult,
        budget: int,
        made_s: float,
        piece: int = 0,
    ) -> None:
        """Hand one made sentence, or piece of one, on: to the speaker (``speak``) or to the client (``synthesize``).

        The one place audio leaves the worker. ``result.final`` marks a
        sentence's last piece.
        """
        span = (chunk.start, chunk.end)
        if job.kind == "speak":
            longest = (budget + SPEECH_PAD_TOKENS) / SPEECH_TOKENS_PER_S / job.rate
            self.svc.player.push(job, index, samples, span, chunk.text, made_s, final=result.final, longest_s=longest)
        elif job.identity is not None and job.req_id is not None:
            reply = ChunkReply(
                index=index,
                sample_rate=self.svc.model.engine.sample_rate,
                samples=len(samples),
                text=chunk.text,
                span=list(span),
                tokens=result.tokens,
                budget=budget,
                piece=piece,
                final=result.final,
                audio=samples.tobytes(),
            )
            self.svc.out.reply(job.identity, job.req_id, reply)

    @staticmethod
    def _summary(job: Job, rate: int) -> dict[str, Any]:
        tally = job.tally
        audio = tally["audio"]
        return {
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
            "rate": job.rate,
            "warnings": list(job.warnings),
        }
