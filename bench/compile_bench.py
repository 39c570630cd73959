"""T3's decode step on a CPU: eager (what the daemon runs) against ``torch.compile``, in one run.

The daemon's step (``FastT3.step``) slices the KV cache to the current
length, so its shapes change every token. ``FastT3.step_static`` is the
fixed-shape step written for CUDA graphs (the cache window is a bucket, a
mask hides the unwritten slots): that one ``torch.compile`` can specialise
once and reuse for every token. This bench measures, on the same loaded T3,
the same prompt and the same token embeddings, interleaved round by round so
a busy machine slows every candidate alike:

* eager ``step`` (the daemon's path today);
* eager ``step_static`` (to separate the bucket's extra attention work);
* ``torch.compile(step_static)`` (Inductor, C++ kernels on a CPU), with its
  compile time and its largest relative difference from eager.

Run: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.compile_bench
--variant turbo --steps 40``. The transformer runs in the CPU default
precision (bfloat16) unless ``--precision float32``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from bench.t3_precision_bench import _inputs, _t3
from chatterbox_tray.daemon.precision import convert_transformer
from chatterbox_tray.daemon.t3_decode import FastT3, cache_capacity


def _prompt_embeds(fast: FastT3, cond: Any, text_tokens: torch.Tensor) -> torch.Tensor:
    """The prompt our loop prefills (CFG's two rows for the original), as ``teacher_forced_logits`` builds it."""
    t3, hp = fast.t3, fast.t3.hp
    start = hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(
        t3_cond=cond, text_tokens=text_tokens, speech_tokens=start, cfg_weight=0.0 if fast.is_gpt else 0.5
    )
    return embeds


def _run(step: Callable[[torch.Tensor, int], torch.Tensor], fast: FastT3, prompt: int, embeds: list[torch.Tensor]):
    """Every step from the end of the prompt; returns (seconds per step, last hidden states)."""
    assert fast.kv is not None
    fast.kv.length = prompt
    times, outs = [], []
    for i, embed in enumerate(embeds):
        start = time.perf_counter()
        out = step(embed, prompt + i)
        times.append(time.perf_counter() - start)
        outs.append(out.float())
    return times, torch.cat(outs, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="turbo", choices=("original", "turbo"))
    parser.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--freezing", action="store_true", help="Inductor's freezing (weights as constants, prepacked)")
    parser.add_argument("--text", default="The quick brown fox jumps over the lazy dog near the river bank.")
    args = parser.parse_args()
    if args.freezing:
        import torch._inductor.config

        torch._inductor.config.freezing = True
    torch.manual_seed(0)
    t3, folder = _t3(args.variant)
    cond, text_tokens = _inputs(t3, folder, args.variant, args.text)
    tfmr = t3.tfmr
    if args.precision != "float32":
        tfmr = convert_transformer(copy.deepcopy(t3.tfmr), args.precision, "cpu")
    fast = FastT3(t3, tfmr)

    with torch.inference_mode():
        prompt_embeds = _prompt_embeds(fast, cond, text_tokens)
        prompt = prompt_embeds.shape[1]
        bucket = cache_capacity(prompt + args.steps + 1)
        fast._prefill(prompt_embeds, bucket)
        batch = prompt_embeds.shape[0]
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(0, 6561, (args.steps,), generator=gen)
        dtype = fast._dtype()
        embeds = [t3.speech_emb(i.view(1, 1)).expand(batch, -1, -1).to(dtype).contiguous() for i in ids]

        def eager(x: torch.Tensor, pos: int) -> torch.Tensor:
            return fast.step(x)

        def static(x: torch.Tensor, pos: int) -> torch.Tensor:
            return fast.step_static(x, torch.tensor([pos]), bucket)

        compiled_step = torch.compile(fast.step_static, dynamic=False)

        def compiled(x: torch.Tensor, pos: int) -> torch.Tensor:
            return compiled_step(x, torch.tensor([pos]), bucket)

        start = time.perf_counter()
        _run(compiled, fast, prompt, embeds[:2])  # compile (and a recompile, if any) happen here
        compile_s = time.perf_counter() - start
        _run(eager, fast, prompt, embeds[:2])

        candidates = {"eager step (daemon)": eager, "eager step_static": static, "compiled step_static": compiled}
        times: dict[str, list[float]] = {name: [] for name in candidates}
        outs: dict[str, torch.Tensor] = {}
        for _ in range(args.rounds):
            for name, fn in candidates.items():
                t, out = _run(fn, fast, prompt, embeds)
                times[name] += t
                outs[name] = out
    base = statistics.median(times["eager step (daemon)"])
    ref = outs["eager step (daemon)"]
    print(
        f"\nT3 decode step, {args.variant}, {args.precision}, prompt {prompt}, bucket {bucket}, "
        f"{args.steps} steps x {args.rounds} rounds, freezing={args.freezing}, "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(f"compile (first two calls of the compiled step): {compile_s:.1f} s")
    print("| step | ms/token | vs eager step | max relative difference from eager step |")
    print("|---|---|---|---|")
    for name, t in times.items():
        ms = statistics.median(t)
        rel = ((outs[name] - ref).norm(dim=-1) / ref.norm(dim=-1)).max()
        print(f"| {name} | {ms * 1e3:.1f} | {base / ms:.2f}x | {rel:.2e} |")


if __name__ == "__main__":
    main()
