"""A third benchmark is one module + one YAML: ALOE's rollout, two turns, scored by a rule ("does
the reply ask the user a question?") instead of the judge, run end to end through the same engine."""

from dataclasses import replace

import pytest
from conftest import read_run

from aloe_bench.engine.task_api import register_task
from aloe_bench.log.results import load_run, score_matrix
from aloe_bench.metrics.alignment import alignment_metrics
from aloe_bench.tasks import aloe
from aloe_bench.tasks.aloe.run import prepare_run


class AsksQuestion:
    """5 when the reply asks the user something, else 1 (the ALOE scale); no model call."""

    def __init__(self, hooks):
        self.judged = hooks.judged

    def submit(self, conv, index):
        turn = conv.turns[index]
        turn.score, turn.judge_raw, turn.judged = 5 if "?" in (turn.assistant or "") else 1, "rule: ?", True
        self.judged(conv, index)

    async def drain(self): ...

    async def cancel(self): ...


def question_metrics(recorder, with_ci):  # the scorer's metrics: the ALOE curve + the rate itself
    scores = score_matrix(recorder.conversations, recorder.turns)
    curve = alignment_metrics(scores, seed=recorder.seed, n_bootstrap=recorder.n_bootstrap if with_ci else 0)
    return {**curve, "question_rate": float((scores == 5).mean()) if scores.size else None}


def setup(config, personas, engine, out, backends=None, **options):
    run = aloe.setup(config, personas, engine, out, backends, **options)
    run.header["config"]["scorer"] = "asks-question"
    return replace(run, scorer=AsksQuestion, metrics=question_metrics, journaled=False)


def prepare(config, **options):
    return replace(prepare_run(config, **options), setup=setup)


register_task(replace(aloe.TASK, kind="asks_question", title="Asks-a-question", prepare=prepare))
YAML = """task: asks_question_demo
metadata: {aloe: {kind: asks_question, personas: demo, limit: 1, turns: 2, max_new_tokens: 24,
  simulator_max_new_tokens: 16}}
"""


@pytest.mark.slow
def test_a_third_task_runs_end_to_end(cli, tmp_path, embedded_checkpoint):
    (tmp_path / "task.yaml").write_text(YAML)
    out = tmp_path / "run"
    args = ["--model", "embedded", "--no-progress", "--output", out, "--cache", tmp_path / "c.sqlite"]
    code, stdout, err = cli("run", "--task", tmp_path / "task.yaml", *args)
    assert code == 0, err
    results, convs = read_run(out)
    assert results["status"] == "complete" and results["config"]["scorer"] == "asks-question"
    assert results["usage"]["judge"]["calls"] == 0 and results["usage"]["model"]["calls"] == 2
    turns = [t for c in convs for t in c["turns"]]
    assert len(turns) == 2 and all(t["score"] == (5 if "?" in t["assistant"] else 1) for t in turns)
    assert results["metrics"]["question_rate"] == sum(t["score"] == 5 for t in turns) / 2
    assert len(load_run(out).to_dataframe()) == 2
    code, table, err = cli("leaderboard", out)
    assert code == 0 and "embedded" in table, err
    code, _, err = cli("view", out, "--output", tmp_path / "page.html")
    assert code == 0 and (tmp_path / "page.html").stat().st_size > 0, err
