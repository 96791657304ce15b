"""`aloe-bench judge RUN_DIR`: judging a finished run again, without generating anything."""

from __future__ import annotations

import hashlib
import json

import pytest

from aloe_bench.log.results import load_run


def _digest(directory) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.mark.slow
def test_rejudging_with_another_protocol_calls_only_the_judge(cli, tiny_hf_run, tmp_path):
    source, cache = tiny_hf_run
    before = _digest(source)
    out = tmp_path / "rejudged"
    args = ["judge", source, "--judge", "embedded", "--protocol", "aloe-history"]
    args += ["--judge-max-new-tokens", "16", "--cache", cache, "--output", out, "--no-progress"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "protocol=aloe-history" in stdout

    results = json.loads((out / "results.json").read_text())
    usage = results["usage"]
    for role in ("model", "simulator"):  # nothing regenerated, nothing even replayed
        assert usage[role]["calls"] == 0 and usage[role]["cached"] == 0, role
    assert usage["judge"]["calls"] >= 4  # 2 conversations x 2 turns, plus any re-asks
    config = results["config"]
    assert config["protocol"] == "aloe-history"
    assert (
        config["prompts"]["judge"]["name"]
        != json.loads((source / "results.json").read_text())["config"]["prompts"]["judge"]["name"]
    )
    assert config["rejudged_from"]["path"] == str(source.resolve())
    assert config["rejudged_from"]["protocol"] == "aloe-v1"
    assert results["metrics"]["conversations"] == 2 and results["status"] == "complete"

    # Same conversations, newly judged; the original run is untouched.
    old, new = load_run(source).conversations, load_run(out).conversations
    assert [(t.user, t.assistant) for c in old for t in c.turns] == [
        (t.user, t.assistant) for c in new for t in c.turns
    ]
    assert all(t.judged and t.judge_raw is not None for c in new for t in c.turns)
    assert _digest(source) == before

    # Re-running resumes from the call cache: no judge call is made again.
    code, _, err = cli(*args)
    assert code == 0, err
    again = json.loads((out / "results.json").read_text())
    # usage counts both invocations: the first one's calls, this one's cache hits
    assert again["usage"]["judge"]["calls"] == usage["judge"]["calls"]
    assert again["usage"]["judge"]["cached"] == usage["judge"]["calls"] + usage["judge"]["cached"]
    assert again["metrics"]["al"] == results["metrics"]["al"]


def test_rejudge_refuses_what_is_not_a_run_and_the_run_itself(cli, tiny_hf_run, tmp_path):
    code, _, err = cli("judge", tmp_path, "--judge", "embedded")
    assert code == 2 and "not a run directory" in err
    source, _ = tiny_hf_run
    code, _, err = cli("judge", source, "--judge", "embedded", "--output", source)
    assert code == 2 and "untouched" in err
    code, _, err = cli("judge", source, "--judge", "embedded", "--protocol", "nope")
    assert code == 2 and "unknown judge protocol" in err


def test_a_run_whose_task_has_no_rejudge_is_refused_in_one_line(cli, tmp_path):
    # `aloe-bench judge` asks the run's own task for its re-judge; Multifaceted defines none.
    import shutil
    from pathlib import Path

    source = tmp_path / "mf"
    shutil.copytree(Path(__file__).parent / "data" / "view_multifaceted_run", source)
    before = _digest(source)
    code, _, err = cli("judge", source, "--judge", "embedded", "--output", tmp_path / "out", "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is a Multifaceted run, whose task has no re-judge" in err
    assert _digest(source) == before and not (tmp_path / "out").exists()


def test_a_run_whose_task_has_no_audit_is_refused_in_one_line(cli, tmp_path):
    # `aloe-bench audit` asks the run's own task for its audit; Multifaceted has nothing to audit.
    import shutil
    from pathlib import Path

    source = tmp_path / "mf"
    shutil.copytree(Path(__file__).parent / "data" / "view_multifaceted_run", source)
    before = _digest(source)
    code, _, err = cli("audit", source)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is a Multifaceted run, whose task has nothing to audit" in err
    assert _digest(source) == before
