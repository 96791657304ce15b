"""The embedded model in every role, end to end, through the real CLI."""

import json

from conftest import SMALL, read_run

from aloe_bench.datasets.personas import load_persona_set


def _run(cli, out, cache, *extra):
    return cli(
        "run",
        "--task",
        "aloe_demo",
        "--model",
        "embedded",
        "--limit",
        "3",
        "--turns",
        "2",
        "--output",
        out,
        "--cache",
        cache,
        *SMALL,
        *extra,
    )


def test_embedded_in_every_role_end_to_end_then_rerun_makes_no_calls(cli, tmp_path, embedded_checkpoint):
    out, cache = tmp_path / "run", tmp_path / "calls.sqlite"
    code, stdout, _ = _run(cli, out, cache)
    assert code == 0, stdout
    results, convs = read_run(out)

    # the output contract
    cfg = results["config"]
    for key in (
        "model",
        "simulator",
        "judge",
        "protocol",
        "prompts",
        "personas",
        "turns",
        "seed",
        "packages",
    ):
        assert key in cfg
    assert cfg["prompts"]["judge"]["sha256"] and cfg["prompts"]["simulator"]["sha256"]
    assert cfg["model"]["backend"]["checkpoint"]
    m = results["metrics"]
    assert len(m["al"]) == len(m["n"]) == len(m["invalid"]) == 2
    assert {"avg", "ir", "n_ir", "n_r2", "ci"} <= set(m)
    assert [n + i for n, i in zip(m["n"], m["invalid"], strict=True)] == [3, 3]
    assert results["status"] == "complete"

    demo = load_persona_set("demo").personas[:3]
    assert [c["id"] for c in convs] == [p.id for p in demo]
    for conv, persona in zip(convs, demo, strict=True):
        assert conv["persona"] == persona.to_dict()
        assert len(conv["turns"]) == 2
        for turn in conv["turns"]:
            assert turn["user"] and "*" not in turn["user"]
            assert turn["assistant"] is not None
            assert turn["score"] in (1, 2, 3, 4, 5, None)
            assert turn["judge_raw"] is not None

    usage = results["usage"]
    assert usage["model"]["calls"] == 6 and usage["model"]["cached"] == 0
    assert usage["simulator"]["calls"] >= 6 and usage["judge"]["calls"] >= 6
    assert usage["model"]["completion_tokens"] > 0
    # one loaded model served every role, in batches (not one call at a time)
    (stats,) = results["batching"].values()
    assert stats["batches"] < stats["requests"] and stats["largest_batch"] >= 3

    # the same command again: everything from the cache, zero model calls, same transcripts
    code, stdout, _ = _run(cli, out, cache)
    assert code == 0
    again, convs_again = read_run(out)
    # no new call: usage counts every invocation of the run, and this one added nothing
    assert {r: u["calls"] for r, u in again["usage"].items()} == {r: u["calls"] for r, u in usage.items()}
    # The finished turns come back from the run directory itself: not even a cache lookup.
    assert again["usage"]["model"]["cached"] == 0
    assert again["batching"] == {"embedded": {"batches": 0, "requests": 0, "largest_batch": 0}}
    assert convs_again == convs
    assert again["metrics"] == results["metrics"]
    assert "AVG" in stdout and "turn" in stdout


def test_fixed_seed_repeats_exactly_with_sampling(cli, tmp_path, embedded_checkpoint):
    sampled = ("--temperature", "0.9", "--simulator-temperature", "0.9", "--limit", "2")
    outs = []
    for name in ("a", "b"):
        code, stdout, _ = cli(
            "run",
            "--task",
            "aloe_demo",
            "--model",
            "embedded",
            "--turns",
            "2",
            *SMALL,
            *sampled,
            "--output",
            tmp_path / name,
            "--cache",
            tmp_path / f"{name}.sqlite",
        )
        assert code == 0, stdout
        outs.append(read_run(tmp_path / name)[1])
    assert outs[0] == outs[1]
    # and a different seed gives a different conversation
    code, _, _ = cli(
        "run",
        "--task",
        "aloe_demo",
        "--model",
        "embedded",
        "--turns",
        "2",
        *SMALL,
        *sampled,
        "--seed",
        "1",
        "--output",
        tmp_path / "c",
        "--cache",
        tmp_path / "c.sqlite",
    )
    other = read_run(tmp_path / "c")[1]
    assert [t["user"] for c in other for t in c["turns"]] != [t["user"] for c in outs[0] for t in c["turns"]]


def test_history_protocol_and_explicit_disclosure_record_what_they_did(cli, tmp_path, embedded_checkpoint):
    code, stdout, _ = cli(
        "run",
        "--task",
        "aloe_demo",
        "--model",
        "embedded",
        "--limit",
        "1",
        "--turns",
        "2",
        "--protocol",
        "aloe-history",
        "--judge-max-new-tokens",
        "48",
        *SMALL[:4],
        "--no-progress",
        "--output",
        tmp_path / "h",
        "--cache",
        tmp_path / "h.sqlite",
    )
    assert code == 0, stdout
    results, convs = read_run(tmp_path / "h")
    assert results["config"]["protocol"] == "aloe-history"
    assert results["config"]["prompts"]["judge"]["name"] == "judge/aloe-history"
    assert json.dumps(convs)  # transcripts written
