"""A misspelt flag gets its subcommand's usage and a suggestion, exit 2 (issue 15)."""

from __future__ import annotations

import pytest


def _fails(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_misspelt_run_flag_shows_runs_usage_and_the_flag_meant(capsys):
    from aloe_bench.cli.main import main

    err = _fails(main, ["run", "--modle", "embedded"], capsys)
    assert err.startswith("usage: aloe-bench run ")  # run's usage, not the top-level one
    assert "aloe-bench run: error: unrecognized arguments: --modle (did you mean --model?)" in err
    err = _fails(main, ["run", "--model", "embedded", "--judge-temprature=1"], capsys)
    assert "did you mean --judge-temperature?" in err
    err = _fails(main, ["leaderboard", "runs/a", "--basline", "runs/b"], capsys)
    assert "usage: aloe-bench leaderboard" in err and "did you mean --baseline?" in err
    err = _fails(main, ["run", "--xyzzy"], capsys)
    assert "unrecognized arguments: --xyzzy" in err and "did you mean" not in err


def test_aloe_train_misspelt_required_flag_is_named_as_misspelt(capsys):
    from aloe_train.cli import main

    # --model is required; the error must name the typo, not claim --model is missing.
    err = _fails(main, ["sft", "--modle", "embedded", "--data", "d.jsonl", "--output", "o"], capsys)
    assert "usage: aloe-train sft" in err and "did you mean --model?" in err


def test_closest_flag_prefers_a_swap_over_a_shorter_flag():
    from aloe_bench.cli.main import closest_flag

    assert closest_flag("--modle", ["--mode", "--model"]) == "--model"
    assert closest_flag("--turn", ["--turns", "--seed"]) == "--turns"
    assert closest_flag("--zzz", ["--model"]) is None


def test_lm_eval_arguments_still_pass_through(capsys):
    from aloe_bench.cli.main import build_parser, parse_with_suggestions

    args, extra = parse_with_suggestions(build_parser(), ["lm_eval", "--tasks", "aloe_demo", "--limit", "2"])
    assert extra == ["--tasks", "aloe_demo", "--limit", "2"]


def test_huggingface_hub_lines_print_once(capsys):
    """Its retry lines went to its own stderr handler and, propagated, to the root one: twice."""
    import logging

    from aloe_bench.cli.main import configure_logging

    # The library's state as huggingface_hub leaves it on import (its own stderr handler, propagating),
    # set here explicitly: other tests (transformers, lm-eval) may have reset it before this one runs.
    library = logging.getLogger("huggingface_hub")
    saved = (list(library.handlers), library.propagate)
    library.handlers[:] = [logging.StreamHandler()]
    library.propagate = True
    try:
        configure_logging(verbose=False)
        logger, handlers = logging.getLogger("huggingface_hub.utils._http"), 0
        while logger is not None:  # pytest's own capture handlers on the root logger do not print
            handlers += sum(not type(h).__module__.startswith("_pytest") for h in logger.handlers)
            logger = logger.parent if logger.propagate else None
        assert not library.propagate
    finally:
        library.handlers[:], library.propagate = saved
    assert handlers == 1
