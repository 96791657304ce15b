"""A backend that sends its requests through the OpenAI Batch API, around an `openai/` backend.

Requests queue up while the rollout goes on; every `batch_window` seconds (default 60) what has
queued is written as one JSONL file, uploaded (`/v1/files`, purpose `batch`) and submitted
(`/v1/batches`, 24 h window); a poller (`batch_poll`, default 30 s) downloads the output and error
files when the batch ends, and each request's future gets its completion. The caller (a `Role`)
sees an ordinary backend, so results go through the same call cache and judge parsing as
synchronous judging; re-asks of unreadable answers simply go into the next batch.

`batches.json` in the run directory records every batch (id, input file, the requests' custom ids,
status): a resumed run picks a batch still in flight up by its id instead of submitting it again
(custom id = a hash of the request body, so the same judge request maps to the same line).
A batch that expires resubmits what it did not finish (up to `batch_resubmits`, default 2); a
batch that fails (rejected input) and lines that come back with an error fall back to synchronous
calls through the wrapped backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from aloe_bench.log.files import write_json_atomic
from aloe_bench.models.backends.base import PRIORITY_CRITICAL, Backend, ChatRequest, Completion
from aloe_bench.models.backends.openai_api import OpenAIBackend, _completion

log = logging.getLogger(__name__)
BATCHES_FILE = "batches.json"
_ENDPOINT = "/v1/chat/completions"
_OPEN = ("validating", "in_progress", "finalizing", "cancelling")


def custom_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


class BatchBackend(Backend):
    provider = "openai"  # the same spec as the wrapped backend: it is the same model

    def __init__(self, inner: OpenAIBackend, state_dir: Path | None):
        super().__init__(inner.name, inner.args)
        self.inner = inner
        self.state_path = state_dir / BATCHES_FILE if state_dir is not None else None
        self.window_s = float(inner.args.get("batch_window", 60))
        self.poll_s = float(inner.args.get("batch_poll", 30))
        self.max_lines = int(inner.args.get("batch_max_lines", 50000))
        self.resubmits = int(inner.args.get("batch_resubmits", 2))
        self._pending: dict[str, tuple[ChatRequest, dict[str, Any]]] = {}
        self._futures: dict[str, asyncio.Future] = {}
        self._tries: dict[str, int] = {}
        self._asked: dict[str, tuple[ChatRequest, dict[str, Any]]] = {}  # every request seen, by custom id
        self._unclaimed: dict[str, Completion] = {}  # answers of a resumed batch nobody asked for yet
        self._first_pending = 0.0
        self._state: dict[str, Any] = {"batches": []}
        self._tasks: set[asyncio.Task] = set()
        self._flusher: asyncio.Task | None = None
        self.stats = {"batches": 0, "resumed": 0, "lines": 0, "fallback_sync": 0, "expired": 0, "failed": 0}
        if self.state_path is not None and self.state_path.is_file():
            self._state = json.loads(self.state_path.read_text(encoding="utf-8"))

    # -- the Backend interface ---------------------------------------------------------------------
    def check(self) -> None:
        self.inner.check()

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()  # the same cache keys as synchronous calls

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "batch_api": True, "batch_window_s": self.window_s}

    def rate_stats(self) -> dict[str, Any]:
        return {**self.inner.rate_stats(), "batch": dict(self.stats)}

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        self.inner._ensure_client()
        self._resume_open_batches()
        futures = [self._enqueue(r) for r in requests]
        return list(await asyncio.gather(*futures))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # the wrapped backend is the pool's

    # -- queueing ------------------------------------------------------------------------------------
    def _enqueue(self, request: ChatRequest) -> asyncio.Future:
        body = self.inner.request_body(request)
        cid = custom_id(body)
        self._asked[cid] = (request, body)
        if cid in self._futures and not self._futures[cid].done():
            return self._futures[cid]  # the same request already queued or in a batch in flight
        fut = asyncio.get_running_loop().create_future()
        self._futures[cid] = fut
        if cid in self._unclaimed:
            fut.set_result(self._unclaimed.pop(cid))
            return fut
        if not self._in_open_batch(cid):
            if not self._pending:
                self._first_pending = time.monotonic()
            self._pending[cid] = (request, body)
            if self._flusher is None or self._flusher.done():
                self._flusher = self._spawn(self._flush_loop())
        return fut

    def _in_open_batch(self, cid: str) -> bool:
        return any(b["status"] in _OPEN and cid in b["custom_ids"] for b in self._state["batches"])

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _resume_open_batches(self) -> None:
        """Batches an earlier attempt submitted and did not collect: poll them, do not resubmit."""
        for batch in self._state["batches"]:
            if batch["status"] in _OPEN and not batch.get("_polling"):
                batch["_polling"] = True
                self.stats["resumed"] += 1
                self._spawn(self._poll(batch))

    async def _flush_loop(self) -> None:
        while self._pending:
            wait = self._first_pending + self.window_s - time.monotonic()
            if wait > 0 and len(self._pending) < self.max_lines:
                await asyncio.sleep(min(wait, 1.0))
                continue
            chunk = dict(list(self._pending.items())[: self.max_lines])
            for cid in chunk:
                del self._pending[cid]
            self._first_pending = time.monotonic()
            await self._submit(chunk)

    # -- the Batch API -------------------------------------------------------------------------------
    async def _submit(self, chunk: dict[str, tuple[ChatRequest, dict[str, Any]]]) -> None:
        client: Any = self.inner.sdk_client()
        lines = "".join(
            json.dumps(
                {"custom_id": cid, "method": "POST", "url": _ENDPOINT, "body": body}, ensure_ascii=False
            )
            + "\n"
            for cid, (_, body) in chunk.items()
        )
        try:
            uploaded = await client.files.create(file=("judge-batch.jsonl", lines.encode()), purpose="batch")
            created = await client.batches.create(
                input_file_id=uploaded.id, endpoint=_ENDPOINT, completion_window="24h"
            )
        except Exception as exc:  # noqa: BLE001 - no Batch API there: judge these synchronously
            log.warning("%s: batch submission failed (%s); judging synchronously", self.spec, exc)
            await self._fallback(chunk)
            return
        batch = {
            "id": created.id,
            "input_file_id": uploaded.id,
            "status": created.status or "validating",
            "custom_ids": list(chunk),
            "submitted": time.time(),
            "_polling": True,
        }
        self._state["batches"].append(batch)
        self.stats["batches"] += 1
        self.stats["lines"] += len(chunk)
        self._save()
        self._spawn(self._poll(batch))

    async def _poll(self, batch: dict[str, Any]) -> None:
        client: Any = self.inner.sdk_client()
        while True:
            try:
                info = await client.batches.retrieve(batch["id"])
            except Exception as exc:  # noqa: BLE001 - a poll that fails is tried again
                log.info("%s: polling batch %s failed (%s)", self.spec, batch["id"], exc)
                await asyncio.sleep(self.poll_s)
                continue
            if info.status in _OPEN:
                await asyncio.sleep(self.poll_s)
                continue
            break
        results: dict[str, Completion] = {}
        for file_id in (info.output_file_id, info.error_file_id):
            if file_id:
                content = await client.files.content(file_id)
                results.update(_read_output(content.text))
        batch["status"] = info.status
        batch["output_file_id"], batch["error_file_id"] = info.output_file_id, info.error_file_id
        self._save()
        self.stats["expired" if info.status == "expired" else "failed"] += info.status in (
            "expired",
            "failed",
        )
        retry: dict[str, tuple[ChatRequest, dict[str, Any]]] = {}
        sync: dict[str, tuple[ChatRequest, dict[str, Any]]] = {}
        for cid in batch["custom_ids"]:
            fut = self._futures.get(cid)
            got = results.get(cid)
            if got is not None and got.ok:
                if fut is not None and not fut.done():
                    fut.set_result(got)
                elif fut is None:
                    self._unclaimed[cid] = got
                continue
            request = self._asked.get(cid)
            if request is None:
                continue  # nobody asked for it in this attempt (a resumed run that no longer needs it)
            self._tries[cid] = self._tries.get(cid, 0) + 1
            unfinished = got is None or "batch_expired" in (got.error or "")
            if info.status == "expired" and unfinished and self._tries[cid] <= self.resubmits:
                retry[cid] = request
            else:
                sync[cid] = request
        if retry:
            if not self._pending:
                self._first_pending = time.monotonic()
            self._pending.update(retry)
            if self._flusher is None or self._flusher.done():
                self._flusher = self._spawn(self._flush_loop())
        if sync:
            await self._fallback(sync)

    async def _fallback(self, chunk: dict[str, tuple[ChatRequest, dict[str, Any]]]) -> None:
        """Synchronous calls through the wrapped backend, for what the Batch API did not answer."""
        self.stats["fallback_sync"] += len(chunk)
        cids = list(chunk)
        done = await self.inner.generate([chunk[c][0] for c in cids])
        for cid, completion in zip(cids, done, strict=True):
            fut = self._futures.get(cid)
            if fut is not None and not fut.done():
                fut.set_result(completion)

    def _save(self) -> None:
        if self.state_path is not None:
            record = {
                "batches": [
                    {k: v for k, v in b.items() if not k.startswith("_")} for b in self._state["batches"]
                ]
            }
            with contextlib.suppress(OSError):
                write_json_atomic(self.state_path, record)


def _read_output(text: str) -> dict[str, Completion]:
    """Batch output / error file lines -> {custom_id: Completion} (errors as failures)."""
    out: dict[str, Completion] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        cid = row.get("custom_id")
        response = row.get("response") or {}
        if row.get("error") or response.get("status_code", 200) != 200:
            err = row.get("error") or response.get("body", {}).get("error") or {}
            out[cid] = Completion.failure(f"batch line error: {err.get('code') or err.get('message') or err}")
            continue
        try:
            out[cid] = _completion(_Obj.wrap(response["body"]))
        except (KeyError, IndexError, TypeError) as exc:
            out[cid] = Completion.failure(f"malformed batch line: {exc}")
    return out


class _Obj:
    """Attribute access over a decoded chat-completion body (what `_completion` reads)."""

    def __init__(self, data: dict[str, Any]):
        self._data = data

    @classmethod
    def wrap(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls(value)
        if isinstance(value, list):
            return [cls.wrap(v) for v in value]
        return value

    def __getattr__(self, name: str) -> Any:
        return _Obj.wrap(self._data.get(name))
