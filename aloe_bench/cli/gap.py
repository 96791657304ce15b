"""`aloe-bench gap IMPLICIT_RUN EXPLICIT_RUN`: the inference gap, per turn and overall."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  aloe-bench run --task aloe_demo --model embedded --output runs/implicit
  aloe-bench run --task aloe_explicit_demo --model embedded --output runs/explicit
  aloe-bench gap runs/implicit runs/explicit
The two runs must differ only in persona disclosure (same model, judge, simulated user, personas, turns)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gap",
        help="the inference gap: a hidden-persona run vs the same run with the persona stated",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("implicit", metavar="IMPLICIT_RUN", help="run directory of the hidden-persona run")
    p.add_argument("explicit", metavar="EXPLICIT_RUN", help="run directory of the stated-persona run")
    p.add_argument(
        "--n-bootstrap", type=int, default=2000, metavar="B", help="bootstrap resamples (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.errors import UserInputError
    from aloe_bench.log.results import load_run, write_json_atomic
    from aloe_bench.reports.gap import format_gap, inference_gap

    if args.n_bootstrap < 0:
        raise UserInputError(f"--n-bootstrap cannot be negative (got {args.n_bootstrap})")
    result = inference_gap(
        load_run(args.implicit), load_run(args.explicit), n_bootstrap=args.n_bootstrap, seed=args.seed
    )
    print(format_gap(result))
    if args.json:
        write_json_atomic(Path(args.json), result)
    return 0
