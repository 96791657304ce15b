import asyncio

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import BackendPool, parse_spec
from aloe_bench.models.backends.base import PRIORITY_BACKGROUND, PRIORITY_CRITICAL, PrioritySemaphore
from aloe_bench.seeds import request_seed
from aloe_bench.solvers.rollout import clean_user_message


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("*laughs* Oh man, what a day!", "Oh man, what a day!"),
        ('"Just got back from the docks."', "Just got back from the docks."),
        ("User: hey there *waves*  how are you?", "hey there how are you?"),
        ("I **really** love it", "I love it"),
        ("*sighs*", ""),
    ],
)
def test_stage_directions_name_tags_and_quotes_are_stripped(raw, clean):
    assert clean_user_message(raw) == clean


def test_request_seeds_are_stable_and_distinct():
    a = request_seed(0, "abc", 1, "model")
    assert a == request_seed(0, "abc", 1, "model")
    assert (
        len(
            {
                a,
                request_seed(1, "abc", 1, "model"),
                request_seed(0, "abd", 1, "model"),
                request_seed(0, "abc", 2, "model"),
                request_seed(0, "abc", 1, "simulator"),
            }
        )
        == 5
    )


def test_specs_are_parsed_like_inspect():
    assert parse_spec("hf/HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "hf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    )
    assert parse_spec("openai/gpt-4o-mini-2024-07-18") == ("openai", "gpt-4o-mini-2024-07-18")
    assert parse_spec("embedded") == ("embedded", "")
    assert parse_spec("./some/dir") == ("hf", "./some/dir")
    with pytest.raises(UserInputError, match="unknown model provider"):
        parse_spec("anthropic/claude")


def test_roles_with_the_same_spec_share_one_backend(embedded_checkpoint):
    pool = BackendPool()
    a = pool.get(f"hf/{embedded_checkpoint}")
    b = pool.get(str(embedded_checkpoint))  # a bare folder is hf/<folder>
    c = pool.get(f"hf/{embedded_checkpoint}", {"dtype": "float32"})
    assert a is b and a is not c


def test_priority_semaphore_serves_critical_waiters_first():
    order = []

    async def main():
        sem = PrioritySemaphore(1)
        await sem.acquire()

        async def worker(name, priority):
            async with sem.slot(priority):
                order.append(name)

        tasks = [
            asyncio.create_task(worker("judge-1", PRIORITY_BACKGROUND)),
            asyncio.create_task(worker("judge-2", PRIORITY_BACKGROUND)),
            asyncio.create_task(worker("user", PRIORITY_CRITICAL)),
        ]
        await asyncio.sleep(0.01)
        sem.release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == ["user", "judge-1", "judge-2"]
