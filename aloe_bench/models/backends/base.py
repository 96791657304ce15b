"""The one interface every role talks to: chat requests in, completions out, asynchronously.

In-process backends (hf, vllm, lmeval) derive from `BatchingBackend`: whatever the roles submit at
about the same time is generated in one batch on a worker thread. API backends fan requests out with
bounded concurrency instead. Nothing outside this package knows which kind it is talking to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

Message = dict[str, str]

# Roles on the critical path of a conversation go first; judging can wait (it never delays a turn).
PRIORITY_CRITICAL = 0
PRIORITY_BACKGROUND = 1


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. `None` means the backend's own default (the checkpoint's generation config,
    or the API's default), recorded as such."""

    max_new_tokens: int = 512
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    # transformers' `repetition_penalty` (>1 discourages tokens already in the prompt or the reply);
    # None: the backend's own default. A backend that cannot apply it refuses it (see
    # `Backend.takes_repetition_penalty`) rather than ignoring it.
    repetition_penalty: float | None = None

    def with_seed(self, seed: int | None) -> GenerationSettings:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["repetition_penalty"] is None:  # absent, as before it existed: old cache keys still match
            del d["repetition_penalty"]
        return d

    def batch_key(self) -> tuple:
        """Requests that may share one in-process batch (the seed is applied per row; the penalty
        is one setting of the batch's decoding loop)."""
        return (self.max_new_tokens, self.repetition_penalty)


@dataclass(frozen=True)
class ChatRequest:
    messages: list[Message]
    settings: GenerationSettings = field(default_factory=GenerationSettings)


@dataclass
class Completion:
    text: str | None
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    retries: int = 0  # attempts the backend repeated before this answer (rate limits, server errors)
    # What a wrapping backend adds about how the text was chosen (best-of-N: the candidates and
    # their rewards, under "best_of_n"). Kept by the call cache; None for plain backends.
    meta: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @classmethod
    def failure(cls, error: str) -> Completion:
        return cls(text=None, finish_reason="error", error=error)


def redact_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Backend arguments as they may be recorded: anything that looks like a secret is masked."""
    secret_words = ("key", "token", "secret", "password", "auth")
    return {k: ("***" if any(w in k.lower() for w in secret_words) else v) for k, v in sorted(args.items())}


class Backend(ABC):
    """A named model reachable through one provider. Instances are shared by every role with the same
    spec and arguments (see `BackendPool`)."""

    provider: str = ""
    # Whether `GenerationSettings.repetition_penalty` reaches the model. A backend that cannot apply
    # it leaves this False and a request that sets it is refused (`check_settings`), never ignored.
    takes_repetition_penalty: bool = False

    def __init__(self, name: str, args: Mapping[str, Any] | None = None):
        self.name = name
        self.args = dict(args or {})

    def check_settings(self, settings: GenerationSettings) -> None:
        """Refuse, with one line, a generation setting this backend would otherwise ignore."""
        if settings.repetition_penalty is not None and not self.takes_repetition_penalty:
            from aloe_bench.errors import UserInputError

            raise UserInputError(
                f"{self.spec} cannot apply a repetition penalty ({self.provider}/ does not take one yet): "
                "drop the role's repetition penalty (--repetition-penalty, --judge-repetition-penalty, "
                "the task's repetition_penalty, or the generation preset), or serve the model with hf/"
            )

    @property
    def spec(self) -> str:
        return f"{self.provider}/{self.name}" if self.name else self.provider

    def identity(self) -> dict[str, Any]:
        """Everything that determines this backend's answers (no secrets): part of every cache key."""
        return {"spec": self.spec, "args": redact_args(self.args)}

    def describe(self) -> dict[str, Any]:
        """What results.json records about this backend."""
        return self.identity()

    def check(self) -> None:
        """Fail fast, before a run starts, on input that can never work (missing path, missing extra)."""

    def system_role(self) -> str:
        """How a system message reaches the model: "native" (the chat template renders it), "folded"
        (the template has no system role: the text goes in front of the first user turn), or
        "passed" (sent to a server as a system message; the server's template decides)."""
        return "passed"

    @abstractmethod
    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        """One completion per request, in order. Per-request failures come back as
        `Completion.failure(...)`; only `BackendFatalError` is raised."""

    async def aclose(self) -> None:
        return None


class BatchingBackend(Backend):
    """Base for in-process backends: lazy loading, and a worker thread that turns concurrently
    submitted requests into batches.

    Submissions are collected for a short quiet window so that every conversation waiting on the
    same step lands in the same batch; critical-path groups are served before background ones."""

    default_batch_size = 16
    collect_window_s = 0.02

    def __init__(self, name: str, args: Mapping[str, Any] | None = None):
        super().__init__(name, args)
        self.batch_size = int(self.args.get("batch_size", self.default_batch_size))
        if self.batch_size < 1:
            from aloe_bench.errors import UserInputError

            raise UserInputError(f"{self.spec}: batch_size must be at least 1 (got {self.batch_size})")
        self._pending: list[tuple[int, int, ChatRequest, asyncio.Future]] = []
        self._arrivals = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._load_lock = threading.Lock()
        self._loaded = False
        self.batch_stats = {"batches": 0, "requests": 0, "largest_batch": 0}

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _load(self) -> None:
        """Load weights (called once, on the worker thread, at the first request that needs it)."""

    @abstractmethod
    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        """Generate for requests that share `batch_key()`; runs on the worker thread."""

    def _reject(self, request: ChatRequest) -> str | None:
        """Why this request can never be generated (e.g. a prompt longer than the model's context), or
        None. Checked before submission, so that one bad row fails alone, not its whole batch."""
        return None

    # -- machinery --------------------------------------------------------------------------------
    def ensure_loaded(self) -> None:
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        if not requests:
            return []
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._work())
        futures = []
        for req in requests:
            fut = loop.create_future()
            self._pending.append((priority, self._arrivals, req, fut))
            self._arrivals += 1
            futures.append(fut)
        assert self._wake is not None  # made with the worker, above
        self._wake.set()
        return list(await asyncio.gather(*futures))

    async def _collect(self) -> None:
        """Wait until submissions stop arriving for a moment (all ready conversations have asked)."""
        seen = -1
        while seen != self._arrivals:
            seen = self._arrivals
            for _ in range(5):  # let ready tasks run up to their next request
                await asyncio.sleep(0)
            await asyncio.sleep(self.collect_window_s)

    def _take_batch(self) -> list[tuple[int, int, ChatRequest, asyncio.Future]]:
        live = [p for p in self._pending if not p[3].done()]
        first = min(live, key=lambda p: (p[0], p[1]))
        group = [
            p for p in live if p[0] == first[0] and p[2].settings.batch_key() == first[2].settings.batch_key()
        ]
        # Similar prompt lengths share a batch: less padding, and a deterministic composition.
        group.sort(key=lambda p: (sum(len(m["content"]) for m in p[2].messages), p[1]))
        if len(group) > self.batch_size:
            # Take the chunk that holds the oldest request (no starvation); the rest waits a round.
            start = group.index(first) // self.batch_size * self.batch_size
            group = group[start : start + self.batch_size]
        taken = {id(p) for p in group}
        self._pending = [p for p in live if id(p) not in taken]
        return group

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await self._collect()
            self._wake.clear()
            while self._pending:
                batch = self._take_batch()
                reqs = [p[2] for p in batch]
                try:
                    results = await asyncio.to_thread(self._run_batch, reqs)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting callers
                    for p in batch:
                        if not p[3].done():
                            p[3].set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for p, res in zip(batch, results, strict=True):
                    if not p[3].done():
                        p[3].set_result(res)
                # New submissions may have arrived while generating: gather stragglers too.
                if self._wake.is_set():
                    await self._collect()
                    self._wake.clear()

    def _run_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        self.ensure_loaded()
        results: list[Completion | None] = [None] * len(requests)
        for i, request in enumerate(requests):
            reason = self._reject(request)
            if reason is not None:
                results[i] = Completion.failure(reason)
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            self.batch_stats["batches"] += 1
            self.batch_stats["requests"] += len(todo)
            self.batch_stats["largest_batch"] = max(self.batch_stats["largest_batch"], len(todo))
            for i, completion in zip(
                todo, self._generate_isolating([requests[i] for i in todo]), strict=True
            ):
                results[i] = completion
        return results  # type: ignore[return-value]

    def _generate_isolating(self, requests: list[ChatRequest]) -> list[Completion]:
        """A batch that raises is retried row by row, so that the one row at fault fails alone (its
        error as the reason); `BackendFatalError` (the model cannot run at all) still ends the run."""
        from aloe_bench.errors import BackendFatalError

        try:
            return self._generate_batch(requests)
        except BackendFatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - narrowed to the faulty row below
            if len(requests) == 1:
                return [Completion.failure(f"{type(exc).__name__}: {_first_line(exc)}")]
        return [self._generate_isolating([r])[0] for r in requests]

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
            self._worker = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


class PriorityGate:
    """Slots granted in priority order: waiting critical-path requests go before background ones
    (judging), then first come, first served. Subclasses say when a slot is free (`_free`); the
    fixed-size `PrioritySemaphore` and the adaptive limiter of `ratelimit.py` share this queue."""

    def __init__(self) -> None:
        self.in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = 0

    def _free(self) -> bool:
        raise NotImplementedError

    def _take(self) -> None:
        self.in_use += 1

    async def acquire(self, priority: int = PRIORITY_CRITICAL) -> float:
        """Take a slot; returns the (monotonic) time it was granted."""
        if self._free() and not self._waiters:
            self._take()
            return time.monotonic()
        fut = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just as we were cancelled: hand the slot on
            raise
        return time.monotonic()

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._free():
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                self._take()
                fut.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = PRIORITY_CRITICAL) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


class PrioritySemaphore(PriorityGate):
    """Bounded concurrency (at most `value` slots) in priority order."""

    def __init__(self, value: int):
        super().__init__()
        self.value = value

    def _free(self) -> bool:
        return self.in_use < self.value
