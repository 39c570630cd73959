"""Figures for people, shared by the CLI and the tray app (the standard library only)."""

from __future__ import annotations


def human_bytes(n: float | None, missing: str = "–") -> str:
    """A byte count in binary units: 1536 -> '1.5 KiB'; ``missing`` when there is none."""
    if n is None:
        return missing
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # not reached: the loop returns at TiB
