"""What idle unload gives back and what waking costs, through the real daemon.

One real daemon (random-weight test checkpoint, or ``--checkpoint``) with a
cached voice. In one run, side by side:

* memory while ready vs asleep (the daemon's own ``stats.last_sleep``:
  process RSS, and torch's allocator on CUDA);
* time to first audio for one sentence on a ready model vs on a sleeping one
  (the wake-up's load and warm-up included), ``--rounds`` times each,
  interleaved so a busy machine slows both alike.

Run: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.idle_unload_bench --variant turbo``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests.support.checkpoint import ensure_checkpoint, loader_env
from tests.support.daemons import Clips, DaemonProcess, uid

TEXT = "The quick brown fox jumps over the lazy dog."


def first_audio(client, voice: str) -> float:
    """Seconds from the request to its first audio chunk."""
    start = time.perf_counter()
    synthesis = client.synthesize(TEXT, voice=voice, seed=1)
    first = None
    for _chunk in synthesis:
        if first is None:
            first = time.perf_counter() - start
    return first if first is not None else float("nan")


def wait_asleep(client, since: float, timeout: float = 300.0) -> dict:
    """Wait for a sleep newer than ``since`` and its memory figures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sleep = client.stats().get("last_sleep")
        if sleep and sleep["at"] > since:
            return sleep
        time.sleep(0.2)
    raise SystemExit("the model never went to sleep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="turbo", choices=("original", "turbo", "multilingual"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=25, help="speech-token budget per sentence")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    ckpt = ensure_checkpoint(args.variant)
    flags = {"--variant": args.variant, "--checkpoint": str(ckpt), "--device": args.device}
    flags["--max-tokens-per-chunk"] = str(args.tokens)
    daemon = DaemonProcess(args=tuple(x for pair in flags.items() for x in pair), env=loader_env(ckpt, args.variant))
    started = time.perf_counter()
    daemon.start(timeout=900)
    cold = time.perf_counter() - started
    awake, woken, sleeps = [], [], []
    try:
        with daemon.client(timeout=600) as c:
            voice = uid()
            c.voices_add(voice, data=Clips(daemon.home).new())
            first_audio(c, voice)  # the voice's conditionals, made once
            for _ in range(args.rounds):
                awake.append(first_audio(c, voice))
                asked = time.time()
                c.settings_set(unload_after_idle_minutes=0.01)
                sleeps.append(wait_asleep(c, asked))
                c.settings_set(unload_after_idle_minutes=0)
                woken.append(first_audio(c, voice))
            status = c.status()
    finally:
        daemon.cleanup()
    mib = 2**20
    before = statistics.median(s["memory_before"]["process_rss"] for s in sleeps) / mib
    after = statistics.median(s["memory_after"]["process_rss"] for s in sleeps) / mib
    a, w = statistics.median(awake), statistics.median(woken)
    print(f"\n{args.variant} on {status['device']}, {args.tokens} tokens a sentence, {args.rounds} rounds (medians)\n")
    print("| | ready | asleep | ratio |")
    print("|---|---|---|---|")
    print(f"| process RSS | {before:.0f} MiB | {after:.0f} MiB | {after / before:.2f} |")
    gpu = [s for s in sleeps if "gpu_memory_reserved" in s["memory_before"]]
    if gpu:
        gb = statistics.median(s["memory_before"]["gpu_memory_reserved"] for s in gpu) / mib
        ga = statistics.median(s["memory_after"]["gpu_memory_reserved"] for s in gpu) / mib
        print(f"| GPU reserved | {gb:.0f} MiB | {ga:.0f} MiB | {ga / max(gb, 1e-9):.2f} |")
    print(f"| first audio, one sentence | {a:.2f} s | {w:.2f} s (wake-up included) | {w / a:.1f} |")
    print(f"\ncold start to ready (daemon start, import, load, warm-up): {cold:.1f} s")


if __name__ == "__main__":
    main()
