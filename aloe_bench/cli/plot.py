"""`aloe-bench plot RUN_DIR... --output FILE`: per-turn alignment curves with 95% bootstrap bands."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  aloe-bench plot runs/base runs/finetuned --output curves.png
  aloe-bench plot runs/* --output curves.pdf --normalized        # N-AL(k), 0-1
  aloe-bench plot runs/mine --reported leaderboard/reported --output curves.png  # printed curves dashed"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="plot AL(k) per turn for runs, with 95%% bootstrap bands",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs", metavar="RUN_DIR", nargs="+", help="run directories (the --output of aloe-bench run)"
    )
    p.add_argument("--output", required=True, metavar="FILE", help="image file: .png, .svg or .pdf")
    p.add_argument("--normalized", action="store_true", help="plot N-AL(k) (min-max normalised, 0-1)")
    p.add_argument(
        "--label", action="extend", nargs="+", metavar="NAME", help="legend labels, in the order of RUN_DIRs"
    )
    p.add_argument(
        "--reported",
        action="append",
        metavar="DIR",
        help="overlay the printed curves of these published results (docs/leaderboard.md), dashed",
    )
    p.add_argument("--title", help="figure title (default: says what is plotted)")
    p.add_argument("--dpi", type=int, default=200, help="resolution of a .png (default 200)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.errors import UserInputError
    from aloe_bench.reports.plot import image_format, plot_curves
    from aloe_bench.reports.runinfo import load_runs

    image_format(args.output)  # a bad file name fails before any run is read
    if args.dpi < 10:
        raise UserInputError(f"--dpi must be at least 10 (got {args.dpi})")
    infos = load_runs(args.runs, args.label)
    reported = None
    if args.reported:
        from aloe_bench.engine.task_api import kinds
        from aloe_bench.log.published import load_reported, reported_rows

        files = [f for directory in args.reported for f in load_reported(directory, tasks=kinds())]
        reported = reported_rows(files)
    path = plot_curves(
        infos, args.output, normalized=args.normalized, title=args.title, dpi=args.dpi, reported=reported
    )
    print(f"wrote {path}")
    return 0
