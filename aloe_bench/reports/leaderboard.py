"""The leaderboard: one row per run, built with pandas, rendered as Markdown, CSV, LaTeX or HTML.

Rows are grouped by setup (judge, simulated user, protocol, persona set, turns, disclosure): the
reference setup's group comes first, ranked by AVG; runs under another setup are ranked in their own
group, flagged in the `setup` column and named in a warning line, never silently mixed in.
The numeric frame (what `--format csv` writes) holds the runs' own metrics unrounded; the other
formats show them rounded, with their 95% intervals.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import CIRecord, Reliability, SwapControl
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.metrics.reliability import mdd_note, run_noise_floor
from aloe_bench.reports.compare import compare_to_baseline
from aloe_bench.reports.judges import NOISE_JUDGES  # defined apart so the viewer need not import this
from aloe_bench.reports.runinfo import SETUP_FIELDS, RunInfo, reference_run, setup_warning

FORMATS = ("md", "csv", "latex", "html")
SUFFIX_FORMATS = {
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
    ".tex": "latex",
    ".html": "html",
    ".htm": "html",
}
LATEX_SYMBOLS = {"Δ": r"$\Delta$", "²": r"$^2$", "−": "--"}


@dataclass
class Leaderboard:
    frame: pd.DataFrame  # numeric, one row per run, in display order
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline: str | None = None  # the baseline's label

    @property
    def turns(self) -> int | None:
        """K when every run has the same number of turns (the AL(K) column is then titled AL(K))."""
        values = set(self.frame["turns"])
        return values.pop() if len(values) == 1 else None


def _at(values: list | None, index: int) -> float | None:
    if not values or len(values) <= abs(index):
        return None
    return values[index]


def _interval(ci: CIRecord, name: str) -> tuple[float | None, float | None]:
    band = ci.band(name)
    return band[0], band[1]


def _row(info: RunInfo) -> dict[str, Any]:
    m = info.metrics
    avg_lo, avg_hi = _interval(m.ci, "avg")
    ir_lo, ir_hi = _interval(m.ci, "ir")
    s = info.setup
    return {
        "label": info.label,
        "model": info.model,
        "avg": m.avg,
        "avg_lo": avg_lo,
        "avg_hi": avg_hi,
        "al_1": _at(m.al, 0),
        "al_k": _at(m.al, -1),
        "ir": m.ir,
        "ir_lo": ir_lo,
        "ir_hi": ir_hi,
        "n_ir": m.n_ir,
        "n_r2": m.n_r2,
        **_generation(info),
        "conversations": m.conversations,
        "failed": m.failed,
        "invalid": sum(m.invalid),
        "judge": s.judge,
        "simulator": s.simulator,
        "protocol": s.protocol,
        "personas": s.personas,
        "turns": s.turns,
        "disclosure": s.disclosure,
        **_audit_columns(info),
        "run": str(info.path),
        **_trust_columns(info),
    }


def _trust_columns(info: RunInfo) -> dict[str, Any]:
    """Panel alpha (between judges, else the judge's test-retest alpha) and the persona-swap AUC
    of the panel's least discriminating judge (None for runs that did not record them)."""
    results = info.run.results
    rel = results.reliability or Reliability()
    swap = (results.validity.swap if results.validity else None) or {}
    between = rel.between_judges.alpha if rel.between_judges else None
    alphas = [j.test_retest_alpha for j in rel.judges.values() if j.test_retest_alpha is not None]
    # The least discriminating judge: one with no valid swap pair (auc None) counts as the worst.
    worst = min(swap.values(), key=lambda s: (s.auc is not None, s.auc or 0.0)) if swap else SwapControl()
    auc_ci = worst.auc_ci or [None, None]
    return {
        "panel_alpha": between if between is not None else (min(alphas) if alphas else None),
        "swap_auc": worst.auc,
        "swap_auc_lo": auc_ci[0],
        "swap_auc_hi": auc_ci[1],
        "no_discrimination": "judge-no-discrimination" in results.warning_codes(),
    }


def _audit_columns(info: RunInfo) -> dict[str, Any]:
    """Disclosure at turn 1 and turn K from the run's simulated-user audit (None when not audited)."""
    audit = info.run.results.audit
    disclosure = audit.disclosure if audit is not None else []
    return {
        "disclosed_1": disclosure[0].mean if disclosure else None,
        "disclosed_k": disclosure[-1].mean if disclosure else None,
    }


def _headroom_columns(
    infos: list[RunInfo],
    floor: RunInfo | None,
    ceiling: RunInfo | None,
    *,
    n_bootstrap: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Headroom used per run: against the given floor/ceiling, else the ones found among the runs."""
    from aloe_bench.metrics.headroom import find_bracket, is_ceiling, run_headroom

    out = []
    for info in infos:
        f, c = (floor, ceiling) if floor and ceiling and not is_ceiling(info) else find_bracket(info, infos)
        h = run_headroom(info.run, f.run, c.run, n_bootstrap=n_bootstrap, seed=seed) if f and c else None
        out.append(
            {
                "headroom": h.used if h else None,
                "headroom_lo": h.ci[0] if h and h.ci else None,
                "headroom_hi": h.ci[1] if h and h.ci else None,
                "floor_run": f.label if f and c else None,
                "ceiling_run": c.label if f and c else None,
            }
        )
    return out


# The model's generation settings that change what it says: a greedy and a sampled run of one
# model are different entries, and the board must say which is which.
GENERATION_FIELDS = ("temperature", "top_p", "max_new_tokens")


def _generation(info: RunInfo) -> dict[str, Any]:
    model = info.run.config.model
    return {"temperature": model.temperature, "top_p": model.top_p, "max_new_tokens": model.max_new_tokens}


def generation_text(temperature: Any, top_p: Any, max_new_tokens: Any) -> str:
    """`T 0.7, top-p 0.9, 128 tok`; an unset value is the backend's default (the checkpoint's own)."""

    def unset(x: Any) -> bool:
        return x is None or (isinstance(x, float) and math.isnan(x))

    parts = ["T default" if unset(temperature) else f"T {float(temperature):g}"]
    if not unset(top_p):
        parts.append(f"top-p {float(top_p):g}")
    if not unset(max_new_tokens):
        parts.append(f"{int(max_new_tokens)} tok")
    return ", ".join(parts)


def build_leaderboard(
    infos: list[RunInfo],
    baseline: RunInfo | None = None,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    floor: RunInfo | None = None,
    ceiling: RunInfo | None = None,
) -> Leaderboard:
    if not infos:
        raise UserInputError(
            "no runs given; pass one or more run directories (the --output of aloe-bench run)"
        )
    if baseline is not None and all(info is not baseline for info in infos):
        infos = [baseline, *infos]
    reference_info = reference_run(infos, baseline)
    reference = reference_info.setup
    rows = []
    brackets = _headroom_columns(infos, floor, ceiling, n_bootstrap=n_bootstrap, seed=seed)
    for info, bracket in zip(infos, brackets, strict=True):
        row = {**_row(info), **bracket}
        differs = info.setup.differences(reference)
        row["setup"] = "differs: " + ", ".join(SETUP_FIELDS[f] for f in differs) if differs else ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if baseline is not None:
        frame = _with_baseline(frame, infos, baseline, n_bootstrap=n_bootstrap, seed=seed)

    # Group by setup: the reference group first, then the others by their best AVG; ranks restart in
    # each group, and the `group` column (A = the reference setup, B, C, ...) says which rank is whose.
    frame["_group"] = [0 if info.setup == reference else 1 for info in infos]
    group_keys = {info.setup: i for i, info in enumerate(infos)}
    frame["_setup_id"] = [group_keys[info.setup] for info in infos]
    frame["_avg"] = frame["avg"].astype(float).fillna(-math.inf)
    frame["_best"] = frame.groupby("_setup_id")["_avg"].transform("max")
    frame = frame.sort_values(["_group", "_best", "_setup_id", "_avg"], ascending=[True, False, True, False])
    frame.insert(0, "rank", frame.groupby("_setup_id").cumcount() + 1)
    letters = {sid: _group_letter(i) for i, sid in enumerate(dict.fromkeys(frame["_setup_id"]))}
    frame["group"] = [letters[sid] for sid in frame["_setup_id"]]
    frame = frame.drop(columns=["_group", "_setup_id", "_avg", "_best"]).reset_index(drop=True)

    name = reference_info.label
    reference_name = f"the baseline '{name}'" if baseline else f"the setup of '{name}' (group A)"
    warning = setup_warning(infos, reference, reference_name)
    warnings = [f"{warning}; they are ranked in groups of their own (B, ...)"] if warning else []
    for info in infos:
        for w in info.run.results.warnings:
            if w.code == "judge-no-discrimination":
                warnings.append(f"warning: '{info.label}': {w.message}")
    return Leaderboard(frame, warnings, _notes(infos), baseline.label if baseline else None)


def _group_letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"G{index + 1}"


def _with_baseline(
    frame: pd.DataFrame, infos: list[RunInfo], baseline: RunInfo, *, n_bootstrap: int, seed: int
) -> pd.DataFrame:
    others = [info for info in infos if info is not baseline]
    comparisons = compare_to_baseline(
        baseline.run, [info.run for info in others], n_bootstrap=n_bootstrap, seed=seed
    )
    by_label = {info.label: c for info, c in zip(others, comparisons, strict=True)}
    base_avg = baseline.metrics.avg
    columns: dict[str, list] = {
        k: []
        for k in (
            "delta_avg",
            "paired_diff",
            "paired_lo",
            "paired_hi",
            "p",
            "p_holm",
            "paired_n",
            "mdd",
            "below_mdd",
        )
    }
    floors = {info.label: run_noise_floor(info.run) for info in infos}
    for label, avg in zip(frame["label"], frame["avg"], strict=True):
        c = by_label.get(label)
        if c is None:  # the baseline itself
            for values in columns.values():
                values.append(None)
            continue
        d = c.overall
        columns["delta_avg"].append(None if avg is None or base_avg is None else round(avg - base_avg, 6))
        columns["paired_diff"].append(d.diff)
        columns["paired_lo"].append(d.ci[0] if d.ci else None)
        columns["paired_hi"].append(d.ci[1] if d.ci else None)
        columns["p"].append(d.p_value)
        columns["p_holm"].append(c.p_holm)
        columns["paired_n"].append(d.n)
        mdd, note = mdd_note(d.diff, floors[baseline.label], floors[label])
        columns["mdd"].append(mdd)
        columns["below_mdd"].append(bool(note))
    position = list(frame.columns).index("n_r2") + 1
    for offset, (name, values) in enumerate(columns.items()):
        frame.insert(position + offset, name, values)
    frame["baseline"] = [label == baseline.label for label in frame["label"]]
    return frame


def _notes(infos: list[RunInfo]) -> list[str]:
    notes = []
    for judge, what in NOISE_JUDGES.items():
        if any(info.setup.judge == judge for info in infos):
            notes.append(
                f"judge `{judge}` is {what}: it proves the pipeline runs offline but cannot judge, "
                "so its scores are noise and say nothing about the models"
            )
    return notes


# --- rendering -------------------------------------------------------------------------------------


def _num(x: Any, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _signed(x: Any, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}"


def _with_ci(x: Any, lo: Any, hi: Any, digits: int, signed: bool = False) -> str:
    shown = (_signed if signed else _num)(x, digits)
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return shown
    bound = _signed if signed else _num
    return f"{shown} [{bound(lo, digits)}, {bound(hi, digits)}]"


def _p(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return "<0.001" if x < 0.001 else f"{x:.3f}"


def display_frame(board: Leaderboard, links: dict[str, str] | None = None) -> pd.DataFrame:
    """The table a reader sees: rounded values with their intervals, readable column names."""
    f = board.frame
    k = board.turns
    al_k = f"AL({k})" if k else "AL(K)"
    out = pd.DataFrame()
    several_groups = f["group"].nunique() > 1
    # One rank per group: with several groups "1" alone would read as a tie, so it says whose 1 it is.
    out["#"] = [f"{g}{r}" if several_groups else str(r) for g, r in zip(f["group"], f["rank"], strict=True)]
    out["run"] = [links[r] for r in f["run"]] if links else f["label"]
    if links or (f["label"] != f["model"]).any():  # the label alone no longer names the model
        out["model"] = f["model"]
    out["AVG [95% CI]"] = [_with_ci(*v, 2) for v in zip(f["avg"], f["avg_lo"], f["avg_hi"], strict=True)]
    out["AL(1)"] = [_num(v, 2) for v in f["al_1"]]
    out[al_k] = [_num(v, 2) for v in f["al_k"]]
    out["IR [95% CI]"] = [_with_ci(*v, 3) for v in zip(f["ir"], f["ir_lo"], f["ir_hi"], strict=True)]
    out["N-IR"] = [_num(v, 3) for v in f["n_ir"]]
    out["N-R²"] = [_num(v, 3) for v in f["n_r2"]]
    if f["headroom"].notna().any():  # between the control/generic floor and the explicit-persona ceiling
        out["headroom used [95% CI]"] = [
            _with_ci(*v, 2) for v in zip(f["headroom"], f["headroom_lo"], f["headroom_hi"], strict=True)
        ]
    if f["disclosed_1"].notna().any():  # the simulated-user audit: share of persona facts revealed
        out["disclosed@1"] = [_num(v, 2) for v in f["disclosed_1"]]
        out[f"disclosed@{k}" if k else "disclosed@K"] = [_num(v, 2) for v in f["disclosed_k"]]
    out["generation"] = [
        generation_text(*v) for v in zip(*(f[name] for name in GENERATION_FIELDS), strict=True)
    ]
    if "paired_diff" in f:
        base = board.baseline
        out[f"ΔAVG vs {base}"] = [
            "baseline" if b else _signed(v, 2) for v, b in zip(f["delta_avg"], f["baseline"], strict=True)
        ]
        out["paired Δ [95% CI]"] = [
            "" if b else _with_ci(v, lo, hi, 2, signed=True) + (" < MDD" if below else "")
            for v, lo, hi, b, below in zip(
                f["paired_diff"], f["paired_lo"], f["paired_hi"], f["baseline"], f["below_mdd"], strict=True
            )
        ]
        out["p (Wilcoxon)"] = ["" if b else _p(v) for v, b in zip(f["p"], f["baseline"], strict=True)]
        out["p (Holm)"] = ["" if b else _p(v) for v, b in zip(f["p_holm"], f["baseline"], strict=True)]
        out["paired n"] = [
            "" if b else str(int(v)) for v, b in zip(f["paired_n"], f["baseline"], strict=True)
        ]
    if f["swap_auc"].notna().any() or f["panel_alpha"].notna().any():
        out["panel α"] = [_num(v, 2) for v in f["panel_alpha"]]
        out["swap AUC [95% CI]"] = [
            _with_ci(v, lo, hi, 2) + (" ⚠" if flag else "")
            for v, lo, hi, flag in zip(
                f["swap_auc"], f["swap_auc_lo"], f["swap_auc_hi"], f["no_discrimination"], strict=True
            )
        ]
    out["conversations"] = [
        f"{int(n)}" + (f" ({int(x)} failed)" if x else "")
        for n, x in zip(f["conversations"], f["failed"], strict=True)
    ]
    out["invalid"] = f["invalid"].astype(int)
    out["judge"] = f["judge"]
    out["simulated user"] = f["simulator"]
    out["protocol"] = f["protocol"]
    out["persona set"] = f["personas"]
    if not k:
        out["turns"] = f["turns"]
    if (f["disclosure"] != "hidden").any():
        out["persona disclosure"] = f["disclosure"]
    if (f["setup"] != "").any():
        out["setup"] = f["setup"]
    return out


def _markdown(frame: pd.DataFrame) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    numeric = {c for c in frame.columns if c in ("#", "invalid", "turns")}
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |"]
    lines.append("| " + " | ".join("---:" if c in numeric else "---" for c in frame.columns) + " |")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines)


def _bold_prefix(remark: str) -> str:
    """`warning: text` -> `**warning:** text` (Markdown)."""
    head, sep, rest = remark.partition(": ")
    return f"**{head}:** {rest}" if sep else remark


def render(board: Leaderboard, fmt: str, links: dict[str, str] | None = None) -> str:
    """The table in one of FORMATS, with its warnings and notes where the format has room for them."""
    remarks = [*board.warnings, *(f"note: {n}" for n in board.notes)]
    if fmt == "csv":
        return board.frame.to_csv(index=False)  # the `setup` column carries the flags
    shown = display_frame(board, links)
    if fmt == "md":
        return _markdown(shown) + "\n" + "".join(f"\n> {_bold_prefix(r)}\n" for r in remarks)
    if fmt == "latex":
        table = shown.to_latex(index=False, escape=True)
        for char, command in LATEX_SYMBOLS.items():  # symbols pdflatex lacks in text mode
            table = table.replace(char, command)
        return table + "".join(f"% {r}\n" for r in remarks)
    if fmt == "html":
        table = shown.to_html(index=False, escape=True, border=0, classes="aloe-leaderboard")
        return table + "\n" + "".join(f'<p class="aloe-remark">{html.escape(r)}</p>\n' for r in remarks)
    raise UserInputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def format_for(output: str | None, fmt: str | None) -> str:
    """--format wins; else the --output suffix decides; else Markdown."""
    if fmt:
        return fmt
    if output:
        suffix = Path(output).suffix.lower()
        if suffix in SUFFIX_FORMATS:
            return SUFFIX_FORMATS[suffix]
        raise UserInputError(
            f"cannot tell the format from {output!r}; pass --format ({', '.join(FORMATS)}) "
            f"or use a suffix {', '.join(SUFFIX_FORMATS)}"
        )
    return "md"


# --- the published board ---------------------------------------------------------------------------

BOARD_RUNS = "runs"
BOARD_REPORTED = "reported"  # the printed rows: one YAML/JSON file per paper (aloe_bench/log/published.py)
BOARD_INTRO = """\
How well does a chat model adapt to the person it is talking to? A simulated user with a hidden
persona chats with the model for K turns and a judge scores every reply (ALOE); Multifaceted Bench
states the user's preferences in the system message and grades one reply per rubric.
"""


def board_run_dirs(board: Path) -> list[Path]:
    """Every run directory stored under BOARD/runs/ (any folder holding a results.json), by name."""
    runs = board / BOARD_RUNS
    found = sorted(p for p in runs.iterdir() if (p / "results.json").is_file()) if runs.is_dir() else []
    if not found:
        raise UserInputError(
            f"{runs} holds no run directories; add one with "
            f"`aloe-bench run ... --output {runs}/NAME`, then publish again"
        )
    return found


def _pipeline_facts(frame: pd.DataFrame) -> tuple[str, str]:
    """How many judgements per run were invalid, and whether every valid one was the same score,
    read from the pipeline-check runs themselves (so the words follow the stored runs)."""
    totals = (frame["conversations"] * frame["turns"]).astype(int)
    shares = [f"{int(i)} of {int(t)}" for i, t in zip(frame["invalid"], totals, strict=True)]
    low, high = min(shares, key=lambda x: int(x.split()[0])), max(shares, key=lambda x: int(x.split()[0]))
    invalid = low if low == high else f"{low.split()[0]} to {high}"
    lows, highs = frame["avg_lo"].dropna(), frame["avg_hi"].dropna()
    flat = len(lows) == len(frame) and lows.min() == highs.max()
    verdict = f", and every valid one is {lows.min():g}" if flat else ""
    return invalid, verdict


def publish(
    board: Path,
    *,
    baseline: str | None = None,
    command: str,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    reported: Path | None = None,
) -> list[Path]:
    """Regenerate the board from BOARD/runs/* and the printed rows in `reported` (default
    BOARD/reported/ when it exists): README.md, index.html (the same board as one HTML page),
    leaderboard.csv (runs), reported.csv (printed rows with their checks) and curves.png.

    Runs whose judge cannot judge (NOISE_JUDGES) go to the "pipeline check" section; the others go
    to their task's table beside the printed rows, each setup its own group."""
    from aloe_bench.engine.task_api import kinds
    from aloe_bench.log.published import load_reported, reported_rows
    from aloe_bench.log.results import write_text_atomic
    from aloe_bench.reports import board_page as page
    from aloe_bench.reports.plot import plot_curves
    from aloe_bench.reports.reported import render_html, render_markdown, reported_frame_rows, task_tables
    from aloe_bench.reports.runinfo import load_runs

    dirs = board_run_dirs(board)
    infos = load_runs(dirs, [d.name for d in dirs])  # a board's rows are named by their folders
    if reported is None and (board / BOARD_REPORTED).is_dir():
        reported = board / BOARD_REPORTED
    files = load_reported(reported, tasks=kinds()) if reported is not None else []
    base = None
    if baseline:
        base_path = Path(baseline).resolve()
        base = next((i for i in infos if i.path.resolve() == base_path), None)
        if base is None:
            raise UserInputError(f"--baseline {baseline} is not one of the runs in {board / BOARD_RUNS}")
    # Each row links to its run's HTML report, regenerated here so the board and pages never disagree.
    from aloe_bench.reports.viewer import REPORT_FILE, write_run_report

    for info in infos:
        write_run_report(info.path)
    links = {
        f"{BOARD_RUNS}/{i.path.name}": f"[{i.label}]({BOARD_RUNS}/{i.path.name}/{REPORT_FILE})" for i in infos
    }
    pages = {str(i.path): f"{BOARD_RUNS}/{i.path.name}/{REPORT_FILE}" for i in infos}
    pipeline = [i for i in infos if i.setup.judge in NOISE_JUDGES]
    measured = [i for i in infos if i not in pipeline]
    tables = task_tables(measured, files, pages)

    def runs_board(group: list[RunInfo]) -> Leaderboard | None:
        if not group:
            return None
        own_base = base if base is not None and any(i is base for i in group) else None
        result = build_leaderboard(group, own_base, n_bootstrap=n_bootstrap, seed=seed)
        # Paths relative to the board, so its files read the same wherever it was built from.
        result.frame["run"] = [Path(os.path.relpath(run, board)).as_posix() for run in result.frame["run"]]
        return result

    detail, checks = runs_board(measured), runs_board(pipeline)
    curves = board / "curves.png"
    plot_curves(infos, curves, reported=reported_rows(files))
    generated = (
        f"<!-- generated by `{command}` from the run directories in {BOARD_RUNS}/ and the printed "
        f"results in {BOARD_REPORTED}/; edit those, not this file -->"
    )
    md = [
        "# ALOE bench leaderboard",
        "",
        generated,
        "",
        BOARD_INTRO,
        page.BOARD_HEAD,
        render_markdown(tables),
    ]
    body = [page.paragraphs(BOARD_INTRO + "\n" + page.BOARD_HEAD), render_html(tables)]
    if detail is not None:
        md += ["## Measured runs in detail", "", page.RUNS_INTRO, render(detail, "md", links)]
        body += ["<h2>Measured runs in detail</h2>", render(detail, "html")]
    if checks is not None:
        invalid, verdict = _pipeline_facts(checks.frame)
        head = page.PIPELINE_HEAD.format(invalid=invalid, verdict=verdict)
        md += [head, page.RUNS_INTRO, render(checks, "md", links)]
        body += ["<h2>Pipeline check</h2>", page.paragraphs(head.split("\n", 2)[2]), render(checks, "html")]
    else:
        md += ["## Pipeline check", "", page.PIPELINE_NO_RUNS]
    figure = "Per-turn alignment AL(k) with 95% bootstrap bands (printed curves dashed, as printed)"
    md += [
        f"![{figure}](curves.png)",
        "",
        "Per-run numbers: [leaderboard.csv](leaderboard.csv) (unrounded, with interval bounds); printed "
        "rows with their checks: [reported.csv](reported.csv); the whole board as one page: "
        "[index.html](index.html). Each run's name opens its report (`report.html`: curve, flags and "
        "every transcript; download it and open it in a browser).",
        "",
        page.ADDING.format(board=board.as_posix(), runs=BOARD_RUNS, reported=BOARD_REPORTED, command=command),
    ]
    body.append(f'<p><img src="curves.png" alt="{html.escape(figure)}"></p>')
    write_text_atomic(board / "README.md", "\n".join(md))
    write_text_atomic(board / "index.html", page.html_page("ALOE bench leaderboard", "\n".join(body)))
    # Every run, unrounded: the measured ones, then the pipeline check (one CSV, as before the split).
    frames = [b.frame for b in (detail, checks) if b is not None]
    runs_csv = pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""
    write_text_atomic(board / "leaderboard.csv", runs_csv)
    write_text_atomic(board / "reported.csv", pd.DataFrame(reported_frame_rows(tables)).to_csv(index=False))
    return [
        board / "README.md",
        board / "index.html",
        board / "leaderboard.csv",
        board / "reported.csv",
        curves,
    ]
