"""Render the app icon (the tray's "ready" bubble) into chatterbox-tray.icns.

The icon is drawn in code by ``chatterbox_tray.gui.icons``; this renders it with
Qt (offscreen, no display needed) at every size macOS uses and packs them with
Pillow, which writes .icns on any system (Apple's iconutil is macOS-only). The
.icns is committed, so building the app needs neither; run this again after
changing the drawing:

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/macos/make_icns.py
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render_png(size: int, state: str = "ready") -> bytes:
    """The icon at ``size`` pixels as PNG bytes, drawn by the GUI's own code."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from chatterbox_tray.gui import icons

    _app = QGuiApplication.instance() or QGuiApplication([])
    return icons.render_png(size, state)


def write_icns(path: Path) -> None:
    """Write an .icns holding every size to ``path``."""
    from PIL import Image

    images = [Image.open(io.BytesIO(render_png(size))).convert("RGBA") for size in SIZES]
    images[-1].save(path, format="ICNS", append_images=images[:-1])


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("chatterbox-tray.icns"))
    args = parser.parse_args(argv)
    write_icns(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
