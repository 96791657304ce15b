"""`aloe-train multifaceted-data` against the project's fake OpenAI server answering with the
scripted generator (aloe_train/multifaceted/scripted.py): every answer is known by construction,
so the rows written must be exactly what the server said, and every malformed answer it sent must
be counted under its stage and cause."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aloe_bench.datasets.multifaceted import load_multifaceted
from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import Completion
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_train.multifaceted import scripted
from aloe_train.multifaceted.instructions import load_instructions
from aloe_train.multifaceted.parsing import (
    parse_free_text,
    parse_preferences,
    parse_rubric,
    parse_subdimensions,
)
from aloe_train.multifaceted.run import MultifacetedDataConfig, build_collection
from aloe_train.multifaceted.scripted import ScriptedServer
from aloe_train.multifaceted.taxonomy import load_taxonomy

GOOD = ["Explain tides.", "Write a haiku about rain.", "Plan a picnic.", "Name three rivers."]
BAD = ["[few-subdims] Cook rice.", "[bad-prefs] Fix a bike.", "[refuse] Sing a song.", "[same-system] Knit."]
HELD_OUT = ["[bad-rubric] Paint a wall.", "Count the stars."]
LABELS = {
    "style": "style",
    "background_knowledge": "background knowledge",
    "informativeness": "informativeness",
    "harmlessness": "harmlessness",
}


def _instructions(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"instruction": t, "main_source": "mine"}) + "\n" for t in texts))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config(
    tmp_path: Path, server: FakeOpenAIServer, ins: Path, out: str = "out", **kw
) -> MultifacetedDataConfig:
    settings = {
        "instructions": str(ins),
        "output": str(tmp_path / out),
        "generator": "openai/fake",
        "generator_args": f"base_url={server.base_url},backoff=0.01",
        "cache": str(tmp_path / "calls.sqlite"),
        "embedder": "tfidf",
        **kw,
    }
    return MultifacetedDataConfig(**settings)


# -- parsing ----------------------------------------------------------------------------------------
def _c(text, finish="stop"):
    return Completion(text=text, finish_reason=finish)


def test_parsers_take_the_format_and_reject_everything_else_with_a_cause():
    assert parse_subdimensions(_c("1. Clarity\n2. Tone: warm\n3) Format"), 3).value == [
        "Clarity",
        "Tone",
        "Format",
    ]
    assert parse_subdimensions(_c("1. Clarity\n2. clarity\n3. Tone"), 3).cause == "too_few_items"
    assert parse_subdimensions(_c("Clarity and tone matter."), 3).cause == "malformed"
    assert parse_subdimensions(_c("1. A\n2. B\n3. C\n4. D cut"), 3).value == ["A", "B", "C"]
    assert parse_subdimensions(_c("I'm sorry, but I can't do that."), 3).cause == "refusal"
    assert parse_subdimensions(Completion.failure("HTTP 500"), 3).cause == "request_failed"
    assert parse_subdimensions(_c("  "), 3).cause == "empty"
    prefs = parse_preferences(
        _c("1. vivid prose: Paints scenes.\n2. **plain**: Short words."), "style", ["a", "b"]
    )
    assert [(p.subdimension, p.preference, p.description) for p in prefs.value] == [
        ("a", "vivid prose", "Paints scenes."),
        ("b", "plain", "Short words."),
    ]
    assert parse_preferences(_c("1. vivid prose\n2. plain: ok"), "style", ["a", "b"]).cause == "malformed"
    assert parse_preferences(_c("1. vivid: ok"), "style", ["a", "b"]).cause == "too_few_items"
    assert (
        parse_free_text(_c("System message: You are kind."), False, strip_label=True).value == "You are kind."
    )
    assert parse_free_text(_c("You are", "length"), False).cause == "truncated"
    assert parse_free_text(_c("You are", "length"), True).value == "You are"
    assert parse_free_text(_c("As an AI language model, I cannot write that."), False).cause == "refusal"
    rubric = "Criteria: Is it clear?\n" + "\n".join(f"Score {k}: level {k}" for k in range(1, 6))
    assert parse_rubric(_c(rubric)).value == {
        "criteria": "Is it clear?",
        "score_descriptions": {str(k): f"level {k}" for k in range(1, 6)},
    }
    assert parse_rubric(_c(rubric.replace("Score 3: level 3", ""))).cause == "malformed"


# -- inputs -----------------------------------------------------------------------------------------
def test_instructions_from_json_jsonl_parquet_with_column_and_sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.json").write_text(
        json.dumps({"data": [{"prompt": "P1"}, {"prompt": "P2"}, {"prompt": "P1"}]})
    )
    s = load_instructions(str(tmp_path / "a.json"))
    assert [i.text for i in s.items] == ["P1", "P2"]  # a repeated instruction once
    assert s.items[0].main_source == "a.json" == s.items[0].original_source
    pq.write_table(
        pa.table(
            {"question": ["Q1", "Q2"], "main_source": ["nectar", "ultra"], "original_source": ["x", "y"]}
        ),
        tmp_path / "b.parquet",
    )
    s = load_instructions(str(tmp_path / "b.parquet"), column="question", limit=1)
    assert [(i.text, i.main_source, i.original_source) for i in s.items] == [("Q1", "nectar", "x")]
    with pytest.raises(
        UserInputError, match=r"b\.parquet row 1: no a column 'instruction' or 'prompt'.*--column"
    ):
        load_instructions(str(tmp_path / "b.parquet"))
    with pytest.raises(UserInputError, match="no such file, and not a Hugging Face dataset name"):
        load_instructions(str(tmp_path / "missing.jsonl"))
    assert len(load_instructions("sample").items) == 12


def test_the_taxonomy_is_replaceable_data(tmp_path):
    paper = load_taxonomy()
    assert [d.name for d in paper.dimensions] == list(LABELS)
    mine = tmp_path / "t.yaml"
    mine.write_text("dimensions:\n  - name: tone\n    description: how it sounds\n    seeds: [warm]\n")
    assert [(d.name, d.seeds) for d in load_taxonomy(str(mine)).dimensions] == [("tone", ("warm",))]
    mine.write_text("dimensions:\n  - name: Tone Of Voice\n    description: x\n")
    with pytest.raises(UserInputError, match="lowercase identifier"):
        load_taxonomy(str(mine))


# -- the synthesis, exactly as the server said --------------------------------------------------------
@pytest.fixture(scope="module")
def scripted_collection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mfd")
    ins = _instructions(tmp / "ins.jsonl", GOOD + BAD + HELD_OUT)
    with ScriptedServer() as server:
        config = _config(tmp, server, ins, bench_instructions=len(HELD_OUT))
        summary = build_collection(config, progress=False)
        generator = server.generator
    return tmp / "out", summary, generator


def _expected_rows(instruction: str, sets: int = 3):
    rows = []
    for j in range(sets):
        prefs = []
        for dim, label in LABELS.items():
            sub = scripted.expected_subdimensions(instruction, label, sets)[j]
            keyword, description = scripted.expected_preference(sub)
            prefs.append(
                {"dimension": dim, "subdimension": sub, "preference": keyword, "description": description}
            )
        system = scripted.expected_system(instruction, [p["preference"] for p in prefs])
        rows.append((prefs, system, scripted.expected_response(instruction, system)))
    return rows


def test_rows_are_exactly_what_the_server_said(scripted_collection):
    out, summary, _ = scripted_collection
    sft, dpo, rm = (_lines(out / f) for f in ("sft.jsonl", "dpo.jsonl", "rm.jsonl"))
    for instruction in GOOD:
        expected = _expected_rows(instruction)
        got = [r for r in sft if r["prompt"] == instruction]
        assert [(r["preference_set"], r["system"], r["output"]) for r in got] == expected
        assert all(r["main_source"] == "mine" == r["original_source"] for r in got)
        assert all(
            list(r) == ["main_source", "original_source", "preference_set", "system", "prompt", "output"]
            for r in got
        )
        # the three sets of one instruction differ in every dimension
        for d in range(len(LABELS)):
            assert len({r["preference_set"][d]["subdimension"] for r in got}) == 3
        outputs = {system: output for _, system, output in expected}
        pairs = [r for r in dpo if r["prompt"] == instruction]
        assert sorted(p["system"] for p in pairs) == sorted(outputs)
        for p in pairs:
            assert list(p) == ["main_source", "original_source", "system", "prompt", "chosen", "rejected"]
            assert p["chosen"] == [
                {"content": instruction, "role": "user"},
                {"content": outputs[p["system"]], "role": "assistant"},
            ]
            rejected = p["rejected"][-1]["content"]
            assert p["rejected"][0] == {"content": instruction, "role": "user"}
            assert rejected != outputs[p["system"]] and rejected in outputs.values()
        rm_rows = [r for r in rm if r["input"].endswith("\n" + instruction)]
        assert sorted((r["input"], r["chosen"], r["rejected"]) for r in rm_rows) == sorted(
            (f"{p['system']}\n{instruction}", p["chosen"][-1]["content"], p["rejected"][-1]["content"])
            for p in pairs
        )
    # held-out instructions are in no training split
    assert not {r["prompt"] for r in sft} & set(HELD_OUT)
    assert {r["prompt"] for r in sft} == set(GOOD) | {"[same-system] Knit."}
    c = summary["counts"]
    assert (c["sft_rows"], c["dpo_rows"], c["rm_rows"]) == (len(sft), len(dpo), len(rm)) == (13, 12, 12)
    assert c["instructions"] == 10 and c["instructions_without_pair"] == 1


def test_every_malformed_answer_is_counted_and_none_kept(scripted_collection):
    out, summary, generator = scripted_collection
    stages = summary["stages"]
    sent_wrong = dict(generator.malformed)
    assert sent_wrong  # the script did misbehave
    counted = {(s, cause): n for s, v in stages.items() for cause, n in v["rejected_answers"].items()}
    assert counted == sent_wrong
    # each bad item was asked twice (--retries 1) and lost with the cause of its last answer
    assert summary["failures"] == {
        "subdimensions": {"too_few_items": 4},
        "preferences": {"malformed": 4},
        "system": {"near_duplicate": 2, "refusal": 3},
        "rubric": {"malformed": 12},  # 3 system messages x 4 dimensions
    }
    for s, v in stages.items():
        assert v["answers"] == generator.answers[s]  # every answer the server sent was read once
        assert v["items"] == v["kept"] + sum(v["dropped_items"].values())
    sft = _lines(out / "sft.jsonl")
    knit = [r for r in sft if r["prompt"] == "[same-system] Knit."]
    assert len(knit) == 1  # the two near-duplicates dropped; one system message cannot make a pair
    assert not any("sorry" in r["system"].lower() for r in sft)


def test_held_out_rows_are_a_bench_that_the_benchmark_reads_and_grades(scripted_collection, tmp_path):
    out, summary, _ = scripted_collection
    bench = load_multifaceted(str(out / "bench.jsonl"))
    assert summary["counts"]["bench_rows"] == len(bench.instances) == 3  # the [bad-rubric] rows left out
    assert {i.prompt for i in bench.instances} == {"Count the stars."}
    for inst in bench.instances:
        assert [r.dimension for r in inst.rubrics] == list(LABELS)
        prefs = next(p for p, s, _ in _expected_rows(inst.prompt) if s == inst.system)
        assert [r.to_dict() for r in inst.rubrics] == [
            {**scripted.expected_rubric(p["preference"]), "dimension": p["dimension"]} for p in prefs
        ]
        assert inst.reference_answer == scripted.expected_response(inst.prompt, inst.system)
    from aloe_bench.cli.main import main

    with FakeOpenAIServer(FakeBehaviour(judge_answers=["Feedback: fine. [RESULT] 4"])) as server:
        url = server.base_url
        code = main(["run", "--task", "multifaceted", "--data", str(out / "bench.jsonl"), "--model", "openai/fake",
                     "--model-base-url", url, "--judge", "openai/fake", "--judge-base-url", url, "--no-cache",
                     "--judge-reasks", "0", "--output", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "results.json").read_text())["metrics"]
    assert metrics["al"] == [4.0] and metrics["n"] == [3]


def test_summary_figures_match_the_files(scripted_collection):
    out, summary, _ = scripted_collection
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["config_hash"] == summary["config_hash"]
    sft = _lines(out / "sft.jsonl")
    d = on_disk["diversity"]
    assert d["distinct_subdimensions"] == {
        dim: len(
            {
                p["subdimension"]
                for r in sft + _lines(out / "bench.jsonl")
                for p in r["preference_set"]
                if p["dimension"] == dim
            }
        )
        for dim in LABELS
    }
    systems = [r["system"] for r in sft] + [r["system"] for r in _lines(out / "bench.jsonl")]
    assert d["system_message_words"]["n"] == len(systems)
    assert d["system_message_words"]["mean"] == pytest.approx(
        sum(len(s.split()) for s in systems) / len(systems), abs=1e-3
    )
    sim = d["similarity"]
    assert sim["within_instruction"]["n"] == 3 * 5  # 5 instructions with 3 system messages each: 3 pairs each
    assert 0 <= sim["within_instruction"]["mean"] <= 0.9 and sim["embedder"]["embedder"] == "tfidf"
    assert on_disk["tokens"]["per_instruction"] > 0 and on_disk["cost"]["usd"] is None  # no price for a fake


# -- one job per folder, dry run, batch, bad input ----------------------------------------------------
def test_rerun_replays_everything_from_the_cache_and_a_different_job_is_refused(tmp_path):
    ins = _instructions(tmp_path / "ins.jsonl", GOOD[:2])
    with ScriptedServer() as server:
        first = build_collection(_config(tmp_path, server, ins), progress=False)
        sent = len(server.requests)
        again = build_collection(_config(tmp_path, server, ins), progress=False)
        assert len(server.requests) == sent  # nothing asked twice
        assert sum(u["calls"] for u in again["usage"].values()) == 0
        assert sum(u["cached"] for u in again["usage"].values()) == sent
        assert again["counts"] == first["counts"]
        with pytest.raises(UserInputError, match="holds a different collection"):
            build_collection(_config(tmp_path, server, ins, sets=2), progress=False)


def test_dry_run_prices_the_calls_and_calls_nothing(tmp_path, capsys):
    from aloe_train.cli import main

    ins = _instructions(tmp_path / "ins.jsonl", GOOD)
    with ScriptedServer() as server:
        code = main(["multifaceted-data", "--instructions", str(ins), "--output", str(tmp_path / "out"),
                     "--generator", "openai/fake", "--generator-args", f"base_url={server.base_url}",
                     "--price", "1,2", "--bench-instructions", "1", "--dry-run"])  # fmt: skip
        assert server.requests == []
    assert code == 0 and not (tmp_path / "out").exists()
    text = capsys.readouterr().out
    # 4 instructions x 4 dimensions x 2 list stages + 3 sets x (system + response) + 1 held out x 3 x 4 rubrics
    assert "total: 68 calls" in text and "no model was called" in text and "$" in text


def test_batch_api_gives_the_same_collection(tmp_path):
    ins = _instructions(tmp_path / "ins.jsonl", GOOD[:2])
    with ScriptedServer() as server:
        sync = build_collection(_config(tmp_path, server, ins, out="sync", cache=""), progress=False)
        cfg = _config(tmp_path, server, ins, out="batch", cache="", batch=True)
        cfg.generator_args += ",batch_window=0.05,batch_poll=0.05"
        batched = build_collection(cfg, progress=False)
        assert server.batch_requests  # the calls went through /v1/batches
    assert (tmp_path / "batch" / "sft.jsonl").read_text() == (tmp_path / "sync" / "sft.jsonl").read_text()
    assert batched["counts"] == sync["counts"] and batched["cost"]["batch"] is True


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from aloe_train.cli import main

    ins = tmp_path / "ins.jsonl"
    ins.write_text(json.dumps({"text": "hi"}) + "\n")
    code = main(["multifaceted-data", "--instructions", str(ins), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "ins.jsonl:1" in err and "--column" in err
    code = main(["multifaceted-data", "--instructions", "sample", "--output", str(tmp_path / "o"), "--batch"])
    assert code == 2 and "--batch needs an openai/ generator" in capsys.readouterr().err
    code = main(
        ["multifaceted-data", "--instructions", "sample", "--output", str(tmp_path / "o"), "--sets", "1"]
    )
    assert code == 2 and "--sets must be at least 2" in capsys.readouterr().err


def test_help_says_what_each_stage_makes(capsys):
    from aloe_train.cli import main

    with pytest.raises(SystemExit):
        main(["multifaceted-data", "--help"])
    text = capsys.readouterr().out
    for stage in (
        "subdimensions",
        "preferences",
        "system",
        "response",
        "rubric",
        "sft.jsonl",
        "summary.json",
    ):
        assert stage in text


# -- kill -9 and resume ---------------------------------------------------------------------------------
def test_sigkill_then_rerun_repeats_no_finished_call(tmp_path):
    """A run killed mid-way (SIGKILL: no cleanup at all) and re-run: every call that finished before
    the kill is replayed from the cache, only the rest is asked, and the collection is the same as
    an uninterrupted run's."""
    ins = _instructions(tmp_path / "ins.jsonl", GOOD)
    cache = tmp_path / "calls.sqlite"
    with ScriptedServer(FakeBehaviour(latency_s=0.15)) as server:
        args = ["multifaceted-data", "--instructions", str(ins), "--output", str(tmp_path / "out"),
                "--generator", "openai/fake", "--generator-args", f"base_url={server.base_url},concurrency=2",
                "--cache", str(cache), "--embedder", "tfidf", "--no-progress"]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "aloe_train.cli", *args],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        finished = 0
        while time.monotonic() < deadline and finished < 20:
            time.sleep(0.05)
            if cache.exists():
                with sqlite3.connect(cache) as db:
                    try:
                        finished = db.execute("SELECT COUNT(*) FROM calls_v2").fetchone()[0]
                    except sqlite3.OperationalError:
                        finished = 0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(cache) as db:
            finished = db.execute("SELECT COUNT(*) FROM calls_v2").fetchone()[0]
        assert 20 <= finished < 16 * 2 + 12 * 2  # killed in the middle
        assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "running"
        sent_before = len(server.requests)
        from aloe_train.cli import main

        assert main(args) == 0
        resumed = json.loads((tmp_path / "out" / "summary.json").read_text())
        sent_after = len(server.requests) - sent_before
    calls = sum(u["calls"] for u in resumed["usage"].values())
    cached = sum(u["cached"] for u in resumed["usage"].values())
    total = 4 * 4 * 2 + 4 * 3 * 2  # every call of this collection
    assert cached == finished and calls == total - finished == sent_after
    with ScriptedServer() as fresh:
        clean = _config(tmp_path, fresh, ins, out="clean", cache="")
        build_collection(clean, progress=False)
    for split in ("sft.jsonl", "dpo.jsonl", "rm.jsonl"):
        assert (tmp_path / "out" / split).read_text() == (tmp_path / "clean" / split).read_text()


def test_own_taxonomy_shapes_the_preference_sets(tmp_path):
    taxonomy = tmp_path / "t.yaml"
    taxonomy.write_text(
        "dimensions:\n  - name: tone\n    description: how it sounds\n    seeds: [warm, dry]\n"
        "  - name: depth\n    description: how far it goes\n"
    )
    ins = _instructions(tmp_path / "ins.jsonl", GOOD[:1])
    with ScriptedServer() as server:
        summary = build_collection(
            _config(tmp_path, server, ins, taxonomy=str(taxonomy), sets=2), progress=False
        )
        asked = [json.dumps(b) for b in server.requests]
    rows = _lines(tmp_path / "out" / "sft.jsonl")
    assert [[p["dimension"] for p in r["preference_set"]] for r in rows] == [["tone", "depth"]] * 2
    assert summary["stages"]["subdimensions"]["items"] == 2 and summary["counts"]["dpo_rows"] == 2
    assert any("Examples of subdimensions of tone: warm, dry." in a for a in asked)


def test_an_unreachable_generator_stops_with_one_line(tmp_path, capsys):
    import socket

    from aloe_train.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    code = main(["multifaceted-data", "--instructions", "sample", "--limit", "1", "--output", str(tmp_path / "o"),
                 "--generator", "openai/fake", "--generator-args", f"base_url=http://127.0.0.1:{port}/v1,max_retries=0",
                 "--cache", "", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "every generator request failed" in err[-1]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["status"] == "failed"


def test_stage_progress_in_a_log_says_done_total_and_eta():
    import io

    from aloe_train.multifaceted.progress import StageProgress

    stream = io.StringIO()
    progress = StageProgress("system", 4, interactive=False, stream=stream, log_interval_s=0.0)
    time.sleep(0.01)
    progress.step()
    progress.close(kept=1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("multifaceted-data: system: 1/4, about ") and lines[0].endswith("s left")
    assert lines[-1].startswith("multifaceted-data: system: 4 items, 1 kept, ")
