"""`aloe-bench embedded-path`: print the folder of the embedded model's checkpoint (converting it on
first use), for tools that take a checkpoint path, e.g. lm-eval's `--model_args pretrained=PATH`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embedded-path",
        help="print the embedded model's checkpoint folder (for lm-eval's pretrained=PATH)",
        description=__doc__,
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.models.backends.embedded import embedded_checkpoint

    print(embedded_checkpoint())
    return 0
