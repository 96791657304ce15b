"""The CLI layer is the top layer: no library module imports it (issue 10).

The library (runner, tasks, judge, training pipeline, ...) must be usable without argparse
front-ends, so an import from a library module into the CLI layer is a layering error.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Module names (as imported) that make up the CLI layer, and their files.
CLI_MODULES = ("aloe_bench.cli", "aloe_train.cli", "aloe_train.config_cli")
CLI_FILES = {
    Path("aloe_bench/cli"),
    Path("training/cli.py"),
    Path("training/config_cli.py"),
}
PACKAGES = {"aloe_bench": Path("aloe_bench"), "aloe_train": Path("training")}


def _is_cli_file(relative: Path) -> bool:
    return any(relative == part or part in relative.parents for part in CLI_FILES)


def _module_name(package: str, folder: Path, relative: Path) -> str:
    parts = list(relative.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every absolute module name the file imports, relative imports resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from aloe_bench import cli` imports the CLI module through its package.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def _is_cli_module(name: str) -> bool:
    return any(name == cli or name.startswith(cli + ".") for cli in CLI_MODULES)


def cli_imports_from_library() -> list[str]:
    offenders = []
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if _is_cli_file(relative):
                continue
            module = _module_name(package, folder, relative)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            lines = {
                line
                for line, name in _imported(tree, module, path.name == "__init__.py")
                if _is_cli_module(name)
            }
            offenders.extend(f"{relative}:{line} imports the CLI layer" for line in sorted(lines))
    return offenders


def test_no_library_module_imports_the_cli_layer():
    offenders = cli_imports_from_library()
    assert not offenders, "library modules import the CLI layer:\n" + "\n".join(offenders)


def test_the_checker_sees_absolute_relative_and_package_imports():
    # The walker itself must catch every spelling, or the test above proves nothing.
    cases = {
        "from aloe_bench.cli._common import role_config": True,
        "import aloe_bench.cli.main": True,
        "from aloe_bench import cli": True,
        "from ...cli import run": True,
        "from . import config_cli": True,
        "from aloe_bench import config": False,
        "from aloe_bench.client import x": False,
    }
    for source, expected in cases.items():
        module = "aloe_train.pipeline" if "config_cli" in source else "aloe_bench.models.backends.hf"
        names = [name for _, name in _imported(ast.parse(source), module, False)]
        assert any(_is_cli_module(n) for n in names) is expected, source
