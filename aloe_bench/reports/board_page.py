"""The words and the page around the published board (leaderboard/README.md and index.html).

Kept apart from the tables so the board's text reads as one piece, and the HTML page (which the
browser test opens) is a plain document: tables, lists and one image, no script.
"""

from __future__ import annotations

import html
import re

BOARD_HEAD = """\
Two kinds of rows, never mixed up: rows **measured here** (`source` = run, linking its report page:
curve, flags and every transcript) and rows **as printed** in papers (`source` = paper and table,
linking the paper; the data files are in [reported/](reported/), one per paper). Each task has one
table. Its rows are grouped by setup (judge, simulated user, protocol, persona set, turns, AL
scale), lettered A, B, ...; `#` ranks within a group only (A1, B1), so a printed row is never ranked
against a run of another setup. A run of this project scores AL(k) on the judge's 1–5 scale; RLPA
prints ALOE in percent: a table holding both shows each scale in its own, titled columns. A printed
row that prints its per-turn curve is checked: AVG, IR, N-IR and N-R² are recomputed from the
curve with this project's metrics (`aloe_bench/metrics/printed.py`), and a printed figure its own
curve cannot give (to printed precision) is flagged ⚠ in `check`. Printed figures carry no interval
and no n here: the papers' own tables are the authority for them. Rows whose curve was not
transcribed say so (`not checkable`), and what is missing from each paper is listed under its table.
"""

PIPELINE_HEAD = """\
## Pipeline check

The runs below use the embedded SmolLM2-135M model (or checkpoints trained from it on the demo
data) as the model under test, the simulated user and the judge, on the 12-persona demo set. They
prove that the whole pipeline (simulated conversations, judging, metrics with bootstrap intervals,
persona-swap control, simulated-user audit, SFT and DPO checkpoints, report pages and this board)
runs offline end to end and regenerates from the stored runs. They prove nothing about any model:
a 135M model cannot judge: {invalid} judgements per run were invalid{verdict}. They are therefore
kept off the task tables above and ranked only among themselves.
"""

PIPELINE_NO_RUNS = "No pipeline-check run is stored on this board.\n"

RUNS_INTRO = """\
**AVG** is the mean of the per-turn alignment AL(k), **IR** its least-squares slope per turn, **N-IR**
and **N-R²** the slope and fit of the min–max normalised curve. Brackets are 95% bootstrap intervals
over conversations. Runs under different judges, simulated users, protocols, persona sets or turn
counts are ranked in separate groups (A = the reference setup, then B, ...: `#` restarts in each, as
A1, B1) and flagged in the `setup` column. `generation` is the model's temperature (T default = the
checkpoint's own setting), top-p and reply token limit. Against the baseline, ΔAVG is the difference
of the AVGs; paired Δ is the mean per-persona difference over the personas both runs scored (a
persona's mean score over turns is the unit), with its paired bootstrap 95% CI, Wilcoxon
signed-rank p and Holm-corrected p. **Headroom used** (when the board holds a `control/generic`
floor and an explicit-persona ceiling of the same setup) is (model − floor) / (ceiling − floor) with
a paired bootstrap CI; **disclosed@1** and **disclosed@K** are the shares of persona facts the
simulated user had revealed by turn 1 and by the last turn (`aloe-bench audit`).
"""

ADDING = """\
## Adding a run

```bash
aloe-bench run --task aloe_demo --model SPEC --output {board}/{runs}/NAME
{command}
```

A run of a checkpoint made by `aloe-train` keeps the trainer's record (the checkpoint's
`aloe_train.json`: data, hyper-parameters, steps, loss) as `training.json` in its run folder.

## Adding published results

Add a file to `{board}/{reported}/` (format: [docs/leaderboard.md](../docs/leaderboard.md)), with
the figures exactly as the paper prints them, and run the command above. To place your own runs
beside published rows without publishing: `aloe-bench leaderboard RUN_DIR... --reported DIR`.
"""

PAGE_STYLE = """\
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
tr[data-kind=reported] td{background:#fbfbf4}
tr[data-flag=inconsistent] td[data-col=check]{color:#a00;font-weight:600}
.aloe-missing,.aloe-remark{color:#555}
img{max-width:100%}
"""


def html_page(title: str, body: str) -> str:
    """A whole HTML document around `body` (already HTML)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body></html>\n"
    )


def paragraphs(text: str) -> str:
    """Plain text (blank-line separated, Markdown bold and code marks dropped) as HTML paragraphs."""
    out = []
    for block in text.strip().split("\n\n"):
        text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1", " ".join(block.split()))  # [text](link) -> text
        words = html.escape(text).replace("**", "").replace("`", "")
        out.append(f"<p>{words}</p>")
    return "\n".join(out) + "\n"
