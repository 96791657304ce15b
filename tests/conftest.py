"""Shared fixtures. Tests use the real embedded model and real servers on 127.0.0.1; fakes only
inject faults (errors, garbage, latency)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ALOE = Path(os.environ.get("ALOE_SHARED_DATA", REPO.parent / "shared" / "aloe"))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist (`pytest -n auto`, the README's test command) every worker and the processes it
# starts get one torch thread: two workers each with a thread per core would oversubscribe the
# cores, which slows OpenMP spin-waits by an order of magnitude. Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the README's command): one worker more than there are cores. A fifth of the suite's
    time is spent waiting (subprocesses starting, servers answering, files syncing), which a third
    worker fills on two cores; every worker's torch runs one thread (above), so three single-threaded
    workers do not oversubscribe the way two multi-threaded ones would. `--maxprocesses` still caps it."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config: pytest.Config) -> None:
    # xdist's own order for `--dist loadfile` is "most tests first", which put the long training
    # files (few tests each) last: one worker then finished them alone. The order below replaces it.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest test files first. Under `--dist loadfile` xdist hands files to the workers in this
    order, so the long training files start early and the short ones fill the workers' last minutes.
    The seconds are a measured suite run's (tests/file_seconds.json, summed test durations per file);
    they only order the files, so a stale or missing entry (counted as 0) costs time, not results."""
    seconds = json.loads((Path(__file__).parent / "file_seconds.json").read_text())
    items.sort(key=lambda item: -seconds.get(item.path.name, 0))  # stable: a file's own order stays


@pytest.fixture(scope="session")
def aloe_data_dir() -> Path:
    """The original ALOE files (../shared/aloe); never copied into the project."""
    if not (SHARED_ALOE / "profile_eval.jsonl").is_file():
        pytest.skip(f"original ALOE files not found at {SHARED_ALOE} (set ALOE_SHARED_DATA)")
    return SHARED_ALOE


@pytest.fixture(scope="session")
def embedded_checkpoint() -> Path:
    from aloe_bench.models.backends.embedded import embedded_checkpoint as convert

    return convert()


@pytest.fixture
def cli(capsys):
    """Run the aloe-bench CLI in-process: returns (exit code, stdout, stderr)."""
    from aloe_bench.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_cli_subprocess(*args: str, env: dict | None = None, timeout: float = 600):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "aloe_bench.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def transformers_server(embedded_checkpoint, tmp_path_factory):
    """A real OpenAI-compatible server (`transformers serve`) on 127.0.0.1 serving the embedded model."""
    import shutil
    import subprocess
    import time
    import urllib.request

    exe = shutil.which("transformers")
    assert exe, (
        "the `transformers` CLI is missing: pip install 'transformers[serving]' (part of the dev extra)"
    )
    port = free_port()
    hub_cache = tmp_path_factory.mktemp("hf_hub_cache")
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            exe,
            "serve",
            str(embedded_checkpoint),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"transformers serve did not start; see {log.name}") from None
            time.sleep(1)
    yield f"{base}/v1"
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def read_run(out: Path) -> tuple[dict, list[dict]]:
    import json

    results = json.loads((out / "results.json").read_text())
    conversations = [
        json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines() if line
    ]
    return results, conversations


# Small token limits keep the real-model tests inside CI's budget.
SMALL = (
    "--max-new-tokens",
    "40",
    "--simulator-max-new-tokens",
    "32",
    "--judge-max-new-tokens",
    "8",
    "--no-progress",
)

# A greedy ALOE run small enough for tests: 2 demo personas, 2 turns, tiny token limits.
TINY_RUN = [
    "--task", "aloe_demo", "--limit", "2", "--turns", "2", "--temperature", "0",
    "--max-new-tokens", "24", "--simulator-max-new-tokens", "32", "--judge-max-new-tokens", "8",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run() -> list[str]:
    return list(TINY_RUN)


@pytest.fixture(scope="session")
def tiny_hf_run(tmp_path_factory, embedded_checkpoint) -> tuple[Path, Path]:
    """A finished TINY_RUN of the embedded checkpoint as `hf/PATH`: (run directory, call cache).
    Shared by the tests that compare against it or judge it again."""
    from aloe_bench.cli.main import main

    root = tmp_path_factory.mktemp("tiny_hf_run")
    out, cache = root / "run", root / "calls.sqlite"
    args = ["run", "--model", f"hf/{embedded_checkpoint}", *TINY_RUN, "--cache", cache, "--output", out]
    assert main([str(a) for a in args]) == 0
    return out, cache
