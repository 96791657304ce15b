"""Audit a finished run: read its transcripts, audit every simulated-user message, write the results.

Nothing is generated for the conversations: the model under test and the simulated user make no
calls (their usage in results.json is left as it was). The offline auditor makes no calls at all;
the LLM auditor's calls go through the call cache (role `auditor`), so auditing again replays them.
Writes DIR/audit.jsonl and rewrites DIR/results.json with its `audit` section and `simulator-*`
warnings (everything else kept), both atomically.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench.engine.execute import role_backend
from aloe_bench.engine.session import open_backends
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import Audit, RunResults, RunWarning
from aloe_bench.log.results import (
    RESULTS_FILE,
    ConversationRecord,
    Run,
    load_run,
    read_results_file,
    write_results,
    write_text_atomic,
)
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.models.backends import PRIORITY_BACKGROUND
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.audit.checks import RoleChecks, advice_flags, asks_for_advice, instruction_text
from aloe_bench.scorers.audit.facts import FactBook
from aloe_bench.scorers.audit.lexical import FactMatcher, make_embedder
from aloe_bench.scorers.audit.llm import PROMPT_FILE, LLMAuditor
from aloe_bench.scorers.audit.records import ConversationAudit, TurnAudit
from aloe_bench.scorers.audit.summary import audit_warnings, merge_warnings, summarize

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
FACTS_CHOICES = ("clauses", "llm")


@dataclass
class AuditOptions:
    auditor: RoleConfig | None = None  # None: the offline lexical auditor
    embedder: str = "auto"
    facts: str = "clauses"  # or "llm": the auditor's backend splits profiles (needs --auditor)
    reasks: int = 2
    cache: str | None = None  # None: the default call cache; "": none
    concurrency: int = 32
    n_bootstrap: int | None = None  # None: the run's own

    def validate(self) -> None:
        if self.facts not in FACTS_CHOICES:
            raise UserInputError(f"--facts {self.facts!r}: use clauses (default) or llm")
        if self.facts == "llm" and self.auditor is None:
            raise UserInputError("--facts llm splits profiles with the LLM auditor: pass --auditor SPEC too")
        if self.reasks < 0:
            raise UserInputError("--auditor-reasks cannot be negative")
        if self.auditor is not None:
            self.auditor.validate()


def _instructions(persona: dict[str, str]) -> str:
    """The fixed wording of the simulator prompt (this project's; the persona taken out)."""
    prompt = load_prompt("simulator.yaml")
    system = " ".join(
        m["content"] for m in prompt.render(profile=persona["profile"], personality=persona["personality"])
    )
    return instruction_text(system, persona["profile"], persona["personality"])


async def _audit_conversation(
    conv: ConversationRecord, facts: FactBook, matcher: FactMatcher, llm: LLMAuditor | None
) -> ConversationAudit:
    fact_list = await facts.facts(conv.persona.get("profile", ""))
    checks = RoleChecks(_instructions(conv.persona), conv.persona.get("profile", ""))
    messages = [t.user for t in conv.turns]
    asks = [asks_for_advice(m) for m in messages]
    turns = [
        TurnAudit(turn=k, revealed=None, role_breaks=checks.role_breaks(m), advice_request=asks[k - 1])
        for k, m in enumerate(messages, start=1)
    ]
    if llm is None:
        for t, m in zip(turns, messages, strict=True):
            t.revealed = matcher.revealed(fact_list, m)
    else:
        replies = ["", *[t.assistant or "" for t in conv.turns[:-1]]]
        answers = await asyncio.gather(
            *(
                llm.audit_turn(conv.id, t.turn, fact_list, reply, m)
                for t, reply, m in zip(turns, replies, messages, strict=True)
            )
        )
        for t, (answer, raw, attempts) in zip(turns, answers, strict=True):
            t.raw, t.attempts = raw, attempts
            if answer is None:
                continue  # unreadable after re-asks: revealed stays None, counted as invalid
            t.revealed = answer.revealed
            t.role_breaks = sorted(set(t.role_breaks) | set(answer.role_breaks))
            t.advice_request = answer.advice
            t.contradictions = answer.contradictions
    for t, repeated in zip(turns, advice_flags([t.advice_request for t in turns]), strict=True):
        t.repeated_advice = repeated
    return ConversationAudit(conv.id, conv.status, fact_list, turns, messages)


async def _audit_async(run: Run, options: AuditOptions) -> tuple[list[ConversationAudit], dict[str, Any]]:
    embedder, matcher_note = (None, "") if options.auditor else make_embedder(options.embedder)
    matcher = FactMatcher(embedder)
    seed = run.config.seed or 0
    info: dict[str, Any] = {}
    if options.auditor is None:
        audits = [
            await _audit_conversation(c, FactBook(), matcher, None) for c in run.conversations if c.turns
        ]
        info.update(
            auditor="lexical",
            matcher=matcher.name,
            matcher_note=matcher_note,
            prompt=None,
            prompt_sha256=None,
        )
        return audits, info
    prompt = load_prompt(PROMPT_FILE)
    async with open_backends(options.cache) as run_engine:
        role = Role(
            "auditor",
            role_backend(run_engine.pool, options.auditor, options.concurrency),
            run_engine.cache,
            prompt_version=prompt.tag,
            priority=PRIORITY_BACKGROUND,
        )
        llm = LLMAuditor(
            role,
            options.auditor.settings(int(prompt.defaults.get("max_new_tokens", 200))),
            options.reasks,
            seed,
        )
        book = (
            FactBook(llm.split_facts, f"llm:{options.auditor.record()['spec']}")
            if options.facts == "llm"
            else FactBook()
        )
        audits = list(
            await asyncio.gather(
                *(_audit_conversation(c, book, matcher, llm) for c in run.conversations if c.turns)
            )
        )
        info.update(
            auditor=options.auditor.record()["spec"],
            auditor_config={**options.auditor.record(), "backend": role.backend.describe()},
            matcher="llm",
            prompt=prompt.record(),
            prompt_sha256=prompt.sha256,
            reasks=options.reasks,
            usage=role.usage.to_dict(),
            facts_fallbacks=book.fallbacks,
        )
        info["facts_method"] = book.method
        return audits, info


def audit_run(
    directory: str | Path, options: AuditOptions | None = None, *, write: bool = True
) -> RunResults:
    """Audit the run in `directory`; returns its updated results (with `audit` and `warnings`)."""
    options = options or AuditOptions()
    options.validate()
    run = load_run(directory)
    if not run.conversations:
        raise UserInputError(
            f"{run.path} has no conversations to audit (empty {run.path}/conversations.jsonl)"
        )
    if run.config.simulator is None:
        raise UserInputError(
            f"{run.path} is a run without a simulated user (e.g. Multifaceted): nothing to audit"
        )
    turns = run.turns or max(len(c.turns) for c in run.conversations)
    audits, info = asyncio.run(_audit_async(run, options))
    n_bootstrap = options.n_bootstrap or run.metrics.ci.n_bootstrap or DEFAULT_BOOTSTRAP
    audit = {
        "auditor": info.pop("auditor"),
        "prompt_sha256": info.pop("prompt_sha256"),
        "facts_method": info.pop("facts_method", "clauses-v1"),
        **info,
        **summarize(audits, turns, seed=run.config.seed or 0, n_bootstrap=n_bootstrap),
    }
    # Re-read just before writing: a run still recording (or another tool) may have written since.
    results = read_results_file(run.path / RESULTS_FILE)
    results.audit = Audit.from_dict(audit, "audit")
    merged = merge_warnings([w.to_dict() for w in results.warnings], audit_warnings(audit, turns))
    results.warnings = [RunWarning.from_dict(w) for w in merged]
    if write:
        write_text_atomic(
            run.path / AUDIT_FILE, "".join(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in audits)
        )
        write_results(run.path / RESULTS_FILE, results)
    return results
