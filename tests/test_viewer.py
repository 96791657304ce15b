"""`aloe-bench view` without a browser: the page's data, its escaping, the CLI, and the hooks that write
report.html at the end of `run`, `judge` and `leaderboard --publish`. (test_viewer_browser.py loads the
pages in Chromium.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from aloe_bench.log.results import load_run
from aloe_bench.metrics.alignment import curve_stats
from aloe_bench.reports.compare import compare_to_baseline
from aloe_bench.reports.viewer import build_payload, write_run_report
from aloe_bench.reports.viewer.page import embed_json, render_page
from aloe_bench.reports.viewer.stats import normalized_fit_ci
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_bench.testing.report_runs import INJECTIONS, write_report_run

REPO = Path(__file__).resolve().parents[1]
MULTIFACETED_RUN = REPO / "tests" / "data" / "view_multifaceted_run"


def _data_block(page: str) -> str:
    match = re.search(r'<script type="application/json" id="aloe-data">(.*?)</script>', page, re.S)
    assert match, "the page has no data block"
    return match.group(1)


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("view-runs")
    return {
        "base": write_report_run(root / "base", personas=8, turns=4, seed=0, model="m/base", failed=1),
        "better": write_report_run(root / "better", personas=8, turns=4, seed=1, model="m/better", skill=0.8),
        "injection": write_report_run(root / "injection", personas=3, turns=3, seed=2, injection=True),
    }


def test_embedded_json_cannot_end_its_script_block_and_reads_back_the_same():
    data = {"reply": "".join(INJECTIONS), "nested": [{"x": "</SCRIPT ><!--"}]}
    text = embed_json(data)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert json.loads(text) == data


def test_page_has_no_markup_from_data_and_allows_only_its_own_script(small_runs):
    page = render_page(build_payload([small_runs["injection"]]))
    block = _data_block(page)
    assert "<" not in block and "\u2028" not in block
    assert page.count("<script") == 2  # the data block and the page's own script: nothing injected
    assert "onerror" not in page.replace(block, "")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # nothing fetched
    script = re.search(r"<script>(.*)</script>\s*</body>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert f"script-src &#x27;sha256-{digest}&#x27;" in csp and "default-src &#x27;none&#x27;" in csp
    payload = json.loads(block)
    assert payload["runs"][0]["conversations"][0]["persona"]["profile"].startswith(INJECTIONS[0])


def test_view_cli_writes_report_html_into_the_run(cli, small_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_runs["base"], run)
    code, out, err = cli("view", run)
    assert code == 0, err
    page = (run / "report.html").read_text(encoding="utf-8")
    assert f"wrote {run / 'report.html'}" in out
    payload = json.loads(_data_block(page))
    (r,) = payload["runs"]
    assert len(r["conversations"]) == 8 and r["kind"] == "aloe"
    assert [w["code"] for w in r["warnings"]] == ["judge-no-discrimination"]
    assert set(r["sections"]) >= {"reliability", "validity", "audit"}
    assert set(r["audit"]) == {f"p{i:03d}" for i in range(8)}
    turn = r["conversations"][0]["turns"][0]
    assert [j["judge"] for j in turn["judgements"]] == ["synthetic/judge-a", "synthetic/judge-b"]
    assert r["metrics"]["ci"]["n_ir"] is not None and r["metrics"]["ci"]["normalized_by_viewer"]


def test_view_of_several_runs_carries_compare_statistics(cli, small_runs, tmp_path):
    out = tmp_path / "cmp.html"
    code, _, err = cli("view", small_runs["base"], small_runs["better"], "--output", out, "--label", "A", "B")
    assert code == 0, err
    payload = json.loads(_data_block(out.read_text(encoding="utf-8")))
    assert [r["label"] for r in payload["runs"]] == ["A", "B"]
    (c,) = payload["comparisons"]
    expected = compare_to_baseline(load_run(small_runs["base"]), [load_run(small_runs["better"])])[0]
    assert (
        c["overall"]["diff"] == expected.overall.diff and c["overall"]["p_value"] == expected.overall.p_value
    )
    assert c["p_holm"] == expected.p_holm and len(c["per_turn"]) == 4
    assert c["overall"]["n"] == 7  # the failed conversation of `base` is not paired


@pytest.mark.parametrize(
    "args, message",
    [
        (["RUN_A", "RUN_B"], "need --output FILE.html"),
        (["RUN_A", "--output", "page.txt"], "must end in .html"),
        (["NOT_A_RUN"], "is not a run directory"),
        (["RUN_A", "MF", "--output", "x.html"], "cannot compare runs of different tasks"),
        (["RUN_A", "--n-bootstrap", "0"], "--n-bootstrap must be at least 1"),
    ],
)
def test_view_bad_input_is_one_line_and_exit_2(cli, small_runs, tmp_path, args, message):
    names = {"RUN_A": small_runs["base"], "RUN_B": small_runs["better"], "MF": MULTIFACETED_RUN}
    names["NOT_A_RUN"] = tmp_path
    code, _, err = cli(
        "view", *[names.get(a, tmp_path / a if a.endswith((".html", ".txt")) else a) for a in args]
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_malformed_audit_line_names_file_and_line(cli, small_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_runs["base"], run)
    with (run / "audit.jsonl").open("a") as f:
        f.write("{not json\n")
    code, _, err = cli("view", run)
    assert code == 2 and "audit.jsonl:9: not valid JSON" in err


def test_normalized_fit_interval_matches_curve_stats_on_each_resample():
    rng = np.random.default_rng(3)
    scores = rng.integers(1, 6, size=(15, 5)).astype(float)
    scores[rng.random(scores.shape) < 0.1] = np.nan
    got = normalized_fit_ci(scores, seed=7, n_bootstrap=300)
    # the same resamples, one at a time, through the project's own curve statistics
    idx = np.random.default_rng(7).integers(0, 15, size=(300, 15))
    n_ir, n_r2 = [], []
    for row in idx:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample may leave a turn empty
            stats = curve_stats(np.nanmean(scores[row], axis=0))
        if stats["n_ir"] is not None:
            n_ir.append(stats["n_ir"])
            n_r2.append(stats["n_r2"])
    assert got["n_ir"] == pytest.approx(list(np.percentile(n_ir, [2.5, 97.5])), abs=1e-5)
    assert got["n_r2"] == pytest.approx(list(np.percentile(n_r2, [2.5, 97.5])), abs=1e-5)


def test_line_separators_inside_model_text_survive_load_run(tmp_path):
    run = write_report_run(tmp_path / "run", personas=2, turns=4, injection=True)  # turn 4 holds U+2028
    convs = load_run(run).conversations
    assert len(convs) == 2 and any("\u2028" in t.assistant for t in convs[0].turns)


def test_published_runs_load_and_are_flagged_for_the_embedded_judge():
    payload = build_payload([REPO / "leaderboard" / "runs" / "embedded-demo"])
    (r,) = payload["runs"]
    # The runs record it themselves now; older ones get it from the viewer. Either way it comes first.
    assert r["warnings"][0]["code"] == "embedded-judge"
    assert len(r["conversations"]) == 12 and r["metrics"]["avg"] is not None


def test_multifaceted_run_payload_keeps_rubrics():
    payload = build_payload([MULTIFACETED_RUN])
    assert payload["kind"] == "multifaceted"
    turn = payload["runs"][0]["conversations"][0]["turns"][0]
    assert turn["rubric_scores"][0]["samples"][0]["answers"]
    assert payload["runs"][0]["metrics"]["by_dimension"]
    # The page names and shows the run from what its task says of itself, not from its kind.
    task = payload["runs"][0]["task"]
    assert (task["title"], task["item"], payload["title"]) == ("Multifaceted", "instance", "Multifaceted")
    metrics = payload["runs"][0]["metrics"]
    assert task["headline"] == {"label": "score", "key": "score", **metrics["values"]["score"]}
    assert task["headline"]["value"] == metrics["score"] and task["headline"]["n"] == metrics["conversations"]


def test_judge_command_writes_the_new_runs_report(cli, small_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    source = tmp_path / "source"
    shutil.copytree(small_runs["better"], source)
    out = tmp_path / "rejudged"
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["4"])) as server:
        code, stdout, err = cli(
            "judge", source, "--judge", "openai/fake-judge", "--judge-base-url", server.base_url,
            "--output", out, "--no-cache", "--no-progress",
        )  # fmt: skip
    assert code in (0, 3), err
    assert f"report: {out / 'report.html'}" in stdout
    payload = json.loads(_data_block((out / "report.html").read_text(encoding="utf-8")))
    assert payload["runs"][0]["header"]["judge"]["spec"] == "openai/fake-judge"
    assert not (source / "report.html").exists()  # the source run is left untouched


def test_write_run_report_is_the_one_call_for_other_commands(small_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_runs["base"], run)
    path = write_run_report(run)
    assert path == run / "report.html" and path.stat().st_size > 10_000


def test_run_command_writes_report_html_at_the_end(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    out = tmp_path / "run"
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["3", "5"])) as server:
        roles = []
        for role in ("model", "simulator", "judge"):
            roles += [
                f"--{role}",
                "openai/fake",
                f"--{role}-base-url",
                server.base_url,
                f"--{role}-args",
                "backoff=0.01",
            ]
        code, stdout, err = cli(
            "run", *roles, "--personas", "demo", "--limit", "2", "--turns", "2", "--no-progress",
            "--output", out, "--no-cache",
        )  # fmt: skip
    assert code == 0, err
    assert f"report: {out / 'report.html'}" in stdout
    payload = json.loads(_data_block((out / "report.html").read_text(encoding="utf-8")))
    scores = [[t["score"] for t in c["turns"]] for c in payload["runs"][0]["conversations"]]
    expected = [[t.score for t in c.turns] for c in load_run(out).conversations]
    assert scores == expected and len(scores) == 2


def test_the_kind_a_run_shows_is_read_from_its_record_and_the_task_registry(tmp_path, monkeypatch):
    # A run that records no kind: the run log says which it is (`effective_kind`), the viewer does
    # not guess. A run of a task registered through the task API: named and headlined by that task.
    from dataclasses import replace

    from aloe_bench.engine import task_api
    from aloe_bench.log.records import UNRECORDED_KIND
    from aloe_bench.testing.runs import write_synthetic_run

    third = replace(task_api.get_task("aloe"), kind="viewed_third", title="Viewed third", item="dialogue")
    monkeypatch.setitem(task_api._REGISTERED, "viewed_third", third)
    plain = write_synthetic_run(tmp_path / "plain", {"a": [3, 4], "b": [2, 5]})
    assert "kind" not in json.loads((plain / "results.json").read_text())["config"]
    assert load_run(plain).config.effective_kind == UNRECORDED_KIND
    assert build_payload([plain])["runs"][0]["kind"] == UNRECORDED_KIND
    other = write_synthetic_run(tmp_path / "other", {"a": [3, 4], "b": [2, 5]})
    results = json.loads((other / "results.json").read_text())
    results["config"]["kind"] = "viewed_third"
    (other / "results.json").write_text(json.dumps(results))
    (r,) = build_payload([other])["runs"]
    assert r["kind"] == "viewed_third"
    assert (r["task"]["title"], r["task"]["item"]) == ("Viewed third", "dialogue")
