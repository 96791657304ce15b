"""`--model lmeval/<name>`: lm-eval models as the model under test in `aloe-bench run`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.log.results import load_run
from aloe_bench.models.backends import BackendPool, GenerationSettings
from aloe_bench.models.backends.lmeval_backend import LMEvalBackend, lm_gen_kwargs, refuse_data_parallel

pytest.importorskip("lm_eval")


def _turns(run_dir):
    return [[(t.user, t.assistant) for t in c.turns] for c in load_run(run_dir).conversations]


@pytest.mark.slow
def test_lmeval_hf_gives_the_same_greedy_transcripts_as_hf(
    cli, tiny_run, tiny_hf_run, embedded_checkpoint, tmp_path
):
    hf_run, cache = tiny_hf_run
    out = tmp_path / "lmeval_run"
    code, _, err = cli(
        "run", "--model", "lmeval/hf", "--model-args", f"pretrained={embedded_checkpoint}",
        *tiny_run, "--cache", cache, "--output", out,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    # The model under test really ran through lm-eval (its calls are never shared with hf/PATH)...
    assert results["usage"]["model"]["calls"] == 4
    backend = results["config"]["model"]["backend"]
    assert backend["spec"] == "lmeval/hf" and backend["args"] == {"pretrained": str(embedded_checkpoint)}
    assert backend["checkpoint"]  # the local checkpoint is fingerprinted
    # ...and said exactly what hf/PATH said, turn by turn.
    lm_turns, hf_turns = _turns(out), _turns(hf_run)
    assert len(lm_turns) == 2 and all(len(c) == 2 for c in lm_turns)
    assert all(assistant for conv in lm_turns for _, assistant in conv)
    assert lm_turns == hf_turns


def test_unknown_lmeval_model_is_one_clear_error(cli, tiny_run, tmp_path):
    code, _, err = cli("run", "--model", "lmeval/no-such-model", *tiny_run, "--output", tmp_path / "x")
    assert code == 2
    assert "unknown lm-eval model 'no-such-model'" in err and "hf" in err
    assert "Traceback" not in err


def test_data_parallel_vllm_is_refused_before_loading():
    backend = LMEvalBackend("vllm", {"pretrained": "some/model", "data_parallel_size": "2"})
    with pytest.raises(UserInputError, match="data_parallel_size=1"):
        backend.check()
    with pytest.raises(UserInputError, match="data_parallel_size=1"):
        refuse_data_parallel(SimpleNamespace(data_parallel_size=4))
    refuse_data_parallel(SimpleNamespace(data_parallel_size=1))


def test_generation_settings_become_generate_until_kwargs():
    assert lm_gen_kwargs(GenerationSettings(max_new_tokens=7)) == {"until": [], "max_gen_toks": 7}
    assert lm_gen_kwargs(GenerationSettings(max_new_tokens=7, temperature=0, top_p=0.9)) == {
        "until": [], "max_gen_toks": 7, "do_sample": False, "temperature": 0.0,
    }  # fmt: skip
    assert lm_gen_kwargs(GenerationSettings(max_new_tokens=7, temperature=0.7, top_p=0.9)) == {
        "until": [], "max_gen_toks": 7, "do_sample": True, "temperature": 0.7, "top_p": 0.9,
    }  # fmt: skip


def test_identity_names_the_checkpoint_and_leaves_out_placement(embedded_checkpoint):
    a = LMEvalBackend("hf", {"pretrained": str(embedded_checkpoint), "batch_size": "4", "device": "cpu"})
    b = LMEvalBackend("hf", {"pretrained": str(embedded_checkpoint), "batch_size": "32"})
    c = LMEvalBackend("hf", {"pretrained": str(embedded_checkpoint), "dtype": "bfloat16"})
    assert a.identity() == b.identity() != c.identity()
    assert a.identity()["checkpoint"]
    secret = LMEvalBackend("local-chat-completions", {"model": "m", "api_key": "sk-secret"})
    assert "sk-secret" not in json.dumps(secret.identity())


def test_pool_builds_lmeval_backends_by_spec(embedded_checkpoint):
    backend = BackendPool().get("lmeval/hf", {"pretrained": str(embedded_checkpoint)})
    assert isinstance(backend, LMEvalBackend) and backend.spec == "lmeval/hf"


@pytest.fixture
def chat_server(embedded_checkpoint):
    """`transformers serve` with the embedded checkpoint on 127.0.0.1 (an OpenAI-compatible server)."""
    import shutil
    import socket
    import subprocess
    import time
    import urllib.request

    if shutil.which("transformers") is None:
        pytest.skip("transformers serve is not installed (pip install 'transformers[serving]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["transformers", "serve", str(embedded_checkpoint), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("transformers serve did not come up")
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_lmeval_api_chat_model_drives_a_server(
    cli, tiny_run, tiny_hf_run, embedded_checkpoint, chat_server, tmp_path
):
    """lm-eval's local-chat-completions (JSON chat prompts, no local tokenizer) against a real server."""
    pytest.importorskip("tenacity", reason="lm-eval's API models need lm-eval[api]")
    hf_run, cache = tiny_hf_run
    out = tmp_path / "api_run"
    # transformers serve rejects an empty stop list: give lm-eval the end-of-turn string to send.
    args = f"model={embedded_checkpoint},base_url={chat_server},eos_string=<|im_end|>"
    code, _, err = cli(
        "run", "--model", "lmeval/local-chat-completions", "--model-args", args,
        *tiny_run, "--cache", cache, "--output", out,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["usage"]["model"]["calls"] == 4
    assert _turns(out) == _turns(hf_run)  # the server runs the same checkpoint, greedily
