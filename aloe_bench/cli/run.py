"""`aloe-bench run`: score a model on a task of the suite (or resume a run).

A task's `metadata.aloe.kind` names its definition (engine/task.py): `aloe` (default: simulated
user, K turns, per-turn judge), `multifaceted` (stated preferences, one reply per instance, rubric
grading) or another registered one. This command asks the definition; it has no branch per kind."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aloe_bench.cli._common import add_role_arguments
from aloe_bench.engine.task_api import BUILTIN, Task, get_task
from aloe_bench.engine.task_files import load_task_settings, task_kind
from aloe_bench.errors import UserInputError
from aloe_bench.models.generation_presets import apply_generation_preset
from aloe_bench.tasks.aloe.config import RunConfig

EXAMPLES = """examples:
  aloe-bench run --task aloe_demo --model embedded                 # offline, a few minutes on a CPU
  aloe-bench run --task aloe_paper --model hf/meta-llama/Meta-Llama-3-8B-Instruct   # the paper's setup
  aloe-bench run --task aloe_explicit_demo --model embedded        # the persona stated in the system message
  aloe-bench run --task multifaceted_demo --model embedded --limit 2   # Multifaceted Bench, shipped sample
  aloe-bench run --task multifaceted --data path/to/multifaceted_bench.parquet --model hf/... --judge openai/...
  aloe-bench run --task multifaceted --generation janus --model hf/kaist-ai/janus-7b   # Janus's sampling
  aloe-bench run --model hf/./my-checkpoint --simulator openai/gpt-4o-mini-2024-07-18 \\
      --judge openai/gpt-4o-mini-2024-07-18 --personas aloe --turns 10
Re-running the same command resumes: finished calls come from the call cache."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the ALOE benchmark on a model",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--task",
        metavar="NAME",
        help="a task of the suite (aloe_demo, aloe_paper, aloe_explicit, multifaceted, ...) or a task YAML",
    )
    add_role_arguments(p, "model")
    add_role_arguments(p, "simulator")
    add_role_arguments(p, "judge")
    g = p.add_argument_group("benchmark")
    g.add_argument(
        "--personas",
        metavar="NAME|PATH",
        help="aloe (official 100), demo (shipped, offline), or a JSONL file",
    )
    g.add_argument(
        "--data-dir", metavar="DIR", help="folder with the original ALOE files (no download needed)"
    )
    g.add_argument("--limit", type=int, metavar="N", help="only the first N personas")
    g.add_argument("--turns", type=int, metavar="K", help="turns per conversation (default 10)")
    g.add_argument(
        "--protocol", metavar="NAME", help="judge protocol: aloe-v1 (default, as the paper) or aloe-history"
    )
    g.add_argument("--seed", type=int, help="seed for every sampled call and the bootstrap (default 0)")
    g.add_argument(
        "--generation",
        metavar="PRESET",
        help="a named set of the model's generation settings that the task ships (multifaceted: janus = "
        "1024 new tokens, temperature 1.0, top-p 0.9, repetition penalty 1.03); flags override it",
    )
    g.add_argument(
        "--judge-reasks", type=int, metavar="N", help="re-asks for an unreadable judge answer (default 2)"
    )
    g.add_argument(
        "--concurrency", type=int, metavar="N", help="requests in flight per API backend (default 32)"
    )
    mf = p.add_argument_group("multifaceted tasks")
    mf.add_argument(
        "--data",
        metavar="PATH",
        help="Multifaceted Bench rows: a JSON/JSONL/Parquet file or folder, or `sample` (shipped); "
        "default: the Hugging Face dataset kaist-ai/Multifaceted-Bench",
    )
    t = p.add_argument_group("trust (judge panels, repeats, controls, noise floor)")
    t.add_argument(
        "--judge-repeats",
        type=int,
        metavar="R",
        help="judge every turn (rubric) R times per judge with distinct seeds; scores are averaged, "
        "their test-retest reliability reported (repeats differ only with a sampling judge)",
    )
    t.add_argument(
        "--controls",
        metavar="NAME[,NAME]",
        help="validity controls: swap = each judge also scores every reply against another persona",
    )
    t.add_argument(
        "--epochs",
        type=int,
        metavar="E",
        help="run every persona E times with distinct seeds (ids: persona, persona#e1, ...); "
        "CIs are clustered by persona",
    )
    o = p.add_argument_group("output")
    o.add_argument("--output", metavar="DIR", help="run directory (default runs/<task or personas>__<model>)")
    o.add_argument(
        "--cache", metavar="PATH", help="call cache file (default ~/.cache/aloe-bench/calls.sqlite)"
    )
    o.add_argument("--no-cache", action="store_true", help="no call cache (and so no resume)")
    o.add_argument("--overwrite", action="store_true", help="replace a different run already in --output")
    o.add_argument("--no-progress", action="store_true", help="plain log lines instead of progress bars")
    a = p.add_argument_group("simulated-user audit")
    a.add_argument(
        "--audit",
        action="store_true",
        help="audit the simulated user when the run ends (as `aloe-bench audit`; offline unless --auditor)",
    )
    from aloe_bench.cli.audit import add_audit_arguments

    add_audit_arguments(p)
    sc = p.add_argument_group("scale and cost")
    sc.add_argument(
        "--dry-run",
        action="store_true",
        help="print the planned calls and an estimate of tokens and cost per role, then exit (no model call)",
    )
    sc.add_argument(
        "--price",
        action="append",
        metavar="ROLE=IN,OUT",
        help="price of a role in $ per million prompt,completion tokens (overrides prices.yaml); repeatable",
    )
    sc.add_argument(
        "--judge-batch",
        action="store_true",
        help="send judge requests through the OpenAI Batch API (openai/ judges; half price, hours of latency)",
    )
    p.set_defaults(func=main)


def load_task(args: argparse.Namespace) -> tuple[str | None, dict[str, Any], Task]:
    """(task name, its settings, its definition); no --task means an ALOE run from flags alone."""
    task_name: str | None = None
    settings: dict[str, Any] = {}
    if getattr(args, "task", None):
        task_name, settings = load_task_settings(args.task)
    task, settings = task_kind(task_name, settings)
    settings = apply_generation_preset(task_name, settings, getattr(args, "generation", None))
    return task_name, settings, task


def _refuse_foreign_flags(args: argparse.Namespace, task_name: str | None, task: Task) -> None:
    """A flag that only other kinds of task take is refused, not ignored."""
    for kind in BUILTIN:
        other = get_task(kind)
        for dest, flag in other.flags.items():
            if dest not in task.flags and getattr(args, dest, None) is not None:
                what = f"{_a(task.title)} {task.title}"
                if task_name is None:
                    raise UserInputError(
                        f"{flag} is for {other.title} tasks; this run (no --task) is {what} run"
                    )
                raise UserInputError(
                    f"{flag} does not apply to task {task_name} ({task_name} is {what} task); "
                    f"{flag} is for {other.title} tasks"
                )


def _a(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


def build_config(args: argparse.Namespace, loaded: tuple | None = None) -> Any:
    """The config of the run the task and flags mean (its type is the task's)."""
    task_name, settings, task = loaded or load_task(args)
    _refuse_foreign_flags(args, task_name, task)
    return task.config(
        task_name, settings, args, output=args.output, cache="" if args.no_cache else args.cache
    )


def main(args: argparse.Namespace) -> int:
    from aloe_bench.errors import EXIT_FAILED_CONVERSATIONS
    from aloe_bench.models.cost import parse_price_flags
    from aloe_bench.reports.run_summary import run_summary
    from aloe_bench.reports.viewer import report_after_command

    loaded = load_task(args)
    task_name, _, task = loaded
    progress = False if args.no_progress else None
    if args.audit and task.audit is None:  # the task audits its own runs, or has nothing to audit
        raise UserInputError(f"--audit is for ALOE tasks: a {task.title} run has no simulated user")
    for flag, given, option in (
        ("--dry-run", args.dry_run, "dry_run"),
        ("--judge-batch", args.judge_batch, "judge_batch"),
        ("--price", args.price, "price"),
    ):
        if given and option not in task.supports:
            raise UserInputError(f"{flag} is for ALOE tasks for now; drop it for task {task_name}")
    config = build_config(args, loaded)
    prices = parse_price_flags(args.price)
    if args.judge_batch:  # only tasks that support it get here
        if len(config.judges) > 1:
            raise UserInputError("--judge-batch takes one judge for now; drop it or the extra --judge")
        _check_batch_judge(config.judge.spec)
    if args.dry_run:
        return _dry_run(config, prices, args.judge_batch)
    options = {"prices": prices, "judge_batch": args.judge_batch} if "price" in task.supports else {}
    prepared = task.prepare(config, overwrite=args.overwrite, **options)  # every check, before the note
    judge = getattr(config, "judge", None)  # a task may score by rule, with no judge at all
    if judge is not None:
        _warn_embedded_judge(judge.spec)
        _warn_greedy_repeats(config)
    audit = _audit_options(args)  # bad audit flags fail before the run, not after it
    if task.plan is not None:
        _announce(task.plan(config, prepared.items))
    results = prepared.execute(progress=progress)
    out = prepared.out
    if audit is not None and task.audit is not None:  # `--audit` (refused above for a task without one)
        results = task.audit(out, audit)
    print((task.summary or run_summary)(results, str(out)))
    report_after_command(out)
    failed = results.metrics.failed
    if failed:
        print(
            f"aloe-bench: {failed} {task.item}(s) failed; their reasons are in {out}/results.json",
            file=sys.stderr,
        )
        return EXIT_FAILED_CONVERSATIONS
    return 0


def _audit_options(args: argparse.Namespace):
    from aloe_bench.cli.audit import audit_options

    options = audit_options(args)
    if not args.audit:
        if options.auditor is not None or args.facts != "clauses":
            raise UserInputError("--auditor and --facts set up the simulated-user audit: add --audit")
        return None
    options.validate()
    return options


def _announce(plan: str) -> None:
    """What will happen (one line), and a warning when other processes already load the cores."""
    from aloe_bench.engine.progress import cpu_contention

    print(plan, file=sys.stderr)
    busy = cpu_contention()
    if busy:
        print(busy, file=sys.stderr)


def _dry_run(config: RunConfig, prices: dict, judge_batch: bool) -> int:
    from aloe_bench.datasets.personas import load_persona_set
    from aloe_bench.tasks.aloe.dry_run import estimate_run, format_estimate

    config.validate()
    personas = load_persona_set(config.personas, config.data_dir).limit(config.limit)
    print(format_estimate(estimate_run(config, personas, prices, judge_batch=judge_batch)))
    return 0


def _check_batch_judge(spec: str) -> None:
    """Only OpenAI's API (or a server with its files and batches endpoints) has a Batch API."""
    from aloe_bench.models.backends import normalize_spec

    if not normalize_spec(spec).startswith("openai/"):
        raise UserInputError(f"--judge-batch needs an openai/ judge (got {spec}); drop --judge-batch")


def _warn_embedded_judge(spec: str) -> None:
    if spec == "embedded":
        print(
            "note: the embedded 135M model is the judge: it proves the pipeline runs offline, but it cannot judge. "
            "For real scores pass a capable judge, e.g. --judge openai/gpt-4o-mini-2024-07-18.",
            file=sys.stderr,
        )


def _warn_greedy_repeats(config: RunConfig) -> None:
    """Repeats differ only through sampling: at temperature 0 they are the same call R times."""
    if config.judge_repeats > 1:
        greedy = [j.spec for j in config.judges if j.temperature == 0]
        if greedy:
            print(
                f"note: --judge-repeats {config.judge_repeats} with temperature 0 for {', '.join(greedy)}: "
                "greedy repeats give identical answers (test-retest alpha 1 by construction); "
                "set --judge-temperature > 0 to measure the judge's own noise",
                file=sys.stderr,
            )
