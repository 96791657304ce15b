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
