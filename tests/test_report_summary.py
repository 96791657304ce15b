"""The end-of-run summary explains itself (issue 15): metric meanings, small-sample notes,
truncation per role, the embedded-judge warning last."""

from __future__ import annotations

import json

from aloe_bench.log.records import RunResults
from aloe_bench.reports.run_summary import summary_table
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def _results(al, n=None, *, judge="openai/x", usage=None, warnings=None, n_ir=None, n_r2=None, ir=None):
    return {
        "config": {"model": {"spec": "m"}, "judge": {"spec": judge, "max_new_tokens": 16}},
        "metrics": {
            "al": al,
            "n": n or [5] * len(al),
            "invalid": [0] * len(al),
            "avg": 3.0,
            "ir": ir,
            "n_ir": n_ir,
            "n_r2": n_r2,
            "conversations": 5,
            "ci": {},
        },
        "usage": usage or {},
        "warnings": warnings or [],
    }


def test_two_turn_n_r2_is_not_shown_as_a_perfect_fit():
    text = summary_table(RunResults.from_dict(_results([2.0, 3.0], ir=1.0, n_ir=1.0, n_r2=1.0)))
    n_r2 = next(line for line in text.splitlines() if line.startswith("N-R2"))
    assert "1.0000" not in n_r2 and "n/a" in n_r2 and "2 points" in n_r2
    assert "one difference, not a trend" in next(line for line in text.splitlines() if line.startswith("IR"))


def test_one_turn_explains_why_the_slopes_are_missing():
    text = summary_table(RunResults.from_dict(_results([3.0])))
    for name in ("IR", "N-IR", "N-R2"):
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert "needs at least 2 scored turns" in line


def test_meanings_and_readme_pointer_and_small_sample_note():
    text = summary_table(RunResults.from_dict(_results([2.0, 3.0, 4.0], ir=1.0, n_ir=0.5, n_r2=1.0)))
    assert 'section "Reading the results"' in text
    for name in ("AVG", "IR", "N-IR", "AL(k)"):
        assert any(line.strip().startswith(name + " ") for line in text.splitlines() if line.startswith("  "))
    assert "5 conversations: a small sample" in text


def test_embedded_judge_warning_comes_last_also_for_old_runs():
    old = _results([2.0, 3.0, 4.0], judge="embedded")
    del old["warnings"]  # a run written before results.json had warnings
    old["warnings"] = [{"code": "simulator-silent", "message": "something else"}]
    lines = summary_table(RunResults.from_dict(old)).splitlines()
    assert lines[-1].startswith("WARNING (embedded-judge)") and "cannot judge" in lines[-1]
    assert lines[-2].startswith("WARNING (simulator-silent)")


def test_a_run_records_and_reports_truncated_replies_per_role(cli, tmp_path):
    roles = []
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["4"])) as server:
        for role in ("model", "simulator", "judge"):
            roles += [f"--{role}", "openai/fake", f"--{role}-base-url", server.base_url]
        code, out, err = cli(
            "run", *roles, "--personas", "demo", "--limit", "2", "--turns", "2", "--max-new-tokens", "5",
            "--no-progress", "--output", tmp_path / "run", "--cache", tmp_path / "c.sqlite",
        )  # fmt: skip
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    usage = results["usage"]
    assert usage["model"]["truncated"] == 4  # every reply (13 words) cut at 5 tokens
    assert usage["judge"]["truncated"] == 0 and usage["simulator"]["truncated"] == 0
    (truncated,) = [w for w in results["warnings"] if w["code"] == "truncated"]
    assert "model 4 of 4 (max_new_tokens 5)" in truncated["message"]
    assert "cut at max_new_tokens: model 4/4, simulator 0/4, judge 0/4" in out
