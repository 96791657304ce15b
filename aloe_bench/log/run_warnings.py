"""Warnings a run records about itself in results.json `warnings` ([{code, message}, ...]).

Issue 15's codes: `embedded-judge` (the embedded 135M model cannot judge: its scores are noise) and
`truncated` (replies that stopped at their token limit). Other stages append their own codes to the
same list; nothing here replaces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EMBEDDED_JUDGE_MESSAGE = (
    "the embedded 135M model is the judge: it proves the pipeline runs offline, but it cannot judge "
    "(its scores are noise). For real scores pass a capable judge, e.g. --judge openai/gpt-4o-mini-2024-07-18."
)


def _spec(role: Any) -> str | None:
    return role.get("spec") if isinstance(role, dict) else role


def derived_warnings(
    config: Mapping[str, Any], usage: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, str]]:
    """The warnings that follow from the run's configuration and its per-role usage."""
    found = []
    if _spec(config.get("judge")) == "embedded":
        found.append({"code": "embedded-judge", "message": EMBEDDED_JUDGE_MESSAGE})
    cut = []
    for role, u in usage.items():
        truncated = int(u.get("truncated") or 0)
        if truncated:
            answered = int(u.get("calls") or 0) + int(u.get("cached") or 0) - int(u.get("failed") or 0)
            limit = (
                (config.get(role) or {}).get("max_new_tokens") if isinstance(config.get(role), dict) else None
            )
            at = f" (max_new_tokens {limit})" if limit else ""
            cut.append(f"{role} {truncated} of {answered}{at}")
    if cut:
        found.append(
            {
                "code": "truncated",
                "message": "replies cut at their token limit: "
                + "; ".join(cut)
                + ". Raise that role's --*max-new-tokens if the cut texts matter.",
            }
        )
    return found


def merge_warnings(*lists: list[dict[str, str]]) -> list[dict[str, str]]:
    """All the warnings, each (code, message) once, in order of first appearance."""
    seen, merged = set(), []
    for items in lists:
        for w in items:
            key = (w.get("code"), w.get("message"))
            if key not in seen:
                seen.add(key)
                merged.append(w)
    return merged
