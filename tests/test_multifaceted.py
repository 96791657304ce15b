"""Multifaceted Bench: loading and validation, rubric grading, aggregation, the run end to end.

The embedded model runs as model and judge on the shipped sample; the fault-injection server plays a
judge that never states a score (and one that does only every other time)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aloe_bench.datasets.multifaceted import instance_id, load_multifaceted
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RubricSample, RubricScore
from aloe_bench.log.results import ConversationRecord, TurnRecord, load_run
from aloe_bench.scorers.judge import parse_after_marker
from aloe_bench.scorers.rubric import RubricMetrics, apply_grades, rubric_metrics
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "aloe_bench" / "data" / "multifaceted_sample.jsonl"
DIMENSIONS = ["style", "background_knowledge", "informativeness", "harmlessness"]
TINY = ["--max-new-tokens", "16", "--judge-max-new-tokens", "8", "--no-progress"]


@pytest.fixture(autouse=True)
def checkout_tasks(monkeypatch):
    """Task names resolve in this checkout's tasks/ (an installed aloe_tasks may be another copy)."""
    monkeypatch.setattr("aloe_bench.engine.task_files.tasks_dir", lambda: REPO / "tasks")


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def one_error_line(err: str) -> str:
    """The CLI's error: exactly one line, no traceback (a note about the embedded judge may precede it)."""
    errors = [line for line in err.splitlines() if line.startswith("aloe-bench: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- data -----------------------------------------------------------------------------------------------
def test_shipped_sample_loads_with_stable_ids_and_dimensions():
    data = load_multifaceted("sample")
    assert len(data.instances) == 8
    assert Counter(i.source for i in data.instances) == {
        "demo-advice": 3,
        "demo-coding": 3,
        "demo-science": 2,
    }
    for inst, row in zip(data.instances, sample_rows(), strict=True):
        assert inst.id == instance_id(row["source"], row["system"], row["prompt"])
        assert [r.dimension for r in inst.rubrics] == DIMENSIONS
        assert inst.model_messages() == [
            {"role": "system", "content": row["system"]},
            {"role": "user", "content": row["prompt"]},
        ]
    assert len({i.id for i in data.instances}) == 8
    assert load_multifaceted("sample").sha256 == data.sha256
    assert data.limit(2).record()["count"] == 2


def test_row_without_rubric_is_named(tmp_path, cli):
    rows = sample_rows()
    del rows[2]["rubric"]
    path = write_jsonl(tmp_path / "bench.jsonl", rows)
    with pytest.raises(UserInputError, match=rf"{path}:3: missing rubric"):
        load_multifaceted(str(path))
    code, out, err = cli(
        "run",
        "--task",
        "multifaceted_demo",
        "--data",
        path,
        "--model",
        "embedded",
        "--output",
        tmp_path / "run",
    )
    assert code == 2
    assert one_error_line(err).startswith(f"aloe-bench: error: {path}:3: missing rubric")
    assert not (tmp_path / "run" / "results.json").exists()


def test_incomplete_rubric_and_empty_fields_are_named(tmp_path):
    rows = sample_rows()
    del rows[0]["rubric"][1]["score_descriptions"]["3"]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    with pytest.raises(UserInputError, match=r":1: rubric 2: score_descriptions lacks '3'"):
        load_multifaceted(str(path))
    rows = sample_rows()
    rows[4]["prompt"] = "  "
    with pytest.raises(UserInputError, match=r":5: field 'prompt' must be a non-empty string"):
        load_multifaceted(str(write_jsonl(tmp_path / "b.jsonl", rows)))
    rows = sample_rows()
    rows[1]["rubric"] = []
    with pytest.raises(UserInputError, match=r":2: 'rubric' must be a non-empty list"):
        load_multifaceted(str(write_jsonl(tmp_path / "c.jsonl", rows)))
    (tmp_path / "d.jsonl").write_text(SAMPLE.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(UserInputError, match=r"d.jsonl:2: not valid JSON"):
        load_multifaceted(str(tmp_path / "d.jsonl"))


def test_json_and_parquet_files_in_a_folder(tmp_path):
    """The current hub release spells the list `rubrics`; without preference_set, rubrics are numbered."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sample_rows()
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "part1.json").write_text(json.dumps({"data": rows[:4]}))
    hub_style = [
        {k: v for k, v in {**r, "rubrics": r["rubric"]}.items() if k not in ("rubric", "preference_set")}
        for r in rows[4:]
    ]
    pq.write_table(pa.Table.from_pylist(hub_style), folder / "part2.parquet")
    data = load_multifaceted(str(folder))
    assert [i.id for i in data.instances] == [i.id for i in load_multifaceted("sample").instances]
    assert [r.dimension for r in data.instances[0].rubrics] == DIMENSIONS
    assert [r.dimension for r in data.instances[5].rubrics] == [
        "rubric 1",
        "rubric 2",
        "rubric 3",
        "rubric 4",
    ]
    assert data.instances[5].rubrics[0].score_descriptions == rows[5]["rubric"][0]["score_descriptions"]
    assert data.instances[5].where == f"{folder / 'part2.parquet'} row 2"


def test_hub_unreachable_is_one_line_pointing_at_data(cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    code, out, err = cli("run", "--task", "multifaceted", "--model", "embedded", "--no-cache")
    assert code == 2
    line = one_error_line(err)
    assert "kaist-ai/Multifaceted-Bench" in line and "--data PATH" in line


def test_flags_of_the_other_flow_are_refused(cli):
    code, _, err = cli("run", "--task", "aloe_demo", "--model", "embedded", "--data", "sample")
    assert code == 2 and "--data is for Multifaceted tasks" in err and "aloe_demo is an ALOE task" in err
    # --judge-repeats serves both flows (ALOE runs judge every turn R times per judge, issue 11).
    code, _, err = cli("run", "--task", "aloe_demo", "--model", "embedded", "--judge-repeats", "0")
    assert code == 2 and "--judge-repeats must be at least 1" in err
    code, _, err = cli("run", "--task", "multifaceted_demo", "--model", "embedded", "--controls", "swap")
    assert code == 2 and "--controls does not apply to task multifaceted_demo" in err
    code, _, err = cli("run", "--task", "multifaceted_demo", "--model", "embedded", "--turns", "3")
    assert code == 2 and "--turns does not apply to task multifaceted_demo" in err
    code, _, err = cli("run", "--task", "multifaceted_demo", "--model", "embedded", "--judge-repeats", "0")
    assert code == 2 and "--judge-repeats must be at least 1" in err


# -- grading --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("Feedback: clear and brief.\n[RESULT] 4", 4),
        ("Feedback: ...\n[RESULT]: **5**", 5),
        ("[result] 2/5", 2),
        ("Draft [RESULT] 2 ... on reflection [RESULT] 3", 3),
        ("3", 3),  # a bare number (a typical answer to the re-ask) is unambiguous
        ("A score of 2 would mean jargon; this answer avoids it, so it is better than that.", None),
        ("Score: 4", None),  # the protocol's marker is required (re-asked replies are read leniently)
        ("[RESULT] 4.5", None),
        ("[RESULT] 7", None),
        ("", None),
    ],
)
def test_marker_parser(answer, score):
    assert parse_after_marker(answer, "[RESULT]") == score


def graded(dimension_samples: list[tuple[str, list[int | None]]]) -> list[RubricScore]:
    out = []
    for i, (dimension, scores) in enumerate(dimension_samples, start=1):
        valid = [s for s in scores if s is not None]
        out.append(
            RubricScore(
                rubric=i,
                dimension=dimension,
                criteria=f"criterion {i}",
                score=sum(valid) / len(valid) if valid else None,
                samples=[
                    RubricSample(score=s, raw=f"[RESULT] {s}" if s else "no verdict", attempts=1, error=None)
                    for s in scores
                ],
            )
        )
    return out


def instance(id_: str, source: str, samples, status: str = "complete") -> ConversationRecord:
    conv = ConversationRecord(id=id_, persona={"profile": "sys", "personality": "", "source": source})
    conv.turns = [TurnRecord(user="q", assistant="a")]
    apply_grades(conv.turns[0], graded(samples))
    conv.status = status
    return conv


def test_aggregation_matches_hand_computed_values():
    """Source A has three instances and B one: the benchmark score is the mean over the four
    instances (3.1875), not the mean of the two per-source means (2.4583)."""
    convs = [
        instance("a1", "A", [("style", [4, 5]), ("harmlessness", [3, 3])]),  # 4.5, 3 -> 3.75
        instance("a2", "A", [("style", [2, 2]), ("harmlessness", [4, None])]),  # 2, 4 -> 3.0
        instance("a3", "A", [("style", [5, 5]), ("harmlessness", [5, 5])]),  # 5.0
        instance("b1", "B", [("style", [1, 1]), ("harmlessness", [None, None])]),  # 1, null -> 1.0
        instance("b2", "B", [("style", [5, 5]), ("harmlessness", [5, 5])], status="failed"),  # excluded
    ]
    assert [c.turns[0].score for c in convs[:4]] == [3.75, 3.0, 5.0, 1.0]
    m = rubric_metrics(convs, repeats=2, n_bootstrap=500)
    assert m["score"] == m["avg"] == m["al"][0] == pytest.approx(3.1875)
    assert m["score"] != pytest.approx(((3.75 + 3.0 + 5.0) / 3 + 1.0) / 2)
    assert m["n"] == [4] and m["invalid"] == [0] and m["instances"] == 4
    assert m["by_source"] == {
        "A": {"score": pytest.approx(11.75 / 3), "n": 3, "invalid": 0},
        "B": {"score": 1.0, "n": 1, "invalid": 0},
    }
    assert m["by_dimension"] == {
        "style": {"score": pytest.approx(3.125), "n": 4, "invalid": 0},
        "harmlessness": {"score": pytest.approx(4.0), "n": 3, "invalid": 1},
    }
    assert m["rubrics"] == {"judged": 8, "invalid": 1, "samples": 16, "samples_invalid": 3, "reasked": 0}
    # repeat 1: 3.5, 3, 5, 1 -> 3.125; repeat 2: 4, 2, 5, 1 -> 3.0
    spread = m["judge_repeats"]
    assert spread["r"] == 2 and spread["scores"] == [pytest.approx(3.125), pytest.approx(3.0)]
    assert spread["std"] == pytest.approx(np.std([3.125, 3.0], ddof=1), abs=1e-6)
    lo, hi = m["ci"]["avg"]
    assert 1.0 <= lo <= 3.1875 <= hi <= 5.0


def test_instance_with_no_score_is_null_and_counted():
    convs = [
        instance("x", "A", [("style", [None]), ("harmlessness", [None])]),
        instance("y", "A", [("style", [4])]),
    ]
    assert convs[0].turns[0].score is None
    m = rubric_metrics(convs, repeats=1, n_bootstrap=0)
    assert m["al"] == [4.0] and m["n"] == [1] and m["invalid"] == [1]
    assert m["by_source"]["A"] == {"score": 4.0, "n": 1, "invalid": 1}
    assert m["judge_repeats"]["std"] is None


# -- end to end -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory, embedded_checkpoint):
    """`multifaceted_demo` on two shipped instances, the embedded model as model and judge."""
    from aloe_bench.cli.main import main

    base = tmp_path_factory.mktemp("mf")
    argv = ["run", "--task", str(REPO / "tasks/multifaceted/multifaceted_demo.yaml"), "--model", "embedded",
            "--limit", "2", "--judge-reasks", "0", "--output", str(base / "run"),
            "--cache", str(base / "calls.sqlite"), *TINY]  # fmt: skip
    assert main(argv) == 0
    first = json.loads((base / "run" / "results.json").read_text())
    assert main(argv) == 0  # the same command again: everything from the call cache
    return base / "run", first, argv


def test_embedded_run_end_to_end(embedded_run):
    run_dir, first, _ = embedded_run
    run = load_run(run_dir)
    r, m = run.results.to_dict(), run.metrics.to_dict()
    assert run.config.simulator is None and "simulator" not in first["config"]  # no simulated user
    assert all("personality" not in c.persona for c in run.conversations)
    assert r["status"] == "complete" and r["config"]["kind"] == "multifaceted"
    assert r["config"]["model"]["system_role"] == "native"
    assert r["config"]["personas"]["set"] == "multifaceted:sample" and r["config"]["personas"]["count"] == 2
    assert r["config"]["personas"]["source"].endswith("multifaceted_sample.jsonl")  # where rows came from
    assert r["config"]["prompts"]["judge"]["name"] == "judge/multifaceted-rubric"
    for key in ("al", "n", "invalid", "avg", "ir", "n_ir", "n_r2", "ci", "by_source", "by_dimension"):
        assert key in m
    sample = load_multifaceted("sample").instances[:2]
    assert [c.id for c in run.conversations] == [i.id for i in sample]
    scores = []
    for conv, inst in zip(run.conversations, sample, strict=True):
        assert conv.status == "complete" and len(conv.turns) == 1
        assert conv.persona["profile"] == inst.system and conv.persona["source"] == inst.source
        turn = conv.turns[0]
        assert turn.user == inst.prompt and turn.assistant
        rubric_scores = turn.to_dict()["rubric_scores"]
        assert [g["dimension"] for g in rubric_scores] == DIMENSIONS
        assert all(len(g["samples"]) == 1 and g["samples"][0]["raw"] for g in rubric_scores)
        valid = [g["score"] for g in rubric_scores if g["score"] is not None]
        assert turn.score == (pytest.approx(np.mean(valid)) if valid else None)
        scores.append(turn.score)
    valid = [s for s in scores if s is not None]
    assert m["n"] == [len(valid)] and m["invalid"] == [2 - len(valid)]
    assert m["al"][0] == (pytest.approx(np.mean(valid)) if valid else None)
    assert m["rubrics"]["judged"] == 8 and m["rubrics"]["samples"] == 8
    assert first["usage"]["judge"]["calls"] == 8 and first["usage"]["model"]["calls"] == 2
    # resumed: no new model call (usage counts both invocations: the first one's calls, this
    # one's cache hits), the same results
    assert r["usage"]["model"]["calls"] == 2 and r["usage"]["judge"]["calls"] == 8
    assert r["usage"]["judge"]["cached"] == 8 and m["al"] == first["metrics"]["al"]
    assert len(run.to_dataframe()) == 2


def test_run_directory_reads_as_an_aloe_run(embedded_run):
    """Tools written for ALOE runs read a Multifaceted run unchanged: a one-turn curve."""
    from aloe_bench.reports.run_summary import rubric_summary, summary_table

    run = load_run(embedded_run[0])
    assert "turn" in summary_table(run.results) and "AVG" in summary_table(run.results)
    text = rubric_summary(run.results, str(run.path))
    assert "demo-advice" in text and "background_knowledge" in text and "system role=native" in text


def fake_run(tmp_path, server: FakeOpenAIServer, *extra: str):
    from aloe_bench.cli.main import main

    url = server.base_url
    code = main(["run", "--task", "multifaceted_demo", "--model", "openai/fake", "--model-base-url", url,
                 "--judge", "openai/fake", "--judge-base-url", url, "--limit", "2", "--no-cache",
                 "--output", str(tmp_path / "run"), "--no-progress", *extra])  # fmt: skip
    return code, load_run(tmp_path / "run")


def test_judge_that_never_scores_gives_null_counted(tmp_path):
    answer = "The answer is friendly and addresses the question."
    with FakeOpenAIServer(FakeBehaviour(judge_answers=[answer])) as server:
        code, run = fake_run(tmp_path, server, "--judge-reasks", "1")
        judge_bodies = [b for b in server.requests if "[RESULT]" in json.dumps(b)]
    assert code == 0
    m = run.metrics.to_dict()
    assert m["al"] == [None] and m["n"] == [0] and m["invalid"] == [2]
    assert m["rubrics"] == {"judged": 8, "invalid": 8, "samples": 8, "samples_invalid": 8, "reasked": 8}
    for conv in run.conversations:
        turn = conv.turns[0]
        assert turn.score is None and turn.judged and answer in turn.judge_raw
        assert all(
            g["score"] is None
            and g["samples"][0]["attempts"] == 2
            and g["samples"][0]["answers"] == [answer] * 2
            for g in turn.to_dict()["rubric_scores"]
        )
    assert len(judge_bodies) == 16  # 8 rubrics, each asked once and re-asked once
    reasks = [
        b for b in judge_bodies if b["messages"][-1]["content"].startswith("I could not find the score")
    ]
    assert len(reasks) == 8 and all(b["messages"][-2]["content"] == answer for b in reasks)


def test_reask_reply_is_read_as_a_plain_score_answer(tmp_path):
    """Without the marker, feedback that quotes a rubric level ("a score of 2") is not a verdict;
    the re-ask asks for the score alone, and that reply is read like any score answer."""
    answer = "Feedback: it avoids jargon; a score of 2 would need unexplained terms. The score is 4."
    with FakeOpenAIServer(FakeBehaviour(judge_answers=[answer])) as server:
        code, run = fake_run(tmp_path, server, "--judge-reasks", "2")
    assert code == 0
    rubric = RubricMetrics.of(run.metrics)  # the rubric scorer's figures, read as its record
    assert run.metrics.al == [4.0] and rubric is not None and rubric.rubrics["reasked"] == 8
    for conv in run.conversations:
        for g in conv.turns[0].to_dict()["rubric_scores"]:
            (sample,) = g["samples"]
            assert sample["score"] == 4 and sample["attempts"] == 2 and sample["answers"] == [answer, answer]


def test_judge_repeats_average_and_count_unreadable(tmp_path):
    """Every other judge answer has no score: exactly half of the 16 samples are null whatever the
    order, every readable one says 4, so every scored rubric and instance is 4.0."""
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["Fits well. [RESULT] 4", "no verdict"])) as server:
        code, run = fake_run(tmp_path, server, "--judge-reasks", "0", "--judge-repeats", "2")
        judge_bodies = [b for b in server.requests if "[RESULT]" in json.dumps(b)]
    assert code == 0
    m = run.metrics.to_dict()
    assert m["rubrics"]["samples"] == 16 and m["rubrics"]["samples_invalid"] == 8
    assert m["judge_repeats"]["r"] == 2 and len(m["judge_repeats"]["scores"]) == 2
    samples = [
        s for c in run.conversations for g in c.turns[0].rubric_scores or [] for s in g.to_dict()["samples"]
    ]
    assert sorted(s["score"] or 0 for s in samples) == [0] * 8 + [4] * 8
    assert {g.score for c in run.conversations for g in c.turns[0].rubric_scores or []} <= {4.0, None}
    assert m["score"] in (4.0, None)
    assert len({b["seed"] for b in judge_bodies}) == 16  # every (instance, rubric, repeat) its own seed
    # the judge never sees the system message that stated the preferences
    systems = {i.system for i in load_multifaceted("sample").instances[:2]}
    assert not any(s in json.dumps(b["messages"]) for b in judge_bodies for s in systems)


def test_template_without_system_role_is_folded_and_recorded(tmp_path, embedded_checkpoint):
    """A checkpoint whose chat template rejects system messages gets the preferences in front of
    the prompt, and results.json says so."""
    from transformers import AutoTokenizer

    from aloe_bench.models.backends.chat_template import render_prompt

    ckpt = tmp_path / "no-system-ckpt"
    ckpt.mkdir()
    for f in embedded_checkpoint.iterdir():
        if f.name != "chat_template.jinja":
            os.symlink(f, ckpt / f.name)
    (ckpt / "chat_template.jinja").write_text(
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    inst = load_multifaceted("sample").instances[0]
    prompt = render_prompt(AutoTokenizer.from_pretrained(ckpt), inst.model_messages())
    assert f"<|im_start|>user\n{inst.system}\n\n{inst.prompt}<|im_end|>" in prompt
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["[RESULT] 3"])) as server:
        from aloe_bench.cli.main import main

        code = main(["run", "--task", "multifaceted_demo", "--model", f"hf/{ckpt}", "--limit", "1",
                     "--judge", "openai/fake", "--judge-base-url", server.base_url, "--no-cache",
                     "--output", str(tmp_path / "run"), *TINY])  # fmt: skip
    assert code == 0
    run = load_run(tmp_path / "run")
    assert run.config.model.system_role == "folded"
    assert run.conversations[0].turns[0].assistant and run.metrics.al == [3.0]
