"""`aloe-bench`: the command line. Each subcommand lives in its own module under `commands/`.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 3 the run finished but some
conversations failed (they are listed in results.json); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from aloe_bench import __version__
from aloe_bench.errors import AloeError

COMMANDS = [
    "run",
    "judge",
    "personas",
    "leaderboard",
    "compare",
    "plot",
    "gap",
    "view",
    "audit",
    "label",
    "reliability",
    "lm_eval",
]

EXIT_USER_ERROR = 2
EXIT_FAILED_CONVERSATIONS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aloe-bench",
        description="ALOE bench: does a chat model learn the person it is talking to?",
    )
    parser.add_argument("--version", action="version", version=f"aloe-bench {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log backend activity (retries, loading)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"aloe_bench.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aloe_bench.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    for name, subparser in sub.choices.items():
        if name != "lm_eval":  # lm-eval's own arguments pass through untouched
            subparser.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `aloe-bench lm-eval ...` hands its arguments to lm-eval untouched.
    if argv and argv[0] == "lm-eval":
        argv[0] = "lm_eval"
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "accepts_extra", False):
        args.extra = extra
    return dispatch(args, parser, "aloe-bench")


def dispatch(
    args: argparse.Namespace, parser: argparse.ArgumentParser, prog: str, quiet: tuple[str, ...] = ()
) -> int:
    """Run a parsed subcommand the way both console scripts do: logging quiet unless `-v`, bad
    input as one line on stderr with exit code 2, Ctrl-C as a hint to resume."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        for noisy in ("httpx", "openai", "transformers", *quiet):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except AloeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
