"""Persona sets of any size for the benchmarks: the shipped demo personas, then numbered variants."""

from __future__ import annotations

import json
from pathlib import Path

from aloe_bench.datasets.personas import Persona, load_persona_set


def demo_personas(n: int) -> list[Persona]:
    """The 12 demo personas as shipped, then variants of them (distinct texts, so distinct ids)."""
    demo = load_persona_set("demo").personas
    out = []
    for i in range(n):
        p = demo[i % len(demo)]
        out.append(p if i < len(demo) else Persona(f"{p.profile} (Variant {i}.)", p.personality))
    return out


def write_personas(personas: list[Persona], path: Path) -> Path:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in personas))
    return path
