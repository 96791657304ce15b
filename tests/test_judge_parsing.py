import pytest

from aloe_bench.scorers.judge import parse_score

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
    from aloe_bench.scorers.judge import get_protocol

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


# List numbering and criterion numbers are not verdicts (issue 15): the embedded judge echoes the
# prompt's criteria list, and these are its real answers from leaderboard/runs/embedded-demo.
ENUMERATORS = [
    "1. Style: The person's style is a bit too formal for a chat",
    "1. Style: The reply's style is a bit too casual for a chat",
    "2. 3. Manner: The person's manner is conversational and engaging",
    "1. The person's personality: She is polite and reserved, choosing respectful words",
    "2) Content is relevant to the profile",
    "Criterion 3: the reply is human-like",
    "criteria 2 is not met",
    "Judge by three criteria:\n1. Style: ok\n2. Content: ok\n3. Manner: ok",
    "Score:\n1. Style: too formal",
    "Score: 1. Style: too formal",
    "In turn 2 the reply fits",
    "#3",
]
STILL_VERDICTS = [
    ("The person's reply is 5.", 5),
    ("Score: 4. It fits the person.", 4),
    ("1. Style: fine\n2. Content: fine\nScore: 4", 4),
    ("Criterion 1 is met.\nRating: 3", 3),
    ("4.", 4),
]


@pytest.mark.parametrize("text", ENUMERATORS)
def test_list_and_criterion_numbers_are_not_scores(text):
    assert parse_score(text) is None


@pytest.mark.parametrize(("text", "expected"), STILL_VERDICTS)
def test_verdicts_next_to_enumerators_are_still_read(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Feedback. [RESULT] 4", 4),
        ("[RESULT] 4.", 4),
        ("[RESULT] (3)", 3),
        ("[RESULT] 1. Style: the reply is too formal", None),
        ("[RESULT]: 2) Content is relevant", None),
        ("[RESULT] Criterion 2: met", None),
    ],
)
def test_after_marker_rejects_enumerators(text, expected):
    from aloe_bench.scorers.judge import parse_after_marker

    assert parse_after_marker(text, "[RESULT]") == expected
