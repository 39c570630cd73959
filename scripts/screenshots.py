"""Screenshots of the tray app for the README: real windows on Xvfb, against a running daemon.

    uv run python scripts/screenshots.py [--out docs/screenshots]
    uv run python scripts/screenshots.py --states   # the real engine's states (test checkpoint)

Needs Debian's xvfb, trayer (a tray host) and imagemagick (``import``), and
the libraries Qt's xcb plugin loads (see docs/decisions.md or DESIGN.md):

    apt-get install xvfb trayer imagemagick libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 \
        libxcb-image0 libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0

It starts a fake-engine daemon in a throwaway home (with a few voices made by
espeak-ng), an Xvfb display with trayer on it, and the app itself, then walks
through the pages and the tray menu, saving one PNG each. Not part of CI.

``--states`` instead runs the real chatterbox classes on the random-weight
test checkpoint (tests/support/checkpoint.py; Turbo, the CPU default) and
shoots the window in each state a user meets, at its default size: failed (a
folder without the model's files; the Speak and Settings pages), loading,
working (speech being made, nothing heard yet; and paused then), speaking, paused and asleep
(unloaded while idle; the Speak and Stats pages).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DISPLAY = ":97"
SIZE = (1400, 960)
TEXT = (
    "Chatterbox Tray keeps the model loaded and every voice ready, so speech starts at once. "
    "Pick a voice, type or paste some text, and press Speak. "
    "The sentence being spoken is highlighted as it plays. "
    "Save as writes the same speech to a file instead."
)


def settle(app, seconds: float) -> None:
    """Let the app run (events, timers, daemon answers) for a while."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def snap(path: Path, geometry: tuple[int, int, int, int] | None = None) -> None:
    """Save the screen (or a part of it: x, y, w, h) as a PNG."""
    cmd = ["import", "-display", DISPLAY, "-window", "root"]
    if geometry:
        x, y, w, h = geometry
        cmd += ["-crop", f"{w}x{h}+{x}+{y}", "+repage"]
    subprocess.run([*cmd, str(path)], check=True)
    print("wrote", path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--states", action="store_true", help="the real engine's states (test checkpoint)")
    args = parser.parse_args()
    for tool in ("Xvfb", "trayer", "import"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install xvfb trayer imagemagick")
    args.out.mkdir(parents=True, exist_ok=True)

    procs: list[subprocess.Popen] = []
    daemon = None
    try:
        procs.append(subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"]))
        os.environ["DISPLAY"] = DISPLAY
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        time.sleep(1.0)
        if shutil.which("xsetroot"):  # a desktop-ish background (x11-xserver-utils)
            subprocess.run(["xsetroot", "-solid", "#5b6b7d"], check=False)
        # A panel with a tray at the top right.
        procs.append(
            subprocess.Popen(
                [
                    "trayer",
                    "--edge",
                    "top",
                    "--align",
                    "right",
                    "--widthtype",
                    "request",
                    "--height",
                    "30",
                    "--transparent",
                    "false",
                    "--tint",
                    "0x2b2f36",
                    "--SetDockType",
                    "true",
                    "--expand",
                    "true",
                ],
            )
        )

        from tests.support.daemons import Clips, DaemonProcess

        if args.states:
            from tests.support.checkpoint import ensure_checkpoint, loader_env

            ckpt = ensure_checkpoint("turbo")
            empty = Path(os.environ.get("TMPDIR", "/tmp")) / "cbt-no-model-here"
            empty.mkdir(exist_ok=True)
            daemon = DaemonProcess(
                args=("--engine", "chatterbox", "--device", "cpu", "--max-tokens-per-chunk", "40"),
                env=loader_env(ckpt, "turbo"),
            )
            daemon.home.mkdir(parents=True, exist_ok=True)
            settings = daemon.home / "config" / "settings.json"
            settings.parent.mkdir(parents=True, exist_ok=True)
            settings.write_text(json.dumps({"checkpoint": str(empty), "variant": "turbo"}))
            daemon.start(ready=False)
            return shoot_states(daemon, args.out, ckpt, Clips(daemon.home))
        daemon = DaemonProcess(env={"CHATTERBOX_TRAY_FAKE_DELAY": "0.4"})
        clips_dir = daemon.home / "clips"
        clips_dir.mkdir(parents=True, exist_ok=True)
        daemon.start()
        if shutil.which("xsetroot"):
            subprocess.run(["xsetroot", "-solid", "#5b6b7d"], check=False)
        clips = Clips(clips_dir)
        with daemon.client() as client:
            for name in ("Narrator", "Grandad", "Ann (calm)", "Newsreader"):
                client.voices_add(name, data=clips.new())
            client.voices_default("Narrator")
            # A few finished jobs, so the Stats page has something to show.
            for line in ("Good morning.", "The weather today is mild with light winds.", "That is all."):
                client.synthesize(line, voice="Narrator").collect()
            client.synthesize("One more from a cached voice.", voice="Grandad").collect()
        return shoot(daemon, args.out)
    finally:
        if daemon is not None:
            daemon.cleanup()
        for proc in reversed(procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def shoot(daemon, out: Path) -> int:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from chatterbox_tray.gui.app import TrayApp
    from chatterbox_tray.gui.icons import app_icon
    from chatterbox_tray.ipc import requests as rq

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Chatterbox Tray")
    app.setWindowIcon(app_icon())
    tray_app = TrayApp(daemon.connection_path, autostart=False)
    tray_app.start()
    window = tray_app.window
    # The window's own default size (gui/window.py DEFAULT_SIZE): what a new user sees.
    window.move(60, 70)
    settle(app, 3.0)
    if not tray_app.state.ready:
        print("the app did not connect", file=sys.stderr)
        return 1

    def window_shot(name: str) -> None:
        settle(app, 0.6)
        geo = window.frameGeometry()
        snap(out / name, (geo.x(), geo.y(), geo.width(), geo.height()))

    # Speak page, mid-speech, with a sentence highlighted.
    window.show_page("Speak")
    window.speak.text.setPlainText(TEXT)
    window.speak.speak()
    start = time.monotonic()
    while time.monotonic() - start < 30 and not window.speak.highlighted():
        settle(app, 0.1)
    settle(app, 2.5)  # into the sentence, with a position update
    window_shot("speak.png")

    # The tray menu, while it speaks.
    screen_w = app.primaryScreen().geometry().width()
    geo = tray_app.tray.icon.geometry()
    anchor = QPoint(geo.x(), geo.bottom() + 2) if geo.width() > 0 else QPoint(screen_w - 260, 32)
    menu = tray_app.tray.menu
    menu.popup(anchor)
    settle(app, 0.8)
    menu_geo = menu.geometry()
    menu.setActiveAction(tray_app.tray.voices_menu.menuAction())
    QTest.keyClick(menu, Qt.Key.Key_Right)  # opens the submenu where Qt puts it
    settle(app, 0.8)
    left = max(0, min(menu_geo.left() - 190, screen_w - 520))
    snap(out / "tray-menu.png", (left, 0, screen_w - left, menu_geo.bottom() + 12))
    tray_app.tray.voices_menu.hide()
    menu.hide()
    settle(app, 0.3)

    tray_app.state.send(rq.stop(all=True))
    settle(app, 1.0)

    window.show_page("Voices")
    window.voices.select("Grandad")
    window_shot("voices.png")

    window.show_page("Stats")
    window.speak.speak()  # live figures while something plays
    settle(app, 12.0)
    window_shot("stats.png")
    tray_app.state.send(rq.stop(all=True))

    window.show_page("Settings")
    settle(app, 1.0)
    window_shot("settings.png")

    tray_app.close()
    return 0


def shoot_states(daemon, out: Path, ckpt: Path, clips) -> int:
    """The window in each state, with the real engine: failed, loading, working, speaking, paused, asleep."""
    from PySide6.QtWidgets import QApplication

    from chatterbox_tray.gui.app import TrayApp
    from chatterbox_tray.gui.icons import app_icon

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Chatterbox Tray")
    app.setWindowIcon(app_icon())
    tray_app = TrayApp(daemon.connection_path, autostart=False)
    tray_app.start()
    window, state = tray_app.window, tray_app.state
    window.move(60, 70)

    def wait(what, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if what():
                return True
            settle(app, 0.1)
        print("gave up waiting", file=sys.stderr)
        return False

    def window_shot(name: str) -> None:
        settle(app, 0.6)
        geo = window.frameGeometry()
        snap(out / name, (geo.x(), geo.y(), geo.width(), geo.height()))

    window.show_page("Speak")
    wait(lambda: state.model_state == "failed", 300)
    window_shot("state-failed.png")
    window.show_page("Settings")  # what is loaded (nothing), said as it is
    window_shot("state-failed-settings.png")
    window.show_page("Speak")
    with daemon.client() as client:  # what "Use a local folder…" does, without the file dialog
        client.settings_set(checkpoint=str(ckpt))
        client.retry_load()
    wait(lambda: state.model_state == "loading" and state.status.progress >= 0.15, 300)
    window_shot("state-loading.png")
    wait(lambda: state.ready, 900)
    with daemon.client(timeout=600) as client:
        client.voices_add("Narrator", data=clips.new())
        client.voices_default("Narrator")
    wait(lambda: state.default_voice == "Narrator", 30)
    window.speak.text.setPlainText(TEXT)
    window.speak.speak()
    wait(lambda: state.icon_state == "working", 120)
    settle(app, 2.0)
    window_shot("state-working.png")
    window.speak.toggle_pause()  # paused before the first sound: how far it is stays said
    wait(lambda: state.icon_state == "paused", 30)
    settle(app, 1.0)
    window_shot("state-paused-making.png")
    window.speak.toggle_pause()
    wait(lambda: not state.paused, 30)
    wait(lambda: state.icon_state == "speaking", 900)
    settle(app, 0.5)
    window_shot("state-speaking.png")
    window.speak.toggle_pause()
    wait(lambda: state.icon_state == "paused", 30)
    window_shot("state-paused.png")
    window.speak.toggle_pause()  # resume: a speaker left paused would show as paused from now on
    window.speak.stop()
    wait(lambda: not state.busy and not state.paused, 120)
    with daemon.client() as client:
        client.settings_set(unload_after_idle_minutes=0.02)
    wait(lambda: state.icon_state == "sleeping", 300)
    window_shot("state-asleep.png")
    window.show_page("Stats")  # the memory line says what the unload gave back; the page still fits
    wait(lambda: "idle unload at" in window.stats.values["rss"].text(), 30)
    window_shot("state-asleep-stats.png")
    tray_app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
