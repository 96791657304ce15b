"""Bad input: one clear line on stderr, exit 2, no traceback."""

import pytest
from conftest import run_cli_subprocess


def _one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("aloe-bench: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_unknown_provider(tmp_path):
    p = run_cli_subprocess("run", "--model", "foo/bar", "--output", tmp_path / "o")
    _one_line_error(p, "unknown model provider", "hf/")


def test_missing_model_path(tmp_path):
    p = run_cli_subprocess("run", "--model", "hf/./no-such-checkpoint", "--output", tmp_path / "o")
    _one_line_error(p, "does not exist")
    p = run_cli_subprocess("run", "--model", str(tmp_path / "nope"), "--output", tmp_path / "o")
    _one_line_error(p, "does not exist")


def test_malformed_persona_file_names_file_and_line(tmp_path):
    bad = tmp_path / "people.jsonl"
    bad.write_text('{"profile": "a", "personality": "b"}\n\n{"profile": oops}\n')
    p = run_cli_subprocess("run", "--model", "embedded", "--personas", bad, "--output", tmp_path / "o")
    _one_line_error(p, "people.jsonl:3")


def test_zero_turns(tmp_path):
    p = run_cli_subprocess("run", "--model", "embedded", "--turns", "0", "--output", tmp_path / "o")
    _one_line_error(p, "--turns")


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    p = run_cli_subprocess("run", "--model", "embedded", "--output", blocker / "run")
    _one_line_error(p, "output directory", "--output")


def test_official_personas_offline_without_data_dir(cli, monkeypatch, tmp_path):
    import aloe_bench.datasets.personas.official as official

    monkeypatch.setenv("ALOE_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(official, "ALOE_URL", "http://127.0.0.1:9/{name}")
    code, _, err = cli("run", "--model", "embedded", "--personas", "aloe", "--output", tmp_path / "o")
    assert code == 2
    assert err.count("aloe-bench: error:") == 1 and "--data-dir" in err


def test_output_dir_of_a_different_run_is_not_overwritten(cli, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text('{"config_hash": "something-else"}')
    code, _, err = cli("run", "--model", "embedded", "--output", out)
    assert code == 2 and "--overwrite" in err
    assert (out / "results.json").read_text() == '{"config_hash": "something-else"}'


@pytest.mark.parametrize("args", [["--model-args", "nonsense"], ["--limit", "0"], ["--protocol", "nope"]])
def test_other_bad_flags(cli, tmp_path, args):
    code, _, err = cli("run", "--model", "embedded", *args, "--output", tmp_path / "o")
    assert code == 2 and err.startswith("aloe-bench: error:")
