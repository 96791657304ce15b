"""Inference-time strategies (`reminder/`, `cot/`, `self-critic/`, `recall/` SPEC): the calls each makes
per reply, counted on a real HTTP server; only the reply reaches the simulated user and the judge;
intermediate texts kept in the transcript and replayed from the cache; the embedded model end to end."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import SMALL, read_run

from aloe_bench import spec_names
from aloe_bench.models.cost import list_price
from aloe_bench.models.strategies import CALLS, STRATEGIES, calls_per_reply, served_spec
from aloe_bench.models.strategies.recall import recall
from aloe_bench.spec_names import portable_spec
from aloe_bench.testing.fake_openai import FakeOpenAIServer

# What each strategy keeps of its intermediate steps (kinds, in order).
KINDS = {"reminder": [], "cot": ["reasoning"], "self-critic": ["draft", "critique"], "recall": ["recalled"]}
PERSONAS, TURNS = 2, 2


class NumberedModel(FakeOpenAIServer):
    """The model under test's server: every answer is unique ("model text #n"), so a test can follow
    each text to wherever it went."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0
        self._lock = threading.Lock()

    def _answer(self, body):
        with self._lock:
            self._n += 1
            return f"model text #{self._n} zebra"


def _run(cli, tmp_path, strategy, model_server, other_server, name="run", limit=PERSONAS):
    return cli(
        "run",
        "--model", f"{strategy}/openai/fake-model", "--model-base-url", model_server.base_url,
        "--simulator", "openai/fake-model", "--simulator-base-url", other_server.base_url,
        "--judge", "openai/fake-model", "--judge-base-url", other_server.base_url,
        "--personas", "demo", "--limit", str(limit), "--turns", str(TURNS), "--no-progress",
        "--output", tmp_path / name, "--cache", tmp_path / "calls.sqlite",
    )  # fmt: skip


@pytest.mark.parametrize("strategy", sorted(CALLS))
def test_calls_per_reply_and_only_the_reply_leaves_the_model(cli, tmp_path, strategy):
    with NumberedModel() as model, FakeOpenAIServer() as other:
        code, out, err = _run(cli, tmp_path, strategy, model, other)
        assert code == 0, out + err
        replies = PERSONAS * TURNS
        # exactly what the strategy promises, per reply, on the wire
        assert len(model.requests) == replies * CALLS[strategy]
        results, convs = read_run(tmp_path / "run")
        usage = results["usage"]["model"]
        assert usage["calls"] == replies and usage["strategy_calls"] == replies * CALLS[strategy]
        # usage (hence price) counts every call's tokens, not only the final one's
        sent_prompt = sum(sum(len(m["content"].split()) for m in b["messages"]) for b in model.requests)
        assert usage["prompt_tokens"] == sent_prompt
        assert usage["completion_tokens"] == replies * CALLS[strategy] * 4  # "model text #n zebra"

        seen_by_others = json.dumps(other.requests)
        for conv in convs:
            assert conv["status"] == "complete"
            for k, turn in enumerate(conv["turns"]):
                record = turn["strategy"]
                assert record["name"] == strategy and record["calls"] == CALLS[strategy]
                assert record["prompt"].startswith(f"strategy/{strategy}@")
                assert [s["kind"] for s in record["intermediate"]] == KINDS[strategy]
                # the reply is a whole completion of the model; the simulated user (next turn) and
                # the judge saw it, and never a draft, critique or reasoning
                assert turn["assistant"].startswith("model text #")
                assert turn["assistant"] in seen_by_others
                for step in record["intermediate"]:
                    if step["kind"] == "recalled":
                        assert step["text"] == ([conv["turns"][0]["user"]] if k == 1 else [])
                    else:
                        assert step["text"].startswith("model text #")
                        assert step["text"] not in seen_by_others

        # re-run: every reply comes from the call cache, its intermediate texts with it
        code, out, err = _run(cli, tmp_path, strategy, model, other, name="again")
        assert code == 0, out + err
        assert len(model.requests) == replies * CALLS[strategy]
        _, again = read_run(tmp_path / "again")
        assert [t["strategy"] for c in again for t in c["turns"]] == [
            t["strategy"] for c in convs for t in c["turns"]
        ]


def test_what_each_call_is_asked(cli, tmp_path):
    """self-critic: the draft is the plain chat; the critique sees the draft; the revision sees both.
    cot: the reply call sees the reasoning in its system message."""
    with NumberedModel() as model, FakeOpenAIServer() as other:
        assert _run(cli, tmp_path, "self-critic", model, other, limit=1)[0] == 0  # one: calls in order
        first_three = [json.dumps(b["messages"]) for b in model.requests[:3]]
        draft, critique, revise = model.requests[0], model.requests[1], model.requests[2]
        assert [m["role"] for m in draft["messages"]] == ["user"]  # what the model alone is asked
        assert "model text #1 zebra" in first_three[1] and "Criticise it" in first_three[1]
        assert "model text #1 zebra" in first_three[2] and "model text #2 zebra" in first_three[2]
        assert revise["messages"][0]["role"] == "system" and revise["messages"][-1] == draft["messages"][-1]
        assert critique["messages"][-1]["content"].startswith(draft["messages"][-1]["content"])
    with NumberedModel() as model, FakeOpenAIServer() as other:
        assert _run(cli, tmp_path, "cot", model, other, name="cot", limit=1)[0] == 0
        reason, reply = model.requests[0], model.requests[1]
        assert "think step by step" in reason["messages"][-1]["content"]
        assert "model text #1 zebra" in reply["messages"][0]["content"]
        assert reply["messages"][1:] == [m for m in reason["messages"][1:-1]] + [
            {"role": "user", "content": reply["messages"][-1]["content"]}
        ]


def test_recall_picks_the_related_earlier_messages():
    history = [
        "I spent the weekend fixing my old boat engine.",
        "My daughter started school today.",
        "Lobster season opens next week and the boat is ready.",
        "It rained all day.",
    ]
    assert recall(history, "Took the boat out at dawn", 2) == [history[0], history[2]]
    assert recall(history, "completely unrelated words", 3) == []
    assert recall([], "anything", 3) == []


def test_specs_name_what_they_wrap():
    assert served_spec("self-critic/openai/gpt-4o-mini") == "openai/gpt-4o-mini"
    assert served_spec("reminder/cot/embedded") == "embedded"
    assert calls_per_reply("self-critic/cot/embedded") == 6 and calls_per_reply("hf/x") == 1
    assert portable_spec("self-critic/hf//home/me/ckpt/sft") == "self-critic/hf/sft"  # no local paths
    assert set(spec_names._WRAPPERS) == set(STRATEGIES)
    # priced as the model it wraps (its usage sums every call)
    assert list_price("cot/openai/gpt-4o-mini") == list_price("openai/gpt-4o-mini") is not None
    # through best-of-N too, in either nesting
    assert list_price("cot/bon/2:openai/gpt-4o-mini@./rm") == list_price("openai/gpt-4o-mini")
    assert list_price("bon/2:self-critic/openai/gpt-4o-mini@./rm") == list_price("openai/gpt-4o-mini")


def test_a_strategy_of_nothing_is_refused_in_one_line(cli, tmp_path):
    code, out, err = cli(
        "run", "--model", "cot/", "--turns", "1", "--output", tmp_path / "x", "--no-progress"
    )
    assert code != 0
    assert "cot/SPEC" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(CALLS))
def test_every_strategy_end_to_end_on_the_embedded_model(cli, tmp_path, embedded_checkpoint, strategy):
    out = tmp_path / "run"
    code, stdout, err = cli(
        "run", "--task", "aloe_demo", "--model", f"{strategy}/embedded", "--limit", "1", "--turns", "2",
        "--temperature", "0", "--output", out, "--cache", tmp_path / "calls.sqlite", *SMALL,
        "--max-new-tokens", "12",
    )  # fmt: skip
    assert code == 0, stdout + err
    results, convs = read_run(out)
    assert results["status"] == "complete" and results["config"]["model"]["spec"] == f"{strategy}/embedded"
    assert results["usage"]["model"]["strategy_calls"] == 2 * CALLS[strategy]
    for turn in convs[0]["turns"]:
        assert turn["assistant"] and turn["strategy"]["calls"] == CALLS[strategy]
        texts = [s["text"] for s in turn["strategy"]["intermediate"] if s["kind"] != "recalled"]
        assert all(isinstance(t, str) and t for t in texts) and len(texts) == len(KINDS[strategy]) - (
            strategy == "recall"
        )


def test_dry_run_counts_every_call_of_a_strategy(cli, aloe_data_dir):
    base = ["run", "--task", "aloe_paper", "--data-dir", aloe_data_dir, "--limit", "2", "--dry-run"]
    rows = {}
    for spec in ("openai/gpt-4o-mini", "self-critic/openai/gpt-4o-mini"):
        code, out, err = cli(*base, "--model", spec)
        assert code == 0, err
        rows[spec] = next(line.split() for line in out.splitlines() if line.startswith("model"))
    plain, critic = rows["openai/gpt-4o-mini"], rows["self-critic/openai/gpt-4o-mini"]
    assert int(critic[2]) == 3 * int(plain[2])  # calls
    assert int(critic[3].replace(",", "")) == 3 * int(plain[3].replace(",", ""))  # prompt tokens
    # priced as three calls (costs printed to the cent)
    assert float(critic[-1]) == pytest.approx(3 * float(plain[-1]), abs=0.02) and float(critic[-1]) > 0
