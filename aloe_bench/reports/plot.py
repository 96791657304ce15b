"""Per-turn alignment curves: AL(k) (or N-AL(k)) per run with its 95% bootstrap band.

The band is the run's own bootstrap over conversations (metrics.ci.al in results.json; recomputed
from the conversations when a run has none recorded). N-AL(k) rescales AL(k) by the curve's own
min and max; its band is AL(k)'s band under the same rescaling.
Published curves (`leaderboard/reported/`, rows that print AL(1..K)) can be overlaid: dashed, without
a band (a paper prints no interval), labelled "as printed" with their source. A printed curve on the
judge's 1-5 scale shares the runs' axis; one printed in percent gets its own axis on the right,
titled, so a percent is never read on the 1-5 axis.
Drawn on a bare matplotlib Figure (Agg renderer), so no GUI backend or pyplot state is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from aloe_bench.errors import UserInputError
from aloe_bench.log.published import SCALES, ReportedRow
from aloe_bench.log.results import ensure_writable
from aloe_bench.reports.runinfo import SETUP_FIELDS, RunInfo

IMAGE_FORMATS = ("png", "svg", "pdf")
SIZE_IN = (7.0, 4.4)
DPI = 200
# Okabe-Ito: distinguishable with every common colour-vision deficiency, and in greyscale with the markers.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h"]
# No timestamps in the files, so a regenerated figure only changes when its data does.
METADATA = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


@dataclass
class Curve:
    label: str
    y: np.ndarray  # per turn, NaN where undefined
    lo: np.ndarray
    hi: np.ndarray
    conversations: int
    avg: float | None


def _array(values: list | None, turns: int) -> np.ndarray:
    values = list(values or [])[:turns]
    values += [None] * (turns - len(values))
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def run_curve(info: RunInfo, *, normalized: bool = False) -> Curve:
    m = info.metrics
    turns = len(m.al)
    y = _array(m.al, turns)
    bands = m.ci.al or []
    lo = _array([b[0] if b else None for b in bands], turns)
    hi = _array([b[1] if b else None for b in bands], turns)
    if normalized:
        defined = y[~np.isnan(y)]
        spread = defined.max() - defined.min() if defined.size else 0.0
        if spread > 0:
            low = defined.min()
            y, lo, hi = ((v - low) / spread for v in (y, lo, hi))
        else:  # a flat (or single-turn) curve has no N-AL
            y = lo = hi = np.full(turns, np.nan)
    return Curve(info.label, y, lo, hi, m.conversations, m.avg)


def _shared(infos: list[RunInfo], name: str) -> str | None:
    values = {getattr(info.setup, name) for info in infos}
    return values.pop() if len(values) == 1 else None


def printed_curve(row: ReportedRow, *, normalized: bool = False) -> np.ndarray:
    """A printed AL(1..K) (or its N-AL: min-max rescaled, NaN when flat)."""
    y = np.array(row.al or [], dtype=float)
    if normalized:
        spread = y.max() - y.min() if y.size else 0.0
        y = (y - y.min()) / spread if spread > 0 else np.full(len(y), np.nan)
    return y


def _draw_printed(ax, rows: list[ReportedRow], start: int, normalized: bool) -> int:
    """Dashed lines, one per printed curve, in the colours after the runs'; returns the turns drawn."""
    max_turns = 1
    for j, row in enumerate(rows):
        i = start + j
        y = printed_curve(row, normalized=normalized)
        k = np.arange(1, len(y) + 1)
        max_turns = max(max_turns, len(k))
        scale = "" if normalized else f", {SCALES[row.setup.scale][0]}"
        ax.plot(
            k, y, color=COLORS[i % len(COLORS)], marker=MARKERS[i % len(MARKERS)], markersize=4.5,
            linestyle=(0, (5, 3)), linewidth=1.6, markerfacecolor="white", zorder=3,
            label=f"{row.label}: as printed ({row.source.cite}{scale}; no interval printed)",
        )  # fmt: skip
    return max_turns


def _subtitle(infos: list[RunInfo]) -> tuple[str, list[str]]:
    """The setup the runs share (for the title) and the fields that vary (for the legend)."""
    shown = {"personas": "personas", "judge": "judge", "simulator": "simulated user", "protocol": "protocol"}
    parts, varying = [], []
    for name, word in shown.items():
        value = _shared(infos, name)
        if value is None:
            varying.append(name)
            parts.append(f"{word}: mixed")
        else:
            parts.append(f"{word}: {value}")
    varying += [n for n in ("turns", "disclosure") if _shared(infos, n) is None]
    # Two lines when one would run past the plot's width.
    if len("  ·  ".join(parts)) > 95:
        return "  ·  ".join(parts[:2]) + "\n" + "  ·  ".join(parts[2:]), varying
    return "  ·  ".join(parts), varying


def image_format(output: str | Path) -> str:
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise UserInputError(f"cannot write a plot to {output}: the file name must end in .png, .svg or .pdf")
    return fmt


def plot_curves(
    infos: list[RunInfo],
    output: str | Path,
    *,
    normalized: bool = False,
    title: str | None = None,
    size: tuple[float, float] = SIZE_IN,
    dpi: int = DPI,
    reported: list[ReportedRow] | None = None,
) -> Path:
    """Draw one line per run with its shaded 95% band, and one dashed line per printed curve in
    `reported` (rows without a printed curve are skipped), and write the image (png, svg or pdf)."""
    printed = [r for r in reported or [] if r.al]
    if not infos and not printed:
        raise UserInputError("no runs to plot; pass one or more run directories")
    output = Path(output)
    fmt = image_format(output)
    ensure_writable(output.parent)

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    subtitle, varying = _subtitle(infos) if infos else ("as printed by the papers named", [])
    max_turns, any_band = 1, False
    for i, info in enumerate(infos):
        c = run_curve(info, normalized=normalized)
        color, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
        k = np.arange(1, len(c.y) + 1)
        max_turns = max(max_turns, len(k))
        label = c.label
        extras = [f"{SETUP_FIELDS[n]} {getattr(info.setup, n)}" for n in varying]
        if extras:
            label += f" [{'; '.join(extras)}]"
        if np.all(np.isnan(c.y)):
            label += " (N-AL undefined: flat curve)" if normalized else " (no scores)"
        elif c.avg is not None:
            label += f"  (AVG {c.avg:.2f}, n={c.conversations})"
        has_band = not np.all(np.isnan(c.lo))
        any_band = any_band or has_band
        if has_band:
            ax.fill_between(k, c.lo, c.hi, color=color, alpha=0.14, linewidth=0)
            ax.plot(k, c.lo, color=color, alpha=0.35, linewidth=0.6)
            ax.plot(k, c.hi, color=color, alpha=0.35, linewidth=0.6)
        ax.plot(
            k, c.y, color=color, marker=marker, markersize=5.5, linewidth=1.9,
            markeredgecolor="white", markeredgewidth=0.8, label=label, zorder=3,
        )  # fmt: skip
        if len(k) == 1 and has_band:  # a band needs two turns; show one turn's interval as an error bar
            ax.errorbar(k, c.y, yerr=[c.y - c.lo, c.hi - c.y], color=color, capsize=4, linewidth=1.2)

    # Printed curves: on the runs' axis when they state its scale (or once rescaled), else on their own.
    percent_axis = not normalized and (bool(infos) or any(r.setup.scale == "1-5" for r in printed))
    same = [r for r in printed if normalized or r.setup.scale == "1-5" or not percent_axis]
    other = [r for r in printed if r not in same]
    max_turns = max(max_turns, _draw_printed(ax, same, len(infos), normalized))
    twin = None
    if other:
        twin = ax.twinx()
        max_turns = max(max_turns, _draw_printed(twin, other, len(infos) + len(same), normalized))
        twin.set_ylim(-4, 104)
        twin.set_ylabel("AL(k) as printed (%), its own axis", color="#555555")
        twin.spines["top"].set_visible(False)
        twin.tick_params(labelsize=9)
    only_percent = not normalized and not infos and all(r.setup.scale == "percent" for r in printed)

    ax.set_xlim(0.6, max_turns + 0.4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(max_turns, 10)))
    ax.set_xlabel("turn k")
    if normalized:
        ax.set_ylim(-0.05, 1.05)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("N-AL(k)  (min–max normalised)")
    elif only_percent:
        ax.set_ylim(-4, 104)
        ax.set_ylabel("AL(k) as printed (%)")
    else:
        ax.set_ylim(0.8, 5.2)
        ax.set_yticks(range(1, 6))
        ax.set_ylabel("AL(k)  mean judge score (1–5)")
    ax.grid(axis="y", color="#dddddd", linewidth=0.7)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right") if twin is None else ("top",):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)

    heading = title or ("Normalised per-turn alignment N-AL(k)" if normalized else "Per-turn alignment AL(k)")
    # Title and setup line both start at the plot's left edge; the heading sits above the setup lines.
    ax.set_title(subtitle, fontsize=8.5, color="#444444", loc="left", pad=8)
    ax.annotate(
        heading, xy=(0, 1), xycoords="axes fraction", xytext=(0, 8 + 11 * (subtitle.count("\n") + 1) + 3),
        textcoords="offset points", fontsize=12.5, fontweight="bold", ha="left", va="bottom",
    )  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if any_band:
        handles.append(Patch(facecolor="#888888", alpha=0.25, edgecolor="none"))
        labels.append(
            "shaded: AL(k)'s 95% bootstrap CI over conversations, same rescaling"
            if normalized
            else "shaded: 95% bootstrap CI over conversations"
        )
    fig.legend(
        handles, labels, loc="outside lower center", ncols=1 if len(labels) <= 4 else 2, fontsize=8.5,
        frameon=False, handlelength=2.2,
    )  # fmt: skip

    with rc_context({"svg.hashsalt": "aloe-bench"}):  # fixed SVG element ids
        fig.savefig(output, format=fmt, dpi=dpi, metadata=METADATA[fmt], facecolor="white")
    return output
