"""S3Gen in bfloat16 (``use_bfloat16``) against float32, on the real Turbo S3Gen.

The random-weight checkpoint's S3Gen decodes one fixed token sequence with
one noise draw in float32, then again after ``use_bfloat16``. The output must
move (the conversion happened) but only a little: far less than another noise
draw moves it (bench/s3gen_precision_bench.py measures both). chatterbox's own
``S3Gen.inference``, which the stock-shaped calls use, must still work on the
converted model, and the model must still look float32 to its callers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chatterbox_tray.daemon.s3gen_stream import StreamingS3Gen, use_bfloat16
from tests.support.checkpoint import ensure_checkpoint

pytestmark = pytest.mark.integration

TOKENS = 40


def _decode(s3gen: object, ref: dict, tokens: list[int], seed: int) -> tuple[torch.Tensor, np.ndarray]:
    stream = StreamingS3Gen(s3gen, ref, 2, generator=torch.Generator().manual_seed(seed), max_tokens=TOKENS)
    stream.keep_mels = True
    torch.manual_seed(seed)
    with torch.inference_mode():
        wave = stream.push(tokens, final=True)
    return stream.mels[0], wave


def _rel(a: object, b: object) -> float:
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return float((a - b).norm() / b.norm())


def test_bfloat16_moves_the_output_far_less_than_another_seed() -> None:
    from chatterbox.models.s3gen import S3Gen
    from safetensors.torch import load_file

    folder = ensure_checkpoint("turbo")
    s3gen = S3Gen(meanflow=True)
    s3gen.load_state_dict(load_file(folder / "s3gen_meanflow.safetensors"), strict=False)
    s3gen.eval()
    rate = 24_000
    t = np.arange(int(3.0 * rate)) / rate
    clip = torch.from_numpy((0.3 * np.sin(2 * np.pi * 140 * t)).astype(np.float32)).unsqueeze(0)
    with torch.inference_mode():
        ref = s3gen.embed_ref(clip, rate)
    tokens = torch.randint(0, 6561, (TOKENS,), generator=torch.Generator().manual_seed(3)).tolist()

    mel32, wave32 = _decode(s3gen, ref, tokens, 1)
    other_mel, other_wave = _decode(s3gen, ref, tokens, 2)
    patched = use_bfloat16(s3gen)
    mel16, wave16 = _decode(s3gen, ref, tokens, 1)

    assert {name for _, name in patched} == {"decode", "_istft"}
    assert s3gen.dtype == torch.float32  # callers keep handing it float32
    assert s3gen.flow.encoder.inner.embed.out[0].weight.dtype == torch.bfloat16
    assert len(wave16) == len(wave32) == TOKENS * 960
    mel_err, wave_err = _rel(mel16, mel32), _rel(wave16, wave32)
    assert 0 < mel_err < 0.05, mel_err
    assert 0 < wave_err < 0.1, wave_err
    assert mel_err < _rel(other_mel, mel32) / 10
    assert wave_err < _rel(other_wave, wave32) / 4

    # chatterbox's own whole-sentence call still runs on the converted model
    with torch.inference_mode():
        wav, _ = s3gen.inference(speech_tokens=torch.tensor([tokens]), ref_dict=ref)
    assert wav.dtype == torch.float32 and wav.shape[-1] > 0 and torch.isfinite(wav).all()
