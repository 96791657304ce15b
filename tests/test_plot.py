"""The plot command writes valid images of the expected size, with bands from the runs' bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aloe_bench.log.results import load_run, score_matrix
from aloe_bench.metrics.alignment import alignment_metrics
from aloe_bench.reports.plot import run_curve
from aloe_bench.reports.runinfo import load_runs
from aloe_bench.testing.runs import write_synthetic_run


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(20)]
    a = {pid: [int(v) for v in rng.integers(1, 6, size=5)] for pid in ids}
    b = {pid: [min(5, s + 1) for s in row] for pid, row in a.items()}
    return (
        write_synthetic_run(tmp_path / "a", a, model="hf/a"),
        write_synthetic_run(tmp_path / "b", b, model="hf/b", judge="openai/j2"),
    )


@pytest.mark.parametrize("dpi,size", [(100, (700, 440)), (200, (1400, 880))])
def test_png_has_the_expected_size(two_runs, tmp_path, cli, dpi, size):
    target = tmp_path / "curves.png"
    code, out, err = cli("plot", *two_runs, "--output", target, "--dpi", dpi)
    assert code == 0, err
    assert out.strip() == f"wrote {target}"
    with Image.open(target) as image:
        image.verify()  # a complete, uncorrupted PNG
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == size
        # Not blank: the curves put coloured pixels on the white page.
        pixels = np.asarray(image.convert("RGB"))
        assert (pixels.std(axis=2) > 30).mean() > 0.005


def test_normalized_svg_and_pdf(two_runs, tmp_path, cli):
    code, _, err = cli("plot", *two_runs, "--output", tmp_path / "n.svg", "--normalized")
    assert code == 0, err
    svg = (tmp_path / "n.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "N-AL(k)" in svg
    assert "judge: mixed" in svg and "[judge openai/j2]" in svg  # the varying setup goes to the legend
    code, _, err = cli("plot", *two_runs, "--output", tmp_path / "c.pdf")
    assert code == 0, err
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_same_data_gives_the_same_file(two_runs, tmp_path, cli):
    for name in ("x.svg", "y.svg"):
        assert cli("plot", *two_runs, "--output", tmp_path / name)[0] == 0
    assert (tmp_path / "x.svg").read_bytes() == (tmp_path / "y.svg").read_bytes()


def test_band_is_the_recorded_bootstrap(two_runs):
    info = load_runs([two_runs[0]])[0]
    curve = run_curve(info)
    m = json.loads((two_runs[0] / "results.json").read_text())["metrics"]
    assert curve.y.tolist() == m["al"]
    assert curve.lo.tolist() == [b[0] for b in m["ci"]["al"]]
    assert curve.hi.tolist() == [b[1] for b in m["ci"]["al"]]
    normalized = run_curve(info, normalized=True)
    assert np.nanmin(normalized.y) == 0 and np.nanmax(normalized.y) == 1
    assert normalized.y == pytest.approx(m["n_al"], abs=1e-5)


def test_band_is_recomputed_when_the_run_recorded_none(two_runs):
    """A run still going records no intervals: the band comes from its conversations."""
    path = two_runs[0]
    results = json.loads((path / "results.json").read_text())
    results["metrics"]["ci"] = {"avg": None, "ir": None, "al": [None] * 5}
    results["status"] = "running"
    (path / "results.json").write_text(json.dumps(results))
    curve = run_curve(load_runs([path])[0])
    run = load_run(path)
    expected = alignment_metrics(score_matrix(run.conversations, 5), seed=0)["ci"]["al"]
    assert curve.lo.tolist() == [b[0] for b in expected] and curve.hi.tolist() == [b[1] for b in expected]


def test_flat_curve_has_no_normalized_line(tmp_path):
    flat = write_synthetic_run(tmp_path / "flat", {"x": [3, 3, 3], "y": [4, 4, 4]})
    curve = run_curve(load_runs([flat])[0], normalized=True)
    assert np.isnan(curve.y).all()


def test_bad_output_name_is_one_line(two_runs, tmp_path, cli):
    code, _, err = cli("plot", *two_runs, "--output", tmp_path / "curves.jpg")
    assert code == 2 and ".png, .svg or .pdf" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["plot", "leaderboard", "compare", None])
def test_help_renders(cli, command):
    with pytest.raises(SystemExit) as exit_info:
        cli(*([command] if command else []), "--help")
    assert exit_info.value.code == 0
