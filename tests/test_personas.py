import json

import pytest

from aloe_bench.datasets.personas import load_persona_set, persona_id
from aloe_bench.datasets.personas.loaders import read_strings
from aloe_bench.datasets.personas.official import load_official_pool
from aloe_bench.errors import UserInputError


def test_official_set_is_20_profiles_times_first_5_personalities(aloe_data_dir):
    s = load_persona_set("aloe", aloe_data_dir)
    assert len(s.personas) == 100
    assert len({p.id for p in s.personas}) == 100
    personalities = read_strings(aloe_data_dir / "personality_eval.jsonl")
    assert len(personalities) == 7
    used = {p.personality for p in s.personas}
    assert used == set(personalities[:5])
    assert s.personas[0].meta == {"profile_index": 0, "personality_index": 0}


def test_ids_are_stable_across_loads_and_sets(aloe_data_dir, tmp_path):
    a = load_persona_set("aloe", aloe_data_dir)
    b = load_persona_set("aloe", aloe_data_dir)
    assert [p.id for p in a.personas] == [p.id for p in b.personas]
    # the same persona in a user file gets the same id
    user = tmp_path / "mine.jsonl"
    user.write_text(json.dumps(a.personas[7].to_dict()) + "\n")
    assert load_persona_set(str(user)).personas[0].id == a.personas[7].id
    assert a.personas[7].id == persona_id(a.personas[7].profile, a.personas[7].personality)


def test_training_pool_survives_the_two_strings_on_one_line_defect(aloe_data_dir):
    profiles, personalities = load_official_pool(aloe_data_dir)
    assert len(profiles) == 331
    assert len(personalities) == 71
    raw_lines = (aloe_data_dir / "profile.jsonl").read_text().splitlines()
    assert len(raw_lines) == 330  # one physical line holds two profiles


def test_malformed_line_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"profile": "a", "personality": "b"}\n{"profile": "c", "personality": \n')
    with pytest.raises(UserInputError, match=r"bad\.jsonl:2: malformed JSON"):
        load_persona_set(str(bad))
    missing = tmp_path / "missing_field.jsonl"
    missing.write_text('{"profile": "a"}\n')
    with pytest.raises(UserInputError, match=r"missing_field\.jsonl:1: missing or empty field 'personality'"):
        load_persona_set(str(missing))


def test_demo_set_ships_with_the_package():
    s = load_persona_set("demo")
    assert len(s.personas) >= 8
    assert all(p.profile and p.personality for p in s.personas)


def test_offline_without_data_dir_says_to_pass_data_dir(monkeypatch, tmp_path):
    import aloe_bench.datasets.personas.official as official

    monkeypatch.setenv("ALOE_BENCH_HOME", str(tmp_path))  # empty cache
    monkeypatch.setattr(official, "ALOE_URL", "http://127.0.0.1:9/{name}")  # nothing listens: offline
    with pytest.raises(UserInputError, match="--data-dir"):
        load_persona_set("aloe")


def test_modified_official_file_is_refused(tmp_path, aloe_data_dir):
    for name in ("profile_eval.jsonl", "personality_eval.jsonl"):
        (tmp_path / name).write_bytes((aloe_data_dir / name).read_bytes())
    with (tmp_path / "profile_eval.jsonl").open("a") as f:
        f.write('\n"She is someone else."')
    with pytest.raises(UserInputError, match="SHA-256"):
        load_persona_set("aloe", tmp_path)
