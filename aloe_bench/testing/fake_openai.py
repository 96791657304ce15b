"""An OpenAI-compatible chat server for fault injection only: latency, errors, garbage answers.

Real-model tests use the embedded model and `transformers serve`; this server exists to do what a
real server will not do on demand: take exactly 200 ms per request, answer 429 or 500 a set number
of times, reject a key, or return judge answers that cannot be parsed. Standard library only.

    python -m aloe_bench.testing.fake_openai --port 8123 --latency 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeBehaviour:
    latency_s: float = 0.0
    fail_first: int = 0  # the first N requests fail with `fail_status`
    fail_status: int = 500
    fail_every: int = 0  # additionally, every Nth request fails (0 = never)
    required_key: str | None = None  # 401 unless `Authorization: Bearer <key>`
    judge_answers: list[str] = field(default_factory=lambda: ["4"])  # cycled for judge prompts
    retry_after: float | None = None
    fail_if_contains: str | None = None  # requests whose messages contain this text always fail
    rate_limit: int = 0  # requests accepted per 1 s window (0 = no limit); above it: 429 with headers
    latency_sigma: float = 0.0  # > 0: latency is log-normal with median `latency_s` and this sigma
    judge_by_content: bool = False
    # The Batch API (/v1/files, /v1/batches): how batches end, and after how long once released.
    batch_outcomes: list[str] = field(
        default_factory=lambda: ["completed"]
    )  # cycled: completed|failed|expired
    batch_delay_s: float = 0.0
    batch_hold: bool = False  # True: batches stay in_progress until the test sets it False  # judge score = a hash of the prompt (varied, yet the same every run)
    # Scripted replies for the model under test (not judge prompts): request with seed s gets
    # model_answers[s % len] (seed 0 when absent), so a test knows which seed produced which reply.
    model_answers: list[str] | None = None


class FakeOpenAIServer:
    def __init__(
        self,
        behaviour: FakeBehaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ):
        self.behaviour = behaviour or FakeBehaviour()
        # False: keep no bodies, headers or log (a benchmark's 300,000 growing chats would hold
        # gigabytes in the server process; only tests read them).
        self.record = record
        self.host, self.port = host, port
        self.requests: list[dict[str, Any]] = []  # bodies received, for assertions
        self.headers_seen: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[tuple[float, int]] = []  # (monotonic time, status) of every chat request
        self._window = (0.0, 0)  # (start, requests accepted) of the current rate-limit window
        self._rng = random.Random(0)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_requests: list[dict[str, Any]] = []  # bodies answered through batches
        self._count = 0
        self._judge_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- answers --------------------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> str:
        messages = body.get("messages", [])
        text = " ".join(m.get("content", "") for m in messages)
        if "judge" in text.lower() and ("1 to 5" in text or "from 1" in text):
            if self.behaviour.judge_by_content:
                return str(1 + int(hashlib.sha256(text.encode()).hexdigest(), 16) % 5)
            answers = self.behaviour.judge_answers
            answer = answers[self._judge_count % len(answers)]
            self._judge_count += 1
            return answer
        if self.behaviour.model_answers:
            answers = self.behaviour.model_answers
            return answers[int(body.get("seed") or 0) % len(answers)]
        last = messages[-1]["content"] if messages else ""
        return f"That is interesting. You said {len(last.split())} words; tell me more about your day."

    def _status_for(self, n: int, headers: dict[str, str], body: dict[str, Any]) -> int:
        b = self.behaviour
        if b.required_key is not None and headers.get("authorization") != f"Bearer {b.required_key}":
            return 401
        if b.fail_if_contains and any(
            b.fail_if_contains in m.get("content", "") for m in body.get("messages", [])
        ):
            return b.fail_status
        if n <= b.fail_first or (b.fail_every and n % b.fail_every == 0):
            return b.fail_status
        return 200

    # -- HTTP -----------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = line.decode().partition(":")
                    headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", 0))
                raw = await reader.readexactly(length) if length else b""
                status, payload, extra = await self._route(method, path, headers, raw)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                head = [
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(data)}",
                    "Connection: keep-alive",
                    *extra,
                ]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]}, []
        if "/files" in path or "/batches" in path:
            return self._batch_api(method, path.split("?")[0].rstrip("/"), headers, raw)
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, []
        body = json.loads(raw or b"{}")
        self._count += 1
        n = self._count
        if self.record:
            self.requests.append(body)
            self.headers_seen.append(headers)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        limited, rate_headers = self._rate_check()
        try:
            if limited:
                status = 429
            else:
                if self.behaviour.latency_s:
                    await asyncio.sleep(self._latency())
                status = self._status_for(n, headers, body)
        finally:
            self.in_flight -= 1
        if self.record:
            self.log.append((time.monotonic(), status))
        if status != 200:
            extra = (
                [f"Retry-After: {self.behaviour.retry_after}"]
                if self.behaviour.retry_after is not None
                else []
            )
            return (
                status,
                {"error": {"message": f"injected failure {status}", "type": "fake"}},
                extra + rate_headers,
            )
        content = self._answer(body)
        # A token limit cuts the answer as a real server does (a word counts as a token here).
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if limit and len(content.split()) > int(limit):
            content, finish = " ".join(content.split()[: int(limit)]), "length"
        prompt_tokens = sum(len(m.get("content", "").split()) for m in body.get("messages", []))
        return (
            200,
            {
                "id": f"fake-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": finish,
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(content.split()),
                    "total_tokens": prompt_tokens + len(content.split()),
                },
            },
            rate_headers,
        )

    # -- the Batch API ---------------------------------------------------------------------------------
    def _batch_api(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        if method == "POST" and path.endswith("/files"):
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = _multipart_file(raw, headers.get("content-type", ""))
            return (
                200,
                {"id": file_id, "object": "file", "purpose": "batch", "bytes": len(self.files[file_id])},
                [],
            )
        if method == "GET" and path.endswith("/content"):
            file_id = path.split("/")[-2]
            if file_id not in self.files:
                return 404, {"error": {"message": f"no file {file_id}"}}, []
            return 200, self.files[file_id], []
        if method == "POST" and path.endswith("/batches"):
            body = json.loads(raw or b"{}")
            batch_id = f"batch-{len(self.batches) + 1}"
            outcomes = self.behaviour.batch_outcomes
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "input_file_id": body["input_file_id"],
                "status": "in_progress",
                "outcome": outcomes[(len(self.batches)) % len(outcomes)],
                "created": time.monotonic(),
                "output_file_id": None,
                "error_file_id": None,
            }
            return 200, self._batch_view(batch_id), []
        if method == "GET" and "/batches/" in path:
            batch_id = path.split("/")[-1]
            if batch_id not in self.batches:
                return 404, {"error": {"message": f"no batch {batch_id}"}}, []
            self._advance(batch_id)
            return 200, self._batch_view(batch_id), []
        return 404, {"error": {"message": f"no route {method} {path}"}}, []

    def _batch_view(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if k not in ("outcome", "created")}

    def _advance(self, batch_id: str) -> None:
        """End a batch (once released and its delay passed): run its lines, write its files."""
        batch = self.batches[batch_id]
        if batch["status"] != "in_progress" or self.behaviour.batch_hold:
            return
        if time.monotonic() - batch["created"] < self.behaviour.batch_delay_s:
            return
        outcome = batch["outcome"]
        batch["status"] = outcome
        if outcome == "failed":
            batch["errors"] = {"data": [{"code": "invalid_request", "message": "injected failure"}]}
            return
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].decode().splitlines() if x.strip()]
        done = lines if outcome == "completed" else lines[: len(lines) // 2]  # expired: half finished
        out, errors = [], []
        for line in done:
            self.batch_requests.append(line["body"])
            content = self._answer(line["body"])
            out.append({
                "id": f"req-{len(self.batch_requests)}",
                "custom_id": line["custom_id"],
                "response": {
                    "status_code": 200,
                    "body": {
                        "id": f"fake-b{len(self.batch_requests)}",
                        "object": "chat.completion",
                        "model": line["body"].get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
                    },
                },
                "error": None,
            })  # fmt: skip
        for line in lines[len(done) :]:
            errors.append({"custom_id": line["custom_id"], "response": None,
                           "error": {"code": "batch_expired", "message": "not completed in time"}})  # fmt: skip
        for kind, rows in (("output_file_id", out), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[kind] = file_id

    def _latency(self) -> float:
        b = self.behaviour
        if b.latency_sigma > 0:
            return b.latency_s * math.exp(self._rng.gauss(0.0, b.latency_sigma))
        return b.latency_s

    def _rate_check(self) -> tuple[bool, list[str]]:
        """A fixed 1 s window as an API account has (OpenAI's headers): (over the limit?, headers)."""
        limit = self.behaviour.rate_limit
        if not limit:
            return False, []
        now = time.monotonic()
        start, used = self._window
        if now - start >= 1.0:
            start, used = now, 0
        limited = used >= limit
        if not limited:
            used += 1
        self._window = (start, used)
        reset_ms = max(1, int((start + 1.0 - now) * 1000))
        headers = [
            f"x-ratelimit-limit-requests: {limit}",
            f"x-ratelimit-remaining-requests: {limit - used}",
            f"x-ratelimit-reset-requests: {reset_ms}ms",
        ]
        if limited:
            headers.append(f"retry-after-ms: {reset_ms}")
        return limited, headers

    # -- lifecycle (a background thread, so synchronous tests and CLIs can use it) ------------------
    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--judge-by-content", action="store_true", help="judge score = a hash of the prompt")
    parser.add_argument(
        "--latency-sigma", type=float, default=0.0, help="> 0: log-normal latency, median --latency"
    )
    parser.add_argument(
        "--no-record", action="store_true", help="keep no request bodies or log (long benchmarks)"
    )
    args = parser.parse_args()
    behaviour = FakeBehaviour(
        latency_s=args.latency, judge_by_content=args.judge_by_content, latency_sigma=args.latency_sigma
    )
    server = FakeOpenAIServer(behaviour, port=args.port, record=not args.no_record).start()
    print(f"fake OpenAI server on {server.base_url} (latency {args.latency}s); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()


def _multipart_file(raw: bytes, content_type: str) -> bytes:
    """The `file` part of a multipart/form-data upload (what the openai client sends to /v1/files)."""
    boundary = content_type.partition("boundary=")[2].strip('"')
    if not boundary:
        return raw
    for part in raw.split(b"--" + boundary.encode()):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return body[:-2] if body.endswith(b"\r\n") else body
    return b""
