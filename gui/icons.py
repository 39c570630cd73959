"""The app's icons, drawn in code so they are crisp at any size and need no files.

A rounded speech bubble whose colour and mark say the daemon's state:
loading (grey, an arc), ready (blue, three dots), sleeping (grey-blue, a "z":
the model was unloaded while idle), working (blue, growing dots: speech is
being made), speaking (green, sound waves),
paused (amber, two bars), error (red, an exclamation mark).
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPainterPath, QPen, QPixmap

COLORS = {
    "loading": "#7c8794",
    "ready": "#2f6fdf",
    "sleeping": "#6b86b3",
    "working": "#2f6fdf",
    "speaking": "#1f9d55",
    "paused": "#d98a00",
    "error": "#d64545",
}


def paint(painter: QPainter, size: int, state: str) -> None:
    """Draw the icon for ``state`` into a ``size`` × ``size`` square."""
    s = size / 32.0
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QColor(COLORS.get(state, COLORS["loading"]))
    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(2 * s, 3 * s, 28 * s, 21 * s), 7 * s, 7 * s)
    tail = QPainterPath(QPointF(8 * s, 22 * s))
    for x, y in ((6, 30), (15, 23)):
        tail.lineTo(x * s, y * s)
    tail.closeSubpath()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(color))
    painter.drawPath(bubble.united(tail))
    white = QColor("white")
    pen = QPen(white, 2.4 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    center = QPointF(16 * s, 13.5 * s)
    if state == "speaking":
        painter.setPen(pen)
        for height, x in ((4, 8), (9, 12), (12, 16), (8, 20), (4, 24)):
            painter.drawLine(QPointF(x * s, center.y() - height / 2 * s), QPointF(x * s, center.y() + height / 2 * s))
    elif state == "paused":
        painter.setBrush(white)
        for x in (11, 17.5):
            painter.drawRoundedRect(QRectF(x * s, 8 * s, 3.5 * s, 11 * s), s, s)
    elif state == "error":
        painter.setPen(QPen(white, 3 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawLine(QPointF(16 * s, 8 * s), QPointF(16 * s, 14.5 * s))
        painter.drawPoint(QPointF(16 * s, 19.5 * s))
    elif state == "sleeping":  # a "z": resting, wakes when spoken to
        painter.setPen(QPen(white, 2.4 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        z = QPainterPath(QPointF(11.5 * s, 8.5 * s))
        for x, y in ((20.5, 8.5), (11.5, 18.5), (20.5, 18.5)):
            z.lineTo(x * s, y * s)
        painter.drawPath(z)
    elif state == "loading":
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawArc(QRectF(10.5 * s, 8 * s, 11 * s, 11 * s), 90 * 16, -270 * 16)
    else:  # ready: three dots, "ready to talk"; working (ready's colour): dots filling in, speech on its way
        painter.setBrush(white)
        radii = (1.4, 2.1, 2.8) if state == "working" else (2.1, 2.1, 2.1)
        for x, r in zip((10, 16, 22), radii, strict=True):
            painter.drawEllipse(QPointF(x * s, center.y()), r * s, r * s)


def render_image(size: int, state: str = "ready") -> QImage:
    """The icon for ``state`` as a ``size`` x ``size`` image on a transparent
    background: what the installers' icon files (hicolor PNGs, .ico, .icns) are
    made from. Needs a QGuiApplication (offscreen will do)."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    paint(painter, size, state)
    painter.end()
    return image


def render_png(size: int, state: str = "ready") -> bytes:
    """``render_image`` encoded as PNG."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    render_image(size, state).save(buffer, "PNG")
    return bytes(buffer.data())


@cache
def state_icon(state: str) -> QIcon:
    """The tray icon for a state, at the sizes trays and docks ask for."""
    icon = QIcon()
    for size in (16, 22, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(QPixmap.fromImage(render_image(size, state)))
    return icon


def app_icon() -> QIcon:
    """The window and application icon."""
    return state_icon("ready")
