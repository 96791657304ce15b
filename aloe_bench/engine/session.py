"""The one engine every kind of run goes through (benchmark run, Multifaceted, re-judge, simulator
audit, training conversations, persona growth).

It owns, once, what each of them needs around its own per-item work: the backend pool and the call
cache (opened and closed together), the output-folder check, the config hash, the status vocabulary,
and the recorder lifecycle: flushed as `running` before the work starts, flushed with the final
status after it, and on a failure or Ctrl-C the work in flight is cancelled and what finished is
flushed before the error goes on. A run kind says only what it does per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar, get_args

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RunStatus
from aloe_bench.log.results import CONVERSATIONS_FILE, RESULTS_FILE, ensure_writable
from aloe_bench.log.storage import remove_stale_temps
from aloe_bench.models.backends import BackendPool
from aloe_bench.models.cache import CallCache
from aloe_bench.models.roles import Usage
from aloe_bench.paths import default_call_cache

# complete: every item finished; incomplete: the run stopped (Ctrl-C, cancelled) or some items
# failed, and re-running resumes it; failed: the run itself stopped on an error; running: not done.
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


class HasStatus(Protocol):
    @property
    def status(self) -> str: ...


_Flushed = TypeVar("_Flushed", covariant=True)
_T = TypeVar("_T")


class Recorder(Protocol[_Flushed]):
    """What the engine needs of a run kind's recorder: write the run's state with a status, and
    say what was written (a benchmark's RunResults; aloe-train's output metadata)."""

    def flush(self, status: RunStatus) -> _Flushed: ...


def config_hash(record: object) -> str:
    """The hash that identifies what determines a run's results: resuming into a folder requires
    the same. (The exact form every run kind used before, so existing run folders still resume.)"""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def final_status(items: Iterable[HasStatus]) -> RunStatus:
    return "complete" if all(item.status == "complete" for item in items) else "incomplete"


def stopped_status(exc: BaseException) -> RunStatus:
    """An interrupt or a cancellation leaves a run to resume; any other error failed it."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return "incomplete"
    return "failed"


def open_cache(setting: str | None) -> CallCache | None:
    """The call cache: None (the setting) means the default file, "" no cache (and no resume)."""
    if setting == "":
        return None
    return CallCache(Path(setting).expanduser() if setting else default_call_cache())


def previous_results(out: Path) -> dict[str, Any] | None:
    """The results.json already in `out`, None when there is none (or it cannot be read)."""
    try:
        data = json.loads((out / RESULTS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_output_dir(out: Path, run_hash: str, overwrite: bool) -> None:
    """Refuse to mix two different runs in one folder (the same run resumes). Temp files a killed
    run left mid-write are removed (the files they were to replace are whole)."""
    ensure_writable(out)
    remove_stale_temps(out, (RESULTS_FILE, CONVERSATIONS_FILE, "report.html"))
    if (out / RESULTS_FILE).is_file() and not overwrite:
        previous = (previous_results(out) or {}).get("config_hash")
        if previous != run_hash:
            raise UserInputError(
                f"{out} holds a different run (config hash {previous} != {run_hash}); "
                "pass another --output, or --overwrite to replace it"
            )


_USAGE_FIELDS = tuple(f.name for f in fields(Usage))


def carry_usage(out: Path | None, run_hash: str, usage: Mapping[str, Usage]) -> None:
    """Start this invocation's counters from those an earlier invocation of the same run recorded,
    so a resumed (or re-run) run reports the usage of all its invocations, not only the last one's."""
    previous = previous_results(out) if out is not None else None
    if previous is None or previous.get("config_hash") != run_hash:
        return
    for name, recorded in (previous.get("usage") or {}).items():
        counters = usage.get(name)
        if counters is None or not isinstance(recorded, dict):
            continue
        for key in _USAGE_FIELDS:
            value = recorded.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(counters, key, getattr(counters, key) + value)


@dataclass
class RunBackends:
    """The backends and call cache of one run (or of one lm-eval group)."""

    pool: BackendPool
    cache: CallCache | None


async def record_run(
    recorder: Recorder[_T],
    work: Callable[[], Awaitable[None]],
    *,
    status: Callable[[], RunStatus],
    stop: Callable[[], Awaitable[None]] | None = None,
) -> _T:
    """Run `work` between a `running` flush and the final one (`status()` once it returned); on
    any error or interrupt, `stop` cancels what is in flight and the run is flushed `incomplete`
    (interrupted: re-running resumes) or `failed` before the error goes on."""
    recorder.flush("running")
    try:
        await work()
    except BaseException as exc:
        if stop is not None:
            await stop()
        recorder.flush(stopped_status(exc))
        raise
    return recorder.flush(status())


@contextlib.asynccontextmanager
async def open_backends(
    cache_setting: str | None, pool: BackendPool | None = None, *, close_pool: bool = True
) -> AsyncIterator[RunBackends]:
    """A backend pool (a new one, or the one given) and a call cache, both closed at the end (the
    pool not with `close_pool=False`: the lm-eval bridge keeps its loaded models across groups)."""
    cache = open_cache(cache_setting)
    pool = pool if pool is not None else BackendPool()
    try:
        yield RunBackends(pool, cache)
    finally:
        if close_pool:
            await pool.aclose()
        if cache is not None:
            cache.close()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Fewer garbage collections while a run goes (restored after). Measured on
    benchmarks/scale.py at 1,000 x 10, --concurrency 512: the cyclic GC took ~15 s of a 58 s run,
    mostly full collections re-scanning every object imported at startup (torch, numpy, scipy) and
    every live conversation. Frozen startup objects are never scanned; a larger first generation
    collects young objects a tenth as often. Cycles are still collected, only later."""
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(10_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
