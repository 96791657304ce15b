"""--dry-run prints planned calls, tokens and cost per role with no network call; --price
overrides the table; a bad --price is one clear line."""

import socket

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.models.cost import list_price, parse_price_flags


def test_dry_run_on_the_papers_setup_estimates_cost_and_connects_nowhere(cli, aloe_data_dir, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # every API role would go here
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = cli(
        "run", "--task", "aloe_paper", "--model", "openai/gpt-4o-2024-08-06", "--data-dir", aloe_data_dir,
        "--simulator-base-url", url, "--judge-base-url", url, "--model-base-url", url, "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    listener.close()
    assert "100 conversations x 10 turns" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert lines["simulator"][2] == "1000" and lines["judge"][2] == "1000" and lines["model"][2] == "1000"
    assert float(lines["judge"][-1]) > 0 and float(lines["model"][-1]) > float(lines["judge"][-1])
    assert "upper bound" in out and "prices.yaml v1" in out


def test_price_overrides_and_batch_half_price(cli, aloe_data_dir):
    args = ["run", "--task", "aloe_paper", "--model", "embedded", "--data-dir", aloe_data_dir, "--limit", "2"]
    code, plain, _ = cli(*args, "--dry-run", "--price", "judge=1000,1000")
    assert code == 0
    code, batch, _ = cli(*args, "--dry-run", "--price", "judge=1000,1000", "--judge-batch")
    judge = [line.split() for line in plain.splitlines() if line.startswith("judge")][0]
    judge_b = [line.split() for line in batch.splitlines() if line.startswith("judge")][0]
    assert float(judge_b[-2]) == pytest.approx(float(judge[-1]) / 2, rel=1e-3) and judge_b[-1] == "(batch)"


def test_price_table_and_bad_flags(cli):
    assert list_price("openai/gpt-4o-mini-2024-07-18").input == 0.15
    assert list_price("openai/some-new-model") is None and list_price("embedded") is None
    assert parse_price_flags(["judge=0.15,0.6"])["judge"].output == 0.6
    with pytest.raises(UserInputError):
        parse_price_flags(["judge=cheap"])
    code, _, err = cli("run", "--model", "embedded", "--price", "critic=1,2", "--dry-run")
    assert code == 2 and err.count("\n") == 1 and "ROLE=IN,OUT" in err
