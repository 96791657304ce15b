"""The preference taxonomy: dimensions (what a preference is about) and seed subdimensions.

Data, not code: `taxonomy.yaml` beside this module is the paper's (style, background knowledge,
informativeness, harmlessness); `--taxonomy FILE` replaces it with any YAML of the same shape:

    dimensions:
      - name: style                      # a short identifier (written as `dimension` in the rows)
        description: how the response is presented
        seeds: [formality, clarity]      # example subdimensions shown to the generator (may be empty)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aloe_bench.errors import UserInputError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str
    seeds: tuple[str, ...]

    @property
    def label(self) -> str:
        """How prompts name it ("background knowledge")."""
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class Taxonomy:
    dimensions: tuple[Dimension, ...]
    source: str
    sha256: str

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "dimensions": [d.name for d in self.dimensions]}


def load_taxonomy(path: str | None = None) -> Taxonomy:
    if path is None:
        raw = (resources.files("aloe_train.multifaceted") / "taxonomy.yaml").read_bytes()
        source = "aloe_train/multifaceted/taxonomy.yaml"
    else:
        file = Path(path).expanduser()
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise UserInputError(f"--taxonomy {path}: cannot read it ({exc.strerror})") from None
        source = str(file)
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return Taxonomy(_dimensions(data, source), source, hashlib.sha256(raw).hexdigest())


def _dimensions(data: Any, source: str) -> tuple[Dimension, ...]:
    shape = "expected `dimensions:` with a list of {name, description, seeds}"
    items = data.get("dimensions") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise UserInputError(f"{source}: {shape}")
    out: list[Dimension] = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise UserInputError(f"{source}: dimension {i} is not a mapping; {shape}")
        name, description, seeds = item.get("name"), item.get("description"), item.get("seeds", [])
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserInputError(
                f"{source}: dimension {i}: name must be a lowercase identifier (e.g. background_knowledge), got {name!r}"
            )
        if not isinstance(description, str) or not description.strip():
            raise UserInputError(f"{source}: dimension {name}: description must be a non-empty string")
        if not isinstance(seeds, list) or not all(isinstance(s, str) and s.strip() for s in seeds):
            raise UserInputError(f"{source}: dimension {name}: seeds must be a list of strings")
        out.append(Dimension(name, description.strip(), tuple(s.strip() for s in seeds)))
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise UserInputError(f"{source}: dimension names repeat ({', '.join(names)})")
    return tuple(out)
