"""The real engine: a thin adapter over chatterbox's own model classes.

We call chatterbox's ``from_local`` / ``from_pretrained``,
``prepare_conditionals`` and ``generate`` unchanged and add only what a
long-lived daemon needs around them:

* conditionals go in and out as CPU tensors (the cache keeps them; the model
  sees them on its device for one job only, so VRAM does not grow per voice);
* a speech-token budget per chunk instead of ``generate``'s fixed 1000, by
  wrapping ``t3.inference`` (``inference_turbo`` for Turbo) to override it;
* cancellation within a chunk, by forward pre-hooks on the transformer and
  the flow decoder that raise ``Cancelled`` when the job's flag is set;
* T3 and S3Gen timings, by timing the wrapped calls.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from chatterbox_tray.ipc.limits import CLIP_MIN_SECONDS

from .engine import (
    OPTION_RANGES,
    Cancelled,
    CondTensors,
    Engine,
    EngineError,
    GenResult,
    ProgressFn,
    SynthOptions,
)

log = logging.getLogger(__name__)

#: The files each variant's ``from_local`` reads, for a clear "missing" error.
_REQUIRED_FILES = {
    "original": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
    "multilingual": ("ve.pt", "t3_mtl23ls_v2.safetensors", "s3gen.pt", "grapheme_mtl_merged_expanded_v1.json"),
    "turbo": ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
}
_T3_KEYS = ("speaker_emb", "clap_emb", "cond_prompt_speech_tokens", "cond_prompt_speech_emb", "emotion_adv")
_GEN_KEYS = ("prompt_token", "prompt_token_len", "prompt_feat", "prompt_feat_len", "embedding")


def pick_device(wanted: str) -> str:
    """Resolve "auto" to cuda, then mps, then cpu; refuse an unavailable device."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if wanted == "cuda" and not cuda:
        raise EngineError("model_failed", "device 'cuda' was asked for but torch sees no CUDA GPU")
    if wanted == "mps" and not mps:
        raise EngineError("model_failed", "device 'mps' was asked for but MPS is not available")
    return wanted


def fingerprint_folder(folder: Path) -> str:
    """A cheap fingerprint of a checkpoint: names, sizes, and the first and last MiB.

    Hashing 3 GB of weights would cost seconds at every start; this catches
    any real change of checkpoint (a retrained file differs in its header).
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), io.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()[:16]


class ChatterboxEngine(Engine):
    """One chatterbox model: original, multilingual or Turbo, from the hub or a folder."""

    def __init__(self, variant: str = "original", checkpoint: str = "", device: str = "auto") -> None:
        self.variant = variant
        self.checkpoint = checkpoint
        self.wanted_device = device
        self.model: Any = None
        self.prep_version = "norm_loudness" if variant == "turbo" else "v1"
        self._cancel = threading.Event()
        self._budget = 1000
        self._t3_seconds = 0.0
        self._s3_seconds = 0.0
        self._tokens = 0

    # -- loading -------------------------------------------------------------

    def load(self, progress: ProgressFn) -> None:
        """Load the model; failures become EngineError with what to do about them."""
        progress(0.02, "importing chatterbox")
        if self.checkpoint:
            # A local folder means "no network": without this the multilingual
            # loader spends ~25 s retrying the hub for a side table it has cached.
            # huggingface_hub reads it at import, hence before the imports below.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from chatterbox.mtl_tts import ChatterboxMultilingualTTS
            from chatterbox.tts import ChatterboxTTS
            from chatterbox.tts_turbo import ChatterboxTurboTTS
        except Exception as exc:  # a broken install must not kill the daemon
            raise EngineError("model_failed", f"chatterbox could not be imported: {exc}") from exc
        cls = {
            "original": ChatterboxTTS,
            "multilingual": ChatterboxMultilingualTTS,
            "turbo": ChatterboxTurboTTS,
        }[self.variant]
        self.device = pick_device(self.wanted_device)
        try:
            if self.checkpoint:
                folder = Path(self.checkpoint).expanduser()
                missing = [n for n in _REQUIRED_FILES[self.variant] if not (folder / n).is_file()]
                if missing:
                    raise EngineError(
                        "model_failed",
                        f"checkpoint folder {folder} lacks {', '.join(missing)} "
                        f"(the {self.variant} model needs {', '.join(_REQUIRED_FILES[self.variant])})",
                    )
                progress(0.10, f"fingerprinting {folder}")
                self.model_id = f"{self.variant}:{fingerprint_folder(folder)}"
                progress(0.15, f"loading weights from {folder} onto {self.device}")
                self.model = cls.from_local(folder, self.device)
            else:
                progress(0.10, "fetching weights from the Hugging Face hub (cached after the first time)")
                self.model = cls.from_pretrained(self.device)
                self.model_id = f"{self.variant}:{self._hub_revision()}"
        except EngineError:
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise EngineError("model_failed", f"out of GPU memory loading the model on {self.device}: {exc}") from exc
        except (OSError, ValueError) as exc:
            hint = (
                ""
                if self.checkpoint
                else (
                    " Connect to the internet once so the weights can be downloaded, or set a local checkpoint folder."
                )
            )
            raise EngineError("model_failed", f"could not load the {self.variant} weights: {exc}.{hint}") from exc
        except RuntimeError as exc:
            what = "out of memory" if "out of memory" in str(exc).lower() else "the weights do not fit the model"
            raise EngineError("model_failed", f"{what}: {exc}") from exc
        self.sample_rate = int(self.model.sr)
        self._install_wrappers()
        progress(0.9, "model loaded")

    def _hub_revision(self) -> str:
        """The commit of the cached hub snapshot, so a new upstream release gets new cache keys."""
        try:
            import importlib

            from huggingface_hub import snapshot_download

            module = {
                "original": "chatterbox.tts",
                "multilingual": "chatterbox.mtl_tts",
                "turbo": "chatterbox.tts_turbo",
            }[self.variant]
            repo = importlib.import_module(module).REPO_ID
            return Path(snapshot_download(repo, local_files_only=True)).name[:16]
        except Exception:  # an unknown revision only costs cache hits, never the load
            return "hub"

    def _install_wrappers(self) -> None:
        t3, s3gen = self.model.t3, self.model.s3gen

        def budgeted(fn: Any, kw: str, first: int = 0) -> Any:
            # ``first``: tokens the method samples before its loop counts to ``kw``.
            def call(*args: Any, **kwargs: Any) -> Any:
                kwargs[kw] = max(self._budget - first, 0)
                start = time.perf_counter()
                try:
                    out = fn(*args, **kwargs)
                finally:
                    self._t3_seconds += time.perf_counter() - start
                self._tokens += int(out.shape[-1]) if hasattr(out, "shape") else 0
                return out

            return call

        def timed(fn: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._s3_seconds += time.perf_counter() - start

            return call

        # Instance attributes shadow the methods; nn.Module allows plain callables.
        object.__setattr__(t3, "inference", budgeted(t3.inference, "max_new_tokens"))
        if hasattr(t3, "inference_turbo"):
            object.__setattr__(t3, "inference_turbo", budgeted(t3.inference_turbo, "max_gen_len", first=1))
        object.__setattr__(s3gen, "inference", timed(s3gen.inference))

        def check_cancel(_module: Any, _inputs: Any) -> None:
            if self._cancel.is_set():
                raise Cancelled()

        hooked = [
            getattr(t3, "tfmr", None),
            getattr(getattr(s3gen, "flow", None), "decoder", None),
            getattr(s3gen, "mel2wav", None),
        ]
        for module in hooked:
            if module is not None:
                module.register_forward_pre_hook(check_cancel)

    def unload(self) -> None:
        """Drop the model and give its memory back."""
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass

    # -- conditionals ----------------------------------------------------------

    def prepare(self, clip: bytes) -> CondTensors:
        """chatterbox's ``prepare_conditionals`` on the clip's bytes, as CPU tensors."""
        import torch

        source: Any = io.BytesIO(clip)
        try:
            import soundfile

            soundfile.info(io.BytesIO(clip))
        except Exception:
            # librosa reads file objects through soundfile only; formats only
            # audioread/ffmpeg can decode are turned into an in-memory WAV.
            source = _as_wav(clip)
        with torch.inference_mode():
            self.model.prepare_conditionals(source)
        conds, self.model.conds = self.model.conds, None
        flat: CondTensors = {}
        for key in _T3_KEYS:
            value = getattr(conds.t3, key, None)
            if torch.is_tensor(value):
                flat[f"t3.{key}"] = value.detach().to("cpu").contiguous()
        for key, value in conds.gen.items():
            if torch.is_tensor(value):
                flat[f"gen.{key}"] = value.detach().to("cpu").contiguous()
        return flat

    def _conditionals(self, flat: CondTensors) -> Any:
        from chatterbox.models.t3.modules.cond_enc import T3Cond
        from chatterbox.tts import Conditionals

        # Copies: chatterbox mutates what it is given, and the cache's tensors
        # must stay as they were stored.
        t3 = {k[3:]: v.clone() for k, v in flat.items() if k.startswith("t3.")}
        gen = {key: None for key in _GEN_KEYS}
        gen.update({k[4:]: v.clone() for k, v in flat.items() if k.startswith("gen.")})
        return Conditionals(T3Cond(**t3), gen).to(self.device)

    # -- generation --------------------------------------------------------------

    def generate(
        self,
        text: str,
        conds: CondTensors,
        options: SynthOptions,
        max_tokens: int,
        cancel: threading.Event,
    ) -> GenResult:
        """One chunk through chatterbox's ``generate`` with our budget and cancel hooks."""
        import torch

        kwargs: dict[str, Any] = {}
        caps = self.capabilities()["options"]
        for name in ("exaggeration", "cfg_weight", "temperature"):
            value = getattr(options, name)
            if value is not None and name in caps:
                kwargs[name] = float(value)
        if self.variant == "multilingual":
            language = (options.language or "en").lower()
            if language not in self.capabilities()["languages"]:
                raise EngineError("unknown_language", f"language {language!r} is not supported by this model")
            kwargs["language_id"] = language
        if options.seed is not None:
            torch.manual_seed(options.seed)
        self._cancel = cancel
        self._budget = max(1, int(max_tokens))
        self._t3_seconds = self._s3_seconds = 0.0
        self._tokens = 0
        self.model.conds = self._conditionals(conds)
        try:
            with torch.inference_mode():
                wav = self.model.generate(text, **kwargs)
        finally:
            self.model.conds = None
        samples = wav.squeeze(0).detach().to("cpu").float().numpy()
        return GenResult(samples, self._t3_seconds, self._s3_seconds, self._tokens)

    def warmup(self) -> None:
        """Prepare conditionals from a synthetic clip and speak two words.

        The first ``prepare_conditionals`` in a process costs 16 s on a CPU
        against 1.2 s for the next (lazy kernels, mel filters, allocator), so
        paying it here keeps the first real voice fast.
        """
        import numpy as np
        import soundfile

        rate = 24_000
        t = np.arange(int(6.0 * rate)) / rate
        # A gliding tone with a syllable-rate envelope: sound, not silence.
        clip = 0.3 * np.sin(2 * np.pi * (140 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
        clip *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
        buf = io.BytesIO()
        soundfile.write(buf, clip.astype(np.float32), rate, format="WAV", subtype="FLOAT")
        conds = self.prepare(buf.getvalue())
        self.generate("Hello.", conds, SynthOptions(seed=0), 4, threading.Event())

    # -- description ---------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Options with ranges, and languages (multilingual only)."""
        names = ("temperature",) if self.variant == "turbo" else ("exaggeration", "cfg_weight", "temperature")
        options = {n: dict(zip(("min", "max", "default"), OPTION_RANGES[n], strict=True)) for n in names}
        languages: list[str] = ["en"]
        if self.variant == "multilingual":
            from chatterbox.mtl_tts import SUPPORTED_LANGUAGES

            languages = sorted(SUPPORTED_LANGUAGES)
        return {
            "variant": self.variant,
            "options": options,
            "languages": languages,
            "sample_rate": self.sample_rate,
            "min_clip_seconds": CLIP_MIN_SECONDS,
        }

    def memory(self) -> dict[str, Any]:
        """torch.cuda's allocator figures on a CUDA device."""
        import torch

        if not self.device.startswith("cuda") or not torch.cuda.is_available():
            return {}
        props = torch.cuda.get_device_properties(0)
        return {
            "gpu_name": props.name,
            "gpu_memory_total": int(props.total_memory),
            "gpu_memory_allocated": int(torch.cuda.memory_allocated()),
            "gpu_memory_reserved": int(torch.cuda.memory_reserved()),
            "gpu_memory_peak": int(torch.cuda.max_memory_allocated()),
        }


def _as_wav(clip: bytes) -> io.BytesIO:
    """Decode any format librosa reads into an in-memory float WAV."""
    import soundfile

    from .clip import decode_clip

    samples, rate = decode_clip(clip)
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV", subtype="FLOAT")
    buf.seek(0)
    return buf
