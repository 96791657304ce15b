"""Warnings a run records about itself in results.json `warnings` ([{code, message}, ...]).

Issue 15's codes: `embedded-judge` (the embedded 135M model cannot judge: its scores are noise) and
`truncated` (replies that stopped at their token limit). Other stages append their own codes to the
same list; nothing here replaces them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aloe_bench.log.records import ConfigRecord, RoleUsage, RunWarning

EMBEDDED_JUDGE_MESSAGE = (
    "the embedded 135M model is the judge: it proves the pipeline runs offline, but it cannot judge "
    "(its scores are noise). For real scores pass a capable judge, e.g. --judge openai/gpt-4o-mini-2024-07-18."
)


def derived_warnings(config: ConfigRecord, usage: Mapping[str, RoleUsage]) -> list[RunWarning]:
    """The warnings that follow from the run's configuration and its per-role usage."""
    found = []
    if config.judge is not None and config.judge.spec == "embedded":
        found.append(RunWarning(code="embedded-judge", message=EMBEDDED_JUDGE_MESSAGE))
    roles = {"model": config.model, "simulator": config.simulator, "judge": config.judge}
    cut = []
    for role, u in usage.items():
        if u.truncated:
            recorded = roles.get(role)
            limit = recorded.max_new_tokens if recorded is not None else None
            at = f" (max_new_tokens {limit})" if limit else ""
            cut.append(f"{role} {u.truncated} of {u.answered}{at}")
    if cut:
        found.append(
            RunWarning(
                code="truncated",
                message="replies cut at their token limit: "
                + "; ".join(cut)
                + ". Raise that role's --*max-new-tokens if the cut texts matter.",
            )
        )
    return found


def merge_warnings(*lists: Iterable[RunWarning]) -> list[RunWarning]:
    """All the warnings, each (code, message) once, in order of first appearance."""
    seen, merged = set(), []
    for items in lists:
        for w in items:
            key = (w.code, w.message)
            if key not in seen:
                seen.add(key)
                merged.append(w)
    return merged
