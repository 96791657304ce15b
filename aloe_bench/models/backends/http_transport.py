"""A lean async HTTP transport for the `openai/` backend's chat requests: aiohttp, JSON in and out.

Why not the openai client: one driver process at `--concurrency 512` spent most of its CPU inside
it (httpx/httpcore scan their whole connection pool on every request, and wrap each response in
several layers of streams), which capped it near 200 requests/s. aiohttp's connector hands out a
kept-alive connection in constant time. The openai client stays for the Batch API's files and
batches endpoints (`OpenAIBackend.sdk_client`): a few calls a minute, multipart uploads, off the
hot path.

Errors come back as three exception types the backend maps to its retry rules: `HTTPStatusError`
(the server answered, not 2xx; with its headers, for Retry-After and x-ratelimit-*),
`TransportTimeout`, `TransportConnectionError` (refused, reset, dropped mid-answer). A 2xx answer
whose body is not a JSON object raises `MalformedResponse`. The API key travels only in the
Authorization header; no message here ever contains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import yarl
from aiohttp.helpers import get_env_proxy_for_url

try:  # orjson, when installed, encodes and decodes the bodies several times faster
    import orjson

    _dumps: Callable[[Any], bytes] = orjson.dumps
    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - a core dependency; the standard library still works without it

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    _loads = json.loads


class TransportError(Exception):
    """A request that did not give a usable answer; `str()` is one line fit for a record."""


class HTTPStatusError(TransportError):
    def __init__(self, status: int, message: str, headers: Any):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.headers = headers


class TransportTimeout(TransportError):
    pass


class TransportConnectionError(TransportError):
    pass


class MalformedResponse(TransportError):
    pass


class JSONResponse:
    """A 2xx answer: its decoded JSON body and its headers (case-insensitive `get`)."""

    __slots__ = ("data", "headers", "status")

    def __init__(self, status: int, headers: Any, data: dict[str, Any]):
        self.status = status
        self.headers = headers
        self.data = data


def error_message(raw: bytes) -> str:
    """The server's own words for an error: `error.message` of an OpenAI error body, else the start
    of the body as text (one line, at most 300 characters)."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
        elif isinstance(err, str) and err:
            text = err
        elif body.get("message"):
            text = str(body["message"])
    lines = text.strip().splitlines()
    return (lines[0] if lines else "empty body")[:300]


class HTTPTransport:
    """POSTs JSON to one server (`base_url`), over at most `connections` kept-alive connections.

    Created inside the running event loop that uses it (aiohttp sessions are bound to their loop);
    `aclose` must be awaited in that loop.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float, connections: int):
        self.base_url = base_url.rstrip("/")
        self._urls: dict[str, yarl.URL] = {}
        connector = aiohttp.TCPConnector(
            limit=max(1, connections),  # as many as may be in flight: none waits for a connection
            limit_per_host=0,
            keepalive_timeout=30,
            enable_cleanup_closed=False,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )
        # HTTP(S)_PROXY / NO_PROXY, as the openai client (httpx) honoured them; looked up once here
        # (aiohttp's trust_env would read the environment and ~/.netrc on every request).
        self._proxy: yarl.URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        with contextlib.suppress(LookupError):  # LookupError: no proxy for this URL
            self._proxy, self._proxy_auth = get_env_proxy_for_url(yarl.URL(self.base_url))

    async def post_json(self, path: str, body: dict[str, Any]) -> JSONResponse:
        url = self._urls.get(path)
        if url is None:  # parsed once per path: aiohttp would parse a str URL on every request
            url = self._urls[path] = yarl.URL(self.base_url + path)
        try:
            async with self._session.post(
                url, data=_dumps(body), proxy=self._proxy, proxy_auth=self._proxy_auth
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except asyncio.TimeoutError as exc:  # aiohttp's timeouts subclass it
            raise TransportTimeout(f"request timed out ({exc or 'no answer in time'})") from None
        except aiohttp.ClientError as exc:  # refused, reset, closed mid-answer, not HTTP
            raise TransportConnectionError(_one_line(exc)) from None
        if not 200 <= status < 300:
            raise HTTPStatusError(status, error_message(raw), headers)
        try:
            data = _loads(raw)
        except ValueError:
            raise MalformedResponse(f"HTTP {status} with a body that is not JSON: {_preview(raw)}") from None
        if not isinstance(data, dict):
            raise MalformedResponse(f"HTTP {status} with a JSON body that is not an object: {_preview(raw)}")
        return JSONResponse(status, headers, data)

    async def aclose(self) -> None:
        await self._session.close()


def _preview(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", "replace").strip().replace("\n", " ")
    return repr(text) if text else "(empty)"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else 'no detail'}"
