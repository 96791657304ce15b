"""`aloe-train multifaceted-data`: build a Multifaceted Collection for any instructions, on the engine.

The run is one engine run: the generator roles are bound through the engine's backend pool and
call cache (every call cached, so a re-run after a crash, even kill -9, replays what finished and
asks only for the rest), `summary.json` records the config hash (a folder holds one job; the same
job resumes), the recorder is flushed `running` first and with the final status last, a stage
shows progress with an ETA, `--dry-run` prices the calls before any is made, and the summary
prices the calls made. `--batch` sends the calls of an `openai/` generator through the Batch API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aloe_bench.engine.session import RunStatus, config_hash, open_backends, record_run
from aloe_bench.errors import UserInputError, required
from aloe_bench.log.results import write_json_atomic
from aloe_bench.models.cost import Price, batch_discount, list_price
from aloe_bench.models.embeddings import get_embedder
from aloe_bench.models.roles import Role
from aloe_train.generation import RoleBinding, provenance, train_prompt
from aloe_train.multifaceted.collection import SPLIT_FILES, Rows, build_rows, write_rows
from aloe_train.multifaceted.instructions import load_instructions
from aloe_train.multifaceted.report import diversity, failures, format_summary
from aloe_train.multifaceted.stages import InstructionWork, SynthesisSettings, Synthesizer
from aloe_train.multifaceted.stats import STAGES, StageStats, new_stats
from aloe_train.multifaceted.taxonomy import Taxonomy, load_taxonomy

SUMMARY_FILE = "summary.json"
PROMPT_FILES = {
    "subdimensions": "mf_subdimensions.yaml",
    "preferences": "mf_preferences.yaml",
    "system": "mf_system.yaml",
    "response": "mf_response.yaml",
    "rubric": "mf_rubric.yaml",
}

STAGES_HELP = """stages (one engine run; every call cached, so re-running resumes):
  1 subdimensions  per instruction and dimension: subdimensions that fit the instruction
  2 preferences    per instruction and dimension: one preference (keyword: description) under each
                   subdimension; preference set j = the j-th preference of every dimension
  3 system         per preference set: a system message (then near-duplicates are dropped)
  4 response       per system message: the gold response (system message + instruction)
  5 rubric         held-out instructions only (--bench-instructions): one score rubric per dimension
writes in --output: sft.jsonl, dpo.jsonl (DPO and ORPO), rm.jsonl, bench.jsonl (with
--bench-instructions), summary.json (counts, failures by stage and cause, diversity, tokens, cost)"""


@dataclass
class MultifacetedDataConfig:
    instructions: str | None = field(
        default=None,
        metadata={
            "help": "instructions: a .jsonl/.json/.parquet file, a Hugging Face dataset (owner/name), or sample",
            "required": True,
            "metavar": "FILE|HUB_NAME",
        },
    )
    output: str | None = field(
        default=None,
        metadata={"help": "folder to write the collection into", "required": True, "metavar": "DIR"},
    )
    generator: str = field(
        default="embedded",
        metadata={"help": "backend spec of the generator (every stage)", "metavar": "SPEC"},
    )
    generator_args: str | None = field(
        default=None, metadata={"help": "generator backend arguments", "metavar": "K=V,..."}
    )
    column: str | None = field(
        default=None,
        metadata={"help": "the instruction column (default: instruction, else prompt)", "metavar": "NAME"},
    )
    split: str = field(default="train", metadata={"help": "split of a hub dataset", "metavar": "NAME"})
    revision: str | None = field(
        default=None, metadata={"help": "revision (commit, tag) of a hub dataset", "metavar": "REV"}
    )
    limit: int | None = field(default=None, metadata={"help": "use the first N instructions"})
    taxonomy: str | None = field(
        default=None,
        metadata={
            "help": "YAML of dimensions and seed subdimensions (default: the paper's four)",
            "metavar": "FILE",
        },
    )
    sets: int = field(default=3, metadata={"help": "preference sets (system messages) per instruction"})
    bench_instructions: int = field(
        default=0,
        metadata={
            "help": "hold out the last N instructions as bench.jsonl rows with rubrics (not in the training splits)"
        },
    )
    threshold: float = field(
        default=0.9,
        metadata={
            "help": "drop a system message whose cosine similarity to one kept for the same instruction exceeds this"
        },
    )
    embedder: str = field(
        default="auto",
        metadata={
            "help": "similarity: auto, st/<model>, minilm or tfidf (as persona growth)",
            "metavar": "NAME",
        },
    )
    retries: int = field(default=1, metadata={"help": "re-asks (new seed) of an unusable answer"})
    keep_truncated: bool = field(
        default=False,
        metadata={
            "help": "keep system messages and responses cut at the token limit (else dropped, counted)"
        },
    )
    temperature: float | None = field(
        default=None, metadata={"help": "generator temperature (default: the prompts', 1.0)"}
    )
    preference_max_new_tokens: int | None = field(
        default=None, metadata={"help": "token limit of stages 1-2 (default: the prompts')"}
    )
    system_max_new_tokens: int | None = field(default=None, metadata={"help": "default: the prompt's (320)"})
    response_max_new_tokens: int | None = field(
        default=None, metadata={"help": "default: the prompt's (1024)"}
    )
    rubric_max_new_tokens: int | None = field(default=None, metadata={"help": "default: the prompt's (400)"})
    seed: int = field(default=0, metadata={"help": "seed of every sampled call and of the pairing"})
    batch: bool = field(
        default=False,
        metadata={"help": "send the calls through the OpenAI Batch API (openai/ generators; half price)"},
    )
    dry_run: bool = field(
        default=False, metadata={"help": "print the calls and their cost (an upper bound); call nothing"}
    )
    price: str | None = field(
        default=None,
        metadata={
            "help": "generator price, dollars per million tokens (default: prices.yaml)",
            "metavar": "IN,OUT",
        },
    )
    cache: str | None = field(
        default=None, metadata={"help": "call cache file ('' = none, and no resume)", "metavar": "PATH"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace a collection made by a different job"})

    def validate(self) -> None:
        if not self.instructions:
            raise UserInputError("--instructions is required (a file, a hub dataset name, or sample)")
        if not self.output:
            raise UserInputError("--output is required (the folder to write the collection into)")
        if self.sets < 2:
            raise UserInputError("--sets must be at least 2 (a pair needs two system messages)")
        for name in ("bench_instructions", "retries"):
            if getattr(self, name) < 0:
                raise UserInputError(f"--{name.replace('_', '-')} cannot be negative")
        if self.limit is not None and self.limit < 1:
            raise UserInputError("--limit must be at least 1")
        if not -1.0 <= self.threshold <= 1.0:
            raise UserInputError("--threshold is a cosine similarity: between -1 and 1")
        if self.batch and not self.generator.startswith("openai/"):
            raise UserInputError(f"--batch needs an openai/ generator (got {self.generator}); drop --batch")

    def price_override(self) -> Price | None:
        if self.price is None:
            return None
        try:
            a, b = (float(x) for x in self.price.split(","))
        except ValueError:
            raise UserInputError(
                f"--price {self.price!r}: expected IN,OUT in dollars per million tokens, e.g. 2.5,10"
            ) from None
        return Price(a, b, "--price")


def role_bindings(config: MultifacetedDataConfig) -> dict[str, RoleBinding]:
    limits = {
        "subdimensions": config.preference_max_new_tokens,
        "preferences": config.preference_max_new_tokens,
        "system": config.system_max_new_tokens,
        "response": config.response_max_new_tokens,
        "rubric": config.rubric_max_new_tokens,
    }
    out = {}
    for stage in STAGES:
        prompt = train_prompt(PROMPT_FILES[stage])
        binding = RoleBinding.make(
            "generator",  # the flags are --generator/--generator-args whatever the stage
            config.generator,
            config.generator_args,
            max_new_tokens=limits[stage] or int(prompt.defaults["max_new_tokens"]),
            temperature=config.temperature
            if config.temperature is not None
            else prompt.defaults.get("temperature"),
            prompt=prompt,
        )
        out[stage] = replace(binding, name=f"mf_{stage}")
    return out


def _job_record(
    config: MultifacetedDataConfig,
    instructions: dict[str, Any],
    taxonomy: Taxonomy,
    bindings,
    embedder_name: str,
) -> dict[str, Any]:
    """What determines the collection (resuming into a folder requires the same)."""
    return {
        "kind": "multifaceted-data",
        "instructions": instructions,
        "taxonomy": taxonomy.record(),
        "sets": config.sets,
        "bench_instructions": config.bench_instructions,
        "threshold": config.threshold,
        "embedding": embedder_name,
        "retries": config.retries,
        "keep_truncated": config.keep_truncated,
        "seed": config.seed,
        "roles": {stage: b.record() for stage, b in bindings.items()},
    }


def _check_folder(out: Path, run_hash: str, overwrite: bool) -> None:
    """A folder holds one job: the same job resumes, a different one is refused (as run folders)."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--output {out} is a file; pass a folder")
    summary = out / SUMMARY_FILE
    if overwrite or not summary.is_file():
        if not overwrite and out.is_dir() and any((out / f).exists() for f in SPLIT_FILES.values()):
            raise UserInputError(
                f"{out} holds split files but no {SUMMARY_FILE}; pass another --output, or --overwrite"
            )
        return
    try:
        previous = json.loads(summary.read_text()).get("config_hash")
    except (OSError, json.JSONDecodeError, AttributeError):
        previous = None
    if previous != run_hash:
        raise UserInputError(
            f"{out} holds a different collection (config hash {previous} != {run_hash}); "
            "pass another --output, or --overwrite to replace it"
        )


@contextlib.asynccontextmanager
async def _roles(
    bindings: dict[str, RoleBinding], config: MultifacetedDataConfig, out: Path
) -> AsyncIterator[dict[str, Role]]:
    """The stage roles over the engine's pool and cache (one loaded model for all stages); with
    --batch, one Batch API backend around the generator, its state (batches.json) in `out`."""
    async with open_backends(config.cache) as run_engine:
        first = next(iter(bindings.values()))
        backend: Any = run_engine.pool.get(first.config.spec, first.config.args)
        closers = []
        if config.batch:
            from aloe_bench.models.batch import BatchBackend

            out.mkdir(parents=True, exist_ok=True)
            backend = BatchBackend(backend, out)
            closers.append(backend.aclose)
        try:
            yield {
                stage: Role(b.name, backend, run_engine.cache, prompt_version=b.template().tag)
                for stage, b in bindings.items()
            }
        finally:
            for close in closers:
                await close()


@dataclass
class _Recorder:
    """summary.json (always) and the split files (once every stage is done), atomically."""

    out: Path
    summary: dict[str, Any]
    build: Any  # () -> (Rows, extra summary fields) | None before the stages are done
    stats: dict[str, StageStats]

    def flush(self, status: RunStatus) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        # the stages so far (what a stopped or failed run got to, and what it dropped)
        self.summary["stages"] = {s: self.stats[s].to_dict() for s in STAGES}
        built = self.build() if status in ("complete",) else None
        if built is not None:
            rows, extra = built
            extra["counts"].update(write_rows(self.out, rows, with_bench=extra["with_bench"]))
            self.summary.update({k: v for k, v in extra.items() if k != "with_bench"})
        self.summary["status"] = status
        self.summary["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_json_atomic(self.out / SUMMARY_FILE, self.summary)
        return self.summary


async def _build(config: MultifacetedDataConfig, progress: bool | None) -> dict[str, Any]:
    config.validate()
    out = Path(required(config.output, "--output")).expanduser()
    instruction_set = load_instructions(
        required(config.instructions, "--instructions"),
        column=config.column,
        split=config.split,
        revision=config.revision,
        limit=config.limit,
    )
    if config.bench_instructions >= len(instruction_set.items):
        raise UserInputError(
            f"--bench-instructions {config.bench_instructions} leaves no training instruction "
            f"(there are {len(instruction_set.items)}); hold out fewer"
        )
    taxonomy = load_taxonomy(config.taxonomy)
    bindings = role_bindings(config)
    price = config.price_override() or list_price(config.generator)
    if config.dry_run:
        from aloe_train.multifaceted.dry_run import estimate

        return estimate(config, instruction_set.items, taxonomy, bindings, price)
    embedder = get_embedder(config.embedder)
    record = _job_record(config, instruction_set.record(), taxonomy, bindings, embedder.name)
    run_hash = config_hash(record)
    _check_folder(out, run_hash, config.overwrite)
    stats = new_stats()
    works = [InstructionWork(i) for i in instruction_set.items]
    for w in works[len(works) - config.bench_instructions :] if config.bench_instructions else []:
        w.held_out = True
    interactive = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter()
    done = {"stages": False}
    summary: dict[str, Any] = {
        "config_hash": run_hash,
        "config": record,
        "instructions": instruction_set.record(),
        "counts": {"instructions": len(works)},
        "stages": {},
        **provenance(),
    }
    async with _roles(bindings, config, out) as roles:

        def build() -> tuple[Rows, dict[str, Any]] | None:
            if not done["stages"]:
                return None
            rows = build_rows(works, config.seed)
            return rows, _figures(config, works, rows, stats, roles, taxonomy, embedder, price, started)

        synth = Synthesizer(
            roles,
            bindings,
            taxonomy,
            SynthesisSettings(
                config.sets,
                config.retries,
                config.seed,
                config.keep_truncated,
                config.threshold,
                interactive,
                quiet=progress is False,
            ),
            stats,
            embedder,
        )

        recorder = _Recorder(out, summary, build, stats)

        async def work() -> None:
            await synth.subdimensions(works)
            _fail_if_unreachable(stats["subdimensions"])
            recorder.flush("running")
            await synth.preferences(works)
            recorder.flush("running")
            await synth.systems(works)
            recorder.flush("running")
            await synth.responses(works)
            if config.bench_instructions:
                recorder.flush("running")
                await synth.rubrics(works)
            done["stages"] = True

        return await record_run(recorder, work, status=lambda: "complete")


def _fail_if_unreachable(stats: StageStats) -> None:
    if stats.answers and stats.rejected.get("request_failed", 0) == stats.answers:
        raise UserInputError(f"every generator request failed; last: {stats.last_error}")


def _figures(
    config: MultifacetedDataConfig,
    works: list[InstructionWork],
    rows: Rows,
    stats: dict[str, StageStats],
    roles: dict[str, Role],
    taxonomy: Taxonomy,
    embedder: Any,
    price: Price | None,
    started: float,
) -> dict[str, Any]:
    usage = {stage: role.usage.to_dict() for stage, role in roles.items()}
    prompt_tokens = sum(s.prompt_tokens for s in stats.values())
    completion_tokens = sum(s.completion_tokens for s in stats.values())
    fresh_in = sum(u["prompt_tokens"] for u in usage.values())
    fresh_out = sum(u["completion_tokens"] for u in usage.values())
    discount = batch_discount() if config.batch else 1.0
    return {
        "with_bench": bool(config.bench_instructions),
        "counts": {
            "instructions": len(works),
            "held_out_instructions": sum(w.held_out for w in works),
            "instructions_with_rows": rows.instructions_with_rows,
            "instructions_without_pair": rows.instructions_without_pair,
            "preference_sets": sum(len(w.sets) for w in works),
            "system_messages": sum(s is not None for w in works for s in w.systems),
            "responses": sum(r is not None for w in works for r in w.responses),
            "sft_rows": len(rows.sft),
            "dpo_rows": len(rows.dpo),
            "rm_rows": len(rows.rm),
            "bench_rows": len(rows.bench) if config.bench_instructions else None,
            "bench_rows_without_rubrics": rows.bench_rows_without_rubrics,
        },
        "stages": {s: stats[s].to_dict() for s in STAGES},
        "failures": failures(stats),
        "diversity": diversity(rows, taxonomy, embedder, config.seed),
        "usage": usage,
        "tokens": {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "per_instruction": round((prompt_tokens + completion_tokens) / len(works), 1) if works else None,
            "note": "every answer read, cached ones included (what the collection cost to make)",
        },
        "cost": {
            "spec": config.generator,
            "price": price and {"input": price.input, "output": price.output, "source": price.source},
            "batch": config.batch,
            "usd": price.cost(fresh_in, fresh_out, discount=discount) if price else None,
            "note": "this invocation's calls (cached answers cost nothing)",
        },
        "elapsed_s": round(time.perf_counter() - started, 2),
    }


def build_collection(config: MultifacetedDataConfig, progress: bool | None = None) -> dict[str, Any]:
    """Build (or resume building) the collection; returns summary.json's content (or, with
    --dry-run, the estimate)."""
    return asyncio.run(_build(config, progress))


def summary_text(result: dict[str, Any], config: MultifacetedDataConfig) -> str:
    if config.dry_run:
        from aloe_train.multifaceted.dry_run import format_estimate

        return format_estimate(result)
    return format_summary(result, str(config.output))
