"""`aloe-bench`: the command line. Each subcommand lives in its own module under `commands/`.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback); 3 the run finished but some
conversations failed (they are listed in results.json); 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys

from aloe_bench import __version__
from aloe_bench.errors import EXIT_USER_ERROR, AloeError

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
    "embedded_path",
]


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
            module = importlib.import_module(f"aloe_bench.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"aloe_bench.cli.{name}":
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
    args, extra = parse_with_suggestions(parser, argv)
    if getattr(args, "accepts_extra", False):
        args.extra = extra
    return dispatch(args, parser, "aloe-bench")


def _subparser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser | None:
    """The innermost (sub)command's parser named by the arguments (`label export` -> export's)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for i, arg in enumerate(argv):
                if arg in action.choices:
                    chosen = action.choices[arg]
                    return _subparser(chosen, argv[i + 1 :]) or chosen
                if not arg.startswith("-"):
                    return None
    return None


def parse_with_suggestions(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[argparse.Namespace, list[str]]:
    """parse_known_args, but an unknown flag exits 2 with the usage of the subcommand it was given
    to (argparse shows the top-level one) and the closest real flag: `--modle` -> `--model`. Checked
    before parsing, so a misspelt required flag is named as misspelt, not as missing."""
    target = _subparser(parser, argv) or parser
    passthrough = target.get_default("accepts_extra")  # lm-eval's own flags go through untouched
    known = [s for a in target._actions for s in a.option_strings]
    unknown, hints = [], []
    for arg in argv if not passthrough else []:
        flag = arg.split("=", 1)[0]
        if not flag.startswith("-") or flag == "-" or _is_number(flag):
            continue
        if not any(k == flag or (flag.startswith("--") and k.startswith(flag)) for k in known):
            unknown.append(flag)
            shown = [k for k in known if k.startswith("--")] if flag.startswith("--") else known
            close = closest_flag(flag, shown)
            if close:
                hints.append(f"did you mean {close}?" if len(unknown) == 1 else f"{flag}: {close}?")
    if unknown:
        target.error(
            f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")
        )
    args, extra = parser.parse_known_args(argv)
    if extra and not passthrough:
        target.error(f"unrecognized arguments: {' '.join(extra)}")
    return args, extra


def closest_flag(flag: str, known: list[str]) -> str | None:
    """The real flag a typo most likely meant: fewest edits (a swap of two neighbours is one edit,
    the commonest typo), then the same length, then difflib's similarity; None when nothing is near."""

    def edits(a: str, b: str) -> int:  # optimal string alignment distance
        d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
                if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        return d[-1][-1]

    limit = max(2, len(flag.lstrip("-")) // 3)
    scored = [
        (edits(flag, k), abs(len(k) - len(flag)), -difflib.SequenceMatcher(None, flag, k).ratio(), k)
        for k in known
    ]
    best = min(scored, default=None)
    return best[3] if best and best[0] <= limit else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# Libraries that print their own log lines (a stderr handler of their own): propagating them to the
# root handler too printed each line twice (huggingface_hub's download retries, for one).
SELF_LOGGING_LIBRARIES = ("huggingface_hub",)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in SELF_LOGGING_LIBRARIES:
        library = logging.getLogger(name)
        if library.handlers:
            library.propagate = False


def dispatch(
    args: argparse.Namespace, parser: argparse.ArgumentParser, prog: str, quiet: tuple[str, ...] = ()
) -> int:
    """Run a parsed subcommand the way both console scripts do: logging quiet unless `-v`, bad
    input as one line on stderr with exit code 2, Ctrl-C as a hint to resume."""
    configure_logging(args.verbose)
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
