"""An `hf/` hub id that cannot be had fails fast with one line (issue 15), before any model loads."""

from __future__ import annotations

import time

import huggingface_hub
import pytest
from huggingface_hub import errors

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.hf import check_hub_model

MISSING = "aloe-bench-tests/no-such-model"


def test_unreachable_hub_is_one_line_naming_the_spec_and_the_fix(cli, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):  # fault injection: what huggingface_hub raises offline
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "model_info", no_network)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the suite sets it
    started = time.perf_counter()
    code, _, err = cli(
        "run", "--model", f"hf/{MISSING}", "--limit", "1", "--turns", "1", "--output", tmp_path / "o"
    )
    assert code == 2 and time.perf_counter() - started < 30
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"hf/{MISSING}" in lines[0]
    assert "hub is unreachable" in lines[0] and "hf download" in lines[0]
    assert not (tmp_path / "o" / "results.json").exists()


def test_missing_and_gated_repositories_are_named(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for error, words in ((errors.RepositoryNotFoundError, "no such model"), (errors.GatedRepoError, "gated")):

        def raise_it(*args, _error=error, **kwargs):
            raise _error.__new__(_error)

        monkeypatch.setattr(huggingface_hub, "model_info", raise_it)
        with pytest.raises(UserInputError, match=words):
            check_hub_model(MISSING, None)


def test_offline_mode_needs_no_probe(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub, "model_info", lambda *a, **k: pytest.fail("probed the hub offline"))
    with pytest.raises(UserInputError, match="HF_HUB_OFFLINE"):
        check_hub_model(MISSING, None)


def test_this_machine_without_hub_access_fails_fast(cli, tmp_path, monkeypatch):
    """The real thing, no fakes: here the hub is unreachable (CI: it answers 'no such model')."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    code, _, err = cli(
        "run", "--model", f"hf/{MISSING}", "--limit", "1", "--turns", "1", "--output", tmp_path / "o"
    )
    assert code == 2 and time.perf_counter() - started < 30
    assert err.count("aloe-bench: error:") == 1 and f"hf/{MISSING}" in err
