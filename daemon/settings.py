"""The daemon's settings: one JSON file in the user config dir, flags on top.

Every setting has a default here and a reason next to it. The daemon is the
only owner of this file; clients read and change settings through it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..ipc import endpoints
from ..ipc.atomic import write_atomic
from ..ipc.limits import DEFAULT_MAX_TEXT_CHARS, PREBUFFER_MODES, RATE_RANGE
from ..ipc.remote import RemoteSettings, remote_settings
from .precision import PRECISIONS
from .storage import disk_full_as_error

log = logging.getLogger(__name__)

#: "auto": Turbo when there is no CUDA/MPS device, else the original (daemon/engine.py).
VARIANTS = ("auto", "original", "multilingual", "turbo")
DEVICES = ("auto", "cuda", "mps", "cpu")
ENGINES = ("chatterbox", "fake")
ENGINE_PATHS = ("auto", "fast", "stock")
QUALITIES = ("fast", "balanced", "best")


@dataclass(frozen=True)
class Settings:
    """Everything the daemon can be told. Sizes in MiB, lengths in characters."""

    #: Which Chatterbox: "original" (English), "multilingual", "turbo", or
    #: "auto": Turbo without a CUDA or MPS device (the only one near real time
    #: on a CPU), else the original; with a local checkpoint, the model it holds.
    variant: str = "auto"
    #: A local checkpoint folder; empty means the Hugging Face hub (cached,
    #: works offline once downloaded).
    checkpoint: str = ""
    #: "auto" tries CUDA, then MPS, then the CPU.
    device: str = "auto"
    #: Default language for the multilingual model.
    language: str = "en"
    #: Memory tier of the conditionals cache. A voice is ~135 KB, so 256 MiB
    #: holds every voice anyone has; it is a ceiling, not a reservation.
    memory_cache_mb: int = 256
    #: Disk tier, pruned least-recently-used first.
    disk_cache_mb: int = 1024
    #: Longest text one request may carry (about 40 pages).
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    #: Upper bound of a chunk's speech-token budget; the budget itself is
    #: proportional to the chunk's text (see daemon/text.py). Chatterbox's own
    #: generate uses a fixed 1000 (40 s of audio).
    max_tokens_per_chunk: int = 1000
    #: Longest chunk: sentences longer than this are cut at commas, then spaces.
    max_chunk_chars: int = 300
    #: Warm the model up at load so the first real voice is not the slow one.
    warmup: bool = True
    #: "chatterbox" for the real model; "fake" is a light engine for tests.
    engine: str = "chatterbox"
    #: T3's decode loop: "fast" (ours: static KV cache, token streaming),
    #: "stock" (chatterbox's own, for comparison or as a way out), "auto"
    #: (fast; the multilingual model always takes stock). docs/engine.md.
    engine_path: str = "auto"
    #: T3's transformer on the fast path: "auto" (measured default per
    #: device, docs/engine.md), "float32", "bfloat16", "mixed" and "int8"
    #: (weight-only int8 for some or all of its linears; CPU only).
    precision: str = "auto"
    #: S3Gen's solver steps and reference-prompt length: "best" is
    #: chatterbox's own values; "balanced" and "fast" trade likeness for speed.
    quality: str = "best"
    #: Replay T3's decode step from CUDA graphs (fast path on CUDA only;
    #: ignored elsewhere). Off by default: written but not yet measured on a GPU.
    cuda_graphs: bool = False
    #: Output device by name; empty means the system's default output.
    output_device: str = ""
    #: Playback volume, 0 (silent) to 1 (as synthesized).
    volume: float = 1.0
    #: "adaptive": when synthesis is slower than real time, wait until enough
    #: audio is buffered that playback will not stall; "off": play at once.
    prebuffer: str = "adaptive"
    #: Silence between sentences, so joined sentences sound like speech.
    sentence_pause_ms: int = 250
    #: Unload the model after this many minutes with nothing to make, giving
    #: its memory (GPU memory above all) back; the next request loads it again
    #: and the voices stay cached. 0 keeps it loaded for ever. Fractions work.
    unload_after_idle_minutes: float = 30.0
    #: Speaking rate for requests that give none (``speak``, ``synthesize``'s
    #: ``rate``): 0.5 to 2.0, by time-stretching (daemon/stretch.py).
    rate: float = 1.0
    #: Run the OpenAI-compatible endpoint (``chatterbox-tray serve openai``) as
    #: the daemon's child, on 127.0.0.1 at ``bridge_openai_port`` (daemon/bridge_supervisor.py).
    bridge_openai: bool = False
    bridge_openai_port: int = 8880
    #: Run the Wyoming server (``chatterbox-tray serve wyoming``) as the
    #: daemon's child, listening at ``bridge_wyoming_uri``.
    bridge_wyoming: bool = False
    bridge_wyoming_uri: str = "tcp://127.0.0.1:10200"
    #: Announce that server over zeroconf so Home Assistant finds it (off: a
    #: server without a password should be added on purpose); needs a LAN address.
    bridge_wyoming_zeroconf: bool = False

    @staticmethod
    def editable() -> tuple[str, ...]:
        """The settings clients may change (``settings.set``), in declaration order."""
        return tuple(f.name for f in fields(Settings) if f.name not in READ_ONLY)

    def validate(self) -> Settings:
        """Raise ValueError naming the first bad value (wrong type included)."""
        for f in fields(self):
            value, default = getattr(self, f.name), f.default
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise ValueError(f"{f.name} must be {type(default).__name__}, not {value!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        for name in ("memory_cache_mb", "disk_cache_mb", "max_text_chars", "max_tokens_per_chunk"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name, choices in (("engine_path", ENGINE_PATHS), ("precision", PRECISIONS), ("quality", QUALITIES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        if self.prebuffer not in PREBUFFER_MODES:
            raise ValueError(f"prebuffer must be one of {', '.join(PREBUFFER_MODES)}, not {self.prebuffer!r}")
        volume = _as_float(self.volume)
        if not math.isfinite(volume):
            raise ValueError("volume must be a finite number between 0 and 1")
        if not 0.0 <= volume <= 1.0:
            raise ValueError("volume must be between 0 and 1")
        lo, hi = RATE_RANGE
        rate = _as_float(self.rate)
        if not (math.isfinite(rate) and lo <= rate <= hi):
            raise ValueError(f"rate must be between {lo} and {hi}")
        if not 1 <= self.bridge_openai_port <= 65535:
            raise ValueError("bridge_openai_port must be a port number from 1 to 65535")
        if not self.bridge_wyoming_uri.startswith(("tcp://", "unix://")):
            raise ValueError("bridge_wyoming_uri must start with tcp:// (or unix://), e.g. tcp://127.0.0.1:10200")
        if self.bridge_wyoming_zeroconf and _loopback_uri(self.bridge_wyoming_uri):
            raise ValueError(
                "bridge_wyoming_zeroconf needs bridge_wyoming_uri on an address other machines reach "
                "(e.g. tcp://0.0.0.0:10200), not loopback"
            )
        if not 0 <= self.sentence_pause_ms <= 5000:
            raise ValueError("sentence_pause_ms must be between 0 and 5000")
        if not math.isfinite(_as_float(self.unload_after_idle_minutes)) or self.unload_after_idle_minutes < 0:
            raise ValueError("unload_after_idle_minutes must be 0 (never) or more")
        if self.max_chunk_chars < 20:
            raise ValueError("max_chunk_chars must be at least 20")
        return self

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _as_float(value: float) -> float:
    """``float(value)``, with an integer too large for a float read as infinite (refused, not a crash)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _loopback_uri(uri: str) -> bool:
    """A tcp:// address only this machine reaches (or a unix:// socket): nothing to announce."""
    from urllib.parse import urlparse

    host = urlparse(uri).hostname or ""
    return not uri.startswith("tcp://") or host in ("localhost", "::1") or host.startswith("127.")


#: Settings fixed for a daemon's run: the command line's, not clients'
#: ("engine" picks the fake engine for tests).
READ_ONLY = ("engine",)
#: Settings that take effect only when the model is loaded again (``reload``).
NEEDS_RELOAD = ("variant", "checkpoint", "device", "engine_path", "precision", "quality", "cuda_graphs", "warmup")


def settings_file() -> Path:
    """Where the settings live."""
    return endpoints.settings_file()


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read the settings file (missing or broken: defaults, logged) and apply overrides."""
    path = path or settings_file()
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Settings)}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        for key, value in raw.items():
            if key in known:
                values[key] = value
            elif key == REMOTE_KEY:
                pass  # read by load_remote_settings
            else:
                log.warning("settings: ignoring unknown key %r in %s", key, path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.error("settings: %s is unreadable (%s); using defaults", path, exc)
    settings = Settings()
    try:
        settings = replace(settings, **values).validate()
    except (TypeError, ValueError) as exc:
        log.error("settings: %s has a bad value (%s); using defaults", path, exc)
        settings = Settings()
    if overrides:
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None}).validate()
    return settings


#: settings.json's object for serving other computers (ipc/remote.py,
#: docs/security.md). Not a ``Settings`` field: no client may change it over
#: any socket, only the daemon's owner by editing the file.
REMOTE_KEY = "remote"


def load_remote_settings(path: Path | None = None, bind: str | None = None) -> RemoteSettings:
    """settings.json's ``remote`` object; ``bind`` (``--remote-bind``) turns it on for one run.

    Raises RemoteError on a bad value: a daemon asked to serve the network
    must not silently serve it some other way.
    """
    path = path or settings_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    current = remote_settings(raw.get(REMOTE_KEY) if isinstance(raw, dict) else None)
    if bind:
        current = remote_settings({**asdict(current), "enabled": True, "bind": bind})
    return current


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write all the settings atomically."""
    _write(settings.to_json(), path or settings_file())


def save_changes(changes: dict[str, Any], path: Path | None = None) -> None:
    """Merge ``changes`` into the settings file, atomically.

    Only what a client changed is written: a flag the daemon was started with
    (``--variant``, ``--engine``) stays a flag for that run, not a saved setting.
    """
    path = path or settings_file()
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(current, dict):
            current = {}
    except (OSError, ValueError):
        current = {}
    _write({**current, **changes}, path)


def _write(values: dict[str, Any], path: Path) -> None:
    with disk_full_as_error("the settings", path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(values, indent=2) + "\n", site="settings")
