"""`aloe-bench reliability RUN [RUN...]`: the noise floor of a setup and its judges' reliability."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  aloe-bench reliability runs/my-run                  # one run (use --epochs 2 for a real noise floor)
  aloe-bench reliability runs/seed0 runs/seed1        # the same setup twice: runs count as replicates
  aloe-bench reliability runs/my-run --json floor.json"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability",
        help="variance components and the minimal detectable difference of a setup",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", metavar="RUN_DIR", nargs="+", help="runs of one setup (replicates of each other)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from aloe_bench.errors import UserInputError
    from aloe_bench.log.records import Reliability
    from aloe_bench.log.results import write_json_atomic
    from aloe_bench.metrics.reliability import judge_reliability, noise_floor
    from aloe_bench.reports.runinfo import load_runs, setup_warning
    from aloe_bench.reports.trust_text import trust_lines

    infos = load_runs(list(args.runs))
    warning = setup_warning(infos, infos[0].setup, f"the setup of '{infos[0].label}'")
    if warning:
        raise UserInputError(f"{warning}; reliability pools runs of ONE setup (same judge, user, personas)")
    models = {i.model for i in infos}
    if len(models) > 1:
        print(
            f"aloe-bench: note: the runs score {len(models)} models; they are pooled as replicates, "
            "so model differences count as noise",
            file=sys.stderr,
        )
    turns = max(i.setup.turns for i in infos)
    floor = noise_floor([i.run.conversations for i in infos], turns)
    if not floor:
        raise UserInputError("no complete, scored conversation in these runs: nothing to estimate")
    judges = judge_reliability([c for i in infos for c in i.run.conversations], turns)
    report = {"runs": [str(i.path) for i in infos], "noise_floor": floor, **judges}
    c = floor["components"]

    def f(x, d=4):
        return "-" if x is None else f"{x:.{d}f}"

    print(
        f"{len(infos)} run(s), {floor['personas']} personas x {floor['replicates_per_persona']:g} replicates"
    )
    print("variance components (1-5 scale):")
    print(f"  persona (between personas, of a persona's mean): {f(c['persona'])}")
    print(
        f"  epoch/simulator (within persona, of one replicate's mean): {f(c['within_persona'])}"
        f"  (df {c['within_persona_df']})"
    )
    print(f"  judge x turn (between judges of a panel, one score): {f(c['judge_x_turn'])}")
    print(f"  repeat (one judge with itself, one score): {f(c['repeat'])}")
    m = floor["mdd"]
    print(
        f"minimal detectable difference (80% power, two-sided 0.05, paired by persona): "
        f"AVG {f(m['avg'], 3)}  IR {f(m['ir'], 4)}"
    )
    print(f"  basis: {floor['mdd_basis']}")
    if floor["personas_for_target"] is not None:
        print(
            f"  to detect an AVG difference of 0.1: {floor['personas_for_target']} personas at "
            f"{floor['replicates_per_persona']:g} replicates each"
            + (
                f", or {floor['replicates_for_target']} replicates (epochs) of the {floor['personas']} personas"
                if floor["replicates_for_target"] is not None
                else ""
            )
        )
    for line in trust_lines(Reliability.from_dict(judges, "reliability"), None):
        print(line)
    if args.json:
        write_json_atomic(Path(args.json), report)
    return 0
