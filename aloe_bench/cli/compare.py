"""`aloe-bench compare RUN_A RUN_B [RUN ...]`: paired difference by persona, with bootstrap CI and Wilcoxon p."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXAMPLES = """examples:
  aloe-bench compare runs/base runs/finetuned              # finetuned − base, per persona
  aloe-bench compare runs/base runs/ft-a runs/ft-b          # each against the first, Holm-corrected
  aloe-bench compare runs/base runs/ft --floor runs/control --ceiling runs/explicit   # + headroom used
The unit is a persona's mean score over turns: the runs are paired by persona id."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="paired comparison of runs over the same personas (bootstrap CI, Wilcoxon p)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("baseline", metavar="RUN_A", help="the reference run directory (A)")
    p.add_argument("runs", metavar="RUN_B", nargs="+", help="run directories compared against A (B − A)")
    p.add_argument(
        "--label", action="extend", nargs="+", metavar="NAME", help="labels, in the order of the runs"
    )
    p.add_argument(
        "--n-bootstrap", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the comparison as JSON to FILE")
    p.add_argument(
        "--floor",
        metavar="RUN",
        help="a control/generic run of the same setup: with --ceiling, prints each run's headroom used",
    )
    p.add_argument(
        "--ceiling", metavar="RUN", help="an explicit-persona run (aloe_explicit*) of the same setup"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aloe_bench.errors import UserInputError
    from aloe_bench.log.results import write_json_atomic
    from aloe_bench.metrics.reliability import mdd_note, run_noise_floor
    from aloe_bench.reports.compare import baseline_summary, compare_to_baseline, comparison_report
    from aloe_bench.reports.runinfo import load_runs, setup_warning

    if args.n_bootstrap < 1:
        raise UserInputError(f"--n-bootstrap must be at least 1 (got {args.n_bootstrap})")
    infos = load_runs([args.baseline, *args.runs], args.label)
    if len(infos) < 2:
        raise UserInputError("compare needs two different run directories (RUN_A RUN_B)")
    base, others = infos[0], infos[1:]
    warning = setup_warning(infos, base.setup, f"the setup of '{base.label}'")
    if warning:
        print(f"aloe-bench: {warning}", file=sys.stderr)
    comparisons = compare_to_baseline(
        base.run, [o.run for o in others], n_bootstrap=args.n_bootstrap, seed=args.seed
    )
    if len(others) == 1:
        comparisons[0].p_holm = None  # one test: nothing to correct
    blocks = [comparison_report(base.label, o.label, c) for o, c in zip(others, comparisons, strict=True)]
    # Trust (issue 11): the noise floor each difference must clear, and judges that cannot tell
    # the persona apart (their differences do not measure personalization).
    floors = [run_noise_floor(i.run) for i in infos]
    mdds = []
    for k, c in enumerate(comparisons):
        value, note = mdd_note(c.overall.diff, floors[0], floors[k + 1])
        mdds.append(value)
        if value is not None:
            blocks[k] += f"\n  minimal detectable difference (80% power, paired): {value:.3f}" + (
                f"   ** B − A is {note}: not distinguishable from noise **" if note else ""
            )
    for info in infos:
        for w in info.run.results.warnings:
            if w.code == "judge-no-discrimination":
                print(f"aloe-bench: warning: {info.label}: {w.message}", file=sys.stderr)
    if len(others) > 1:
        blocks.append(baseline_summary(base.label, [o.label for o in others], comparisons))
    bracket = _headroom(args, infos, blocks)
    print("\n\n".join(blocks))
    if args.json:
        write_json_atomic(
            Path(args.json),
            {
                "baseline": {"label": base.label, "run": str(base.path)},
                "comparisons": [
                    {"label": o.label, "run": str(o.path), **c.to_dict(), "mdd": m}
                    for o, c, m in zip(others, comparisons, mdds, strict=True)
                ],
                **({"headroom": bracket} if bracket else {}),
            },
        )
    if any(c.overall.n == 0 for c in comparisons):
        raise UserInputError(
            "some runs share no scored persona with the baseline; compare runs over the same persona set"
        )
    return 0


def _headroom(args: argparse.Namespace, infos: list, blocks: list[str]) -> dict | None:
    """With --floor and --ceiling: each run's headroom used, appended to `blocks` (and returned)."""
    from dataclasses import replace

    from aloe_bench.errors import UserInputError
    from aloe_bench.metrics.headroom import headroom_report, run_headroom
    from aloe_bench.reports.runinfo import load_runs

    if not args.floor and not args.ceiling:
        return None
    if not (args.floor and args.ceiling):
        raise UserInputError(
            "--floor and --ceiling go together (a control/generic run and an explicit-persona run)"
        )
    floor, ceiling = load_runs([args.floor, args.ceiling], ["floor", "ceiling"])
    reference = infos[0].setup
    if floor.setup != reference or replace(ceiling.setup, disclosure=reference.disclosure) != reference:
        print(
            "aloe-bench: warning: the floor or ceiling run differs from the compared runs in more than the "
            "model (and, for the ceiling, the disclosure): the headroom mixes setups",
            file=sys.stderr,
        )
    out: dict[str, Any] = {"floor": str(floor.path), "ceiling": str(ceiling.path), "runs": []}
    for info in infos:
        h = run_headroom(info.run, floor.run, ceiling.run, n_bootstrap=args.n_bootstrap, seed=args.seed)
        blocks.append(headroom_report(info.label, str(floor.path), str(ceiling.path), h))
        out["runs"].append({"label": info.label, "run": str(info.path), **h.to_dict()})
    return out
