import pytest

from aloe_bench.judge import parse_score

SHAPES = [
    ("4", 4),
    (" 5 \n", 5),
    ("Score: 4", 4),
    ("**Score**: 4", 4),
    ("Score: **4**", 4),
    ("I would give this a score of 3.", 3),
    ("Rating - 4 out of 5", 4),
    ("4/5", 4),
    ("**4/5**", 4),
    ('{"score": 2}', 2),
    ('{"rating": "5"}', 5),
    ("four", 4),
    ("Four.", 4),
    ("I'd say 4.", 4),
    ("The reply fits. The score is: 5", 5),
    ("[RESULT] 3", 3),
    ("It fits well.\nScore: 5", 5),
    ("Score: 4.0", 4),
    ("Criteria 1 is met, criteria 2 is not.\nScore: 2", 2),
    ("3 out of 5 stars", 3),
    ("Rating: 1", 1),
    ("(2)", 2),
]
GARBAGE = [
    None,
    "",
    "   ",
    "garbage",
    "Score: 7",
    "Rating: 4.5",
    "10",
    "0",
    "The reply mentions 2 kids and 3 dogs",
    "1 2 3 4 5",
    "I cannot rate this.",
    "Score: fourteen",
    '{"score": 9}',
    "-1",
]


@pytest.mark.parametrize(("text", "expected"), SHAPES)
def test_reads_reasonable_answer_forms(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize("text", GARBAGE)
def test_unreadable_answers_give_none_not_a_crash(text):
    assert parse_score(text) is None


def test_history_protocol_shows_earlier_turns_and_v1_does_not():
    from aloe_bench.judge import get_protocol

    persona = {"profile": "P-PROFILE", "personality": "P-PERSONALITY"}
    turns = [
        {"user": "first message ALPHA", "assistant": "first reply BETA"},
        {"user": "second message GAMMA", "assistant": "second reply DELTA"},
    ]
    v1 = "\n".join(m["content"] for m in get_protocol("aloe-v1").messages(persona, turns, 1))
    hist = "\n".join(m["content"] for m in get_protocol("aloe-history").messages(persona, turns, 1))
    for text in (v1, hist):
        assert "P-PROFILE" in text and "P-PERSONALITY" in text and "GAMMA" in text and "DELTA" in text
    assert "ALPHA" not in v1 and "BETA" not in v1
    assert "ALPHA" in hist and "BETA" in hist
    first = "\n".join(m["content"] for m in get_protocol("aloe-history").messages(persona, turns, 0))
    assert "GAMMA" not in first and "first exchange" in first
