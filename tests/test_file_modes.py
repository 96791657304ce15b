"""Result files honour the umask (issue 15): atomic writes go through mkstemp, which makes 0600."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from aloe_bench.log.journal import Journal
from aloe_bench.log.results import write_json_atomic, write_text_atomic
from aloe_bench.models.cache import CallCache
from aloe_bench.reports.leaderboard import publish
from aloe_bench.testing.runs import write_synthetic_run


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_result_file_gets_the_mode_the_umask_allows(tmp_path, umask):
    expected = 0o666 & ~umask  # 0644 under 022, 0640 under 027
    write_json_atomic(tmp_path / "r.json", {"a": 1})
    write_text_atomic(tmp_path / "t.txt", "x")
    run = write_synthetic_run(tmp_path / "run", {"p1": [3, 4], "p2": [2, 5]})
    board = tmp_path / "board"
    shutil.copytree(run, board / "runs" / "one")
    written = publish(board, command="aloe-bench leaderboard --publish board")
    cache = CallCache(tmp_path / "cache" / "calls.sqlite")
    cache.close()
    journaled = tmp_path / "journaled"  # an ALOE run's conversations.jsonl: compacted from its journal
    journaled.mkdir()
    Journal(journaled).compact([{"id": "p1", "persona": {}, "status": "complete", "turns": []}])
    files = [
        journaled / "conversations.jsonl",
        tmp_path / "r.json",
        tmp_path / "t.txt",
        run / "results.json",
        run / "conversations.jsonl",
        *written,  # README.md, leaderboard.csv, curves.png
        tmp_path / "cache" / "calls.sqlite",
    ]
    for path in files:
        # SQLite creates its file 0644 and then applies the umask, so it can only be stricter.
        want = expected & 0o644 if path.suffix == ".sqlite" else expected
        assert mode(path) == want, f"{path.name}: {oct(mode(path))} != {oct(want)}"
