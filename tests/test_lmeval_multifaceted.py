"""Multifaceted Bench as lm-eval tasks: the same request interception as the ALOE suite, the same
rubric engine as `aloe-bench run`, lm-eval's own results and samples files."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli_subprocess

from aloe_bench.datasets.multifaceted import load_multifaceted
from aloe_bench.engine.task_files import available_tasks, load_task_settings, tasks_dir
from aloe_bench.errors import UserInputError
from aloe_bench.integrations.lm_eval import task as hooks
from aloe_bench.integrations.lm_eval.requests import decode_request, encode_request
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.scorers.rubric import rubric_metrics

pytest.importorskip("lm_eval")

REPO = Path(__file__).resolve().parents[1]
MULTIFACETED_TASKS = ["multifaceted", "multifaceted_demo"]


@pytest.fixture(autouse=True)
def checkout_tasks(monkeypatch):
    """Task names resolve in this checkout's tasks/ (an installed aloe_tasks may be another copy)."""
    monkeypatch.setattr("aloe_bench.engine.task_files.tasks_dir", lambda: REPO / "tasks")


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(REPO / "tasks"), include_defaults=False)


# -- the include path -------------------------------------------------------------------------------------
def test_every_yaml_in_the_suite_is_a_task_a_group_or_an_included_template(caplog):
    """lm-eval indexes every YAML under tasks/ without a warning: each one is a task, a group, or a
    template that a task includes (lm-eval skips those at debug level, as it should)."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    caplog.set_level(logging.DEBUG, logger="lm_eval")
    manager = TaskManager(include_path=str(REPO / "tasks"), include_defaults=False)
    # lm-eval's own warnings only: a server task another test left behind may be collected (and
    # logged by asyncio) at any moment, which says nothing about the YAML files.
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("lm_eval")
    ]
    assert warned == []
    indexed = {Path(e.yaml_path).resolve() for e in manager.task_index.values() if e.yaml_path}
    included = {
        (path.parent / load_yaml(path, resolve_func=False, recursive=False)["include"]).resolve()
        for path in indexed
        if "include" in load_yaml(path, resolve_func=False, recursive=False)
    }
    everything = {p.resolve() for p in (REPO / "tasks").rglob("*.yaml")}
    assert everything - indexed == included, "a YAML lm-eval cannot use and no task includes"
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skip ")]
    assert len(skipped) == len(included) and all("template" in m for m in skipped)


def test_multifaceted_tasks_are_lmeval_tasks_in_their_own_group(task_manager):
    assert set(MULTIFACETED_TASKS) <= set(task_manager.all_subtasks)
    assert set(task_manager.task_index["multifaceted_bench"].cfg["task"]) == set(MULTIFACETED_TASKS)
    assert set(MULTIFACETED_TASKS) <= set(available_tasks())  # `aloe-bench run --task` knows them too
    assert "multifaceted_bench" not in available_tasks()  # a group is not a task
    from lm_eval.tasks._yaml_loader import load_yaml

    for name in MULTIFACETED_TASKS:  # lm-eval's loader (with includes) and ours read the same settings
        path = task_manager.task_index[name].yaml_path
        assert load_yaml(path, resolve_func=False)["metadata"]["aloe"] == load_task_settings(name)[1]
    assert load_task_settings("multifaceted_demo")[1]["data"] == "sample"
    assert "data" not in load_task_settings("multifaceted")[1]  # the Hugging Face dataset by default


def test_lmeval_builds_one_document_per_instance(task_manager):
    task = task_manager.load(["multifaceted_demo"])["tasks"]["multifaceted_demo"]
    docs = list(task.test_docs())
    sample = load_multifaceted("sample").instances
    assert [d["id"] for d in docs] == [i.id for i in sample]
    request = decode_request(task.doc_to_text(docs[3]), {"until": []})
    assert request.kind == "multifaceted"
    assert request.item == sample[3]  # system, prompt, reference answer, rubrics and dimensions
    assert request.settings == load_task_settings("multifaceted_demo")[1]
    config = request.run_config("lmeval/hf")
    assert (config.model.spec, config.judge.spec, config.data) == ("lmeval/hf", "embedded", "sample")
    assert task.higher_is_better() == {"score": True, "failed": False, "rubrics_invalid": False}
    assert task.config.generation_kwargs["until"] == []


def test_data_comes_from_the_same_loader_as_aloe_bench_run(tmp_path):
    path = tasks_dir() / "multifaceted" / "multifaceted_demo.yaml"
    rows = [json.loads(line) for line in (REPO / "aloe_bench/data/multifaceted_sample.jsonl").open()]
    mine = tmp_path / "bench.jsonl"
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows[5:7]))
    docs = hooks.load_docs(config_source=str(path), aloe={"data": str(mine)})["test"]
    assert [d["id"] for d in docs] == [i.id for i in load_multifaceted(str(mine)).instances]
    limited = hooks.load_docs(config_source=str(path), aloe={"limit": 3})["test"]
    assert len(limited) == 3
    del rows[1]["rubric"]
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserInputError, match=rf"{mine}:2: missing rubric"):
        hooks.load_docs(config_source=str(path), aloe={"data": str(mine)})
    hooks.load_docs(config_source=str(path))  # leave the task as its YAML states it


def test_metadata_for_the_other_kind_of_task_is_left_out_and_said_so(caplog):
    """lm-eval's --metadata goes to every task of a run: ALOE-only settings are left out of a
    Multifaceted task (and the other way round) with a log line; a misspelt one is an error."""
    multifaceted = tasks_dir() / "multifaceted" / "multifaceted_demo.yaml"
    aloe = tasks_dir() / "aloe" / "aloe_demo.yaml"
    mixed = {"turns": 1, "simulator_max_new_tokens": 8, "data": "sample", "judge_max_new_tokens": 5}
    caplog.set_level(logging.INFO, logger="lm_eval.aloe")
    name, settings = hooks.task_settings({"config_source": str(multifaceted), "aloe": mixed})
    assert settings == {**load_task_settings("multifaceted_demo")[1], "judge_max_new_tokens": 5}
    assert (
        "multifaceted_demo: --metadata simulator_max_new_tokens, turns left out (multifaceted tasks"
        in caplog.text
    )
    _, settings = hooks.task_settings({"config_source": str(aloe), "aloe": mixed})
    assert settings == {**load_task_settings("aloe_demo")[1], "turns": 1, "simulator_max_new_tokens": 8,
                        "judge_max_new_tokens": 5}  # fmt: skip
    assert "aloe_demo: --metadata data left out (aloe tasks" in caplog.text
    with pytest.raises(UserInputError, match="unknown Multifaceted setting.*turnz"):
        hooks.load_docs(config_source=str(multifaceted), aloe={"turnz": 2})


def _transcript(rubric_scores: list[float | None], status: str = "complete") -> str:
    valid = [s for s in rubric_scores if s is not None]
    turn = {
        "user": "q",
        "assistant": "a",
        "score": float(np.mean(valid)) if valid else None,
        "rubric_scores": [{"rubric": i, "score": s} for i, s in enumerate(rubric_scores, start=1)],
    }
    return json.dumps(
        {"format": "aloe-transcript/1", "status": status, "turns": [turn] if status == "complete" else []}
    )


def test_lmeval_score_is_the_micro_average_of_aloe_bench():
    """Source A: three instances, B: one, one instance without any rubric score, one failed."""
    from lm_eval.api.registry import get_aggregation

    instances = [("A", [4, 3, None]), ("A", [3, 3]), ("A", [5, 5]), ("B", [1, 1]), ("B", [None, None])]
    per_sample = [hooks.process_rubric_results({}, [_transcript(s)]) for _, s in instances]
    per_sample.append(hooks.process_rubric_results({}, [_transcript([], status="failed")]))
    lm_score = get_aggregation("nanmean")([s["score"] for s in per_sample])

    records = []
    for i, (source, scores) in enumerate(instances):
        valid = [s for s in scores if s is not None]
        turn = TurnRecord.from_dict(
            {
                "user": "q",
                "assistant": "a",
                "score": float(np.mean(valid)) if valid else None,
                "rubric_scores": [
                    {"rubric": j, "dimension": "d", "score": s, "samples": [{"score": s, "attempts": 1}]}
                    for j, s in enumerate(scores, start=1)
                ],
            }
        )
        records.append(ConversationRecord(str(i), {"source": source}, [turn], status="complete"))
    records.append(ConversationRecord("x", {"source": "B"}, [], status="failed"))
    ours = rubric_metrics(records, repeats=1, n_bootstrap=0)

    assert lm_score == pytest.approx(ours["score"]) == pytest.approx((3.5 + 3 + 5 + 1) / 4)
    assert lm_score != pytest.approx(((3.5 + 3 + 5) / 3 + 1) / 2)  # not the mean of per-source means
    assert math.isnan(per_sample[4]["score"]) and math.isnan(per_sample[5]["score"])
    assert [s["failed"] for s in per_sample] == [0, 0, 0, 0, 0, 1]
    assert (
        hooks.aggregate_count([s["rubrics_invalid"] for s in per_sample]) == ours["rubrics"]["invalid"] == 3
    )
    assert math.isnan(get_aggregation("nanmean")([per_sample[4]["score"]]))  # nothing scored: NaN


def test_a_multifaceted_request_round_trips_through_the_context():
    instance = load_multifaceted("sample").instances[6]
    raw = encode_request("multifaceted_demo", instance, load_task_settings("multifaceted_demo")[1])
    wrapped = f"<|im_start|>user\n{raw}<|im_end|>\n"
    request = decode_request(wrapped, {"until": [], "max_gen_toks": 9})
    assert request.item == instance and request.kind == "multifaceted"
    assert request.run_config("lmeval/hf").model.max_new_tokens == 9


# -- end to end: lm-eval on the embedded checkpoint ---------------------------------------------------------
# Small settings (lm-eval's --metadata goes to every task of the run; turns and simulator_* only to
# the ALOE one); the model under test decodes greedily, 16 tokens (--gen_kwargs), as in the
# `aloe-bench run` it is compared with.
SMALL = {"judge_max_new_tokens": 8, "judge_reasks": 0, "turns": 2, "simulator_max_new_tokens": 16}
GEN_KWARGS = "max_gen_toks=16,do_sample=false"
USAGE = re.compile(r"(\w+) (\d+) calls/(\d+) cached")


def _summaries(stderr: str) -> dict[str, str]:
    """The per-task summary lines the interception logs: task -> line."""
    found = re.findall(r"(?:ALOE|Multifaceted) (\w+): (.*)", stderr)
    return dict(found)


def _usage(line: str) -> dict[str, tuple[int, int]]:
    return {role: (int(calls), int(cached)) for role, calls, cached in USAGE.findall(line)}


@pytest.fixture(scope="module")
def lmeval_runs(embedded_checkpoint, tmp_path_factory):
    """The documented command (plus aloe_explicit_demo in the same lm-eval run) twice, on one call
    cache: (output folder, call cache, first run, second run)."""
    root = tmp_path_factory.mktemp("lmeval_multifaceted")
    out, cache = root / "OUT", root / "calls.sqlite"
    command = [
        "lm-eval", "--model", "hf", "--model_args", f"pretrained={embedded_checkpoint}",
        "--tasks", "multifaceted_demo,aloe_explicit_demo", "--limit", "2", "--output_path", out,
        "--log_samples", "--gen_kwargs", GEN_KWARGS,
        "--metadata", json.dumps({"aloe": {**SMALL, "cache": str(cache)}}),
    ]  # fmt: skip
    # Judged by the 135M embedded model, whose answers parse by luck: these assertions were written
    # against the torch runtime's answers (docs/embedded.md), so they run on it.
    torch_runtime = {"ALOE_EMBEDDED_RUNTIME": "torch"}
    first = run_cli_subprocess(*command, env=torch_runtime)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli_subprocess(*command, env=torch_runtime)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, cache, first, second


def _samples(out: Path, task: str, newest: bool = False) -> list[dict]:
    files = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    assert len(files) == 2  # one per run
    return [json.loads(line) for line in files[-1 if newest else 0].read_text().splitlines()]


@pytest.mark.slow
def test_lmeval_writes_results_and_samples_of_multifaceted_demo(lmeval_runs):
    out, _, first, _ = lmeval_runs
    summaries = _summaries(first.stderr)
    assert summaries["multifaceted_demo"].startswith("2 instances scored, 0 failed")
    assert _usage(summaries["multifaceted_demo"]) == {"model": (2, 0), "judge": (8, 0)}  # 2 x 4 rubrics
    results = json.loads(sorted(out.rglob("results_*.json"))[0].read_text())
    task = results["results"]["multifaceted_demo"]
    assert results["higher_is_better"]["multifaceted_demo"] == {
        "score": True,
        "failed": False,
        "rubrics_invalid": False,
    }
    assert {"score,none", "score_stderr,none", "failed,none", "rubrics_invalid,none"} <= set(task)
    assert task["failed,none"] == 0

    samples = _samples(out, "multifaceted_demo")
    sample_instances = load_multifaceted("sample").instances[:2]
    assert [s["doc"]["id"] for s in samples] == [i.id for i in sample_instances]
    instance_scores, invalid = [], 0
    for sample, instance in zip(samples, sample_instances, strict=True):
        transcript = json.loads(sample["resps"][0][0])
        assert transcript["status"] == "complete" and transcript["id"] == instance.id
        assert transcript["persona"]["profile"] == instance.system  # the stated preferences
        assert transcript["run"]["model"]["spec"] == "lmeval/hf"
        assert transcript["run"]["model"]["system_role"] == "native"  # SmolLM2's template has one
        assert (
            transcript["run"]["kind"] == "multifaceted" and transcript["run"]["judge"]["spec"] == "embedded"
        )
        [turn] = transcript["turns"]
        assert turn["user"] == instance.prompt and turn["assistant"]
        rubric_scores = turn["rubric_scores"]
        assert [g["dimension"] for g in rubric_scores] == [r.dimension for r in instance.rubrics]
        assert all(g["samples"][0]["raw"] for g in rubric_scores)  # every judge answer is kept
        assert all(f"[rubric {k}: " in turn["judge_raw"] for k in range(1, 5))
        valid = [g["score"] for g in rubric_scores if g["score"] is not None]
        assert turn["score"] == (pytest.approx(np.mean(valid)) if valid else None)
        # the per-sample metrics lm-eval logged are this instance's
        assert sample["rubrics_invalid"] == 4 - len(valid) and sample["failed"] == 0
        if valid:
            assert sample["score"] == pytest.approx(turn["score"])
        else:
            assert math.isnan(sample["score"])
        instance_scores += [turn["score"]] if turn["score"] is not None else []
        invalid += 4 - len(valid)
    # the benchmark score is the mean over the scored instances (NaN when the 135M judge scored none)
    if instance_scores:
        assert task["score,none"] == pytest.approx(np.mean(instance_scores))
    else:
        assert math.isnan(task["score,none"])
    assert task["rubrics_invalid,none"] == invalid


@pytest.mark.slow
def test_a_second_identical_run_is_served_from_the_call_cache(lmeval_runs):
    out, _, first, second = lmeval_runs
    again = _summaries(second.stderr)
    assert set(again) == {"multifaceted_demo", "aloe_explicit_demo"}
    for task, line in again.items():  # no model, simulated user or judge was called again
        usage = _usage(line)
        assert usage and all(calls == 0 for calls, _ in usage.values()), (task, line)
        assert usage == {
            role: (0, calls + cached)
            for role, (calls, cached) in _usage(_summaries(first.stderr)[task]).items()
        }
    for task in again:
        assert [s["resps"] for s in _samples(out, task, newest=True)] == [
            s["resps"] for s in _samples(out, task)
        ]


@pytest.mark.slow
def test_aloe_explicit_demo_runs_through_lmeval(lmeval_runs):
    out, _, first, _ = lmeval_runs
    assert _summaries(first.stderr)["aloe_explicit_demo"].startswith("2 conversations scored, 0 failed")
    results = json.loads(sorted(out.rglob("results_*.json"))[0].read_text())
    assert {"al_avg,none", "al_t1,none"} <= set(results["results"]["aloe_explicit_demo"])
    for sample in _samples(out, "aloe_explicit_demo"):
        transcript = json.loads(sample["resps"][0][0])
        assert transcript["status"] == "complete" and len(transcript["turns"]) == 2
        assert transcript["run"]["persona_disclosure"] == "system"
        assert transcript["run"]["prompts"]["model_system"]["name"]  # the persona went in the system message
        assert transcript["run"]["model"]["max_new_tokens"] == 16  # --gen_kwargs reached the model


@pytest.mark.slow
def test_lmeval_gives_what_aloe_bench_run_gives(lmeval_runs, embedded_checkpoint, tmp_path):
    """Same instances, greedy decoding: `aloe-bench run --model hf/PATH` says the same and scores the
    same. Its model calls are its own (hf/PATH is another backend); every judge answer comes from the
    call cache, which only happens when every judge prompt, and so every response, is identical."""
    out, cache, _, _ = lmeval_runs
    run_dir = tmp_path / "run"
    proc = run_cli_subprocess(
        "run", "--task", "multifaceted_demo", "--model", f"hf/{embedded_checkpoint}", "--limit", "2",
        "--temperature", "0", "--max-new-tokens", "16", "--judge-max-new-tokens", "8",
        "--judge-reasks", "0", "--cache", cache, "--output", run_dir, "--no-progress",
        env={"ALOE_EMBEDDED_RUNTIME": "torch"},  # the judge of `lmeval_runs`, whose answers are cached
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["usage"]["model"]["calls"] == 2
    assert results["usage"]["judge"] == {**results["usage"]["judge"], "calls": 0, "cached": 8}
    conversations = [json.loads(line) for line in (run_dir / "conversations.jsonl").read_text().splitlines()]
    transcripts = [json.loads(s["resps"][0][0]) for s in _samples(out, "multifaceted_demo")]
    assert [c["id"] for c in conversations] == [t["id"] for t in transcripts]
    for ours, theirs in zip(conversations, transcripts, strict=True):
        assert ours["turns"][0]["assistant"] == theirs["turns"][0]["assistant"]
        for key in ("score", "rubric_scores", "judge_raw"):
            assert ours["turns"][0][key] == theirs["turns"][0][key], key
    lm_results = json.loads(sorted(out.rglob("results_*.json"))[0].read_text())["results"][
        "multifaceted_demo"
    ]
    score = results["metrics"]["score"]
    assert (
        math.isnan(lm_results["score,none"])
        if score is None
        else lm_results["score,none"] == pytest.approx(score)
    )
    assert lm_results["rubrics_invalid,none"] == results["metrics"]["rubrics"]["invalid"]
    # the records agree on what was run
    run = transcripts[0]["run"]
    for key in ("data_sha256", "judge", "seed", "protocol", "judge_reasks", "judge_repeats"):
        assert run[key] == results["config"][key], key
    assert run["model"]["temperature"] == results["config"]["model"]["temperature"] == 0
