"""Persona sets by name: `aloe` (the official 100), `demo` (shipped, offline), or a JSONL file path.

Every persona has a stable id derived from its text, so the same persona gets the same id in every
run (and in every set that contains it): runs of different models pair up by id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.datasets.personas.loaders import read_objects, read_strings
from aloe_bench.datasets.personas.official import load_official_eval
from aloe_bench.errors import UserInputError

__all__ = ["Persona", "PersonaSet", "load_persona_set", "persona_id"]


def persona_id(profile: str, personality: str) -> str:
    return hashlib.sha256(f"{profile.strip()}\n{personality.strip()}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Persona:
    profile: str
    personality: str
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", persona_id(self.profile, self.personality))

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "personality": self.personality}

    def to_payload(self) -> dict[str, Any]:
        """The persona with its id (what travels through lm-eval, and what its documents show)."""
        return {"id": self.id, **self.to_dict()}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Persona:
        return cls(data["profile"], data["personality"], id=data["id"])


@dataclass
class PersonaSet:
    name: str  # "aloe", "demo" or the file path as given
    personas: list[Persona]
    source: str  # where the texts came from (file path, URL, package data)

    @property
    def sha256(self) -> str:
        """Identifies the exact texts, in order: recorded with every run."""
        blob = json.dumps([p.to_dict() for p in self.personas], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def limit(self, n: int | None) -> PersonaSet:
        if n is None:
            return self
        return PersonaSet(self.name, self.personas[:n], self.source)


def _from_objects(path: Path, name: str, source: str) -> PersonaSet:
    personas: list[Persona] = []
    seen: dict[str, int] = {}  # persona id -> the line that gave it
    for lineno, obj in read_objects(path, required=("profile", "personality")):
        given = obj.get("id")
        if given is not None and not isinstance(given, str | int):
            raise UserInputError(f"{path}:{lineno}: field 'id' must be a string")
        p = Persona(
            obj["profile"].strip(), obj["personality"].strip(), id=str(given) if given is not None else ""
        )
        if p.id in seen:
            raise UserInputError(f"{path}:{lineno}: duplicate persona (same id as line {seen[p.id]})")
        seen[p.id] = lineno
        personas.append(p)
    if not personas:
        raise UserInputError(f"{path}: no personas in the file")
    return PersonaSet(name, personas, source)


def load_demo() -> PersonaSet:
    data = resources.files("aloe_bench.datasets.personas") / "data" / "demo.jsonl"
    with resources.as_file(data) as path:
        return _from_objects(Path(path), "demo", "aloe_bench/datasets/personas/data/demo.jsonl")


def load_persona_set(name: str, data_dir: str | Path | None = None) -> PersonaSet:
    if name == "aloe":
        profiles, personalities, source = load_official_eval(data_dir)
        personas = [
            Persona(profile, personality, meta={"profile_index": i, "personality_index": j})
            for i, profile in enumerate(profiles)
            for j, personality in enumerate(personalities)
        ]
        return PersonaSet("aloe", personas, source)
    if name == "demo":
        return load_demo()
    path = Path(name).expanduser()
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise UserInputError(f"persona file {name} does not exist")
        return _from_objects(path, name, str(path.resolve()))
    raise UserInputError(
        f"unknown persona set {name!r}: use aloe, demo, or a path to a JSONL file of {{profile, personality}}"
    )


def pool_strings(path: Path) -> list[str]:
    """A training pool file (profiles or personalities), original format."""
    return read_strings(path)
