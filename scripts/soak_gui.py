"""Soak the tray app: the real app on Xvfb with the Stats page open while speech keeps playing.

    uv run python scripts/soak_gui.py [--minutes 30] [--engine real|fake] [--out docs/soak]

Why: PySide6 6.12.0 drained ``None``'s refcount by one on every Qt call that
returns nothing, and the app aborted with ``none_dealloc`` after 2-20 minutes
(the Stats page's plots got there fastest). 531 short tests missed it; only a
long run of the real app finds that kind of bug. Not part of the test suite.

What runs: Xvfb with trayer (a tray host), a daemon in a throwaway home whose
"speaker" is ALSA's file plugin, with the random-weight test checkpoint
(``--engine real``, the default) or the fake engine, and the real ``TrayApp``
in this process, with its window on the Stats page. A client thread keeps a
``speak`` job going for the whole run. Every 30 s the script records the
refcounts of None, True and False, both processes' memory, and the jobs done.
It fails (exit 1) if the app or the daemon dies, a refcount falls by more than
1000, or no job finishes. Needs Debian's xvfb, trayer and espeak-ng.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT = "The soak test keeps the speaker busy. It speaks this again and again."
#: A refcount may wander as objects come and go; 6.12.0 lost thousands a minute.
REFCOUNT_SLACK = 1000


def _free_display() -> str:
    for n in range(120, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    raise SystemExit("no free X display number")


def _rss_mb(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return float("nan")


class Speaker(threading.Thread):
    """A client that keeps one speech job playing until told to stop."""

    def __init__(self, daemon, voice: str) -> None:
        super().__init__(daemon=True, name="soak-speaker")
        self.daemon_proc = daemon
        self.voice = voice
        self.done = 0
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with self.daemon_proc.client(timeout=600.0) as client:
            while not self.halt.is_set():
                try:
                    job = client.speak(TEXT, voice=self.voice)["job"]
                    client.wait(job)
                    self.done += 1
                except Exception as exc:  # recorded, the soak goes on
                    self.errors.append(str(exc))
                    time.sleep(2.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--engine", choices=("real", "fake"), default="real", help="the daemon's engine")
    parser.add_argument("--variant", default="original", help="checkpoint variant for --engine real")
    parser.add_argument(
        "--max-tokens", type=int, default=12, help="speech tokens per sentence for --engine real (small: a CPU is slow)"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for soak.json (default: print only)")
    args = parser.parse_args()
    for tool in ("Xvfb", "trayer", "espeak-ng"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install xvfb trayer espeak-ng")

    from tests.support.checkpoint import ensure_checkpoint, loader_env
    from tests.support.daemons import Clips, DaemonProcess

    display = _free_display()
    procs: list[subprocess.Popen] = []
    daemon = None
    try:
        procs.append(subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x860x24", "-nolisten", "tcp"]))
        os.environ["DISPLAY"] = display
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        os.environ.pop("WAYLAND_DISPLAY", None)
        time.sleep(1.0)
        procs.append(subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--SetDockType", "true"]))
        if args.engine == "real":
            ckpt = ensure_checkpoint(args.variant)
            dargs = ("--checkpoint", str(ckpt), "--device", "cpu", "--variant", args.variant)
            dargs += ("--max-tokens-per-chunk", str(args.max_tokens))
            daemon = DaemonProcess(args=dargs, env=loader_env(ckpt, args.variant))
        else:
            daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "0.4"})
        daemon.start(timeout=900.0)
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, daemon.pid, 10)  # a long run should not starve the machine
        clips_dir = daemon.home / "clips"
        clips_dir.mkdir(parents=True, exist_ok=True)
        with daemon.client(timeout=300.0) as client:
            client.voices_add("Soak", data=Clips(clips_dir).new())
        return soak(daemon, args)
    finally:
        if daemon is not None:
            daemon.cleanup()
        for proc in reversed(procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def soak(daemon, args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from chatterbox_tray.gui.app import TrayApp
    from chatterbox_tray.gui.icons import app_icon

    app = QApplication([sys.argv[0]])
    app.setWindowIcon(app_icon())
    tray_app = TrayApp(daemon.connection_path, autostart=False)
    tray_app.start()
    tray_app.window.resize(900, 680)
    tray_app.window.show_page("Stats")
    speaker = Speaker(daemon, "Soak")
    started = time.monotonic()
    start_counts = {name: sys.getrefcount(value) for name, value in (("None", None), ("True", True), ("False", False))}
    samples: list[dict] = []
    failures: list[str] = []

    def sample() -> None:
        counts = {name: sys.getrefcount(value) for name, value in (("None", None), ("True", True), ("False", False))}
        row = {
            "minute": round((time.monotonic() - started) / 60, 2),
            "refcounts": counts,
            "app_rss_mb": round(_rss_mb(os.getpid()), 1),
            "daemon_rss_mb": round(_rss_mb(daemon.pid), 1),
            "jobs_done": speaker.done,
            "daemon_alive": daemon.alive,
            "app_state": tray_app.state.icon_state,
            "python_objects": len(gc.get_objects()),
        }
        samples.append(row)
        print(json.dumps(row), flush=True)
        for name, count in counts.items():
            if count < start_counts[name] - REFCOUNT_SLACK:
                failures.append(f"refcount of {name} fell from {start_counts[name]} to {count}")
        if not daemon.alive:
            failures.append("the daemon died")
        if failures:
            app.quit()

    def begin() -> None:
        speaker.start()

    QTimer.singleShot(2000, begin)
    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(30_000)
    QTimer.singleShot(int(args.minutes * 60_000), app.quit)
    app.exec()
    sample()
    speaker.halt.set()
    tray_app.close()
    if speaker.done == 0:
        failures.append("no speech job finished")
    result = {
        "minutes": round((time.monotonic() - started) / 60, 2),
        "engine": args.engine,
        "pyside6": __import__("PySide6").__version__,
        "python": sys.version.split()[0],
        "jobs_done": speaker.done,
        "speaker_errors": speaker.errors[:10],
        "start_refcounts": start_counts,
        "end_refcounts": samples[-1]["refcounts"] if samples else None,
        "app_rss_mb_first_last": [samples[0]["app_rss_mb"], samples[-1]["app_rss_mb"]] if samples else None,
        "daemon_rss_mb_first_last": [samples[0]["daemon_rss_mb"], samples[-1]["daemon_rss_mb"]] if samples else None,
        "failures": failures,
        "samples": samples,
    }
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
