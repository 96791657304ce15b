"""What a run costs: the versioned price table (`data/prices.yaml`), per-role overrides
(`--price ROLE=IN,OUT`, dollars per million tokens), and the dollars of a role's token usage.

Only `openai/` roles have a list price; in-process backends (hf, vllm, embedded) cost nothing per
token here, and an API model missing from the table has no price (cost `null`, never a guess)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import normalize_spec

ROLES = ("model", "simulator", "judge")


@dataclass(frozen=True)
class Price:
    input: float  # $ per million prompt tokens
    output: float  # $ per million completion tokens
    source: str  # "prices.yaml vN (as of DATE)" or "--price"

    def cost(self, prompt_tokens: int, completion_tokens: int, *, discount: float = 1.0) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6 * discount


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    text = resources.files("aloe_bench").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def table_record() -> dict[str, Any]:
    t = price_table()
    return {"version": t["version"], "as_of": t["as_of"], "source": t["source"]}


def batch_discount() -> float:
    return float(price_table().get("batch_discount", 0.5))


def served_spec(spec: str) -> str:
    """The spec that answers a role's calls: best-of-N's policy and a strategy's wrapped model, in
    any nesting (`cot/bon/4:openai/x@rm` -> `openai/x`); any other spec itself."""
    from aloe_bench.models.backends.best_of_n import served_spec as policy_of
    from aloe_bench.models.strategies import served_spec as wrapped_by

    previous = None
    while spec != previous:
        previous, spec = spec, policy_of(wrapped_by(spec))
    return spec


def list_price(spec: str) -> Price | None:
    """The table's price for an `openai/<model>` spec, or for a best-of-N spec or a strategy
    (`cot/openai/<model>`) that calls one: their usage counts every call they made; or None."""

    spec = normalize_spec(served_spec(spec))
    if not spec.startswith("openai/"):
        return None
    t = price_table()
    entry = t["models"].get(spec.split("/", 1)[1])
    if entry is None:
        return None
    return Price(
        float(entry["input"]), float(entry["output"]), f"prices.yaml v{t['version']} (as of {t['as_of']})"
    )


def parse_price_flags(values: list[str] | None) -> dict[str, Price]:
    """`--price ROLE=IN,OUT` flags: {role: Price}."""
    out: dict[str, Price] = {}
    for value in values or []:
        role, _, numbers = value.partition("=")
        parts = numbers.split(",")
        try:
            if role not in ROLES or len(parts) != 2:
                raise ValueError
            out[role] = Price(float(parts[0]), float(parts[1]), "--price")
        except ValueError:
            raise UserInputError(
                f"--price {value!r}: expected ROLE=IN,OUT with ROLE one of {', '.join(ROLES)} and IN, OUT "
                "in dollars per million tokens, e.g. --price judge=0.15,0.60"
            ) from None
    return out


def role_prices(specs: dict[str, str], overrides: dict[str, Price] | None = None) -> dict[str, Price | None]:
    """Each role's price: its override, else the table's for its spec, else None."""
    overrides = overrides or {}
    return {role: overrides.get(role) or list_price(spec) for role, spec in specs.items()}


# Token counting for cost estimates (dry runs of every run kind): tiktoken when its file is cached.
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


def _tiktoken_file_cached() -> bool:
    """tiktoken downloads its encoding on first use; a dry run makes no network call, so it uses
    tiktoken only when that file is already in tiktoken's cache."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.isfile(os.path.join(cache_dir, hashlib.sha1(_O200K_URL.encode()).hexdigest()))


def token_counter() -> tuple[Callable[[str], int], str]:
    fallback = (lambda text: (len(text) + 3) // 4), "characters / 4"
    try:
        import tiktoken
    except ImportError:
        return fallback[0], fallback[1] + " (tiktoken not installed)"
    if not _tiktoken_file_cached():
        return fallback[0], fallback[
            1
        ] + " (tiktoken's o200k_base file not cached; a dry run downloads nothing)"
    try:
        encoding = tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - a corrupt cache file: count by characters
        return fallback
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken o200k_base"
