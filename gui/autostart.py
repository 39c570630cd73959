"""Start the tray app with the desktop session: per-platform, owned by the GUI (not a daemon setting).

- Linux and other XDG desktops: a ``.desktop`` file in ``$XDG_CONFIG_HOME/autostart``.
- macOS: a LaunchAgent plist in ``~/Library/LaunchAgents`` with ``RunAtLoad``.
- Windows: a value under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``.

The command is the installed ``chatterbox-tray-gui`` script when there is one
beside the running Python, else ``python -m chatterbox_tray.gui``; either way
with ``--minimized`` so the app starts in the tray.
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shlex
import shutil
import sys
from pathlib import Path

APP_ID = "chatterbox-tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


def command() -> list[str]:
    """The command line that starts the app minimized."""
    scripts = Path(sys.executable).parent
    for exe in (scripts / "chatterbox-tray-gui", scripts / "chatterbox-tray-gui.exe"):
        if exe.exists():
            return [str(exe), "--minimized"]
    if found := shutil.which("chatterbox-tray-gui"):
        return [found, "--minimized"]
    return [sys.executable, "-m", "chatterbox_tray.gui", "--minimized"]


def _desktop_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "autostart" / f"{APP_ID}.desktop"


def _launch_agent() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"org.{APP_ID}.gui.plist"


def is_enabled() -> bool:
    """Whether the app starts with the session."""
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                winreg.QueryValueEx(key, APP_ID)
            return True
        except OSError:
            return False
    if sys.platform == "darwin":
        return _launch_agent().exists()
    return _desktop_file().exists()


def set_enabled(enabled: bool) -> None:
    """Turn starting with the session on or off; raises OSError if it cannot."""
    cmd = command()
    if sys.platform == "win32":
        import subprocess
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            if enabled:
                winreg.SetValueEx(key, APP_ID, 0, winreg.REG_SZ, subprocess.list2cmdline(cmd))
            else:
                with contextlib.suppress(FileNotFoundError):
                    winreg.DeleteValue(key, APP_ID)
        return
    path = _launch_agent() if sys.platform == "darwin" else _desktop_file()
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if sys.platform == "darwin":
        path.write_bytes(plistlib.dumps({"Label": f"org.{APP_ID}.gui", "ProgramArguments": cmd, "RunAtLoad": True}))
    else:
        path.write_text(
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=Chatterbox Tray\n"
            "Comment=Text to speech with Chatterbox, from the system tray\n"
            f"Exec={shlex.join(cmd)}\n"
            "Icon=chatterbox-tray\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n",
            encoding="utf-8",
        )
