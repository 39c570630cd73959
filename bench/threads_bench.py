"""How many torch threads the engine should use on a CPU: 1, 2, ... cores, side by side in one run.

One variant loaded once through our engine (fast path, the CPU's ``auto``
precision, random-weight test checkpoint), one cached voice, one sentence
with a fixed token budget; each thread count in turn, round after round
(interleaved, so a busy machine slows each alike). Prints T3 ms per token,
S3Gen seconds per second of audio and the whole sentence's time, with the
ratio to one thread.

Run: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.threads_bench --variant turbo``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="turbo", choices=("original", "turbo"))
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="", help="comma-separated counts (default: 1 up to the CPU count)")
    args = parser.parse_args()

    import torch

    from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine
    from chatterbox_tray.daemon.engine import SynthOptions
    from tests.support.checkpoint import ensure_checkpoint, loader_env
    from tests.support.daemons import voiced_tone

    ckpt = ensure_checkpoint(args.variant)
    os.environ.update(loader_env(ckpt, args.variant))
    default = torch.get_num_threads()
    counts = [int(n) for n in args.threads.split(",")] if args.threads else list(range(1, (os.cpu_count() or 1) + 1))
    engine = ChatterboxEngine(args.variant, str(ckpt), "cpu")
    engine.load(lambda _f, _m: None)
    conds = engine.prepare(voiced_tone(7.0))
    text = "The quick brown fox jumps over the lazy dog."
    engine.generate(text, conds, SynthOptions(seed=1), args.tokens, threading.Event())  # warm
    figures: dict[int, list[tuple[float, float, float]]] = {n: [] for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            torch.set_num_threads(n)
            start = time.perf_counter()
            r = engine.generate(text, conds, SynthOptions(seed=1), args.tokens, threading.Event())
            wall = time.perf_counter() - start
            audio = len(r.samples) / engine.sample_rate
            figures[n].append((1000 * r.t3_seconds / max(1, r.tokens), r.s3gen_seconds / max(audio, 1e-9), wall))
    torch.set_num_threads(default)
    base = {k: statistics.median(f[k] for f in figures[counts[0]]) for k in range(3)}
    print(
        f"\n{args.variant}, {engine.precision} T3 on the {engine.engine_path} path, {args.tokens} tokens, "
        f"{args.rounds} rounds (medians); torch's default here: {default} threads, {os.cpu_count()} CPUs\n"
    )
    print(f"| threads | T3 ms/token | S3Gen s per s audio | sentence | speed vs {counts[0]} |")
    print("|---|---|---|---|---|")
    for n in counts:
        t3, s3, wall = (statistics.median(f[k] for f in figures[n]) for k in range(3))
        print(f"| {n} | {t3:.0f} | {s3:.2f} | {wall:.2f} s | {base[2] / wall:.2f}x |")


if __name__ == "__main__":
    main()
