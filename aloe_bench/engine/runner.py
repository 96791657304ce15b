"""The ALOE run's recorder, results header and entry points (`prepare_run`/`execute_run`/
`run_benchmark`); what the run does per conversation is the ALOE task (benchmarks/aloe.py), run by
the one engine (engine/task.py `run_task`, engine/session.py).

Resuming is re-running: every call goes through the call cache, so a re-run replays what finished
(no model is even loaded when nothing is missing) and continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench import __version__
from aloe_bench.datasets.personas import PersonaSet, load_persona_set
from aloe_bench.engine.config import RoleConfig, RunConfig
from aloe_bench.engine.session import RunStatus, check_output_dir, engine, previous_results
from aloe_bench.engine.task import Hooks, Metrics, Scorer, TaskRun, run_task
from aloe_bench.log.journal import JOURNAL_FILE, Journal, group_events, read_conversation_lines, rebuild
from aloe_bench.log.models import Reliability, RunResults, RunWarning, Validity
from aloe_bench.log.provenance import machine, package_versions
from aloe_bench.log.results import (
    CONVERSATIONS_FILE,
    FORMAT_VERSION,
    RESULTS_FILE,
    ConversationRecord,
    load_run,
    score_matrix,
    write_conversations,
    write_results,
)
from aloe_bench.log.run_warnings import derived_warnings, merge_warnings
from aloe_bench.metrics.alignment import alignment_metrics
from aloe_bench.metrics.trust import plan_line, planned_judge_calls, trust_sections
from aloe_bench.metrics.validity import persona_key, swap_map
from aloe_bench.models.backends import Backend, BackendPool, normalize_spec
from aloe_bench.models.cache import CallCache
from aloe_bench.models.cost import Price, batch_discount, role_prices, table_record
from aloe_bench.models.roles import Role, Usage
from aloe_bench.models.spec_names import portable_spec
from aloe_bench.scorers.judge import JudgeStage, PanelJudge

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def role_backend(pool: BackendPool, role_config: RoleConfig, concurrency: int) -> Backend:
    """The (shared) backend for a role; API backends get the run's concurrency unless set."""
    from aloe_bench.models.backends.best_of_n import served_spec

    args = dict(role_config.args)
    if served_spec(role_config.spec).startswith("openai/"):  # best-of-N passes it to its policy
        args.setdefault("concurrency", str(concurrency))
    backend = pool.get(role_config.spec, args)
    backend.check_settings(role_config.settings(1))  # a setting it cannot apply: refused before the run
    return backend


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


@dataclass
class RunRecorder:
    """Keeps results.json and conversations.jsonl current while the run goes.

    Plain mode (re-judging, Multifaceted): both files are rewritten atomically every `interval_s`.
    Journaled mode (the ALOE run, `journaled=True` with `out`): turns are appended to
    `journal.jsonl` as they finish, results.json is rewritten every `interval_s` with cheap metrics
    (no bootstrap), and conversations.jsonl is compacted from the journal on resume and at the
    end, so a run's I/O grows with its size, not its square. A conversation that is finished
    (complete or failed, every reply judged) leaves memory: only its score row stays."""

    out: Path | None  # None: only compute results (the lm-eval path, where lm-eval writes the files)
    header: dict[str, Any]
    conversations: list[ConversationRecord]
    turns: int
    seed: int
    n_bootstrap: int
    usage: Mapping[str, Usage]  # per role, live counters
    backends: Sequence[Backend] = ()  # in-process ones report how they batched
    warnings: list[dict[str, str]] = field(default_factory=list)  # other stages append theirs here
    role_backends: Mapping[str, Backend] = field(default_factory=dict)  # API ones report rate limits
    prices: Mapping[str, Price | None] = field(default_factory=dict)  # per role, for `cost_usd`
    batch_roles: frozenset[str] = frozenset()  # roles billed at the Batch API's discount
    interval_s: float = 2.0
    journaled: bool = False
    metrics_of: Metrics | None = None  # the task's scorer's metrics; None: the ALOE curve AL(k)
    _last: float = field(default=0.0, init=False)
    _started: float = field(default_factory=time.perf_counter, init=False)
    _journal: Journal | None = field(default=None, init=False)
    _index: dict[str, int] = field(default_factory=dict, init=False)
    _rows: dict[int, list[float] | None] = field(default_factory=dict, init=False)  # released: row or None
    bytes_written: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.journaled and self.out is not None:
            self._journal = Journal(self.out)
            self._index = {c.id: i for i, c in enumerate(self.conversations)}

    def mark_dirty(self) -> None:
        """Something changed: flushed to disk at most every `interval_s` (and always at the end)."""
        if time.perf_counter() - self._last >= self.interval_s:
            self.flush("running")

    # -- the journal ------------------------------------------------------------------------------------
    def restore(self) -> list[tuple[ConversationRecord, int]]:
        """Bring back what an earlier attempt at this same run recorded (conversations.jsonl with its
        journal replayed), compact it, and return the (conversation, turn index) pairs still to judge.
        Failed conversations and failed judgements are retried, as a re-run always did."""
        if self._journal is None or self.out is None:
            return []
        if not self._same_run_on_disk():  # a fresh start: readers find every conversation, not yet run
            (self.out / JOURNAL_FILE).unlink(missing_ok=True)
            self.bytes_written += self._journal.compact(c.to_dict() for c in self.conversations)
            return []
        order = [(c.id, c.persona) for c in self.conversations]
        for conv, data in zip(self.conversations, _aligned(self.out, order), strict=True):
            if data is not None:
                rec = ConversationRecord.from_dict(data)
                conv.turns, conv.status, conv.error, conv.meta = rec.turns, rec.status, rec.error, rec.meta
        self.bytes_written += self._journal.compact(c.to_dict() for c in self.conversations)
        todo = []
        for conv in self.conversations:
            if conv.status == "failed":  # retried: its last, unanswered turn is asked again
                while conv.turns and conv.turns[-1].assistant is None:
                    conv.turns.pop()
                conv.status, conv.error = "running", None
                self._append({"id": conv.id, "status": "running", "error": None, "turns": len(conv.turns)})
            if conv.status == "running" and len(conv.turns) >= self.turns:
                conv.status = "complete"  # its last turn was logged, its completion was not
            for i, turn in enumerate(conv.turns):
                if turn.assistant is not None and (not turn.judged or turn.judge_error is not None):
                    turn.judged = False
                    todo.append((conv, i))
            self._release_if_finished(conv)
        return todo

    def _same_run_on_disk(self) -> bool:
        assert self.out is not None
        previous = previous_results(self.out)
        return previous is not None and previous.get("config_hash") == self.header.get("config_hash")

    def _append(self, event: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.append(event)

    def turn_done(self, conv: ConversationRecord, index: int) -> None:
        """Turn `index` got its reply: log it whole."""
        self._append({"id": conv.id, "turn": index, "set": conv.turns[index].to_dict()})
        if index + 1 >= self.turns:  # its last turn: the rollout marks it complete right after
            self._append({"id": conv.id, "status": "complete", "error": None})
        self.mark_dirty()

    def judged(self, conv: ConversationRecord, index: int) -> None:
        """Turn `index` was judged: log what the judge stage set (not the texts again)."""
        fields = conv.turns[index].to_dict()
        fields.pop("user", None)
        fields.pop("assistant", None)
        self._append({"id": conv.id, "turn": index, "set": fields})
        self._release_if_finished(conv)
        self.mark_dirty()

    def failed(self, conv: ConversationRecord) -> None:
        if conv.turns and conv.turns[-1].assistant is None:  # the turn whose reply failed is kept
            self._append({"id": conv.id, "turn": len(conv.turns) - 1, "set": conv.turns[-1].to_dict()})
        self._append({"id": conv.id, "status": conv.status, "error": conv.error})
        self._release_if_finished(conv)
        self.mark_dirty()

    def _release_if_finished(self, conv: ConversationRecord) -> None:
        """A finished conversation is on disk (journal): keep only its score row in memory."""
        if self._journal is None or conv.status == "running":
            return
        if any(t.assistant is not None and not t.judged for t in conv.turns):
            return
        index = self._index[conv.id]
        self._rows[index] = _score_row(conv, self.turns) if conv.status == "complete" else None
        conv.turns = []

    # -- results ----------------------------------------------------------------------------------------
    def metrics(self, with_ci: bool) -> dict[str, Any]:
        """The task's metrics over the conversations so far: its scorer's, else the ALOE curve."""
        if self.metrics_of is not None:
            return self.metrics_of(self, with_ci)
        if self._journal is None:
            complete = [c for c in self.conversations if c.status == "complete"]
            scores = score_matrix(self.conversations, self.turns)
        else:  # released conversations keep their score row (and their meta), not their turns
            rows, complete = [], []
            for i, conv in enumerate(self.conversations):
                row = self._rows.get(i)
                if i not in self._rows and conv.status == "complete":
                    row = _score_row(conv, self.turns)
                if row is not None:
                    rows.append(row)
                    complete.append(conv)
            scores = np.array(rows, dtype=float).reshape(len(rows), self.turns)
        return alignment_metrics(
            scores,
            seed=self.seed,
            n_bootstrap=self.n_bootstrap if with_ci else 0,
            clusters=[persona_key(c) for c in complete],
        )

    def results(self, status: str, with_ci: bool) -> RunResults:
        metrics = self.metrics(with_ci)
        failed = [c for c in self.conversations if c.status == "failed"]
        metrics["failed"] = len(failed)
        metrics["planned"] = len(self.conversations)
        usage = {name: self._usage(name, u) for name, u in self.usage.items()}
        results = {
            "format_version": FORMAT_VERSION,
            **{k: v for k, v in self.header.items() if k != "format_version"},
            "status": status,
            "updated": _now(),
            "elapsed_s": round(time.perf_counter() - self._started, 2),
            "metrics": metrics,
            "usage": usage,
            "batching": {b.spec: dict(b.batch_stats) for b in self.backends if hasattr(b, "batch_stats")},
            "failures": [{"id": c.id, "error": c.error} for c in failed],
        }
        # The typed record is what is written and returned (placeholders of older formats dropped).
        record = RunResults.from_dict(results)
        given = [RunWarning.from_dict(w) for w in [*(self.header.get("warnings") or []), *self.warnings]]
        record.warnings = merge_warnings(given, derived_warnings(record.config, record.usage))
        if with_ci:  # judge reliability and validity: computed once the run stops, not every flush
            trust = trust_sections(
                self._finished_conversations(), self.turns, seed=self.seed, n_bootstrap=self.n_bootstrap
            )
            if trust:
                record.reliability = Reliability.from_dict(trust["reliability"], "reliability")
                record.validity = Validity.from_dict(trust["validity"], "validity")
                record.warnings = merge_warnings(
                    record.warnings, [RunWarning.from_dict(w) for w in trust["warnings"]]
                )
        return record

    def _finished_conversations(self) -> list[ConversationRecord]:
        """Every conversation whole, for the end-of-run statistics that need its judgements: journaled
        runs released finished ones from memory, so they are read back from the compacted file."""
        if self._journal is None or self.out is None:
            return self.conversations
        return load_run(self.out).conversations

    def _usage(self, name: str, usage: Usage) -> dict[str, Any]:
        record = usage.to_dict()
        backend = self.role_backends.get(name)
        if backend is not None and hasattr(backend, "rate_stats"):
            # Counted per backend: roles that share one (same spec and args) show the same figures.
            stats = backend.rate_stats()
            stats.pop("retries", None)  # the role's own count is in `usage.retries`
            record.update(stats)
        price = self.prices.get(name)
        if price is not None:  # the calls this invocation made (cached ones were paid before)
            discount = batch_discount() if name in self.batch_roles else 1.0
            record["cost_usd"] = round(
                price.cost(usage.prompt_tokens, usage.completion_tokens, discount=discount), 6
            )
        elif name in self.prices:
            record["cost_usd"] = None  # an API model with no known price
        return record

    def flush(self, status: RunStatus) -> RunResults:
        final = status != "running"
        if self.out is not None and self._journal is not None and final:
            self.bytes_written += self._journal.compact(self._current_conversations())
        results = self.results(status, with_ci=final)
        if self.out is not None:
            if self._journal is None:
                write_conversations(self.out / CONVERSATIONS_FILE, self.conversations)
            else:
                results.io = {"bytes_written": self.bytes_written}
            self.bytes_written += write_results(self.out / RESULTS_FILE, results)
        self._last = time.perf_counter()
        return results

    def _current_conversations(self) -> Iterator[dict[str, Any]]:
        """Every conversation in persona order: released ones rebuilt from disk, the rest from memory."""
        assert self.out is not None
        order = [(c.id, c.persona) for c in self.conversations]
        for i, (conv, data) in enumerate(zip(self.conversations, _aligned(self.out, order), strict=True)):
            if i in self._rows and data is not None:
                record = ConversationRecord.from_dict(data)  # the same fields as from memory
                record.status, record.error = conv.status, conv.error  # memory has the last word
                yield record.to_dict()
            else:
                yield conv.to_dict()


def _aligned(directory: Path, order: list[tuple[str, dict[str, Any]]]) -> Iterator[dict[str, Any] | None]:
    """The conversations on disk (compacted file + journal) in `order`, None where there is none."""
    base = read_conversation_lines(directory / CONVERSATIONS_FILE)
    events = group_events(directory / JOURNAL_FILE)
    for conv_id, persona in order:
        if conv_id in base or conv_id in events:
            yield rebuild(conv_id, persona, base.pop(conv_id, None), events.pop(conv_id, []))
        else:
            yield None


def _score_row(conv: ConversationRecord, turns: int) -> list[float]:
    row = [float("nan")] * turns
    for k, turn in enumerate(conv.turns[:turns]):
        if turn.score is not None:
            row[k] = float(turn.score)
    return row


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


def pricing_record(prices: Mapping[str, Price | None]) -> dict[str, Any]:
    """results.json `pricing`: the price table used and each priced role's price (None: unknown)."""
    return {
        "table": table_record(),
        "roles": {
            r: p and {"input": p.input, "output": p.output, "source": p.source} for r, p in prices.items()
        },
    }


def judge_scorer(
    protocol: Any,
    panel: Sequence[PanelJudge],
    conversations: list[ConversationRecord],
    *,
    reasks: int,
    seed: int,
    repeats: int,
    swap: bool,
    turns_to_judge: int,
) -> Callable[[Hooks], Scorer]:
    """The judge stage as a run's scorer (a panel, repeats, the swap control); announces the calls
    it plans on stderr when a panel, repeats or a control multiply them."""
    if len(panel) > 1 or repeats > 1 or swap:
        plan = planned_judge_calls(turns_to_judge, len(panel), repeats, swap)
        print(f"aloe-bench: {plan_line(plan)}", file=sys.stderr)

    def make(hooks: Hooks) -> Scorer:
        return JudgeStage(
            None,
            protocol,
            reasks=reasks,
            seed=seed,
            on_judged=hooks.judged,
            panel=panel,
            repeats=repeats,
            swap=swap_map(conversations) if swap else None,
        )

    return make


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


def priced_roles(specs: Mapping[str, str], overrides: Mapping[str, Price] | None) -> dict[str, Price | None]:
    """The price of each API role (None: no known price); in-process roles are left out. A panel
    judge (`judge:LABEL`) and its swap-control calls (`judge:LABEL:swap`) take the judge's override."""
    overrides = dict(overrides or {})
    for name in specs:
        if name.startswith("judge:") and "judge" in overrides:
            overrides.setdefault(name, overrides["judge"])
    prices = role_prices(dict(specs), overrides)
    return {
        r: p for r, p in prices.items() if p is not None or normalize_spec(specs[r]).startswith("openai/")
    }


@dataclass
class PreparedRun:
    """A run that passed every input check: nothing loaded yet, nothing written but the folder."""

    config: RunConfig
    out: Path
    personas: PersonaSet
    pool: BackendPool
    prices: dict[str, Price] = field(default_factory=dict)  # --price overrides, by role
    judge_batch: bool = False  # --judge-batch
    # How the run is set up (benchmarks/aloe.py `setup` when None): a task built on ALOE's
    # rollout passes its own, e.g. one that puts another scorer in place of the judge stage.
    setup: Callable[..., TaskRun] | None = None

    @property
    def items(self) -> int:
        return len(self.personas.personas) * self.config.epochs

    def execute(self, *, progress: bool | None = None) -> RunResults:
        return asyncio.run(self._run(progress))

    async def _run(self, progress: bool | None) -> RunResults:
        from aloe_bench.benchmarks import aloe

        setup = self.setup or aloe.setup
        async with engine(self.config.cache, self.pool) as run_engine:
            run = setup(
                self.config,
                self.personas,
                run_engine,
                self.out,
                price_overrides=self.prices,
                judge_batch=self.judge_batch,
            )
            results, _ = await run_task(run, self.out, progress_enabled=progress)
            return results


def prepare_run(
    config: RunConfig,
    *,
    overwrite: bool = False,
    prices: Mapping[str, Price] | None = None,
    judge_batch: bool = False,
) -> PreparedRun:
    """Every check that can fail on bad input, before any model is loaded or any result written
    (`prices`: --price overrides by role; `judge_batch`: --judge-batch)."""
    config.validate()
    out = Path(config.output) if config.output else config.default_output()
    personas = load_persona_set(config.personas, config.data_dir).limit(config.limit)
    pool = BackendPool()
    for role in (config.model, config.simulator, *config.judges):
        role_backend(pool, role, config.concurrency)  # unknown providers, missing paths, missing extras
    check_output_dir(out, config.config_hash(), overwrite)
    return PreparedRun(config, out, personas, pool, dict(prices or {}), judge_batch)


def execute_run(prepared: PreparedRun, *, progress: bool | None = None) -> RunResults:
    return prepared.execute(progress=progress)


def run_benchmark(
    config: RunConfig, *, overwrite: bool = False, progress: bool | None = None
) -> tuple[Path, RunResults]:
    """Run (or resume) and return the run directory with its results."""
    prepared = prepare_run(config, overwrite=overwrite)
    return prepared.out, execute_run(prepared, progress=progress)
