"""The strategy classes by prefix (what the provider registry in models/backends makes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aloe_bench.models.backends.base import Backend
from aloe_bench.models.strategies import STRATEGIES
from aloe_bench.models.strategies.base import StrategyBackend
from aloe_bench.models.strategies.cot import CotBackend
from aloe_bench.models.strategies.recall import RecallBackend
from aloe_bench.models.strategies.reminder import ReminderBackend
from aloe_bench.models.strategies.self_critic import SelfCriticBackend

CLASSES: dict[str, type[StrategyBackend]] = {
    "reminder": ReminderBackend,
    "cot": CotBackend,
    "self-critic": SelfCriticBackend,
    "recall": RecallBackend,
}
assert set(CLASSES) == set(STRATEGIES)


def strategy_backend(
    strategy: str, name: str, args: Mapping[str, Any] | None, inner: Backend
) -> StrategyBackend:
    return CLASSES[strategy](name, args, inner)
