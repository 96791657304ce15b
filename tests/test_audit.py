"""Auditing the simulated user in synthetic worlds whose disclosure and role breaks are known by
construction (a scripted simulated user on 127.0.0.1), plus the LLM auditor's format and resume."""

from __future__ import annotations

import json

import pytest
from conftest import read_run

from aloe_bench.scorers.audit.checks import RoleChecks, advice_flags, asks_for_advice
from aloe_bench.scorers.audit.facts import split_clauses
from aloe_bench.scorers.audit.lexical import FactMatcher
from aloe_bench.scorers.audit.llm import parse_audit_answer
from aloe_bench.testing.scripted_users import ScriptedPersona, ScriptedUserServer

PROFILE = (
    "He is 34 years old. He works as a baker in Lyon. He has a golden retriever named Biscuit. "
    "He plays the cello in a community orchestra. He grew up on a farm in Normandy."
)
FACTS = 5
# One new fact per turn; the second persona also breaks role at turns 2 (AI) and 4 (assistant)
# and asks for advice at turns 1, 3 and 5 (3 and 5 are repeats).
GRADUAL = [
    ScriptedPersona(
        PROFILE,
        "He is cheerful. He is chatty.",
        [
            "Morning! I'm 34 today and already feeling ancient.",
            "Up since 4am again, being a baker in Lyon is no joke.",
            "Biscuit, my golden retriever, stole a croissant off the counter this morning.",
            "Rehearsal tonight: I play the cello in a community orchestra.",
            "Sometimes I miss the farm in Normandy where I grew up.",
        ],
    ),
    ScriptedPersona(
        PROFILE,
        "He is grumpy. He is terse.",
        [
            "I'm 34 and tired. Any tips for sleeping better?",
            "As an AI language model, I can tell you being a baker in Lyon is hard.",
            "My golden retriever Biscuit chewed my shoe. What should I do about it?",
            "I play the cello in a community orchestra. How can I assist you today?",
            "Grew up on a farm in Normandy. Do you have any advice on moving back?",
        ],
    ),
]
PLANTED_GRADUAL = [0.2, 0.4, 0.6, 0.8, 1.0]
SMALL_TALK = [
    "Nice weather today, isn't it?",
    "I watched a film last night.",
    "Traffic was terrible this morning.",
    "Anyway, talk soon.",
]
# Everything at turn 1 (the profile recited), nothing after.
FRONT_LOADED = [
    ScriptedPersona(PROFILE, "He is cheerful. He is chatty.", [PROFILE, *SMALL_TALK]),
    ScriptedPersona(PROFILE, "He is grumpy. He is terse.", [f"Hi! {PROFILE}", *SMALL_TALK]),
]
PLANTED_FRONT = [1.0] * 5
# The offline auditor reads facts stated plainly; the tolerance allows one misread fact of the ten
# in a world (0.1 on the mean of two conversations), and the curves differ by far more than that.
TOLERANCE = 0.1


def _world_args(tmp_path, server, personas, name):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in personas))
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
    return [
        "run", *roles, "--personas", path, "--turns", str(FACTS), "--no-progress",
        "--output", tmp_path / name, "--cache", tmp_path / f"{name}.sqlite",
    ]  # fmt: skip


def _curve(results):
    return [d["mean"] for d in results["audit"]["disclosure"]]


def test_facts_of_the_synthetic_profile_are_its_sentences():
    assert split_clauses(PROFILE) == [s.strip().rstrip(".") for s in PROFILE.split(". ")]


@pytest.mark.parametrize("embedder", ["none", "auto"])
def test_disclosure_curves_match_the_planted_ones(cli, tmp_path, embedder):
    measured = {}
    for name, personas in (("gradual", GRADUAL), ("front", FRONT_LOADED)):
        with ScriptedUserServer(personas) as server:
            code, stdout, err = cli(
                *_world_args(tmp_path, server, personas, name), "--audit", "--embedder", embedder
            )
        assert code == 0, err
        assert "simulated user (lexical audit, n=2)" in stdout
        results, _ = read_run(tmp_path / name)
        measured[name] = results
    for name, planted in (("gradual", PLANTED_GRADUAL), ("front", PLANTED_FRONT)):
        curve = _curve(measured[name])
        assert all(abs(m - p) <= TOLERANCE for m, p in zip(curve, planted, strict=True)), (name, curve)
    codes = {name: {w["code"] for w in r.get("warnings", [])} for name, r in measured.items()}
    assert "simulator-front-loaded" in codes["front"] and "simulator-front-loaded" not in codes["gradual"]
    assert "simulator-silent" not in codes["gradual"] | codes["front"]

    if embedder == "none":  # lexical evidence alone: exactly as planted, fact by fact
        audit_lines = (tmp_path / "gradual" / "audit.jsonl").read_text().splitlines()
        for line in audit_lines:
            conv = json.loads(line)
            assert conv["facts"] == split_clauses(PROFILE)
            assert conv["first_revealed"] == [1, 2, 3, 4, 5]
            assert [t["revealed"] for t in conv["turns"]] == [[0], [1], [2], [3], [4]]
        assert _curve(measured["gradual"]) == PLANTED_GRADUAL
        assert _curve(measured["front"]) == PLANTED_FRONT


def test_planted_role_breaks_and_advice_requests_are_counted_exactly(cli, tmp_path):
    with ScriptedUserServer(GRADUAL) as server:
        code, _, err = cli(
            *_world_args(tmp_path, server, GRADUAL, "gradual"), "--audit", "--embedder", "none"
        )
    assert code == 0, err
    results, _ = read_run(tmp_path / "gradual")
    audit = results["audit"]
    assert [r["count"] for r in audit["role_breaks"]] == [0, 1, 0, 1, 0]
    assert audit["role_breaks"][1]["by_code"] == {"ai-mention": 1}
    assert audit["role_breaks"][3]["by_code"] == {"assistant-speak": 1}
    assert audit["role_break_rate"] == {"rate": 0.2, "count": 2, "turns": 10}
    assert [a["asked"] for a in audit["advice_requests"]] == [1, 0, 1, 0, 1]
    assert [a["repeated"] for a in audit["advice_requests"]] == [0, 0, 1, 0, 1]
    assert "simulator-role-break" in {w["code"] for w in results["warnings"]}
    kinds = {(e["turn"], e["kind"]) for e in audit["examples"]}
    assert kinds == {
        (2, "ai-mention"),
        (4, "assistant-speak"),
        (3, "repeated-advice"),
        (5, "repeated-advice"),
    }

    # The front-loaded world recites its profile: that is a role break too, at turn 1 only.
    with ScriptedUserServer(FRONT_LOADED) as server:
        code, _, err = cli(
            *_world_args(tmp_path, server, FRONT_LOADED, "front"), "--audit", "--embedder", "none"
        )
    assert code == 0, err
    results, _ = read_run(tmp_path / "front")
    assert [r["count"] for r in results["audit"]["role_breaks"]] == [2, 0, 0, 0, 0]
    assert results["audit"]["role_breaks"][0]["by_code"] == {"persona-recited": 2}


def _answers(revealed_turn: int, role: str = "none", advice: str = "no", contradicts: str = "none") -> str:
    facts = "\n".join(f"F{i}: {'yes' if i == revealed_turn else 'no'}" for i in range(1, FACTS + 1))
    return f"{facts}\nROLE: {role}\nADVICE: {advice}\nCONTRADICTS: {contradicts}"


def test_llm_auditor_resumes_through_the_cache_and_calls_no_other_role(cli, tmp_path):
    personas = [
        ScriptedPersona(p.profile, p.personality, p.messages, [_answers(k) for k in range(1, FACTS + 1)])
        for p in GRADUAL
    ]
    personas[1].audit_answers[4] = _answers(5, contradicts="F2")  # a planted contradiction at turn 5
    with ScriptedUserServer(personas, unreadable_first=True) as server:
        code, _, err = cli(*_world_args(tmp_path, server, personas, "llm"))
        assert code == 0, err
        run_dir = tmp_path / "llm"
        before, _ = read_run(run_dir)
        sent = dict(server.role_requests)
        audit_args = ["audit", run_dir, "--auditor", "openai/fake", "--auditor-base-url", server.base_url]
        audit_args += ["--cache", tmp_path / "llm.sqlite", "--auditor-reasks", "1"]
        code, stdout, err = cli(*audit_args)
        assert code == 0, err
        after, _ = read_run(run_dir)
        # Nothing but the auditor was asked: no model-under-test, simulator or judge request.
        assert server.role_requests["simulator"] == sent["simulator"]
        assert server.role_requests["other"] == sent["other"]
        assert server.role_requests["auditor"] == 2 * 2 * FACTS  # an unreadable answer, then a re-ask
        assert after["usage"] == before["usage"] and after["metrics"] == before["metrics"]
        audit = after["audit"]
        assert audit["auditor"] == "openai/fake" and len(audit["prompt_sha256"]) == 64
        assert audit["usage"]["calls"] == 2 * 2 * FACTS and audit["usage"]["cached"] == 0
        assert _curve(after) == PLANTED_GRADUAL
        assert [c["count"] for c in audit["contradictions"]] == [0, 0, 0, 0, 1]
        assert [r["count"] for r in audit["role_breaks"]] == [0, 1, 0, 1, 0]  # the offline checks still run
        assert "contradiction: He works as a baker in Lyon" in {e["kind"] for e in audit["examples"]}

        # Auditing again replays every auditor call from the cache: no request at all.
        requests = len(server.requests)
        code, _, err = cli(*audit_args)
        assert code == 0, err
        assert len(server.requests) == requests
        again, _ = read_run(run_dir)
        assert again["audit"]["usage"]["calls"] == 0 and again["audit"]["usage"]["cached"] == 2 * 2 * FACTS
        assert again["audit"]["disclosure"] == audit["disclosure"]
        # Warnings are replaced, not duplicated, on a re-audit.
        codes = [w["code"] for w in again["warnings"]]
        assert len(codes) == len(set(codes))

        # The LLM can split the profiles too (one call per distinct profile, then cached).
        code, _, err = cli(*audit_args, "--facts", "llm")
        assert code == 0, err
        llm_facts, _ = read_run(run_dir)
        assert llm_facts["audit"]["facts_method"] == "llm:openai/fake"
        assert llm_facts["audit"]["usage"]["calls"] == 1  # the shared profile, split once
        # Its facts are the clause splitter's here, so every turn's auditor prompt is one already cached.
        assert _curve(llm_facts) == PLANTED_GRADUAL and llm_facts["audit"]["usage"]["cached"] == 2 * 2 * FACTS


def test_two_simulated_users_side_by_side(cli, tmp_path):
    for name, personas in (("gradual", GRADUAL), ("front", FRONT_LOADED)):
        with ScriptedUserServer(personas) as server:
            code, _, err = cli(*_world_args(tmp_path, server, personas, name))
        assert code == 0, err
    code, stdout, err = cli("audit", tmp_path / "gradual", tmp_path / "front", "--embedder", "none")
    assert code == 0, err
    table = stdout[stdout.index("disclosure by turn") :].splitlines()
    assert table[2].split()[:3] == ["1", "20%", "[20%,"] and "100%" in table[2]
    assert table[6].split()[1] == "100%" and table[6].split()[4] == "100%"


def test_unreadable_llm_auditor_answers_are_none():
    good = _answers(2)
    assert parse_audit_answer(good, FACTS).revealed == [1]
    assert parse_audit_answer(good.replace("F3: no\n", ""), FACTS) is None  # a fact line missing
    assert parse_audit_answer(good.replace("ADVICE: no", "ADVICE: maybe"), FACTS) is None
    assert parse_audit_answer(good.replace("ROLE: none", "ROLE: pirate"), FACTS) is None
    parroted = (
        "\n".join(f"F{i}: yes or no" for i in range(1, 6)) + "\nROLE: none\nADVICE: no\nCONTRADICTS: none"
    )
    assert parse_audit_answer(parroted, FACTS) is None


def test_offline_checks_on_their_own():
    checks = RoleChecks(
        "Stay in character for the whole conversation and never mention that you are an AI", PROFILE
    )
    assert checks.role_breaks("Do you like dogs?\nAssistant: Yes, I love them.") == ["answers-own-question"]
    assert checks.role_breaks("I always stay in character for the whole conversation, haha") == [
        "instruction-leak"
    ]
    assert checks.role_breaks("My dog ran off with a croissant again.") == []
    assert asks_for_advice("Should I sell the boat?") and not asks_for_advice("I sold the boat.")
    assert advice_flags([True, False, True, True]) == [False, False, True, True]
    assert FactMatcher().revealed(split_clauses(PROFILE), "I'm a baker, in Lyon of all places") == [1]


def test_bad_audit_input_is_one_line_and_exit_2(cli, tmp_path):
    code, _, err = cli("audit", tmp_path)
    assert code == 2 and "not a run directory" in err and len(err.strip().splitlines()) == 1
    with ScriptedUserServer(GRADUAL) as server:
        assert cli(*_world_args(tmp_path, server, GRADUAL, "run"))[0] == 0
    code, _, err = cli("audit", tmp_path / "run", "--facts", "llm")
    assert code == 2 and "--auditor" in err
    code, _, err = cli("audit", tmp_path / "run", "--embedder", "word2vec")
    assert code == 2 and "unknown --embedder" in err
    code, _, err = cli("run", "--model", "control/generic", "--auditor", "openai/x", "--limit", "1")
    assert code == 2 and "add --audit" in err


@pytest.mark.slow
def test_auditing_a_real_embedded_run_calls_nothing(cli, tiny_hf_run, tmp_path):
    import shutil

    source, _ = tiny_hf_run
    run_dir = tmp_path / "copy"
    shutil.copytree(source, run_dir)
    before, _ = read_run(run_dir)
    code, stdout, err = cli("audit", run_dir, "--embedder", "none")
    assert code == 0, err
    after, convs = read_run(run_dir)
    assert after["usage"] == before["usage"] and after["metrics"] == before["metrics"]
    audit = after["audit"]
    assert audit["conversations"] == 2 and len(audit["disclosure"]) == 2
    assert all(0 <= d["mean"] <= 1 and d["n"] == 2 for d in audit["disclosure"])
    lines = (run_dir / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [c["id"] for c in convs]
