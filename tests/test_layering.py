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


# -- the whole order (issue 19) ---------------------------------------------------------------------
# aloe_bench's layers, bottom first. A module may import its own layer's group (its folder) and any
# layer below; never a layer above, never a peer group of the same layer (models and datasets know
# nothing of each other). The data path reads upward: records (log) -> models, datasets -> metrics ->
# solvers, scorers -> the engine -> the task packages -> reports, bridges -> the command line.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("aloe_bench", "errors", "seeds", "paths", "concurrency", "spec_names", "prompts"),
    ("log",),
    ("models", "datasets"),
    ("metrics",),
    ("solvers", "scorers"),
    ("engine",),
    ("tasks",),
    ("reports", "integrations", "testing"),
    ("cli",),
)
# Circles still open on purpose, each with who is closing it. Remove an entry once it is gone: the
# test then keeps it gone. None is open now.
KNOWN_CIRCLES: frozenset[frozenset[str]] = frozenset()


def _layer_of(module: str) -> tuple[int, str] | None:
    """(rank, group) of an aloe_bench module; None outside aloe_bench."""
    parts = module.split(".")
    if parts[0] != "aloe_bench":
        return None
    group = parts[1] if len(parts) > 1 else "aloe_bench"
    for rank, groups in enumerate(LAYERS):
        if group in groups:
            return rank, group if rank else "base"  # the ground floor's small modules are one group
    raise AssertionError(f"{module}: its folder {group!r} is on no layer of LAYERS; place it")


def _library_modules() -> dict[str, Path]:
    folder = PACKAGES["aloe_bench"]
    return {
        _module_name("aloe_bench", folder, p.relative_to(ROOT)): p
        for p in sorted((ROOT / folder).rglob("*.py"))
    }


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lands in: itself, or the longest module prefix of it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(sources: dict[str, str] | None = None) -> dict[str, dict[str, int]]:
    """module -> {imported aloe_bench/aloe_train module: line}; `sources` adds or replaces modules'
    text (name -> source), which is how the tests below plant a bad import."""
    files = _library_modules()
    texts = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
    texts.update(sources or {})
    modules = dict.fromkeys(texts, Path())
    graph: dict[str, dict[str, int]] = {}
    for module, text in texts.items():
        is_package = module in files and files[module].name == "__init__.py"
        edges: dict[str, int] = {}
        for line, name in _imported(ast.parse(text), module, is_package):
            if name.split(".")[0] == "aloe_train":
                edges.setdefault("aloe_train", line)
                continue
            target = _known(name, modules)
            if target is not None and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    found = []
    for module, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            where = f"{module} (line {line}) imports {target}"
            if target == "aloe_train":
                found.append(f"{where}: the benchmark does not import the training package")
                continue
            mine, theirs = _layer_of(module), _layer_of(target)
            assert mine is not None and theirs is not None
            if mine[1] == theirs[1] or theirs[0] < mine[0]:
                continue
            found.append(
                f"{where}: {mine[1]} (layer {mine[0]}) may not import {theirs[1]} (layer {theirs[0]})"
            )
    return found


def circles(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """Strongly connected sets of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, {})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def test_every_import_runs_down_the_layers():
    offenders = layer_violations(import_graph())
    assert not offenders, "imports against the layer order:\n" + "\n".join(offenders)


def test_no_import_circles_in_aloe_bench():
    found = [sorted(c) for c in circles(import_graph()) if c not in KNOWN_CIRCLES]
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_a_planted_back_import_fails_the_order():
    # A backend reaching up into the engine (as hf.py once took the progress counters from it).
    planted = "from aloe_bench.engine.progress import ACTIVITY\n"
    graph = import_graph({"aloe_bench.models.backends.planted": planted})
    offenders = layer_violations(graph)
    assert any("aloe_bench.models.backends.planted" in o and "engine" in o for o in offenders), offenders
    # A peer group, a lazy import inside a function, the training package, a task reaching up to reports.
    cases = {
        "aloe_bench.datasets.planted": "from aloe_bench.models import roles\n",
        "aloe_bench.metrics.planted": "def f():\n    from aloe_bench.reports.compare import holm\n",
        "aloe_bench.scorers.planted": "from aloe_train.embeddings import get_embedder\n",
        "aloe_bench.tasks.planted": "from aloe_bench.reports.leaderboard import build_leaderboard\n",
    }
    for module, source in cases.items():
        offenders = layer_violations(import_graph({module: source}))
        assert any(o.startswith(module) for o in offenders), (module, offenders)


def test_a_planted_circle_is_found():
    # log/results -> log/journal exists; a journal that imports results back closes a circle.
    graph = import_graph({"aloe_bench.log.journal": "from aloe_bench.log.results import RESULTS_FILE\n"})
    assert any({"aloe_bench.log.journal", "aloe_bench.log.results"} <= c for c in circles(graph))


def test_no_module_is_an_old_name_standing_in_for_another():
    # Moved modules were once kept as re-exports that swapped themselves in sys.modules; they let
    # imports run back up the layers unseen. One name, one module: callers import the new home.
    swapped = [
        str(path.relative_to(ROOT))
        for folder in PACKAGES.values()
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "sys.modules[__name__]" in path.read_text(encoding="utf-8")
    ]
    assert not swapped, f"modules that stand in for another under an old name: {swapped}"


def test_no_module_takes_the_name_of_a_layer():
    # `log/models.py` beside `models/`, `lm_eval/engine.py` beside `engine/`: a reader looking for
    # the layer opens the wrong file. A layer's name belongs to its folder alone.
    layers = {group for groups in LAYERS[1:] for group in groups}
    clashes = [
        name for name in _library_modules() if name.count(".") > 1 and name.rsplit(".", 1)[1] in layers
    ]
    assert not clashes, f"modules named after a layer folder they are not: {clashes}"
