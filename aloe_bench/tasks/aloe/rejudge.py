"""Judge a finished run again (another judge, another protocol) without regenerating anything: ALOE's
use of the engine's re-scoring run kind (engine/rescore.py), which asks this module for the roles,
the scorer and the header of the new run.

The conversations are read from the run directory and scored by the judge stage alone; the results
go to a new run directory (the original is never written), whose usage shows zero calls for the
model under test and the simulated user. Judge calls go through the call cache: re-running resumes.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aloe_bench import __version__
from aloe_bench.engine.finished_run import (
    background_role,
    open_finished_run,
    recorded_bootstrap,
    recorded_seed,
    recorded_turns,
)
from aloe_bench.engine.recorder import utc_now
from aloe_bench.engine.rescore import ReplayTranscripts, rescore, transcripts_only
from aloe_bench.engine.session import RunBackends, check_output_dir, config_hash
from aloe_bench.engine.task_api import TaskRun
from aloe_bench.errors import UserInputError
from aloe_bench.log.provenance import machine, package_versions
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord, Run
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Usage
from aloe_bench.scorers.judge import get_protocol
from aloe_bench.tasks.aloe.config import CONTROLS
from aloe_bench.tasks.aloe.judging import (
    SCORER,
    judge_label,
    judge_role_names,
    judge_scorer,
    panel_judges,
    panel_usage,
    priced_roles,
    pricing_record,
)


def default_output(source: Path, judge: RoleConfig, protocol: str) -> Path:
    """A sibling of the source run, named after the new judge and protocol."""
    judge_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge.record()["spec"].replace("/", "_")).strip("-")
    return source.parent / f"{source.name}__judge-{judge_slug[:60]}__{protocol}"


def _unjudged(conv: ConversationRecord) -> ConversationRecord:
    """The conversation with the old judge's verdicts removed (user and assistant turns kept)."""
    return transcripts_only(conv, keep=("rubric_scores",))


def _header(
    run: Run,
    judges: list[RoleConfig],
    protocol_name: str,
    reasks: int,
    backends: list[Any],
    repeats: int = 1,
    controls: tuple[str, ...] = (),
) -> dict[str, Any]:
    judge, judge_backend = judges[0], backends[0]
    protocol = get_protocol(protocol_name)
    config = run.config.to_dict()  # a fresh copy: the source run's record is not changed
    source = {
        "path": str(run.path.resolve()),
        "config_hash": run.results.config_hash,
        "judge": run.config.judge.to_dict() if run.config.judge is not None else None,
        "protocol": run.config.protocol,
        "judge_reasks": run.config.judge_reasks,
    }
    config["judge"] = {**judge.record(), "backend": judge_backend.describe()}
    for key in ("judges", "judge_repeats", "controls"):
        config.pop(key, None)  # the source run's panel is not this one's
    trust: dict[str, Any] = {}
    if len(judges) > 1:
        trust["judges"] = [
            {**j.record(), "backend": b.describe(), "label": judge_label(judges, i)}
            for i, (j, b) in enumerate(zip(judges, backends, strict=True))
        ]
    if repeats != 1:
        trust["judge_repeats"] = repeats
    if controls:
        trust["controls"] = sorted(controls)
    config.update(trust)
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
        # Only when set, so a plain re-judge keeps the hash it had before panels existed.
        **({"judges": [j.record() for j in judges]} if len(judges) > 1 else {}),
        **({"repeats": repeats} if repeats != 1 else {}),
        **({"controls": sorted(controls)} if controls else {}),
    }
    return {
        "aloe_bench_version": __version__,
        "label": run.label,
        "config_hash": config_hash(what),
        "config": config,
        "started": utc_now(),
    }


async def _rejudge_async(
    run: Run,
    out: Path,
    judges: list[RoleConfig],
    protocol_name: str,
    reasks: int,
    cache_setting: str | None,
    progress: bool | None,
    overwrite: bool,
    repeats: int = 1,
    controls: tuple[str, ...] = (),
    batch: bool = False,
) -> RunResults:
    protocol = get_protocol(protocol_name)

    def make_run(run_engine: RunBackends) -> TaskRun:
        names = judge_role_names(judges)
        backends: list[Any] = [run_engine.pool.get(j.spec, j.args) for j in judges]
        closers: list[Any] = []
        if batch:  # through the Batch API; batches.json in the new run directory makes it resumable
            from aloe_bench.models.batch import BatchBackend

            out.mkdir(parents=True, exist_ok=True)
            backends[0] = BatchBackend(backends[0], out)
            closers.append(backends[0].aclose)  # its pollers
        roles = {
            name: background_role("judge", b, run_engine.cache, protocol.prompt.tag)
            for name, b in zip(names, backends, strict=True)
        }
        header = _header(
            run, judges, protocol_name, reasks, [r.backend for r in roles.values()], repeats, controls
        )
        check_output_dir(out, header["config_hash"], overwrite)
        conversations = [_unjudged(c) for c in run.conversations]
        turns, seed, n_bootstrap = recorded_turns(run), recorded_seed(run), recorded_bootstrap(run)
        panel = panel_judges(judges, names, roles, protocol, run_engine.cache, "swap" in controls)
        usage_roles = {"judge": roles["judge"], **panel_usage(roles, panel)}
        # As `aloe-bench run` prices its roles; only the judges make calls here (the source run's
        # model and simulated user stay unpriced: their recorded specs may be anything, even a
        # local path, and they cost nothing in a re-judge).
        prices = priced_roles({name: role.backend.spec for name, role in usage_roles.items()}, None)
        header["pricing"] = pricing_record(prices)
        scorer = judge_scorer(
            protocol,
            panel,
            conversations,
            reasks=reasks,
            seed=seed,
            repeats=repeats,
            swap="swap" in controls,
            turns_to_judge=sum(t.assistant is not None for c in conversations for t in c.turns),
        )

        return TaskRun(
            scorer_name=SCORER,
            header=header,
            conversations=conversations,
            # Nothing is generated: the model under test and the simulated user make no calls.
            idle_usage={"model": Usage(), "simulator": Usage()},
            usage_roles=usage_roles,
            turns=turns,
            seed=seed,
            n_bootstrap=n_bootstrap,
            scorer=scorer,
            solver=ReplayTranscripts,
            prices=prices,
            batch_roles=frozenset({"judge"} if batch else ()),
            closers=closers,
        )

    return await rescore(out, cache_setting, make_run, progress=progress)


def rejudge(
    source: str | Path,
    judge: RoleConfig | list[RoleConfig],
    *,
    repeats: int = 1,
    controls: tuple[str, ...] = (),
    protocol: str | None = None,
    output: str | Path | None = None,
    reasks: int | None = None,
    cache: str | None = None,
    progress: bool | None = None,
    overwrite: bool = False,
    batch: bool = False,
) -> tuple[Path, RunResults]:
    """Judge the run in `source` again (one judge or a panel, `repeats` times each, with validity
    `controls`); returns the new run directory and its results."""
    judges = judge if isinstance(judge, list) else [judge]
    if repeats < 1:
        raise UserInputError(f"--judge-repeats must be at least 1 (got {repeats})")
    unknown = sorted(set(controls) - set(CONTROLS))
    if unknown:
        raise UserInputError(
            f"unknown control(s) {', '.join(unknown)}: use --controls {' or '.join(CONTROLS)}"
        )
    run = open_finished_run(source, "judge")
    protocol_name = protocol or run.config.protocol or "aloe-v1"
    get_protocol(protocol_name)
    reasks = (
        reasks
        if reasks is not None
        else (run.config.judge_reasks if run.config.judge_reasks is not None else 2)
    )
    if reasks < 0:
        raise UserInputError("--judge-reasks cannot be negative")
    out = Path(output) if output else default_output(run.path, judges[0], protocol_name)
    if controls and not output:
        out = out.with_name(out.name + "__" + "-".join(sorted(controls)))
    if out.resolve() == run.path.resolve():
        raise UserInputError(
            f"--output {out} is the run being judged; pick a new directory (the original stays untouched)"
        )
    if batch and (len(judges) > 1 or not judges[0].spec.startswith("openai/")):
        raise UserInputError(
            f"--batch needs one openai/ judge (got {', '.join(j.spec for j in judges)}); drop --batch"
        )
    results = asyncio.run(
        _rejudge_async(
            run,
            out,
            judges,
            protocol_name,
            reasks,
            cache,
            progress,
            overwrite,
            repeats,
            tuple(controls),
            batch,
        )
    )
    return out, results
