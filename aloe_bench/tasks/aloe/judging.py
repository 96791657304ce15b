"""The parts of an ALOE run its setup assembles: the judge panel (labels, usage keys, the swap
control), the judge stage as the run's scorer, epochs of conversations, and priced roles."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aloe_bench.datasets.personas import PersonaSet
from aloe_bench.engine.run_plan import judge_calls_line
from aloe_bench.engine.task_api import Hooks, Scorer
from aloe_bench.log.results import ConversationRecord
from aloe_bench.metrics.trust import planned_judge_calls
from aloe_bench.metrics.validity import swap_map
from aloe_bench.models.backends import normalize_spec
from aloe_bench.models.cache import CallCache
from aloe_bench.models.cost import Price, role_prices, table_record
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role
from aloe_bench.scorers.judge import JudgeStage, PanelJudge

# The key of the judges' verdict in `turn.scores` (the turn's `score`: one judge's, or a panel's mean).
SCORER = "judge"


def persona_set_record(personas: PersonaSet) -> dict[str, Any]:
    return {
        "set": personas.name,
        "source": personas.source,
        "count": len(personas.personas),
        "sha256": personas.sha256,
    }


def judge_label(judges: Sequence[RoleConfig], index: int) -> str:
    """How results name judge `index` of the panel: its spec (with #N when a spec repeats)."""
    specs = [normalize_spec(j.spec) for j in judges]
    spec = specs[index]
    return spec if specs.count(spec) == 1 else f"{spec}#{specs[: index + 1].count(spec)}"


def judge_role_names(judges: Sequence[RoleConfig]) -> list[str]:
    """Usage keys of the panel: `judge` for the first judge (as before panels), `judge:LABEL` after."""
    return ["judge", *(f"judge:{judge_label(judges, i)}" for i in range(1, len(judges)))]


def panel_judges(
    judges: Sequence[RoleConfig],
    names: Sequence[str],
    roles: Mapping[str, Role],
    protocol: Any,
    cache: CallCache | None,
    swap: bool,
) -> list[PanelJudge]:
    default_tokens = protocol.default_settings().max_new_tokens
    panel = []
    for i, (name, judge) in enumerate(zip(names, judges, strict=True)):
        role = roles[name]
        swap_role = (
            Role("judge", role.backend, cache, prompt_version=role.prompt_version, priority=role.priority)
            if swap
            else None
        )
        panel.append(PanelJudge(judge_label(judges, i), role, judge.settings(default_tokens), swap_role))
    return panel


def pricing_record(prices: Mapping[str, Price | None]) -> dict[str, Any]:
    """results.json `pricing`: the price table used and each priced role's price (None: unknown)."""
    return {
        "table": table_record(),
        "roles": {
            r: p and {"input": p.input, "output": p.output, "source": p.source} for r, p in prices.items()
        },
    }


def judge_scorer(
    protocol: Any,
    panel: Sequence[PanelJudge],
    conversations: list[ConversationRecord],
    *,
    reasks: int,
    seed: int,
    repeats: int,
    swap: bool,
    turns_to_judge: int,
) -> Callable[[Hooks], Scorer]:
    """The judge stage as a run's scorer (a panel, repeats, the swap control); announces the calls
    it plans on stderr when a panel, repeats or a control multiply them."""
    if len(panel) > 1 or repeats > 1 or swap:
        plan = planned_judge_calls(turns_to_judge, len(panel), repeats, swap)
        print(f"aloe-bench: {judge_calls_line(plan)}", file=sys.stderr)

    def make(hooks: Hooks) -> Scorer:
        return JudgeStage(
            None,
            protocol,
            reasks=reasks,
            seed=seed,
            on_judged=hooks.judged,
            panel=panel,
            repeats=repeats,
            swap=swap_map(conversations) if swap else None,
        )

    return make


def panel_usage(judge_roles: Mapping[str, Role], panel: Sequence[PanelJudge]) -> dict[str, Role]:
    """The usage keys judges add: `judge:LABEL` per panel member after the first, and
    `judge:LABEL:swap` for every judge's swap-control calls (the sum over keys is the total)."""
    usage = {k: v for k, v in judge_roles.items() if k != "judge"}
    for judge in panel:
        if judge.swap_role is not None:
            usage[f"judge:{judge.label}:swap"] = judge.swap_role
    return usage


def epoch_id(persona_id: str, epoch: int) -> str:
    """Epoch 0 keeps the persona id (single-epoch runs and old runs are unchanged)."""
    return persona_id if epoch == 0 else f"{persona_id}#e{epoch}"


def epoch_conversations(personas: PersonaSet, epochs: int) -> list[ConversationRecord]:
    """One conversation per persona and epoch; every seed derives from the id, so epochs differ."""
    return [
        ConversationRecord(
            id=epoch_id(p.id, e),
            persona=p.to_dict(),
            meta={"persona_id": p.id, "epoch": e} if epochs > 1 else {},
        )
        for e in range(epochs)
        for p in personas.personas
    ]


def priced_roles(specs: Mapping[str, str], overrides: Mapping[str, Price] | None) -> dict[str, Price | None]:
    """The price of each API role (None: no known price); in-process roles are left out. A panel
    judge (`judge:LABEL`) and its swap-control calls (`judge:LABEL:swap`) take the judge's override."""
    overrides = dict(overrides or {})
    for name in specs:
        if name.startswith("judge:") and "judge" in overrides:
            overrides.setdefault(name, overrides["judge"])
    prices = role_prices(dict(specs), overrides)
    return {
        r: p for r, p in prices.items() if p is not None or normalize_spec(specs[r]).startswith("openai/")
    }
