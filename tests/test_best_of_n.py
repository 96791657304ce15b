"""Best-of-N (`bon/N:POLICY@RM`): N samples from the policy, the reward model's favourite returned,
every candidate and its reward kept in the transcript and the call cache, N calls' usage and cost.

The reward model is built here from the embedded checkpoint so that its ranking is known by
construction: every layer's writes to the residual stream are zeroed (so the last position's hidden
state is its token's embedding), the final norm's weight is set to ones, and the one-label score head
is the unit embedding of a target token t*. A sequence's reward is then sqrt(d) * cos(E[last token],
E[t*]): exactly sqrt(d) when the reply ends with t*, less otherwise (Cauchy-Schwarz). With a chat
template that ends with the reply, or Janus's raw format (RewardTrainer appends EOS, which is also
the pad token, so the last non-pad token is the reply's), the last token is the reply's last token.
"""

import asyncio
import json
import math

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import BackendPool, ChatRequest, GenerationSettings, normalize_spec
from aloe_bench.models.backends.best_of_n import candidate_seed, parse_bon_name, served_spec
from aloe_bench.models.backends.reward_model import janus_text
from aloe_bench.models.cost import list_price
from aloe_bench.spec_names import portable_spec
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

# Candidate i of a request with seed s is answered ANSWERS[(s + i) % 4] by the fake server.
ANSWERS = [
    "My favourite fruit is a crisp apple",
    "Honestly I would pick the cherry",
    "A grape",
    "Without any doubt at all, the best fruit is the banana",
]
WINNER = 3
# A template whose rendering ends with the reply itself (no end-of-turn tokens after it).
PLAIN_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% if not loop.last %}\n{% endif %}{% endfor %}"
CHAT = [
    {"role": "system", "content": "You value concise answers."},
    {"role": "user", "content": "Which fruit is best?"},
]


def build_reward_model(checkpoint, out, *, target_word: str, template: str | None):
    """A RewardTrainer-shaped checkpoint (one label) whose reward peaks at replies ending in `target_word`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    target = tok(f" {target_word}", add_special_tokens=False).input_ids
    assert len(target) == 1, f"{target_word!r} must be one token"
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=1)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        embedding = model.model.embed_tokens.weight[target[0]]
        model.score.weight.copy_((embedding / embedding.norm()).unsqueeze(0))
    model.config.pad_token_id = tok.pad_token_id
    tok.chat_template = template
    model.save_pretrained(out)
    tok.save_pretrained(out)
    if template is None:  # transformers keeps a chat_template.jinja beside the tokenizer: no template at all
        for name in ("chat_template.jinja", "chat_template.json"):
            (out / name).unlink(missing_ok=True)
    return out, math.sqrt(model.config.hidden_size)


@pytest.fixture(scope="module")
def reward_models(embedded_checkpoint, tmp_path_factory):
    """{"chat_template": (path, top reward), "janus": (path, top reward)}, both favouring "banana"."""
    root = tmp_path_factory.mktemp("rm")
    return {
        "chat_template": build_reward_model(
            embedded_checkpoint, root / "templated", target_word="banana", template=PLAIN_TEMPLATE
        ),
        "janus": build_reward_model(embedded_checkpoint, root / "raw", target_word="banana", template=None),
    }


def test_spec_syntax():
    assert parse_bon_name("4:openai/gpt-4o-mini@/runs/rm") == (4, "openai/gpt-4o-mini", "/runs/rm")
    assert parse_bon_name("2:embedded@org/janus-rm") == (2, "embedded", "org/janus-rm")
    for bad, why in (
        ("4embedded@/rm", "malformed"),
        ("4:embedded", "malformed"),
        ("x:embedded@/rm", "whole number"),
        ("0:embedded@/rm", "at least 1"),
        ("2:bon/2:embedded@/a@/b", "cannot itself"),
    ):
        with pytest.raises(UserInputError, match=why):
            parse_bon_name(bad)
    assert normalize_spec("bon/4:embedded@/rm") == "bon/4:embedded@/rm"
    assert served_spec("bon/4:openai/gpt-4o-mini-2024-07-18@/rm") == "openai/gpt-4o-mini-2024-07-18"
    # Priced as its policy (its usage holds every candidate's tokens); reports show no local paths.
    assert list_price("bon/4:openai/gpt-4o-mini-2024-07-18@/rm") == list_price(
        "openai/gpt-4o-mini-2024-07-18"
    )
    assert portable_spec("bon/4:hf//home/me/ckpt/sft@/home/me/ckpt/rm") == "bon/4:hf/sft@rm"
    assert [candidate_seed(7, i) for i in range(3)] == [7, 8, 9] and candidate_seed(2**32 - 1, 1) == 0


def test_janus_raw_format():
    assert (
        janus_text(CHAT, "Banana.")
        == "[INST] You value concise answers.\nWhich fruit is best? [/INST] Banana."
    )
    assert janus_text([{"role": "user", "content": "Hi"}], "Hello") == "[INST] Hi [/INST] Hello"
    chat = [*CHAT, {"role": "assistant", "content": "Apple."}, {"role": "user", "content": "Another?"}]
    assert janus_text(chat, "Pear.", "</s>") == (
        "[INST] You value concise answers.\nWhich fruit is best? [/INST] Apple.</s>[INST] Another? [/INST] Pear."
    )


@pytest.mark.parametrize("rm_format", ["chat_template", "janus"])
def test_picks_the_highest_reward_from_an_api_policy(reward_models, rm_format):
    rm_path, top = reward_models[rm_format]
    with FakeOpenAIServer(FakeBehaviour(model_answers=ANSWERS)) as server:

        async def ask():
            pool = BackendPool()
            try:
                bon = pool.get(f"bon/4:openai/policy@{rm_path}", {"base_url": server.base_url})
                return await bon.generate([ChatRequest(CHAT, GenerationSettings(max_new_tokens=32, seed=5))])
            finally:
                await pool.aclose()

        (answer,) = asyncio.run(ask())
        sent = list(server.requests)
    assert answer.ok, answer.error
    record = answer.meta["best_of_n"]
    # Seeds 5..8 -> ANSWERS[1, 2, 3, 0]: the banana reply is candidate 2, neither first nor last.
    assert [c["text"] for c in record["candidates"]] == [ANSWERS[(5 + i) % 4] for i in range(4)]
    assert sorted(b["seed"] for b in sent) == [5, 6, 7, 8]
    assert record["format"] == rm_format and record["n"] == 4
    assert record["chosen"] == 2 and answer.text == ANSWERS[WINNER]
    rewards = [c["reward"] for c in record["candidates"]]
    assert rewards[2] == pytest.approx(top, rel=1e-3)  # sqrt(d): the target token itself
    assert all(r < top - 1 for i, r in enumerate(rewards) if i != 2)
    # Usage: all four candidates were asked and generated.
    assert answer.completion_tokens == sum(len(a.split()) for a in ANSWERS)
    assert answer.prompt_tokens == 4 * sum(len(m["content"].split()) for m in CHAT)


def test_on_the_embedded_model(embedded_checkpoint, reward_models):
    """Sampled candidates from the embedded model; the chosen one is the argmax of rewards that the
    test computes itself (one unpadded forward pass per candidate), and candidate 0 is exactly what
    the policy alone answers for the same request."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rm_path, _ = reward_models["chat_template"]
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0, seed=11)

    async def ask():
        pool = BackendPool()
        try:
            bon = pool.get(f"bon/3:embedded@{rm_path}")
            (answer,) = await bon.generate([ChatRequest(CHAT, settings)])
            (alone,) = await bon.policy.generate([ChatRequest(CHAT, settings)])
            return answer, alone
        finally:
            await pool.aclose()

    answer, alone = asyncio.run(ask())
    assert answer.ok, answer.error
    record = answer.meta["best_of_n"]
    texts = [c["text"] for c in record["candidates"]]
    assert len(texts) == 3 and len(set(texts)) > 1, texts
    assert texts[0] == alone.text
    tok = AutoTokenizer.from_pretrained(rm_path)
    model = AutoModelForSequenceClassification.from_pretrained(rm_path).eval()
    expected = []
    for text in texts:
        ids = tok.apply_chat_template(
            [*CHAT, {"role": "assistant", "content": text}], tokenize=True, return_dict=True
        )
        with torch.inference_mode():
            expected.append(float(model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, 0]))
    assert [c["reward"] for c in record["candidates"]] == pytest.approx(expected, abs=1e-4)
    best = max(range(3), key=lambda i: expected[i])
    assert record["chosen"] == best and answer.text == texts[best]


def test_greedy_sampling_is_refused(reward_models):
    rm_path, _ = reward_models["janus"]
    bon = BackendPool().get(f"bon/4:control/generic@{rm_path}")
    with pytest.raises(UserInputError, match="temperature is 0"):
        bon.check_settings(GenerationSettings(temperature=0.0))
    with pytest.raises(UserInputError, match="does not exist"):
        BackendPool().get("bon/4:control/generic@/no/such/rm")


@pytest.fixture(scope="module")
def bon_run(tmp_path_factory, reward_models):
    """An ALOE run with best-of-N as the model under test (the simulator and judge on the same fake
    server), run twice: the second answered from the call cache. (run dir, the policy's requests)."""
    from aloe_bench.cli.main import main

    rm_path, _ = reward_models["chat_template"]
    root = tmp_path_factory.mktemp("bon-run")
    out, cache = root / "run", root / "calls.sqlite"
    with FakeOpenAIServer(FakeBehaviour(model_answers=ANSWERS, judge_answers=["4"])) as server:
        args = [
            "run", "--personas", "demo", "--limit", "1", "--turns", "2",
            "--model", f"bon/4:openai/policy@{rm_path}", "--model-base-url", server.base_url,
            "--simulator", "openai/sim", "--simulator-base-url", server.base_url,
            "--judge", "openai/judge", "--judge-base-url", server.base_url,
            "--price", "model=1,2", "--output", str(out), "--cache", str(cache), "--no-progress",
        ]  # fmt: skip
        assert main(args) == 0
        policy_bodies = [b for b in server.requests if b["model"] == "policy"]
        assert main(args) == 0  # resumed: the whole run comes from the call cache
        assert len([b for b in server.requests if b["model"] == "policy"]) == len(policy_bodies)
    return out, policy_bodies


def test_a_run_keeps_candidates_in_the_transcript_and_prices_every_call(bon_run):
    out, policy_bodies = bon_run
    results = json.loads((out / "results.json").read_text())
    (conversation,) = [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]
    assert len(conversation["turns"]) == 2 and len(policy_bodies) == 8
    for turn in conversation["turns"]:
        record = turn["best_of_n"]
        assert len(record["candidates"]) == 4
        rewards = [c["reward"] for c in record["candidates"]]
        assert record["chosen"] == rewards.index(max(rewards))
        assert turn["assistant"] == record["candidates"][record["chosen"]]["text"] == ANSWERS[WINNER]
    assert results["config"]["model"]["spec"].startswith("bon/4:openai/policy@")
    assert results["config"]["model"]["backend"]["reward_model"]["format"] == "chat_template"
    # Usage over both invocations (the second answered from the cache): 8 policy calls behind 2 turns.
    usage = results["usage"]["model"]
    assert usage["completion_tokens"] == 2 * sum(len(a.split()) for a in ANSWERS)
    prompt_tokens = sum(sum(len(m["content"].split()) for m in b["messages"]) for b in policy_bodies)
    assert usage["prompt_tokens"] == prompt_tokens
    assert usage["cost_usd"] == pytest.approx((prompt_tokens * 1 + usage["completion_tokens"] * 2) / 1e6)


def test_the_viewer_shows_the_candidates(bon_run):
    from pathlib import Path

    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from aloe_bench.reports.viewer import build_report

    out, _ = bon_run
    page_file = build_report([out], out / "report.html")
    (conversation,) = [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.resolve().as_uri() + f"#conv={conversation['id']}")
        page.wait_for_function("window.__aloeReady === true", timeout=20_000)
        summaries = page.eval_on_selector_all(
            "#detail .turn details > summary", "xs => xs.map(x => x.textContent)"
        )
        expected = [f"best-of-4: candidate {t['best_of_n']['chosen']} chosen" for t in conversation["turns"]]
        assert [s.split(" by ")[0] for s in summaries if s.startswith("best-of-")] == expected, summaries
        rows = page.eval_on_selector_all(
            "#detail table.candidates tr.chosen td pre", "xs => xs.map(x => x.textContent)"
        )
        assert rows == [ANSWERS[WINNER]] * 2
        browser.close()
    assert errors == []


def test_dry_run_plans_n_policy_calls_per_reply(cli, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    policy = "openai/gpt-4o-mini-2024-07-18"
    base = ["run", "--personas", "demo", "--limit", "1", "--turns", "2", "--simulator", "embedded", "--dry-run",
            "--price", "model=1000,1000"]  # fmt: skip
    rows = {}
    for spec in (policy, f"bon/4:{policy}@/rm"):
        code, out, err = cli(*base, "--model", spec)
        assert code == 0, err
        rows[spec] = next(line.split() for line in out.splitlines() if line.startswith("model"))
    plain, bon = rows[policy], rows[f"bon/4:{policy}@/rm"]
    calls, prompt, output, cost = (-4, -3, -2, -1)
    assert int(bon[calls].replace(",", "")) == 4 * int(plain[calls].replace(",", ""))
    assert int(bon[output].replace(",", "")) == 4 * int(plain[output].replace(",", ""))
    assert int(bon[prompt].replace(",", "")) == 4 * int(plain[prompt].replace(",", ""))
    assert float(plain[cost]) > 1 and float(bon[cost]) == pytest.approx(4 * float(plain[cost]), rel=1e-3)


def test_a_multifaceted_run_with_the_janus_preset(cli, tmp_path, reward_models):
    """Best-of-N under the Janus preset on Multifaceted: every candidate is asked with the preset's
    sampling (the penalty sent, as vLLM / TGI take it), the instance keeps its candidates."""
    rm_path, _ = reward_models["janus"]
    out = tmp_path / "run"
    with FakeOpenAIServer(FakeBehaviour(model_answers=ANSWERS, judge_answers=["4"])) as server:
        code, _, err = cli(
            "run", "--task", "multifaceted_demo", "--limit", "2", "--generation", "janus",
            "--model", f"bon/4:openai/policy@{rm_path}", "--model-base-url", server.base_url,
            "--judge", "openai/judge", "--judge-base-url", server.base_url,
            "--output", out, "--no-cache", "--no-progress",
        )  # fmt: skip
        assert code == 0, err
        policy_bodies = [b for b in server.requests if b["model"] == "policy"]
    assert len(policy_bodies) == 8
    assert {
        (b["temperature"], b["top_p"], b["repetition_penalty"], b["max_tokens"]) for b in policy_bodies
    } == {(1.0, 0.9, 1.03, 1024)}
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model"]["repetition_penalty"] == 1.03
    assert results["usage"]["model"]["calls"] == 2 and results["usage"]["model"]["best_of_n_candidates"] == 8
    assert results["config"]["model"]["backend"]["reward_model"]["format"] == "janus"
    for line in (out / "conversations.jsonl").read_text().splitlines():
        (turn,) = json.loads(line)["turns"]
        assert len(turn["best_of_n"]["candidates"]) == 4 and turn["assistant"] == ANSWERS[WINNER]
