"""The installed desktop entry starts the real tray app, and the window it opens is matched back to the entry.

Runs on a private Xvfb against a fake-engine daemon. Desktops match a window
to its desktop entry by ``_GTK_APPLICATION_ID`` / ``_KDE_NET_WM_DESKTOP_FILE``
(Qt sets them from ``setDesktopFileName``) or by ``StartupWMClass`` against
``WM_CLASS``; both must name what install.sh installed. Needs Debian's
``xvfb xdotool xclip`` (tests/support/xserver.py) and ``x11-utils`` (xwininfo, xprop),
plus the Qt xcb libraries the GUI tests under Xvfb need.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.test_linux_packaging import APP, Sandbox, desktop_entry, exec_argv, make_system_bin, this_env
from tests.support.daemons import DaemonProcess
from tests.support.xserver import XServer

WINDOW_TIMEOUT_S = 90


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox", make_system_bin(tmp_path / "system-bin"))


@pytest.fixture
def xserver() -> Iterator[XServer]:
    for name in ("xwininfo", "xprop"):
        if shutil.which(name) is None:
            pytest.fail(f"{name} is not installed: apt-get install x11-utils")
    server = XServer().start()
    yield server
    server.stop()


@pytest.fixture
def daemon() -> Iterator[DaemonProcess]:
    proc = DaemonProcess().start()
    yield proc
    proc.cleanup()


def window_properties(xserver: XServer) -> dict[str, str]:
    """xprop's lines for each top-level window that has a WM_CLASS, keyed by window id."""
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], env=xserver.env, capture_output=True, text=True, timeout=10, check=True
    ).stdout
    found = {}
    for window in re.findall(r"^\s+(0x[0-9a-f]+) ", tree, re.M):
        props = subprocess.run(
            ["xprop", "-id", window, "WM_CLASS", "_GTK_APPLICATION_ID", "_KDE_NET_WM_DESKTOP_FILE"],
            env=xserver.env,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        if "WM_CLASS(STRING)" in props:
            found[window] = props
    return found


def test_the_menu_entry_opens_a_window_the_desktop_can_match_to_it(
    sandbox: Sandbox, xserver: XServer, daemon: DaemonProcess
) -> None:
    sandbox.install("--python-env", str(this_env()))
    installed = sandbox.share / "applications" / f"{APP}.desktop"
    entry = desktop_entry(installed)["Desktop Entry"]
    env = daemon.env() | {"DISPLAY": xserver.display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    log_path = sandbox.root / "gui.log"
    with open(log_path, "wb") as out:
        gui = subprocess.Popen(exec_argv(entry["Exec"]), env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + WINDOW_TIMEOUT_S
        windows: dict[str, str] = {}
        while time.monotonic() < deadline and gui.poll() is None:
            windows = window_properties(xserver)
            if any(f'"{entry["StartupWMClass"]}"' in props for props in windows.values()):
                break
            time.sleep(0.5)
        assert gui.poll() is None, log_path.read_text(errors="replace")
        matching = [p for p in windows.values() if f'WM_CLASS(STRING) = "{entry["StartupWMClass"]}",' in p]
        assert matching, f"no window with WM_CLASS {entry['StartupWMClass']!r}: {windows}"
        desktop_id = installed.stem
        for props in matching:
            assert f'_GTK_APPLICATION_ID(UTF8_STRING) = "{desktop_id}"' in props, props
            assert f'_KDE_NET_WM_DESKTOP_FILE(UTF8_STRING) = "{desktop_id}"' in props, props
    finally:
        gui.terminate()
        try:
            gui.wait(timeout=15)
        except subprocess.TimeoutExpired:
            gui.kill()
            gui.wait()
