"""S3Gen in chunks: speech tokens to audio while T3 is still generating.

chatterbox's ``S3Gen.inference`` turns a whole sentence's tokens into a
waveform at once. Here tokens arrive in chunks and each chunk's audio comes
out as soon as it is decoded:

* The flow (tokens -> mel) runs over the reference prompt, ``context`` tokens
  already spoken, and the new tokens. Its encoder attends over everything it
  is given, so the frames of the last ``LOOKAHEAD`` tokens are left for the
  next chunk (the flow's own ``finalize=False`` rule), and the frames just
  before the join are recomputed with context on both sides.
* The flow's starting noise is drawn once per utterance and indexed by
  absolute mel frame, so a frame gets the same noise in every chunk that
  covers it: the chunks agree where they overlap, up to what the new tokens
  change through attention (measured: docs/engine.md).
* HiFT (mel -> wave) vocodes each chunk with ``HIFT_CONTEXT`` frames of mel
  before the join and the previous chunk's excitation source there (HiFT's
  own ``cache_source``), so the sine excitation's phase runs on.
* The last ``CROSSFADE`` samples of each chunk are held back and
  cross-faded (equal-power) with the next chunk's version of them.
* Every emitted piece is watermarked (the same Perth watermarker chatterbox
  applies to whole sentences).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Samples per mel frame (24 kHz, 50 frames/s) and mel frames per token.
HOP = 480
TOKEN_MEL = 2
#: Samples per speech token.
TOKEN_SAMPLES = HOP * TOKEN_MEL
#: Tokens the flow needs after a frame before it is final (its pre-lookahead).
LOOKAHEAD = 3
#: Mel frames re-vocoded before each join (HiFT's convolutions reach ~this far).
HIFT_CONTEXT = 4
#: Samples cross-faded at each join (20 ms).
CROSSFADE = 480


@dataclass(frozen=True)
class Quality:
    """S3Gen's cost knobs: flow solver steps and how much reference prompt it reads."""

    name: str
    #: Euler steps of the flow; ``None`` = chatterbox's own (10 original, 2 Turbo meanflow).
    steps: int | None
    #: Seconds of the reference prompt kept (its end); ``None`` = all of it.
    prompt_seconds: float | None


#: "best" is chatterbox's own values. The others were chosen from
#: bench/s3gen_quality_bench.py's measurements (docs/engine.md).
QUALITIES = {
    "best": Quality("best", None, None),
    "balanced": Quality("balanced", 5, 6.0),
    "fast": Quality("fast", 2, 3.0),
}


def steps_for(quality: Quality, meanflow: bool) -> int:
    """Flow steps for a quality; Turbo's meanflow flow never needs more than its own 2."""
    own = 2 if meanflow else 10
    if quality.steps is None:
        return own
    return min(quality.steps, own) if meanflow else quality.steps


def trim_prompt(ref: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """Keep the last ``seconds`` of S3Gen's reference prompt (tokens 25/s, mel frames 50/s)."""
    if seconds is None:
        return ref
    keep = int(seconds * 25)
    if ref["prompt_token"].shape[1] <= keep:
        return ref
    return _prompt_part(ref, keep, last=True)


def aligned_prompt(ref: dict[str, Any]) -> dict[str, Any]:
    """The reference prompt with exactly ``TOKEN_MEL`` mel frames per token.

    chatterbox warns "Reference mel length is not equal to 2 * reference
    token length" and keeps going with an odd frame over; its whole-sentence
    flow then returns one frame less than twice the new tokens. A stream
    counts frames by tokens, so the prompt is cut to whole tokens here (at
    most one frame of the reference, 20 ms, is dropped).
    """
    tokens = int(ref["prompt_token"].shape[1])
    frames = int(ref["prompt_feat"].shape[1])
    if frames == TOKEN_MEL * tokens:
        return ref
    return _prompt_part(ref, min(tokens, frames // TOKEN_MEL), last=False)


def _prompt_part(ref: dict[str, Any], keep: int, last: bool) -> dict[str, Any]:
    """The reference prompt cut to ``keep`` tokens (the last ones, else the first) and their mel frames."""
    frames = keep * TOKEN_MEL
    out = dict(ref)
    out["prompt_token"] = ref["prompt_token"][:, -keep:] if last else ref["prompt_token"][:, :keep]
    out["prompt_token_len"] = torch.tensor([keep], dtype=ref["prompt_token_len"].dtype)
    out["prompt_feat"] = ref["prompt_feat"][:, -frames:] if last else ref["prompt_feat"][:, :frames]
    if ref.get("prompt_feat_len") is not None:
        out["prompt_feat_len"] = torch.tensor([frames])
    return out


class InBFloat16(torch.nn.Module):
    """One of S3Gen's networks held in bfloat16, called by float32 code.

    Floating inputs are cast in and outputs cast back, so everything around
    it (chatterbox's flow, the Euler steps, our stream) keeps float32 and
    never sees a bfloat16 tensor: the weights take half the memory and the
    CPU's bfloat16 kernels (AMX, AVX-512 BF16) do the matrix work.
    """

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(torch.bfloat16)
        #: chatterbox casts the estimator's inputs to ``estimator.dtype``: they stay float32.
        self.dtype = torch.float32

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.inner(
            *(_cast(a, torch.bfloat16) for a in args), **{k: _cast(v, torch.bfloat16) for k, v in kwargs.items()}
        )
        if isinstance(out, tuple):
            return tuple(_cast(o, torch.float32) for o in out)
        return _cast(out, torch.float32)


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    return value


def use_bfloat16(s3gen: Any) -> list[tuple[Any, str]]:
    """Run S3Gen's heavy networks in bfloat16 on the CPU; return the instance attributes set.

    The flow's encoder and its estimator become :class:`InBFloat16`; HiFT's
    convolutions (``decode``) run under bfloat16 autocast, with its inverse
    STFT in float32 (torch's iSTFT refuses bfloat16). HiFT's pitch
    predictor and sine source stay float32: a bfloat16 pitch would be off by
    up to half a hertz. Measured (bench/s3gen_precision_bench.py,
    docs/engine.md): about 2x faster, the mel within about 1 % of float32
    (another seed moves it by 110 %), the wave within about 3 % (another seed:
    35 %). Only the fast path at a precision other than ``float32`` does
    this; ``float32`` stays stock's exact numbers.
    """
    flow = s3gen.flow
    flow.encoder = InBFloat16(flow.encoder)
    flow.decoder.estimator = InBFloat16(flow.decoder.estimator)
    hift = s3gen.mel2wav
    decode, istft = hift.decode, hift._istft

    def decode_in_bfloat16(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return decode(x, s).float()

    def istft_in_float32(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        return istft(magnitude.float(), phase.float())

    # Instance attributes shadow the methods (the engine removes them on unload).
    object.__setattr__(hift, "decode", decode_in_bfloat16)
    object.__setattr__(hift, "_istft", istft_in_float32)
    return [(hift, "decode"), (hift, "_istft")]


def chunk_schedule(first: int, growth: float = 1.6, largest: int = 100) -> Callable[[int], int]:
    """Tokens in chunk ``i``: a small first one for early sound, then larger ones (fewer prompt passes)."""
    return lambda i: min(largest, round(first * growth**i))


class StreamingS3Gen:
    """One utterance's S3Gen state: push token chunks, get audio pieces back.

    ``push(tokens, final)`` takes the new speech tokens (valid ids only) and
    returns the samples that are ready; after ``final=True`` all of them
    have been returned. Feeding every token in one final push gives the
    whole-sentence result (same noise, no joins), which is what the join
    tests compare against.
    """

    def __init__(
        self,
        s3gen: Any,
        ref: dict[str, Any],
        steps: int,
        context: int = 50,
        watermark: Callable[[np.ndarray], np.ndarray] | None = None,
        generator: torch.Generator | None = None,
        max_tokens: int = 4096,
    ) -> None:
        self.s3gen = s3gen
        self.flow = s3gen.flow
        device = s3gen.device
        self.ref = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in aligned_prompt(ref).items()}
        self.steps = steps
        self.context = context
        self.watermark = watermark
        self.prompt_frames = int(self.ref["prompt_feat"].shape[1])
        # One draw for the utterance, indexed by absolute frame (see module doc).
        # The new frames' noise is drawn first, so it does not depend on how
        # much prompt is kept (quality comparisons see the same noise).
        frames = TOKEN_MEL * (max_tokens + LOOKAHEAD)
        gen_noise = torch.randn(1, 80, frames, generator=generator)
        prompt_noise = torch.randn(1, 80, self.prompt_frames, generator=generator)
        self.noise = torch.cat([prompt_noise, gen_noise], dim=2).to(device=device, dtype=s3gen.dtype)
        self.tokens: list[int] = []
        self.frames_done = 0  # mel frames whose audio is emitted or held in the tail
        self.samples_out = 0
        self.tail = np.zeros(0, dtype=np.float32)
        self.source: torch.Tensor | None = None  # HiFT excitation of the last call
        self.source_start = 0  # its first sample's absolute index
        self.finished = False
        #: When set, the mel frames each push contributes are kept in ``mels`` (tests, benches).
        self.keep_mels = False
        self.mels: list[torch.Tensor] = []

    # -- the flow, with our noise ----------------------------------------------------

    def _mel(self, start: int, final: bool) -> torch.Tensor:
        """Mel frames for tokens[start:] (the lookahead's left out unless final), with the prompt."""
        flow = self.flow
        ref = self.ref
        device = self.s3gen.device
        token = torch.tensor([self.tokens[start:]], dtype=torch.long, device=device)
        token_len = torch.tensor([token.shape[1]], device=device)
        embedding = torch.nn.functional.normalize(torch.atleast_2d(ref["embedding"]), dim=1)
        embedding = flow.spk_embed_affine_layer(embedding)
        prompt_token = ref["prompt_token"].to(device)
        token = torch.concat([prompt_token, token], dim=1)
        token_len = ref["prompt_token_len"].to(device) + token_len
        from chatterbox.models.s3gen.utils.mask import make_pad_mask

        mask = (~make_pad_mask(token_len)).unsqueeze(-1).to(embedding)
        x = flow.input_embedding(token.long()) * mask
        h, _ = flow.encoder(x, token_len)
        if not final:
            h = h[:, : -flow.pre_lookahead_len * flow.token_mel_ratio]
        h = flow.encoder_proj(h)
        prompt = self.prompt_frames
        frames = h.shape[1]
        cond = torch.zeros([1, frames, flow.output_size], device=device, dtype=h.dtype)
        cond[:, :prompt] = ref["prompt_feat"]
        cond = cond.transpose(1, 2)
        mask = torch.ones(1, 1, frames, device=device, dtype=h.dtype)
        gen0 = prompt + TOKEN_MEL * start
        z = torch.cat([self.noise[:, :, :prompt], self.noise[:, :, gen0 : gen0 + frames - prompt]], dim=2)
        decoder = flow.decoder
        mu = h.transpose(1, 2).contiguous()
        t_span = torch.linspace(0, 1, self.steps + 1, device=device, dtype=mu.dtype)
        if self.s3gen.meanflow:
            feat = decoder.basic_euler(z, t_span=t_span, mu=mu, mask=mask, spks=embedding, cond=cond)
        else:
            if decoder.t_scheduler == "cosine":
                t_span = 1 - torch.cos(t_span * 0.5 * torch.pi)
            feat = decoder.solve_euler(z, t_span=t_span, mu=mu, mask=mask, spks=embedding, cond=cond)
        return feat[:, :, prompt:]

    # -- pushing chunks ---------------------------------------------------------------

    @torch.inference_mode()
    def push(self, new_tokens: list[int], final: bool = False) -> np.ndarray:
        """Add tokens; return the audio now ready (empty when they only fill the lookahead)."""
        if self.finished:
            raise RuntimeError("utterance already finished")
        self.tokens.extend(int(t) for t in new_tokens)
        n = len(self.tokens)
        end_frame = TOKEN_MEL * (n if final else max(0, n - LOOKAHEAD))
        if end_frame <= self.frames_done and not final:
            return np.zeros(0, dtype=np.float32)
        self.finished = final
        if n == 0:
            return self._emit(np.zeros(0, dtype=np.float32), final)
        # Left context for the flow: whole tokens before the first new frame.
        start = max(0, self.frames_done // TOKEN_MEL - self.context)
        mel = self._mel(start, final)  # frames from TOKEN_MEL*start to end_frame
        assert mel.shape[2] == end_frame - TOKEN_MEL * start, (mel.shape, end_frame, start)
        if self.keep_mels:
            self.mels.append(mel[:, :, self.frames_done - TOKEN_MEL * start :].float().cpu())
        voc0 = max(TOKEN_MEL * start, self.frames_done - HIFT_CONTEXT)
        speech_feat = mel[:, :, voc0 - TOKEN_MEL * start :].to(self.s3gen.dtype)
        cache = torch.zeros(1, 1, 0, device=speech_feat.device, dtype=speech_feat.dtype)
        if self.source is not None:
            lo = voc0 * HOP - self.source_start
            hi = self.frames_done * HOP - self.source_start
            if lo >= 0:
                cache = self.source[:, :, lo:hi]
        wav, source = self.s3gen.mel2wav.inference(speech_feat=speech_feat, cache_source=cache)
        self.source, self.source_start = source, voc0 * HOP
        wav = wav[0].float().cpu().numpy()
        if voc0 == 0:
            fade = self.s3gen.trim_fade.float().cpu().numpy()
            wav[: len(fade)] *= fade[: len(wav)]
        # wav covers absolute samples [voc0*HOP, end_frame*HOP); the tail held
        # back covers [frames_done*HOP - len(tail), frames_done*HOP).
        join = self.frames_done * HOP - len(self.tail)
        piece = wav[join - voc0 * HOP :]
        if len(self.tail):
            k = len(self.tail)
            ramp = np.sin(0.5 * math.pi * (np.arange(k, dtype=np.float32) + 0.5) / k)
            piece = piece.copy()
            piece[:k] = self.tail * np.sqrt(1.0 - ramp**2) + piece[:k] * ramp
        self.frames_done = end_frame
        return self._emit(piece, final)

    def _emit(self, piece: np.ndarray, final: bool) -> np.ndarray:
        if final:
            out, self.tail = piece, np.zeros(0, dtype=np.float32)
        else:
            hold = min(CROSSFADE, len(piece))
            out, self.tail = piece[: len(piece) - hold], piece[len(piece) - hold :].copy()
        if self.watermark is not None and len(out):
            out = self.watermark(out)
        self.samples_out += len(out)
        return np.asarray(out, dtype=np.float32)
