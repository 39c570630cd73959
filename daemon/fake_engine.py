"""A light stand-in for chatterbox, for fast tests of the daemon's own logic.

It keeps the real engine's contract (CPU tensor conditionals, a token budget,
cancellation, seeds) so queueing, caching and protocol tests run in
milliseconds. Its audio is a tone whose pitch depends on the voice and whose
length follows the text, so tests can tell voices and chunks apart.

Environment knobs (seconds), for tests that need slow or failing engines:
``CHATTERBOX_TRAY_FAKE_DELAY`` per chunk (plus ``CHATTERBOX_TRAY_FAKE_TOKEN_DELAY``
per speech token, as a model pays), ``CHATTERBOX_TRAY_FAKE_PREPARE_DELAY``
per prepare, ``CHATTERBOX_TRAY_FAKE_LOAD_DELAY`` at load, and
``CHATTERBOX_TRAY_FAKE_FAIL_LOADS`` (how many loads fail before one succeeds, with
``CHATTERBOX_TRAY_FAKE_FAIL_MESSAGE`` as the reason if set),
``CHATTERBOX_TRAY_FAKE_FAIL_CHECKPOINT`` (a load from a checkpoint folder whose path
holds this text fails as the real engine's does for a folder without the model's files),
and ``CHATTERBOX_TRAY_FAKE_PIECES`` (a count: each sentence streamed in that many pieces).
``CHATTERBOX_TRAY_FAKE_HUB`` (``<repo>:<pattern>,...``) runs the real engine's
download step (`download.fetch_weights`) at load, against ``HF_ENDPOINT``
(a local stand-in hub in tests), calling a download stalled after
``CHATTERBOX_TRAY_FAKE_HUB_STALL_S`` seconds without data.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from .engine import Cancelled, CondTensors, Engine, EngineError, GenResult, ProgressFn, SynthOptions, resolve_variant

#: The tags a fake Turbo knows (the real engine reads its tokenizer's).
FAKE_TURBO_TAGS = ("[clear throat]", "[sigh]", "[cough]", "[gasp]", "[chuckle]", "[laugh]", "[whispering]")

#: What the fake "model" holds while loaded (real memory: see ``FakeEngine.load``).
FAKE_WEIGHT_BYTES = 64 * 1024 * 1024

_failed_loads = 0


def _env_float(name: str) -> float:
    try:
        return float(os.environ.get(name, "0") or 0)
    except ValueError:
        return 0.0


def _sleep(seconds: float, cancel: threading.Event | None = None) -> None:
    deadline = time.monotonic() + seconds
    flag = cancel or threading.Event()  # one never set: a plain sleep
    while (left := deadline - time.monotonic()) > 0:
        if flag.wait(min(left, 0.01)):
            raise Cancelled()


class FakeEngine(Engine):
    """Tones instead of speech; same calls, same shapes of result."""

    tensor_format = "numpy"  # no torch in a fake daemon: it starts in about a second

    def __init__(self, variant: str = "original", checkpoint: str = "", **_: Any) -> None:
        # A fake stands for any machine: "auto" is the original here, so that
        # daemon tests exercise every option (resolve_variant is tested alone).
        self.variant = resolve_variant(variant, accelerator=True)
        self.checkpoint = checkpoint
        self.model_id = f"fake-{self.variant}:1"
        self.weights: Any = None

    def load(self, progress: ProgressFn) -> None:
        """Pretend to load, failing as many times as the environment asks."""
        global _failed_loads
        hub = os.environ.get("CHATTERBOX_TRAY_FAKE_HUB")
        if hub:  # "<repo>:<pattern>,<pattern>": the real download step, against HF_ENDPOINT
            from . import download

            download.reset()
            repo, _, patterns = hub.partition(":")
            stall_s = _env_float("CHATTERBOX_TRAY_FAKE_HUB_STALL_S") or download.STALL_S
            download.fetch_weights(repo, patterns.split(","), progress, stall_s=stall_s)
        for step in range(5):
            progress(0.1 + 0.15 * step, f"loading fake weights ({step + 1}/5)")
            _sleep(_env_float("CHATTERBOX_TRAY_FAKE_LOAD_DELAY") / 5)
        bad_folder = os.environ.get("CHATTERBOX_TRAY_FAKE_FAIL_CHECKPOINT")
        if bad_folder and self.checkpoint and bad_folder in self.checkpoint:
            needs = ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors")
            raise EngineError(  # the real engine's words (chatterbox_engine.py)
                "model_failed",
                f"checkpoint folder {self.checkpoint} lacks {', '.join(needs[1:])} "
                f"(the {self.variant} model needs {len(needs)} files there)",
            )
        if _failed_loads < int(_env_float("CHATTERBOX_TRAY_FAKE_FAIL_LOADS")):
            _failed_loads += 1
            message = os.environ.get("CHATTERBOX_TRAY_FAKE_FAIL_MESSAGE")
            raise EngineError("model_failed", message or "fake engine told to fail (CHATTERBOX_TRAY_FAKE_FAIL_LOADS)")
        import numpy as np

        # Stand-in weights, really resident, so that unloading (idle sleep) gives
        # memory back in a fake daemon too and tests can see the process shrink.
        self.weights = np.ones(FAKE_WEIGHT_BYTES // 4, dtype=np.float32)

    def unload(self) -> None:
        """Drop the stand-in weights."""
        self.weights = None

    def warmup(self) -> None:
        """Nothing to warm."""

    def prepare(self, clip: bytes) -> CondTensors:
        """A speaker 'embedding' derived from the clip's bytes."""
        import numpy as np

        _sleep(_env_float("CHATTERBOX_TRAY_FAKE_PREPARE_DELAY"))
        seed = int.from_bytes(hashlib.sha256(clip).digest()[:4], "big")
        gen = np.random.default_rng(seed)
        # numpy, not torch: a test daemon then never pays torch's import (seconds).
        return {
            "t3.speaker_emb": gen.random((1, 256), dtype=np.float32),
            "gen.embedding": gen.random((1, 192), dtype=np.float32),
        }

    def generate(
        self, text: str, conds: CondTensors, options: SynthOptions, max_tokens: int, cancel: threading.Event
    ) -> GenResult:
        """A tone: pitch from the voice, length from the text, capped by the budget."""
        import numpy as np

        if self.variant == "multilingual" and (options.language or "en") not in self.languages():
            raise EngineError("unknown_language", f"language {options.language!r} is not supported")
        start = time.perf_counter()
        tokens = min(max_tokens, max(4, 2 * len(text)))
        delay = _env_float("CHATTERBOX_TRAY_FAKE_DELAY") + tokens * _env_float("CHATTERBOX_TRAY_FAKE_TOKEN_DELAY")
        _sleep(delay, cancel)
        if cancel.is_set():
            raise Cancelled()
        n = int(tokens / 25 * self.sample_rate)
        pitch = 120.0 + 200.0 * float(conds["t3.speaker_emb"][0, 0])
        rng = np.random.default_rng(options.seed)
        t = np.arange(n) / self.sample_rate
        wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(n)
        return GenResult(wave.astype(np.float32), time.perf_counter() - start, 0.0, tokens)

    @property
    def stream_pieces(self) -> int:  # type: ignore[override]
        """``CHATTERBOX_TRAY_FAKE_PIECES`` (default 1): each sentence streamed in that many pieces."""
        return max(1, int(_env_float("CHATTERBOX_TRAY_FAKE_PIECES") or 1))

    def languages(self) -> list[str]:
        """Three, for a fake multilingual model."""
        return ["en", "fr", "de"] if self.variant == "multilingual" else ["en"]

    def tags(self) -> list[str]:
        """A few of Turbo's tags for a fake Turbo (its "tokenizer"); none for the other variants."""
        return list(FAKE_TURBO_TAGS) if self.variant == "turbo" and self.weights is not None else []
