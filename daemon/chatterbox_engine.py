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
* T3 and S3Gen timings, by timing the wrapped calls;
* our own T3 decode loop (``daemon/t3_decode.py``: static KV cache, the same
  sampling) in place of ``t3.inference`` / ``inference_turbo`` when the
  ``engine_path`` is ``fast`` (the default for the original and Turbo; the
  multilingual model keeps the stock loop, whose alignment analyzer hooks the
  transformer's attention).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ipc.settings_schema import SETTINGS
from . import download
from .engine import (
    Cancelled,
    CondTensors,
    Engine,
    EngineError,
    GenResult,
    ProgressFn,
    SynthOptions,
    Upcoming,
    resolve_variant,
)

if TYPE_CHECKING:
    from .token_stream import TokenStream

log = logging.getLogger(__name__)

#: The files each variant's ``from_local`` reads, for a clear "missing" error.
_REQUIRED_FILES = {
    "original": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
    "multilingual": ("ve.pt", "t3_mtl23ls_v2.safetensors", "s3gen.pt", "grapheme_mtl_merged_expanded_v1.json"),
    "turbo": ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
}
_T3_KEYS = ("speaker_emb", "clap_emb", "cond_prompt_speech_tokens", "cond_prompt_speech_emb", "emotion_adv")
_GEN_KEYS = ("prompt_token", "prompt_token_len", "prompt_feat", "prompt_feat_len", "embedding")
#: Seconds after which pieces that did not pay are tried again (``ChatterboxEngine._pieces_pay``).
PIECE_RECHECK_S = 600.0
#: Sentences T3 may run ahead of the one S3Gen is making (their tokens wait, or join its S3Gen call).
AHEAD = 2
#: Speech tokens of the warm-up's paragraph sentences: 2 s of speech, a short sentence's length.
WARMUP_SENTENCE_TOKENS = 50
_OFFLINE_HINT = " Connect to the internet once so the weights can be downloaded, or set a local checkpoint folder."
#: Speech-token ids S3Gen can embed (chatterbox's SPEECH_VOCAB_SIZE); T3 may emit more (SOS, EOS, and
#: the multilingual model's larger vocabulary).
S3GEN_VOCAB = 6561


def auto_variant(accelerator: bool, folder: Path | None = None) -> str:
    """What variant "auto" loads: the device's choice, unless a local folder holds only other models.

    A checkpoint folder usually holds one model; pointing "auto" at it should
    load that model, not fail for lack of the device's preferred one.
    """
    preferred = resolve_variant("auto", accelerator)
    present = [
        v for v, names in _REQUIRED_FILES.items() if folder is not None and all((folder / n).is_file() for n in names)
    ]
    return preferred if not present or preferred in present else present[0]


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


#: Values of the ``engine_path`` setting.
ENGINE_PATHS = tuple(SETTINGS["engine_path"].choices)  # declared once, in the settings schema


def resolve_engine_path(wanted: str, variant: str) -> str:
    """ "fast" or "stock" for a variant.

    The multilingual model always takes the stock loop: its
    ``AlignmentStreamAnalyzer`` reads attention maps from hooks on the HF
    transformer's layers (eager attention), which our step function bypasses.
    """
    if wanted not in ENGINE_PATHS:
        raise EngineError("bad_setting", f"engine_path must be one of {', '.join(ENGINE_PATHS)}, not {wanted!r}")
    if variant == "multilingual":
        return "stock"
    return "stock" if wanted == "stock" else "fast"


class ChatterboxEngine(Engine):
    """One chatterbox model: original, multilingual or Turbo, from the hub or a folder."""

    def __init__(
        self,
        variant: str = "original",
        checkpoint: str = "",
        device: str = "auto",
        engine_path: str = "auto",
        precision: str = "auto",
        quality: str = "best",
        cuda_graphs: bool = False,
    ) -> None:
        from .precision import PRECISIONS
        from .s3gen_stream import QUALITIES

        if precision not in PRECISIONS:
            raise EngineError("bad_setting", f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if quality not in QUALITIES:
            raise EngineError("bad_setting", f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}")
        self.variant = variant
        self.checkpoint = checkpoint
        self.wanted_device = device
        self.wanted_path = engine_path
        self.wanted_precision = precision
        #: The precision T3's transformer runs in once loaded ("float32" on the stock path).
        self.precision = "float32"
        #: S3Gen's methods set by ``use_bfloat16`` (removed on unload with the other wrappers).
        self._s3gen_patches: list[tuple[Any, str]] = []
        self.quality = QUALITIES[quality]
        #: Asked for CUDA graphs; ``graphs_on`` says whether the loaded model uses them (CUDA only).
        self.wanted_graphs = bool(cuda_graphs)
        self.graphs_on = False
        #: "fast" or "stock" once loaded (see ``resolve_engine_path``).
        self.engine_path = ""
        self.model: Any = None
        self.fast_t3: Any = None
        self.prep_version = "norm_loudness" if variant == "turbo" else "v1"
        self._cancel = threading.Event()
        self._budget = 1000
        #: The job's next sentences' T3 runs, started or queued in order (``generate_stream``).
        self._ahead: list[TokenStream] = []
        #: Next sentences' audio made with an earlier sentence's S3Gen call, by sentence.
        self._made: dict[Hashable, GenResult] = {}
        #: S3Gen seconds per second of audio of a streamed piece (recent, smoothed), and when measured.
        self.piece_rtf: float | None = None
        self._piece_measured_at = 0.0
        #: torch threads for (T3's thread, S3Gen's thread) on the streamed path, and
        #: torch's own count (the stock path and preparing voices); set at load.
        self.pipeline_threads: tuple[int, int] = (1, 1)
        #: S3Gen is working on the worker thread (T3's thread takes its share only then).
        self._s3_busy = False
        self._default_threads = 1
        #: Other programs' use of the cores, when threads follow it (``_cores``).
        self._cpu_share: Any = None
        self._t3_seconds = 0.0
        self._s3_seconds = 0.0
        self._tokens = 0

    # -- loading -------------------------------------------------------------

    def load(self, progress: ProgressFn) -> None:
        """Load the model; failures become EngineError with what to do about them.

        On a CPU it loads on a thread that ends with it (``_on_threads``), so
        the team of OpenMP threads loading made is gone before the warm-up
        measures the pace of a paragraph (with it still there, the warm-up's
        T3 ran throttled and its pace came out 1.17-1.20 against 1.14).
        """
        threads = process_threads()
        if pick_device(self.wanted_device) == "cpu":
            self._on_threads(threads, lambda: self._load(progress), inference=False)
        else:
            self._load(progress)

    def _load(self, progress: ProgressFn) -> None:
        progress(0.02, "importing chatterbox")
        download.reset()
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

            from .quickload import strict_loaded_modules_skip_random_init
        except Exception as exc:  # a broken install must not kill the daemon
            raise EngineError("model_failed", f"chatterbox could not be imported: {exc}") from exc
        self.device = pick_device(self.wanted_device)
        folder = Path(self.checkpoint).expanduser() if self.checkpoint else None
        if self.variant == "auto":
            self.variant = auto_variant(self.device != "cpu", folder)
            self.prep_version = "norm_loudness" if self.variant == "turbo" else "v1"
            log.info("variant auto: %s on %s", self.variant, self.device)
        cls = {
            "original": ChatterboxTTS,
            "multilingual": ChatterboxMultilingualTTS,
            "turbo": ChatterboxTurboTTS,
        }[self.variant]
        try:
            if folder is not None:
                missing = [n for n in _REQUIRED_FILES[self.variant] if not (folder / n).is_file()]
                if missing:
                    raise EngineError(
                        "model_failed",
                        f"checkpoint folder {folder} lacks {', '.join(missing)} "
                        f"(the {self.variant} model needs {len(_REQUIRED_FILES[self.variant])} files there)",
                    )
                progress(0.10, f"fingerprinting {folder}")
                self.model_id = f"{self.variant}:{fingerprint_folder(folder)}"
                progress(0.15, f"loading weights from {folder} onto {self.device}")
                with strict_loaded_modules_skip_random_init():
                    self.model = cls.from_local(folder, self.device)
            else:
                progress(0.10, "asking the Hugging Face hub for the weights (downloaded once, then cached)")
                # Our own fetch first, into the same cache, so the download shows its figures.
                repo = sys.modules[cls.__module__].REPO_ID
                download.fetch_weights(repo, download.HUB_FILES[self.variant], progress)
                progress(0.70, f"loading the {self.variant} weights onto {self.device}")
                with strict_loaded_modules_skip_random_init():
                    self.model = cls.from_pretrained(self.device)
                self.model_id = f"{self.variant}:{self._hub_revision(repo)}"
        except EngineError:
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise EngineError("model_failed", f"out of GPU memory loading the model on {self.device}: {exc}") from exc
        except (OSError, ValueError) as exc:
            hint = "" if self.checkpoint else _OFFLINE_HINT
            raise EngineError("model_failed", f"could not load the {self.variant} weights: {exc}.{hint}") from exc
        except RuntimeError as exc:
            what = "out of memory" if "out of memory" in str(exc).lower() else "the weights do not fit the model"
            raise EngineError("model_failed", f"{what}: {exc}") from exc
        self.sample_rate = int(self.model.sr)
        self._default_threads = process_threads()
        self.pipeline_threads = pipeline_threads(self._default_threads)
        if os.environ.get("CHATTERBOX_TRAY_CORES_FOLLOW_LOAD", "1") != "0":
            from .sysstats import CpuShare

            self._cpu_share = CpuShare()
        self.engine_path = resolve_engine_path(self.wanted_path, self.variant)
        if self.variant != "multilingual":
            from .t3_decode import FastT3

            if self.engine_path == "fast":
                self._convert_precision(progress)
            self.fast_t3 = FastT3(self.model.t3)
            if self.engine_path == "fast" and self.wanted_graphs and self.device.startswith("cuda"):
                from .cuda_graphs import use_cuda_graphs

                use_cuda_graphs(self.fast_t3)
                self.graphs_on = True
                log.info("T3's decode step replays from CUDA graphs")
        self._install_wrappers()
        progress(0.9, "model loaded")

    def _convert_precision(self, progress: ProgressFn) -> None:
        """Put T3's transformer in the chosen precision (fast path only: stock keeps float32)."""
        from .precision import convert_transformer, resolve_precision

        try:
            self.precision = resolve_precision(self.wanted_precision, self.device)
        except ValueError as exc:
            raise EngineError("bad_setting", str(exc)) from exc
        if self.precision != "float32":
            progress(0.85, f"converting T3 to {self.precision}")
            t3 = self.model.t3
            t3.tfmr = convert_transformer(t3.tfmr, self.precision, self.device)
            if self.device == "cpu":
                # S3Gen's networks in bfloat16 too: measured 2x on a CPU (docs/engine.md).
                from .s3gen_stream import use_bfloat16

                self._s3gen_patches = use_bfloat16(self.model.s3gen)
        log.info("T3 on the fast path in %s%s", self.precision, ", S3Gen in bfloat16" if self._s3gen_patches else "")

    def _hub_revision(self, repo: str) -> str:
        """The commit of the cached hub snapshot, so a new upstream release gets new cache keys."""
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(repo, local_files_only=True)).name[:16]
        except Exception:  # an unknown revision only costs cache hits, never the load
            return "hub"

    def _install_wrappers(self) -> None:
        """Budget, time and cancel chatterbox's calls; ``unload`` takes all of it off again.

        The wrappers are instance attributes that hold the stock bound methods
        (module -> wrapper -> bound method -> module) and the engine, and the
        hooks hold the engine: reference cycles that would keep the old model's
        gigabytes until a full garbage collection. So each one is recorded in
        ``_installed`` for ``unload``.
        """
        t3, s3gen = self.model.t3, self.model.s3gen
        installed: list[Any] = list(self._s3gen_patches)
        self._installed = installed

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
            from .s3gen_stream import steps_for, trim_prompt

            def call(*args: Any, **kwargs: Any) -> Any:
                tokens = kwargs.get("speech_tokens")
                if tokens is not None:
                    # chatterbox's original and Turbo drop ids S3Gen has no embedding for
                    # (>= 6561); its multilingual generate forgets to, and an untrained or
                    # unlucky T3 then crashes S3Gen with "index out of range".
                    kwargs["speech_tokens"] = tokens[tokens < S3GEN_VOCAB]
                quality = self.quality
                if quality.name != "best" and "ref_dict" in kwargs:
                    kwargs["ref_dict"] = trim_prompt(kwargs["ref_dict"], quality.prompt_seconds)
                    kwargs["n_cfm_timesteps"] = steps_for(quality, bool(s3gen.meanflow))
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self._s3_seconds += time.perf_counter() - start

            return call

        stock_inference, stock_turbo = t3.inference, getattr(t3, "inference_turbo", None)

        # The path is read per call, so a bench or test can compare both on
        # one loaded model by flipping ``engine_path`` (float32 only: other
        # precisions convert the transformer for the fast path).
        def inference(**kwargs: Any) -> Any:
            if self.engine_path == "fast":
                return self._fast_inference(stock_inference, (), kwargs)
            return stock_inference(**kwargs)

        def inference_turbo(*args: Any, **kwargs: Any) -> Any:
            if self.engine_path == "fast":
                return self._fast_inference(stock_turbo, args, kwargs)
            return stock_turbo(*args, **kwargs)

        # Instance attributes shadow the methods; nn.Module allows plain callables.
        object.__setattr__(t3, "inference", budgeted(inference, "max_new_tokens"))
        installed.append((t3, "inference"))
        if stock_turbo is not None:
            object.__setattr__(t3, "inference_turbo", budgeted(inference_turbo, "max_gen_len", first=1))
            installed.append((t3, "inference_turbo"))
        object.__setattr__(s3gen, "inference", timed(s3gen.inference))
        installed.append((s3gen, "inference"))

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
                installed.append(module.register_forward_pre_hook(check_cancel))

    def _fast_inference(self, stock: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Stock ``T3.inference``'s or ``T3.inference_turbo``'s contract from our loop.

        The call is bound to the stock method's own signature, so its sampling
        arguments and their defaults are exactly stock's. Tokens come back as
        stock's do: a (1, n) tensor, EOS kept by ``inference`` and a trailing
        EOS removed by ``inference_turbo`` (whose ``max_gen_len`` does not
        count the token it samples before its loop).
        """
        import dataclasses
        import inspect

        import torch

        from .t3_decode import Sampling

        call = inspect.signature(stock).bind(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        sampling = Sampling(**{f.name: given[f.name] for f in dataclasses.fields(Sampling) if f.name in given})
        cond, text = given["t3_cond"], given["text_tokens"]
        if "max_gen_len" in given:  # Turbo
            tokens = list(self.fast_t3.turbo(cond, text, sampling, given["max_gen_len"] + 1, self._cancel))
            if tokens and tokens[-1] == self.model.t3.hp.stop_speech_token:
                tokens.pop()
        else:
            tokens = list(self.fast_t3.original(cond, text, sampling, given["max_new_tokens"], self._cancel))
        return torch.tensor([tokens], dtype=torch.long, device=self.model.t3.device).reshape(1, -1)

    def unload(self) -> None:
        """Drop the model and give its memory back (any load state, a half-done one too).

        The wrappers and hooks come off first, so that the model's modules are
        freed by reference counting as the last reference goes; a full
        collection then takes whatever cycles chatterbox's own objects keep.
        Handing the freed heap pages back to the system is the caller's
        (``Model``: ``sysstats.give_back_freed_memory``), once per unload.
        """
        import gc

        self._drop_ahead()  # its thread holds the model
        for item in getattr(self, "_installed", ()):
            if isinstance(item, tuple):
                module, name = item
                module.__dict__.pop(name, None)
            else:
                item.remove()  # a hook's handle
        self._installed = []
        self._s3gen_patches = []
        self.model = None
        self.fast_t3 = None
        self.graphs_on = False
        gc.collect()
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
            from .clip import decode_clip

            source = _wav(*decode_clip(clip))
        self._drop_ahead()  # no T3 running ahead beside it; all the cores for the voice
        self._on_threads(self._cores(), lambda: self.model.prepare_conditionals(source))
        conds, self.model.conds = self.model.conds, None
        parts = [(f"t3.{k}", getattr(conds.t3, k, None)) for k in _T3_KEYS]
        parts += [(f"gen.{k}", value) for k, value in conds.gen.items()]
        return {name: value.detach().to("cpu").contiguous() for name, value in parts if torch.is_tensor(value)}

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
        self, text: str, conds: CondTensors, options: SynthOptions, max_tokens: int, cancel: threading.Event
    ) -> GenResult:
        """One chunk through chatterbox's ``generate`` with our budget and cancel hooks."""
        import torch

        self._drop_ahead()  # one T3 loop at a time: FastT3 has one KV cache
        kwargs = self._generate_kwargs(options)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        self._cancel = cancel
        self._budget = max(1, int(max_tokens))
        self._t3_seconds = self._s3_seconds = 0.0
        self._tokens = 0
        self.model.conds = self._conditionals(conds)
        try:
            wav = self._on_threads(self._cores(), lambda: self.model.generate(text, **kwargs))
        finally:
            self.model.conds = None
        samples = wav.squeeze(0).detach().to("cpu").float().numpy()
        return GenResult(samples, self._t3_seconds, self._s3_seconds, self._tokens)

    def _generate_kwargs(self, options: SynthOptions) -> dict[str, Any]:
        """chatterbox ``generate`` keyword arguments for the options this variant takes."""
        kwargs: dict[str, Any] = {}
        caps = self.capabilities()["options"]
        for name in ("exaggeration", "cfg_weight", "temperature"):
            value = getattr(options, name)
            if value is not None and name in caps:
                kwargs[name] = float(value)
        if self.variant == "multilingual":
            language = (options.language or "en").lower()
            if language not in self.languages():
                raise EngineError("unknown_language", f"language {language!r} is not supported by this model")
            kwargs["language_id"] = language
        return kwargs

    def _t3_inputs(self, text: str, conds: Any, kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """T3 conditionals, text tokens and sampling exactly as chatterbox's ``generate`` prepares them."""
        import torch
        import torch.nn.functional as F

        from .t3_decode import Sampling

        model = self.model
        temperature = kwargs.get("temperature", 0.8)
        if self.variant == "turbo":
            from chatterbox.tts_turbo import punc_norm as turbo_norm

            ids = model.tokenizer(turbo_norm(text), return_tensors="pt", padding=True, truncation=True).input_ids
            sampling = Sampling(temperature=temperature, repetition_penalty=1.2, top_p=0.95, top_k=1000)
            return conds.t3, ids.to(self.device), sampling
        from chatterbox.models.t3.modules.cond_enc import T3Cond
        from chatterbox.tts import punc_norm

        exaggeration = kwargs.get("exaggeration", 0.5)
        cfg_weight = kwargs.get("cfg_weight", 0.5)
        if exaggeration != conds.t3.emotion_adv[0, 0, 0]:
            old = conds.t3
            conds.t3 = T3Cond(
                speaker_emb=old.speaker_emb,
                cond_prompt_speech_tokens=old.cond_prompt_speech_tokens,
                emotion_adv=exaggeration * torch.ones(1, 1, 1),
            ).to(device=self.device)
        tokens = model.tokenizer.text_to_tokens(punc_norm(text)).to(self.device)
        if cfg_weight > 0.0:
            tokens = torch.cat([tokens, tokens], dim=0)
        tokens = F.pad(tokens, (1, 0), value=model.t3.hp.start_text_token)
        tokens = F.pad(tokens, (0, 1), value=model.t3.hp.stop_text_token)
        sampling = Sampling(temperature=temperature, cfg_weight=cfg_weight, min_p=0.05, top_p=1.0)
        return conds.t3, tokens, sampling

    def generate_stream(
        self,
        text: str,
        conds: CondTensors,
        options: SynthOptions,
        max_tokens: int,
        cancel: threading.Event,
        first_chunk_tokens: int = 15,
        *,
        hurry: Callable[[], bool] | None = None,
        upcoming: Sequence[Upcoming] = (),
    ) -> Iterator[GenResult]:
        """Audio pieces while T3 still generates (fast path); the stock path yields one piece.

        T3 runs on its own thread (``daemon/token_stream.py``) while this one
        runs S3Gen, so the two work at the same time, and T3 goes on to the
        ``upcoming`` sentences (up to ``AHEAD`` of them) as soon as this one's
        tokens are done. While ``hurry()`` says a listener is waiting, tokens
        go to S3Gen in chunks of ``first_chunk_tokens`` (plus the flow's
        3-token lookahead), then growing ones (``chunk_schedule``), joined as
        ``daemon/s3gen_stream.py`` describes. Once it says no (the speaker
        holds enough), or when no one listens (``hurry`` None), the rest of
        the sentence is one piece, so S3Gen pays for the reference prompt
        once; and when T3 has already finished the following sentences (S3Gen
        is the slower of the two), an unseeded job's next sentences join that
        one S3Gen call and wait, made, for their own turn. Every piece is
        watermarked.
        """
        if self.engine_path != "fast" or self.fast_t3 is None:
            yield from super().generate_stream(text, conds, options, max_tokens, cancel)
            return
        import torch

        from .s3gen_stream import LOOKAHEAD, TOKEN_SAMPLES, StreamingS3Gen, chunk_schedule, steps_for, trim_prompt

        budget = max(1, int(max_tokens))
        key = _stream_key(text, conds, options, budget)
        made = self._made.pop(key, None)
        if made is not None:  # made with an earlier sentence's S3Gen call
            self._chain(conds, upcoming, cancel, after=None)
            yield made
            return
        self._made.clear()
        seed = options.seed if options.seed is not None else random.getrandbits(62)
        stream = self._ahead[0] if self._ahead and self._ahead[0].key == key else None
        if stream is None:
            self._drop_ahead()
            stream = self._token_stream(key, Upcoming(text, options, budget), conds, seed, cancel)
        else:
            self._ahead.pop(0)
        self._chain(conds, upcoming, cancel, after=stream)
        stream.start()
        torch.manual_seed(seed)  # HiFT's random phases draw from this thread's global stream
        model = self.model
        finished = False
        try:
            with torch.inference_mode():
                s3gen = model.s3gen
                s3 = StreamingS3Gen(
                    s3gen,
                    trim_prompt(self._conditionals(conds).gen, self.quality.prompt_seconds),
                    steps_for(self.quality, bool(s3gen.meanflow)),
                    watermark=lambda w: model.watermarker.apply_watermark(w, sample_rate=self.sample_rate),
                    generator=torch.Generator().manual_seed(seed),
                    # Room for the following sentences that may join this call (below).
                    max_tokens=budget + 3 + sum(u.budget + 3 for u in upcoming[:AHEAD] if options.seed is None),
                )
                size = chunk_schedule(first_chunk_tokens)
                streaming = hurry is not None and self._pieces_pay() and hurry()
                pending: list[int] = []
                chunk, count, t3_before = 0, 0, 0.0
                for token in stream:
                    count += 1
                    if token < S3GEN_VOCAB:  # chatterbox drops SOS/EOS and other out-of-range ids
                        pending.append(token)
                    if not streaming or len(pending) < size(chunk) + (LOOKAHEAD if chunk == 0 else 0):
                        continue
                    if hurry is None or not hurry():
                        streaming = False  # the speaker holds enough: the rest in one piece
                        continue
                    if cancel.is_set():
                        raise Cancelled()
                    s3_start = time.perf_counter()
                    audio = self._s3_push(stream, s3, pending)
                    s3_seconds = time.perf_counter() - s3_start
                    self._note_piece(s3_seconds, len(audio) / self.sample_rate)
                    t3_now = stream.t3_seconds
                    yield GenResult(audio, t3_now - t3_before, s3_seconds, count, final=False)
                    pending, count, chunk, t3_before = [], 0, chunk + 1, t3_now
                if cancel.is_set():
                    raise Cancelled()
                pending += self._end_pad()
                # Following sentences whose tokens are all made join this S3Gen call.
                joined: list[tuple[Hashable, list[int], float]] = []
                while options.seed is None and self._ahead and not streaming:
                    tokens = self._ahead[0].finished_tokens()
                    if tokens is None:
                        break
                    following = self._ahead.pop(0)
                    joined.append((following.key, tokens, following.t3_seconds))
                if joined:
                    self._chain(conds, upcoming[len(joined) :], cancel, after=None)
                own_end = len(s3.tokens) + len(pending)  # tokens of this sentence, all pieces
                s3_start = time.perf_counter()
                before = s3.samples_out
                following_tokens = [t for _, tokens, _ in joined for t in self._kept(tokens)]
                audio = self._s3_push(stream, s3, pending + following_tokens, final=True)
                s3_seconds = time.perf_counter() - s3_start
                finished = True
                # This sentence's audio ends at its last token (960 samples a token).
                cut = own_end * TOKEN_SAMPLES - before if joined else len(audio)
                bounds = [cut]
                for _, tokens, _ in joined:
                    bounds.append(bounds[-1] + len(self._kept(tokens)) * TOKEN_SAMPLES)
                bounds[-1] = len(audio)
                share = s3_seconds * cut / max(1, len(audio))
                for (following_key, tokens, t3_seconds), lo, hi in zip(joined, bounds[:-1], bounds[1:], strict=True):
                    part = audio[lo:hi]
                    self._made[following_key] = GenResult(
                        part, t3_seconds, s3_seconds * len(part) / max(1, len(audio)), len(tokens), final=True
                    )
                t3_seconds = stream.t3_seconds - t3_before
                yield GenResult(audio[:cut], t3_seconds, share, count, final=True)
        finally:
            if not finished:
                stream.drop()
                self._drop_ahead()

    def _pieces_pay(self) -> bool:
        """Whether small pieces bring sound sooner on this machine.

        A piece costs S3Gen a pass over the voice's whole reference. Where
        that takes longer than the piece plays (``piece_rtf`` above 1: a
        2-core CPU measured 1.7), the listener would hear a fragment and then
        wait for the rest, and the whole sentence in one pass comes sooner;
        where it takes less (a GPU), pieces win. Measured on the pieces made
        (the warm-up makes two), and again after ``PIECE_RECHECK_S`` so a
        machine that got quieter can earn them back.
        """
        if self.piece_rtf is None or self.piece_rtf < 1.0:
            return True
        return time.monotonic() - self._piece_measured_at > PIECE_RECHECK_S

    def _note_piece(self, s3_seconds: float, audio_seconds: float) -> None:
        if audio_seconds <= 0:
            return
        rtf = s3_seconds / audio_seconds
        self.piece_rtf = rtf if self.piece_rtf is None else 0.5 * self.piece_rtf + 0.5 * rtf
        self._piece_measured_at = time.monotonic()

    def _end_pad(self) -> list[int]:
        """Tokens chatterbox puts after a sentence's speech tokens (Turbo: 3 of silence)."""
        if self.variant != "turbo":
            return []
        from chatterbox.models.s3gen.const import S3GEN_SIL

        return [S3GEN_SIL] * 3

    def _kept(self, tokens: list[int]) -> list[int]:
        """A sentence's tokens as S3Gen takes them: out-of-range ids dropped, the end pad added."""
        return [t for t in tokens if t < S3GEN_VOCAB] + self._end_pad()

    def _chain(
        self, conds: CondTensors, upcoming: Sequence[Upcoming], cancel: threading.Event, after: TokenStream | None
    ) -> None:
        """Queue T3 runs for the next ``AHEAD`` sentences behind ``after`` (or behind those queued)."""
        known = {stream.key for stream in self._ahead} | set(self._made)
        last = self._ahead[-1] if self._ahead else after
        for nxt in upcoming[:AHEAD]:
            key = _stream_key(nxt.text, conds, nxt.options, nxt.budget)
            if key in known:
                continue
            seed = nxt.options.seed if nxt.options.seed is not None else random.getrandbits(62)
            stream = self._token_stream(key, nxt, conds, seed, cancel)
            if last is None:
                stream.start()
            else:
                last.then(stream)
            self._ahead.append(stream)
            last = stream

    def _token_stream(
        self, key: Hashable, sentence: Upcoming, conds: CondTensors, seed: int, cancel: threading.Event
    ) -> TokenStream:
        """A sentence's T3 run on its own thread, not yet started."""
        from .token_stream import TokenStream

        kwargs = self._generate_kwargs(sentence.options)

        def loop(stop: Any) -> Iterator[int]:
            return self._t3_loop(sentence.text, conds, kwargs, sentence.budget, stop, seed)

        return TokenStream(key, loop, cancel, threads=self._t3_threads)

    def _t3_loop(
        self, text: str, conds: CondTensors, kwargs: dict[str, Any], budget: int, stop: Any, seed: int
    ) -> Iterator[int]:
        """Our T3 loop's tokens for one sentence, from a generator of its own, the voice's prefix reused."""
        import torch

        t3_cond, text_tokens, sampling = self._t3_inputs(text, self._conditionals(conds), kwargs)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        run = self.fast_t3.turbo if self.variant == "turbo" else self.fast_t3.original
        return run(t3_cond, text_tokens, sampling, budget, stop, generator=generator, reuse_prefix=True)

    def _s3_push(self, stream: TokenStream, s3: Any, tokens: list[int], *, final: bool = False) -> Any:
        """S3Gen's next audio: on its share of the cores while T3 works, else on all of them."""
        t3_busy = stream.running or any(s.running for s in self._ahead)
        threads = min(self.pipeline_threads[1], self._cores()) if t3_busy else self._cores()
        self._s3_busy = True
        try:
            return self._on_threads(threads, lambda: s3.push(tokens, final=final))
        finally:
            self._s3_busy = False

    def _on_threads(self, threads: int, work: Callable[[], Any], *, inference: bool = True) -> Any:
        """``work()`` (under inference mode unless told not) on ``threads`` of torch's threads; on a CPU
        with more than one, on a thread of its own that ends with it.

        libgomp lets its idle workers spin (``GOMP_SPINCOUNT``: the next
        parallel region starts at once) only while the process holds no more
        OpenMP threads than cores; above that it spins 100 times and every
        region waits for a futex wake-up. A thread keeps the workers of the
        last team it ran until it ends. The worker thread lives as long as
        the daemon, so once it had run anything on two threads, its team and
        a T3 thread's were three threads on a 2-core CPU, and T3 alone took
        40 ms a token where the same loop on a thread of its own took 29.
        A short-lived thread per call (a few hundred microseconds, against
        S3Gen calls of a tenth of a second and more) leaves at most one team
        with a worker at a time. A CUDA device keeps the calling thread (its
        CUDA graphs belong to the worker thread).
        """
        import torch

        mode = torch.inference_mode(inference)
        if threads <= 1 or self.device != "cpu":
            torch.set_num_threads(max(1, threads))
            with mode:
                return work()
        torch.set_num_threads(1)  # this thread's own stray operations never make a team
        outcome: dict[str, Any] = {}

        def run() -> None:
            torch.get_num_threads()  # torch's lazy per-thread set-up first, so it cannot undo the next line
            torch.set_num_threads(threads)
            try:
                with mode:
                    outcome["value"] = work()
            except BaseException as exc:  # handed back to the caller's thread
                outcome["error"] = exc

        helper = threading.Thread(target=run, name="torch-call", daemon=True)
        helper.start()
        helper.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    @property
    def keeps_voice(self) -> bool:  # type: ignore[override]
        """Only the fast path keeps a voice's prefix."""
        return self.engine_path == "fast" and self.fast_t3 is not None

    def keep_voice(self, conds: CondTensors) -> None:
        """Prefill T3 with the voice's conditioning now, so its next sentence starts sooner (fast path).

        The voice prefix (``FastT3._prefill``) is kept from the last sentence
        spoken; the first sentence in a voice pays for the whole prefill
        (Turbo on a 2-core CPU: 0.8-1.1 s of its first sound, against 0.15 s
        with the prefix kept). The default voice's prefix is made here, when
        the model is ready and when that voice is prepared, by running T3's
        loop for one token. It is kept only if the sentence's conditioning is
        the very same (same voice, same exaggeration), as in any reuse.
        """
        if self.engine_path != "fast" or self.fast_t3 is None or self.model is None:
            return
        self._drop_ahead()  # one T3 loop at a time: FastT3 has one KV cache
        first = self._t3_loop("Hello.", conds, self._generate_kwargs(SynthOptions()), 1, None, 0)
        self._on_threads(self._cores(), lambda: next(first))  # the prefill happens at the first token

    def _t3_threads(self) -> int:
        """T3's threads for its next token: its share while S3Gen works, else all it may have."""
        return min(self.pipeline_threads[0], self._cores()) if self._s3_busy else self._cores()

    def _cores(self) -> int:
        """Threads for a network working alone: ours, fewer while other programs keep cores busy."""
        share = self._cpu_share
        if share is None:
            return self._default_threads
        return min(self._default_threads, share.free_cores())

    def _drop_ahead(self) -> None:
        """Stop the sentences made ahead: no longer wanted (another job came first, a reload)."""
        ahead, self._ahead = self._ahead, []
        self._made.clear()
        for stream in ahead:
            stream.drop()

    def warmup(self) -> None:
        """Prepare conditionals from a synthetic clip, speak two words, and (fast path) a short paragraph.

        The first sentence comes in pieces: they measure what a streamed
        piece costs on this machine (``_pieces_pay``). The next ones are made
        behind it, as a paragraph's sentences are: their seconds of work per
        second of speech are ``steady_pace`` (``_measure_steady_pace``), which
        the speaker plans its pre-buffer by until real sentences have been
        measured. Without it a fresh daemon's first paragraph planned by its
        first sentence's pace (1.7 on a 2-core CPU, against 1.26 later) and
        started 1.3 s later than the same paragraph a minute after.

        This also pays a process's first-call costs (lazy kernels, mel filters,
        allocator) before the first real request. Measured again at stop 18
        (2-core CPU, torch 2.9.1, test checkpoint, original): the warm-up took
        9.4 s, of which the first ``prepare_conditionals`` was 1.5 s against
        about 1.1 s later, and a second warm-up in the same process took 8.4 s.
        So on that CPU it saves about 1 s of the first request and delays
        ``ready`` by 9 s. (An earlier measurement found 16 s for the first prepare.)
        """
        import numpy as np

        rate = 24_000
        t = np.arange(int(6.0 * rate)) / rate
        # A gliding tone with a syllable-rate envelope: sound, not silence.
        clip = 0.3 * np.sin(2 * np.pi * (140 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
        clip *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
        conds = self.prepare(_wav(clip.astype(np.float32), rate).getvalue())
        self.generate("Hello.", conds, SynthOptions(seed=0), 4, threading.Event())
        if self.engine_path == "fast":
            self.steady_pace = self._measure_steady_pace(conds)

    def _measure_steady_pace(self, conds: CondTensors) -> float | None:
        """Make four sentences as a paragraph's are made; the slower pace of the middle two.

        Each measured sentence is made behind the one before (its T3 ran
        ahead during that one's S3Gen) and beside the next one's T3, as in
        a paragraph. One sentence's figure wandered by 10 % from one start
        to the next (1.15 to 1.26 on a 2-core CPU, measured before one
        OpenMP team at a time; a paragraph's sentences then settled at
        1.20-1.27, now 1.03-1.15), and a figure below the true pace
        makes the speaker start too soon and stop inside a sentence, so the
        slower of two is kept.
        """
        from .s3gen_stream import LOOKAHEAD

        cancel = threading.Event()
        texts = (
            "Hello there.",
            "This sentence is made while the one before it plays.",
            "So is this one, behind it.",
            "And a last one.",
        )
        options = SynthOptions(seed=0)
        budgets = (15 + LOOKAHEAD + 4,) + (WARMUP_SENTENCE_TOKENS,) * 3
        queued = [Upcoming(text, options, budget) for text, budget in zip(texts, budgets, strict=True)]
        paces = []
        try:
            for number, job in enumerate(queued[:3]):
                # The first in two pieces: its first calls, and what a piece costs here.
                hurry = (lambda: True) if number == 0 else None
                start, audio = time.perf_counter(), 0
                for result in self.generate_stream(
                    job.text, conds, options, job.budget, cancel, hurry=hurry, upcoming=queued[number + 1 :]
                ):
                    audio += len(result.samples)
                if number and audio:
                    paces.append((time.perf_counter() - start) / (audio / self.sample_rate))
        finally:
            self._drop_ahead()  # the last sentence was there to keep T3 busy, as in a paragraph
        return max(paces) if paces else None

    # -- description ---------------------------------------------------------------

    def languages(self) -> list[str]:
        """chatterbox's own list for the multilingual model; English for the others."""
        if self.variant != "multilingual":
            return ["en"]
        from chatterbox.mtl_tts import SUPPORTED_LANGUAGES

        return sorted(SUPPORTED_LANGUAGES)

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


def _wav(samples: Any, rate: int) -> io.BytesIO:
    """Samples as an in-memory float WAV, ready to be read."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV", subtype="FLOAT")
    buf.seek(0)
    return buf


def _stream_key(text: str, conds: CondTensors, options: SynthOptions, budget: int) -> Hashable:
    """Which sentence a T3 run is for: a run made ahead is used only for the very same one."""
    return (text, id(conds), options, budget)


_PROCESS_THREADS: int | None = None


def process_threads() -> int:
    """torch's own intra-op thread count for this process, read before we first change it.

    The streamed path sets its threads' counts (``pipeline_threads``), and
    torch hands the last count set to every thread that has not run an op
    yet, so a later load's loader thread would read that instead. Read once,
    at the first load, before anything here calls ``set_num_threads``.
    """
    global _PROCESS_THREADS
    if _PROCESS_THREADS is None:
        import torch

        _PROCESS_THREADS = torch.get_num_threads()
    return _PROCESS_THREADS


def pipeline_threads(cores: int) -> tuple[int, int]:
    """torch threads for T3's thread and S3Gen's when they run at the same time.

    ``CHATTERBOX_TRAY_PIPELINE_THREADS`` ("1+1", "2+2") overrides it for a
    benchmark. The default was picked by measurement (docs/engine.md, "T3
    and S3Gen at the same time").
    """
    wanted = os.environ.get("CHATTERBOX_TRAY_PIPELINE_THREADS", "")
    if "+" in wanted:
        t3, s3 = (max(1, int(n)) for n in wanted.split("+", 1))
        return t3, s3
    return max(1, cores // 2), max(1, cores - cores // 2)
