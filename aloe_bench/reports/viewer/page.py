"""The page: one self-contained HTML file (inline CSS, script and data; nothing fetched).

Model output is untrusted text, so it never reaches the page as markup:
- the data sits in a `<script type="application/json">` block with `<`, `>`, `&`, U+2028 and U+2029
  written as JSON escapes, so no `</script>` or `<!--` in a transcript can end the block;
- the page's script builds every element with createElement/textContent (never innerHTML);
- a Content-Security-Policy allows only the page's own script (by its SHA-256) and no network, so even
  a mistake in the above could not run injected script or load anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.log.results import ensure_writable, write_text_atomic
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.reports.viewer.payload import build_payload

REPORT_FILE = "report.html"
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _asset(name: str) -> str:
    return (resources.files("aloe_bench.reports.viewer") / "assets" / name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON safe to place inside a <script> element: the escaped characters only occur inside strings."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        "".join(_JSON_ESCAPES.get(ch, ch) for ch in text) if any(c in text for c in _JSON_ESCAPES) else text
    )


def _finite(obj: Any) -> Any:
    """NaN/inf (e.g. a persona with no valid judgement) become null: JSON has no NaN."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _title(payload: dict[str, Any]) -> str:
    runs = payload["runs"]
    if len(runs) == 1:
        return f"ALOE bench report: {runs[0]['label']}"
    return f"ALOE bench comparison: {' vs '.join(r['label'] for r in runs)}"


def render_page(payload: dict[str, Any]) -> str:
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    page = _asset("report.html")
    # Replaced in this order, each placeholder once, so text in one part can never act as another's.
    parts = {
        "@@CSP@@": html.escape(csp, quote=True),
        "@@TITLE@@": html.escape(_title(payload)),
        "@@CSS@@": _asset("report.css"),
        "@@DATA@@": embed_json(_finite(payload)),
        "@@SCRIPT@@": script,
    }
    head, out = page, []
    for marker, value in parts.items():
        before, found, head = head.partition(marker)
        if not found:
            raise RuntimeError(f"report template lacks {marker}")  # a packaging bug, not user input
        out += [before, value]
    out.append(head)
    return "".join(out)


def build_report(
    directories: list[str | Path],
    output: str | Path,
    labels: list[str] | None = None,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> Path:
    """Write the page for one run (or several, compared with the first) to `output`."""
    payload = build_payload(directories, labels, n_bootstrap=n_bootstrap, seed=seed)
    path = Path(output)
    ensure_writable(path.parent if str(path.parent) else Path("."))
    write_text_atomic(path, render_page(payload))
    return path


def write_run_report(run_dir: str | Path) -> Path:
    """(Re)write RUN_DIR/report.html from the run's files; returns its path.

    The one call every command that changes a run directory makes at its end (run, judge, audit,
    label import), so a run's page always shows what its files hold.
    """
    run_dir = Path(run_dir)
    return build_report([run_dir], run_dir / REPORT_FILE)


def report_after_command(run_dir: str | Path) -> Path | None:
    """`write_run_report` for the end of a command that changed a run (run, judge, audit, label import).

    Prints where the page went. If it cannot be written, the command's real work (the run's files) is
    already done: one warning line says why and how to retry, and the command's exit code stands.
    """
    try:
        path = write_run_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - any failure here must not undo a finished run
        print(
            f"aloe-bench: warning: could not write {Path(run_dir) / REPORT_FILE} ({exc}); "
            f"retry with `aloe-bench view {run_dir}`",
            file=sys.stderr,
        )
        return None
    print(f"report: {path}")
    return path
