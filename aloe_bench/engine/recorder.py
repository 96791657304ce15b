"""The run's recorder: keeps results.json and conversations.jsonl current while a run goes (plain or
journaled), restores an earlier attempt's turns on resume, and computes the results record.

Resuming is re-running: every call goes through the call cache, so a re-run replays what finished
(no model is even loaded when nothing is missing) and continues where the last one stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aloe_bench.engine.session import RunStatus, previous_results
from aloe_bench.log.journal import JOURNAL_FILE, Journal, group_events, read_conversation_lines, rebuild
from aloe_bench.log.records import IoStats, Reliability, RunResults, RunWarning, Validity
from aloe_bench.log.results import (
    CONVERSATIONS_FILE,
    FORMAT_VERSION,
    RESULTS_FILE,
    ConversationRecord,
    load_run,
    write_conversations,
    write_results,
)
from aloe_bench.log.run_warnings import derived_warnings, merge_warnings
from aloe_bench.metrics.alignment import alignment_curve
from aloe_bench.metrics.samples import MetricSettings, SampleMetrics, ScoredSample
from aloe_bench.metrics.trust import trust_sections
from aloe_bench.models.backends import Backend
from aloe_bench.models.cost import Price, batch_discount
from aloe_bench.models.roles import Usage


def utc_now() -> str:
    """The time a run record notes (started, updated): UTC, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
    # The task's metrics: a function of scored samples (None: the curve AL(k) of the turns' scores).
    sample_metrics: SampleMetrics | None = None
    # The older form, a function of this recorder: still honoured, but it sees released (finished)
    # conversations without their turns on a journaled run; `sample_metrics` sees every item.
    metrics_of: Callable[[RunRecorder, bool], dict[str, Any]] | None = None
    _last: float = field(default=0.0, init=False)
    _started: float = field(default_factory=time.perf_counter, init=False)
    _journal: Journal | None = field(default=None, init=False)
    _index: dict[str, int] = field(default_factory=dict, init=False)
    _released: dict[int, ScoredSample] = field(default_factory=dict, init=False)  # transcript on disk
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
            # A failed conversation is retried: its last, unanswered turn is asked again. So is the
            # unanswered turn of one that was running when the run stopped (Ctrl-C, a full disk: the
            # stop's flush wrote it with its user message and no reply yet), not taken as complete.
            unanswered = bool(conv.turns) and conv.turns[-1].assistant is None
            if conv.status == "failed" or (conv.status == "running" and unanswered):
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
        """A finished conversation is on disk (journal): keep only its scores in memory."""
        if self._journal is None or conv.status == "running":
            return
        if any(t.assistant is not None and not t.judged for t in conv.turns):
            return
        index = self._index[conv.id]
        self._released[index] = ScoredSample.of(conv, with_text=False)
        conv.turns = []

    # -- results ----------------------------------------------------------------------------------------
    def samples(self) -> list[ScoredSample]:
        """Every item as a metric sees it: released ones from what was kept, the rest from memory."""
        return [
            self._released.get(i) or ScoredSample.of(conv, with_text=False)
            for i, conv in enumerate(self.conversations)
        ]

    def metrics(self, with_ci: bool) -> dict[str, Any]:
        """The task's metrics over the items so far (bootstrap intervals only when `with_ci`)."""
        if self.metrics_of is not None:
            return self.metrics_of(self, with_ci)
        settings = MetricSettings(self.turns, self.seed, self.n_bootstrap if with_ci else 0)
        return (self.sample_metrics or alignment_curve)(self.samples(), settings)

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
            "updated": utc_now(),
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
                results.io = IoStats(bytes_written=self.bytes_written)
            self.bytes_written += write_results(self.out / RESULTS_FILE, results)
        self._last = time.perf_counter()
        return results

    def _current_conversations(self) -> Iterator[dict[str, Any]]:
        """Every conversation in persona order: released ones rebuilt from disk, the rest from memory."""
        assert self.out is not None
        order = [(c.id, c.persona) for c in self.conversations]
        for i, (conv, data) in enumerate(zip(self.conversations, _aligned(self.out, order), strict=True)):
            if i in self._released and data is not None:
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
