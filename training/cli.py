"""`aloe-train`: grow personas, generate preference conversations, train (SFT, DPO), run it all.

Each subcommand's flags are generated from its config dataclass (config_cli), so the CLI and the
Python API take the same settings. Exit codes: 0 done; 2 bad input (one line, no traceback);
3 finished, but some conversations failed (listed in the .meta.json); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from aloe_bench.cli.main import closest_flag, dispatch, parse_with_suggestions
from aloe_bench.errors import EXIT_FAILED_CONVERSATIONS
from aloe_train import __version__
from aloe_train.config_cli import add_config_arguments, config_from_args

EPILOG = """examples (offline, the embedded model in every role):
  aloe-train personas --kind profile --target 40 --output pools/profiles.jsonl
  aloe-train conversations --personas demo --passes 1 --turns 2 --output data/convs.jsonl
  aloe-train sft --model embedded --data data/convs.jsonl --output ckpt/sft --max-steps 2 --gradient-accumulation-steps 1
  aloe-train dpo --model embedded --data data/convs.jsonl --output ckpt/dpo --max-steps 2 --per-device-train-batch-size 2 --gradient-accumulation-steps 1
  aloe-train sft --preset janus --model hf/mistralai/Mistral-7B-v0.1 --data kaist-ai/Multifaceted-Collection-small --output ckpt/janus
  aloe-train orpo --preset janus --model hf/ckpt/janus --data kaist-ai/Multifaceted-Collection-ORPO --output ckpt/janus-orpo
  (trainers take every TRL option: aloe-train sft --help; --config FILE.yaml as TRL's scripts do)
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


TRAINER_HELP = {
    "sft": "supervised fine-tuning (TRL SFTTrainer): ALOE preferred replies or Multifaceted outputs",
    "dpo": "DPO (TRL DPOTrainer) on preference pairs",
    "orpo": "ORPO (TRL's experimental ORPOTrainer) on preference pairs",
    "rm": "reward model (TRL RewardTrainer); --stage2_data for Janus-RM's second stage",
}


def _trainer_command(kind: str, argv: list[str]) -> int:
    from aloe_train.train import run, summary

    record = run(kind, argv)
    if _main_process():
        print(summary(record, record.get("output", "")))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from aloe_train.pipeline import PipelineConfig, run_pipeline
    from aloe_train.report import format_board

    config = config_from_args(PipelineConfig, args)
    config.train_args = list(args.train_args)
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
        "pipeline": (
            PipelineConfig,
            _pipeline,
            "ALOE: personas -> conversations -> SFT/DPO -> evaluation -> comparison; "
            "Janus: SFT -> DPO/ORPO (+RM) -> Multifaceted Bench -> comparison",
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
    for name, help_text in TRAINER_HELP.items():  # parsed by TRL's TrlParser (see main)
        sub.add_parser(name, help=help_text, add_help=False)
    # rl: TrlParser over GRPOConfig + ModelConfig + its script arguments (aloe_train/rl.py), see main
    sub.add_parser("rl", help="online RL (TRL GRPO) against the simulated user (docs/rl.md)", add_help=False)
    return parser


def _unrecognized(flag: str, known: set[str]) -> str:
    close = (
        closest_flag(flag, sorted(k for k in known if k.startswith("--"))) if flag.startswith("--") else None
    )
    return f"unrecognized arguments: {flag}" + (f" (did you mean {close}?)" if close else "")


def _refuse_unknown_trainer_flag(kind: str, argv: list[str]) -> None:
    """A misspelt flag: the trainer's usage and the closest real flag, exit 2 (checked before parsing,
    so a misspelt required flag is named as misspelt, not as missing)."""
    from aloe_train.args import known_flags, make_parser, unknown_flag

    parser = make_parser(kind)
    known = known_flags(parser)
    bad = unknown_flag(known, argv)
    if bad:
        parser.error(_unrecognized(bad, known))


def known_flags_of(parser: argparse.ArgumentParser) -> set[str]:
    from aloe_train.args import known_flags

    return known_flags(parser)


def unknown_flag_of(known: set[str], argv: list[str]) -> str | None:
    from aloe_train.args import unknown_flag

    return unknown_flag(known, argv)


def _split_verbose(argv: list[str]) -> tuple[bool, list[str]]:
    verbose = bool(argv) and argv[0] in ("-v", "--verbose")
    return verbose, argv[1:] if verbose else argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    verbose, rest = _split_verbose(argv)
    if rest and rest[0] in TRAINER_HELP:
        # TRL's parser: every SFTConfig/DPOConfig/ORPOConfig/RewardConfig and ModelConfig field is a flag
        kind, trainer_argv = rest[0], rest[1:]
        _refuse_unknown_trainer_flag(kind, trainer_argv)
        args = argparse.Namespace(verbose=verbose, func=lambda _: _trainer_command(kind, trainer_argv))
        return dispatch(args, parser, "aloe-train", quiet=("datasets",))
    if rest and rest[0] == "rl":
        from aloe_train.rl import main as rl_main
        from aloe_train.rl import make_parser as rl_parser

        rl_argv, rl = rest[1:], rl_parser()
        known = known_flags_of(rl)
        bad = unknown_flag_of(known, rl_argv)
        if bad:
            rl.error(_unrecognized(bad, known))
        args = argparse.Namespace(verbose=verbose, func=lambda _: rl_main(rl_argv))
        return dispatch(args, parser, "aloe-train", quiet=("datasets",))
    if rest and rest[0] == "pipeline":
        # the pipeline's own flags; the rest go to its training stages (each checks them)
        args, extra = parser.parse_known_args(argv)
        from aloe_train.pipeline import unknown_train_flag

        args.train_args = extra
        bad, known = unknown_train_flag(extra)
        if bad:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            sub.choices["pipeline"].error(_unrecognized(bad, known))
        return dispatch(args, parser, "aloe-train", quiet=("datasets",))
    # A misspelt flag: the subcommand's usage and the closest real flag (exit 2).
    args, _ = parse_with_suggestions(parser, argv)
    return dispatch(args, parser, "aloe-train", quiet=("datasets",))


if __name__ == "__main__":
    sys.exit(main())
