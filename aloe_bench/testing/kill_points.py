"""Fault injection for the crash tests: the `aloe-bench` CLI run in this process with one fault
armed at a named point, so that a test can kill a run exactly where it means to (no sleeps).

    ALOE_FAULT=POINT[:ARG]:N ALOE_FAULT_REPORT=FILE python -c "$ARMED_CLI" run ...   (ARMED_CLI below)

Kill points (the process SIGKILLs itself, as `kill -9` would):
  call:N            right after the N-th finished call is handed to the call cache
  judge:N           right after the N-th finished judge call (the rollout may be over: judging)
  commit:N          inside the N-th call-cache commit, rows inserted, before COMMIT
  write:NAME:N      in the N-th atomic write of NAME (results.json, conversations.jsonl, report.html):
                    the temp file holds half its bytes, the rename has not happened
  journal:N         in the N-th journal append, half its line on disk
Full-disk points (OSError ENOSPC from then on, as a full disk would answer):
  enospc-write:NAME:N, enospc-journal:N, enospc-cache:N (SQLite's "database or disk is full")

Before a kill, FILE gets {"point", "uncommitted"}: the calls finished but not yet committed to the
cache at that moment (with the calls in flight, what a re-run may have to make again).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

from aloe_bench.log.journal import Journal
from aloe_bench.models import cache as cache_module
from aloe_bench.models.cache import CallCache

_counts: dict[str, int] = {}
_live: list[CallCache] = []  # the caches this process opened (for the report)


def _hit(name: str, n: int) -> bool:
    _counts[name] = _counts.get(name, 0) + 1
    return _counts[name] == n


def _uncommitted() -> int:
    return sum(len(c._pending) + len(c._committing) for c in _live)


def _die(point: str, uncommitted: int | None = None) -> None:
    report = os.environ.get("ALOE_FAULT_REPORT")
    if report:
        data = {"point": point, "uncommitted": _uncommitted() if uncommitted is None else uncommitted}
        Path(report).write_text(json.dumps(data))
    os.kill(os.getpid(), signal.SIGKILL)


def _enospc(path: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _temp_name(fd: int) -> str:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}")).name
    except OSError:
        return ""


def arm(spec: str) -> None:
    """Install the fault `spec` (POINT[:ARG]:N) in this process."""
    point, _, count = spec.rpartition(":")
    n = int(count)
    kind, _, arg = point.partition(":")

    original_init = CallCache.__init__

    def init(self: CallCache, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _live.append(self)

    CallCache.__init__ = init  # type: ignore[method-assign]

    if kind in ("call", "judge"):
        original_put = CallCache.put

        def put(self: CallCache, key: str, role: str, spec: str, completion: Any) -> None:
            original_put(self, key, role, spec, completion)
            if (kind == "call" or role.startswith("judge")) and _hit(kind, n):
                _die(spec)

        CallCache.put = put  # type: ignore[method-assign]
    elif kind in ("commit", "enospc-cache"):
        original_write = CallCache._write
        failing_cache = False

        def write(self: CallCache, batch: list[Any]) -> None:
            nonlocal failing_cache
            if kind == "enospc-cache" and (failing_cache or _hit(kind, n)):
                failing_cache = True
                raise sqlite3.OperationalError("database or disk is full")
            if kind == "commit" and _hit(kind, n):
                self._writer.execute("BEGIN IMMEDIATE")
                self._writer.executemany(
                    f"INSERT INTO {cache_module._TABLE} (k, key, role, spec, completion, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    batch,
                )
                _die(point)
            original_write(self, batch)

        CallCache._write = write  # type: ignore[method-assign]
    elif kind in ("write", "enospc-write"):
        # The temp file is fsynced once all its bytes are in it, just before the rename.
        pattern = re.compile(rf"^\.{re.escape(arg)}\..*\.tmp$")
        real_fsync = os.fsync
        failing = False

        def fsync(fd: Any) -> None:
            nonlocal failing
            if isinstance(fd, int) and pattern.match(_temp_name(fd)):
                if kind == "write" and _hit(kind, n):
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)  # as if killed halfway through
                    _die(point)
                if kind == "enospc-write" and (failing or _hit(kind, n)):
                    failing = True
                    raise _enospc(arg)
            real_fsync(fd)

        os.fsync = fsync
    elif kind in ("journal", "enospc-journal"):
        original_append = Journal.append
        failing_journal = False

        def append(self: Journal, event: dict[str, Any]) -> None:
            nonlocal failing_journal
            if kind == "journal" and _hit(kind, n):
                line = json.dumps(event, ensure_ascii=False) + "\n"
                with self.path.open("a", encoding="utf-8") as f:
                    if self._file is not None:
                        self._file.flush()
                    f.write(line[: len(line) // 2])
                _die(point)
            if kind == "enospc-journal" and (failing_journal or _hit(kind, n)):
                failing_journal = True
                self._file = _FullFile(self.path)  # type: ignore[assignment]
            original_append(self, event)

        Journal.append = append  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown fault point {spec!r}")


class _FullFile:
    """A file on a full disk: every write fails with ENOSPC."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, text: str) -> int:
        raise _enospc(self.path)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def arm_from_env() -> None:
    spec = os.environ.get("ALOE_FAULT")
    if spec:
        arm(spec)


# The command line of a faulty run: `[sys.executable, "-c", ARMED_CLI, "run", ...]` (the library
# does not import the CLI layer, so the faults are armed from the command line).
ARMED_CLI = (
    "import sys; from aloe_bench.testing.kill_points import arm_from_env; arm_from_env(); "
    "from aloe_bench.cli.main import main; sys.exit(main(sys.argv[1:]))"
)
