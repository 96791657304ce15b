"""`aloe-bench run`: score a model on ALOE (or resume a run)."""

from __future__ import annotations

import argparse
import sys

from aloe_bench.commands._common import add_role_arguments
from aloe_bench.config import RunConfig
from aloe_bench.tasks import build_run_config, load_task_settings

EXAMPLES = """examples:
  aloe-bench run --task aloe_demo --model embedded                 # offline, a few minutes on a CPU
  aloe-bench run --task aloe_paper --model hf/meta-llama/Meta-Llama-3-8B-Instruct   # the paper's setup
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
        help="a task of the suite (aloe_demo, aloe_paper, aloe_history, ...) or a task YAML",
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
        "--judge-reasks", type=int, metavar="N", help="re-asks for an unreadable judge answer (default 2)"
    )
    g.add_argument(
        "--concurrency", type=int, metavar="N", help="requests in flight per API backend (default 32)"
    )
    o = p.add_argument_group("output")
    o.add_argument("--output", metavar="DIR", help="run directory (default runs/<task or personas>__<model>)")
    o.add_argument(
        "--cache", metavar="PATH", help="call cache file (default ~/.cache/aloe-bench/calls.sqlite)"
    )
    o.add_argument("--no-cache", action="store_true", help="no call cache (and so no resume)")
    o.add_argument("--overwrite", action="store_true", help="replace a different run already in --output")
    o.add_argument("--no-progress", action="store_true", help="plain log lines instead of progress bars")
    p.set_defaults(func=main)


def build_config(args: argparse.Namespace) -> RunConfig:
    task_name, task = (None, {})
    if args.task:
        task_name, task = load_task_settings(args.task)
    return build_run_config(
        task_name, task, args, output=args.output, cache="" if args.no_cache else args.cache
    )


def main(args: argparse.Namespace) -> int:
    from aloe_bench.cli import EXIT_FAILED_CONVERSATIONS
    from aloe_bench.report import summary_table
    from aloe_bench.runner import run_benchmark

    config = build_config(args)
    if config.judge.spec == "embedded":
        print(
            "note: the embedded 135M model is the judge: it proves the pipeline runs offline, but it cannot judge. "
            "For real scores pass a capable judge, e.g. --judge openai/gpt-4o-mini-2024-07-18.",
            file=sys.stderr,
        )
    out, results = run_benchmark(
        config, overwrite=args.overwrite, progress=False if args.no_progress else None
    )
    print(summary_table(results, str(out)))
    failed = results["metrics"].get("failed", 0)
    if failed:
        print(
            f"aloe-bench: {failed} conversation(s) failed; their reasons are in {out}/results.json",
            file=sys.stderr,
        )
        return EXIT_FAILED_CONVERSATIONS
    return 0
