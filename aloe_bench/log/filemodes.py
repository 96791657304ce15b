"""File modes that honour the umask.

`tempfile.mkstemp` creates files 0600 and `mkdtemp` folders 0700 whatever the umask says, so a file
written through a temp file and renamed into place (every result file: atomic writes) would be
private to its writer: colleagues on a shared server could not read a run. These helpers give such
files the mode a plain `open()` / `mkdir()` would have given them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (reading it means setting it; the lock keeps threads from racing)."""
    with _lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def chmod_as_created(path: str | Path, *, directory: bool = False) -> None:
    """Give `path` the mode it would have had if created without a temp file: 0666 (files) or
    0777 (folders) minus the umask."""
    base = 0o777 if directory else 0o666
    os.chmod(path, base & ~current_umask())
