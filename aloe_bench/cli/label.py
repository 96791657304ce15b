"""`aloe-bench label export|import`: human labels for a run's judged turns."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  aloe-bench label export runs/my-run --n 100 --output labels.csv    # fill in the human_score column
  aloe-bench label import runs/my-run labels.csv                     # judge-human agreement per judge
The sample is stratified by turn and judge score (deterministic with --seed). Import stores
human_labels.json in the run directory and results.json `validity.human`; summaries show it."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="export judged turns for human labelling, import the labels (judge-human agreement)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="label_action", metavar="ACTION")
    e = actions.add_parser("export", help="write a stratified sample of judged turns to a CSV")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--n", type=int, default=100, metavar="N", help="turns to sample (default 100)")
    e.add_argument("--output", required=True, metavar="FILE.csv")
    e.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    i = actions.add_parser("import", help="read a labelled CSV back and compare the judges with it")
    i.add_argument("run_dir", metavar="RUN_DIR")
    i.add_argument("file", metavar="FILE.csv")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.errors import UserInputError
    from aloe_bench.log.records import Validity
    from aloe_bench.metrics.human_labels import export_labels, import_labels
    from aloe_bench.reports.trust_text import trust_lines
    from aloe_bench.reports.viewer import report_after_command

    action = getattr(args, "label_action", None)
    if action == "export":
        count = export_labels(args.run_dir, args.n, args.output, seed=args.seed)
        print(
            f"wrote {count} turns to {args.output}; fill in human_score (1-5), then `aloe-bench label import`"
        )
        return 0
    if action == "import":
        section = import_labels(args.run_dir, args.file)
        print(f"{section['labelled']} labelled turns ({section['unlabelled']} left blank)")
        for line in trust_lines(None, Validity(human=section)):
            print(line)
        for judge, h in section["judges"].items():
            print(f"confusion for {judge} (rows human 1-5, columns judge 1-5):")
            for k, row in enumerate(h["confusion"], start=1):
                print(f"  {k}: " + " ".join(f"{c:>4}" for c in row))
        report_after_command(args.run_dir)
        return 0
    raise UserInputError("aloe-bench label needs an action: export or import (see aloe-bench label -h)")
