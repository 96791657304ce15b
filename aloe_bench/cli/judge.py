"""`aloe-bench judge RUN_DIR --judge SPEC [--protocol NAME]`: judge a finished run again."""

from __future__ import annotations

import argparse

from aloe_bench.cli._common import add_role_arguments, judge_panel

EXAMPLES = """examples:
  aloe-bench judge runs/aloe_paper__hf_my-model --judge openai/gpt-4o-2024-08-06
  aloe-bench judge runs/aloe_demo__embedded --judge embedded --protocol aloe-history --output runs/rejudged
  aloe-bench judge runs/aloe_demo__embedded --judge embedded --controls swap   # persona-swap validity control
  aloe-bench judge RUN --judge openai/gpt-4o-mini --judge openai/gpt-4o@temperature=0.7 --judge-repeats 3
The conversations are not regenerated: the model under test and the simulated user make no calls.
The results go to a new directory (default: a sibling named after the judge and protocol); the
original run is left untouched. Re-running the same command resumes through the call cache."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="judge a finished run again (another judge or protocol) into a new run directory",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to judge again")
    add_role_arguments(p, "judge")
    p.add_argument(
        "--protocol", metavar="NAME", help="judge protocol (default: the run's): aloe-v1 or aloe-history"
    )
    p.add_argument(
        "--judge-reasks", type=int, metavar="N", help="re-asks for an unreadable answer (default: the run's)"
    )
    p.add_argument(
        "--judge-repeats",
        type=int,
        default=1,
        metavar="R",
        help="judge every turn R times per judge (distinct seeds; they differ only with a sampling judge)",
    )
    p.add_argument(
        "--controls",
        metavar="NAME",
        help="validity controls: swap = also score every reply against another persona of the set",
    )
    p.add_argument(
        "--output", metavar="DIR", help="new run directory (default: RUN_DIR__judge-<judge>__<protocol>)"
    )
    p.add_argument(
        "--cache", metavar="PATH", help="call cache file (default ~/.cache/aloe-bench/calls.sqlite)"
    )
    p.add_argument("--no-cache", action="store_true", help="no call cache (and so no resume)")
    p.add_argument("--overwrite", action="store_true", help="replace a different run already in --output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--batch",
        action="store_true",
        help="judge through the OpenAI Batch API (openai/ judges; half price; resumable by batch id)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.engine.task_api import task_of_run
    from aloe_bench.engine.task_files import controls_setting
    from aloe_bench.errors import EXIT_FAILED_CONVERSATIONS, UserInputError
    from aloe_bench.reports.run_summary import summary_table
    from aloe_bench.reports.viewer import report_after_command

    task = task_of_run(args.run_dir)  # the run's own task re-judges it
    if task.rejudge is None:
        raise UserInputError(
            f"{args.run_dir} is a {task.title} run, whose task has no re-judge; "
            "run the task again with --judge to score it with another judge"
        )
    judges = judge_panel(args, {}, None)
    out, results = task.rejudge(
        args.run_dir,
        judges,
        repeats=args.judge_repeats,
        controls=controls_setting(None, {}, args),
        protocol=args.protocol,
        output=args.output,
        reasks=args.judge_reasks,
        cache="" if args.no_cache else args.cache,
        progress=False if args.no_progress else None,
        overwrite=args.overwrite,
        batch=args.batch,
    )
    print(summary_table(results, str(out)))
    report_after_command(out)
    return EXIT_FAILED_CONVERSATIONS if results.metrics.failed else 0
