"""Keypress to request: what the quick-speak command costs before the daemon sees it.

Run from the repo root::

    uv run python -m bench.cli_startup_bench [--runs 15] [--json out.json]

A desktop shortcut bound to ``chatterbox-tray quick`` (or ``say --selection``)
starts a fresh Python process on every press, so its start-up is the latency
the user feels before speech is even queued. Measured side by side in one run,
each a fresh process, median of ``--runs``:

- ``python -c pass``: the interpreter's own floor;
- importing the CLI (``chatterbox_tray.cli.main``): our modules and pyzmq;
- ``chatterbox-tray ping``: start-up, connect, one round trip, exit;
- ``chatterbox-tray say --no-wait``: start-up to the daemon's ``accepted``
  (what a hotkey press costs before synthesis starts), against a fake-engine
  daemon so the model's time is not in it;
- ``import torch``: what every press would cost if the CLI imported torch.

It also checks, in a fresh process, that importing the CLI loads no torch,
numpy or Qt. Nothing asserts anything about time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.daemons import DaemonProcess, voiced_tone  # noqa: E402


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr.decode(errors='replace')}")
    return times


def heavy_modules(env: dict[str, str]) -> list[str]:
    code = (
        "import sys, chatterbox_tray.cli.main, chatterbox_tray.cli.quickspeak_command;"
        "print(','.join(m for m in ('torch', 'numpy', 'PySide6', 'soundfile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    daemon = DaemonProcess().start()
    try:
        with daemon.client() as c:
            c.voices_add("bench", data=voiced_tone(6.0))
            c.voices_default("bench")
        env = daemon.env()
        cli = [sys.executable, "-m", "chatterbox_tray.cli.main", "--no-start"]
        rows = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("import the CLI", [sys.executable, "-c", "import chatterbox_tray.cli.main"]),
            ("chatterbox-tray ping", [*cli, "ping", "-c", "1"]),
            ("chatterbox-tray say --no-wait", [*cli, "say", "--no-wait", "-p", "quick", "Hi."]),
            ("import torch", [sys.executable, "-c", "import torch"]),
        ]
        timed(rows[0][1], env, 2)  # warm the page cache
        results = {}
        for name, cmd in rows:
            timed(cmd, env, 1)
            results[name] = statistics.median(timed(cmd, env, args.runs))
        heavy = heavy_modules(env)
    finally:
        daemon.cleanup()

    floor, say = results["python -c pass"], results["chatterbox-tray say --no-wait"]
    print(
        f"CLI start-up, median of {args.runs} fresh processes "
        f"({platform.machine()}, Python {platform.python_version()})"
    )
    print()
    print("| Command | Median | vs python -c pass |")
    print("| --- | ---: | ---: |")
    for name, seconds in results.items():
        print(f"| {name} | {1000 * seconds:.0f} ms | {seconds / floor:.1f}x |")
    print()
    print(f"import torch / say --no-wait: {results['import torch'] / say:.1f}x")
    print(f"heavy modules loaded by importing the CLI: {', '.join(heavy) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"median_s": results, "runs": args.runs, "heavy_modules": heavy}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
