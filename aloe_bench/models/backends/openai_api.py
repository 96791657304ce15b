"""`openai/<model>`: any OpenAI-compatible chat-completions server (aiohttp: `http_transport.py`).

Async with adaptive concurrency (at most `concurrency` in flight, halved on a 429 and grown back
one at a time: see `ratelimit.py`); transient failures (429, 408, 409, 5xx, timeouts, dropped
connections) are retried with exponential backoff and jitter, never before the server's
`Retry-After` / `x-ratelimit-reset-*`. `base_url` may list several endpoints (comma-separated):
each request goes to the healthy one with the fewest in flight. Failures that no retry can fix (bad
key, unknown model) stop the run with one clear line.

As the openai client does, it reads OPENAI_BASE_URL and OPENAI_API_KEY; per role, `base_url=` and
`api_key_env=NAME` (the name of a variable holding the key) override them. Keys are never recorded.
Arguments: base_url, api_key_env, max_retries (6), timeout (120 s), backoff (0.5 s), concurrency,
max_tokens_param (max_tokens | max_completion_tokens).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.activity import ACTIVITY
from aloe_bench.models.backends.base import (
    PRIORITY_CRITICAL,
    Backend,
    ChatRequest,
    Completion,
    GenerationSettings,
)
from aloe_bench.models.backends.http_transport import (
    HTTPStatusError,
    HTTPTransport,
    TransportConnectionError,
    TransportTimeout,
)
from aloe_bench.models.backends.ratelimit import (
    AdaptiveConcurrency,
    Endpoint,
    pause_from_headers,
    pick_endpoint,
)

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
    # Sent as `repetition_penalty` in the body, the extension vLLM and TGI servers take; OpenAI's own
    # API has no such parameter and is refused in `check_settings`.
    takes_repetition_penalty = True

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        if not name:
            raise UserInputError("openai/ needs a model name, e.g. openai/gpt-4o-mini-2024-07-18")
        self.base_url = self.args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        # Several endpoints (comma-separated): the same model served by several servers.
        self.base_urls = [u.strip() for u in str(self.base_url).split(",") if u.strip()]
        self.max_retries = int(self.args.get("max_retries", 6))
        self.timeout = float(self.args.get("timeout", 120))
        self.backoff = float(self.args.get("backoff", 0.5))
        self.concurrency = int(self.args.get("concurrency", 32))
        self.max_tokens_param = self.args.get("max_tokens_param", "max_tokens")
        self._sdk_client: Any = None
        self._endpoints: list[Endpoint] = []
        self._limiter: AdaptiveConcurrency | None = None
        self._fatal: BackendFatalError | None = None
        self.retries = 0
        self.throttled = 0

    def _api_key(self) -> str:
        env_name = self.args.get("api_key_env", "OPENAI_API_KEY")
        key = os.environ.get(env_name)
        if key:
            return key
        if all(_is_local(u) for u in self.base_urls):
            return "EMPTY"  # local servers (vLLM, transformers serve) accept any key
        raise UserInputError(
            f"{self.spec} needs an API key: set {env_name} (or point base_url at a local server)"
        )

    def check(self) -> None:
        self._api_key()
        if not self.base_urls:
            raise UserInputError(f"{self.spec}: base_url lists no endpoint; pass base_url=URL[,URL...]")
        if self.max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise UserInputError("max_tokens_param must be max_tokens or max_completion_tokens")

    def check_settings(self, settings: GenerationSettings) -> None:
        if settings.repetition_penalty is not None:
            hosted = [u for u in self.base_urls if (urlsplit(u).hostname or "").endswith("api.openai.com")]
            if hosted:
                raise UserInputError(
                    f"{self.spec} at {_public_url(hosted[0])} cannot apply a repetition penalty (the OpenAI "
                    "API has no such parameter; vLLM and TGI servers take it): drop the role's repetition "
                    "penalty, or point base_url at a server that takes it"
                )
        super().check_settings(settings)

    def public_base_url(self) -> str:
        return ",".join(_public_url(u) for u in self.base_urls)

    def identity(self) -> dict[str, Any]:
        keep = {k: v for k, v in self.args.items() if k in ("max_tokens_param",)}
        return {"spec": self.spec, "base_url": self.public_base_url(), "args": keep}

    def describe(self) -> dict[str, Any]:
        info = self.identity()
        info["concurrency"] = self.concurrency
        info["max_retries"] = self.max_retries
        if len(self.base_urls) > 1:
            info["endpoints"] = len(self.base_urls)
        return info

    def rate_stats(self) -> dict[str, Any]:
        """Retries, 429s and the concurrency reached (for results.json usage and the summary)."""
        stats: dict[str, Any] = {"retries": self.retries, "throttled": self.throttled}
        if self._limiter is not None:
            stats.update(self._limiter.stats())
        if len(self._endpoints) > 1:
            stats["endpoints"] = [
                {"url": _public_url(e.url), "requests": e.requests, "errors": e.errors}
                for e in self._endpoints
            ]
        return stats

    def _ensure_client(self) -> None:
        """The endpoints and their transports (inside the running loop: aiohttp sessions are
        bound to it) and the limiter; once."""
        if self._endpoints:
            return
        key = self._api_key()
        # Each endpoint may take every request in flight (with one down, the others carry it all).
        self._endpoints = [
            Endpoint(url, HTTPTransport(url, key, timeout=self.timeout, connections=self.concurrency))
            for url in self.base_urls
        ]
        self._limiter = AdaptiveConcurrency(self.concurrency)

    def sdk_client(self) -> Any:
        """The openai client, for the Batch API's files and batches endpoints only (multipart
        uploads and file downloads, a few calls a minute: not worth a transport of their own)."""
        if self._sdk_client is None:
            from openai import AsyncOpenAI

            self._sdk_client = AsyncOpenAI(
                api_key=self._api_key(), base_url=self.base_urls[0], max_retries=0, timeout=self.timeout
            )
        return self._sdk_client

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        self._ensure_client()
        return list(await asyncio.gather(*(self._one(r, priority) for r in requests)))

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The chat-completions body for a request (also what a Batch API line carries)."""
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
        if s.repetition_penalty is not None:  # only when set: servers without it reject the key
            body["repetition_penalty"] = s.repetition_penalty
        return body

    async def _one(self, request: ChatRequest, priority: int) -> Completion:
        limiter = self._limiter
        assert limiter is not None
        body = self.request_body(request)
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if self._fatal is not None:
                raise self._fatal
            delay: float | None = None
            retry_elsewhere = False
            granted = await limiter.acquire(priority)
            endpoint = pick_endpoint(self._endpoints)
            endpoint.in_flight += 1
            endpoint.requests += 1
            try:
                # The server asked to wait, its request budget is spent, or every endpoint is out.
                while (hold := endpoint.take()) > 0:
                    await asyncio.sleep(hold)
                # The body goes out as it is (no typed re-validation of the messages: it cost the
                # openai client ~4 ms of CPU per request, which capped one driver).
                answer = await endpoint.client.post_json("/chat/completions", body)
                endpoint.observe(answer.headers)
                pause = pause_from_headers(answer.headers, 200)
                if pause:
                    endpoint.pause(pause)
                completion = completion_from_dict(answer.data)
                ACTIVITY.requests_finished(1, completion.completion_tokens)  # progress inside a turn
                limiter.succeeded()
                endpoint.succeeded()
                completion.retries = attempt
                return completion
            except HTTPStatusError as exc:
                status = exc.status
                if status in (401, 403, 404):
                    self._fatal = BackendFatalError(
                        f"{self.spec} at {_public_url(endpoint.url)} refused the request "
                        f"({status}: {exc.message}); check the model name and the API key"
                    )
                    raise self._fatal from None
                last_error = str(exc)
                if status not in (408, 409, 429) and status < 500:
                    return Completion.failure(last_error)  # this request is bad; retrying cannot help
                endpoint.observe(exc.headers)
                if status == 429:
                    self.throttled += 1
                    limiter.throttled(granted)
                    delay = pause_from_headers(exc.headers, 429)
                    if delay is not None:
                        endpoint.pause(delay)
                else:
                    self._endpoint_failed(endpoint)
                    retry_elsewhere = True
                    delay = _retry_after(exc.headers)
            except (TransportTimeout, TransportConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {exc} ({_public_url(endpoint.url)})"
                self._endpoint_failed(endpoint)
                retry_elsewhere = True
            except Exception as exc:  # noqa: BLE001 - malformed responses must not kill the run
                last_error = f"{type(exc).__name__}: {_short(exc)}"
            finally:
                endpoint.in_flight -= 1
                limiter.release()
            if attempt < self.max_retries:
                self.retries += 1
                now = time.monotonic()
                if retry_elsewhere and any(e.healthy(now) for e in self._endpoints):
                    wait = 0.0  # another endpoint is up: go there now
                elif delay is not None:
                    wait = delay * (1 + 0.25 * random.random())  # never before the server said
                else:
                    wait = self.backoff * 2**attempt * (0.5 + random.random())
                await asyncio.sleep(min(60.0, wait))
                log.info("%s: retry %d after %s", self.spec, attempt + 1, last_error)
        return Completion.failure(f"{last_error} (after {self.max_retries} retries)")

    def _endpoint_failed(self, endpoint: Endpoint) -> None:
        """Take a failing endpoint out for a while, when there is another to go to (with one, the
        request's own backoff is all there is: one bad request must not stall every other)."""
        if len(self._endpoints) > 1:
            endpoint.failed()
        else:
            endpoint.errors += 1

    async def aclose(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.client.aclose()
        self._endpoints = []
        if self._sdk_client is not None:
            await self._sdk_client.close()
            self._sdk_client = None


def completion_from_dict(data: dict[str, Any]) -> Completion:
    """A chat-completions response body (decoded JSON) as a Completion."""
    choice = data["choices"][0]
    usage = data.get("usage") or {}
    return Completion(
        text=((choice.get("message") or {}).get("content") or "").strip(),
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _completion(resp: Any) -> Completion:
    choice = resp.choices[0]
    usage = getattr(resp, "usage", None)
    return Completion(
        text=(choice.message.content or "").strip(),
        finish_reason=choice.finish_reason or "stop",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
