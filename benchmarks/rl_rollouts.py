"""Rollout throughput of `aloe-train rl` (conversations per minute): the RL loop's way vs one call at
a time, the same rollouts.

The simulated user and the judge are an OpenAI-compatible server on 127.0.0.1 that takes `--latency`
seconds per request (the project's fake server: what an API's latency does to the loop, without an
API). The policy is the embedded model (SmolLM2-135M) sampling `--reply-tokens` per reply on this
machine's CPU, exactly as in training (`PolicyGenerator` needs a trainer, so the benchmark calls the
same `generate()` on the model directly).

- rl loop: every conversation of the batch advances together: one simulator request per
  conversation, all in flight at once; one batched policy generate() per turn; each judge call starts
  as soon as its reply exists and overlaps the next turn.
- one at a time: the same conversations one after another, each call awaited before the next
  (simulator, policy, judge), as the original ALOE release ran its loop.

    python benchmarks/rl_rollouts.py [--conversations 16] [--turns 3] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import time

from aloe_bench.engine.session import open_backends
from aloe_bench.models.backends import GenerationSettings
from aloe_bench.models.backends.embedded import embedded_checkpoint
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import get_protocol
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_train.rl_rollout import ChatTokens, Conversation, ConversationRollout, LoopThread, RolloutRoles


def policy(model, tok, reply_tokens: int):
    import torch

    def generate(id_lists: list[list[int]]) -> list[list[int]]:
        width = max(map(len, id_lists))
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in id_lists])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in id_lists])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=reply_tokens, do_sample=True,
                temperature=1.0, pad_token_id=pad,
            )  # fmt: skip
        rows = []
        for row in out[:, width:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t == tok.eos_token_id), len(row))
            rows.append(row[:cut])
        return rows

    return generate


def measure(args, server, model, tok, overlap: bool) -> tuple[float, int, float]:
    from aloe_bench.datasets.personas import load_persona_set

    personas = [p.to_dict() for p in load_persona_set("demo").personas]
    loop = LoopThread()
    protocol = get_protocol("aloe-v1")
    prompt = load_prompt("simulator.yaml")
    api = {"base_url": server.base_url, "concurrency": "64"}

    async def open_roles(stack):
        run_engine = await stack.enter_async_context(open_backends(""))  # no cache: every call is made
        return (
            Role("simulator", run_engine.pool.get("openai/fake-model", api), None),
            Role("judge", run_engine.pool.get("openai/fake-model", dict(api)), None),
        )

    import contextlib

    stack = contextlib.AsyncExitStack()
    simulator, judge = loop.run(open_roles(stack))
    roles = RolloutRoles(simulator, judge, prompt, GenerationSettings(64), protocol, GenerationSettings(16))
    generate = policy(model, tok, args.reply_tokens)
    spent = [0.0]

    def timed(id_lists):  # the policy's share of the wall time; the rest is waiting on the roles
        t0 = time.perf_counter()
        try:
            return generate(id_lists)
        finally:
            spent[0] += time.perf_counter() - t0

    rollout = ConversationRollout(
        roles, loop, ChatTokens(tok, "embedded"), timed,
        turns=args.turns, seed=0, overlap_judging=overlap,
    )  # fmt: skip
    convs = [
        Conversation(f"persona:{i}", personas[i % len(personas)], f"bench-{overlap}-{i}")
        for i in range(args.conversations)
    ]
    start = time.perf_counter()
    if overlap:
        rollout.run(convs)
    else:
        for conv in convs:
            rollout.run([conv])
    seconds = time.perf_counter() - start
    loop.run(stack.aclose())
    loop.close()
    failed = sum(c.error is not None or any(t.get("score") is None for t in c.turns) for c in convs)
    return seconds, failed, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per simulator/judge request")
    parser.add_argument("--reply-tokens", type=int, default=16)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = embedded_checkpoint()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    rows = []
    with FakeOpenAIServer(FakeBehaviour(latency_s=args.latency), record=False) as server:
        for name, overlap in (("rl loop (concurrent)", True), ("one call at a time", False)):
            seconds, failed, policy_s = measure(args, server, model, tok, overlap)
            rows.append((name, seconds, failed, policy_s))
    calls = args.conversations * args.turns * 2
    print(
        f"{args.conversations} conversations x {args.turns} turns; simulator and judge at {args.latency}s "
        f"per request ({calls} requests), policy = embedded SmolLM2-135M, {args.reply_tokens} tokens per "
        "reply on CPU; one run each (wall time: re-run for spread)"
    )
    print(
        f"{'way':<24}{'seconds':>10}{'conversations/min':>20}{'policy s':>10}{'other s':>10}{'unscored':>10}"
    )
    for name, seconds, failed, policy_s in rows:
        print(
            f"{name:<24}{seconds:>10.1f}{args.conversations / seconds * 60:>20.1f}{policy_s:>10.1f}"
            f"{seconds - policy_s:>10.1f}{failed:>10}"
        )
    print(
        f"speed-up: {rows[1][1] / rows[0][1]:.1f}x overall, {(rows[1][1] - rows[1][3]) / (rows[0][1] - rows[0][3]):.1f}x "
        "on the time not spent in the policy's generate() (simulator and judge waits, the loop itself)"
    )


if __name__ == "__main__":
    main()
