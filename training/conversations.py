"""`aloe-train conversations`: tree-structured preference conversations (SPEC 1.4), five roles.

Per turn: the simulated user writes (the evaluation engine's simulator prompt and retry logic); the
extractor writes down what the user has revealed so far; one responder replies WITH that inferred
persona as a hint, another WITHOUT it; the judge, who knows the full persona, picks the reply this user
would prefer (A/B order randomised per turn); one of the two, picked at random (seeded), continues the
conversation. Every conversation runs as its own task, so the in-process backends batch across them,
and every call goes through the call cache: re-running the command resumes. A role output that stays
malformed after bounded re-asks fails its conversation, with the reason, in the output file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from aloe_bench.concurrency import each_item
from aloe_bench.datasets.personas import load_persona_set, persona_id
from aloe_bench.datasets.personas.loaders import read_strings
from aloe_bench.datasets.personas.official import load_official_pool
from aloe_bench.engine.session import RunStatus, config_hash, final_status, record_run
from aloe_bench.errors import UserInputError, required
from aloe_bench.log.results import write_json_atomic, write_lines_atomic
from aloe_bench.models.backends import ChatRequest
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import judge_with_reasks
from aloe_bench.seeds import request_seed, seed32
from aloe_bench.solvers.rollout import simulated_user_message
from aloe_train.generation import (
    RoleBinding,
    bound_roles,
    check_same_config,
    meta_path,
    provenance,
    train_prompt,
)

ROLES = ("simulator", "extractor", "responder_hint", "responder_plain", "judge")
NONE_WORDS = {"none", "nothing", "n/a", "none yet", "nothing yet", "-"}


@dataclass
class ConversationConfig:
    output: str | None = field(
        default=None,
        metadata={"help": "conversations file to write (JSONL)", "required": True, "metavar": "PATH"},
    )
    personas: str = field(
        default="pool",
        metadata={
            "help": "pool (the ALOE training pool: 331 profiles x a random personality), demo, or a JSONL of {profile, personality}",
            "metavar": "NAME|PATH",
        },
    )
    profiles: str | None = field(
        default=None,
        metadata={
            "help": "a profile pool file (e.g. from `aloe-train personas`), paired with --personalities",
            "metavar": "PATH",
        },
    )
    personalities: str | None = field(
        default=None, metadata={"help": "a personality pool file, paired with --profiles", "metavar": "PATH"}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "folder with the original ALOE files (for --personas pool)", "metavar": "DIR"},
    )
    passes: int = field(
        default=10, metadata={"help": "conversations per profile (pools: a new random personality each pass)"}
    )
    limit: int | None = field(
        default=None, metadata={"help": "at most this many conversations (the paper stops at 3000)"}
    )
    turns: int = field(default=10, metadata={"help": "turns per conversation"})
    seed: int = field(
        default=0, metadata={"help": "seed for pairing, sampling, reply order and branch choice"}
    )
    generator: str = field(
        default="embedded",
        metadata={"help": "backend spec for every role not set on its own", "metavar": "SPEC"},
    )
    generator_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --generator", "metavar": "K=V,..."}
    )
    simulator: str | None = field(
        default=None, metadata={"help": "simulated user (default: --generator)", "metavar": "SPEC"}
    )
    extractor: str | None = field(
        default=None,
        metadata={"help": "extractor of what the user revealed (default: --generator)", "metavar": "SPEC"},
    )
    responder: str | None = field(
        default=None, metadata={"help": "both responders (default: --generator)", "metavar": "SPEC"}
    )
    responder_plain: str | None = field(
        default=None,
        metadata={
            "help": "the responder WITHOUT the hint, if different (default: --responder)",
            "metavar": "SPEC",
        },
    )
    judge: str | None = field(
        default=None, metadata={"help": "preference judge (default: --generator)", "metavar": "SPEC"}
    )
    simulator_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --simulator", "metavar": "K=V,..."}
    )
    extractor_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --extractor", "metavar": "K=V,..."}
    )
    responder_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --responder", "metavar": "K=V,..."}
    )
    responder_plain_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --responder-plain", "metavar": "K=V,..."}
    )
    judge_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --judge", "metavar": "K=V,..."}
    )
    temperature: float | None = field(
        default=0.7,
        metadata={
            "help": "sampling temperature of the simulated user and the responders (so passes differ); extractor and judge use their backend's default"
        },
    )
    simulator_max_new_tokens: int | None = field(
        default=None, metadata={"help": "default: the simulator prompt's (300)"}
    )
    responder_max_new_tokens: int | None = field(
        default=None, metadata={"help": "default: the responder prompt's (256)"}
    )
    extractor_max_new_tokens: int | None = field(
        default=None, metadata={"help": "default: the extractor prompt's (300)"}
    )
    judge_max_new_tokens: int | None = field(
        default=None, metadata={"help": "default: the judge prompt's (300)"}
    )
    retries: int = field(
        default=2, metadata={"help": "re-asks for a malformed role output before the conversation fails"}
    )
    cache: str | None = field(
        default=None, metadata={"help": "call cache file ('' = none, and no resume)", "metavar": "PATH"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an output made by a different job"})

    def validate(self) -> None:
        if not self.output:
            raise UserInputError("--output is required (the conversations file to write)")
        if self.turns < 1 or self.passes < 1:
            raise UserInputError("--turns and --passes must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserInputError("--limit must be at least 1")
        if self.retries < 0:
            raise UserInputError("--retries cannot be negative")
        if bool(self.profiles) != bool(self.personalities):
            raise UserInputError("--profiles and --personalities go together (two pool files)")

    def role_specs(self) -> dict[str, tuple[str, str | None]]:
        """(spec, backend arguments) per role: a role set on its own takes its own arguments."""

        def pick(own: str | None, own_args: str | None) -> tuple[str, str | None]:
            return (own, own_args) if own else (self.generator, self.generator_args)

        responder = pick(self.responder, self.responder_args)
        return {
            "simulator": pick(self.simulator, self.simulator_args),
            "extractor": pick(self.extractor, self.extractor_args),
            "responder_hint": responder,
            "responder_plain": pick(self.responder_plain, self.responder_plain_args)
            if self.responder_plain
            else responder,
            "judge": pick(self.judge, self.judge_args),
        }


# -- the data ----------------------------------------------------------------------------------------
@dataclass
class TreeTurn:
    user: str
    preferred: str
    rejected: str
    chosen: str  # "preferred" | "rejected": the reply the conversation continued with
    inferred_profile: str | None
    inferred_personality: str | None
    preferred_from: str  # "hint" | "plain": which responder wrote the preferred reply
    reply_order: str  # "hint-first" | "plain-first": what the judge saw as A, B
    judge_raw: str | None = None

    @property
    def taken(self) -> str:
        return self.preferred if self.chosen == "preferred" else self.rejected


@dataclass
class TreeConversation:
    id: str
    persona: dict[str, str]
    turns: list[TreeTurn] = field(default_factory=list)
    status: str = "running"  # running | complete | failed
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def exchanges(self) -> list[tuple[str, str]]:
        """The branch actually taken: (user message, the reply that continued the conversation)."""
        return [(t.user, t.taken) for t in self.turns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "persona": self.persona,
            "status": self.status,
            "error": self.error,
            "turns": [asdict(t) for t in self.turns],
            "meta": self.meta,
        }


# -- parsing role outputs -----------------------------------------------------------------------------
_FIELD = re.compile(
    r"^[\s*#>_-]*(?:(?:the|their|his|her|user'?s?|person'?s?)\s+)?(profile|personality|personalities)\s*\**\s*[:\-]\s*(.*)$",
    re.I,
)


def parse_extraction(text: str | None) -> dict[str, str | None] | None:
    """{"profile", "personality"} from "Profile: ... / Personality: ...", None when a field is missing.
    "None"/"nothing" mean nothing revealed yet (kept as None)."""
    if not text:
        return None
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m:
            current = "profile" if m.group(1).lower() == "profile" else "personality"
            found.setdefault(current, []).append(m.group(2).strip())
        elif current and line.strip():
            found[current].append(line.strip())
    if set(found) != {"profile", "personality"}:
        return None
    out: dict[str, str | None] = {}
    for key, parts in found.items():
        value = " ".join(p for p in parts if p).strip().strip("*").strip()
        out[key] = None if value.lower().rstrip(".") in NONE_WORDS or not value else value
    return out


_CHOICE_BARE = re.compile(r"^\W*([AB])\W*$", re.I)


def parse_choice(text: str | None) -> str | None:
    """A or B from the judge's answer; None when it does not pick exactly one."""
    if not text or not text.strip():
        return None
    bare = _CHOICE_BARE.match(text.strip())
    if bare:
        return bare.group(1).upper()
    # otherwise exactly one of the two letters may appear as a word ("Reply B.", "I prefer A")
    standalone = set(re.findall(r"(?<![\w'])([AB])(?![\w'])", text))
    return standalone.pop() if len(standalone) == 1 else None


# -- personas -------------------------------------------------------------------------------------------
def plan_conversations(config: ConversationConfig) -> tuple[list[TreeConversation], dict[str, Any]]:
    """Which persona each conversation plays: pools are paired (every profile, `passes` times, with a
    random personality each time, seeded); a persona set is used as it is, `passes` times."""
    rng = random.Random(seed32(config.seed, "pairing"))
    plans: list[TreeConversation] = []
    source: dict[str, Any]
    if config.profiles or config.personas == "pool":
        if config.profiles:
            profiles = read_strings(Path(config.profiles).expanduser())
            personalities = read_strings(Path(required(config.personalities, "--personalities")).expanduser())
            source = {"profiles": config.profiles, "personalities": config.personalities}
        else:
            profiles, personalities = load_official_pool(config.data_dir)
            source = {
                "pool": "aloe-training-pool",
                "profiles": len(profiles),
                "personalities": len(personalities),
            }
        for p in range(config.passes):
            for i, profile in enumerate(profiles):
                j = rng.randrange(len(personalities))
                persona = {"profile": profile, "personality": personalities[j]}
                meta = {"pass": p, "profile_index": i, "personality_index": j}
                plans.append(
                    TreeConversation(f"{persona_id(profile, personalities[j])}-{p}", persona, meta=meta)
                )
    else:
        personas = load_persona_set(config.personas, config.data_dir)
        source = {"set": personas.name, "source": personas.source, "sha256": personas.sha256}
        for p in range(config.passes):
            for member in personas.personas:
                plans.append(TreeConversation(f"{member.id}-{p}", member.to_dict(), meta={"pass": p}))
    if config.limit is not None:
        plans = plans[: config.limit]
    digest = hashlib.sha256(json.dumps([c.persona for c in plans], ensure_ascii=False).encode()).hexdigest()
    return plans, {**source, "conversations": len(plans), "sha256": digest}


# -- the generation -----------------------------------------------------------------------------------
class TreeGenerator:
    def __init__(self, roles: dict[str, Role], bindings: dict[str, RoleBinding], config: ConversationConfig):
        self.roles = roles
        self.bindings = bindings
        self.config = config
        self.simulator_prompt = bindings["simulator"].template()
        self.extractor_prompt = bindings["extractor"].template()
        self.responder_prompt = bindings["responder_hint"].template()
        self.judge_prompt = bindings["judge"].template()

    def _seed(self, conv: TreeConversation, k: int, role: str, attempt: int = 0) -> int:
        return request_seed(self.config.seed, conv.id, k, role, attempt)

    async def _extract(
        self, conv: TreeConversation, k: int, user: str
    ) -> tuple[dict[str, str | None] | None, str | None]:
        said = [u for u, _ in conv.exchanges()] + [user]
        messages = self.extractor_prompt.render(**conv.persona, messages=said)
        settings = self.bindings["extractor"].settings.with_seed(self._seed(conv, k, "extractor"))
        result = await judge_with_reasks(
            self.roles["extractor"],
            messages,
            settings,
            self.extractor_prompt.text("reask"),
            self.config.retries,
            parse=parse_extraction,
        )
        if result.score is None:
            why = (
                result.error
                or f"answer without its Profile/Personality fields (last: {(result.raw or '')[:100]!r})"
            )
            return None, f"extractor failed after {result.attempts} attempt(s): {why}"
        return result.score, None

    async def _reply(
        self, conv: TreeConversation, k: int, role: str, system: list[dict], user: str
    ) -> tuple[str | None, str | None]:
        chat = []
        for u, a in conv.exchanges():
            chat += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        messages = [*system, *chat, {"role": "user", "content": user}]
        last = None
        for attempt in range(self.config.retries + 1):
            settings = self.bindings[role].settings.with_seed(self._seed(conv, k, role, attempt))
            out = await self.roles[role].generate_one(ChatRequest(messages, settings))
            if out.ok and out.text is not None and out.text.strip():
                return out.text.strip(), None
            last = out.error or "empty reply"
        return None, f"{role} failed after {self.config.retries + 1} attempt(s): {last}"

    async def _judge(
        self, conv: TreeConversation, k: int, user: str, a: str, b: str
    ) -> tuple[str | None, str | None, str | None]:
        history = [{"user": u, "assistant": r} for u, r in conv.exchanges()]
        messages = self.judge_prompt.render(**conv.persona, history=history, user=user, reply_a=a, reply_b=b)
        settings = self.bindings["judge"].settings.with_seed(self._seed(conv, k, "judge"))
        result = await judge_with_reasks(
            self.roles["judge"],
            messages,
            settings,
            self.judge_prompt.text("reask"),
            self.config.retries,
            parse=parse_choice,
        )
        if result.score is None:
            why = result.error or f"did not pick A or B (last: {(result.raw or '')[:100]!r})"
            return None, result.raw, f"judge failed after {result.attempts} attempt(s): {why}"
        return result.score, result.raw, None

    async def turn(self, conv: TreeConversation, k: int) -> str | None:
        """Play turn k (1-based); returns the failure reason, or None."""
        user, error = await simulated_user_message(
            self.roles["simulator"],
            self.simulator_prompt,
            conv.persona,
            conv.exchanges(),
            settings=self.bindings["simulator"].settings,
            run_seed=self.config.seed,
            conversation_id=conv.id,
            turn=k,
            retries=self.config.retries,
        )
        if user is None:
            return error
        inferred, error = await self._extract(conv, k, user)
        if inferred is None:
            return error
        hint = self.responder_prompt.text(
            "hint", profile=inferred["profile"] or "None", personality=inferred["personality"] or "None"
        )
        (hinted, e1), (plain, e2) = await asyncio.gather(
            self._reply(conv, k, "responder_hint", self.responder_prompt.render(hint=hint), user),
            self._reply(conv, k, "responder_plain", self.responder_prompt.render(hint=""), user),
        )
        if hinted is None or plain is None:
            return e1 or e2
        hint_first = random.Random(self._seed(conv, k, "reply-order")).random() < 0.5
        a, b = (hinted, plain) if hint_first else (plain, hinted)
        choice, raw, error = await self._judge(conv, k, user, a, b)
        if choice is None:
            return error
        hint_preferred = (choice == "A") == hint_first
        preferred, rejected = (hinted, plain) if hint_preferred else (plain, hinted)
        chosen = "preferred" if random.Random(self._seed(conv, k, "branch")).random() < 0.5 else "rejected"
        conv.turns.append(
            TreeTurn(
                user=user,
                preferred=preferred,
                rejected=rejected,
                chosen=chosen,
                inferred_profile=inferred["profile"],
                inferred_personality=inferred["personality"],
                preferred_from="hint" if hint_preferred else "plain",
                reply_order="hint-first" if hint_first else "plain-first",
                judge_raw=raw,
            )
        )
        return None

    async def converse(self, conv: TreeConversation, on_turn) -> None:
        for k in range(len(conv.turns) + 1, self.config.turns + 1):
            error = await self.turn(conv, k)
            if error is not None:
                conv.status, conv.error = "failed", f"turn {k}: {error}"
                on_turn(conv, k, failed=True)
                return
            on_turn(conv, k, failed=False)
        conv.status = "complete"


def role_bindings(config: ConversationConfig) -> dict[str, RoleBinding]:
    prompts = {
        "simulator": load_prompt("simulator.yaml"),
        "extractor": train_prompt("extractor.yaml"),
        "responder_hint": train_prompt("responder.yaml"),
        "responder_plain": train_prompt("responder.yaml"),
        "judge": train_prompt("preference_judge.yaml"),
    }
    max_new = {
        "simulator": config.simulator_max_new_tokens,
        "extractor": config.extractor_max_new_tokens,
        "responder_hint": config.responder_max_new_tokens,
        "responder_plain": config.responder_max_new_tokens,
        "judge": config.judge_max_new_tokens,
    }
    sampled = {"simulator", "responder_hint", "responder_plain"}
    return {
        name: RoleBinding.make(
            name,
            spec,
            args,
            max_new_tokens=max_new[name] or int(prompts[name].defaults.get("max_new_tokens", 300)),
            temperature=config.temperature if name in sampled else None,
            prompt=prompts[name],
        )
        for name, (spec, args) in config.role_specs().items()
    }


async def _generate(config: ConversationConfig, progress: bool | None) -> dict[str, Any]:
    config.validate()
    out = Path(required(config.output, "--output")).expanduser()
    conversations, persona_source = plan_conversations(config)
    bindings = role_bindings(config)
    record = {
        "personas": persona_source,
        "turns": config.turns,
        "seed": config.seed,
        "retries": config.retries,
        "roles": {name: b.record() for name, b in bindings.items()},
    }
    run_hash = config_hash(record)
    check_same_config(out, run_hash, config.overwrite)
    async with bound_roles(list(bindings.values()), config.cache) as roles:
        recorder = ConversationsRecorder(out, run_hash, record, conversations, roles)
        interactive = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(
            total=len(conversations) * config.turns, desc="turns", unit="turn", disable=not interactive
        )

        def on_turn(conv: TreeConversation, k: int, failed: bool) -> None:
            bar.update(config.turns - k + 1 if failed else 1)
            recorder.mark_dirty()

        generator = TreeGenerator(roles, bindings, config)
        try:
            return await record_run(
                recorder,
                lambda: each_item(generator.converse(c, on_turn) for c in conversations),
                status=lambda: final_status(conversations),
            )
        finally:
            bar.close()


@dataclass
class ConversationsRecorder:
    """Keeps the conversations file and its .meta.json current (atomically, at most every
    `interval_s` while running, and at the end)."""

    out: Path
    run_hash: str
    record: dict[str, Any]
    conversations: list[TreeConversation]
    roles: dict[str, Role]
    interval_s: float = 2.0
    _started: float = field(default_factory=time.perf_counter, init=False)
    _last: float = field(default=0.0, init=False)

    def mark_dirty(self) -> None:
        if time.perf_counter() - self._last > self.interval_s:
            self.flush("running")

    def flush(self, status: RunStatus) -> dict[str, Any]:
        conversations, roles = self.conversations, self.roles
        write_lines_atomic(
            self.out, (json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in conversations)
        )
        turns = [t for c in conversations for t in c.turns]
        meta = {
            "config_hash": self.run_hash,
            "config": self.record,
            "status": status,
            "conversations": len(conversations),
            "complete": sum(c.status == "complete" for c in conversations),
            "failed": sum(c.status == "failed" for c in conversations),
            "elapsed_s": round(time.perf_counter() - self._started, 2),
            "usage": {name: role.usage.to_dict() for name, role in roles.items()},
            "backends": {name: role.identity for name, role in roles.items()},
            "turns_generated": len(turns),
            # how often the judge preferred the hinted reply (ALOE's premise: it should, mostly)
            "hint_preferred": round(sum(t.preferred_from == "hint" for t in turns) / len(turns), 3)
            if turns
            else None,
            "failures": [{"id": c.id, "error": c.error} for c in conversations if c.status == "failed"],
            **provenance(),
        }
        write_json_atomic(meta_path(self.out), meta)
        self._last = time.perf_counter()
        return meta


def generate_conversations(config: ConversationConfig, progress: bool | None = None) -> dict[str, Any]:
    """Generate (or resume) the conversations file; returns the meta record written beside it."""
    return asyncio.run(_generate(config, progress))


def summary(meta: dict[str, Any], output: str) -> str:
    usage = "; ".join(f"{r} {u['calls']} calls/{u['cached']} cached" for r, u in meta["usage"].items())
    text = (
        f"{output}: {meta['complete']} complete, {meta['failed']} failed of {meta['conversations']} conversations "
        f"({meta['config']['turns']} turns) in {meta['elapsed_s']}s; the judge preferred the hinted reply in "
        f"{meta['hint_preferred']} of {meta['turns_generated']} turns\nusage: {usage}"
    )
    if meta["failed"]:
        text += f"\nfailures (first 3): {meta['failures'][:3]}"
    return text
