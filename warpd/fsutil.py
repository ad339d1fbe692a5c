"""Writing files so that a reader (SETS, another warpd process, the user) never sees half of one.

One function for every file warpd writes whole: build files, training crops, per-screenshot
results, the folder hub's objects, the token file (created 0600 from the first byte).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows cannot open folders, and NTFS journals renames."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None,
                 skip_same: bool = False) -> bool:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename, folder fsync.

    Files are created private (0600, as ``mkstemp`` makes them: builds, crops and results are the
    user's own); ``mode`` sets another before a byte is written, so a file is never readable by
    others even for a moment. With ``skip_same`` a file already holding
    exactly these bytes is left alone (content-addressed files are written once); returns whether
    the file was (re)written. Temp files are named ``.<name>.<random>.tmp`` so a sweep can find
    the ones a killed writer left.
    """
    target = Path(path)
    if skip_same:
        try:
            if target.stat().st_size == len(data) and target.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode) if hasattr(os, "fchmod") else os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return True
