"""No task is named outside its own package (issue 19): a built-in task's kind written as a string
anywhere else in aloe_bench is either data (listed below, each with why) or a task test that the
task registry or the run's own record should answer instead. A new one fails here."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

from aloe_bench.engine.task_api import BUILTIN

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aloe_bench"
TASKS = PACKAGE / "tasks"
# (file, literal) -> how many times it may appear, and why it is data rather than a task test.
ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    ("aloe_bench/engine/task_api.py", "aloe"): (2, "BUILTIN, the registry's own table; DEFAULT_KIND"),
    ("aloe_bench/engine/task_api.py", "multifaceted"): (1, "BUILTIN, the registry's own table"),
    ("aloe_bench/log/records.py", "aloe"): (1, "UNRECORDED_KIND: runs that record no kind are ALOE's"),
    ("aloe_bench/engine/task_files.py", "aloe"): (1, "`metadata.aloe`, the project's key in a task YAML"),
    ("aloe_bench/integrations/lm_eval/task.py", "aloe"): (2, "`metadata.aloe`; the default task name"),
    ("aloe_bench/datasets/personas/__init__.py", "aloe"): (2, "the persona set named `aloe`"),
    ("aloe_bench/models/backends/lmeval_backend.py", "aloe"): (1, "lm-eval Instance metadata (a name)"),
}
_KINDS = "|".join(map(re.escape, BUILTIN))
_JS_LITERAL = re.compile(rf"""(["'])({_KINDS})\1""")


def task_names(path: Path, source: str) -> Counter[str]:
    """The built-in kinds a file names as a whole string (in Python, any string constant; in
    JavaScript, any quoted literal), and every `is_multifaceted` it mentions."""
    found: Counter[str] = Counter()
    if path.suffix == ".js":
        found.update(m.group(2) for m in _JS_LITERAL.finditer(source))
    else:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in BUILTIN:
                found[node.value] += 1
    found["is_multifaceted"] += source.count("is_multifaceted")
    return +found  # zero counts dropped


def names_outside_task_packages(planted: dict[str, str] | None = None) -> dict[tuple[str, str], int]:
    files = {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for p in sorted(PACKAGE.rglob("*"))
        if p.suffix in (".py", ".js") and TASKS not in p.parents
    }
    files.update(planted or {})
    return {
        (name, literal): count
        for name, text in files.items()
        for literal, count in task_names(Path(name), text).items()
    }


def test_no_task_is_named_outside_its_package_except_as_listed_data():
    found = names_outside_task_packages()
    unexpected = {k: v for k, v in found.items() if ALLOWED.get(k, (0, ""))[0] != v}
    gone = {k: v[0] for k, v in ALLOWED.items() if k not in found}
    assert not unexpected and not gone, (
        f"task names outside aloe_bench/tasks/ (ask the task registry or the run's record instead, or list "
        f"them in ALLOWED with why they are data): {unexpected}; listed but gone (remove them): {gone}"
    )


def test_a_planted_task_name_is_caught():
    planted = {
        "aloe_bench/reports/viewer/payload.py": "def run_kind(run):\n    return run.config.kind or 'aloe'\n",
        "aloe_bench/integrations/lm_eval/quiet.py": 'PREFIXES = ("aloe", "multifaceted")\n',
        "aloe_bench/log/published.py": "def f(config):\n    return config.is_multifaceted\n",
        "aloe_bench/reports/viewer/assets/report.js": 'var kind = DATA.kind || "multifaceted";\n',
    }
    found = names_outside_task_packages(planted)
    for name, literal in [
        ("aloe_bench/reports/viewer/payload.py", "aloe"),
        ("aloe_bench/integrations/lm_eval/quiet.py", "multifaceted"),
        ("aloe_bench/log/published.py", "is_multifaceted"),
        ("aloe_bench/reports/viewer/assets/report.js", "multifaceted"),
    ]:
        assert (name, literal) in found and (name, literal) not in ALLOWED, (name, literal)
