"""The call cache: every successful model call, keyed by everything that determines its answer.

It is what makes runs resumable: a re-run of the same command (after a crash, even kill -9) replays
finished calls from here and only asks the backends for what is missing; a finished run re-run makes
no calls at all. Failures are never cached, so a re-run retries them.

Group commits: `put` keeps a finished call in memory (where `get` already finds it) and a
background thread commits what has gathered every `commit_interval_s` (0.5 s) in one SQLite
transaction. One transaction per call wrote several pages per call and checkpointed them again
(23x the bytes kept at 2,000 x 3, benchmarks/scale.py); one per interval writes each touched page
once per interval.
The durability bound: a kill -9 loses at most the calls finished in the last `commit_interval_s`
(plus the one commit under way), which the next run makes again; `close` commits everything.
The table has no index: rows are appended in the order they finished, and this process keeps the
map from key to row in memory (~100 bytes a call; loaded on open, topped up from rows other
processes appended when a key is not found), so a commit writes the new rows and nothing else. (An
index on the random keys, even grouped, made every commit rewrite pages all over it: 9.9x the bytes
kept at 100,000 calls in groups of 400, and growing with the cache; 2.1x without it.)

Shared between processes (two runs on one cache at once): SQLite in WAL mode, so readers never wait
on the writer; a commit takes the write lock up front (BEGIN IMMEDIATE) with a busy timeout, and a
commit that still finds the database locked keeps its calls and tries again at the next interval:
a locked database never fails a run. What does fail it is a write that cannot happen (a full disk, a
read-only path): `StorageError`, one line naming the file, raised by the next `put`/`get`/`close`.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from aloe_bench.errors import StorageError, UserInputError
from aloe_bench.models.backends.base import ChatRequest, Completion

SCHEMA_VERSION = 1
COMMIT_INTERVAL_S = 0.5  # the durability bound: a kill -9 loses at most this much finished work
BUSY_TIMEOUT_S = 10.0  # one attempt's wait for another process's write lock
_TABLE = "calls_v2"  # v1 (`calls`, key TEXT PRIMARY KEY) is migrated into it on open

_Row = tuple[int, str, str, str, str, float]  # (k, key, role, spec, completion, created)


def call_key(
    role: str, backend_identity: dict[str, Any], request: ChatRequest, prompt_version: str | None
) -> str:
    payload = {
        "v": SCHEMA_VERSION,
        "role": role,
        "backend": backend_identity,
        "messages": request.messages,
        "settings": request.settings.to_dict(),
        "prompt": prompt_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _short_key(key: str) -> int:
    """The in-memory map's key: the first 8 bytes of the hex digest as a signed 64-bit integer (the
    full key is stored in the row and compared, so two keys sharing it cost a miss, never a wrong
    answer; the odds are 2^-64 a pair)."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


def _close_at_exit(ref: weakref.ReferenceType[CallCache]) -> None:
    cache = ref()
    if cache is not None:
        with contextlib.suppress(Exception):
            cache.close()


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class CallCache:
    def __init__(
        self,
        path: Path | str,
        *,
        commit_interval_s: float = COMMIT_INTERVAL_S,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ):
        self.path = Path(path)
        self.commit_interval_s = commit_interval_s
        self.busy_timeout_s = busy_timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._reader = self._connect()
            self._writer = self._connect()
            self._setup(self._writer)
        except (OSError, sqlite3.Error) as exc:
            raise UserInputError(
                f"cannot open the call cache {self.path} ({exc}); pass --cache PATH or --no-cache"
            ) from None
        self._lock = threading.Lock()  # guards the dicts below and the reader connection
        self._rows: dict[int, int] = {}  # short key -> row id of what the table holds
        self._seen = 0  # the highest row id loaded into `_rows`
        try:
            self._load_new_rows()
        except sqlite3.Error as exc:
            raise UserInputError(
                f"cannot read the call cache {self.path} ({exc}); pass --cache PATH or --no-cache"
            ) from None
        self._pending: dict[str, _Row] = {}  # finished, not yet committed (get finds them here)
        self._committing: dict[str, _Row] = {}  # the batch a commit is writing now
        self._oldest: float | None = None  # when the oldest pending call finished
        self._error: StorageError | None = None
        self._closing = False
        self.commits = 0  # transactions committed (tests and benchmarks read it)
        self._wake = threading.Condition(self._lock)
        self._commit_lock = threading.Lock()  # one commit at a time on the writer connection
        self._thread = threading.Thread(target=self._commit_loop, name="call-cache-commit", daemon=True)
        self._thread.start()
        # A cache its owner forgot to close still commits its last calls when the interpreter exits.
        atexit.register(_close_at_exit, weakref.ref(self))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=self.busy_timeout_s, isolation_level=None
        )
        db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        return db

    def _setup(self, db: sqlite3.Connection) -> None:
        deadline = time.monotonic() + 6 * self.busy_timeout_s
        while True:
            try:
                # WAL: readers in other processes never wait on this one's commits. NORMAL: a commit
                # is in the OS's hands when it returns (safe from a kill -9; a power cut may lose
                # the last ones, never the file's consistency).
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(
                        f"CREATE TABLE IF NOT EXISTS {_TABLE} (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, "
                        "key TEXT NOT NULL, role TEXT, spec TEXT, completion TEXT NOT NULL, created REAL)"
                    )  # no index on k: see the module's docstring
                    self._migrate_v1(db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _migrate_v1(db: sqlite3.Connection) -> None:
        """Caches written before group commits keep their calls: copied over once, in key order."""
        if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='calls'").fetchone() is None:
            return
        rows = db.execute(
            "SELECT key, role, spec, completion, created FROM calls ORDER BY created"
        ).fetchall()
        db.executemany(
            f"INSERT INTO {_TABLE} (k, key, role, spec, completion, created) VALUES (?, ?, ?, ?, ?, ?)",
            [(_short_key(r[0]), *r) for r in rows],
        )
        db.execute("DROP TABLE calls")

    # -- reading and storing ------------------------------------------------------------------------
    def get(self, key: str) -> Completion | None:
        with self._lock:
            self._raise_error()
            row = self._pending.get(key) or self._committing.get(key)
            if row is not None:
                text = row[4]
            else:
                found = self._read(key)
                if found is None:
                    return None
                text = found
        return Completion(**json.loads(text))

    def _load_new_rows(self) -> None:
        """Add the rows appended since the last look (by any process) to the in-memory map."""
        cursor = self._reader.execute(f"SELECT id, k FROM {_TABLE} WHERE id > ? ORDER BY id", (self._seen,))
        for row_id, k in cursor:
            self._rows.setdefault(k, row_id)  # the first copy wins (a race can store a call twice)
            self._seen = row_id

    def _read(self, key: str) -> str | None:
        """The stored completion of `key` (caller holds the lock); a key not in memory may have
        been stored by another process since: the map is topped up once before saying no."""
        deadline = time.monotonic() + 6 * self.busy_timeout_s
        k = _short_key(key)
        while True:
            try:
                row_id = self._rows.get(k)
                if row_id is None:
                    self._load_new_rows()
                    row_id = self._rows.get(k)
                if row_id is None:
                    return None
                row = self._reader.execute(
                    f"SELECT key, completion FROM {_TABLE} WHERE id = ?", (row_id,)
                ).fetchone()
                # Another key with the same first 8 bytes (odds 2^-64 a pair) is a miss, never a wrong answer.
                return row[1] if row is not None and row[0] == key else None
            except sqlite3.OperationalError as exc:  # WAL readers wait only on recovery; retried
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise StorageError(self._failure("read", exc)) from None
                time.sleep(0.05)

    def put(self, key: str, role: str, spec: str, completion: Completion) -> None:
        if not completion.ok:
            return
        data: dict[str, Any] = {
            "text": completion.text,
            "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        if completion.meta is not None:  # best-of-N's candidates: a resumed run keeps them too
            data["meta"] = completion.meta
        now = time.time()
        row = (_short_key(key), key, role, spec, json.dumps(data, ensure_ascii=False), now)
        with self._lock:
            self._raise_error()
            self._pending[key] = row
            if self._oldest is None:
                self._oldest = time.monotonic()
                self._wake.notify()

    def flush(self) -> None:
        """Commit what is pending now (and wait for it)."""
        self._commit_pending()
        with self._lock:
            self._raise_error()

    # -- the committer ------------------------------------------------------------------------------
    def _commit_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closing and (
                    self._oldest is None or time.monotonic() - self._oldest < self.commit_interval_s
                ):
                    timeout = (
                        None
                        if self._oldest is None
                        else self._oldest + self.commit_interval_s - time.monotonic()
                    )
                    self._wake.wait(timeout)
                if self._closing:
                    return  # close() commits the rest itself
            self._commit_pending()

    def _commit_pending(self) -> None:
        with self._commit_lock:
            with self._lock:
                batch = self._take() if self._error is None else []
            if batch:
                self._commit(batch)

    def _take(self) -> list[_Row]:
        """Move what is pending to the batch being committed (caller holds the lock)."""
        self._committing.update(self._pending)
        self._pending = {}
        self._oldest = None
        return list(self._committing.values())

    def _commit(self, batch: list[_Row]) -> None:
        try:
            self._write(batch)
        except sqlite3.Error as exc:
            with self._lock:  # the batch stays in memory either way (get still finds it)
                self._pending = {**self._committing, **self._pending}
                self._committing = {}
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    self._oldest = time.monotonic()  # another process held the lock all along: later
                else:
                    self._error = self._error or StorageError(self._failure("write", exc))
            return
        with self._lock:
            self._committing = {}
            self.commits += 1
            self._load_new_rows()  # this commit's rows (and any other process's) into the map

    def _write(self, batch: list[_Row]) -> None:
        db = self._writer
        db.execute("BEGIN IMMEDIATE")  # the write lock now, waiting up to the busy timeout
        try:
            # Calls another process stored since this one last looked are not stored twice.
            since = self._seen
            stored = {k for (k,) in db.execute(f"SELECT k FROM {_TABLE} WHERE id > ?", (since,))}
            with self._lock:
                stored.update(k for k in (row[0] for row in batch) if k in self._rows)
            db.executemany(
                f"INSERT INTO {_TABLE} (k, key, role, spec, completion, created) VALUES (?, ?, ?, ?, ?, ?)",
                [row for row in batch if row[0] not in stored],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _failure(self, verb: str, exc: BaseException) -> str:
        return (
            f"cannot {verb} the call cache {self.path} ({exc}); calls already stored are kept: free space "
            "(or pass --cache PATH somewhere writable, or --no-cache), then re-run the same command to resume"
        )

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the rest -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            self._load_new_rows()
            return len(self._rows) + len(self._pending) + len(self._committing)

    def close(self) -> None:
        """Commit everything (a locked database is waited for), then close. A write that cannot
        happen is raised as `StorageError` after the connections are closed."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._wake.notify()
        self._thread.join()
        deadline = time.monotonic() + 6 * self.busy_timeout_s
        while True:  # a commit that met a locked database kept its calls: try again, for a while
            self._commit_pending()
            with self._lock:
                if not self._pending or self._error is not None:
                    break
                if time.monotonic() > deadline:
                    self._error = StorageError(self._failure("write", TimeoutError("database locked")))
                    break
            time.sleep(0.05)
        with self._lock:
            self._reader.close()
            self._writer.close()
            self._raise_error()
