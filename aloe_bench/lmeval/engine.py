"""Run the intercepted ALOE requests in the ALOE engine, with the lm-eval LM as the model under test.

One run per (task, settings, --gen_kwargs) group, exactly as `aloe-bench run` would do it (rollout,
background judging, seeds, call cache), except that the model under test is the LM instance lm-eval
built and nothing is written: each conversation goes back to lm-eval as its transcript.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aloe_bench.backends import BackendPool
from aloe_bench.backends.lmeval_backend import LMEvalBackend, refuse_data_parallel
from aloe_bench.lmeval.requests import AloeRequest, encode_transcript
from aloe_bench.personas import PersonaSet
from aloe_bench.runner import open_cache, run_engine

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


def _summary(task: str, results: dict[str, Any]) -> str:
    usage = "; ".join(
        f"{role} {u['calls']} calls/{u['cached']} cached" for role, u in results.get("usage", {}).items()
    )
    m = results["metrics"]
    return (
        f"ALOE {task}: {m.get('conversations', 0)} conversations scored, {m.get('failed', 0)} failed, "
        f"AVG {m.get('avg')}; {usage}"
    )


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
                config = first.run_config(backend.spec)
                personas = PersonaSet(
                    config.personas, [requests[i].persona for i in indices], source="lm-eval requests"
                )
                cache = open_cache(config.cache)
                try:
                    results, conversations = await run_engine(
                        config, personas, pool=pool, cache=cache, out=None, backends={"model": backend}
                    )
                finally:
                    if cache is not None:
                        cache.close()
                log.info(_summary(first.task, results))
                for conv in conversations:
                    if conv.status == "failed":
                        log.warning("ALOE %s: conversation %s failed: %s", first.task, conv.id, conv.error)
                run = {k: v for k, v in results["config"].items() if k not in _NOT_PER_SAMPLE}
                for i, conv in zip(indices, conversations, strict=True):
                    transcripts[i] = encode_transcript(first.task, conv, run)
        finally:
            await pool.aclose()
            await backend.aclose()

    log.info("ALOE: running %d conversation(s) in %d run(s) on %s", len(requests), len(groups), backend.spec)
    _run(run_all)
    return transcripts  # type: ignore[return-value]
