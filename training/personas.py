"""`aloe-train personas`: grow a profile or personality pool from seeds (SPEC 1.4).

Each round sends `concurrency` requests at once; each shows the generator `examples` random pool
members and asks for `per_request` new descriptions. A candidate joins the pool only if its highest
cosine similarity to the pool (and to the candidates kept before it) is at most `threshold`, checked
with one similarity matrix against the whole pool. The pool is written after every round (atomically,
one JSON string per line, the original pool files' format) with a `.meta.json` beside it; re-running
resumes from it, and the generator's calls replay from the call cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from aloe_bench.datasets.personas.loaders import read_strings
from aloe_bench.engine.session import RunStatus, config_hash, record_run
from aloe_bench.errors import UserInputError, required
from aloe_bench.log.results import write_json_atomic, write_lines_atomic
from aloe_bench.models.backends import ChatRequest
from aloe_bench.models.embeddings import Embedder, get_embedder, select_novel
from aloe_bench.models.roles import Role
from aloe_bench.prompts import PromptTemplate
from aloe_bench.seeds import seed32
from aloe_train.generation import (
    RoleBinding,
    bound_roles,
    check_same_config,
    meta_path,
    provenance,
    train_prompt,
)

KINDS = ("profile", "personality")
SEED_FILES = {"profile": "seed_profiles.jsonl", "personality": "seed_personalities.jsonl"}
PLURAL = {"profile": "profiles", "personality": "personalities"}
_ITEM = re.compile(r"^\s*(?:\d{1,3}\s*[.):]|[-*\u2022])\s*(.+?)\s*$")


@dataclass
class PersonaGrowthConfig:
    output: str | None = field(
        default=None,
        metadata={"help": "pool file to write (JSONL of strings)", "required": True, "metavar": "PATH"},
    )
    kind: str = field(default="profile", metadata={"help": "which pool to grow", "choices": list(KINDS)})
    seeds: str | None = field(
        default=None,
        metadata={
            "help": "seed file (JSON strings, one per line); default: the shipped seeds",
            "metavar": "PATH",
        },
    )
    target: int = field(default=100, metadata={"help": "stop when the pool (seeds included) has this many"})
    generator: str = field(
        default="embedded", metadata={"help": "backend spec of the generator model", "metavar": "SPEC"}
    )
    generator_args: str | None = field(
        default=None, metadata={"help": "generator backend arguments", "metavar": "K=V,..."}
    )
    per_request: int = field(
        default=20, metadata={"help": "new descriptions asked for per request (paper: 20)"}
    )
    examples: int = field(default=5, metadata={"help": "random pool examples shown per request (paper: 5)"})
    concurrency: int = field(default=4, metadata={"help": "requests per round, sent together (batched)"})
    threshold: float = field(
        default=0.6,
        metadata={"help": "keep a candidate only if its max cosine similarity to the pool is at most this"},
    )
    embedder: str = field(
        default="auto",
        metadata={"help": "auto, st/<sentence-transformers model>, minilm, or tfidf", "metavar": "NAME"},
    )
    temperature: float | None = field(
        default=None, metadata={"help": "generator temperature (default: the prompt's, 0.8 as the paper)"}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "generator max new tokens (default: the prompt's)"}
    )
    min_words: int = field(
        default=8, metadata={"help": "drop candidates shorter than this (fragments, headings)"}
    )
    max_rounds: int = field(default=50, metadata={"help": "give up after this many rounds"})
    patience: int = field(
        default=5, metadata={"help": "stop after this many rounds in a row that add nothing"}
    )
    seed: int = field(default=0, metadata={"help": "seed for example sampling and generation"})
    cache: str | None = field(
        default=None, metadata={"help": "call cache file ('' = none)", "metavar": "PATH"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an output made by a different job"})

    def validate(self) -> None:
        if not self.output:
            raise UserInputError("--output is required (the pool file to write)")
        if self.kind not in KINDS:
            raise UserInputError(f"--kind must be one of {', '.join(KINDS)}")
        for name in ("target", "per_request", "examples", "concurrency", "max_rounds", "patience"):
            if getattr(self, name) < 1:
                raise UserInputError(f"--{name.replace('_', '-')} must be at least 1")
        if not -1.0 <= self.threshold <= 1.0:
            raise UserInputError("--threshold is a cosine similarity: between -1 and 1")

    def job_record(self) -> dict[str, Any]:
        """What determines the pool (resuming requires the same)."""
        d = asdict(self)
        for machine_local in ("output", "cache", "overwrite", "target", "max_rounds", "patience"):
            d.pop(machine_local)
        return d


def load_seeds(config: PersonaGrowthConfig) -> tuple[list[str], str]:
    if config.seeds:
        return read_strings(Path(config.seeds).expanduser()), str(config.seeds)
    name = SEED_FILES[config.kind]
    with resources.as_file(resources.files("aloe_train") / "data" / name) as path:
        return read_strings(Path(path)), f"aloe_train/data/{name}"


def parse_descriptions(text: str, min_words: int) -> tuple[list[str], int]:
    """Descriptions from a numbered (or bulleted) list, one per line; (kept, lines dropped)."""
    lines = [line for line in text.splitlines() if line.strip()]
    items = [m.group(1) for m in map(_ITEM.match, lines) if m]
    if not items:  # an unnumbered answer: every line is a candidate
        items = [line.strip() for line in lines]
    kept = []
    for item in items:
        item = item.strip().strip('"\u201c\u201d').replace("**", "").strip()
        if len(item.split()) >= min_words:
            kept.append(item)
    return kept, len(lines) - len(kept)


@dataclass
class GrowthStats:
    rounds: int = 0
    requests: int = 0
    failed_requests: int = 0
    candidates: int = 0
    dropped_lines: int = 0
    rejected_similar: int = 0
    beyond_target: int = 0  # novel, but the target was reached
    accepted: int = 0
    failures: list[str] = field(default_factory=list)


async def _grow(config: PersonaGrowthConfig, progress: bool | None) -> dict[str, Any]:
    config.validate()
    out = Path(required(config.output, "--output")).expanduser()
    seeds, seed_source = load_seeds(config)
    if len(seeds) < 1:
        raise UserInputError(f"{seed_source}: no seed descriptions")
    prompt = train_prompt(f"persona_{config.kind}.yaml")
    binding = RoleBinding.make(
        "persona_generator",
        config.generator,
        config.generator_args,
        max_new_tokens=config.max_new_tokens or int(prompt.defaults["max_new_tokens"]),
        temperature=config.temperature
        if config.temperature is not None
        else prompt.defaults.get("temperature"),
        prompt=prompt,
    )
    embedder = get_embedder(config.embedder)
    print(f"aloe-train personas: similarity by {embedder.name}: {embedder.note}", file=sys.stderr)
    record = {
        **config.job_record(),
        "embedding": embedder.name,  # what `auto` resolved to: a resumed pool must keep the same criterion
        "seeds_sha256": hashlib.sha256("\n".join(seeds).encode()).hexdigest(),
    }
    run_hash = config_hash(record)
    previous = check_same_config(out, run_hash, config.overwrite)
    pool, stats = list(seeds), GrowthStats()
    if previous:
        pool = read_strings(out)
        stats = GrowthStats(**previous["stats"])

    def save(status: RunStatus) -> dict[str, Any]:
        write_lines_atomic(out, (json.dumps(p, ensure_ascii=False) + "\n" for p in pool))
        meta = {
            "config_hash": run_hash,
            "config": record,
            "generator": binding.record(),
            "seeds": {"source": seed_source, "count": len(seeds)},
            "embedding": embedder.describe(),
            "size": len(pool),
            "status": status,
            "stats": asdict(stats),
            **provenance(),
        }
        write_json_atomic(meta_path(out), meta)
        return meta

    bar = tqdm(
        total=config.target,
        initial=min(len(pool), config.target),
        desc=f"{config.kind} pool",
        unit="item",
        disable=not sys.stderr.isatty() if progress is None else not progress,
    )
    async with bound_roles([binding], config.cache) as roles:
        generator = roles["persona_generator"]

        async def grow() -> None:
            idle_rounds = 0
            while (
                len(pool) < config.target
                and stats.rounds < config.max_rounds
                and idle_rounds < config.patience
            ):
                kept = await _round(generator, prompt, binding, config, embedder, pool, stats)
                idle_rounds = 0 if kept else idle_rounds + 1
                pool.extend(kept)
                bar.update(len(kept))
                save("running")
                if stats.failed_requests and stats.failed_requests == stats.requests:
                    raise UserInputError(f"every generator request failed; last: {stats.failures[-1]}")

        try:
            # complete: the pool reached its target; incomplete: it stopped short (rounds, patience)
            return await record_run(
                _Saver(save), grow, status=lambda: "complete" if len(pool) >= config.target else "incomplete"
            )
        finally:
            bar.close()


@dataclass
class _Saver:
    """The engine's recorder interface over the pool's `save`."""

    save: Callable[[RunStatus], dict[str, Any]]

    def flush(self, status: RunStatus) -> dict[str, Any]:
        return self.save(status)


async def _round(
    generator: Role,
    prompt: PromptTemplate,
    binding: RoleBinding,
    config: PersonaGrowthConfig,
    embedder: Embedder,
    pool: list[str],
    stats: GrowthStats,
) -> list[str]:
    """One round: `concurrency` requests at once; the novel candidates up to the target."""
    rng = random.Random(seed32(config.seed, config.kind, "round", stats.rounds))
    requests = [
        ChatRequest(
            prompt.render(
                examples=rng.sample(pool, min(config.examples, len(pool))), count=config.per_request
            ),
            binding.settings.with_seed(seed32(config.seed, config.kind, stats.rounds, slot)),
        )
        for slot in range(config.concurrency)
    ]
    completions = await generator.generate(requests)
    candidates: list[str] = []
    for c in completions:
        stats.requests += 1
        if not c.ok or c.text is None:
            stats.failed_requests += 1
            stats.failures.append(f"round {stats.rounds}: {c.error}")
            continue
        items, dropped = parse_descriptions(c.text, config.min_words)
        if c.finish_reason == "length" and items:  # the last one was cut off mid-way
            items, dropped = items[:-1], dropped + 1
        candidates += items
        stats.dropped_lines += dropped
    stats.candidates += len(candidates)
    novel, _ = select_novel(candidates, pool, config.threshold, embedder)
    kept = novel[: config.target - len(pool)]
    stats.rejected_similar += len(candidates) - len(novel)
    stats.beyond_target += len(novel) - len(kept)
    stats.accepted += len(kept)
    stats.rounds += 1
    return kept


def grow_pool(config: PersonaGrowthConfig, progress: bool | None = None) -> dict[str, Any]:
    """Grow (or resume growing) the pool; returns the meta record written beside it."""
    return asyncio.run(_grow(config, progress))


def summary(meta: dict[str, Any], output: str) -> str:
    s = meta["stats"]
    lines = [
        f"{output}: {meta['size']} {PLURAL[meta['config']['kind']]} ({meta['seeds']['count']} seeds + {s['accepted']} new), "
        f"status {meta['status']}",
        f"  rounds {s['rounds']}, requests {s['requests']} ({s['failed_requests']} failed), candidates "
        f"{s['candidates']}, too similar {s['rejected_similar']}, novel beyond the target {s['beyond_target']}, "
        f"unusable lines {s['dropped_lines']}",
        f"  similarity: {meta['embedding']['embedder']} (threshold {meta['config']['threshold']}): "
        f"{meta['embedding']['note']}",
    ]
    if meta["status"] != "complete":
        lines.append(
            "  stopped before the target: too few novel candidates (raise --max-rounds or --patience, "
            "or use a stronger --generator)"
        )
    return "\n".join(lines)
