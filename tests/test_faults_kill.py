"""Kill anywhere (issue 25): a run SIGKILLed at named points (early in turn 1, mid-run, while
judging, inside a cache commit, while results.json, conversations.jsonl, the journal and report.html
are being written) and re-run each time completes with the transcripts of an uninterrupted run;
no file is left half-written, and the re-run repeats at most the calls that were in flight or not
yet committed to the cache (the durability bound) at the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import read_run

from aloe_bench.datasets.personas import Persona, load_persona_set
from aloe_bench.log.journal import JOURNAL_FILE
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_bench.testing.kill_points import ARMED_CLI

PERSONAS, TURNS, CONCURRENCY = 10, 3, 4
# Where the run is killed. With 10 conversations x 3 turns the run makes 90 calls (30 simulator,
# 30 model, 30 judge); results.json is written at the start and at the end (the run is shorter
# than the 2 s between rewrites), conversations.jsonl when the journal is compacted at the start and
# at the end, report.html once after the run.
KILL_POINTS = [
    "call:2",  # early in turn 1
    "call:45",  # mid-run
    "judge:25",  # while judging
    "commit:1",  # inside a cache commit, rows inserted, not committed
    "journal:30",  # half a journal line on disk
    "write:results.json:2",  # the final results.json, half in its temp file
    "write:conversations.jsonl:2",  # the final compaction
    "write:report.html:1",
]


def write_personas(path: Path, n: int) -> Path:
    demo = load_persona_set("demo").personas
    rows = [
        Persona(f"{demo[i % len(demo)].profile} (Variant {i}.)", demo[i % len(demo)].personality)
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in rows))
    return path


def run_command(
    base_url: str, personas: Path, out: Path, cache: Path, model: str = "openai/fake"
) -> list[str]:
    sim = judge = "openai/fake"
    return [
        sys.executable, "-c", ARMED_CLI, "run",
        "--model", model, "--simulator", sim, "--judge", judge,
        "--model-base-url", base_url, "--simulator-base-url", base_url, "--judge-base-url", base_url,
        "--personas", str(personas), "--turns", str(TURNS), "--concurrency", str(CONCURRENCY),
        "--output", str(out), "--cache", str(cache), "--no-progress",
    ]  # fmt: skip


def run(cmd: list[str], fault: str | None = None, report: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALOE_FAULT")}
    if fault:
        env["ALOE_FAULT"] = fault
        env["ALOE_FAULT_REPORT"] = str(report)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def assert_whole_files(out: Path) -> None:
    """What a kill leaves on disk is readable: whole files, at most a torn last journal line."""
    if (out / "results.json").exists():
        json.loads((out / "results.json").read_text())
    if (out / "conversations.jsonl").exists():
        for line in (out / "conversations.jsonl").read_text().split("\n"):
            if line:
                json.loads(line)
    if (out / JOURNAL_FILE).exists():
        lines = (out / JOURNAL_FILE).read_text().split("\n")
        for line in lines[:-1]:  # every line but a torn last one (the reader skips it)
            json.loads(line)
    if (out / "report.html").exists():
        assert (out / "report.html").read_text().rstrip().endswith("</html>")


def test_sigkill_at_each_point_then_rerun_equals_uninterrupted(tmp_path):
    personas = write_personas(tmp_path / "personas.jsonl", PERSONAS)
    # 50 ms a call: the run spans several 0.5 s commit intervals, so kills meet committed calls too
    behaviour = FakeBehaviour(latency_s=0.05, judge_by_content=True)
    with FakeOpenAIServer(behaviour) as server:
        ref_out = tmp_path / "reference"
        done = run(run_command(server.base_url, personas, ref_out, tmp_path / "ref.sqlite"))
        assert done.returncode == 0, done.stderr
        reference_calls = len(server.requests)
        assert reference_calls >= PERSONAS * TURNS * 3
        ref_results, ref_convs = read_run(ref_out)
        ref_text = (ref_out / "conversations.jsonl").read_bytes()
        assert len({t["score"] for c in ref_convs for t in c["turns"]}) > 1  # scores vary: order matters

        for point in KILL_POINTS:
            out, cache, report = tmp_path / point, tmp_path / f"{point}.sqlite", tmp_path / f"{point}.json"
            cmd = run_command(server.base_url, personas, out, cache)
            before = len(server.requests)
            killed = run(cmd, fault=point, report=report)
            assert killed.returncode == -signal.SIGKILL, (
                f"{point}: not reached ({killed.returncode}): {killed.stderr}"
            )
            assert_whole_files(out)
            uncommitted = json.loads(report.read_text())["uncommitted"]

            resumed = run(cmd)
            assert resumed.returncode == 0, f"{point}: {resumed.stderr}"
            made = len(server.requests) - before
            results, convs = read_run(out)
            assert results["status"] == "complete", point
            assert (out / "conversations.jsonl").read_bytes() == ref_text, f"{point}: transcripts differ"
            assert results["metrics"] == ref_results["metrics"], point
            assert not list(out.glob(".*.tmp")), f"{point}: a temp file was left behind"
            assert not (out / JOURNAL_FILE).exists()
            # Every call needed was made; the only ones made twice were in flight or not yet
            # committed when the process died.
            repeated = made - reference_calls
            print(
                f"{point}: {made} calls for {reference_calls} ({repeated} again; {uncommitted} were uncommitted)"
            )
            assert 0 <= repeated <= uncommitted + server.max_in_flight, (
                point,
                made,
                reference_calls,
                uncommitted,
            )
            # The run's own count: what both invocations sent plus what the re-run found in the cache.
            sent = sum(u["calls"] for u in results["usage"].values())
            assert sent <= made, point
