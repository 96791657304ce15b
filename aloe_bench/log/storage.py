"""Writing files so that a crash never leaves half of one, and a full disk stops a run cleanly.

Every result file is replaced whole: written to a temp file beside it, fsynced, renamed over the
old one, and the folder fsynced so the rename itself survives a power cut. A reader (or a re-run
after kill -9) sees the old file or the new one, never a mixture. A write that cannot happen (a
full disk, a read-only path, a quota) raises `StorageError`: one line naming the file, and the old
file stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from aloe_bench.errors import StorageError
from aloe_bench.log.filemodes import chmod_as_created

# Temp files are named `.NAME.XXXXXXXX.tmp` beside NAME (mkstemp); a kill between their creation
# and the rename leaves one behind, which `remove_stale_temps` clears when the run starts again.
_TEMP_SUFFIX = ".tmp"


def storage_error(path: Path | str, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    return StorageError(
        f"cannot write {path} ({reason}); what finished before is kept: free space (or pass --output/--cache "
        "somewhere writable), then re-run the same command to resume"
    )


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX: the entry lives in the folder, not the file)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some systems cannot open folders; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every filesystem fsyncs a folder (EINVAL); nothing to do about it
    finally:
        os.close(fd)


def write_lines_atomic(path: Path, lines: Iterable[str]) -> int:
    """Write `lines` to `path` through a temp file and a rename (a reader never sees half a file,
    a kill leaves the old one), streamed so a large run's file never sits in memory, with the mode
    the umask allows. Returns the bytes written. `StorageError` when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    except OSError as exc:
        raise storage_error(path, exc) from None
    written = 0
    try:
        chmod_as_created(tmp)  # mkstemp makes it 0600: readable by others as the umask allows
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
                written += len(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(path, exc) from None
        raise
    fsync_directory(path.parent)
    return written


def remove_stale_temps(directory: Path, names: Iterable[str]) -> list[Path]:
    """Remove the temp files a killed writer left beside `names` in `directory`; returns them."""
    removed = []
    for name in names:
        for tmp in directory.glob(f".{name}.*{_TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed
