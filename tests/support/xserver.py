"""A private X server (Xvfb) for tests that need real X11: key grabs, the PRIMARY selection.

``xdotool`` presses keys through XTEST, exactly as a keyboard would reach a
grabbing client, and ``xclip`` owns selections the way an app with highlighted
text does.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time


class XServer:
    """An Xvfb on a free display number, and helpers that act on it."""

    def __init__(self) -> None:
        self.display = ""
        self.proc: subprocess.Popen | None = None
        self._owners: list[subprocess.Popen] = []

    def start(self) -> XServer:
        """Start Xvfb on a display number it picks itself.

        ``-displayfd`` makes the server choose a free number and write it once it
        accepts connections, so two test workers never race for the same one.
        """
        for missing in [t for t in ("Xvfb", "xdotool", "xclip") if shutil.which(t) is None]:
            raise RuntimeError(f"{missing} is not installed (Debian: xvfb, xdotool, xclip)")
        read_end, write_end = os.pipe()
        proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            ready, _, _ = select.select([pipe], [], [], 30)
            number = pipe.readline().decode().strip() if ready else ""
        if not number.isdigit():
            proc.kill()
            proc.wait()
            raise RuntimeError("could not start Xvfb (it named no display within 30 s)")
        self.display, self.proc = f":{number}", proc
        return self

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("WAYLAND_DISPLAY", None)
        env["DISPLAY"] = self.display
        return env

    def key(self, chord: str) -> None:
        """Press and release a chord, e.g. "ctrl+alt+s"."""
        subprocess.run(["xdotool", "key", chord], env=self.env, check=True, timeout=10)

    def own(self, selection: str, text: str) -> None:
        """Make ``text`` the owner of "primary" or "clipboard" (as an app with that text selected would)."""
        proc = subprocess.Popen(
            ["xclip", "-quiet", "-selection", selection],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        assert proc.stdin is not None
        proc.stdin.write(text.encode())
        proc.stdin.close()
        self._owners.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.read(selection) != text:
            time.sleep(0.05)

    def read(self, selection: str) -> str:
        done = subprocess.run(
            ["xclip", "-o", "-selection", selection], env=self.env, capture_output=True, timeout=10, check=False
        )
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    def disown(self) -> None:
        """Every selection we own is released (as when the app deselects or quits)."""
        for proc in self._owners:
            proc.kill()
            proc.wait()
        self._owners.clear()

    def stop(self) -> None:
        self.disown()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
