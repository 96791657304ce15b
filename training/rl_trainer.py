"""GRPO wired to the conversation rollout: TRL's `GRPOTrainer` with a `rollout_func` that plays whole
conversations and `reward_funcs` that read the judge's scores of them (see rl.py for the options)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import GenerationSettings, parse_args
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import get_protocol
from aloe_train.rl_rollout import (
    ChatTokens,
    Conversation,
    ConversationRollout,
    Generated,
    LoopThread,
    Policy,
    RolloutRoles,
)

PERSONA_PREFIX = "persona:"


def aloe_reward(prompts: list, completions: list, turn_scores: list | None = None, **_: Any) -> list:
    """The mean of the judge's per-turn ALOE scores (1-5); None when no turn could be scored."""
    out: list[float | None] = []
    for scores in turn_scores or [[] for _ in prompts]:
        valid = [float(s) for s in scores if s is not None]
        out.append(sum(valid) / len(valid) if valid else None)
    return out


def profile_reward(prompts: list, completions: list, profile_score: list | None = None, **_: Any) -> list:
    """The judge's 1-5 rating of the profile the policy stated at the end; None when unscored."""
    return [None if s is None else float(s) for s in (profile_score or [None] * len(prompts))]


class PolicyGenerator:
    """Sampling from the trainer's current weights with GRPOConfig's generation settings."""

    def __init__(self, trainer: Any, tok: Any):
        self.trainer = trainer
        self.tok = tok

    def __call__(self, id_lists: list[list[int]]) -> list[list[int]]:
        import torch
        from trl.models.utils import unwrap_model_for_generation

        args = self.trainer.args
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        width = max(len(ids) for ids in id_lists)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in id_lists])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in id_lists])
        device = self.trainer.accelerator.device
        settings = {
            "do_sample": True,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "top_k": args.top_k,
            "min_p": args.min_p,
            "repetition_penalty": args.repetition_penalty,
            **(args.generation_kwargs or {}),
        }
        with (
            unwrap_model_for_generation(self.trainer.model_wrapped, self.trainer.accelerator) as model,
            torch.no_grad(),
        ):
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=args.max_completion_length,
                pad_token_id=pad,
                **{k: v for k, v in settings.items() if v is not None},
            )
        eos = self.tok.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        out = []
        for row in generated[:, width:].tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in eos_ids), len(row))
            out.append(row[:cut])
        return out


class VLLMPolicyGenerator:
    """Policy turns through TRL's vLLM engine (`--use_vllm`, `--vllm_mode colocate|server`).

    TRL builds the engine (`trainer.vllm_generation`, a `trl.generation.vllm_generation.VLLMGeneration`)
    with GRPOConfig's sampling settings and `max_completion_length` (here: per reply), and pushes the
    trainer's weights into it before it calls `rollout_func`, once per step; each turn of the rollout
    is then one `generate()` call on the conversations' ids so far, with one sample each (the group's
    conversations already differ after their first reply). vLLM reports each sampled token's
    log-probability, which goes back to TRL as the rollout's `logprobs` for its importance-sampling
    correction (`vllm_importance_sampling_correction`, on by default): vLLM's sampler and the
    trainer's forward pass differ slightly, and TRL reweights the loss by their ratio.

    `collective`: in server mode (and colocate with tensor parallelism) `generate()` gathers the
    prompts of every process, so every process must call it every turn, even with nothing to ask.
    """

    collective = True

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def __call__(self, id_lists: list[list[int]]) -> Generated:
        if not id_lists and self.trainer.accelerator.num_processes == 1:
            return Generated([], [])  # nobody else waits on this call
        _, completion_ids, logprobs, _ = self.trainer.vllm_generation.generate(
            prompts=id_lists, images=None, num_generations=1
        )
        # per token, vLLM's top-k log-probabilities with the sampled token first (TRL asks for k=0:
        # the sampled one only); TRL keeps lp[0] the same way in _generate_single_turn
        sampled = None if logprobs is None else [[lp[0] for lp in row] for row in logprobs]
        return Generated([list(ids) for ids in completion_ids], sampled)


def policy_for(trainer: Any, tok: Any) -> Policy:
    """vLLM when the run turned it on (`--use_vllm`), else the trainer's own weights."""
    return (
        VLLMPolicyGenerator(trainer) if getattr(trainer, "use_vllm", False) else PolicyGenerator(trainer, tok)
    )


def _load(stage: Any) -> tuple[str, Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aloe_train.train import resolve_model

    spec = stage.model.model_name_or_path
    source = resolve_model(spec)
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except OSError as exc:
        raise UserInputError(f"cannot load the tokenizer of {spec} ({str(exc).splitlines()[0]})") from None
    if not tok.chat_template:
        raise UserInputError(f"{spec} has no chat template; train an instruction-tuned checkpoint")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if stage.train.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return source, tok, model


@contextlib.contextmanager
def bound_roles(stage: Any, loop: LoopThread):
    """The simulator and judge roles over the engine's pool and call cache, on the roles' loop."""
    from aloe_bench.engine.session import open_backends as engine

    script = stage.script
    stack = contextlib.AsyncExitStack()

    async def open_roles() -> tuple[Role, Role]:
        run_engine = await stack.enter_async_context(engine(script.cache))
        simulator_prompt = load_prompt("simulator.yaml")
        protocol = get_protocol(script.judge_protocol)
        sim = run_engine.pool.get(script.simulator, parse_args(script.simulator_args, "--simulator_args"))
        judge = run_engine.pool.get(script.judge, parse_args(script.judge_args, "--judge_args"))
        return (
            Role("simulator", sim, run_engine.cache, prompt_version=simulator_prompt.tag),
            Role("judge", judge, run_engine.cache, prompt_version=protocol.prompt.tag),
        )

    try:
        yield loop.run(open_roles())
    finally:
        loop.run(stack.aclose())


def build_and_train(stage: Any, personas: list[dict[str, str]], out: Path, resume: Any = None):
    from datasets import Dataset
    from trl import GRPOTrainer, get_peft_config

    script, args = stage.script, stage.train
    source, tok, model = _load(stage)
    protocol = get_protocol(script.judge_protocol)
    simulator_prompt = load_prompt("simulator.yaml")
    # One row per persona, named in the prompt: TRL hands rollout_func the prompts only.
    rows = [{"prompt": f"{PERSONA_PREFIX}{i}"} for i in range(len(personas))]
    loop = LoopThread()
    rollouts_file = out / "rollouts.jsonl"
    try:
        with bound_roles(stage, loop) as (simulator, judge):
            roles = RolloutRoles(
                simulator=simulator,
                judge=judge,
                simulator_prompt=simulator_prompt,
                simulator_settings=GenerationSettings(
                    max_new_tokens=script.simulator_max_new_tokens, temperature=script.simulator_temperature
                ),
                judge_protocol=protocol,
                judge_settings=GenerationSettings(
                    max_new_tokens=script.judge_max_new_tokens or protocol.default_settings().max_new_tokens
                ),
            )
            holder: dict[str, Any] = {}

            def rollout_func(prompts: list[str], trainer: Any) -> dict[str, Any]:
                rollout = holder.get("rollout")
                if rollout is None:
                    rollout = holder["rollout"] = ConversationRollout(
                        roles,
                        loop,
                        ChatTokens(tok, stage.model.model_name_or_path),
                        policy_for(trainer, tok),
                        turns=script.turns,
                        seed=args.seed,
                        profile=_profile_step(script),
                    )
                step = trainer.state.global_step
                convs = []
                for prompt in prompts:
                    index = int(str(prompt)[len(PERSONA_PREFIX) :])
                    convs.append(Conversation(prompt, personas[index], f"p{index}@{step}"))
                rollout.run(convs)
                if trainer.accelerator.is_main_process:
                    out.mkdir(parents=True, exist_ok=True)
                    with rollouts_file.open("a", encoding="utf-8") as f:  # one line per conversation
                        for conv in convs:
                            f.write(json.dumps({"step": step, **conv.record()}, ensure_ascii=False) + "\n")
                return {
                    "prompt_ids": [c.prompt_ids for c in convs],
                    "completion_ids": [c.completion_ids for c in convs],
                    # the sampler's per-token log-probabilities (vLLM), for TRL's importance sampling;
                    # None on the torch path, whose samples come from the weights TRL trains
                    "logprobs": [c.logprobs for c in convs]
                    if convs and all(c.logprobs is not None for c in convs)
                    else None,
                    "env_mask": [c.env_mask for c in convs],
                    "turn_scores": [c.turn_scores() for c in convs],
                    "profile_score": [c.profile_score for c in convs],
                }

            reward_funcs: list[Any] = [aloe_reward] + ([profile_reward] if script.profile_reward else [])
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=reward_funcs,
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=tok,
                peft_config=get_peft_config(stage.model),
                rollout_func=rollout_func,
            )
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            usage = {"simulator": simulator.usage.to_dict(), "judge": judge.usage.to_dict()}
    finally:
        loop.close()
    return trainer, tok, result, usage


def _profile_step(script: Any):
    if not script.profile_reward:
        return None
    from aloe_train.generation import train_prompt

    return train_prompt("rl_profile.yaml")
