"""The score/metric contract (issue 19): a metric is a function of scored samples, not of the
recorder, so it counts every item of a journaled run, whose finished transcripts leave memory."""

from __future__ import annotations

import math
import time

from aloe_bench.engine.recorder import RunRecorder
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.metrics.alignment import alignment_curve, alignment_metrics
from aloe_bench.metrics.samples import MetricSettings, Score, ScoredSample, score_rows

N, TURNS = 10_000, 3


def _score(i: int, k: int) -> int | None:
    return None if (i + k) % 97 == 0 else 1 + (i * 7 + k * 3) % 5  # a few unreadable verdicts


def _journaled_run(tmp_path, sample_metrics=None, metrics_of=None) -> RunRecorder:
    conversations = [ConversationRecord(f"c{i}", {"profile": f"p{i}"}) for i in range(N)]
    recorder = RunRecorder(
        out=tmp_path, header={}, conversations=conversations, turns=TURNS, seed=3, n_bootstrap=0,
        usage={}, journaled=True, interval_s=math.inf, sample_metrics=sample_metrics, metrics_of=metrics_of,
    )  # fmt: skip
    for i, conv in enumerate(conversations):
        for k in range(TURNS):
            conv.turns.append(TurnRecord(user="u", assistant=f"reply {i}.{k}"))
            recorder.turn_done(conv, k)
        conv.status = "complete" if i % 50 else "failed"  # every 50th failed: left out of the metrics
        for k, turn in enumerate(conv.turns):
            turn.score, turn.judge_raw, turn.judged = _score(i, k), "raw", True
            recorder.judged(conv, k)
    return recorder


def test_a_metric_of_scored_samples_sees_every_item_of_a_journaled_10000_item_run(tmp_path):
    seen: dict[str, object] = {}

    def high_rate(samples, settings):  # a task's own metric
        seen["samples"], seen["settings"] = len(samples), settings
        values = [s.value(k) for s in samples if s.status == "complete" for k in range(settings.turns)]
        scored = [v for v in values if not math.isnan(v)]
        return {"high_rate": sum(v >= 4 for v in scored) / len(scored), "n": len(scored)}

    started = time.perf_counter()
    recorder = _journaled_run(tmp_path, sample_metrics=high_rate)
    assert all(c.turns == [] for c in recorder.conversations)  # every transcript left memory
    metrics = recorder.metrics(with_ci=False)
    expected = [_score(i, k) for i in range(N) if i % 50 for k in range(TURNS)]
    scored = [v for v in expected if v is not None]
    assert seen["samples"] == N and seen["settings"] == MetricSettings(TURNS, 3, 0)
    assert metrics == {"high_rate": sum(v >= 4 for v in scored) / len(scored), "n": len(scored)}
    assert time.perf_counter() - started < 120  # 30,000 turns journaled and scored


def test_the_default_metric_is_the_curve_of_the_same_scores(tmp_path):
    recorder = _journaled_run(tmp_path)
    rows = [
        [math.nan if _score(i, k) is None else _score(i, k) for k in range(TURNS)] for i in range(N) if i % 50
    ]
    clusters = [f"c{i}" for i in range(N) if i % 50]
    assert recorder.metrics(with_ci=False) == alignment_metrics(
        rows, seed=3, n_bootstrap=0, clusters=clusters
    )


def test_the_older_recorder_form_cannot_see_released_turns(tmp_path):
    # Why the contract changed: a metric that reads the recorder finds no turns once they are on disk.
    recorder = _journaled_run(
        tmp_path, metrics_of=lambda rec, ci: {"turns": sum(len(c.turns) for c in rec.conversations)}
    )
    assert recorder.metrics(with_ci=False) == {"turns": 0}


def test_a_sample_keeps_scores_by_scorer_and_the_curve_groups_epochs():
    conv = ConversationRecord("p1#e1", {"profile": "x"}, status="complete", meta={"persona_id": "p1"})
    conv.turns = [
        TurnRecord(user="u", assistant="a", score=4, judge_raw="4"),
        TurnRecord(user="u", assistant="b"),
    ]
    sample = ScoredSample.of(conv)
    assert sample.group == "p1" and sample.turns[0]["score"] == Score(4.0, "a", "4")
    assert sample.value(0) == 4.0 and math.isnan(sample.value(1)) and math.isnan(sample.value(5))
    assert ScoredSample.of(conv, with_text=False).turns[0]["score"] == Score(4.0)
    [row] = score_rows([sample], 2)
    assert row[0] == 4.0 and math.isnan(row[1])
    curve = alignment_curve([sample], MetricSettings(turns=2))
    assert curve["al"][0] == 4.0 and curve["n"] == [1, 0]
