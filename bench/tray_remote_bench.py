"""The tray app with a remote daemon: first sound here, and how soon Stop ends it.

Run from the repo root::

    uv run python -m bench.tray_remote_bench [--runs 20] [--json out.json]

It starts a fake-engine daemon that serves the network with CURVE on
127.0.0.1 (its own home, ``CHATTERBOX_TRAY_FAKE_DELAY`` per chunk so speech
is still coming when Stop is pressed), pairs a second home with it through
the real exchange, and runs the real app (offscreen Qt) in that second home,
linked to the remote daemon, playing through PortAudio into an ALSA file
sink. Per run it presses Speak on the Speak page with a long text and
records the time from the click to the ``started`` event (the first
sentence handed to this computer's speaker), then presses Stop once the
second sentence plays and records the time to the ``cancelled`` event (the
local player has taken the speech off its queue and the GUI thread heard
of it). The player writes 20 ms blocks paced by the clock with at most
60 ms ahead, and drops what the device has not played on Stop
(``bench/localplay_bench.py`` measures that part). Nothing asserts anything
about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatterbox_tray.ipc import endpoints  # noqa: E402
from tests.protocol.test_cli import cli, ok  # noqa: E402
from tests.protocol.test_remote import free_port_pair  # noqa: E402
from tests.support.daemons import DaemonProcess, short_home, voiced_tone  # noqa: E402

LONG = " ".join(f"Sentence number {i} is here." for i in range(12))


def wait(app, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.001)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2, help="the fake engine's seconds per chunk")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    gpu_home, laptop_home = short_home(), short_home()
    port = free_port_pair()
    (gpu_home / "config").mkdir(parents=True)
    settings = {"remote": {"enabled": True, "bind": f"127.0.0.1:{port}"}}
    (gpu_home / "config" / "settings.json").write_text(json.dumps(settings))
    gpu = DaemonProcess(home=gpu_home, env={"CHATTERBOX_TRAY_FAKE_DELAY": str(args.delay)}).start()
    laptop = DaemonProcess(home=laptop_home)  # a home only: the app never needs its daemon here
    first_sound: list[float] = []
    stop_to_end: list[float] = []
    try:
        code = re.search(r"pairing code:\s+(\S+)", ok(cli(gpu, "remote", "invite"))).group(1)
        ok(cli(laptop, "remote", "add", "gpu-box", f"127.0.0.1:{port}", code))
        with gpu.client() as owner:
            owner.voices_add("narrator", data=voiced_tone())
            owner.voices_default("narrator")
        os.environ[endpoints.HOME_ENV] = str(laptop_home)
        os.environ["ALSA_CONFIG_PATH"] = laptop.env()["ALSA_CONFIG_PATH"]
        from PySide6.QtWidgets import QApplication

        from chatterbox_tray.gui.app import TrayApp

        qapp = QApplication.instance() or QApplication([])
        tray = TrayApp(None, autostart=False, probe_microphone=False, daemon="gpu-box")
        tray.start()
        wait(qapp, lambda: tray.state.ready and tray.state.remote == "gpu-box")
        page = tray.window.speak
        events: list[tuple[float, dict]] = []
        tray.state.job_event.connect(lambda data: events.append((time.perf_counter(), data)))

        def mine(name: str) -> list[float]:
            """When this run's speech had event ``name``."""
            return [t for t, e in events if e.get("request") == page.request_id and e["event"] == name]

        for _ in range(args.runs):
            events.clear()
            page.text.setPlainText(LONG)
            clicked = time.perf_counter()
            page.speak_button.click()
            wait(qapp, lambda: mine("started"))
            first_sound.append(mine("started")[0] - clicked)
            wait(qapp, lambda: len(mine("sentence")) >= 2)
            stopped = time.perf_counter()
            page.stop_button.click()
            wait(qapp, lambda: mine("cancelled"))
            stop_to_end.append(mine("cancelled")[0] - stopped)
            wait(qapp, lambda: not tray.state.busy)
        tray.close()
    finally:
        gpu.cleanup()
        shutil.rmtree(laptop_home, ignore_errors=True)

    def row(name: str, values: list[float]) -> str:
        ms = sorted(v * 1000 for v in values)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        return f"| {name} | {statistics.median(ms):.1f} ms | {p90:.1f} ms | {max(ms):.1f} ms |"

    print(f"{args.runs} runs, fake engine {args.delay} s per chunk, {platform.node()}, {os.cpu_count()} CPUs")
    print("| from | median | p90 | max |\n|---|---|---|---|")
    print(row("Speak click to first sentence on this computer's speaker", first_sound))
    print(row("Stop click to the local player's end (cancelled)", stop_to_end))
    if args.json:
        args.json.write_text(json.dumps({"first_sound_s": first_sound, "stop_s": stop_to_end}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
