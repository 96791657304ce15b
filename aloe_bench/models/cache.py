"""The call cache: every successful model call, keyed by everything that determines its answer.

It is what makes runs resumable: a re-run of the same command (after a crash, even kill -9) replays
finished calls from here and only asks the backends for what is missing; a finished run re-run makes
no calls at all. SQLite in WAL mode, one commit per call, safe to share between processes.
Failures are never cached, so a re-run retries them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.base import ChatRequest, Completion

SCHEMA_VERSION = 1


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


class CallCache:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, role TEXT, spec TEXT, "
                "completion TEXT NOT NULL, created REAL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise UserInputError(
                f"cannot open the call cache {self.path} ({exc}); pass --cache PATH or --no-cache"
            ) from None
        self._lock = threading.Lock()

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Completion(**data)

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
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, role, spec, completion, created) VALUES (?, ?, ?, ?, ?)",
                (key, role, spec, json.dumps(data, ensure_ascii=False), time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
