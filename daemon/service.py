"""The daemon's parts, put together: settings, model, cache, voices, jobs, speaker.

Each concern has its own module and owner:

* ``model.py``: the engine and its load state;
* ``worker.py``: the thread that runs jobs on the model;
* ``coordinator.py``: a job's life from admission to end (the only writer of
  a job's state), and who waits for it;
* ``player.py`` (rules in ``audio/speaker_rules.py``): the speaker;
* ``condcache.py`` and ``voices.py``: conditionals and the voice library.

`Service` builds them and holds what handlers share. Threads: the server's
main loop (sockets, quick requests), one loader thread while the model loads,
the worker, and the player. Everything a thread wants to tell a client goes
through the ``Outbox``, which the main loop alone turns into socket sends,
because ZeroMQ sockets must stay on one thread.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.messages import CacheEvent, StateEvent, VoiceInfo
from ..ipc.protocol import ProtocolError
from .bridge_supervisor import BridgeSupervisor
from .condcache import CacheKey, ConditionalsCache
from .coordinator import Coordinator, Outbox
from .engine import Engine
from .history import JobHistory
from .jobs import Job, JobQueue
from .model import Model
from .player import Player
from .rulebook import RuleBook
from .settings import Settings
from .storage import remove_temp_files_of
from .voices import VoiceLibrary
from .worker import Worker

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class Service:
    """Model, cache, voices, jobs and speaker, shared by all clients."""

    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.out = outbox
        self.started = time.time()
        #: Remote mode as it is (``status``' ``remote``): None when settings.json leaves it off.
        self.remote: dict[str, Any] | None = None
        self.queue = JobQueue()
        self.model = Model(
            lambda: self.settings,
            lambda _status: self.out.event(StateEvent(**self.status())),
            busy=lambda: self.queue.running is not None and self.queue.running.kind != "prepare",
            on_loaded=self._model_loaded,
            on_ready=self._prepare_uncached,
            on_failed=lambda code, message: self.coordinator.fail_waiting(code, message),
        )
        make_private(endpoints.data_dir(), endpoints.data_dir() / "voices", endpoints.cache_dir())
        make_private(endpoints.cache_dir() / "conditionals")
        self.cache = ConditionalsCache(
            endpoints.cache_dir() / "conditionals",
            settings.memory_cache_mb * MIB,
            settings.disk_cache_mb * MIB,
            tensors="numpy" if self.model.engine.tensor_format == "numpy" else "torch",
            sole_writer=True,  # the server holds the instance lock
        )
        remove_temp_files_of(endpoints.settings_file())
        self.voices = VoiceLibrary(endpoints.data_dir())
        self.words = RuleBook(endpoints.data_dir() / "words.json")
        self.coordinator = Coordinator(
            outbox, self.queue, lambda: self.model.state, JobHistory(endpoints.data_dir() / "history.json")
        )
        self.player = Player(
            24_000,
            device=settings.output_device,
            volume=settings.volume,
            prebuffer=settings.prebuffer,
            sentence_pause_ms=settings.sentence_pause_ms,
            event=self.coordinator.event,
            started=self.coordinator.playing,
            ended=self.coordinator.end,
        )
        self.coordinator.player = self.player
        self.worker = Worker(self)
        #: When something last needed the model (monotonic): the idle clock.
        self.last_busy = time.monotonic()
        self.bridges = BridgeSupervisor(endpoints.connection_file())

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Begin loading the model and start the worker."""
        self.worker.start()
        self.model.load()
        self.bridges.apply(self.settings)

    def apply_settings(self, new: Settings) -> None:
        """Take new settings: cache budgets and playback at once, the model at ``reload``."""
        self.settings = new
        self.cache.set_budgets(new.memory_cache_mb * MIB, new.disk_cache_mb * MIB)
        self.player.set_output(new.output_device, new.volume)
        self.player.prebuffer = new.prebuffer
        self.player.pause_s = new.sentence_pause_ms / 1000
        self.bridges.apply(new)

    def stop(self) -> None:
        """Cancel everything and let the worker end; stop the bridges."""
        self.bridges.close()
        self.coordinator.shutdown()
        self.model.release()  # wake a worker waiting for the model
        self.worker.join(timeout=10)
        self.player.close()
        self.coordinator.recent.flush()

    def idle_tick(self) -> None:
        """Put the model to sleep once nothing has needed it for ``unload_after_idle_minutes``.

        Called by the main loop every second: it only reads counters, and the
        unloading itself runs on the model's own thread. A job queued, being
        made or still playing counts as use, so the clock starts at the end.
        """
        now = time.monotonic()
        if self.queue.running is not None or len(self.queue) or self.player.jobs():
            self.last_busy = now
            return
        minutes = self.settings.unload_after_idle_minutes
        if minutes <= 0 or self.model.state != "ready" or now - self.last_busy < minutes * 60:
            return
        self.model.sleep(f"nothing was asked of it for {minutes:g} minute{'s' if minutes != 1 else ''}")

    def status(self) -> dict[str, Any]:
        """What ``status`` replies and ``state`` events carry."""
        status = {
            **self.model.status(),
            "queue": len(self.queue),
            "reload_required": bool(self.model.loaded_settings) and self.model.reload_required(),
            "speaker_paused": self.player.paused,
        }
        if self.remote is not None:
            status["remote"] = self.remote
        return status

    def _model_loaded(self, engine: Engine) -> None:
        self.player.rate = engine.sample_rate
        self.player.expect_pace(engine.steady_pace)

    def _prepare_uncached(self) -> None:
        # Voices added while the model was away get their conditionals now,
        # and the default voice is made ready in T3 (``Engine.keep_voice``).
        for voice in self.voices.list():
            self.queue_prepare(voice.name)

    # -- voices and cache ------------------------------------------------------------

    def cache_key(self, sha256: str) -> CacheKey:
        """The cache key of a clip for the loaded model."""
        return CacheKey(self.model.engine.model_id, sha256, self.model.engine.prep_version)

    def cache_tier(self, sha256: str) -> str | None:
        """Where a clip's conditionals are: "memory", "disk", or None (not yet / no model)."""
        if not self.model.engine.model_id:
            return None
        return self.cache.tier_of(self.cache_key(sha256))

    def voice_info(self, name: str) -> VoiceInfo:
        """A voice as the protocol shows it: library fields, cache state, default flag."""
        voice = self.voices.get(name)
        data = voice.to_json()
        data.pop("file", None)  # where we keep it is our business
        return VoiceInfo(**data, cache=self.cache_tier(voice.sha256), default=self.is_default(voice.name))

    def is_default(self, name: str | None) -> bool:
        """Whether ``name`` is the default voice (any case)."""
        default = self.voices.default
        return default is not None and name is not None and default.lower() == name.lower()

    def kept_in_t3(self, name: str | None) -> bool:
        """Whether the engine keeps this voice ready in T3 (``Engine.keep_voice``): the default voice, if it does."""
        return self.model.engine.keeps_voice and self.is_default(name)

    def queue_prepare(self, name: str) -> None:
        """Prepare a voice's conditionals in the background (after any synthesis).

        Only when they are not cached, or for the voice kept ready in T3
        (the worker makes it ready there): the first say in it starts sooner.
        """
        voice = self.voices.get(name)
        if self.model.state == "ready" and (self.cache_tier(voice.sha256) is None or self.kept_in_t3(voice.name)):
            self.coordinator.admit_background(Job("prepare", voice_name=voice.name, clip_sha256=voice.sha256))

    def conditionals(self, job: Job, background: bool = False) -> tuple[Any, str, float]:
        """A job's voice conditionals from the cache, prepared on a miss (worker thread).

        ``background``: preparing a newly added voice before anyone asked for
        it; the cache counts that apart from hits and misses.
        """
        before = self.cache_tier(job.clip_sha256)
        result = self.cache.get_or_prepare(
            self.cache_key(job.clip_sha256),
            lambda: self.model.engine.prepare(self._clip_bytes(job)),
            background=background,
        )
        if before is None:
            self.out.event(CacheEvent(job.clip_sha256, job.voice_name, "memory"))
        return result.tensors, result.tier, result.seconds

    def _clip_bytes(self, job: Job) -> bytes:
        if job.clip is not None:
            return job.clip
        return self.voices.get(job.voice_name or "").file.read_bytes()


def read_clip_path(path: str) -> bytes:
    """A clip given by path: read it, or fail with a clear error."""
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ProtocolError("bad_args", f"cannot read voice file {path}: {exc.strerror or exc}") from None


def make_private(*folders: Path) -> None:
    """Make our own folders 0700 and the files directly in them 0600 (older installs made them 0755/0644).

    Clips and their conditionals are a person's voice; on a system where homes
    are world-readable every local user could copy them. Only these folders
    are touched, never what the user keeps elsewhere.
    """
    if sys.platform == "win32":  # per-user profile ACLs already fence them
        return
    for folder in folders:
        endpoints.ensure_private_dir(folder)
        for path in folder.iterdir():
            try:
                info = path.lstat()
                if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
                    os.chmod(path, 0o600)
            except OSError as exc:  # a file that vanished or is not ours: log, go on
                log.warning("could not make %s private: %s", path, exc)
