"""Fail in seconds, not hours: can a long run write where it will have to?"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def unwritable_reason(path: Path) -> str | None:
    """None if a file can be created, synced and removed in ``path`` or, when ``path`` does not
    exist yet, in the nearest existing folder above it (nothing is left behind); else why not."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        try:
            os.write(fd, b"probe\n")
            os.fsync(fd)  # a full disk may only refuse here
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return f"writing to {folder} failed ({exc.strerror or exc})"
    return None
