"""A person's voice is private: the daemon's clips and cache are for its user alone."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.daemons import Clips, DaemonProcess


def modes(root: Path) -> dict[str, int]:
    """Permission bits of every folder and file under ``root``, by relative path."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_clips_and_cache_are_private_and_an_old_install_is_tightened(clips: Clips) -> None:
    proc = DaemonProcess()
    # An install from before the fix: world-readable folders and clip.
    old_voices = proc.home / "data" / "voices"
    old_voices.mkdir(parents=True)
    os.chmod(proc.home / "data", 0o755)
    os.chmod(old_voices, 0o755)
    old_clip = old_voices / "old.wav"
    old_clip.write_bytes(clips.new())
    os.chmod(old_clip, 0o644)
    proc.start()
    try:
        with proc.client() as client:
            client.voices_add("private", data=clips.new())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any((proc.home / "cache" / "conditionals").glob("*")):
                time.sleep(0.1)
        for root in (proc.home / "data", proc.home / "cache"):
            for name, mode in modes(root).items():
                assert mode & 0o077 == 0, f"{root.name}/{name} is {oct(mode)}: other users could read it"
        assert any((proc.home / "cache" / "conditionals").glob("*")), "the voice was never cached"
        if os.geteuid() == 0 and shutil.which("runuser"):
            # Another local user (a world-traversable home, as Debian's are) can read none of it.
            os.chmod(proc.home, 0o755)
            for path in [*old_voices.iterdir(), *(proc.home / "cache" / "conditionals").iterdir()]:
                other = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(path)], capture_output=True)
                assert other.returncode != 0 and b"Permission denied" in other.stderr, path
    finally:
        proc.cleanup()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root to act as another user")
def test_the_check_as_another_user_can_see_a_readable_file() -> None:
    """The runuser check above can fail: a world-readable file in a traversable folder is read."""
    folder = Path(tempfile.mkdtemp(prefix="cbt", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        readable = folder / "open.txt"
        readable.write_text("anyone")
        os.chmod(readable, 0o644)
        other = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(readable)], capture_output=True)
        assert other.returncode == 0 and other.stdout == b"anyone"
    finally:
        shutil.rmtree(folder)
