"""`aloe-bench leaderboard RUN_DIR...`: one row per run, sorted by AVG, flagged where setups differ."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """examples:
  aloe-bench leaderboard runs/*                                   # Markdown on stdout
  aloe-bench leaderboard runs/* --output board.csv                # the format follows the suffix
  aloe-bench leaderboard runs/* --baseline runs/base --format latex
  aloe-bench leaderboard runs/mine --reported leaderboard/reported # beside published rows, by setup
  aloe-bench leaderboard --publish leaderboard                    # regenerate the project's board"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="a table of runs (AVG, AL, IR with CIs), optionally against a baseline",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs", metavar="RUN_DIR", nargs="*", help="run directories (the --output of aloe-bench run)"
    )
    p.add_argument(
        "--format",
        choices=["md", "csv", "latex", "html"],
        help="table format (default: from --output, else md)",
    )
    p.add_argument("--output", metavar="FILE", help="write the table here instead of stdout")
    p.add_argument(
        "--baseline",
        metavar="RUN_DIR",
        help="add ΔAVG and a paired test (bootstrap CI, Wilcoxon p, Holm-corrected) against this run",
    )
    p.add_argument(
        "--floor",
        metavar="RUN_DIR",
        help="a control/generic run: with --ceiling, every row gets its headroom used "
        "(default: found among the runs by setup)",
    )
    p.add_argument(
        "--ceiling", metavar="RUN_DIR", help="an explicit-persona run (aloe_explicit*), with --floor"
    )
    p.add_argument(
        "--label", action="extend", nargs="+", metavar="NAME", help="row labels, in the order of RUN_DIRs"
    )
    p.add_argument(
        "--publish",
        metavar="BOARD",
        help="regenerate BOARD/README.md, BOARD/leaderboard.csv and BOARD/curves.png from BOARD/runs/*",
    )
    p.add_argument(
        "--reported",
        action="append",
        metavar="DIR",
        help="a folder of published results (*.yaml/*.json, format in docs/leaderboard.md) to show beside "
        "the runs, one table per task, grouped by setup (repeatable; with --publish: instead of BOARD/reported)",
    )
    p.add_argument(
        "--n-bootstrap", type=int, default=2000, metavar="N", help="resamples for paired CIs (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aloe_bench.errors import UserInputError
    from aloe_bench.log.results import write_text_atomic
    from aloe_bench.reports.leaderboard import build_leaderboard, format_for, publish, render
    from aloe_bench.reports.runinfo import load_runs

    if args.n_bootstrap < 1:
        raise UserInputError(f"--n-bootstrap must be at least 1 (got {args.n_bootstrap})")
    if args.publish:
        if args.runs or args.output or args.format or args.label:
            raise UserInputError(
                "--publish reads BOARD/runs/* and writes BOARD/README.md; drop RUN_DIRs, --output, --format and --label"
            )
        command = f"aloe-bench leaderboard --publish {args.publish}"
        if args.baseline:
            command += f" --baseline {args.baseline}"
        if args.reported and len(args.reported) > 1:
            raise UserInputError("--publish takes one --reported folder (the board's printed rows)")
        if args.reported:
            command += f" --reported {args.reported[0]}"
        for path in publish(
            Path(args.publish),
            baseline=args.baseline,
            command=command,
            n_bootstrap=args.n_bootstrap,
            seed=args.seed,
            reported=Path(args.reported[0]) if args.reported else None,
        ):
            print(f"wrote {path}")
        return 0

    if not args.runs and not args.reported:
        raise UserInputError(
            "no runs given; pass run directories (the --output of aloe-bench run), --reported DIR or --publish BOARD"
        )
    fmt = format_for(args.output, args.format)
    if args.reported:
        return _with_reported(args, fmt)
    if bool(args.floor) != bool(args.ceiling):
        raise UserInputError(
            "--floor and --ceiling go together (a control/generic run and an explicit-persona run)"
        )
    dirs = list(args.runs)
    for extra in (args.baseline, args.floor, args.ceiling):
        if extra and Path(extra).resolve() not in {Path(d).resolve() for d in dirs}:
            dirs.append(extra)  # labels stay aligned with the RUN_DIRs given
    infos = load_runs(dirs, args.label)

    def find(directory: str | None):
        target = Path(directory).resolve() if directory else None
        return next((i for i in infos if i.path.resolve() == target), None) if target else None

    board = build_leaderboard(
        infos,
        find(args.baseline),
        n_bootstrap=args.n_bootstrap,
        seed=args.seed,
        floor=find(args.floor),
        ceiling=find(args.ceiling),
    )
    table = render(board, fmt)
    # Warnings once: the Markdown/LaTeX/HTML table carries them, so they go to stderr only when
    # that table is not what the terminal shows (it went to a file, or CSV has no room for them).
    if args.output or fmt == "csv":
        for line in [*board.warnings, *(f"note: {n}" for n in board.notes)]:
            print(f"aloe-bench: {line}", file=sys.stderr)
    if args.output:
        write_text_atomic(Path(args.output), table)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    return 0


def _with_reported(args: argparse.Namespace, fmt: str) -> int:
    """Runs beside published rows: the runs' own table (when runs are given), then one table per task
    with runs and printed rows grouped by setup."""
    from pathlib import Path

    import pandas as pd

    from aloe_bench.engine.task_api import kinds
    from aloe_bench.errors import UserInputError
    from aloe_bench.log.published import load_reported
    from aloe_bench.log.results import write_text_atomic
    from aloe_bench.reports.leaderboard import build_leaderboard, render
    from aloe_bench.reports.reported import render_html, render_markdown, reported_frame_rows, task_tables
    from aloe_bench.reports.runinfo import load_runs

    if fmt == "latex":
        raise UserInputError(
            "--reported renders as md, html or csv; drop --format latex (or the .tex suffix)"
        )
    if args.floor or args.ceiling:
        raise UserInputError("--floor/--ceiling apply to the runs' own table; run it without --reported")
    files = [f for directory in args.reported for f in load_reported(directory, tasks=kinds())]
    dirs = list(args.runs)
    if args.baseline and Path(args.baseline).resolve() not in {Path(d).resolve() for d in dirs}:
        dirs.append(args.baseline)
    infos = load_runs(dirs, args.label) if dirs else []
    tables = task_tables(infos, files)
    if fmt == "csv":
        table = pd.DataFrame(reported_frame_rows(tables, kinds=("run", "reported"))).to_csv(index=False)
    else:
        parts = []
        if infos:
            base = next(
                (i for i in infos if args.baseline and i.path.resolve() == Path(args.baseline).resolve()),
                None,
            )
            board = build_leaderboard(infos, base, n_bootstrap=args.n_bootstrap, seed=args.seed)
            parts.append(render(board, fmt))
        parts.append(render_markdown(tables) if fmt == "md" else render_html(tables))
        table = "\n".join(parts)
    if args.output:
        write_text_atomic(Path(args.output), table)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    return 0
