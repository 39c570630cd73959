"""The model's life: load, warm up, fail, reload, sleep; the daemon's ``state``.

One engine at a time. Loading and unloading run on their own thread so the
main loop keeps answering; every state change is published as a ``state``
event. What a ready or failed model means for jobs is the service's
business: it passes ``on_ready`` and ``on_failed``. When to sleep (unload
after idle minutes) is the service's too; how is here.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..ipc.protocol import ProtocolError
from . import download
from .engine import Engine, EngineError
from .settings import NEEDS_RELOAD, Settings
from .sysstats import give_back_freed_memory, memory_figures

log = logging.getLogger(__name__)

#: The settings a loaded model was made with; a change needs a ``reload``.
MODEL_KEYS = tuple(k for k in NEEDS_RELOAD if k != "warmup")  # warm-up does not change the model


def make_engine(settings: Settings) -> Engine:
    """The engine the settings ask for (imports the heavy one only when needed)."""
    if settings.engine == "fake":
        from .fake_engine import FakeEngine

        return FakeEngine(settings.variant, checkpoint=settings.checkpoint)
    from .chatterbox_engine import ChatterboxEngine

    # The settings a loaded model was made with are the engine's arguments, by name.
    return ChatterboxEngine(**{k: getattr(settings, k) for k in MODEL_KEYS})


def drop_model(engine: Engine) -> None:
    """Unload ``engine`` and hand the memory its model held back to the system.

    ``unload`` breaks the engine's own reference cycles; a full collection
    frees what chatterbox's objects keep in cycles, and ``malloc_trim`` returns
    the freed heap pages (without it a reload's old model stayed resident:
    issue 23, docs/engine.md "Memory"). Never raises: a failed unload leaves a
    daemon that can still load.
    """
    try:
        engine.unload()
    except Exception:
        log.error("model unload failed:\n%s", traceback.format_exc())
    gc.collect()
    give_back_freed_memory()


class Model:
    """The engine and its load state (starting, loading, warming_up, ready, sleeping, failed)."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        publish: Callable[[dict[str, Any]], None],
        *,
        busy: Callable[[], bool],
        on_loaded: Callable[[Engine], None],
        on_ready: Callable[[], None],
        on_failed: Callable[[str, str], None],
    ) -> None:
        """``settings`` gives the settings in force; ``publish`` sends a ``state`` event's data;
        ``busy`` says whether a client's job is running (a reload is refused then);
        ``on_loaded`` runs before the model is announced ready, ``on_ready`` after."""
        self._settings = settings
        self._publish = publish
        self._busy = busy
        self._on_loaded = on_loaded
        self._on_ready = on_ready
        self._on_failed = on_failed
        self.state = "starting"
        self.progress = 0.0
        self.message = "starting"
        self.error = ""
        self.engine: Engine = make_engine(settings())
        #: What the loaded model was loaded with (settings may have moved on).
        self.loaded_settings: dict[str, Any] = {}
        self._ready = threading.Event()
        self._lock = threading.Lock()
        #: The thread unloading a sleeping model; a wake-up waits for it.
        self._unloader: threading.Thread | None = None
        #: The last sleep: when, why, and memory before and after (``stats``).
        self.last_sleep: dict[str, Any] = {}

    def load(self) -> bool:
        """Start a load in the background unless one is running or the model is ready."""
        with self._lock:
            if self.state in ("loading", "warming_up", "ready"):
                return False
            if self.state == "failed" or (self.state == "sleeping" and self.reload_required()):
                # A retry loads what the settings ask for now: the user may have
                # pointed the checkpoint at a local folder since the failure.
                # A sleeping model whose settings changed wakes as the new one.
                self.engine = make_engine(self._settings())
            waking = self.state == "sleeping"
            self._set_state("loading", 0.0, "waking up: loading the model" if waking else "loading the model")
        threading.Thread(target=self._load, name="loader", daemon=True).start()
        return True

    def reload(self) -> bool:
        """Swap in the model the settings ask for; refused while a job runs or a load is under way."""
        with self._lock:
            if self.state in ("loading", "warming_up"):
                return False
            if self._busy():
                raise ProtocolError("busy", "a job is running; stop it or wait, then reload")
            self._ready.clear()
            old, self.engine = self.engine, make_engine(self._settings())
            self.loaded_settings = {}  # the old model goes now: nothing is loaded until the new one is
            self._set_state("loading", 0.0, "loading the model")
        # The old model goes on the loader thread, before the new one comes:
        # never two models at once, and the main loop keeps answering.
        threading.Thread(target=self._load, args=(old,), name="loader", daemon=True).start()
        return True

    def sleep(self, why: str) -> bool:
        """Unload the model to give its memory back; the next `load` wakes it.

        Only a ready model sleeps, and only while no job runs (``busy``). The
        engine object stays, so its ``model_id`` still names the cached
        conditionals: voices show as cached while it sleeps, and they are.
        """
        with self._lock:
            if self.state != "ready" or self._busy():
                return False
            self._ready.clear()
            before = memory_figures(self.engine)
            self._set_state("sleeping", 0.0, f"asleep: {why}; the next request loads it again")
            self._unloader = threading.Thread(target=self._unload, args=(why, before), name="unloader", daemon=True)
            self._unloader.start()
        return True

    def _unload(self, why: str, before: dict[str, int]) -> None:
        start = time.perf_counter()
        drop_model(self.engine)
        after = memory_figures(self.engine)
        self.last_sleep = {"at": time.time(), "why": why, "memory_before": before, "memory_after": after}
        log.info(
            "model unloaded in %.1f s (%s): process memory %d -> %d MiB",
            time.perf_counter() - start,
            why,
            before.get("process_rss", 0) >> 20,
            after.get("process_rss", 0) >> 20,
        )

    def reload_required(self) -> bool:
        """Whether the loaded model differs from what the settings ask for."""
        settings = self._settings()
        return any(self.loaded_settings.get(k) != getattr(settings, k) for k in MODEL_KEYS)

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` s for the model (or `release`); True if it is ready."""
        return self._ready.wait(timeout)

    def release(self) -> None:
        """Wake everyone in `wait_ready` (at shutdown)."""
        self._ready.set()

    def _set_state(self, state: str, progress: float, message: str, error: str = "") -> None:
        self.state, self.progress, self.message, self.error = state, progress, message, error
        self._publish(self.status())

    def status(self) -> dict[str, Any]:
        """The model's part of ``status`` replies and ``state`` events."""
        return {
            "state": self.state,
            "progress": round(self.progress, 3),
            "message": self.message,
            "error": self.error,
            "variant": self.engine.variant,
            "model_id": self.engine.model_id,
            "device": self.engine.device,
            "download": download.current(),
        }

    def _load(self, old: Engine | None = None) -> None:
        settings = self._settings()
        unloader = self._unloader
        if unloader is not None:  # a wake-up right after falling asleep: unload, then load
            unloader.join()
        if old is not None:  # a reload: the old model goes first
            drop_model(old)
            del old
        failure = self._load_engine(settings.warmup)
        if failure is not None:
            # Out of the ``except`` now: the traceback and the frames of a
            # half-built model are gone, so ``_failed`` can free all of it.
            self._failed(*failure)
            return
        # Loading leaves freed float32 copies, state dicts and the warm-up's
        # buffers in malloc's arenas: 0.9 GiB of a Turbo load on a CPU.
        gc.collect()
        give_back_freed_memory()
        self.loaded_settings = {k: getattr(settings, k) for k in MODEL_KEYS}
        self._on_loaded(self.engine)
        self._ready.set()
        self._set_state("ready", 1.0, "ready")
        log.info("model %s ready on %s", self.engine.model_id, self.engine.device)
        self._on_ready()

    def _load_engine(self, warmup: bool) -> tuple[str, str] | None:
        """Load and warm up the engine; the failure's (code, message), or None."""
        try:
            self.engine.load(lambda frac, what: self._set_state("loading", frac, what))
            if warmup:
                self._set_state("warming_up", 0.95, "warming up")
                start = time.perf_counter()
                self.engine.warmup()
                pace = self.engine.steady_pace
                log.info(
                    "warm-up took %.1f s%s",
                    time.perf_counter() - start,
                    "" if pace is None else f"; a paragraph's sentences take {pace:.2f} s a second of speech",
                )
        except EngineError as exc:
            log.error("model load failed: %s", exc.message)
            return exc.code, exc.message
        except Exception as exc:  # any load failure leaves a live daemon with a reason
            log.error("model load failed:\n%s", traceback.format_exc())
            return "model_failed", f"{type(exc).__name__}: {exc}"
        return None

    def _failed(self, code: str, message: str) -> None:
        drop_model(self.engine)
        self.loaded_settings = {}  # nothing is loaded: settings.get's "loaded" must not name a model
        self._set_state("failed", 0.0, "failed", message)
        self._on_failed(code, message)
