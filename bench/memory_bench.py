"""What a loaded model costs in memory, by part, and whether reloads give it back.

Two measurements, random-weight test checkpoints (or the cached ones under
``CHATTERBOX_TRAY_TEST_CKPT_DIR``), CPU:

* ``parts``: per variant, in a fresh process of its own, ``ChatterboxEngine``
  loads the model and the resident memory (RSS) is split into the runtime
  (Python, torch, chatterbox imported), each module's weights and buffers
  (T3's transformer and the rest of T3, S3Gen's flow, vocoder, speech
  tokenizer and speaker encoder, the voice encoder, the watermarker), the
  text tokenizer (what a second one adds), what malloc keeps after the load
  until ``malloc_trim`` (the allocator's slack), a short synthesis (T3's KV
  buffers and the rest), the warm-up, and what an unload gives back.
* ``soak``: the real daemon starts fresh on Turbo, then ``--reloads`` reloads
  alternate the original and Turbo through ``settings.set`` and ``reload``
  (as the tray's Settings do), with a short synthesis after each; its RSS at
  the end is compared with a fresh daemon of the same model after the same
  synthesis.

Run: ``OMP_NUM_THREADS=1 uv run python -m bench.memory_bench`` (both), or
``... parts`` / ``... soak --reloads 20``. The figures are in docs/engine.md
("Memory") and docs/soak.md.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.checkpoint import ensure_checkpoint, loader_env
from tests.support.daemons import Clips, DaemonProcess, uid

TEXT = "Hello there."
MIB = 2**20
GIB = 2**30


def rss(pid: int | None = None) -> int:
    return psutil.Process(pid or os.getpid()).memory_info().rss


def peak_rss() -> int:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def settle() -> None:
    """What the daemon does after a load or unload: a full collection, then malloc_trim."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


# -- parts (in a process of its own per variant) ---------------------------------


def tensor_bytes(root: Any, seen: set[int]) -> int:
    """Bytes of the storages behind ``root``'s parameters and buffers not yet counted in ``seen``."""
    import torch

    modules: list[torch.nn.Module] = []

    def find(obj: Any, depth: int) -> None:
        if isinstance(obj, torch.nn.Module):
            modules.append(obj)
        elif depth < 3 and hasattr(obj, "__dict__"):
            for value in vars(obj).values():
                find(value, depth + 1)

    find(root, 0)
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total


def second_tokenizer(variant: str, ckpt: Path) -> Any:
    """A tokenizer made the way chatterbox's ``from_local`` makes the model's."""
    if variant == "turbo":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(ckpt)
    from chatterbox.models.tokenizers import EnTokenizer

    return EnTokenizer(str(ckpt / "tokenizer.json"))


def measure_parts(variant: str, tokens: int) -> dict[str, Any]:
    """Load ``variant`` in this process and account for its resident memory."""
    from chatterbox.tts import ChatterboxTTS  # noqa: F401  (the runtime the engine imports)
    from chatterbox.tts_turbo import ChatterboxTurboTTS  # noqa: F401

    from chatterbox_tray.daemon.chatterbox_engine import ChatterboxEngine
    from chatterbox_tray.daemon.engine import SynthOptions

    ckpt = ensure_checkpoint(variant)
    settle()
    out: dict[str, Any] = {"variant": variant, "runtime": rss()}
    engine = ChatterboxEngine(variant, str(ckpt), "cpu")
    start = time.perf_counter()
    engine.load(lambda _frac, _what: None)
    out["load_s"] = time.perf_counter() - start
    out["precision"] = engine.precision
    out["loaded_raw"], out["load_peak"] = rss(), peak_rss()
    settle()
    out["loaded"] = rss()

    model, seen = engine.model, set()
    s3 = model.s3gen
    parts = {
        "T3 transformer": tensor_bytes(model.t3.tfmr, seen),
        "T3 embeddings, heads, conditioning": tensor_bytes(model.t3, seen),
        "S3Gen flow (encoder + CFM decoder)": tensor_bytes(s3.flow, seen),
        "S3Gen vocoder (HiFiGAN)": tensor_bytes(s3.mel2wav, seen),
        "S3Gen speech tokenizer": tensor_bytes(s3.tokenizer, seen),
        "S3Gen speaker encoder (CAMPPlus)": tensor_bytes(s3.speaker_encoder, seen),
        "S3Gen other": tensor_bytes(s3, seen),
        "voice encoder (VE)": tensor_bytes(model.ve, seen),
        "watermarker (Perth)": tensor_bytes(getattr(model, "watermarker", None), seen),
        "built-in conditionals": tensor_bytes(getattr(model, "conds", None), seen),
    }
    out["parts"] = parts
    tfmr = model.t3.tfmr
    out["t3_tfmr_float32"] = sum(p.numel() * 4 for p in tfmr.parameters())

    before = rss()
    extra = second_tokenizer(variant, ckpt)
    settle()
    out["tokenizer"] = max(rss() - before, 0)
    del extra
    settle()

    clip = Clips(Path(tempfile.mkdtemp(prefix="cbtmem")), seconds=5.5).new()
    conds = engine.prepare(clip)
    engine.generate(TEXT, conds, SynthOptions(seed=0), tokens, threading.Event())
    out["synth_raw"] = rss()
    kv = getattr(engine.fast_t3, "kv", None)
    out["kv"] = int(kv.k.nbytes + kv.v.nbytes) if kv is not None else 0
    settle()
    out["synth"] = rss()

    start = time.perf_counter()
    engine.warmup()
    out["warmup_s"] = time.perf_counter() - start
    out["warmup_raw"] = rss()
    settle()
    out["warmup"] = rss()

    del model, s3, tfmr, conds
    engine.unload()
    settle()
    out["unloaded"] = rss()
    return out


def parts_table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per part, one column per variant (MiB)."""
    head = "| MiB | " + " | ".join(r["variant"] for r in results) + " |"
    rows = [head, "|---" * (len(results) + 1) + "|"]

    def row(name: str, values: list[float]) -> None:
        rows.append(f"| {name} | " + " | ".join(f"{v / MIB:.0f}" for v in values) + " |")

    row("runtime (Python, torch, chatterbox imported)", [r["runtime"] for r in results])
    for name in results[0]["parts"]:
        row(name, [r["parts"][name] for r in results])
    row("text tokenizer (a second one's RSS)", [r["tokenizer"] for r in results])
    row(
        "other (code, kernels, small objects)",
        [r["loaded"] - r["runtime"] - sum(r["parts"].values()) - r["tokenizer"] for r in results],
    )
    row("**loaded, after gc + malloc_trim**", [r["loaded"] for r in results])
    row("allocator slack right after the load (trim gives it back)", [r["loaded_raw"] - r["loaded"] for r in results])
    row("peak during the load (VmHWM)", [r["load_peak"] for r in results])
    row("T3 transformer if float32 (the stock path)", [r["t3_tfmr_float32"] for r in results])
    row("T3 KV buffers after a short synthesis", [r["kv"] for r in results])
    row("after a short synthesis, untrimmed", [r["synth_raw"] for r in results])
    row("after a short synthesis, trimmed", [r["synth"] for r in results])
    row("after the warm-up, untrimmed", [r["warmup_raw"] for r in results])
    row("after the warm-up, trimmed", [r["warmup"] for r in results])
    row("after unload, gc + trim", [r["unloaded"] for r in results])
    precision = ", ".join(f"{r['variant']} {r['precision']}" for r in results)
    load = ", ".join(f"{r['variant']} {r['load_s']:.1f} s" for r in results)
    return "\n".join(rows) + f"\n\nT3 transformer precision: {precision}. Load: {load}."


def run_parts(variants: list[str], tokens: int) -> None:
    results = []
    for variant in variants:
        # A process per variant: each starts from the same bare runtime.
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory_bench", "_parts", variant, "--tokens", str(tokens)],
            capture_output=True,
            text=True,
            env={**os.environ, **loader_env(ensure_checkpoint(variant), variant)},
            check=False,
        )
        lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"parts of {variant} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(lines[-1]))
    print("\nResident memory by part (CPU, test checkpoints)\n")
    print(parts_table(results))


# -- soak (the real daemon) ------------------------------------------------------


def daemon_for(variant: str, warmup: bool, tokens: int) -> DaemonProcess:
    ckpt = ensure_checkpoint(variant)
    args = ["--variant", variant, "--checkpoint", str(ckpt), "--device", "cpu", "--max-tokens-per-chunk", str(tokens)]
    if not warmup:
        args.append("--no-warmup")
    return DaemonProcess(args=tuple(args), env=loader_env(ckpt, variant))


def speak(client: Any, voice: str) -> None:
    client.synthesize(TEXT, voice=voice, seed=1).collect()


def run_soak(reloads: int, warmup: bool, tokens: int) -> None:
    ckpts = {v: ensure_checkpoint(v) for v in ("turbo", "original")}
    clip = Clips(Path(tempfile.mkdtemp(prefix="cbtmem")), seconds=5.5).new()
    voice = uid()
    steps: list[tuple[str, str, float, float]] = []
    daemon = daemon_for("turbo", warmup, tokens)
    started = time.perf_counter()
    daemon.start(timeout=1800)
    try:
        with daemon.client(timeout=600) as c:
            c.voices_add(voice, data=clip)
            speak(c, voice)
            steps.append(("start", "turbo", rss(daemon.pid), time.perf_counter() - started))
            variant = "turbo"
            for n in range(1, reloads + 1):
                variant = "original" if variant == "turbo" else "turbo"
                start = time.perf_counter()
                c.settings_set(variant=variant, checkpoint=str(ckpts[variant]))
                c.reload()
                c.wait_ready(1800)
                loaded = time.perf_counter() - start
                speak(c, voice)
                steps.append((f"reload {n}", variant, rss(daemon.pid), loaded))
                print(f"reload {n:2d} {variant:8s} {steps[-1][2] / GIB:.2f} GiB (load {loaded:.1f} s)", flush=True)
    finally:
        daemon.cleanup()
    end_variant, end_rss = steps[-1][1], steps[-1][2]
    fresh = daemon_for(end_variant, warmup, tokens)
    fresh.start(timeout=1800)
    try:
        with fresh.client(timeout=600) as c:
            c.voices_add(voice, data=clip)
            speak(c, voice)
            fresh_rss = rss(fresh.pid)
    finally:
        fresh.cleanup()
    first = {v: next(s[2] for s in steps if s[1] == v) for v in ("turbo", "original")}
    print(f"\nReload soak: {reloads} reloads, a synthesis ({tokens} tokens) after each, warm-up {warmup}\n")
    print("| step | model | RSS (GiB) | vs its first | load (s) |")
    print("|---|---|---|---|---|")
    for step, variant, value, seconds in steps:
        print(f"| {step} | {variant} | {value / GIB:.2f} | {value / first[variant]:.3f} | {seconds:.1f} |")
    print(
        f"\nAt the end: {end_rss / GIB:.2f} GiB; a fresh {end_variant} daemon after the same synthesis: "
        f"{fresh_rss / GIB:.2f} GiB; ratio {end_rss / fresh_rss:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="both", choices=("both", "parts", "soak", "_parts"))
    parser.add_argument("variant", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--variants", default="turbo,original", help="parts: which variants")
    parser.add_argument("--reloads", type=int, default=20, help="soak: how many reloads")
    parser.add_argument("--tokens", type=int, default=6, help="speech tokens of each synthesis")
    parser.add_argument("--warmup", action="store_true", help="soak: warm up at every load, as by default")
    args = parser.parse_args()
    if args.what == "_parts":
        print(json.dumps(measure_parts(args.variant, args.tokens)))
        return
    if args.what in ("both", "parts"):
        run_parts(args.variants.split(","), args.tokens)
    if args.what in ("both", "soak"):
        run_soak(args.reloads, args.warmup, args.tokens)


if __name__ == "__main__":
    main()
