"""Screenshots of issue 21's screens for the README: the Pronunciation page, the Insert menu, Read what I copy.

    uv run python scripts/screenshots_saying.py [--out docs/screenshots]

Qt draws the real widgets itself (``QWidget.grab``), so no X server, tray
host or screen grabber is needed; the open menu is painted over the window
where Qt opens it on a screen with room for it (under its button). The daemon is a fake Turbo (its engine knows a few of
Turbo's tags, as the real one reads them from its tokenizer) in a throwaway
home, with a voice made by espeak-ng where it is installed. Not part of CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

RULES = [
    {"word": "nginx", "say": "engine x"},
    {"word": "SQL", "say": "sequel"},
    {"word": "Dr.", "say": "Doctor", "case_sensitive": True},
    {"word": "→", "say": " to "},
    {"word": r"(\d+)\s?km", "say": r"\1 kilometres", "regex": True},
]
TEXT = "Well [chuckle] that went better than I thought. [pause 1s] Shall we try it again tomorrow?"


def settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from tests.support.daemons import Clips, DaemonProcess

    daemon = DaemonProcess(args=("--engine", "fake", "--variant", "turbo"))
    clips_dir = daemon.home / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    daemon.start()
    try:
        with daemon.client() as client:
            client.voices_add("Narrator", data=Clips(clips_dir).new())
            client.voices_default("Narrator")
            client.call("words.import", {"rules": RULES})
        return shoot(daemon, args.out)
    finally:
        daemon.cleanup()


def shoot(daemon, out: Path) -> int:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QApplication

    from chatterbox_tray.gui.app import TrayApp
    from chatterbox_tray.gui.icons import app_icon

    app = QApplication([sys.argv[0]])
    app.setApplicationName("Chatterbox Tray")
    app.setWindowIcon(app_icon())
    os.environ["CHATTERBOX_TRAY_HOME"] = str(daemon.home)  # the app's gui.json in the throwaway home
    tray_app = TrayApp(daemon.connection_path, autostart=False, probe_microphone=False)
    tray_app.start()
    window = tray_app.window
    from chatterbox_tray.gui.window import DEFAULT_SIZE

    window.resize(*DEFAULT_SIZE)  # the window's own first size (the offscreen "screen" is smaller)
    window.show()
    settle(app, 3.0)
    if not tray_app.state.ready:
        print("the app did not connect", file=sys.stderr)
        return 1

    window.show_page("Pronunciation")
    page = window.pronunciation
    settle(app, 1.0)
    page.table.selectRow(0)
    page.example.setText("Restart nginx, then ask Dr. Lee about the SQL dump. [pause 500ms] It is 5km away.")
    page.preview()
    settle(app, 1.5)
    window.grab().save(str(out / "pronunciation.png"))
    print("wrote", out / "pronunciation.png")

    window.show_page("Speak")
    speak = window.speak
    speak.text.setPlainText(TEXT)
    cursor = speak.text.textCursor()
    cursor.setPosition(len("Well [chuckle] that went better than I thought."))
    speak.text.setTextCursor(cursor)
    settle(app, 1.0)
    button = speak.tag_menu
    menu = button.menu_
    menu.popup(button.mapToGlobal(QPoint(0, button.height())))
    settle(app, 1.0)
    shot = window.grab()
    painter = QPainter(shot)
    # Where Qt opens it on a screen with room: under the button, their left edges lined up.
    painter.drawPixmap(button.mapTo(window, QPoint(0, button.height())), menu.grab())
    painter.end()
    shot.save(str(out / "tag-menu.png"))
    print("wrote", out / "tag-menu.png")
    menu.hide()

    # The tray menu with "Read what I copy" on (its tooltip then says so too).
    tray = tray_app.tray
    tray.read_copies.setChecked(True)
    tray.menu.popup(QPoint(0, 0))
    settle(app, 1.0)
    tray.menu.grab().save(str(out / "tray-read-copies.png"))
    print("wrote", out / "tray-read-copies.png")
    tray.menu.hide()
    tray.read_copies.setChecked(False)
    tray_app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
