"""What a listener hears: first sound and the silences after it, stock against ours, in one run.

Run from the repo root (nothing else running; say the load)::

    uv run python -m bench.first_sound_bench [--variant turbo] [--tokens 50] [--busy 0] [--json out.json]

For each engine path (``stock``: chatterbox's own ``generate``; ``ours``: the
daemon's defaults) a real daemon loads the random-weight test checkpoint
through chatterbox's ``from_local`` and plays into ALSA's file plugin (a
speaker that writes what it is given to a file, paced by the daemon's clock:
tests/support/daemons.py). The voice is prepared first (a cached voice, as
in daily use). Then ``speak`` of a one-sentence and a five-sentence text,
and for each:

* **first sound**: from the request to the moment the first non-silent
  sample reached the sink, read by polling the sink file from this process
  (not the daemon's own report, which is also shown);
* **silent gaps after it**: the sink's writes replayed on a device clock
  (a write starts when it arrives or when the previous one ends, whichever
  is later): the total and the longest stretch with nothing to play. The
  pause the daemon puts between sentences is audio here, not a gap;
* **underruns**, as the daemon counts them;
* **real-time factor**: the job's synthesis seconds over its audio seconds.

``--busy N`` runs N single-threaded busy loops beside the daemon while it
speaks (a laptop with something else going on).

Nothing asserts anything about time: it prints a table measured side by side.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.checkpoint import ensure_checkpoint, loader_env  # noqa: E402
from tests.support.daemons import DaemonProcess, espeak_clip, voiced_tone  # noqa: E402

ONE = "The quick brown fox jumps over the lazy dog."
FIVE = (
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April. "
    "The clocks were striking thirteen. Nobody in the street looked up. "
    "A small bell rang somewhere behind the old church."
)
#: A sample louder than this is sound (the fade-in starts at zero).
SOUND = 1e-4
RATE = 24_000


def voice_clip() -> bytes:
    text = (
        "The quick brown fox jumps over the lazy dog. "
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells."
    )
    return espeak_clip(text) or voiced_tone()


class SinkWatch:
    """Polls the sink file every few ms: (time, bytes so far) for each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.marks: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def __enter__(self) -> SinkWatch:
        self.base = self._size()
        self.marks = [(time.monotonic(), self.base)]
        self._thread.start()
        return self

    def _run(self) -> None:
        last = self.base
        while not self._stop.wait(0.003):
            size = self._size()
            if size != last:
                self.marks.append((time.monotonic(), size))
                last = size

    def __exit__(self, *_: Any) -> None:
        time.sleep(0.1)
        self._stop.set()
        self._thread.join()


def listen(watch: SinkWatch, requested: float) -> dict[str, Any]:
    """First sound and the gaps after it, from the sink's writes."""
    data = watch.path.read_bytes()[watch.base :]
    samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")
    loud = np.flatnonzero(np.abs(samples) > SOUND)
    if not len(loud):
        return {"first_sound_s": None, "gap_total_s": None, "gap_longest_s": None, "heard_s": 0.0}
    first_byte = watch.base + int(loud[0]) * 4
    writes = [(t, size) for t, size in watch.marks]
    first_t = next(t for t, size in writes if size > first_byte)
    clock_end = None
    gaps: list[float] = []
    prev = first_byte
    for t, size in writes:
        if size <= first_byte:
            continue
        n = (size - prev) / 4
        prev = size
        if clock_end is None:
            clock_end = t + n / RATE
            continue
        if t > clock_end:
            gaps.append(t - clock_end)
            clock_end = t
        clock_end += n / RATE
    # Silence after the last sound is the end, not a gap.
    return {
        "first_sound_s": round(first_t - requested, 3),
        "gap_total_s": round(sum(gaps), 3),
        "gap_longest_s": round(max(gaps, default=0.0), 3),
        "heard_s": round((len(samples) - int(loud[0])) / RATE, 3),
    }


def busy_loop() -> None:  # pragma: no cover - a child process
    x = 0
    while True:
        x += 1


def start_daemon(ckpt: Path, variant: str, tokens: int, path: str, env: dict[str, str]) -> DaemonProcess:
    daemon = DaemonProcess(
        args=(
            "--checkpoint",
            str(ckpt),
            "--variant",
            variant,
            "--device",
            "cpu",
            "--max-tokens-per-chunk",
            str(tokens),
        ),
        env={**loader_env(ckpt, variant), **env},
    ).start(timeout=900)
    # "stock", "ours" (the defaults), or "ours-<precision>" (e.g. ours-int8); a path may end in
    # "+follow" or "+fixed": the daemon's threads follow other programs' load, or not.
    wanted = {"engine_path": "stock"} if path == "stock" else {"engine_path": "auto"}
    if path.startswith("ours-"):
        wanted["precision"] = path.split("-", 1)[1]
    with daemon.client(timeout=900) as c:
        current = c.settings_get()["settings"]
        if any(current.get(k) != v for k, v in wanted.items()):
            c.settings_set(**wanted)
            c.reload()
            time.sleep(0.5)
            c.wait_ready(900)
    return daemon


def speak(daemon: DaemonProcess, text: str, seed: int | None) -> dict[str, Any]:
    with daemon.client(timeout=900) as c, SinkWatch(daemon.sink_path) as watch:
        # The pace the speaker plans this text's pre-buffer by (seconds of work a second of speech).
        planned = c.playback().get("recent_rtf")
        requested = time.monotonic()
        job = c.speak(text, voice="bench", seed=seed)["job"]
        end = c.wait(job, timeout=900)
    heard = listen(watch, requested)
    s, p = end.get("summary") or {}, end.get("playback") or {}
    return {
        **heard,
        "state": end["state"],
        "daemon_first_sample_s": p.get("first_sample_s"),
        "underruns": p.get("underruns"),
        "played_s": p.get("played_s"),
        "audio_s": s.get("audio_s"),
        "rtf": s.get("rtf"),
        "planned_rtf": planned,
        # Each network's own seconds per second of audio: they overlap (two threads), so
        # their sum over the RTF says how much of the time both were working at once.
        "t3_per_s": round(s["t3_s"] / s["audio_s"], 3) if s.get("audio_s") else None,
        "s3gen_per_s": round(s["s3gen_s"] / s["audio_s"], 3) if s.get("audio_s") else None,
        "first_chunk_s": s.get("time_to_first_chunk_s"),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    ckpt = ensure_checkpoint(args.variant)
    voice = voice_clip()
    rows: list[dict[str, Any]] = []
    daemons = {}
    try:
        for path in args.paths:
            env = {"OMP_WAIT_POLICY": args.omp_wait} if args.omp_wait else {}
            if path.endswith("+follow"):  # threads follow the other programs' load (engine._cores)
                env["CHATTERBOX_TRAY_CORES_FOLLOW_LOAD"] = "1"
            elif path.endswith("+fixed"):
                env["CHATTERBOX_TRAY_CORES_FOLLOW_LOAD"] = "0"
            daemon = start_daemon(ckpt, args.variant, args.tokens, path.split("+", 1)[0], env)
            with daemon.client(timeout=900) as c:
                c.voices_add("bench", data=voice)
                c.synthesize("Warm.", voice="bench").collect()  # the voice is cached from here on
            daemons[path] = daemon
            if len(args.paths) > 1:  # one daemon at a time holds the cores
                daemon.proc.send_signal(19)  # SIGSTOP
        for round_no in range(args.rounds):
            for label, text in (("1 sentence", ONE), ("5 sentences", FIVE)):
                for path, daemon in daemons.items():
                    if len(daemons) > 1:
                        daemon.proc.send_signal(18)  # SIGCONT
                        time.sleep(0.5)
                    busy = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(args.busy)]
                    for b in busy:
                        b.start()
                    try:
                        row = speak(daemon, text, seed=args.seed)
                    finally:
                        for b in busy:
                            b.kill()
                            b.join()
                    if len(daemons) > 1:
                        daemon.proc.send_signal(19)
                    row = {
                        "text": label,
                        "path": path,
                        "busy": args.busy,
                        "omp_wait": args.omp_wait or "default",
                        "round": round_no,
                        **row,
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for daemon in daemons.values():
            daemon.proc.send_signal(18)
            daemon.cleanup()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("text", "text"),
        ("path", "path"),
        ("busy", "busy procs"),
        ("omp_wait", "OpenMP wait"),
        ("first_sound_s", "first sound s"),
        ("gap_total_s", "silent gaps s"),
        ("gap_longest_s", "longest gap s"),
        ("underruns", "underruns"),
        ("heard_s", "heard s"),
        ("rtf", "RTF"),
        ("planned_rtf", "pace planned"),
        ("t3_per_s", "T3 s/s"),
        ("s3gen_per_s", "S3Gen s/s"),
        ("first_chunk_s", "first chunk made s"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("" if r.get(k) is None else str(r[k]) for k, _ in cols) + " |")
    stock = {(r["text"], r["round"]): r for r in rows if r["path"] == "stock"}
    ratios = []
    for r in rows:
        s = stock.get((r["text"], r["round"]))
        if r["path"] != "stock" and s and s["first_sound_s"] and r["first_sound_s"]:
            first = r["first_sound_s"] / s["first_sound_s"]
            ratios.append(
                f"{r['text']} (round {r['round']}): first sound {first:.2f}x stock's, "
                f"RTF {r['rtf'] / s['rtf']:.2f}x stock's"
            )
    return "\n".join([*lines, "", *ratios])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="turbo", choices=("turbo", "original"))
    parser.add_argument("--tokens", type=int, default=50, help="speech-token budget per sentence")
    parser.add_argument(
        "--paths",
        default="stock,ours",
        help="comma-separated: stock, ours, ours-<precision>; +follow or +fixed threads",
    )
    parser.add_argument("--busy", type=int, default=0, help="single-threaded busy loops beside the daemon")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--omp-wait", choices=("ACTIVE", "PASSIVE"), help="the daemon's OpenMP wait policy")
    parser.add_argument("--seed", type=int, help="speak with this seed (default: none, as a user speaks)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; {args.variant}, {args.tokens} tokens a sentence, "
        f"{args.busy} busy processes, OpenMP wait policy {args.omp_wait or 'the daemon default'}"
    )
    rows = run(args)
    print(table(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
