"""``from_local`` with and without the random draws the checkpoint overwrites.

Run from the repo root::

    uv run python -m bench.load_bench [--variants original,turbo] [--rounds 3]

For each variant it loads the test checkpoint (tests/support/checkpoint.py:
the real file layout, random weights; set CHATTERBOX_TRAY_TEST_CKPT_DIR to
reuse a built one) through chatterbox's own ``from_local``, alternating stock
and ``daemon/quickload.py``'s construction round by round in one process, after
one unmeasured load that pays imports and first-touch costs. It prints a
markdown table of medians and the ratio. The daemon pays this at every start,
wake from idle sleep and reload. Run it alone: a busy machine skews it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="original,turbo")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from chatterbox_tray.daemon.quickload import strict_loaded_modules_skip_random_init
    from tests.support.checkpoint import ensure_checkpoint, load_model

    rows = []
    for variant in args.variants.split(","):
        folder = ensure_checkpoint(variant)
        load_model(folder, variant)
        gc.collect()
        stock, quick = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            model = load_model(folder, variant)
            stock.append(time.perf_counter() - start)
            del model
            gc.collect()
            with strict_loaded_modules_skip_random_init():
                start = time.perf_counter()
                model = load_model(folder, variant)
                quick.append(time.perf_counter() - start)
            del model
            gc.collect()
        rows.append((variant, statistics.median(stock), statistics.median(quick)))

    threads = torch.get_num_threads()
    print(f"\nfrom_local on the CPU, {args.rounds} rounds, torch {torch.__version__}, threads={threads}\n")
    print("| variant | stock from_local | without random draws | ratio |")
    print("|---|---|---|---|")
    for variant, a, b in rows:
        print(f"| {variant} | {a:.2f} s | {b:.2f} s | {a / b:.2f}x sooner |")


if __name__ == "__main__":
    main()
