"""Every daemon setting, declared once: name, type, default, allowed values, label, help, reload.

The daemon builds its ``Settings`` and checks values from this table
(daemon/settings.py); the Settings page takes its ranges, choices, labels and
tooltips from it; ``chatterbox-tray settings --help`` lists it; a test checks
docs/protocol.md's settings table against it. Pure data, standard library
only: every client imports it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from .limits import DEFAULT_MAX_TEXT_CHARS, PREBUFFER_MODES, RATE_RANGE, VOLUME_RANGE

#: The JSON type each Python type is on the wire (docs/protocol.md's words).
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


@dataclass(frozen=True)
class Setting:
    """One setting. ``choices`` or ``low``/``high`` say what it accepts; ``words`` overrides how that is said."""

    name: str
    type: type
    default: Any
    label: str
    help: str
    #: Allowed values, with the words people see for each (empty: any value of the type).
    choices: dict[str, str] = field(default_factory=dict)
    low: float | None = None
    high: float | None = None
    #: What it accepts, for people ("a port number from 1 to 65535"); by default from the above.
    words: str = ""
    #: Takes effect only when the model is loaded again (``reload``).
    needs_reload: bool = False
    #: Clients may change it with ``settings.set`` (not: fixed by the daemon's command line).
    editable: bool = True

    def accepts(self) -> str:
        """What it accepts, in words: "one of a, b", "between 0 and 5000", "20 or more"."""
        if self.words:
            return self.words
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"between {self.low} and {self.high}"
        if self.low is not None:
            return f"{self.low} or more"
        return f"any {JSON_TYPES[self.type]}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused ("volume must be between 0 and 1"), or None. A bool is no number here."""
        kinds = (int, float) if self.type is float else self.type
        if isinstance(value, bool) != (self.type is bool) or not isinstance(value, kinds):
            return f"{self.name} must be {self.type.__name__}, not {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be {self.accepts()}, not {value!r}"
        if self.type not in (int, float):
            return None
        if not abs(value) <= sys.float_info.max:  # NaN, infinities, integers too large for a float
            return f"{self.name} must be a finite number ({self.accepts()})"
        low, high = -math.inf if self.low is None else self.low, math.inf if self.high is None else self.high
        return None if low <= value <= high else f"{self.name} must be {self.accepts()}"


def _named(*choices: str) -> dict[str, str]:
    """Choices no page shows in other words."""
    return {c: c for c in choices}


# A table, one setting a paragraph: kept as written.
# fmt: off
SETTINGS = {setting.name: setting for setting in (
    Setting("variant", str, "auto", "Variant",
        "Which Chatterbox: Original (English), Multilingual or Turbo; Automatic takes Turbo without a CUDA or "
        "MPS device (the only one near real time on a CPU), else the Original (with a local folder, its model)",
        choices={"auto": "Automatic (Turbo without a GPU, else Original)",
                 "original": "Original (English, with emotion control)",
                 "multilingual": "Multilingual (23 languages)", "turbo": "Turbo (English, fastest)"},
        needs_reload=True),
    Setting("checkpoint", str, "", "Weights",
        "A local folder with the model's files; empty for the Hugging Face hub (downloaded once, then cached)",
        words="a folder, or empty for the hub", needs_reload=True),
    Setting("device", str, "auto", "Device", "Where the model runs",
        choices={"auto": "Automatic (CUDA, then Apple GPU, then CPU)", "cuda": "NVIDIA GPU (CUDA)",
                 "mps": "Apple GPU (MPS)", "cpu": "CPU"}, needs_reload=True),
    Setting("language", str, "en", "Language", "The language the multilingual model speaks when a request names none"),
    Setting("memory_cache_mb", int, 256, "Voice cache in memory",
        "A voice takes about 135 KB; the budget is a ceiling, not a reservation", low=0, words="0 or more MiB"),
    Setting("disk_cache_mb", int, 1024, "Voice cache on disk", "The disk tier, pruned least recently used first",
        low=0, words="0 or more MiB"),
    Setting("max_text_chars", int, DEFAULT_MAX_TEXT_CHARS, "Longest text",
        "The most characters one request may carry (about 40 pages)", low=0),
    Setting("max_tokens_per_chunk", int, 1000, "Speech tokens per sentence",
        "Upper bound of a sentence's speech-token budget, which is proportional to its text (1000: 40 s of audio)",
        low=0),
    Setting("max_chunk_chars", int, 300, "Longest sentence",
        "Sentences longer than this many characters are cut at commas, then spaces", low=20),
    Setting("warmup", bool, True, "Warm up", "Warm the model up at load, so the first request is not the slow one",
        needs_reload=True),
    Setting("engine", str, "chatterbox", "Engine",
        "The real model, or a light fake for tests; the daemon's --engine flag",
        choices=_named("chatterbox", "fake"), editable=False),
    Setting("engine_path", str, "auto", "Decode loop",
        "T3's decode loop: fast (ours: static KV cache, token streaming), stock (chatterbox's own), auto (fast; "
        "the multilingual model always takes stock); see docs/engine.md",
        choices=_named("auto", "fast", "stock"), needs_reload=True),
    Setting("precision", str, "auto", "Precision",
        "T3's transformer on the fast path: auto (measured per device), float32, bfloat16, mixed or int8 "
        "(weight-only int8 for some or all of its linears; CPU only). On a CPU every value but float32 also "
        "runs S3Gen in bfloat16",
        choices=_named("auto", "float32", "bfloat16", "mixed", "int8"), needs_reload=True),
    Setting("quality", str, "best", "Quality",
        "S3Gen's solver steps and reference-prompt length: best is chatterbox's own; balanced and fast trade "
        "likeness for speed",
        choices=_named("fast", "balanced", "best"), needs_reload=True),
    Setting("cuda_graphs", bool, False, "CUDA graphs",
        "Replay T3's decode step from CUDA graphs (fast path on CUDA only; ignored elsewhere)", needs_reload=True),
    Setting("output_device", str, "", "Output device", "An output device's name; empty for the system's default",
        words="a device name, or empty for the system's default"),
    Setting("volume", float, 1.0, "Volume", "Playback volume, 0 (silent) to 1 (as synthesized)",
        low=VOLUME_RANGE[0], high=VOLUME_RANGE[1], words="between 0 and 1"),
    Setting("prebuffer", str, "adaptive", "Before playing",
        "When synthesis is slower than real time, wait until playback will not stall, or start at once",
        choices=dict(zip(PREBUFFER_MODES, ("Adaptive: wait until playback will not stall",
                                           "Off: start with the first sentence"), strict=True))),
    Setting("sentence_pause_ms", int, 250, "Pause between sentences", "Silence after each sentence (ms)",
        low=0, high=5000),
    Setting("unload_after_idle_minutes", float, 30.0, "Unload the model when idle",
        "Give the model's memory back after this long with nothing to say; the next request loads it again "
        "(voices stay cached)",
        low=0, words="0 (never) or more"),
    Setting("rate", float, 1.0, "Speaking rate",
        "How fast speech is spoken when the request does not say (the Speak page, the hotkey, Speech Dispatcher "
        "at its normal rate, scripts): the audio is time-stretched, the pitch stays",
        low=RATE_RANGE[0], high=RATE_RANGE[1]),
    Setting("bridge_openai", bool, False, "OpenAI-compatible endpoint",
        "For Open WebUI, SillyTavern and other apps that speak OpenAI's /v1/audio/speech (docs/openai.md). "
        "The daemon runs it, and restarts it if it stops."),
    Setting("bridge_openai_port", int, 8880, "OpenAI endpoint's port", "Its port on 127.0.0.1",
        low=1, high=65535, words="a port number from 1 to 65535"),
    Setting("bridge_wyoming", bool, False, "Wyoming server",
        "Home Assistant's voice pipeline: add the Wyoming integration with this address (docs/wyoming.md). "
        "The daemon runs it, and restarts it if it stops."),
    Setting("bridge_wyoming_uri", str, "tcp://127.0.0.1:10200", "Wyoming server's address",
        "Where it listens (tcp://0.0.0.0:10200 for Home Assistant on another machine; Wyoming has no password)",
        words="tcp://HOST:PORT or unix://PATH"),
    Setting("bridge_wyoming_zeroconf", bool, False, "Announce the Wyoming server",
        "Announce it over zeroconf so Home Assistant finds it by itself (off: a server without a password should "
        "be added on purpose); needs an address other machines reach"),
)}
# fmt: on
