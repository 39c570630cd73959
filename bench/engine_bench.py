"""Stock chatterbox vs our engine path, side by side, for each variant present.

One run loads each variant once (the random-weight test checkpoint, or
``--checkpoint-root``) and measures, interleaved (stock, ours, stock, ours)
so a busy machine slows both alike:

* time to first audio for a one-sentence and a five-sentence text (the
  daemon speaks sentence by sentence: stock's first audio is its first
  sentence's whole synthesis, ours is the first streamed piece);
* T3 ms per token, S3Gen seconds per second of audio, real-time factor
  (wall time / audio time) over the one-sentence text;
* peak memory during the run (RSS on a CPU, the CUDA allocator's peak on a GPU).

Stock is chatterbox's ``generate`` (T3 float32, our budget and hooks only);
ours is the fast path with the precision ``auto`` picks on the device
(``--precision`` to override) and token streaming. On one engine: the stock
runs use the float32 transformer, ours a converted copy swapped in.

Run here: ``CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.engine_bench``.
Unattended on a GPU machine: ``... -m bench.engine_bench --device cuda --precision bfloat16
--cuda-graphs --tokens 100 --rounds 3 --out results/`` writes ``engine_bench.md`` and
``engine_bench.json`` there (run it once more without ``--cuda-graphs`` and ``--precision`` to
separate the two).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

ONE = "The quick brown fox jumps over the lazy dog."
FIVE = (
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April. "
    "The clocks were striking thirteen. Nobody in the street looked up. "
    "A small bell rang somewhere behind the old church."
)


class PeakMemory:
    """Peak memory while a block runs: process RSS sampled every 5 ms (CPU) or CUDA's own peak."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        proc = psutil.Process()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, proc.memory_info().rss)

        self.peak = proc.memory_info().rss
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
            return
        self._stop.set()
        self._thread.join()


def load(variant: str, root: str | None, device: str, precision: str, quality: str) -> Any:
    from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine

    if root:
        folder = Path(root) / variant
    else:
        from tests.support.checkpoint import ensure_checkpoint, loader_env

        folder = ensure_checkpoint(variant)
        os.environ.update(loader_env(folder, variant))
    # float32 engine on the fast path: stock runs need chatterbox's float32 transformer.
    engine = ChatterboxEngine(variant, str(folder), device, engine_path="fast", precision="float32", quality=quality)
    engine.load(lambda _f, _m: None)
    from chatterbox_tray.daemon.precision import convert_transformer, resolve_precision

    engine.bench_precision = resolve_precision(precision, engine.device)
    t3 = engine.model.t3
    engine.bench_tfmr = {"stock": t3.tfmr, "fast": t3.tfmr}
    if engine.bench_precision != "float32":
        engine.bench_tfmr["fast"] = convert_transformer(copy.deepcopy(t3.tfmr), engine.bench_precision, engine.device)
    return engine


def use(engine: Any, path: str) -> None:
    """Switch the engine to ``path`` with that path's transformer."""
    engine.engine_path = path
    tfmr = engine.bench_tfmr[path]
    engine.model.t3.tfmr = tfmr
    engine.fast_t3.tfmr = tfmr
    engine.fast_t3.kv = None


def clip() -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    rate = 24_000
    t = np.arange(int(6.0 * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 0.5 * t)) * t)
    wave *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def first_audio(engine: Any, text: str, conds: Any, budget: int) -> float:
    """Seconds from the request to the first audio sample, sentence by sentence as the daemon speaks."""
    from chatterbox_tray.daemon.engine import SynthOptions
    from chatterbox_tray.daemon.text import split_sentences

    start = time.perf_counter()
    for chunk in split_sentences(text):
        for piece in engine.generate_stream(chunk.text, conds, SynthOptions(seed=1), budget, threading.Event()):
            if len(piece.samples):
                return time.perf_counter() - start
    return float("nan")


def full_run(engine: Any, text: str, conds: Any, budget: int) -> dict[str, float]:
    from chatterbox_tray.daemon.engine import SynthOptions

    start = time.perf_counter()
    t3 = s3 = 0.0
    tokens = samples = 0
    first = float("nan")
    for piece in engine.generate_stream(text, conds, SynthOptions(seed=1), budget, threading.Event()):
        if len(piece.samples) and first != first:
            first = time.perf_counter() - start
        t3 += piece.t3_seconds
        s3 += piece.s3gen_seconds
        tokens += piece.tokens
        samples += len(piece.samples)
    wall = time.perf_counter() - start
    audio = samples / engine.sample_rate
    return {
        "first_one": first,
        "t3_ms_per_token": 1000 * t3 / max(tokens, 1),
        "s3gen_s_per_audio_s": s3 / audio if audio else float("nan"),
        "rtf": wall / audio if audio else float("nan"),
        "audio_s": audio,
        "tokens": tokens,
    }


def measure(engine: Any, budget: int, rounds: int) -> dict[str, dict[str, Any]]:
    import torch

    conds = engine.prepare(clip())
    rows: dict[str, dict[str, Any]] = {"stock": {}, "fast": {}}
    runs: dict[str, list[dict[str, float]]] = {"stock": [], "fast": []}
    for path in ("stock", "fast"):  # first calls pay lazy initialisation: not part of either figure
        use(engine, path)
        with torch.inference_mode():
            full_run(engine, "Hi.", conds, 2)
    for _ in range(rounds):
        for path in ("stock", "fast"):
            use(engine, path)
            # A path switch reallocates its KV cache: the daemon never pays that per request.
            with torch.inference_mode():
                full_run(engine, "Hi.", conds, 2)
            with torch.inference_mode(), PeakMemory(engine.device) as mem:
                five = first_audio(engine, FIVE, conds, budget)
                run = full_run(engine, ONE, conds, budget)  # its first piece is the one-sentence first audio
            run.update(first_five=five, peak_mb=mem.peak / 2**20)
            runs[path].append(run)
    for path, results in runs.items():
        for key in results[0]:
            values = sorted(r[key] for r in results)
            rows[path][key] = values[len(values) // 2]
    use(engine, "fast")
    return rows


def table(results: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any]) -> str:
    head = (
        "| variant | path | first audio, 1 sentence | first audio, 5 sentences | T3 ms/token "
        "| S3Gen s per s audio | RTF | peak memory |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for variant, rows in results.items():
        for path in ("stock", "fast"):
            r = rows[path]
            label = "stock (float32)" if path == "stock" else f"ours ({meta['precision'][variant]}, streamed)"
            lines.append(
                f"| {variant} | {label} | {r['first_one']:.2f} s | {r['first_five']:.2f} s "
                f"| {r['t3_ms_per_token']:.0f} | {r['s3gen_s_per_audio_s']:.2f} | {r['rtf']:.2f} "
                f"| {r['peak_mb']:.0f} MiB |"
            )
        s, f = rows["stock"], rows["fast"]
        lines.append(
            f"| {variant} | **ours / stock** | {s['first_one'] / f['first_one']:.2f}x sooner "
            f"| {s['first_five'] / f['first_five']:.2f}x sooner "
            f"| {s['t3_ms_per_token'] / f['t3_ms_per_token']:.2f}x tokens/s "
            f"| {s['s3gen_s_per_audio_s'] / f['s3gen_s_per_audio_s']:.2f}x | {s['rtf'] / f['rtf']:.2f}x | |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="stock vs our engine path, side by side")
    parser.add_argument("--variants", default="original,turbo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--quality", default="best")
    parser.add_argument("--tokens", type=int, default=20, help="speech-token budget per sentence")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cuda-graphs", action="store_true", help="replay T3's step from CUDA graphs (ours)")
    parser.add_argument("--checkpoint-root", default=None, help="folder with one checkpoint folder per variant")
    parser.add_argument("--out", default=None, help="folder for engine_bench.md and engine_bench.json")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "tokens_per_sentence": args.tokens,
        "quality": args.quality,
        "precision": {},
    }
    for variant in args.variants.split(","):
        engine = load(variant, args.checkpoint_root, args.device, args.precision, args.quality)
        meta["precision"][variant] = engine.bench_precision
        if args.cuda_graphs:
            from chatterbox_tray.daemon.cuda_graphs import use_cuda_graphs

            use_cuda_graphs(engine.fast_t3)
            meta["precision"][variant] += ", CUDA graphs"
        results[variant] = measure(engine, args.tokens, args.rounds)
        engine.unload()
        del engine
        print(table({variant: results[variant]}, meta), flush=True)
    text = table(results, meta)
    print(f"\n{meta}\n\n{text}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "engine_bench.md").write_text(f"{json.dumps(meta)}\n\n{text}", encoding="utf-8")
        (out / "engine_bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1), "utf-8")


if __name__ == "__main__":
    main()
