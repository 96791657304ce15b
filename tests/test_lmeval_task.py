"""The ALOE suite as lm-eval tasks: one YAML per task, read the same way by both harnesses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aloe_bench.datasets.personas import load_persona_set
from aloe_bench.engine.task_files import available_tasks, load_task_settings, tasks_dir
from aloe_bench.errors import UserInputError
from aloe_bench.integrations.lm_eval import task as hooks
from aloe_bench.integrations.lm_eval.requests import decode_request, encode_request, model_role
from aloe_bench.metrics.alignment import alignment_metrics

pytest.importorskip("lm_eval")

TASKS = ["aloe_demo", "aloe_history", "aloe_paper"]
EXPLICIT = ["aloe_explicit", "aloe_explicit_demo"]  # the persona stated in the system message


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False)


def test_suite_is_an_lmeval_include_path(task_manager):
    assert set(TASKS + EXPLICIT) <= set(task_manager.all_subtasks)
    assert "aloe" in task_manager.all_groups
    assert set(task_manager.task_index["aloe"].cfg["task"]) == set(TASKS + EXPLICIT)
    # the templates and the groups are not tasks (Multifaceted Bench: tests/test_lmeval_multifaceted.py)
    assert sorted(available_tasks()) == sorted(TASKS + EXPLICIT + ["multifaceted", "multifaceted_demo"])


def test_both_harnesses_read_the_same_settings(task_manager):
    loaded = task_manager.load(TASKS[:1])["tasks"]["aloe_demo"]
    assert loaded.config.metadata["aloe"] == load_task_settings("aloe_demo")[1]
    from lm_eval.tasks._yaml_loader import load_yaml

    for name in TASKS + EXPLICIT:  # lm-eval's YAML loader (with includes) and ours agree on every task
        path = task_manager.task_index[name].yaml_path
        assert load_yaml(path, resolve_func=False)["metadata"]["aloe"] == load_task_settings(name)[1]
    paper = load_task_settings("aloe_paper")[1]
    assert (paper["personas"], paper["turns"], paper["protocol"]) == ("aloe", 10, "aloe-v1")
    assert paper["simulator"] == paper["judge"] == "openai/gpt-4o-mini-2024-07-18"
    assert load_task_settings("aloe_history")[1]["protocol"] == "aloe-history"
    demo = load_task_settings("aloe_demo")[1]
    assert (demo["personas"], demo["turns"], demo["simulator"], demo["judge"]) == (
        "demo",
        3,
        "embedded",
        "embedded",
    )


def test_lmeval_builds_one_document_per_persona_with_the_metrics_declared(task_manager):
    task = task_manager.load(["aloe_demo"])["tasks"]["aloe_demo"]
    docs = list(task.test_docs())
    personas = load_persona_set("demo").personas
    assert [d["id"] for d in docs] == [p.id for p in personas]
    request = decode_request(task.doc_to_text(docs[0]), {"until": []})
    assert request.item == personas[0] and request.task == "aloe_demo"
    assert request.settings == load_task_settings("aloe_demo")[1]
    higher = task.higher_is_better()
    for metric in ["al_avg", "ir", "n_ir", "n_r2", *(f"al_t{k}" for k in range(1, 11))]:
        assert higher[metric] is True, metric
    assert higher["failed"] is False
    assert task.config.generation_kwargs["until"] == []


def test_metadata_overrides_merge_into_the_task_settings():
    path = tasks_dir() / "aloe" / "aloe_demo.yaml"
    # lm-eval hands over its metadata: the YAML's, the model args, and --metadata (which replaced `aloe`)
    docs = hooks.load_docs(config_source=str(path), version=1, pretrained="x", aloe={"turns": 2})["test"]
    settings = decode_request(docs[0]["aloe_request"]).settings
    assert settings == {**load_task_settings("aloe_demo")[1], "turns": 2}


def test_requests_replayed_with_stale_settings_are_refused():
    path = tasks_dir() / "aloe" / "aloe_demo.yaml"
    old = hooks.load_docs(config_source=str(path), aloe={"turns": 2})["test"][0]["aloe_request"]
    hooks.load_docs(config_source=str(path), aloe={"turns": 1})  # this run asks for 1 turn
    with pytest.raises(UserInputError, match="cache_requests refresh"):
        decode_request(old).run_config("lmeval/hf")
    hooks.load_docs(config_source=str(path))  # leave the task as its YAML states it


def test_a_misspelt_setting_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: aloe_bad\nmetadata:\n  aloe:\n    personas: demo\n    turn: 3\n")
    with pytest.raises(UserInputError, match="unknown ALOE setting.*turn"):
        hooks.load_docs(config_source=str(bad))


def test_a_new_task_is_one_yaml_including_the_template(tmp_path):
    (tmp_path / "aloe_explicit.yaml").write_text(
        f"task: aloe_explicit\ninclude: {tasks_dir() / 'aloe' / '_aloe_template.yaml'}\n"
        "metadata:\n  version: 1\n  aloe:\n    personas: demo\n    turns: 2\n    persona_disclosure: system\n"
    )
    from lm_eval.tasks import TaskManager

    task = TaskManager(include_path=str(tmp_path), include_defaults=False).load(["aloe_explicit"])["tasks"][
        "aloe_explicit"
    ]
    request = decode_request(task.doc_to_text(next(iter(task.test_docs()))))
    assert request.settings["persona_disclosure"] == "system"
    assert request.run_config("lmeval/hf").persona_disclosure == "system"
    assert "al_avg" in task.higher_is_better()


def _transcript(scores, status="complete", turns=3):
    return json.dumps(
        {
            "format": "aloe-transcript/1",
            "status": status,
            "turns": [{"user": "u", "assistant": "a", "score": s} for s in scores],
            "run": {"turns": turns},
        }
    )


def test_aggregations_are_the_engines_metrics():
    rows = [[5, 3, None], [1, 4, 4], [2, 2, 5], [4, None, None]]  # the last one failed at turn 2
    per_sample = [hooks.process_results({}, [_transcript(r)]) for r in rows[:3]]
    per_sample.append(hooks.process_results({}, [_transcript(rows[3][:1], status="failed")]))
    expected = alignment_metrics(np.array(rows[:3], dtype=float), n_bootstrap=0)
    items = {m: [s[m] for s in per_sample if m in s] for m in per_sample[1]}
    assert hooks.aggregate_avg(items["al_avg"]) == pytest.approx(expected["avg"])
    assert hooks.aggregate_ir(items["ir"]) == pytest.approx(expected["ir"])
    assert hooks.aggregate_n_ir(items["n_ir"]) == pytest.approx(expected["n_ir"])
    assert hooks.aggregate_n_r2(items["n_r2"]) == pytest.approx(expected["n_r2"])
    assert hooks.aggregate_count(items["failed"]) == 1
    for k in range(3):  # lm-eval's mean over the samples that carry al_tk == AL(k)
        values = [s[f"al_t{k + 1}"] for s in per_sample if f"al_t{k + 1}" in s]
        assert np.mean(values) == pytest.approx(expected["al"][k])


def test_a_response_that_is_not_a_transcript_fails_loudly():
    with pytest.raises(RuntimeError, match="interception was not installed"):
        hooks.process_results({}, ["Hello! How can I help you today?"])


def test_requests_are_found_inside_chat_templates_and_api_chats():
    from lm_eval.models.api_models import JsonChatStr

    persona = load_persona_set("demo").personas[1]
    raw = encode_request("aloe_demo", persona, {"turns": 2})
    wrapped = f"<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\n{raw}<|im_end|>\n"
    api = JsonChatStr(json.dumps([{"role": "user", "content": raw}]))
    for context in (raw, wrapped, api):
        request = decode_request(context, {"until": []})
        assert request.item == persona and request.settings == {"turns": 2}
    assert decode_request("What is 2+2?") is None


def test_a_request_built_before_items_shared_one_key_still_decodes():
    # Requests lm-eval cached (--cache_requests) from an older aloe-bench carried the persona under
    # `persona`; the task reads that payload back as it reads `item`.
    persona = load_persona_set("demo").personas[0]
    raw = encode_request("aloe_demo", persona, {"turns": 2})
    payload = json.loads(raw[raw.index("{") : raw.rindex("}") + 1])
    assert payload["item"] == {"id": persona.id, **persona.to_dict()}
    older = {"task": payload["task"], "settings": payload["settings"], "persona": payload["item"]}
    request = decode_request(f"<<ALOE-REQUEST>>{json.dumps(older)}<</ALOE-REQUEST>>")
    assert request is not None and request.item == persona and request.kind == "aloe"


def test_gen_kwargs_override_the_model_under_test_only_where_given():
    settings = {"max_new_tokens": 128}
    assert model_role("lmeval/hf", settings, {"until": []}).max_new_tokens == 128
    role = model_role("lmeval/hf", settings, {"until": [], "max_gen_toks": 16, "do_sample": True})
    assert (role.max_new_tokens, role.temperature) == (16, 1.0)
    assert model_role("lmeval/hf", settings, {"temperature": 0.5, "do_sample": False}).temperature == 0.0
    with pytest.raises(UserInputError, match="top_k"):
        model_role("lmeval/hf", settings, {"top_k": 5})
    with pytest.raises(UserInputError, match="until"):
        model_role("lmeval/hf", settings, {"until": ["\n"]})


def test_interception_keeps_lmeval_builtin_models():
    """Registering a model before lm_eval.models is imported hides the built-ins; ALOE registers none."""
    from aloe_bench.integrations.lm_eval import intercept
    from aloe_bench.models.backends.lmeval_backend import PATCH_MARK, unpatched_generate_until

    intercept.install()
    intercept.install()  # idempotent
    import lm_eval.api.registry as registry
    from lm_eval.models.huggingface import HFLM

    assert registry.get_model("hf") is HFLM
    assert {"hf", "vllm", "local-chat-completions"} <= set(registry.model_registry.keys())
    assert getattr(HFLM.generate_until, PATCH_MARK, False)
    original = unpatched_generate_until(HFLM)
    assert not getattr(original, PATCH_MARK, False) and original.__qualname__ == "HFLM.generate_until"


def test_lm_eval_command_adds_the_suite_to_the_include_path(tmp_path):
    from aloe_bench.cli.lm_eval import with_aloe_tasks

    ours = str(tasks_dir())
    assert with_aloe_tasks(None) == ours
    assert with_aloe_tasks(str(tmp_path)) == [str(tmp_path), ours]
    assert with_aloe_tasks(ours) == ours


def test_the_interception_routes_aloe_requests_to_the_engine_and_the_rest_to_the_model(monkeypatch):
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM

    from aloe_bench.integrations.lm_eval import grouped_runs, intercept

    class EchoLM(LM):  # a model that answers with its prompt
        def loglikelihood(self, requests):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            return [f"echo: {r.args[0]}" for r in requests]

    seen = []

    def fake_engine(lm, requests):  # the routing is under test here, not the engine
        seen.append((lm, [r.item.id for r in requests]))
        return [f"transcript of {r.item.id}" for r in requests]

    monkeypatch.setattr(grouped_runs, "run_requests", fake_engine)
    assert intercept.patch_class(EchoLM) and not intercept.patch_class(EchoLM)
    personas = load_persona_set("demo").personas[:2]
    contexts = [
        "2+2=",
        encode_request("aloe_demo", personas[0], {}),
        "Q:",
        encode_request("aloe_demo", personas[1], {}),
    ]
    instances = [
        Instance("generate_until", doc={}, arguments=(c, {"until": []}), idx=0, metadata=("t", i, 1))
        for i, c in enumerate(contexts)
    ]
    lm = EchoLM()
    out = lm.generate_until(instances)
    assert out == [
        "echo: 2+2=",
        f"transcript of {personas[0].id}",
        "echo: Q:",
        f"transcript of {personas[1].id}",
    ]
    assert seen == [(lm, [personas[0].id, personas[1].id])]
    assert lm.generate_until(instances[:1]) == ["echo: 2+2="]  # nothing for ALOE: straight through
