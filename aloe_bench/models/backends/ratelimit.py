"""Rate limits and many endpoints for API backends.

`AdaptiveConcurrency`: requests in flight capped by a limit that adapts (additive increase, one more
slot per limit's worth of successes; multiplicative decrease, halved on a 429, once per round of
requests), so a run started at `--concurrency 256` against a limited account settles near the rate
the account allows instead of retrying in a storm. Waiting critical-path requests go before
background ones (judging), as with `PrioritySemaphore`.

`Endpoint` / `pick_endpoint`: a role's `base_url` may list several servers; each request goes to the
healthy one with the fewest requests in flight; one that fails (connection error, timeout, 5xx) is
taken out for a while (1 s, doubling up to 60 s) and then tried again. A server's rate-limit
headers (`Retry-After`, `x-ratelimit-remaining-requests/tokens` with `x-ratelimit-reset-*`) pause
new requests to it until the time it names.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import Any

from aloe_bench.models.backends.base import PriorityGate

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset durations ("20ms", "1s", "6m0s", "1h2m3.5s") or plain seconds, in seconds."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def pause_from_headers(headers: Any, status: int) -> float | None:
    """Seconds to hold new requests to a server, from its answer's headers (None: no need)."""
    if headers is None:
        return None
    get = headers.get
    if status == 429:
        retry_after_ms = parse_duration(get("retry-after-ms"))
        if retry_after_ms is not None:
            return retry_after_ms / 1000
        retry_after = parse_duration(get("retry-after"))
        if retry_after is not None:
            return retry_after
    waits = []
    for kind in ("tokens",) if status != 429 else ("requests", "tokens"):  # requests: see Endpoint.budget
        remaining = get(f"x-ratelimit-remaining-{kind}")
        reset = parse_duration(get(f"x-ratelimit-reset-{kind}"))
        try:
            exhausted = remaining is not None and int(float(remaining)) <= 0
        except ValueError:
            exhausted = False
        if (exhausted or status == 429) and reset is not None:
            waits.append(reset)
    return max(waits) if waits else None


class AdaptiveConcurrency(PriorityGate):
    def __init__(self, maximum: int, minimum: int = 1):
        super().__init__()
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.limit = float(self.maximum)
        self.peak = 0
        self.decreases = 0
        self._last_decrease = 0.0

    # `acquire` returns the time a slot was granted: a 429 on a request sent before the last
    # decrease is the same congestion, and does not halve the limit again.
    def _free(self) -> bool:
        return self.in_use < int(self.limit)

    def _take(self) -> None:
        super()._take()
        self.peak = max(self.peak, self.in_use)

    def succeeded(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def throttled(self, granted_at: float) -> None:
        if granted_at < self._last_decrease:
            return
        self.limit = max(float(self.minimum), self.limit / 2)
        self._last_decrease = time.monotonic()
        self.decreases += 1

    def stats(self) -> dict[str, Any]:
        return {
            "concurrency_max": self.maximum,
            "concurrency_peak": self.peak,
            "concurrency_limit": round(self.limit, 1),
            "concurrency_decreases": self.decreases,
        }


@dataclass
class Endpoint:
    url: str
    client: Any = None  # what sends to it (the openai backend's HTTPTransport)
    in_flight: int = 0
    failures: int = 0  # consecutive
    down_until: float = 0.0
    paused_until: float = 0.0  # the server's rate-limit headers asked to wait
    requests: int = 0
    errors: int = 0
    budget: int | None = None  # requests the server's last headers still allow in this window
    budget_reset: float = 0.0
    budget_full: int | None = None  # the window's whole budget (x-ratelimit-limit-requests)

    def observe(self, headers: Any) -> None:
        """Mirror the server's request budget (x-ratelimit-remaining/reset-requests): what it had
        left when it answered, less what this client has sent since (still in flight)."""
        if headers is None:
            return
        reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
        try:
            remaining = int(float(headers.get("x-ratelimit-remaining-requests")))
        except (TypeError, ValueError):
            return
        if reset is not None:
            self.budget = max(0, remaining - max(0, self.in_flight - 1))
            self.budget_reset = time.monotonic() + reset
        with contextlib.suppress(TypeError, ValueError):
            self.budget_full = int(float(headers.get("x-ratelimit-limit-requests")))

    def take(self) -> float:
        """Spend one request of the budget: 0 to send now, else the seconds to wait first."""
        now = time.monotonic()
        if self.budget is not None and now >= self.budget_reset:
            # A new window: its whole budget (if the server said it), until answers tell more.
            self.budget, self.budget_reset = self.budget_full, float("inf")
        wait = max(self.paused_until, self.down_until) - now
        if wait > 0:
            return wait
        if self.budget is None:
            return 0.0
        if self.budget <= 0:  # spent: wait for the window's end (or, not knowing it, for an answer)
            return (
                min(0.05, self.budget_reset - now)
                if self.budget_reset == float("inf")
                else max(0.001, self.budget_reset - now)
            )
        self.budget -= 1
        return 0.0

    def healthy(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self) -> None:
        self.failures += 1
        self.errors += 1
        self.down_until = time.monotonic() + min(60.0, 2.0 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures = 0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + min(seconds, 120.0))


def pick_endpoint(endpoints: list[Endpoint]) -> Endpoint:
    """The healthy endpoint with the fewest requests in flight (all down: the one back soonest)."""
    now = time.monotonic()
    healthy = [e for e in endpoints if e.healthy(now)]
    if not healthy:
        return min(endpoints, key=lambda e: e.down_until)
    return min(healthy, key=lambda e: (e.paused_until > now, e.in_flight))
