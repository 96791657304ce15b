"""One ALOE run, end to end: personas -> rollout -> judge -> metrics -> run directory.

Resuming is re-running: every call goes through the call cache, so a re-run replays what finished
(no model is even loaded when nothing is missing) and continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from aloe_bench import __version__
from aloe_bench.backends import PRIORITY_BACKGROUND, Backend, BackendPool, normalize_spec
from aloe_bench.cache import CallCache
from aloe_bench.config import RoleConfig, RunConfig
from aloe_bench.errors import UserInputError
from aloe_bench.judge import JudgeStage, PanelJudge, get_protocol
from aloe_bench.metrics import alignment_metrics
from aloe_bench.paths import default_call_cache
from aloe_bench.personas import PersonaSet, load_persona_set
from aloe_bench.progress import TurnProgress
from aloe_bench.prompts import load_prompt
from aloe_bench.provenance import machine, package_versions
from aloe_bench.results import (
    CONVERSATIONS_FILE,
    RESULTS_FILE,
    ConversationRecord,
    ensure_writable,
    score_matrix,
    write_conversations,
    write_json_atomic,
)
from aloe_bench.roles import Role, Usage
from aloe_bench.rollout import Rollout, RolloutSettings
from aloe_bench.run_warnings import derived_warnings, merge_warnings
from aloe_bench.spec_names import portable_spec
from aloe_bench.trust import plan_line, planned_judge_calls, trust_sections
from aloe_bench.validity import persona_key, swap_map

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_cache(setting: str | None) -> CallCache | None:
    if setting == "":
        return None
    return CallCache(Path(setting).expanduser() if setting else default_call_cache())


def role_backend(pool: BackendPool, role_config: RoleConfig, concurrency: int) -> Backend:
    """The (shared) backend for a role; API backends get the run's concurrency unless set."""
    args = dict(role_config.args)
    if normalize_spec(role_config.spec).startswith("openai/"):
        args.setdefault("concurrency", str(concurrency))
    return pool.get(role_config.spec, args)


def role_backends(
    pool: BackendPool,
    roles: Mapping[str, RoleConfig],
    concurrency: int,
    given: Mapping[str, Backend] | None = None,
) -> dict[str, Backend]:
    """The backend of each role: the one `given` for it by name (the lm-eval interception hands in
    the LM it was called on as the model under test), else the pool's."""
    given = given or {}
    return {
        name: given[name] if name in given else role_backend(pool, config, concurrency)
        for name, config in roles.items()
    }


def check_output_dir(out: Path, config_hash: str, overwrite: bool) -> None:
    """Refuse to mix two different runs in one folder (the same run resumes)."""
    ensure_writable(out)
    existing = out / RESULTS_FILE
    if existing.is_file() and not overwrite:
        try:
            previous = json.loads(existing.read_text()).get("config_hash")
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != config_hash:
            raise UserInputError(
                f"{out} holds a different run (config hash {previous} != {config_hash}); "
                "pass another --output, or --overwrite to replace it"
            )


@dataclass
class RunRecorder:
    """Keeps results.json and conversations.jsonl current while the run goes (atomic rewrites)."""

    out: Path | None  # None: only compute results (the lm-eval path, where lm-eval writes the files)
    header: dict[str, Any]
    conversations: list[ConversationRecord]
    turns: int
    seed: int
    n_bootstrap: int
    usage: Mapping[str, Usage]  # per role, live counters
    backends: Sequence[Backend] = ()  # in-process ones report how they batched
    warnings: list[dict[str, str]] = field(default_factory=list)  # other stages append theirs here
    interval_s: float = 2.0
    _dirty: bool = field(default=False, init=False)
    _last: float = field(default=0.0, init=False)
    _started: float = field(default_factory=time.perf_counter, init=False)

    def mark_dirty(self) -> None:
        self._dirty = True
        if time.perf_counter() - self._last >= self.interval_s:
            self.flush("running")

    def metrics(self, with_ci: bool) -> dict[str, Any]:
        """The task's metrics over the conversations so far (other tasks override this)."""
        scores = score_matrix(self.conversations, self.turns)
        clusters = [persona_key(c) for c in self.conversations if c.status == "complete"]
        return alignment_metrics(
            scores, seed=self.seed, n_bootstrap=self.n_bootstrap if with_ci else 0, clusters=clusters
        )

    def results(self, status: str, with_ci: bool) -> dict[str, Any]:
        metrics = self.metrics(with_ci)
        failed = [c for c in self.conversations if c.status == "failed"]
        metrics["failed"] = len(failed)
        metrics["planned"] = len(self.conversations)
        usage = {name: u.to_dict() for name, u in self.usage.items()}
        results = {
            **self.header,
            "status": status,
            "updated": _now(),
            "elapsed_s": round(time.perf_counter() - self._started, 2),
            "metrics": metrics,
            "usage": usage,
            "warnings": merge_warnings(
                self.header.get("warnings") or [],
                self.warnings,
                derived_warnings(self.header.get("config") or {}, usage),
            ),
            "batching": {b.spec: dict(b.batch_stats) for b in self.backends if hasattr(b, "batch_stats")},
            "failures": [{"id": c.id, "error": c.error} for c in failed],
        }
        if with_ci:  # judge reliability and validity: computed once the run stops, not every flush
            trust = trust_sections(
                self.conversations, self.turns, seed=self.seed, n_bootstrap=self.n_bootstrap
            )
            if trust:
                results["reliability"], results["validity"] = trust["reliability"], trust["validity"]
                results["warnings"] = merge_warnings(results["warnings"], trust["warnings"])
        return results

    def flush(self, status: str) -> dict[str, Any]:
        results = self.results(status, with_ci=status != "running")
        if self.out is not None:
            write_conversations(self.out / CONVERSATIONS_FILE, self.conversations)
            write_json_atomic(self.out / RESULTS_FILE, results)
        self._dirty, self._last = False, time.perf_counter()
        return results


def persona_set_record(personas: PersonaSet) -> dict[str, Any]:
    return {
        "set": personas.name,
        "source": personas.source,
        "count": len(personas.personas),
        "sha256": personas.sha256,
    }


def run_header(
    config: Any, roles: dict[str, Role], prompts: dict[str, Any], inputs: dict[str, Any]
) -> dict[str, Any]:
    """The fixed part of results.json. `config` is a task's config (record(), config_hash(), model);
    `inputs` describes what was evaluated (persona set or dataset: set, source, count, sha256)."""
    recorded = config.record()
    for name, role in roles.items():
        recorded[name]["backend"] = role.backend.describe()
    recorded["personas"] = inputs
    recorded["prompts"] = prompts
    recorded["packages"] = package_versions()
    recorded["machine"] = machine()
    return {
        "aloe_bench_version": __version__,
        "label": portable_spec(recorded["model"]["spec"]),  # the full spec stays in config
        "config_hash": config.config_hash(),
        "config": recorded,
        "started": _now(),
    }


_Recorder = TypeVar("_Recorder", bound=RunRecorder)


def recorder_for(
    roles: Mapping[str, Role], recorder: type[_Recorder] = RunRecorder, **kwargs: Any
) -> _Recorder:
    """A recorder (of class `recorder`) counting the usage of `roles` and the batching of their
    (distinct) backends."""
    backends = list({id(r.backend): r.backend for r in roles.values()}.values())
    return recorder(usage={name: r.usage for name, r in roles.items()}, backends=backends, **kwargs)


async def run_engine(
    config: RunConfig,
    personas: PersonaSet,
    *,
    pool: BackendPool,
    cache: CallCache | None,
    out: Path | None,
    progress_enabled: bool | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> tuple[dict[str, Any], list[ConversationRecord]]:
    """Rollout and judging of `personas` with the roles of `config`: (results, conversations).

    `backends` replaces the backend of a role by name (the lm-eval interception hands in the LM it
    was called on as the model under test); the run directory is written only when `out` is given."""
    protocol = get_protocol(config.protocol)
    simulator_prompt = load_prompt("simulator.yaml")
    explicit_prompt = load_prompt("model_explicit.yaml") if config.persona_disclosure == "system" else None
    judge_names = judge_role_names(config.judges)
    backend = role_backends(
        pool,
        {
            "model": config.model,
            "simulator": config.simulator,
            **{name: judge for name, judge in zip(judge_names, config.judges, strict=True)},
        },
        config.concurrency,
        backends,
    )
    judge_roles = {
        name: Role(
            "judge",  # the cache key's role: one judge's calls are the same whatever the panel
            backend[name],
            cache,
            prompt_version=protocol.prompt.tag,
            priority=PRIORITY_BACKGROUND,
        )
        for name in judge_names
    }
    roles = {
        "model": Role("model", backend["model"], cache),
        "simulator": Role("simulator", backend["simulator"], cache, prompt_version=simulator_prompt.tag),
        "judge": judge_roles[judge_names[0]],
    }
    prompts = {"simulator": simulator_prompt.record(), "judge": protocol.prompt.record()}
    if explicit_prompt is not None:
        prompts["model_system"] = explicit_prompt.record()
        roles["model"].prompt_version = explicit_prompt.tag
    header = run_header(config, roles, prompts, persona_set_record(personas))
    for record, name in zip(header["config"].get("judges", []), judge_names, strict=False):
        record["backend"] = judge_roles[name].backend.describe()
        record["label"] = judge_label(config.judges, judge_names.index(name))
    if explicit_prompt is not None:  # templates without a system role get the persona folded in
        header["config"]["model"]["system_role"] = roles["model"].backend.system_role()

    conversations = epoch_conversations(personas, config.epochs)
    panel = panel_judges(config.judges, judge_names, judge_roles, protocol, cache, "swap" in config.controls)
    usage_roles = {**roles, **panel_usage(judge_roles, panel)}
    recorder = recorder_for(
        usage_roles,
        out=out,
        header=header,
        conversations=conversations,
        turns=config.turns,
        seed=config.seed,
        n_bootstrap=config.n_bootstrap,
    )
    progress = TurnProgress(len(conversations), config.turns, enabled=progress_enabled)

    def on_judged(conv, index):
        progress.judged_one(index + 1)
        recorder.mark_dirty()

    judge_stage = JudgeStage(
        None,
        protocol,
        reasks=config.judge_reasks,
        seed=config.seed,
        on_judged=on_judged,
        panel=panel,
        repeats=config.judge_repeats,
        swap=swap_map(conversations) if "swap" in config.controls else None,
    )
    if len(panel) > 1 or config.judge_repeats > 1 or config.controls:
        plan = planned_judge_calls(
            len(conversations) * config.turns, len(panel), config.judge_repeats, "swap" in config.controls
        )
        print(f"aloe-bench: {plan_line(plan)}", file=sys.stderr)

    def on_progress(event, conv, k):
        if event == "turn":
            progress.turn_done(k)
        else:
            progress.conversation_failed()
        recorder.mark_dirty()

    rollout = Rollout(
        simulator=roles["simulator"],
        model=roles["model"],
        simulator_prompt=simulator_prompt,
        settings=RolloutSettings(
            turns=config.turns,
            seed=config.seed,
            simulator=config.simulator.settings(int(simulator_prompt.defaults.get("max_new_tokens", 300))),
            model=config.model.settings(2048),
            simulator_retries=config.simulator_retries,
        ),
        judge_turn=judge_stage.submit,
        model_system_prompt=explicit_prompt,
        on_progress=on_progress,
    )
    recorder.flush("running")
    try:
        await rollout.run(conversations)
        await judge_stage.drain()
    except BaseException:
        await judge_stage.cancel()
        recorder.flush("interrupted")
        raise
    finally:
        progress.close()
    status = "complete" if all(c.status == "complete" for c in conversations) else "incomplete"
    return recorder.flush(status), conversations


def judge_label(judges: Sequence[RoleConfig], index: int) -> str:
    """How results name judge `index` of the panel: its spec (with #N when a spec repeats)."""
    specs = [normalize_spec(j.spec) for j in judges]
    spec = specs[index]
    return spec if specs.count(spec) == 1 else f"{spec}#{specs[: index + 1].count(spec)}"


def judge_role_names(judges: Sequence[RoleConfig]) -> list[str]:
    """Usage keys of the panel: `judge` for the first judge (as before panels), `judge:LABEL` after."""
    return ["judge", *(f"judge:{judge_label(judges, i)}" for i in range(1, len(judges)))]


def panel_judges(
    judges: Sequence[RoleConfig],
    names: Sequence[str],
    roles: Mapping[str, Role],
    protocol: Any,
    cache: CallCache | None,
    swap: bool,
) -> list[PanelJudge]:
    default_tokens = protocol.default_settings().max_new_tokens
    panel = []
    for i, (name, judge) in enumerate(zip(names, judges, strict=True)):
        role = roles[name]
        swap_role = (
            Role("judge", role.backend, cache, prompt_version=role.prompt_version, priority=role.priority)
            if swap
            else None
        )
        panel.append(PanelJudge(judge_label(judges, i), role, judge.settings(default_tokens), swap_role))
    return panel


def panel_usage(judge_roles: Mapping[str, Role], panel: Sequence[PanelJudge]) -> dict[str, Role]:
    """The usage keys judges add: `judge:LABEL` per panel member after the first, and
    `judge:LABEL:swap` for every judge's swap-control calls (the sum over keys is the total)."""
    usage = {k: v for k, v in judge_roles.items() if k != "judge"}
    for judge in panel:
        if judge.swap_role is not None:
            usage[f"judge:{judge.label}:swap"] = judge.swap_role
    return usage


def epoch_id(persona_id: str, epoch: int) -> str:
    """Epoch 0 keeps the persona id (single-epoch runs and old runs are unchanged)."""
    return persona_id if epoch == 0 else f"{persona_id}#e{epoch}"


def epoch_conversations(personas: PersonaSet, epochs: int) -> list[ConversationRecord]:
    """One conversation per persona and epoch; every seed derives from the id, so epochs differ."""
    return [
        ConversationRecord(
            id=epoch_id(p.id, e),
            persona=p.to_dict(),
            meta={"persona_id": p.id, "epoch": e} if epochs > 1 else {},
        )
        for e in range(epochs)
        for p in personas.personas
    ]


async def _run_async(prepared: PreparedRun, progress_enabled: bool | None) -> dict[str, Any]:
    cache = open_cache(prepared.config.cache)
    try:
        results, _ = await run_engine(
            prepared.config,
            prepared.personas,
            pool=prepared.pool,
            cache=cache,
            out=prepared.out,
            progress_enabled=progress_enabled,
        )
        return results
    finally:
        await prepared.pool.aclose()
        if cache is not None:
            cache.close()


@dataclass
class PreparedRun:
    """A run that passed every input check: nothing loaded yet, nothing written but the folder."""

    config: RunConfig
    out: Path
    personas: PersonaSet
    pool: BackendPool


def prepare_run(config: RunConfig, *, overwrite: bool = False) -> PreparedRun:
    """Every check that can fail on bad input, before any model is loaded or any result written."""
    config.validate()
    out = Path(config.output) if config.output else config.default_output()
    personas = load_persona_set(config.personas, config.data_dir).limit(config.limit)
    pool = BackendPool()
    for role in (config.model, config.simulator, *config.judges):
        role_backend(pool, role, config.concurrency)  # unknown providers, missing paths, missing extras
    check_output_dir(out, config.config_hash(), overwrite)
    return PreparedRun(config, out, personas, pool)


def execute_run(prepared: PreparedRun, *, progress: bool | None = None) -> dict[str, Any]:
    return asyncio.run(_run_async(prepared, progress))


def run_benchmark(
    config: RunConfig, *, overwrite: bool = False, progress: bool | None = None
) -> tuple[Path, dict[str, Any]]:
    """Run (or resume) and return the run directory with its results."""
    prepared = prepare_run(config, overwrite=overwrite)
    return prepared.out, execute_run(prepared, progress=progress)
