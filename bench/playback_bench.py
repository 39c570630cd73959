"""Live playback measured: first sound against whole-paragraph synthesis, and underruns.

Run from the repo root::

    uv run python -m bench.playback_bench [--tokens 8] [--json out.json]

Every daemon here plays into ALSA's file plugin (tests/support/daemons.py), a
"speaker" that takes audio as fast as the daemon's clock-paced writes give it,
so the figures are the daemon's own and no sound card is needed.

1. Real daemon, random-weight test checkpoint (the real chatterbox classes,
   ``from_local``), CPU: a five-sentence paragraph spoken with the pre-buffer
   off and adaptive. For each: request to first sample handed to the device,
   against the time the model took to make the whole paragraph; underruns.
2. Fake engine made slower than real time (real-time factor about 1.25, the
   regime of a slow GPU or a fast CPU): underruns with and without the
   adaptive pre-buffer, and when the first sample played.
3. Fake engine faster than real time (RTF about 0.2, the regime of a GPU):
   first sound against whole-paragraph synthesis, where streaming pays most.

Nothing asserts anything about time; it prints a table of figures and ratios
measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.checkpoint import ensure_checkpoint, loader_env  # noqa: E402
from tests.support.daemons import DaemonProcess, espeak_clip, voiced_tone  # noqa: E402

PARAGRAPH = (
    "The morning train was late again. Nobody on the platform seemed surprised. "
    "A man in a grey coat read the same page of his newspaper twice. "
    "Somewhere a child asked why the sky was so low. "
    "Then the rails began to hum, and everyone stepped forward at once."
)


def clip() -> bytes:
    text = (
        "The quick brown fox jumps over the lazy dog. "
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells."
    )
    return espeak_clip(text) or voiced_tone()


def speak_once(daemon: DaemonProcess, prebuffer: str, voice: bytes) -> dict[str, Any]:
    """Speak the paragraph once with the given pre-buffer mode; return the job's end."""
    with daemon.client(timeout=600) as c:
        c.settings_set(prebuffer=prebuffer)
        job = c.speak(PARAGRAPH, voice_data=voice, seed=1)["job"]
        return c.wait(job, timeout=600)


def row(label: str, end: dict[str, Any]) -> dict[str, Any]:
    s, p = end["summary"], end["playback"]
    whole = s["queue_wait_s"] + s["synthesis_s"]  # request to the last sentence made
    return {
        "case": label,
        "state": end["state"],
        "rtf": s["rtf"],
        "audio_s": s["audio_s"],
        "first_sample_s": p["first_sample_s"],
        "first_chunk_s": s["time_to_first_chunk_s"],
        "whole_paragraph_s": round(whole, 3),
        "first_sound_vs_whole": round(p["first_sample_s"] / whole, 3) if whole else None,
        "prebuffer_s": p["prebuffer_s"],
        "underruns": p["underruns"],
    }


def run_real(tokens: int, voice: bytes) -> list[dict[str, Any]]:
    ckpt = ensure_checkpoint("original")
    daemon = DaemonProcess(
        args=("--checkpoint", str(ckpt), "--device", "cpu", "--max-tokens-per-chunk", str(tokens)),
        env=loader_env(ckpt),
    ).start(timeout=900)
    try:
        with daemon.client(timeout=600) as c:  # prepare the voice first: this is about playback
            c.synthesize("Warm.", voice_data=voice).collect()
        return [
            row(f"real checkpoint, CPU, pre-buffer {mode}", speak_once(daemon, mode, voice))
            for mode in ("off", "adaptive")
        ]
    finally:
        daemon.cleanup()


def run_fake(delay: float, label: str, voice: bytes, modes: tuple[str, ...]) -> list[dict[str, Any]]:
    daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": str(delay)}).start()
    try:
        return [row(f"{label}, pre-buffer {mode}", speak_once(daemon, mode, voice)) for mode in modes]
    finally:
        daemon.cleanup()


def stop_latency(voice: bytes, repeat: int = 7) -> dict[str, Any]:
    """Stop a playing paragraph several times; the daemon's request-to-silence time each time."""
    import time

    daemon = DaemonProcess().start()
    try:
        with daemon.client(timeout=60) as c:
            c.voices_add("bench", data=voice)
            figures, device = [], None
            for _ in range(repeat):
                job = c.speak(PARAGRAPH, voice="bench")["job"]
                while c.playback()["state"] != "playing":
                    time.sleep(0.02)
                time.sleep(0.5)
                device = c.playback()["device_latency_ms"] or device
                c.stop(job)
                c.wait(job)
                figures.append(c.playback()["last_stop_latency_ms"])
        figures.sort()
        return {
            "median_ms": figures[len(figures) // 2],
            "max_ms": figures[-1],
            "device_latency_ms": device,
            "n": repeat,
        }
    finally:
        daemon.cleanup()


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("case", "case"),
        ("rtf", "RTF"),
        ("audio_s", "audio s"),
        ("first_sample_s", "request → first sample s"),
        ("whole_paragraph_s", "request → whole paragraph made s"),
        ("first_sound_vs_whole", "first sound / whole"),
        ("prebuffer_s", "buffered at start s"),
        ("underruns", "underruns"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("" if r[k] is None else str(r[k]) for k, _ in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8, help="speech tokens per sentence for the real checkpoint")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--skip-real", action="store_true", help="only the fake-engine cases")
    args = parser.parse_args(argv)

    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    voice = clip()
    # The sentences are 33-66 characters: 2.6-5.3 s of fake audio each (80 ms a character).
    rows = run_fake(6.0, "fake engine slower than real time", voice, ("off", "adaptive"))
    rows += run_fake(1.0, "fake engine faster than real time", voice, ("adaptive",))
    if not args.skip_real:
        rows += run_real(args.tokens, voice)
    stop = stop_latency(voice)
    print(table(rows))
    print()
    print(
        f"stop: request to device silenced, median {stop['median_ms']} ms, worst {stop['max_ms']} ms "
        f"of {stop['n']}, plus the device's own output latency ({stop['device_latency_ms']} ms)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "stop": stop}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
