"""`openai/<model>`: any OpenAI-compatible chat-completions server, through the official client.

Async with bounded concurrency; transient failures (429, 408, 409, 5xx, timeouts, dropped
connections) are retried with exponential backoff and jitter, honouring Retry-After. Failures that
no retry can fix (bad key, unknown model) stop the run with one clear line.

Like the client itself, it reads OPENAI_BASE_URL and OPENAI_API_KEY; per role, `base_url=` and
`api_key_env=NAME` (the name of a variable holding the key) override them. Keys are never recorded.
Arguments: base_url, api_key_env, max_retries (6), timeout (120 s), backoff (0.5 s), concurrency,
max_tokens_param (max_tokens | max_completion_tokens).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aloe_bench.backends.base import PRIORITY_CRITICAL, Backend, ChatRequest, Completion, PrioritySemaphore
from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.progress import ACTIVITY

DEFAULT_BASE_URL = "https://api.openai.com/v1"
log = logging.getLogger(__name__)


def _public_url(url: str) -> str:
    """A base URL fit for records: user:password@ and query strings dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1", "0.0.0.0")


class OpenAIBackend(Backend):
    provider = "openai"

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        if not name:
            raise UserInputError("openai/ needs a model name, e.g. openai/gpt-4o-mini-2024-07-18")
        self.base_url = self.args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.max_retries = int(self.args.get("max_retries", 6))
        self.timeout = float(self.args.get("timeout", 120))
        self.backoff = float(self.args.get("backoff", 0.5))
        self.concurrency = int(self.args.get("concurrency", 32))
        self.max_tokens_param = self.args.get("max_tokens_param", "max_tokens")
        self._client = None
        self._semaphore: PrioritySemaphore | None = None
        self._fatal: BackendFatalError | None = None

    def _api_key(self) -> str:
        env_name = self.args.get("api_key_env", "OPENAI_API_KEY")
        key = os.environ.get(env_name)
        if key:
            return key
        if _is_local(self.base_url):
            return "EMPTY"  # local servers (vLLM, transformers serve) accept any key
        raise UserInputError(
            f"{self.spec} needs an API key: set {env_name} (or point base_url at a local server)"
        )

    def check(self) -> None:
        self._api_key()
        if self.max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise UserInputError("max_tokens_param must be max_tokens or max_completion_tokens")

    def identity(self) -> dict[str, Any]:
        keep = {k: v for k, v in self.args.items() if k in ("max_tokens_param",)}
        return {"spec": self.spec, "base_url": _public_url(self.base_url), "args": keep}

    def describe(self) -> dict[str, Any]:
        info = self.identity()
        info["concurrency"] = self.concurrency
        info["max_retries"] = self.max_retries
        return info

    def _ensure_client(self):
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                api_key=self._api_key(), base_url=self.base_url, max_retries=0, timeout=self.timeout
            )
            self._semaphore = PrioritySemaphore(self.concurrency)
        return self._client

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        self._ensure_client()
        return list(await asyncio.gather(*(self._one(r, priority) for r in requests)))

    async def _one(self, request: ChatRequest, priority: int) -> Completion:
        import openai

        assert self._semaphore is not None
        s = request.settings
        body: dict[str, Any] = {
            "model": self.name,
            "messages": request.messages,
            self.max_tokens_param: s.max_new_tokens,
        }
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.seed is not None:
            body["seed"] = s.seed
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if self._fatal is not None:
                raise self._fatal
            delay = None
            async with self._semaphore.slot(priority):
                try:
                    resp = await self._client.chat.completions.create(**body)
                    done = _completion(resp)
                    ACTIVITY.requests_finished(1, done.completion_tokens)  # progress inside a turn
                    return done
                except (
                    openai.AuthenticationError,
                    openai.PermissionDeniedError,
                    openai.NotFoundError,
                ) as exc:
                    self._fatal = BackendFatalError(
                        f"{self.spec} at {_public_url(self.base_url)} refused the request "
                        f"({exc.status_code}: {_short(exc)}); check the model name and the API key"
                    )
                    raise self._fatal from None
                except openai.APIStatusError as exc:
                    last_error = f"HTTP {exc.status_code}: {_short(exc)}"
                    if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                        return Completion.failure(last_error)  # this request is bad; retrying cannot help
                    delay = _retry_after(exc)
                except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                    last_error = f"{type(exc).__name__}: {_short(exc)}"
                except Exception as exc:  # noqa: BLE001 - malformed responses must not kill the run
                    last_error = f"{type(exc).__name__}: {_short(exc)}"
            if attempt < self.max_retries:
                wait = delay if delay is not None else self.backoff * 2**attempt
                await asyncio.sleep(min(60.0, wait) * (0.5 + random.random()))
                log.info("%s: retry %d after %s", self.spec, attempt + 1, last_error)
        return Completion.failure(f"{last_error} (after {self.max_retries} retries)")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _completion(resp: Any) -> Completion:
    choice = resp.choices[0]
    usage = getattr(resp, "usage", None)
    return Completion(
        text=(choice.message.content or "").strip(),
        finish_reason=choice.finish_reason or "stop",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
