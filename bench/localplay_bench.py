"""This computer's speaker for a remote daemon's speech: how fast stop, skip and a displacing quick speech act.

Run from the repo root::

    uv run python -m bench.localplay_bench [--rounds 20]

It plays tones through ``audio.local_player.LocalPlayer`` into an ALSA file sink
(PortAudio's default output in this process, paced by the wall clock as a
speaker is) and, round after round, stops, skips or displaces the speech
0.3 s after it began. Two figures each:

- **cut**: request to the device being silenced (``last_cut_latency_s``:
  the player thread dropped what the device had not played);
- **written after**: audio handed to the device after the request, at most
  what was ahead of the clock (the lead) plus one block; this is what can
  still be heard.

It prints a markdown table of medians and 90th percentiles; nothing asserts
anything about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATE = 24_000


def tone(seconds: float, index: int) -> object:
    import numpy as np

    from chatterbox_tray.ipc.client import Chunk

    t = np.arange(int(seconds * RATE)) / RATE
    return Chunk(index, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, "text", (0, 4))


def one_round(action: str) -> tuple[float, float]:
    """(cut latency s, seconds written after the request) for one stop, skip or displacement."""
    from chatterbox_tray.audio.local_player import LocalPlayer

    player = LocalPlayer()
    started: list[float] = []
    next_sentence: list[float] = []  # seconds written when sentence 1 began (skip)

    def listener(event: str, data: dict) -> None:
        if event == "started":
            started.append(time.monotonic())
        elif event == "sentence" and data["sentence"] == 1:
            next_sentence.append(speech.played.seconds)

    speech = player.speak(listener=listener)
    for i in range(3):
        speech.push(tone(1.0, i))
    speech.produced()
    while not started:
        time.sleep(0.005)
    time.sleep(0.3)
    written_before = speech.played.seconds
    acts: dict[str, Callable[[], object]] = {
        "stop": player.stop,
        "skip": player.skip,
        "quick speech": lambda: player.speak(priority="quick"),
    }
    acts[action]()
    deadline = time.monotonic() + 2
    while (player.last_cut_latency_s is None or (action == "skip" and not next_sentence)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.002)
    cut = player.last_cut_latency_s or float("nan")
    # Audio of the cut sentence handed to the device after the request.
    after = (next_sentence[0] if action == "skip" else speech.played.seconds) - written_before
    player.close()
    return cut, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from tests.support.daemons import write_alsa_file_sink

    folder = Path(tempfile.mkdtemp(prefix="lpbench"))
    os.environ["ALSA_CONFIG_PATH"] = str(write_alsa_file_sink(folder / "asound.conf", folder / "played.raw"))
    print("| action | cut: median ms | cut: p90 ms | written after the request: median ms | p90 ms |")
    print("| --- | --- | --- | --- | --- |")
    for action in ("stop", "skip", "quick speech"):
        cuts, afters = [], []
        for _ in range(args.rounds):
            cut, after = one_round(action)
            cuts.append(1000 * cut)
            afters.append(1000 * after)
        p90 = lambda xs: sorted(xs)[int(0.9 * (len(xs) - 1))]  # noqa: E731
        print(
            f"| {action} | {statistics.median(cuts):.1f} | {p90(cuts):.1f} | "
            f"{statistics.median(afters):.1f} | {p90(afters):.1f} |"
        )


if __name__ == "__main__":
    main()
