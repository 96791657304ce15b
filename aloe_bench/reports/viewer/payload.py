"""The data a report page shows, gathered from run directories into one JSON-able payload.

Everything the page needs is computed here, in Python, with the project's own statistics (bootstrap
intervals from `metrics`/`runinfo`, paired comparisons from `compare`): the page's script only draws.
Conversations are passed through whole (every turn field, known or not), so fields other tools add
later (judge panels, swap judgements, audit marks) reach the page without a change here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import MetricValue, RoleRecord
from aloe_bench.log.results import Run, score_matrix
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.reports.compare import compare_to_baseline
from aloe_bench.reports.judges import NOISE_JUDGES
from aloe_bench.reports.runinfo import RunInfo, load_runs, reference_setup, setup_warning
from aloe_bench.reports.viewer.stats import normalized_fit_ci

PAYLOAD_VERSION = 1
AUDIT_FILE = "audit.jsonl"
# Side files a run directory may hold, shown as sections of their own.
SIDE_FILES = {"training": "training.json", "human_labels": "human_labels.json"}


def run_kind(run: Run) -> str:
    """The kind of task that made the run, as its record says (log/records.py `effective_kind`: runs that
    record none are read as the kind they were): the page shows what the run holds (rubric scores,
    a simulated user) whatever the kind."""
    return run.config.effective_kind


def task_view(run: Run) -> dict[str, Any]:
    """What the run's task says of itself (its title, what one item is, its headline figure with
    value, interval and n from `metrics.values`): the page names and shows any task from these,
    never by testing which task it is. A task whose definition cannot be loaded here is shown with
    its recorded name and the curve's AVG."""
    from aloe_bench.engine.task_api import get_task

    kind = run_kind(run)
    try:
        task = get_task(kind, run.config.task)
    except UserInputError:
        task = None
    label, key = task.headline if task is not None else ("AVG", "avg")
    figure = run.metrics.figure(key) or MetricValue()
    return {
        "kind": kind,
        "title": task.title if task is not None else (run.config.task or kind),
        "item": task.item if task is not None else "item",
        "headline": {"label": label, "key": key, **figure.to_dict()},
    }


def _role(role: RoleRecord | None) -> dict[str, Any] | None:
    """What the page shows of a role: its spec and settings (not the backend's report)."""
    if role is None:
        return None
    keep = ("spec", "args", "max_new_tokens", "temperature", "top_p", "system_role")
    recorded = role.to_dict()
    return {k: recorded[k] for k in keep if k in recorded}


def _header(run: Run) -> dict[str, Any]:
    cfg, r = run.config, run.results
    return {
        "task": cfg.task,
        "model": _role(cfg.model),
        "simulator": _role(cfg.simulator),
        "judge": _role(cfg.judge),
        # a judge panel (issue 11), when the run has one
        "judges": [j.to_dict() for j in cfg.judges] if cfg.judges is not None else None,
        "protocol": cfg.protocol,
        "personas": cfg.personas.to_dict() if cfg.personas is not None else {"set": None},
        "turns": cfg.turns,
        "seed": cfg.seed,
        "disclosure": cfg.persona_disclosure,
        "judge_reasks": cfg.judge_reasks,
        "judge_repeats": cfg.judge_repeats,
        "prompts": {
            role: {"version": p.version, "sha256": (p.sha256 or "")[:12]}
            for role, p in (cfg.prompts or {}).items()
        },
        "packages": cfg.packages or {},
        "aloe_bench_version": r.aloe_bench_version,
        "rejudged_from": cfg.rejudged_from.to_dict() if cfg.rejudged_from is not None else None,
        "started": r.started,
        "updated": r.updated,
        "elapsed_s": r.elapsed_s,
    }


def _metrics(info: RunInfo) -> dict[str, Any]:
    """The run's metrics with intervals, plus the N-IR / N-R² intervals the run does not record."""
    m = info.metrics.to_dict()
    ci = dict(m.get("ci") or {})
    turns = len(info.metrics.al)
    if ("n_ir" not in ci or "n_r2" not in ci) and turns >= 2 and info.run.conversations:
        extra = normalized_fit_ci(
            score_matrix(info.run.conversations, turns),
            seed=info.run.config.seed or 0,
            n_bootstrap=info.metrics.ci.n_bootstrap or DEFAULT_BOOTSTRAP,
            level=info.metrics.ci.level or 0.95,
        )
        ci.setdefault("n_ir", extra["n_ir"])
        ci.setdefault("n_r2", extra["n_r2"])
        ci["normalized_by_viewer"] = True  # the page says these come from the viewer, not the run
    m["ci"] = ci
    return m


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    # split("\n"): U+2028 and friends inside a JSON string are not line breaks (see results.load_run).
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserInputError(
                f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or delete the line, then view again"
            ) from None
    return rows


def _audit(run: Run) -> dict[str, Any] | None:
    """audit.jsonl (issue 12's per-conversation facts and what each turn revealed), by conversation id."""
    path = run.path / AUDIT_FILE
    if not path.is_file():
        return None
    return {str(row.get("id")): row for row in _read_jsonl(path) if isinstance(row, dict)}


def _side_sections(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, filename in SIDE_FILES.items():
        path = run.path / filename
        if path.is_file():
            try:
                out[name] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{path}: not valid JSON ({exc.msg}); fix or remove it") from None
    return out


def _derived_warnings(run: Run) -> list[dict[str, Any]]:
    """Flags a run made before it recorded them: the embedded judge, which cannot judge (README)."""
    judge = run.config.judge.spec if run.config.judge is not None else None
    if judge in NOISE_JUDGES and "embedded-judge" not in run.results.warning_codes():
        return [
            {
                "code": "embedded-judge",
                "message": f"the judge is {NOISE_JUDGES[judge]}: it proves the pipeline runs offline but "
                "cannot judge, so these scores are noise and say nothing about the model",
                "source": "viewer",
            }
        ]
    return []


def run_payload(info: RunInfo) -> dict[str, Any]:
    run = info.run
    r = run.results
    warnings = [w.to_dict() for w in r.warnings] + _derived_warnings(run)
    # Sections other tools add to results.json; shown as tables whatever exact figures they hold.
    sections = {"reliability": r.reliability, "validity": r.validity, "audit": r.audit}
    return {
        "label": info.label,
        "path": str(run.path),
        "name": run.path.name,
        "kind": run_kind(run),
        "task": task_view(run),
        "status": r.status,
        "header": _header(run),
        "metrics": _metrics(info),
        "usage": {role: u.to_dict() for role, u in r.usage.items()},
        "failures": [f.to_dict() for f in r.failures],
        "warnings": warnings,
        "sections": {
            **{name: section.to_dict() for name, section in sections.items() if section is not None},
            **_side_sections(run),
        },
        "audit": _audit(run),
        "conversations": [c.to_dict() for c in run.conversations],
    }


def _comparisons(infos: list[RunInfo], n_bootstrap: int, seed: int) -> list[dict[str, Any]]:
    """Every later run against the first (the reference), paired by persona, Holm-corrected."""
    if len(infos) < 2:
        return []
    results = compare_to_baseline(
        infos[0].run, [i.run for i in infos[1:]], n_bootstrap=n_bootstrap, seed=seed
    )
    return [{"a": 0, "b": b, **c.to_dict()} for b, c in enumerate(results, start=1)]


def build_payload(
    directories: list[str | Path],
    labels: list[str] | None = None,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """The page's data for one run, or for several compared with the first."""
    if not directories:
        raise UserInputError(
            "no runs given; pass one or more run directories (the --output of aloe-bench run)"
        )
    infos = load_runs(list(directories), labels)
    kinds = {run_kind(i.run) for i in infos}
    if len(kinds) > 1:
        names = ", ".join(f"{i.path} ({run_kind(i.run)})" for i in infos)
        raise UserInputError(f"cannot compare runs of different tasks ({names}); view them separately")
    notes = []
    if len(infos) > 1:
        warning = setup_warning(
            infos, reference_setup(infos, infos[0]), f"the first run ('{infos[0].label}')"
        )
        if warning:
            notes.append(warning)
    runs = [run_payload(i) for i in infos]
    return {
        "version": PAYLOAD_VERSION,
        "kind": kinds.pop(),
        "title": runs[0]["task"]["title"],
        "runs": runs,
        "comparisons": _comparisons(infos, n_bootstrap, seed),
        "compare_notes": notes,
        "compare_settings": {"n_bootstrap": n_bootstrap, "seed": seed, "level": 0.95},
    }
