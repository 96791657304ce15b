"""Run the intercepted requests in aloe-bench's engines, with the lm-eval LM as the model under test.

One run per (task, settings, --gen_kwargs) group, exactly as `aloe-bench run` would do it (ALOE:
rollout and background judging; Multifaceted: one reply and rubric grading per instance; seeds, call
cache), except that the model under test is the LM instance lm-eval built and nothing is written:
each conversation (or instance) goes back to lm-eval as its transcript.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aloe_bench.engine.execute import run_task
from aloe_bench.engine.session import open_backends
from aloe_bench.engine.task_api import get_task
from aloe_bench.integrations.lm_eval.requests import AloeRequest, encode_transcript
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.backends import BackendPool
from aloe_bench.models.backends.lmeval_backend import LMEvalBackend, refuse_data_parallel

log = logging.getLogger("lm_eval.aloe")  # lm-eval's logger: shown with lm-eval's own messages

_NOT_PER_SAMPLE = ("packages", "machine")  # lm-eval records its own environment


def _run(coroutine_factory) -> Any:
    """asyncio.run, also when called from inside a running loop (lm-eval's Python API in Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine_factory()).result()


def _summary(request: AloeRequest, results: RunResults) -> str:
    usage = "; ".join(f"{role} {u.calls} calls/{u.cached} cached" for role, u in results.usage.items())
    task = get_task(request.kind, request.task)
    label, key = task.headline
    m = results.metrics.to_dict()  # a task's metrics may hold keys of its own (its headline)
    count = m.get(task.item + "s", m.get("conversations", 0))  # the curve counts items as conversations
    scored = f"{task.title} {request.task}: {count} {task.item}s scored"
    return f"{scored}, {m.get('failed', 0)} failed, {label} {m.get(key)}; {usage}"


async def _run_group(
    requests: list[AloeRequest], backend: LMEvalBackend, pool: BackendPool
) -> tuple[RunResults, list[ConversationRecord]]:
    """One run, as `aloe-bench run` would do it for these personas or instances, writing nothing."""
    first = requests[0]
    config = first.run_config(backend.spec)
    task = get_task(first.kind, first.task)
    async with open_backends(config.cache, pool, close_pool=False) as group_engine:
        run = task.setup(config, [r.item for r in requests], group_engine, None, {"model": backend})
        return await run_task(run, None)


def run_requests(lm: Any, requests: list[AloeRequest]) -> list[str]:
    """One transcript (JSON) per request, in order."""
    refuse_data_parallel(lm)
    backend = LMEvalBackend.around(lm)
    groups: dict[str, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(request.group_key(), []).append(i)
    transcripts: list[str | None] = [None] * len(requests)

    async def run_all() -> None:
        pool = BackendPool()
        try:
            for indices in groups.values():
                first = requests[indices[0]]
                results, conversations = await _run_group([requests[i] for i in indices], backend, pool)
                log.info(_summary(first, results))
                for conv in conversations:
                    if conv.status == "failed":
                        log.warning(
                            "%s: %s %s failed: %s", first.task, get_task(first.kind).item, conv.id, conv.error
                        )
                run = {k: v for k, v in results.config.to_dict().items() if k not in _NOT_PER_SAMPLE}
                for i, conv in zip(indices, conversations, strict=True):
                    transcripts[i] = encode_transcript(first.task, conv, run)
        finally:
            await pool.aclose()
            await backend.aclose()

    log.info("aloe-bench: running %d request(s) in %d run(s) on %s", len(requests), len(groups), backend.spec)
    _run(run_all)
    return transcripts  # type: ignore[return-value]
