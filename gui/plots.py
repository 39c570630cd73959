"""A small live plot (sparkline) drawn with QPainter: the last minutes of one or more figures."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class Sparkline(QWidget):
    """Plots series of samples against a fixed or automatic maximum.

    ``add(values)`` appends one sample to each series (None leaves a gap).
    The newest sample is at the right; the title and the latest figures sit
    at the top left, drawn by ``format_value``.
    """

    def __init__(
        self,
        title: str,
        series: list[tuple[str, str]],
        maximum: float | None = None,
        unit: str = "",
        capacity: int = 150,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.series = series  # (label, colour)
        self.maximum = maximum
        self.unit = unit
        self.data: list[deque[float | None]] = [deque(maxlen=capacity) for _ in series]
        self.capacity = capacity
        self.format_value = lambda v: f"{v:.0f}{unit}"
        self.caption = ""
        #: Seconds between samples (the Stats page asks every 2 s): the time axis's scale.
        self.seconds_per_sample = 2.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(104)
        self.setMinimumWidth(160)

    def sizeHint(self) -> QSize:
        return QSize(260, 104)

    def add(self, values: list[float | None]) -> None:
        """Append one sample per series and repaint."""
        for series, value in zip(self.data, values, strict=False):
            series.append(value)
        self.update()

    def clear(self) -> None:
        """Forget every sample (a new daemon)."""
        for series in self.data:
            series.clear()
        self.update()

    def latest(self) -> list[float | None]:
        """The newest sample of each series."""
        return [s[-1] if s else None for s in self.data]

    def top(self) -> float:
        """The value at the top of the plot: the fixed maximum, or a little above the highest sample."""
        if self.maximum is not None:
            return self.maximum
        seen = [v for s in self.data for v in s if v is not None]
        return max(seen) * 1.15 if seen and max(seen) > 0 else 1.0

    def axis_labels(self) -> tuple[str, str, str, str]:
        """The scales drawn: (top of the value axis, its bottom, the oldest time, the newest)."""
        span = self.capacity * self.seconds_per_sample
        oldest = f"−{span / 60:.0f} min" if span >= 120 else f"−{span:.0f} s"
        return self.format_value(self.top()), self.format_value(0.0), oldest, "now"

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QPen(pal.mid().color(), 1))
        p.setBrush(pal.base())
        p.drawRoundedRect(rect, 6, 6)
        top = self.top()
        y_top, y_zero, x_old, x_now = self.axis_labels()
        small = p.font()
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        p.setFont(small)
        metrics = p.fontMetrics()
        left = max(metrics.horizontalAdvance(y_top), metrics.horizontalAdvance(y_zero)) + 10
        plot = rect.adjusted(left, 26, -6, -6 - metrics.height())
        # scales: values on the left, time along the bottom
        p.setPen(pal.placeholderText().color())
        p.drawText(QPointF(rect.left() + 4, plot.top() + metrics.ascent() / 2), y_top)
        p.drawText(QPointF(rect.left() + 4, plot.bottom() + metrics.ascent() / 2 - 2), y_zero)
        p.drawText(QPointF(plot.left(), rect.bottom() - 4), x_old)
        p.drawText(QPointF(plot.right() - metrics.horizontalAdvance(x_now), rect.bottom() - 4), x_now)
        # grid: quarter lines
        p.setPen(QPen(pal.midlight().color(), 1, Qt.PenStyle.DotLine))
        for i in range(1, 4):
            y = plot.bottom() - plot.height() * i / 4
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        step = plot.width() / max(1, self.capacity - 1)
        for (_, colour), series in zip(self.series, self.data, strict=False):
            path, pen_down = QPainterPath(), False
            start = self.capacity - len(series)
            for i, value in enumerate(series):
                if value is None:
                    pen_down = False
                    continue
                x = plot.left() + (start + i) * step
                y = plot.bottom() - plot.height() * max(0.0, min(1.0, value / top))
                (path.lineTo if pen_down else path.moveTo)(x, y)  # a gap (None) lifts the pen
                pen_down = True
            p.setPen(QPen(QColor(colour), 1.8))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
        # title and latest values
        p.setPen(pal.text().color())
        font = self.font()
        font.setBold(True)
        p.setFont(font)
        p.drawText(QPointF(rect.left() + 8, rect.top() + 17), self.title)
        x = rect.left() + 8 + p.fontMetrics().horizontalAdvance(self.title) + 12
        font.setBold(False)
        p.setFont(font)
        for (label, colour), value in zip(self.series, self.latest(), strict=False):
            text = f"{label} {self.format_value(value)}" if value is not None else f"{label} –"
            p.setPen(QColor(colour))
            p.drawText(QPointF(x, rect.top() + 17), text)
            x += p.fontMetrics().horizontalAdvance(text) + 12
        if self.caption:
            p.setPen(pal.placeholderText().color())
            width = p.fontMetrics().horizontalAdvance(self.caption)
            p.drawText(QPointF(rect.right() - width - 8, rect.top() + 17), self.caption)
        p.end()
