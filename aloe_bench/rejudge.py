"""Judge a finished run again (another judge, another protocol) without regenerating anything.

The conversations are read from the run directory and scored by the judge stage alone; the results
go to a new run directory (the original is never written), whose usage shows zero calls for the
model under test and the simulated user. Judge calls go through the call cache: re-running resumes.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from aloe_bench import __version__
from aloe_bench.backends import PRIORITY_BACKGROUND, BackendPool
from aloe_bench.config import RoleConfig
from aloe_bench.errors import UserInputError
from aloe_bench.judge import JudgeStage, get_protocol
from aloe_bench.metrics import DEFAULT_BOOTSTRAP
from aloe_bench.provenance import machine, package_versions
from aloe_bench.results import ConversationRecord, Run, TurnRecord, load_run
from aloe_bench.roles import Role, Usage
from aloe_bench.runner import RunRecorder, _now, check_output_dir, open_cache


def default_output(source: Path, judge: RoleConfig, protocol: str) -> Path:
    """A sibling of the source run, named after the new judge and protocol."""
    judge_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge.record()["spec"].replace("/", "_")).strip("-")
    return source.parent / f"{source.name}__judge-{judge_slug[:60]}__{protocol}"


def _unjudged(conv: ConversationRecord) -> ConversationRecord:
    """The conversation with the old judge's verdicts removed (user and assistant turns kept)."""
    turns = [TurnRecord(user=t.user, assistant=t.assistant, extra=dict(t.extra)) for t in conv.turns]
    return ConversationRecord(
        id=conv.id, persona=conv.persona, turns=turns, status=conv.status, error=conv.error, meta=conv.meta
    )


def _header(
    run: Run, judge: RoleConfig, protocol_name: str, reasks: int, judge_backend: Any
) -> dict[str, Any]:
    protocol = get_protocol(protocol_name)
    config = copy.deepcopy(run.config)
    source = {
        "path": str(run.path.resolve()),
        "config_hash": run.results.get("config_hash"),
        "judge": run.config.get("judge"),
        "protocol": run.config.get("protocol"),
        "judge_reasks": run.config.get("judge_reasks"),
    }
    config["judge"] = {**judge.record(), "backend": judge_backend.describe()}
    config["protocol"] = protocol_name
    config["judge_reasks"] = reasks
    config.setdefault("prompts", {})["judge"] = protocol.prompt.record()
    config["rejudged_from"] = source
    config["packages"] = package_versions()
    config["machine"] = machine()
    what = {
        "source": source["config_hash"],
        "judge": judge.record(),
        "protocol": protocol_name,
        "reasks": reasks,
    }
    return {
        "aloe_bench_version": __version__,
        "label": run.label,
        "config_hash": hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16],
        "config": config,
        "started": _now(),
    }


async def _rejudge_async(
    run: Run,
    out: Path,
    judge: RoleConfig,
    protocol_name: str,
    reasks: int,
    cache_setting: str | None,
    progress: bool | None,
    overwrite: bool,
    batch: bool = False,
) -> dict[str, Any]:
    protocol = get_protocol(protocol_name)
    cache = open_cache(cache_setting)
    pool = BackendPool()
    backend = pool.get(judge.spec, judge.args)
    if batch:  # through the Batch API; batches.json in the new run directory makes it resumable
        from aloe_bench.batch import BatchBackend

        out.mkdir(parents=True, exist_ok=True)
        backend = BatchBackend(backend, out)  # type: ignore[arg-type]
    try:
        role = Role(
            "judge",
            backend,
            cache,
            prompt_version=protocol.prompt.tag,
            priority=PRIORITY_BACKGROUND,
        )
        header = _header(run, judge, protocol_name, reasks, role.backend)
        check_output_dir(out, header["config_hash"], overwrite)
        conversations = [_unjudged(c) for c in run.conversations]
        turns = int(run.config.get("turns") or max((len(c.turns) for c in conversations), default=0))
        seed = int(run.config.get("seed") or 0)
        n_bootstrap = int((run.metrics.get("ci") or {}).get("n_bootstrap") or DEFAULT_BOOTSTRAP)
        # Nothing is generated: the model under test and the simulated user make no calls.
        usage = {"model": Usage(), "simulator": Usage(), "judge": role.usage}
        recorder = RunRecorder(out, header, conversations, turns, seed, n_bootstrap, usage)
        todo = [(c, i) for c in conversations for i, t in enumerate(c.turns) if t.assistant is not None]
        bar = tqdm(
            total=len(todo), desc="judging", unit="turn", disable=None if progress is None else not progress
        )

        def on_judged(conv, index):
            bar.update(1)
            recorder.mark_dirty()

        stage = JudgeStage(
            role,
            protocol,
            judge.settings(protocol.default_settings().max_new_tokens),
            reasks=reasks,
            seed=seed,
            on_judged=on_judged,
        )
        recorder.flush("running")
        try:
            for conv, index in todo:
                stage.submit(conv, index)
            await stage.drain()
        except BaseException:
            await stage.cancel()
            recorder.flush("interrupted")
            raise
        finally:
            bar.close()
        status = "complete" if all(c.status == "complete" for c in conversations) else "incomplete"
        return recorder.flush(status)
    finally:
        if batch:
            await backend.aclose()  # its pollers
        await pool.aclose()
        if cache is not None:
            cache.close()


def rejudge(
    source: str | Path,
    judge: RoleConfig,
    *,
    protocol: str | None = None,
    output: str | Path | None = None,
    reasks: int | None = None,
    cache: str | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    batch: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Judge the run in `source` again; returns the new run directory and its results."""
    run = load_run(source)
    if not run.conversations:
        raise UserInputError(
            f"{run.path} has no conversations to judge (empty {run.path}/conversations.jsonl)"
        )
    protocol_name = protocol or run.config.get("protocol") or "aloe-v1"
    get_protocol(protocol_name)
    reasks = reasks if reasks is not None else int(run.config.get("judge_reasks", 2))
    if reasks < 0:
        raise UserInputError("--judge-reasks cannot be negative")
    out = Path(output) if output else default_output(run.path, judge, protocol_name)
    if out.resolve() == run.path.resolve():
        raise UserInputError(
            f"--output {out} is the run being judged; pick a new directory (the original stays untouched)"
        )
    if batch and not judge.spec.startswith("openai/"):
        raise UserInputError(f"--batch needs an openai/ judge (got {judge.spec}); drop --batch")
    results = asyncio.run(
        _rejudge_async(run, out, judge, protocol_name, reasks, cache, progress, overwrite, batch)
    )
    return out, results
