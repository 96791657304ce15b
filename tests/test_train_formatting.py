"""Training examples are built along the branch actually taken, with loss on the replies only."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from aloe_train import formatting as fmt
from aloe_train.data import dpo_rows, sft_rows

pytest.importorskip("trl")


def T(user, preferred, rejected, chosen):
    return {"user": user, "preferred": preferred, "rejected": rejected, "chosen": chosen}


# Turn 1 continued with the REJECTED reply, so U0.2 reacts to R0.1, not to P0.1.
CONV = {
    "id": "c0",
    "status": "complete",
    "persona": {"profile": "p", "personality": "q"},
    "turns": [
        T("U0.0 What is the capital of France?", "P0.0 Paris.", "R0.0 Lyon.", "preferred"),
        T("U0.1 And its population?", "P0.1 About 2.1 million.", "R0.1 Dunno.", "rejected"),
        T("U0.2 Why don't you know?", "P0.2 Sorry: about 2.1 million.", "R0.2 I just don't.", "preferred"),
    ],
}
MFC = {
    "system": "You are a patient teacher who uses analogies.",
    "prompt": "Explain voltage.",
    "output": "Voltage is like water pressure in a pipe.",
    "chosen": "Voltage is like water pressure in a pipe.",
    "rejected": "Voltage is V.",
}


@pytest.fixture(scope="module")
def tok(embedded_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_checkpoint)


def users(messages):
    return [m["content"] for m in messages if m["role"] == "user"]


def assistants(messages):
    return [m["content"] for m in messages if m["role"] == "assistant"]


def test_sft_branch_follows_the_taken_branch_and_trains_each_preferred_reply_once():
    examples = fmt.sft_examples(CONV)
    (main, main_flags), (extra, extra_flags) = examples
    # the user turns are the real ones, in order (the release repeated the first one)
    assert users(main) == [t["user"] for t in CONV["turns"]]
    # the taken rejected reply stays as untrained context: U0.2 answers it
    assert assistants(main) == ["P0.0 Paris.", "R0.1 Dunno.", "P0.2 Sorry: about 2.1 million."]
    assert main_flags == [True, False, True]
    # the preferred reply of turn 1 is trained on the history that really happened
    assert users(extra) == [t["user"] for t in CONV["turns"][:2]]
    assert assistants(extra) == ["P0.0 Paris.", "P0.1 About 2.1 million."]
    assert extra_flags == [False, True]
    trained = sorted(a for m, f in examples for a, on in zip(assistants(m), f, strict=True) if on)
    assert trained == sorted(t["preferred"] for t in CONV["turns"])


def test_sft_rejected_ablation_and_per_turn_mode():
    trained = [
        a
        for m, f in fmt.sft_examples(CONV, target="rejected")
        for a, on in zip(assistants(m), f, strict=True)
        if on
    ]
    assert sorted(trained) == sorted(t["rejected"] for t in CONV["turns"])
    per_turn = fmt.sft_examples(CONV, mode="per_turn")
    assert len(per_turn) == 3
    for t, (messages, flags) in enumerate(per_turn):
        assert users(messages) == [x["user"] for x in CONV["turns"][: t + 1]]
        taken = [x[x["chosen"]] for x in CONV["turns"][:t]]
        assert assistants(messages) == [*taken, CONV["turns"][t]["preferred"]]
        assert flags == [False] * t + [True]


def test_loss_mask_covers_exactly_the_trained_replies(tok):
    for messages, flags in fmt.sft_examples(CONV):
        row = fmt.tokenize_with_mask(tok, messages, flags)
        segments = fmt.trained_segments(tok, row["input_ids"], row["assistant_masks"])
        wanted = [a + tok.eos_token for a, on in zip(assistants(messages), flags, strict=True) if on]
        assert segments == wanted
        # the tokens are the template's own rendering, nothing added or lost
        assert tok.decode(row["input_ids"]) == tok.apply_chat_template(messages, tokenize=False)


def test_mask_matches_trl_generation_markers_on_other_templates(tok):
    """TRL ships training templates with {% generation %} markers: the template's own assistant mask.
    Ours, computed from prefixes of the plain template, must select the same tokens."""
    import trl

    folder = Path(trl.__file__).parent / "chat_templates"
    messages, flags = fmt.sft_examples(CONV, mode="per_turn")[-1]
    flags = [True] * len(flags)
    for name in ("llama3", "qwen2_5"):
        other = copy.deepcopy(tok)
        other.chat_template = (folder / f"{name}.jinja").read_text()
        other.eos_token = "<|eot_id|>" if name == "llama3" else "<|im_end|>"
        ours = fmt.tokenize_with_mask(other, messages, flags)
        theirs = other.apply_chat_template(
            messages,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
            chat_template=(folder / f"{name}_training.jinja").read_text(),
        )
        assert ours["input_ids"] == theirs["input_ids"], name
        ours_text = [
            s.strip() for s in fmt.trained_segments(other, ours["input_ids"], ours["assistant_masks"])
        ]
        theirs_text = [
            s.strip() for s in fmt.trained_segments(other, theirs["input_ids"], theirs["assistant_masks"])
        ]
        assert ours_text == theirs_text, name
        # (SmolLM2's vocabulary has no single token for a foreign end-of-turn marker, so a token may
        # straddle its end: compare the reply text and the marker, not the exact tail)
        for segment, reply in zip(ours_text, assistants(messages), strict=True):
            assert segment.startswith(reply + other.eos_token), (name, segment)


def test_dpo_triples_match_the_tree():
    pairs = fmt.dpo_examples(CONV)
    assert len(pairs) == len(CONV["turns"])
    for t, pair in enumerate(pairs):
        turns = CONV["turns"]
        assert users(pair["prompt"]) == [x["user"] for x in turns[: t + 1]]
        assert assistants(pair["prompt"]) == [x[x["chosen"]] for x in turns[:t]]
        assert pair["prompt"][-1] == {"role": "user", "content": turns[t]["user"]}
        assert pair["chosen"] == [{"role": "assistant", "content": turns[t]["preferred"]}]
        assert pair["rejected"] == [{"role": "assistant", "content": turns[t]["rejected"]}]
    same = copy.deepcopy(CONV)
    same["turns"][0]["rejected"] = same["turns"][0]["preferred"]
    assert [p["source"] for p in fmt.dpo_examples(same)] == ["c0#1", "c0#2"]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_files_formats_and_failed_conversations(tok, tmp_path):
    failed = {**copy.deepcopy(CONV), "id": "c1", "status": "failed", "error": "turn 2: judge failed"}
    data = write_jsonl(tmp_path / "convs.jsonl", [CONV, failed])
    rows, report = sft_rows(tok, str(data))
    assert report.format == "aloe" and report.conversations_used == 1 and report.skipped_not_complete == 1
    assert len(rows) == 2 and report.trained_replies == 3
    pairs, report = dpo_rows(tok, str(data))
    assert len(pairs) == 3 and set(pairs[0]) == {"prompt", "chosen", "rejected"}

    mfc = write_jsonl(tmp_path / "mfc.jsonl", [MFC])
    rows, report = sft_rows(tok, str(mfc))
    assert report.format == "multifaceted"
    assert fmt.trained_segments(tok, rows[0]["input_ids"], rows[0]["assistant_masks"]) == [
        MFC["output"] + tok.eos_token
    ]
    rendered = tok.decode(rows[0]["input_ids"])
    assert MFC["system"] in rendered and MFC["prompt"] in rendered
    pairs, _ = dpo_rows(tok, str(mfc))
    assert pairs[0]["prompt"] == [
        {"role": "system", "content": MFC["system"]},
        {"role": "user", "content": MFC["prompt"]},
    ]
    assert pairs[0]["rejected"][0]["content"] == MFC["rejected"]


def test_long_histories_lose_their_oldest_turns_not_the_reply(tok, tmp_path):
    long = copy.deepcopy(CONV)
    long["turns"][0]["user"] = "U0.0 " + "very long question " * 80
    per_turn_last = fmt.sft_examples(long, mode="per_turn")[-1]
    budget = fmt.count_tokens(tok, per_turn_last[0]) - 100
    messages, flags, lost = fmt.fit_sft_example(tok, *per_turn_last, budget)
    assert users(messages) == [t["user"] for t in long["turns"][1:]]
    assert flags == [False, True] and lost == 0
    pair = fmt.dpo_examples(long)[-1]
    fitted, dropped = fmt.fit_dpo_example(tok, pair, budget)
    assert dropped == 1 and fitted["prompt"][-1]["content"] == long["turns"][-1]["user"]


def test_trl_trainers_consume_the_rows_as_built(tok, embedded_checkpoint, tmp_path):
    """SFTTrainer turns assistant_masks into labels (loss on replies only); DPOTrainer tokenizes the
    conversational triples into prompt + preferred/rejected reply."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(embedded_checkpoint)
    common = {
        "output_dir": str(tmp_path),
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "max_steps": 1,
    }
    data = write_jsonl(tmp_path / "convs.jsonl", [CONV])
    rows, _ = sft_rows(tok, str(data), max_length=512)
    sft = SFTTrainer(
        model=model,
        args=SFTConfig(**common, max_length=512),
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
    )
    for prepared, row in zip(sft.train_dataset, rows, strict=True):
        trained = [lab != -100 for lab in prepared["labels"]]
        assert trained == [bool(m) for m in row["assistant_masks"]]

    pairs, _ = dpo_rows(tok, str(data), max_length=512)
    dpo = DPOTrainer(
        model=model,
        ref_model=None,
        args=DPOConfig(**common, max_length=512),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tok,
    )
    last = dpo.train_dataset[-1]
    prompt = tok.decode(last["prompt_ids"])
    # SmolLM2's ChatML template: the prompt ends with the last real user turn and the generation prompt
    assert prompt.endswith(f"<|im_start|>user\n{CONV['turns'][2]['user']}<|im_end|>\n<|im_start|>assistant\n")
    assert "R0.1 Dunno." in prompt and "P0.1" not in prompt
    assert tok.decode(last["chosen_ids"]).startswith(CONV["turns"][2]["preferred"])
    assert tok.decode(last["rejected_ids"]).startswith(CONV["turns"][2]["rejected"])
