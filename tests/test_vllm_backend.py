"""The `vllm/` backend on CPU, against a fake `vllm` module installed in sys.modules.

The fake mirrors the parts of vLLM 0.34 the backend touches (`AsyncEngineArgs`, `AsyncLLMEngine`
= `AsyncLLM` with `generate`/`abort`/`shutdown`/`model_config.max_model_len`, `SamplingParams`,
the prompt-length validation of `input_processor.py`, the finish reasons of
`vllm/v1/engine/__init__.py`), and decodes greedily with the real transformers model of a small
random-weight checkpoint, one request at a time as vLLM's continuous batching does, so replies can be
compared with `hf/`. Fault injection (engine finish reasons, a dead engine) is what the fake is for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.backends import BackendPool, ChatRequest, GenerationSettings
from aloe_bench.models.backends.base import PRIORITY_BACKGROUND, BatchingBackend, Completion
from aloe_bench.models.backends.decoding import vllm_sampling_kwargs
from aloe_bench.models.backends.gpu_budget import plan_gpu_budgets
from aloe_bench.models.backends.hf import HFBackend
from aloe_bench.models.backends.vllm_backend import VLLMBackend
from aloe_bench.testing.tiny_llama import build_tiny_llama

torch = pytest.importorskip("torch")


# -- the fake vllm module ---------------------------------------------------------------------------
_SAMPLING_FIELDS = {
    "n", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
    "frequency_penalty", "seed", "max_tokens", "skip_special_tokens", "stop", "stop_token_ids",
}  # fmt: skip
_ENGINE_FIELDS = {
    "model", "dtype", "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization",
    "max_model_len", "max_num_seqs", "revision", "trust_remote_code", "enforce_eager",
    "enable_prefix_caching", "scheduling_policy", "disable_log_stats",
}  # fmt: skip


class SamplingParams:
    def __init__(self, **kwargs):
        unknown = set(kwargs) - _SAMPLING_FIELDS
        if unknown:  # the real one is a msgspec struct: unknown fields are a TypeError
            raise TypeError(f"unexpected SamplingParams fields {unknown}")
        self.__dict__.update(kwargs)


class AsyncEngineArgs:
    def __init__(self, **kwargs):
        unknown = set(kwargs) - _ENGINE_FIELDS
        if unknown:
            raise TypeError(f"unexpected AsyncEngineArgs fields {unknown}")
        self.__dict__.update(kwargs)


class VLLMValidationError(ValueError):
    pass


class EngineDeadError(RuntimeError):
    pass


@dataclasses.dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclasses.dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool


class FakeAsyncLLM:
    """Scripted faults: `finish_with[n] = reason` ends the n-th submitted request with that reason;
    `dead_after` raises EngineDeadError from then on; `step_delay` slows decoding (cancellation)."""

    instances: list[FakeAsyncLLM] = []

    def __init__(self, args: AsyncEngineArgs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.args = args
        self.model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(args.model)
        limit = getattr(args, "max_model_len", None) or self.model.config.max_position_embeddings
        self.model_config = SimpleNamespace(max_model_len=limit)
        self.submitted: list[tuple[str, int, SamplingParams]] = []
        self.prompt_lengths: list[int] = []
        self.aborted: list[str] = []
        self.active = 0
        self.max_active = 0
        self.finish_with: dict[int, str] = {}
        self.dead_after: int | None = None
        self.step_delay = 0.0
        self.shut_down = False
        FakeAsyncLLM.instances.append(self)

    @classmethod
    def from_engine_args(cls, args):
        return cls(args)

    def _validate(self, ids):
        limit = self.model_config.max_model_len
        if len(ids) > limit:
            raise VLLMValidationError(
                f"The decoder prompt (length {len(ids)}) is longer than the maximum model length of {limit}."
            )
        if len(ids) == limit:
            raise VLLMValidationError(
                "The decoder prompt plus the number of requested output tokens (at least 1) is longer"
            )

    async def generate(self, prompt, params, request_id, *, priority=0):
        ids = list(prompt["prompt_token_ids"])
        index = len(self.submitted)
        self.submitted.append((request_id, priority, params))
        self.prompt_lengths.append(len(ids))
        if self.dead_after is not None and index >= self.dead_after:
            raise EngineDeadError("EngineCore encountered an issue")
        self._validate(ids)
        assert params.temperature == 0, "the fake decodes greedily only"
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        eos = set(
            self.model.generation_config.eos_token_id
            if isinstance(self.model.generation_config.eos_token_id, list)
            else [self.model.generation_config.eos_token_id]
        )
        out: list[int] = []
        try:
            history = list(ids)
            for step in range(params.max_tokens):
                await asyncio.sleep(self.step_delay)  # other requests decode between our steps
                with torch.inference_mode():
                    logits = self.model(torch.tensor([history]), logits_to_keep=1).logits[0, -1].float()
                if params.repetition_penalty != 1.0:
                    seen = torch.tensor(sorted(set(history)))
                    picked = logits[seen]
                    logits[seen] = torch.where(
                        picked < 0, picked * params.repetition_penalty, picked / params.repetition_penalty
                    )
                token = int(logits.argmax())
                out.append(token)
                history.append(token)
                scripted = self.finish_with.get(index)
                if scripted is not None:
                    yield self._output(request_id, ids, out, scripted, True)
                    return
                done = (
                    token in eos
                    or step == params.max_tokens - 1
                    or len(history) >= self.model_config.max_model_len
                )
                reason = ("stop" if token in eos else "length") if done else None
                yield self._output(request_id, ids, out, reason, done)
                if done:
                    return
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted.append(request_id)  # as AsyncLLM.generate does on cancellation
            raise
        finally:
            self.active -= 1

    def _output(self, request_id, ids, out, reason, finished):
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return RequestOutput(request_id, ids, [CompletionOutput(text, list(out), reason)], finished)

    async def abort(self, request_id, internal=False):
        if request_id not in self.aborted:
            self.aborted.append(request_id)

    def shutdown(self, timeout=None):
        self.shut_down = True


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = SamplingParams
    module.AsyncEngineArgs = AsyncEngineArgs
    module.AsyncLLMEngine = FakeAsyncLLM
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeAsyncLLM.instances = []
    return FakeAsyncLLM


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("ckpt") / "tiny")


def _req(text: str, n: int = 6, **settings) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], GenerationSettings(max_new_tokens=n, **settings))


def _backend(tiny: Path, **args) -> VLLMBackend:
    backend = VLLMBackend(str(tiny), {k: str(v) for k, v in args.items()})
    backend.check()
    return backend


# -- sampling parity --------------------------------------------------------------------------------
GENERATION_CONFIGS = {
    "greedy checkpoint listing a temperature": {"do_sample": False, "temperature": 0.7, "top_p": 0.8},
    "sampling checkpoint": {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 20},
    "penalised checkpoint": {"do_sample": False, "repetition_penalty": 1.3},
}
SETTINGS = [
    GenerationSettings(max_new_tokens=32),
    GenerationSettings(max_new_tokens=32, temperature=0.0),
    GenerationSettings(max_new_tokens=32, temperature=0.9, top_p=0.5, seed=7),
    GenerationSettings(max_new_tokens=32, top_p=0.4),
]


@pytest.mark.parametrize("config_name", list(GENERATION_CONFIGS))
def test_vllm_sends_the_decoding_hf_applies(tmp_path, config_name):
    """The sampling parameters each backend would use, compared field by field."""
    from transformers import GenerationConfig

    gc = GenerationConfig(**GENERATION_CONFIGS[config_name])
    hf = HFBackend(str(tmp_path))
    hf.model = SimpleNamespace(generation_config=gc)
    for settings in SETTINGS:
        request = ChatRequest([{"role": "user", "content": "hi"}], settings)
        row = hf._row_sampling(request)
        sent = vllm_sampling_kwargs(request, gc)
        assert (sent["temperature"], sent["top_p"], sent["top_k"], sent["seed"]) == (
            row.temperature, row.top_p, row.top_k, row.seed,
        ), (config_name, settings)  # fmt: skip
        assert sent["repetition_penalty"] == (gc.repetition_penalty or 1.0)  # hf/ passes it to decoding
        assert sent["max_tokens"] == settings.max_new_tokens
    # vLLM's own default (temperature 1.0 whenever the checkpoint lists none) is never what is sent
    unset = vllm_sampling_kwargs(ChatRequest([{"role": "user", "content": "hi"}]), gc)
    assert unset["temperature"] == (0.6 if gc.do_sample else 0.0)


def test_every_sampling_field_is_set_explicitly(tiny, fake_vllm):
    backend = _backend(tiny)
    asyncio.run(backend.generate([_req("hello", 2)]))
    (_, _, params) = fake_vllm.instances[0].submitted[0]
    assert set(vars(params)) >= {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repetition_penalty",
        "seed",
        "max_tokens",
    }


def test_identity_records_batch_invariance_and_not_memory(tiny, fake_vllm, monkeypatch):
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    plain = _backend(tiny, gpu_memory=0.5, max_num_seqs=64).identity()
    invariant = _backend(tiny, batch_invariant=1).identity()
    assert plain["batch_invariant"] is False and invariant["batch_invariant"] is True
    assert plain["args"] == {} and plain["checkpoint"]


# -- the same workload through hf/ and vllm/: identical greedy transcripts ---------------------------
def _run_workload(spec: str, tiny: Path, workdir: Path, personas: list, *, args=None, turns=2):
    from aloe_bench.models.role_config import RoleConfig
    from aloe_bench.tasks.aloe.config import RunConfig
    from aloe_bench.tasks.aloe.run import run_benchmark

    path = workdir / "personas.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in personas))
    role = {"spec": f"{spec}/{tiny}", "args": dict(args or {})}
    config = RunConfig(
        model=RoleConfig(**role, max_new_tokens=6, temperature=0.0),
        simulator=RoleConfig(**role, max_new_tokens=6, temperature=0.0),
        judge=RoleConfig(**role, max_new_tokens=3, temperature=0.0),
        personas=str(path), turns=turns, output=str(workdir / "run"), cache=str(workdir / "calls.sqlite"),
        n_bootstrap=0, judge_reasks=0, simulator_retries=0,
    )  # fmt: skip
    _, run = run_benchmark(config, progress=False)
    rows = [json.loads(line) for line in (workdir / "run" / "conversations.jsonl").read_text().splitlines()]
    return run, rows


def _personas(n: int) -> list[dict]:
    from aloe_bench.datasets.personas import load_persona_set

    demo = load_persona_set("demo").personas
    return [
        {"profile": f"{demo[i % 12].profile} (Variant {i}.)", "personality": demo[i % 12].personality}
        for i in range(n)
    ]


def _transcript(rows):
    return [[(t.get("user"), t.get("assistant")) for t in r.get("turns", [])] for r in rows]


def test_same_workload_gives_identical_greedy_transcripts_through_hf_and_vllm(tiny, fake_vllm, tmp_path):
    personas = _personas(3)
    (tmp_path / "hf").mkdir()
    (tmp_path / "vllm").mkdir()
    _, hf_rows = _run_workload("hf", tiny, tmp_path / "hf", personas, args={"device": "cpu"})
    _, vllm_rows = _run_workload("vllm", tiny, tmp_path / "vllm", personas)
    assert [r["status"] for r in hf_rows] == [r["status"] for r in vllm_rows]
    assert _transcript(hf_rows) == _transcript(vllm_rows)
    assert any(t for conv in _transcript(vllm_rows) for t in conv), "nothing was generated"
    engine = fake_vllm.instances[0]
    assert engine.max_active > 1, "requests were not in flight together (no continuous batching)"
    assert {p for _, p, _ in engine.submitted} == {
        0,
        PRIORITY_BACKGROUND,
    }  # turns critical, judging background
    assert engine.shut_down  # the run closed its pool


# -- one over-long prompt fails its own conversation only -------------------------------------------
def test_ten_conversations_one_prompt_too_long_exactly_that_one_fails(tiny, fake_vllm, tmp_path):
    personas = _personas(10)
    personas[4]["profile"] = "I collect rare maps of mountain passes. " * 200  # thousands of tokens
    run, rows = _run_workload("vllm", tiny, tmp_path, personas, args={"max_model_len": "1024"}, turns=1)
    by_status = {r["status"] for r in rows}
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 10 and by_status == {"complete", "failed"}, by_status
    assert len(failed) == 1 and failed[0]["id"] == rows[4]["id"]
    assert "does not fit vLLM's max_model_len of 1024" in failed[0]["error"]
    assert "raise max_model_len" in failed[0]["error"]
    assert sum(r["status"] == "complete" for r in rows) == 9
    engine = fake_vllm.instances[0]
    assert engine.prompt_lengths and max(engine.prompt_lengths) < 1024  # refused before submission


# -- finish reasons, failures not cached, dead engine, odd errors -----------------------------------
@pytest.mark.parametrize("reason", ["abort", "error", "repetition"])
def test_engine_finish_reasons_other_than_stop_and_length_are_failures_never_cached(
    tiny, fake_vllm, tmp_path, reason
):
    from aloe_bench.models.cache import CallCache
    from aloe_bench.models.roles import Role

    backend = _backend(tiny)

    async def go():
        await backend.ensure_started()
        backend.engine.finish_with[0] = reason
        role = Role("model", backend, CallCache(tmp_path / "c.sqlite"))
        first = await role.generate_one(_req("tell me about maps"))
        second = await role.generate_one(_req("tell me about maps"))  # asked again: not from the cache
        return role, first, second

    role, first, second = asyncio.run(go())
    assert not first.ok and first.finish_reason == "error" and repr(reason) in first.error
    assert second.ok and second.finish_reason in ("stop", "length")
    assert role.usage.cached == 0 and role.usage.failed == 1 and role.usage.calls == 2


def test_a_dead_engine_ends_the_run_but_a_refused_request_fails_alone(tiny, fake_vllm):
    backend = _backend(tiny)

    async def go():
        await backend.ensure_started()
        engine = backend.engine

        async def refuse(*a, **k):
            raise ValueError("")  # an empty message must not crash the error path
            yield  # pragma: no cover - makes this an async generator

        real = engine.generate
        engine.generate = refuse
        refused = await backend.generate([_req("x")])
        engine.generate = real
        engine.dead_after = 0
        with pytest.raises(BackendFatalError, match="died"):
            await backend.generate([_req("y")])
        return refused

    (refused,) = asyncio.run(go())
    assert not refused.ok and refused.error.endswith("ValueError: ValueError")


# -- cancellation and shutdown ----------------------------------------------------------------------
def test_cancelling_a_request_aborts_it_in_the_engine_and_close_shuts_it_down(tiny, fake_vllm):
    backend = _backend(tiny)

    async def go():
        await backend.ensure_started()
        backend.engine.step_delay = 0.05
        task = asyncio.create_task(backend.generate([_req("a long answer please", 200)]))
        while not backend.engine.submitted:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        engine = backend.engine
        await backend.aclose()
        return engine

    engine = asyncio.run(go())
    assert engine.aborted == [engine.submitted[0][0]]
    assert engine.active == 0 and engine.shut_down


# -- arguments --------------------------------------------------------------------------------------
def test_unknown_model_argument_is_refused_with_the_known_ones(tiny, fake_vllm):
    with pytest.raises(
        UserInputError, match=r"unknown model argument\(s\) gpu_mem_util; known: .*gpu_memory"
    ):
        VLLMBackend(str(tiny), {"gpu_mem_util": "0.5"})


def test_batch_size_keeps_working_as_the_engine_s_max_num_seqs(tiny, fake_vllm):
    assert _backend(tiny, batch_size=64).engine_kwargs()["max_num_seqs"] == 64
    assert _backend(tiny, batch_size=64, max_num_seqs=8).engine_kwargs()["max_num_seqs"] == 8


def test_home_relative_path_reaches_the_engine_expanded(tiny, fake_vllm, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny.parent))
    backend = _backend(Path("~") / tiny.name)
    asyncio.run(backend.generate([_req("hi", 1)]))
    assert fake_vllm.instances[0].args.model == str(tiny)
    assert fake_vllm.instances[0].args.scheduling_policy == "priority"


def test_missing_vllm_is_one_clear_line(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(UserInputError, match=r'pip install "aloe-bench\[vllm\]"'):
        VLLMBackend(str(tiny)).check()


# -- one GPU, several roles -------------------------------------------------------------------------
def test_roles_sharing_a_gpu_get_explicit_or_default_shares(tiny, fake_vllm):
    model = _backend(tiny)
    judge = _backend(tiny, max_model_len=512)  # another engine on the same device
    embedded_like = HFBackend(str(tiny), {"device": "cuda"})
    shares = plan_gpu_budgets([model, judge, embedded_like])
    assert shares[embedded_like.spec] == 0.10
    assert model.gpu_share == judge.gpu_share == pytest.approx(0.41)
    assert model.engine_kwargs()["gpu_memory_utilization"] == pytest.approx(0.41)
    pinned = _backend(tiny, gpu_memory=0.6)
    plan_gpu_budgets([pinned, judge])
    assert pinned.engine_kwargs()["gpu_memory_utilization"] == 0.6
    assert judge.gpu_share == pytest.approx(0.32)


def test_budgets_over_the_device_are_refused_before_loading(tiny, fake_vllm):
    with pytest.raises(UserInputError, match=r"GPU memory budgets exceed the device .*gpu_memory=0.6"):
        plan_gpu_budgets([_backend(tiny, gpu_memory=0.7), _backend(tiny, gpu_memory_utilization=0.5)])
    assert not fake_vllm.instances  # nothing was started


def test_pool_and_cpu_only_roles_need_no_budget(tiny):
    assert plan_gpu_budgets(BackendPool()._backends.values()) == {}
    assert plan_gpu_budgets([HFBackend(str(tiny), {"device": "cpu"})]) == {}


# -- base.py: in-process batches isolate a failing row ---------------------------------------------
class _Picky(BatchingBackend):
    provider = "picky"

    def _load(self):
        pass

    def _reject(self, request):
        return "too long" if request.messages[0]["content"] == "long" else None

    def _generate_batch(self, requests):
        if any(r.messages[0]["content"] == "boom" for r in requests):
            raise RuntimeError("bad row")
        return [Completion(text=r.messages[0]["content"].upper()) for r in requests]


def test_batching_backend_fails_only_the_bad_rows():
    backend = _Picky("p")
    texts = ["a", "long", "b", "boom", "c"]
    out = asyncio.run(backend.generate([_req(t) for t in texts]))
    assert [o.text for o in out] == ["A", None, "B", None, "C"]
    assert out[1].error == "too long" and out[3].error == "RuntimeError: bad row"


def test_cli_refuses_budgets_over_the_device_in_one_line_before_loading(cli, tiny, fake_vllm, tmp_path):
    model, judge = f"vllm/{tiny}", f"vllm/{tiny}"
    code, _, err = cli(
        "run", "--model", model, "--model-args", "gpu_memory=0.7", "--simulator", "control/generic",
        "--judge", judge, "--judge-args", "gpu_memory=0.5", "--personas", "demo", "--limit", "1",
        "--turns", "1", "--no-progress", "--output", tmp_path / "run", "--cache", tmp_path / "c.sqlite",
    )  # fmt: skip
    assert code != 0
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(
        "aloe-bench: error: GPU memory budgets exceed the device"
    ), err
    assert not fake_vllm.instances  # refused before any engine started
