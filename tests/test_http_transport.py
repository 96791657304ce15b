"""The openai backend's own HTTP transport (aiohttp): what it sends, what it reads back, and the one
clear line each kind of failure gives (refused connection, HTTP 500, a 200 whose body is not JSON,
a timeout, a refused key), against the fault-injection server or a socket that answers garbage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yarl
from conftest import free_port

from aloe_bench.errors import BackendFatalError
from aloe_bench.models.backends.base import ChatRequest, Completion, GenerationSettings
from aloe_bench.models.backends.openai_api import OpenAIBackend
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

SECRET = "sk-transport-test-0123456789"
HELLO = [{"role": "user", "content": "Hello there, how are you today?"}]


def _generate(
    base_url: str, requests: list[ChatRequest], **args: str
) -> tuple[list[Completion], OpenAIBackend]:
    backend = OpenAIBackend("fake-model", {"base_url": base_url, "backoff": "0.01", **args})

    async def go() -> list[Completion]:
        try:
            return await backend.generate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(go()), backend


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_body_auth_usage_and_truncation_go_through():
    settings = GenerationSettings(max_new_tokens=3, temperature=0.7, top_p=0.9, seed=11)
    with FakeOpenAIServer(FakeBehaviour(required_key=SECRET)) as server:
        (done,), backend = _generate(server.base_url, [ChatRequest(HELLO, settings)])
    assert done.ok, done.error
    assert server.requests == [
        {
            "model": "fake-model",
            "messages": HELLO,
            "max_tokens": 3,
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 11,
        }
    ]
    assert server.headers_seen[0]["authorization"] == f"Bearer {SECRET}"
    assert server.headers_seen[0]["content-type"] == "application/json"
    # the fake cuts the answer at max_tokens words, as a real server cuts at its token limit
    assert done.finish_reason == "length" and done.completion_tokens == 3 and len(done.text.split()) == 3
    assert done.prompt_tokens == 6 and done.retries == 0
    assert backend.rate_stats()["retries"] == 0


def test_max_completion_tokens_name_is_sent():
    with FakeOpenAIServer() as server:
        (done,), _ = _generate(
            server.base_url, [ChatRequest(HELLO, GenerationSettings(max_new_tokens=50))],
            max_tokens_param="max_completion_tokens",
        )  # fmt: skip
    assert done.ok and done.finish_reason == "stop"
    assert server.requests[0]["max_completion_tokens"] == 50 and "max_tokens" not in server.requests[0]


def test_connection_refused_is_retried_then_one_clear_line():
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    (done,), backend = _generate(dead, [ChatRequest(HELLO)], max_retries="1")
    assert not done.ok
    assert done.error.startswith("TransportConnectionError: ")
    assert f"({dead})" in done.error and done.error.endswith("(after 1 retries)")
    assert "\n" not in done.error and SECRET not in done.error
    assert backend.retries == 1


def test_http_500_is_retried_and_gives_the_servers_message():
    with FakeOpenAIServer(FakeBehaviour(fail_first=10, fail_status=500)) as server:
        (done,), backend = _generate(server.base_url, [ChatRequest(HELLO)], max_retries="2")
    assert done.error == "HTTP 500: injected failure 500 (after 2 retries)"
    assert len(server.requests) == 3 and backend.retries == 2


def test_http_500_then_success_counts_the_retry():
    with FakeOpenAIServer(FakeBehaviour(fail_first=1, fail_status=503)) as server:
        (done,), _ = _generate(server.base_url, [ChatRequest(HELLO)])
    assert done.ok and done.retries == 1 and len(server.requests) == 2


def test_a_400_is_not_retried():
    with FakeOpenAIServer(FakeBehaviour(fail_first=5, fail_status=400)) as server:
        (done,), backend = _generate(server.base_url, [ChatRequest(HELLO)])
    assert done.error == "HTTP 400: injected failure 400"
    assert len(server.requests) == 1 and backend.retries == 0


def test_429_waits_for_retry_after():
    with FakeOpenAIServer(FakeBehaviour(fail_first=1, fail_status=429, retry_after=0.3)) as server:
        start = time.monotonic()
        (done,), backend = _generate(server.base_url, [ChatRequest(HELLO)])
        waited = server.log[1][0] - server.log[0][0]
    assert done.ok and done.retries == 1
    assert waited >= 0.3, f"retried after {waited:.2f} s, before the server's Retry-After"
    assert time.monotonic() - start < 5
    assert backend.rate_stats()["throttled"] == 1


def test_refused_key_is_fatal_and_names_the_status():
    server = FakeOpenAIServer(FakeBehaviour(required_key="another-key"))
    with server, pytest.raises(BackendFatalError) as info:
        _generate(server.base_url, [ChatRequest(HELLO)])
    message = str(info.value)
    assert "refused the request (401: injected failure 401)" in message and "API key" in message
    assert SECRET not in message


def test_timeout_gives_a_timeout_line():
    with FakeOpenAIServer(FakeBehaviour(latency_s=2.0)) as server:
        (done,), _ = _generate(server.base_url, [ChatRequest(HELLO)], timeout="0.2", max_retries="0")
    assert done.error.startswith("TransportTimeout: request timed out"), done.error
    assert done.error.endswith("(after 0 retries)")


@contextmanager
def _raw_server(answer: bytes) -> Iterator[str]:
    """A socket server that answers every request with `answer` (a whole HTTP response)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    seen = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(65536))
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        listener.close()
        thread.join(2)


def _http(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def test_a_200_that_is_not_json_is_retried_then_named():
    with _raw_server(_http("200 OK", b"<html>gateway says hi</html>")) as url:
        (done,), backend = _generate(url, [ChatRequest(HELLO)], max_retries="1")
    assert done.error == (
        "MalformedResponse: HTTP 200 with a body that is not JSON: '<html>gateway says hi</html>' (after 1 retries)"
    )
    assert backend.retries == 1


def test_a_200_without_choices_is_named():
    with _raw_server(_http("200 OK", b'{"object": "chat.completion"}')) as url:
        (done,), _ = _generate(url, [ChatRequest(HELLO)], max_retries="0")
    assert done.error == "KeyError: 'choices' (after 0 retries)"


def test_an_error_body_that_is_not_json_is_quoted():
    with _raw_server(_http("502 Bad Gateway", b"upstream connect error\nsecond line")) as url:
        (done,), _ = _generate(url, [ChatRequest(HELLO)], max_retries="0")
    assert done.error == "HTTP 502: upstream connect error (after 0 retries)"


def test_a_proxy_from_the_environment_is_used_unless_no_proxy(monkeypatch):
    from aloe_bench.models.backends.http_transport import HTTPTransport

    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)

    async def proxies() -> list[object]:
        monkeypatch.setenv("HTTP_PROXY", "http://user:pw@proxy.example:3128")
        via = HTTPTransport("http://gpu1:8000/v1", "k", timeout=1, connections=1)
        monkeypatch.setenv("NO_PROXY", "gpu1")
        direct = HTTPTransport("http://gpu1:8000/v1", "k", timeout=1, connections=1)
        found = [via._proxy, via._proxy_auth and via._proxy_auth.login, direct._proxy]
        await via.aclose()
        await direct.aclose()
        return found

    assert asyncio.run(proxies()) == [yarl.URL("http://proxy.example:3128"), "user", None]
