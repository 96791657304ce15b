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

from aloe_bench.datasets.multifaceted import HF_DATASET, MultifacetedSet
from aloe_bench.datasets.personas import PersonaSet
from aloe_bench.engine.multifaceted import MultifacetedConfig, run_rubric_engine
from aloe_bench.engine.runner import open_cache, run_engine
from aloe_bench.integrations.lm_eval.requests import AloeRequest, encode_transcript
from aloe_bench.log.models import RubricMetrics, RunResults
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.backends import BackendPool
from aloe_bench.models.backends.lmeval_backend import LMEvalBackend, refuse_data_parallel

log = logging.getLogger("lm_eval.aloe")  # lm-eval's logger: shown with lm-eval's own messages

_NOT_PER_SAMPLE = ("packages", "machine")  # lm-eval records its own environment
_ITEM = {"aloe": "conversation", "multifaceted": "instance"}


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
    m = results.metrics
    if isinstance(m, RubricMetrics):
        scored = f"Multifaceted {request.task}: {m.instances} instances scored"
        score = f"score {m.score}"
    else:
        scored = f"ALOE {request.task}: {m.conversations} conversations scored"
        score = f"AVG {m.avg}"
    return f"{scored}, {m.failed} failed, {score}; {usage}"


async def _run_group(
    requests: list[AloeRequest], backend: LMEvalBackend, pool: BackendPool
) -> tuple[RunResults, list[ConversationRecord]]:
    """One run, as `aloe-bench run` would do it for these personas or instances, writing nothing."""
    first = requests[0]
    config = first.run_config(backend.spec)
    cache = open_cache(config.cache)
    try:
        if isinstance(config, MultifacetedConfig):
            instances = [r.instance for r in requests if r.instance is not None]
            dataset = MultifacetedSet(config.data or HF_DATASET, "lm-eval requests", instances)
            return await run_rubric_engine(
                config, dataset, pool=pool, cache=cache, out=None, backends={"model": backend}
            )
        personas = PersonaSet(
            config.personas, [r.persona for r in requests if r.persona is not None], source="lm-eval requests"
        )
        return await run_engine(
            config, personas, pool=pool, cache=cache, out=None, backends={"model": backend}
        )
    finally:
        if cache is not None:
            cache.close()


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
                            "%s: %s %s failed: %s", first.task, _ITEM[first.kind], conv.id, conv.error
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
