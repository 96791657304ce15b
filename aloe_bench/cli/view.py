"""`aloe-bench view RUN [RUN...] [--output FILE.html]`: a self-contained HTML report of runs."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  aloe-bench view runs/aloe_demo__embedded                      # writes runs/aloe_demo__embedded/report.html
  aloe-bench view runs/base runs/sft runs/dpo --output compare.html   # curves overlaid, personas side by side
The page is one file (inline style, script and data; nothing is fetched): open it from disk in any browser.
Several runs are each compared with the first, paired by persona, as `aloe-bench compare` does."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="write a self-contained HTML report of one run, or a comparison of several",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs", metavar="RUN_DIR", nargs="+", help="run directories (the --output of aloe-bench run)"
    )
    p.add_argument(
        "--output",
        metavar="FILE.html",
        help="where to write the page (default for one run: RUN_DIR/report.html; required for several)",
    )
    p.add_argument(
        "--label",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="run names on the page, in the order of RUN_DIRs",
    )
    p.add_argument(
        "--n-bootstrap",
        type=int,
        default=None,
        metavar="N",
        help="resamples for the paired comparison (default 2000)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the paired comparison's bootstrap (default 0)"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aloe_bench.errors import UserInputError
    from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
    from aloe_bench.reports.viewer import REPORT_FILE, build_report

    if args.output is None:
        if len(args.runs) > 1:
            raise UserInputError(
                f"{len(args.runs)} runs need --output FILE.html (where to write the comparison page)"
            )
        output = Path(args.runs[0]) / REPORT_FILE
    else:
        output = Path(args.output)
        if output.suffix.lower() not in (".html", ".htm"):
            raise UserInputError(f"--output {args.output} must end in .html (the page is one HTML file)")
        if output.is_dir():
            raise UserInputError(
                f"--output {args.output} is a directory; name the file, e.g. {output}/report.html"
            )
    n_bootstrap = DEFAULT_BOOTSTRAP if args.n_bootstrap is None else args.n_bootstrap
    if n_bootstrap < 1:
        raise UserInputError(f"--n-bootstrap must be at least 1 (got {n_bootstrap})")
    path = build_report(args.runs, output, args.label, n_bootstrap=n_bootstrap, seed=args.seed)
    print(f"wrote {path}")
    return 0
