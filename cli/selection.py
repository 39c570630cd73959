"""Read the text a person selected, for ``say --selection`` and ``quick``.

This runs in the CLI, which a desktop shortcut starts on every keypress, so it
imports nothing heavy and asks the platform's own tools:

- X11 and Wayland: the PRIMARY selection (what is highlighted, no copy needed)
  through ``wl-paste --primary`` (Wayland), ``xclip`` or ``xsel`` (X11); when it
  is empty, the clipboard through the same tools.
- macOS: ``pbpaste`` (the clipboard: macOS has no PRIMARY selection, so copy
  first; the tray app's hotkey does the copy for you).
- Windows: the clipboard through the Win32 API (ctypes; no PowerShell start-up).

Each reader returns None when its tool is missing or fails, so the next one is
tried; ``read_selection`` raises ``SelectionError`` with what to install when
nothing could be read at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

#: How long a clipboard tool may take (a selection owner that hangs must not hang us).
TOOL_TIMEOUT_S = 2.0


class SelectionError(Exception):
    """No selection or clipboard could be read; the message says why."""


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        # xclip and wl-paste fail when the selection is empty or unowned: that is "nothing", not an error.
        return ""
    return done.stdout.decode("utf-8", errors="replace")


def _unix_readers(primary: bool) -> list[list[str]]:
    which = "primary" if primary else "clipboard"
    readers = []
    if os.environ.get("WAYLAND_DISPLAY"):
        readers.append(["wl-paste", "--no-newline"] + (["--primary"] if primary else []))
    if os.environ.get("DISPLAY"):
        readers.append(["xclip", "-o", "-selection", which])
        readers.append(["xsel", "--output", "--primary" if primary else "--clipboard"])
    return readers


def _windows_clipboard() -> str | None:
    import ctypes
    from ctypes import wintypes

    cf_unicodetext = 13
    user32, kernel32 = ctypes.windll.user32, ctypes.windll.kernel32  # type: ignore[attr-defined]
    user32.GetClipboardData.restype = wintypes.HANDLE
    kernel32.GlobalLock.restype = ctypes.c_void_p
    kernel32.GlobalLock.argtypes = [wintypes.HGLOBAL]
    kernel32.GlobalUnlock.argtypes = [wintypes.HGLOBAL]
    if not user32.OpenClipboard(None):
        return None
    try:
        handle = user32.GetClipboardData(cf_unicodetext)
        if not handle:
            return ""
        ptr = kernel32.GlobalLock(handle)
        try:
            return ctypes.wstring_at(ptr) if ptr else ""
        finally:
            kernel32.GlobalUnlock(handle)
    finally:
        user32.CloseClipboard()


def read_selection() -> str:
    """The PRIMARY selection, else the clipboard.

    The text may be empty (nothing is selected or copied); SelectionError
    means no tool could read either.
    """
    if sys.platform == "win32":
        text = _windows_clipboard()
        if text is None:
            raise SelectionError("the clipboard is busy (another program holds it open); try again")
        return text
    if sys.platform == "darwin":
        text = _run(["pbpaste"])
        if text is None:
            raise SelectionError("pbpaste is missing or failed")
        return text
    any_tool = False
    for primary in (True, False):
        for argv in _unix_readers(primary):
            text = _run(argv)
            if text is None:
                continue
            any_tool = True
            if text.strip():
                return text
            break  # this tool answered: the selection is empty; try the clipboard
    if not any_tool:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SelectionError("no desktop session (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        tools = [reader[0] for reader in _unix_readers(True)] or ["xclip"]
        raise SelectionError(f"cannot read the selection: install one of {', '.join(dict.fromkeys(tools))}")
    return ""
