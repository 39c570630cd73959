"""What the daemon needs from a TTS model, whatever runs behind it.

The daemon talks to an ``Engine``: the real one wraps chatterbox's own classes
(``daemon/chatterbox_engine.py``); a light fake (``daemon/fake_engine.py``)
lets unit tests exercise queueing, cancelling and caching in milliseconds.
Conditionals cross this boundary as ``CondTensors``, a flat dict of CPU
tensors, which is what the cache stores.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..ipc import limits
from ..ipc.protocol import CodedError

#: Flat conditionals: "t3.speaker_emb", "gen.prompt_feat", ... -> CPU tensor.
CondTensors = dict[str, Any]

#: progress(fraction 0..1, what is happening now)
ProgressFn = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside generation when the job's cancel flag is set."""


class EngineError(CodedError):
    """The model cannot do what was asked (load failed, bad option, ...)."""


@dataclass(frozen=True)
class SynthOptions:
    """Generation options; ``None`` means the variant's default."""

    exaggeration: float | None = None
    cfg_weight: float | None = None
    temperature: float | None = None
    seed: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class GenResult:
    """One chunk's audio (or one piece of it, when streaming) and what it cost."""

    samples: Any  # numpy float32, mono
    t3_seconds: float
    s3gen_seconds: float
    tokens: int
    #: The chunk's last piece (``generate_stream``); a whole chunk is its own last piece.
    final: bool = True


@dataclass(frozen=True)
class Upcoming:
    """The job's next sentence, handed to ``generate_stream`` so an engine may start on it early."""

    text: str
    options: SynthOptions
    budget: int


def resolve_variant(wanted: str, accelerator: bool) -> str:
    """The model "auto" stands for: Turbo without a CUDA/MPS device, else the original.

    On a CPU the original model's T3 (532M parameters, CFG batch of two) is
    about twice Turbo's cost per token and its S3Gen runs 10 solver steps to
    Turbo's 2, so Turbo is the one that can keep up. An explicit variant
    always wins.
    """
    if wanted != "auto":
        return wanted
    return "original" if accelerator else "turbo"


class Engine(ABC):
    """A loaded TTS model. All calls but ``capabilities`` run on one thread at a time."""

    variant: str = "original"
    device: str = "cpu"
    sample_rate: int = 24_000
    #: Variant plus a fingerprint of the weights: part of every cache key.
    model_id: str = ""
    #: Preprocessing that changes conditionals (part of the cache key).
    prep_version: str = "v1"
    #: What ``prepare`` returns: torch tensors or numpy arrays (the cache stores either).
    tensor_format: str = "torch"
    #: Seconds of work per second of speech for a sentence made behind another
    #: (the pipeline full), measured by ``warmup``; None where it measures none.
    steady_pace: float | None = None

    @abstractmethod
    def load(self, progress: ProgressFn) -> None:
        """Load the weights; raise EngineError with a reason a user can act on."""

    @abstractmethod
    def warmup(self) -> None:
        """Run the model once so the first real request does not pay for it."""

    @abstractmethod
    def prepare(self, clip: bytes) -> CondTensors:
        """Make conditionals from a reference clip's bytes."""

    #: Whether ``keep_voice`` does anything (the daemon then makes the default voice ready after a load).
    keeps_voice: bool = False

    def keep_voice(self, conds: CondTensors) -> None:
        """Make ready whatever a voice's next sentence would otherwise compute first (no-op here).

        The worker calls it when the default voice is prepared or the model
        is ready, between jobs, so that the first ``say`` does not wait for it.
        """
        return None

    @abstractmethod
    def generate(
        self, text: str, conds: CondTensors, options: SynthOptions, max_tokens: int, cancel: threading.Event
    ) -> GenResult:
        """Speak one chunk. Raise Cancelled soon after ``cancel`` is set."""

    #: How many pieces the default ``generate_stream`` cuts a chunk into (a fake's stand-in for streaming).
    stream_pieces: int = 1

    def generate_stream(
        self,
        text: str,
        conds: CondTensors,
        options: SynthOptions,
        max_tokens: int,
        cancel: threading.Event,
        *,
        hurry: Callable[[], bool] | None = None,
        upcoming: Sequence[Upcoming] = (),
    ) -> Iterator[GenResult]:
        """Speak one chunk as a series of audio pieces, each yielded as soon as it exists.

        Concatenated, the pieces are the chunk's audio; each ``GenResult``
        counts the tokens and seconds spent since the previous piece.
        ``hurry()`` says whether a listener is waiting for this chunk's
        audio (small pieces are worth their extra cost only then);
        ``upcoming`` are the job's next chunks, which an engine may start on
        before this one is done. An engine that cannot stream ignores both
        and yields its one ``generate`` result (cut in ``stream_pieces``
        pieces), so a worker can always write::

            for piece in engine.generate_stream(text, conds, options, budget, cancel):
                push(piece.samples)

        Raise Cancelled soon after ``cancel`` is set, as ``generate`` does.
        """
        whole = self.generate(text, conds, options, max_tokens, cancel)
        pieces = self.stream_pieces
        if pieces <= 1:
            yield whole
            return
        cuts = [round(i * len(whole.samples) / pieces) for i in range(pieces + 1)]
        share = 1.0 / pieces
        for i in range(pieces):
            if i and cancel.is_set():
                raise Cancelled()
            yield GenResult(
                whole.samples[cuts[i] : cuts[i + 1]],
                whole.t3_seconds * share,
                whole.s3gen_seconds * share,
                whole.tokens // pieces + (whole.tokens % pieces if i == pieces - 1 else 0),
                final=i == pieces - 1,
            )

    def languages(self) -> list[str]:
        """The languages this variant speaks (English only but for the multilingual model)."""
        return ["en"]

    def capabilities(self) -> dict[str, Any]:
        """Options (with ranges) and languages this variant supports."""
        names = ("temperature",) if self.variant == "turbo" else ("exaggeration", "cfg_weight", "temperature")
        return {
            "variant": self.variant,
            "options": {n: dict(zip(("min", "max", "default"), limits.OPTION_RANGES[n], strict=True)) for n in names},
            "languages": self.languages(),
            "sample_rate": self.sample_rate,
            "min_clip_seconds": limits.CLIP_MIN_SECONDS,
        }

    def memory(self) -> dict[str, Any]:
        """Device memory figures, if the engine has any."""
        return {}

    def tags(self) -> list[str]:
        """The paralinguistic and delivery tags (``[laugh]``) the loaded model's tokenizer knows.

        Read from the tokenizer of the chatterbox model the engine holds
        (``self.model``), so a checkpoint offers exactly its own tags; none
        while nothing is loaded, and none for a model without them.
        """
        from .saytext import tokenizer_tags

        return tokenizer_tags(getattr(getattr(self, "model", None), "tokenizer", None))

    def unload(self) -> None:  # noqa: B027 - optional hook
        """Free the model (before a reload)."""
