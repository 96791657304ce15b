"""`aloe-bench personas NAME`: print a persona set as JSONL (id, profile, personality)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("personas", help="print the personas of a set as JSONL")
    p.add_argument("name", metavar="NAME|PATH", help="aloe, demo, or a JSONL file of {profile, personality}")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the original ALOE files")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from aloe_bench.datasets.personas import load_persona_set

    personas = load_persona_set(args.name, args.data_dir).limit(args.limit)
    for p in personas.personas:
        sys.stdout.write(json.dumps({"id": p.id, **p.to_dict(), **p.meta}, ensure_ascii=False) + "\n")
    return 0
