"""`aloe-bench lm-eval <lm-eval's own arguments>`: lm-eval's CLI with the ALOE suite available.

It installs the generate_until interception, adds the ALOE tasks folder to lm-eval's include path
(next to any `--include_path` given) and hands over to lm-eval, which writes its usual
results_*.json and samples_*.jsonl.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """Run lm-evaluation-harness with the aloe-bench tasks on its include path: the groups
aloe (aloe_paper, aloe_history, aloe_demo, aloe_explicit, aloe_explicit_demo) and multifaceted_bench
(multifaceted, multifaceted_demo). Every argument is lm-eval's own, e.g.:

  aloe-bench lm-eval --model hf --model_args pretrained=PATH --tasks aloe_demo --limit 2 \\
      --output_path OUT --log_samples
  aloe-bench lm-eval --model hf --model_args pretrained=PATH --tasks multifaceted_demo --limit 2 \\
      --output_path OUT --log_samples

ALOE settings can be changed per run with --metadata '{"aloe": {"turns": 2, "cache": "calls.sqlite"}}'.
`aloe-bench lm-eval --help` shows lm-eval's help."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lm_eval",
        aliases=["lm-eval"],
        help="run lm-evaluation-harness with the aloe-bench tasks (takes lm-eval's own arguments)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,  # --help goes to lm-eval
    )
    p.set_defaults(func=main, accepts_extra=True)


def with_aloe_tasks(include_path: str | list[str] | None) -> str | list[str]:
    """lm-eval's include path plus the ALOE tasks folder (lm-eval's CLI takes one folder; its
    TaskManager takes a list)."""
    from aloe_bench.engine.task_files import tasks_dir

    ours = str(tasks_dir())
    given = (
        [] if not include_path else [include_path] if isinstance(include_path, str) else list(include_path)
    )
    if any(Path(p).resolve() == Path(ours) for p in given):
        return include_path  # type: ignore[return-value]
    return [*given, ours] if given else ours


def main(args: argparse.Namespace) -> int:
    from aloe_bench.models.backends.lmeval_backend import require_lm_eval

    require_lm_eval("aloe-bench lm-eval")
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    from aloe_bench.integrations.lm_eval import intercept

    intercept.install()
    setup_logging()
    cli = HarnessCLI()
    saved, sys.argv = sys.argv, ["lm-eval", *args.extra]
    try:
        namespace = cli.parse_args()  # reads sys.argv; inserts `run` when no subcommand is given
    finally:
        sys.argv = saved
    if hasattr(namespace, "include_path"):
        namespace.include_path = with_aloe_tasks(namespace.include_path)
    cli.execute(namespace)
    return 0
