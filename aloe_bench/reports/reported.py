"""Published results beside measured runs: one table per task, rows grouped by setup.

A measured run and a printed row never share a rank: each setup (a run's RunSetup, a paper's
ReportedSetup) is a group of its own, lettered A, B, ... with ranks restarting in each. The AL scale
is part of the setup: a table whose rows all state one scale shows one set of AVG/AL columns titled
with it; a table mixing the judge's 1-5 with a paper's percent shows the two side by side, each
titled, so no 1-5 figure is read against a percent one. Every printed row with a printed curve is
checked against it with the project's own metrics (`metrics.printed`); a figure its own curve cannot
give is flagged in the `check` column, never copied silently.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from aloe_bench.log.published import SCALES, ReportedFile, ReportedRow, ReportedSetup
from aloe_bench.metrics.printed import FIGURE_NAMES, FigureCheck, check_printed
from aloe_bench.reports.runinfo import NO_SIMULATOR, RunInfo, RunSetup

RUN_SCALE = "1-5"  # what every run of this project records: the judge's 1-5 score


def run_task(info: RunInfo) -> str:
    return info.run.config.effective_kind  # kind absent: read as the run log says (log/records.py)


def printed_checks(row: ReportedRow) -> list[FigureCheck]:
    """The row's printed figures against its printed curve (empty when it prints no curve)."""
    if row.al is None or len(row.al) < 2 or not row.figures:
        return []
    return check_printed(row.al, row.figures, row.digits, row.digits["al"])


@dataclass
class BoardRow:
    kind: str  # "run" or "reported"
    setup_key: Any
    setup_text: str  # the group's setup in words
    scale: str  # a key of SCALES
    model: str
    method: str
    source: str  # "run" or "RLPA, table 2"
    link: str | None  # the run's report page, or the paper
    avg: float | None
    avg_ci: tuple[float | None, float | None] | None
    al_1: float | None
    al_k: float | None
    turns: int | None
    n_ir: float | None
    n_r2: float | None
    n: int | None  # conversations scored (runs); a paper's n is not recorded
    digits: dict[str, int] = field(default_factory=dict)
    flag: str = "measured"  # measured | consistent | inconsistent | unchecked
    check: str = ""
    note: str = ""
    group: str = ""
    rank: int = 0


def _describe_run_setup(s: RunSetup) -> str:
    simulator = "none" if s.simulator == NO_SIMULATOR else s.simulator
    return (
        f"measured here: judge {s.judge}, simulated user {simulator}, protocol {s.protocol}, "
        f"persona set {s.personas}, {s.turns} turns, persona {s.disclosure}, AL scale {SCALES[RUN_SCALE][0]}"
    )


def _describe_reported_setup(short: str, s: ReportedSetup) -> str:
    turns = f", {s.turns} turn{'s' if s.turns != 1 else ''}" if s.turns else ""
    return (
        f"as printed by {short}: judge {s.judge}, simulated user {s.simulator}, protocol {s.protocol}, "
        f"persona set {s.personas}{turns}, AL scale {s.scale_label}"
    )


def run_row(info: RunInfo, link: str | None) -> BoardRow:
    m = info.metrics
    band = m.ci.band("avg")
    return BoardRow(
        kind="run",
        setup_key=("run", info.setup),
        setup_text=_describe_run_setup(info.setup),
        scale=RUN_SCALE,
        model=info.model,
        method=info.label if info.label != info.model else "",
        source="run",
        link=link,
        avg=m.avg,
        avg_ci=(band[0], band[1]),
        al_1=m.al[0] if m.al else None,
        al_k=m.al[-1] if m.al else None,
        turns=len(m.al) or None,
        n_ir=m.n_ir,
        n_r2=m.n_r2,
        n=m.conversations,
        digits={"al": 2, "avg": 2, "n_ir": 3, "n_r2": 3},
        flag="measured",
        check="measured here: figures from the run's own scores",
    )


def reported_row(row: ReportedRow) -> BoardRow:
    checks = printed_checks(row)
    bad = [c for c in checks if not c.consistent]
    if bad:
        flag = "inconsistent"
        check = "⚠ inconsistent with its own curve: " + "; ".join(c.describe() for c in bad)
    elif checks:
        flag = "consistent"
        check = "✓ " + ", ".join(FIGURE_NAMES[c.name] for c in checks) + " follow from its printed curve"
    else:
        flag = "unchecked"
        if row.al is not None:
            check = "not checkable: no figure printed beside the curve"
        elif row.setup.turns == 1:
            check = "nothing to recompute: one printed figure, no curve"
        else:
            check = "not checkable: its per-turn curve is not transcribed"
    al = row.al or []
    s = row.setup
    return BoardRow(
        kind="reported",
        setup_key=("reported", row.source.short, row.source.arxiv, s),
        setup_text=_describe_reported_setup(row.source.short, s),
        scale=s.scale,
        model=row.model,
        method=row.method or "",
        source=row.source.cite,
        link=row.source.url,
        avg=row.avg if row.avg is not None else (sum(al) / len(al) if al else None),
        avg_ci=None,
        al_1=al[0] if al else None,
        al_k=al[-1] if al else None,
        turns=len(al) or s.turns,
        n_ir=row.figures.get("n_ir"),
        n_r2=row.figures.get("n_r2"),
        n=None,
        digits=row.digits,
        flag=flag,
        check=check,
        note=row.note,
    )


@dataclass
class TaskTable:
    task: str
    rows: list[BoardRow]
    groups: dict[str, str]  # letter -> setup in words
    missing: list[str]  # what the papers print that the files lack, one line per file
    notes: list[str] = field(default_factory=list)  # a file's note about all its rows
    title: str = ""  # the table's heading (the task's `board_title`); empty: the task's name

    @property
    def heading(self) -> str:
        return self.title or self.task

    @property
    def scales(self) -> list[str]:
        return sorted({r.scale for r in self.rows}, key=list(SCALES).index)


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"G{i + 1}"


def _rank(rows: list[BoardRow]) -> list[BoardRow]:
    """Measured groups first, then printed ones; in each, the group with the best AVG first; ranks
    restart in every group (A1, B1, ...)."""
    by_key: dict[Any, list[BoardRow]] = {}
    for r in rows:
        by_key.setdefault(r.setup_key, []).append(r)

    def avg(r: BoardRow) -> float:
        return r.avg if r.avg is not None and not math.isnan(r.avg) else -math.inf

    groups = sorted(by_key.values(), key=lambda g: (g[0].kind != "run", -max(avg(r) for r in g)))
    out = []
    for i, members in enumerate(groups):
        for rank, r in enumerate(sorted(members, key=avg, reverse=True), start=1):
            r.group, r.rank = _letter(i), rank
            out.append(r)
    return out


def task_tables(
    infos: list[RunInfo], files: list[ReportedFile], links: dict[str, str] | None = None
) -> list[TaskTable]:
    """One table per task that has a run, a printed row or a note of what is missing."""
    from aloe_bench.engine.task_api import board_titles  # loads the task modules: only when a board is built

    links = links or {}
    tasks: dict[str, list[BoardRow]] = {}
    missing: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for info in infos:
        tasks.setdefault(run_task(info), []).append(run_row(info, links.get(str(info.path))))
    for f in files:
        for row in f.rows:
            tasks.setdefault(row.setup.task, []).append(reported_row(row))
        if f.note and f.task:
            notes.setdefault(f.task, []).append(f"{f.source.short} (arXiv {f.source.arxiv}): {f.note}")
        if f.missing and f.task:
            tasks.setdefault(f.task, [])
            missing.setdefault(f.task, []).append(f"{f.source.short} (arXiv {f.source.arxiv}): {f.missing}")
    # Titles from each task's definition; the tasks in registered order, then any other by name.
    titles = board_titles()
    known = list(titles)
    out = []
    for task in sorted(tasks, key=lambda t: (known.index(t) if t in known else len(known), t)):
        rows = _rank(tasks[task])
        groups = {r.group: r.setup_text for r in rows}
        table = TaskTable(
            task, rows, groups, missing.get(task, []), notes.get(task, []), titles.get(task, "")
        )
        out.append(table)
    return out


# --- rendering ---------------------------------------------------------------------------------------


def _num(x: float | None, digits: int) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _avg_text(r: BoardRow) -> str:
    if r.avg is None:
        return "–"
    d = r.digits.get("avg", r.digits.get("al", 2))
    shown = _num(r.avg, d)
    if r.kind == "run":
        lo, hi = r.avg_ci or (None, None)
        return f"{shown} [{_num(lo, 2)}, {_num(hi, 2)}]" if lo is not None and hi is not None else shown
    return shown + ("" if "avg" in r.digits else " (mean of the printed curve)")


def columns(table: TaskTable) -> list[tuple[str, str]]:
    """(key, heading) of each column. Scale-bound columns once per scale present, titled with it."""
    scales = table.scales
    cols = [("rank", "#"), ("source", "source"), ("model", "model"), ("method", "method / label")]
    for name, heading in (("avg", "AVG"), ("al_1", "AL(1)"), ("al_k", "AL(K)")):
        for scale in scales:
            word = SCALES[scale][0]
            ci = (
                " [95% CI]"
                if name == "avg" and scale == RUN_SCALE and any(r.kind == "run" for r in table.rows)
                else ""
            )
            cols.append((f"{name}:{scale}", f"{heading} ({word}){ci}"))
    cols += [
        ("turns", "K"),
        ("n_ir", "N-IR"),
        ("n_r2", "N-R²"),
        ("n", "n"),
        ("check", "check"),
        ("note", "note"),
    ]
    return cols


def cell(r: BoardRow, key: str) -> str:
    name, _, scale = key.partition(":")
    if scale:
        if r.scale != scale:
            return ""
        if name == "avg":
            return _avg_text(r)
        return _num(getattr(r, name), r.digits.get("al", 2))
    if name == "rank":
        return f"{r.group}{r.rank}"
    if name in ("n_ir", "n_r2"):
        return _num(getattr(r, name), r.digits.get(name, 3))
    value = getattr(r, name)
    if name in ("turns", "n"):
        return "–" if value is None else str(value)
    return str(value) if value is not None else ""


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|").replace("\n", " ")


def _md_link(r: BoardRow, key: str, text: str) -> str:
    if key == "source" and r.link:
        return f"[{text}]({r.link})"
    return _md_cell(text)


def render_markdown(tables: list[TaskTable], *, level: int = 2) -> str:
    parts = []
    for t in tables:
        parts.append(f"{'#' * level} {t.heading}\n")
        if not any(r.kind == "run" for r in t.rows):
            parts.append("No run measured here under a judge that can judge is on this board yet.\n")
        if t.rows:
            cols = columns(t)
            lines = ["| " + " | ".join(h for _, h in cols) + " |"]
            lines.append("| " + " | ".join("---:" if k == "rank" else "---" for k, _ in cols) + " |")
            for r in t.rows:
                lines.append("| " + " | ".join(_md_link(r, k, cell(r, k)) for k, _ in cols) + " |")
            parts.append("\n".join(lines) + "\n")
            parts.append(
                "Setup groups (ranks restart in each; a printed row is never ranked against a run):\n"
            )
            parts.append("\n".join(f"- **{g}**: {text}" for g, text in t.groups.items()) + "\n")
            if len(t.scales) > 1:
                parts.append(
                    "> **note:** this table mixes AL scales ("
                    + " and ".join(SCALES[s][0] for s in t.scales)
                    + "): each has its own columns; figures on different scales are not comparable.\n"
                )
        for line in t.notes:
            parts.append(f"> **note:** {line}\n")
        for line in t.missing:
            parts.append(f"> **not transcribed:** {line}\n")
    return "\n".join(parts)


def render_html(tables: list[TaskTable], *, level: int = 2) -> str:
    e = html.escape
    parts = []
    for t in tables:
        parts.append(f'<section class="aloe-task" data-task="{e(t.task)}">')
        parts.append(f"<h{level}>{e(t.heading)}</h{level}>")
        if not any(r.kind == "run" for r in t.rows):
            parts.append("<p>No run measured here under a judge that can judge is on this board yet.</p>")
        if t.rows:
            cols = columns(t)
            parts.append(f'<table class="aloe-board" data-task="{e(t.task)}"><thead><tr>')
            parts.append(
                "".join(f'<th data-col="{e(k)}">{e(h)}</th>' for k, h in cols) + "</tr></thead><tbody>"
            )
            for r in t.rows:
                attrs = (
                    f'data-kind="{e(r.kind)}" data-group="{e(r.group)}" data-rank="{r.rank}" '
                    f'data-source="{e(r.source)}" data-flag="{e(r.flag)}" data-scale="{e(r.scale)}"'
                )
                cells = []
                for k, _ in cols:
                    text = e(cell(r, k))
                    if k == "source" and r.link:
                        text = f'<a href="{e(r.link)}">{text}</a>'
                    cells.append(f'<td data-col="{e(k)}">{text}</td>')
                parts.append(f"<tr {attrs}>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
            parts.append('<ul class="aloe-groups">')
            parts.append(
                "".join(
                    f'<li data-group="{e(g)}"><b>{e(g)}</b>: {e(text)}</li>' for g, text in t.groups.items()
                )
            )
            parts.append("</ul>")
            if len(t.scales) > 1:
                parts.append(
                    '<p class="aloe-remark">note: this table mixes AL scales ('
                    + " and ".join(e(SCALES[s][0]) for s in t.scales)
                    + "): each has its own columns; figures on different scales are not comparable.</p>"
                )
        for line in t.notes:
            parts.append(f'<p class="aloe-remark">note: {e(line)}</p>')
        for line in t.missing:
            parts.append(f'<p class="aloe-missing">not transcribed: {e(line)}</p>')
        parts.append("</section>")
    return "\n".join(parts) + "\n"


def reported_frame_rows(
    tables: list[TaskTable], *, kinds: tuple[str, ...] = ("reported",)
) -> list[dict[str, Any]]:
    """The rows of `kinds` (printed rows by default), numeric, for a CSV beside the board."""
    out = []
    for t in tables:
        for r in t.rows:
            if r.kind not in kinds:
                continue
            out.append(
                {
                    "task": t.task, "kind": r.kind, "group": r.group, "rank": r.rank, "model": r.model, "method": r.method,
                    "source": r.source, "url": r.link, "scale": r.scale, "avg": r.avg, "al_1": r.al_1,
                    "al_k": r.al_k, "turns": r.turns, "n_ir": r.n_ir, "n_r2": r.n_r2, "flag": r.flag,
                    "check": r.check, "setup": r.setup_text, "note": r.note,
                }
            )  # fmt: skip
    return out
