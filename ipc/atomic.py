"""Atomic file writes: a reader sees the whole old file or the whole new one.

The one way this project replaces a file (settings, the voice manifest, the
conditionals cache, the connection file, the GUI's preferences, the Speech
Dispatcher config). Written the way the conditionals cache always did it:

1. write to a temporary file in the same folder (``os.replace`` is atomic
   only within one file system), named ``TMP_PREFIX...TMP_SUFFIX`` so a
   folder's owner can recognise and sweep leftovers of a crash;
2. flush and ``fsync`` it, so the rename never points at data still in the
   page cache (ext4 and others can otherwise leave a zero-length file after
   a power cut);
3. ``os.replace`` it over the target;
4. ``fsync`` the folder (POSIX), so the rename itself survives a power cut.

On any failure the temporary file is removed and the error raised; the
target is untouched. Standard library only: every client imports ``ipc/``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def fault_hook(site: str, step: str) -> None:
    """Called at each step of a write; nothing in the product.

    The tests' fault injection (tests/support/faults.py) puts its own here, to
    kill the process in the middle of a write: the case atomic writes exist for.
    """


#: Temporary files start and end with these; anything so named is a leftover
#: once no writer is running.
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".partial"
#: ``mode`` for files only the user may read (keys, private data).
OWNER_ONLY = 0o600
#: ``mode`` for ordinary files; the umask applies, as for ``open(path, "w")``.
DEFAULT_MODE = 0o666


def write_atomic(path: Path | str, data: bytes | str, *, mode: int = DEFAULT_MODE, site: str = "") -> None:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8) atomically and durably.

    The folder must exist. ``mode`` is the new file's permission bits (minus
    the umask); pass `OWNER_ONLY` for files other users must not read.
    ``site`` names this write for the tests' fault injection (`fault_hook`).
    The temporary file's name starts with ``TMP_PREFIX + path.name + "-"``,
    so the file's owner can sweep its own leftovers (`temp_prefix_for`).
    """
    path = Path(path)
    tmp = write_temp(path.parent, data, mode=mode, site=site, stem=path.name)
    try:
        commit_temp(tmp, path, site=site)
    except BaseException:
        discard_temp(tmp)
        raise


def write_temp(
    folder: Path | str, data: bytes | str, *, mode: int = DEFAULT_MODE, site: str = "", stem: str = ""
) -> Path:
    """Write ``data`` to a new, flushed and fsync'd temporary file in ``folder``; return its path.

    For writers that must decide under their own lock whether the file still
    goes in (the conditionals cache): follow with `commit_temp` or
    `discard_temp`. Everyone else calls `write_atomic`. ``stem`` (the target's
    name) goes into the temporary file's name; ``site`` is as for `write_atomic`.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = Path(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = folder / f"{temp_prefix_for(stem)}{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            fd = os.open(tmp, flags, mode)
            break
        except FileExistsError:  # astronomically rare; pick another name
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            fault_hook(site, "tmp-open")
            half = len(data) // 2
            f.write(data[:half])
            f.flush()  # so a crash here leaves half a file, as a real one would
            fault_hook(site, "tmp-half")
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        discard_temp(tmp)
        raise
    fault_hook(site, "after-tmp-write")
    return tmp


def commit_temp(tmp: Path | str, path: Path | str, *, site: str = "") -> None:
    """Move a file from `write_temp` over ``path`` and make the rename durable."""
    os.replace(tmp, path)
    fault_hook(site, "after-replace")
    fsync_dir(Path(path).parent)


def temp_prefix_for(name: str = "") -> str:
    """How the temporary files of a write to a file called ``name`` begin.

    Every temporary file begins with `TMP_PREFIX`; those of `write_atomic`
    go on with the target's name and a dash.
    """
    return f"{TMP_PREFIX}{name}-" if name else TMP_PREFIX


def discard_temp(tmp: Path | str) -> None:
    """Remove a temporary file that will not be committed; never raises."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def fsync_dir(folder: Path | str) -> None:
    """Make a rename in ``folder`` durable where the platform allows (POSIX); best effort.

    Windows cannot open a folder for fsync, and NTFS journals renames anyway.
    """
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
