"""S3Gen in float32 against bfloat16 (``use_bfloat16``), side by side in one run.

For each variant's S3Gen (random-weight checkpoint), one fixed token
sequence, one noise draw and one reference prompt, it decodes the whole
sentence at 1 and at 2 torch threads, float32 then bfloat16, and prints the
seconds each took (best of ``--rounds``) and how far bfloat16 moves the
output: relative error of the flow's mel and of the wave, and the mean
absolute log-mel difference of the wave. The same distances for float32 with
another seed say how large they are: a draw of the noise changes the sound
more than bfloat16 does. Random weights: the costs are real, the distances
only say how much the number format moves the output.

Run alone (nothing else on the CPU): ``uv run python -m bench.s3gen_precision_bench``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.s3gen_quality_bench import _logmel, _s3gen


def _decode(s3gen: object, ref: dict, tokens: list[int], seed: int) -> tuple[float, torch.Tensor, np.ndarray]:
    from chatterbox_tray.daemon.s3gen_stream import QUALITIES, StreamingS3Gen, steps_for

    s3 = StreamingS3Gen(
        s3gen,
        ref,
        steps_for(QUALITIES["best"], bool(s3gen.meanflow)),
        generator=torch.Generator().manual_seed(seed),
        max_tokens=len(tokens),
    )
    s3.keep_mels = True
    torch.manual_seed(seed)  # HiFT's phases
    start = time.perf_counter()
    wave = s3.push(tokens, final=True)
    return time.perf_counter() - start, s3.mels[0], wave


def _rel(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return float((a - b).norm() / b.norm())


def main() -> None:
    from chatterbox_tray.daemon.s3gen_stream import use_bfloat16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="turbo,original")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to time")
    parser.add_argument("--tokens", type=int, default=50, help="speech tokens decoded (25 a second)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    thread_counts = [int(n) for n in args.threads.split(",")]
    print(f"{torch.get_num_threads()} cores seen by torch; {args.tokens} tokens; best of {args.rounds}")
    print("| variant | threads | float32 s | bfloat16 s | speed-up | mel rel. err | wave rel. err | log-mel diff |")
    print("|---|---|---|---|---|---|---|---|")
    seeds: list[str] = []
    for variant in args.variants.split(","):
        s3gen, ref = _s3gen(variant)
        tokens = torch.randint(0, 6561, (args.tokens,), generator=torch.Generator().manual_seed(3)).tolist()
        timings: dict[tuple[str, int], float] = {}
        outputs: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
        with torch.inference_mode():
            for threads in thread_counts:
                torch.set_num_threads(threads)
                _decode(s3gen, ref, tokens, 1)  # warm
                runs = [_decode(s3gen, ref, tokens, 1) for _ in range(args.rounds)]
                timings["float32", threads] = min(r[0] for r in runs)
                outputs["float32"] = runs[0][1], runs[0][2]
            _, other_mel, other_wave = _decode(s3gen, ref, tokens, 2)
            use_bfloat16(s3gen)
            for threads in thread_counts:
                torch.set_num_threads(threads)
                _decode(s3gen, ref, tokens, 1)
                runs = [_decode(s3gen, ref, tokens, 1) for _ in range(args.rounds)]
                timings["bfloat16", threads] = min(r[0] for r in runs)
                outputs["bfloat16"] = runs[0][1], runs[0][2]
        mel32, wave32 = outputs["float32"]
        mel16, wave16 = outputs["bfloat16"]
        logmel = float((_logmel(wave16) - _logmel(wave32)).abs().mean())
        for threads in thread_counts:
            f32, b16 = timings["float32", threads], timings["bfloat16", threads]
            print(
                f"| {variant} | {threads} | {f32:.3f} | {b16:.3f} | {f32 / b16:.2f}x "
                f"| {_rel(mel16, mel32):.4f} | {_rel(wave16, wave32):.4f} | {logmel:.4f} |"
            )
        other_logmel = float((_logmel(other_wave) - _logmel(wave32)).abs().mean())
        seeds.append(
            f"{variant}, float32, another seed: mel rel. diff {_rel(other_mel, mel32):.4f}, "
            f"wave rel. diff {_rel(other_wave, wave32):.4f}, log-mel diff {other_logmel:.4f}"
        )
    print()
    print("For scale (what a different noise draw does):")
    for line in seeds:
        print(f"- {line}")


if __name__ == "__main__":
    main()
