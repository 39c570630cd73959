"""S3Gen's cost knobs: flow solver steps and reference-prompt length, against chatterbox's own values.

For one variant's S3Gen (random-weight checkpoint), one fixed token sequence
and one noise draw, it decodes with every (steps, prompt seconds) pair and
prints the seconds each took and how close its log-mel spectrogram is to the
reference setting's (chatterbox's steps, whole prompt): cosine similarity
and mean absolute log-mel difference. Random weights: the costs are real, the
similarities only say how much each knob moves the output.

Run: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.s3gen_quality_bench --variant original``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _s3gen(variant: str) -> tuple[object, dict]:
    from chatterbox.models.s3gen import S3Gen
    from safetensors.torch import load_file

    from tests.support.checkpoint import ensure_checkpoint

    folder = ensure_checkpoint(variant)
    meanflow = variant == "turbo"
    s3gen = S3Gen(meanflow=meanflow)
    name = "s3gen_meanflow.safetensors" if meanflow else "s3gen.safetensors"
    s3gen.load_state_dict(load_file(folder / name), strict=False)
    s3gen.eval()
    rate = 24_000
    seconds = 15.0 if meanflow else 10.0  # chatterbox keeps up to 15 s (Turbo) / 10 s (original) of prompt
    t = np.arange(int(seconds * rate)) / rate
    clip = torch.from_numpy((0.3 * np.sin(2 * np.pi * (140 + 30 * np.sin(t)) * t)).astype(np.float32)).unsqueeze(0)
    with torch.inference_mode():
        ref = s3gen.embed_ref(clip, rate)
    return s3gen, ref


def _logmel(wave: np.ndarray) -> torch.Tensor:
    from chatterbox.models.s3gen.utils.mel import mel_spectrogram

    # chatterbox's mel_spectrogram is already logarithmic (log of the mel magnitudes clamped at 1e-5).
    return mel_spectrogram(torch.from_numpy(wave).unsqueeze(0))


def main() -> None:
    from chatterbox_tray.daemon.s3gen_stream import StreamingS3Gen, trim_prompt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="original", choices=("original", "turbo"))
    parser.add_argument("--tokens", type=int, default=50, help="speech tokens decoded (25 a second)")
    args = parser.parse_args()
    s3gen, ref = _s3gen(args.variant)
    tokens = torch.randint(0, 6561, (args.tokens,), generator=torch.Generator().manual_seed(3)).tolist()
    own = 2 if args.variant == "turbo" else 10
    steps_list = [2, 1] if args.variant == "turbo" else [10, 5, 2]
    prompt_seconds = [None, 6.0, 3.0]
    results = {}
    for steps in steps_list:
        for prompt in prompt_seconds:
            stream = StreamingS3Gen(
                s3gen,
                trim_prompt(ref, prompt),
                steps,
                generator=torch.Generator().manual_seed(7),
                max_tokens=args.tokens,
            )
            start = time.perf_counter()
            wave = stream.push(tokens, final=True)
            results[steps, prompt] = (time.perf_counter() - start, _logmel(wave))
    base_s, base = results[own, None]
    audio = args.tokens / 25
    full = ref["prompt_token"].shape[1] / 25
    print(f"\nS3Gen {args.variant}: {args.tokens} tokens ({audio:.1f} s of audio), whole prompt {full:.1f} s")
    print(f"{'steps':>5} {'prompt':>8} {'seconds':>8} {'s/s audio':>9} {'vs best':>8} {'cos sim':>8} {'|dlogmel|':>9}")
    for (steps, prompt), (secs, mel) in results.items():
        n = min(mel.shape[-1], base.shape[-1])
        a, b = mel[..., :n].flatten(), base[..., :n].flatten()
        cos = torch.nn.functional.cosine_similarity(a - a.mean(), b - b.mean(), dim=0).item()
        label = "whole" if prompt is None else f"{prompt:.0f} s"
        print(
            f"{steps:5d} {label:>8} {secs:8.2f} {secs / audio:9.2f} {base_s / secs:7.2f}x "
            f"{cos:8.3f} {(a - b).abs().mean().item():9.3f}"
        )


if __name__ == "__main__":
    main()
