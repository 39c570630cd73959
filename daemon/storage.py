"""A full disk, said plainly: the ``disk_full`` error and the temporary files a crash leaves.

Saving a voice or the settings on a full disk raises ``OSError(ENOSPC)``,
which would reach the client as an ``internal`` error. It is no bug in the
daemon and the user can fix it, so it gets its own code and a message that
says what to do. Every write is atomic (`ipc.atomic`), so nothing stored
before is lost: the old file stays whole.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ..ipc.atomic import TMP_SUFFIX, temp_prefix_for
from ..ipc.protocol import CodedError

log = logging.getLogger(__name__)

#: ``errno`` values that mean "no room": the disk, or the user's quota.
_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class DiskFullError(CodedError):
    """A file could not be saved because its disk (or the user's quota) is full."""

    def __init__(self, what: str, folder: str) -> None:
        super().__init__(
            "disk_full",
            f"there is no space left on the disk to save {what} (in {folder}); "
            "free some space and try again. Nothing was changed.",
        )


@contextlib.contextmanager
def disk_full_as_error(what: str, folder: Path) -> Iterator[None]:
    """Turn a "no space left" ``OSError`` inside the block into `DiskFullError`.

    ``what`` names the thing being saved, for people ("the voice library"),
    and ``folder`` where it goes. Other ``OSError``s pass through unchanged.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        log.error("cannot save %s in %s: %s", what, folder, exc)
        raise DiskFullError(what, str(folder)) from None


def remove_temp_files_of(path: Path) -> None:
    """Remove what interrupted atomic writes of ``path`` left in its folder.

    Only the caller may write ``path`` (the daemon holds its instance lock),
    so any such file at start-up is a crash's leftover.
    """
    prefix = temp_prefix_for(path.name)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(TMP_SUFFIX):
            with contextlib.suppress(OSError):
                (path.parent / name).unlink()
                log.info("removed %s, left by an interrupted save", name)


def remove_file(path: Path, failure: str) -> bool:
    """Delete ``path``; True once it is gone (now or before), False if it stays (logged as ``failure path: why``)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("%s %s: %s", failure, path, exc)
        return False
    return True
