"""Render the app icon's PNGs for the hicolor theme with the GUI's own drawing code.

The tray app draws its icons in code (``gui/icons.py``); this paints the same
"ready" icon into the PNG sizes desktops look for, next to the hand-written
SVG in ``icons/hicolor/scalable/apps``. Run it from the repo root after
changing ``gui/icons.py``, and commit the result::

    .venv/bin/python packaging/linux/make_icons.py

The packaging tests check that the committed PNGs and the SVG still match
what the code draws.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ICON_NAME = "chatterbox-tray"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
HERE = Path(__file__).resolve().parent


def render(size: int):
    """The app icon as a ``size`` × ``size`` QImage with a transparent background."""
    from chatterbox_tray.gui.icons import render_image

    return render_image(size, "ready")


def png_path(theme_dir: Path, size: int) -> Path:
    """Where the PNG of one size lives in a hicolor-layout folder."""
    return theme_dir / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"


def write_pngs(theme_dir: Path) -> list[Path]:
    """Write every size under ``theme_dir``; return the files."""
    written = []
    for size in SIZES:
        path = png_path(theme_dir, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not render(size).save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "icons" / "hicolor", help="hicolor-layout folder to write into"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter wants one
    for path in write_pngs(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
