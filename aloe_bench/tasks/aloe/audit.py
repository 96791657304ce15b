"""Audit a finished run: read its transcripts, audit every simulated-user message, write the results.

ALOE's use of the engine's annotation run kind (engine/annotate.py): this module says only what is
ALOE's (the checks of each simulated-user message, the auditor role and its prompt, the `audit`
section and `simulator-*` warnings they add up to); the engine opens the auditor's backend and the
call cache, runs the conversations, and writes DIR/audit.jsonl and DIR/results.json atomically.

Nothing is generated for the conversations: the model under test and the simulated user make no
calls (their usage in results.json is left as it was). The offline auditor makes no calls at all;
the LLM auditor's calls go through the call cache (role `auditor`), so auditing again replays them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench.engine.annotate import Annotation, AnnotatorRole, annotate_run
from aloe_bench.engine.finished_run import (
    open_finished_run,
    recorded_bootstrap,
    recorded_seed,
    recorded_turns,
)
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import Audit, RunResults, RunWarning
from aloe_bench.log.results import ConversationRecord, Run
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
AUDITOR = "auditor"  # the role's name: part of every auditor call's cache key
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
    progress: bool | None = None  # None: bars on a terminal, plain lines otherwise (as a run's)

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


class _SimulatorAudit:
    """ALOE's side of the audit: the checks per conversation and the `audit` section they add up to."""

    def __init__(self, run: Run, options: AuditOptions, roles: Mapping[str, Role]):
        self.run, self.options = run, options
        self.role = roles.get(AUDITOR)
        self.llm: LLMAuditor | None = None
        self.matcher_note = ""
        if options.auditor is None:  # the offline auditor: lexical evidence, paraphrases by embedding
            embedder, self.matcher_note = make_embedder(options.embedder)
            self.matcher = FactMatcher(embedder)
            self.book = FactBook()
            return
        assert self.role is not None  # named in `roles` whenever there is an --auditor
        self.prompt = load_prompt(PROMPT_FILE)
        self.matcher = FactMatcher(None)
        self.llm = LLMAuditor(
            self.role,
            options.auditor.settings(int(self.prompt.defaults.get("max_new_tokens", 200))),
            options.reasks,
            recorded_seed(run),
        )
        llm_facts = options.facts == "llm"
        spec = options.auditor.record()["spec"]
        self.book = FactBook(self.llm.split_facts, f"llm:{spec}") if llm_facts else FactBook()

    async def annotate(self, conv: ConversationRecord) -> ConversationAudit:
        return await _audit_conversation(conv, self.book, self.matcher, self.llm)

    def _info(self) -> dict[str, Any]:
        """How the audit was made (the first keys of results.json `audit`)."""
        auditor = self.options.auditor
        if auditor is None or self.role is None:
            return {
                "auditor": "lexical",
                "prompt_sha256": None,
                "facts_method": self.book.method,
                "matcher": self.matcher.name,
                "matcher_note": self.matcher_note,
                "prompt": None,
            }
        return {
            "auditor": auditor.record()["spec"],
            "prompt_sha256": self.prompt.sha256,
            "facts_method": self.book.method,
            "auditor_config": {**auditor.record(), "backend": self.role.backend.describe()},
            "matcher": "llm",
            "prompt": self.prompt.record(),
            "reasks": self.options.reasks,
            "usage": self.role.usage.to_dict(),
            "facts_fallbacks": self.book.fallbacks,
        }

    def record(self, results: RunResults, audits: list[ConversationAudit]) -> None:
        turns = recorded_turns(self.run)
        n_bootstrap = self.options.n_bootstrap or recorded_bootstrap(self.run)
        audit = {
            **self._info(),
            **summarize(audits, turns, seed=recorded_seed(self.run), n_bootstrap=n_bootstrap),
        }
        results.audit = Audit.from_dict(audit, "audit")
        merged = merge_warnings([w.to_dict() for w in results.warnings], audit_warnings(audit, turns))
        results.warnings = [RunWarning.from_dict(w) for w in merged]


def audit_run(
    directory: str | Path, options: AuditOptions | None = None, *, write: bool = True
) -> RunResults:
    """Audit the run in `directory`; returns its updated results (with `audit` and `warnings`)."""
    options = options or AuditOptions()
    options.validate()
    run = open_finished_run(directory, "audit")
    if run.config.simulator is None:
        raise UserInputError(
            f"{run.path} is a run without a simulated user (e.g. Multifaceted): nothing to audit"
        )
    roles = {}
    if options.auditor is not None:
        roles[AUDITOR] = AnnotatorRole(options.auditor, load_prompt(PROMPT_FILE).tag, options.concurrency)
    annotation = Annotation(
        sidecar=AUDIT_FILE,
        make_annotator=lambda opened: _SimulatorAudit(run, options, opened),
        roles=roles,
        cache=options.cache,
    )
    return annotate_run(run, annotation, progress=options.progress, write=write)
