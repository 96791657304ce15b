"""`aloe-train`: grow personas, generate preference conversations, train (SFT, DPO), run it all.

Each subcommand's flags are generated from its config dataclass (config_cli), so the CLI and the
Python API take the same settings. Exit codes: 0 done; 2 bad input (one line, no traceback);
3 finished, but some conversations failed (listed in the .meta.json); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from aloe_bench.cli.main import dispatch, parse_with_suggestions
from aloe_bench.errors import EXIT_FAILED_CONVERSATIONS
from aloe_train import __version__
from aloe_train.config_cli import add_config_arguments, config_from_args

EPILOG = """examples (offline, the embedded model in every role):
  aloe-train personas --kind profile --target 40 --output pools/profiles.jsonl
  aloe-train conversations --personas demo --passes 1 --turns 2 --output data/convs.jsonl
  aloe-train sft --model embedded --data data/convs.jsonl --output ckpt/sft --max-steps 2 --gradient-accumulation-steps 1
  aloe-train dpo --model embedded --data data/convs.jsonl --output ckpt/dpo --max-steps 2 --per-device-train-batch-size 2 --gradient-accumulation-steps 1
  aloe-train pipeline --model embedded --personas demo --passes 1 --turns 2 --max-steps 2 \\
      --eval-personas demo --eval-limit 3 --eval-turns 2 --output work/
multi-GPU training: accelerate launch -m aloe_train.cli sft ...   (see the README)"""


def _personas(args: argparse.Namespace) -> int:
    from aloe_train.personas import PersonaGrowthConfig, grow_pool, summary

    config = config_from_args(PersonaGrowthConfig, args)
    meta = grow_pool(config, progress=False if args.no_progress else None)
    print(summary(meta, str(config.output)))
    return 0


def _conversations(args: argparse.Namespace) -> int:
    from aloe_train.conversations import ConversationConfig, generate_conversations, summary

    config = config_from_args(ConversationConfig, args)
    meta = generate_conversations(config, progress=False if args.no_progress else None)
    print(summary(meta, str(config.output)))
    return EXIT_FAILED_CONVERSATIONS if meta["failed"] else 0


def _multifaceted_data(args: argparse.Namespace) -> int:
    from aloe_train.multifaceted.run import MultifacetedDataConfig, build_collection, summary_text

    config = config_from_args(MultifacetedDataConfig, args)
    result = build_collection(config, progress=False if args.no_progress else None)
    print(summary_text(result, config))
    return 0


def _main_process() -> bool:
    """Under `accelerate launch`/`torchrun` only rank 0 reports."""
    return os.environ.get("RANK", "0") == "0"


def _sft(args: argparse.Namespace) -> int:
    from aloe_train.train import SFTRunConfig, run_sft, summary

    config = config_from_args(SFTRunConfig, args)
    record = run_sft(config)
    if _main_process():
        print(summary(record, str(config.output)))
    return 0


def _dpo(args: argparse.Namespace) -> int:
    from aloe_train.train import DPORunConfig, run_dpo, summary

    config = config_from_args(DPORunConfig, args)
    record = run_dpo(config)
    if _main_process():
        print(summary(record, str(config.output)))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from aloe_train.pipeline import PipelineConfig, run_pipeline
    from aloe_train.report import format_board

    config = config_from_args(PipelineConfig, args)
    result = run_pipeline(config)
    print(format_board(result["board"]))
    print(f"comparison: {config.output}/comparison.csv")
    return 0


def _config_classes():
    # Imported here so that `aloe-train --help` stays fast; the heavy imports happen in the commands.
    from aloe_train.conversations import ConversationConfig
    from aloe_train.multifaceted.run import STAGES_HELP, MultifacetedDataConfig
    from aloe_train.personas import PersonaGrowthConfig
    from aloe_train.pipeline import PipelineConfig
    from aloe_train.train import DPORunConfig, SFTRunConfig

    return {
        "personas": (PersonaGrowthConfig, _personas, "grow a profile or personality pool from seeds"),
        "conversations": (
            ConversationConfig,
            _conversations,
            "generate tree-structured preference conversations",
        ),
        "multifaceted-data": (
            MultifacetedDataConfig,
            _multifaceted_data,
            "build a Multifaceted Collection (stated preferences) for any instructions",
            STAGES_HELP,
        ),
        "sft": (SFTRunConfig, _sft, "supervised fine-tuning (TRL) on the preferred replies"),
        "dpo": (DPORunConfig, _dpo, "DPO (TRL) on preferred vs rejected replies"),
        "pipeline": (
            PipelineConfig,
            _pipeline,
            "personas -> conversations -> SFT/DPO -> evaluation -> comparison",
        ),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aloe-train",
        description="Train chat models to adapt to the person they talk to (ALOE, SPEC 1.4-1.5).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aloe-train {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log backend and trainer activity")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (cls, func, help_text, *epilog) in _config_classes().items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog[0] if epilog else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_config_arguments(p, cls, title=f"{name} settings ({cls.__name__})")
        if name in ("personas", "conversations", "multifaceted-data"):
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # A misspelt flag: the subcommand's usage and the closest real flag (exit 2).
    args, _ = parse_with_suggestions(parser, list(sys.argv[1:] if argv is None else argv))
    return dispatch(args, parser, "aloe-train", quiet=("datasets",))


if __name__ == "__main__":
    sys.exit(main())
