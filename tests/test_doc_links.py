"""Every relative link in README.md, docs/*.md and benchmarks/README.md lands somewhere (issue 19).

The README is the front door and the docs are split by topic, so a moved section must not leave a
link pointing at nothing: a file that does not exist, or a `#heading` that is no heading of its file
(GitHub's anchors: lower case, punctuation dropped, spaces as hyphens).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a link in a shell example is not a link)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading text."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if match:
            base = anchor(match.group(1))
            name, n = base, 1
            while name in found:  # a repeated heading gets -1, -2, ...
                name, n = f"{base}-{n}", n + 1
            found.add(name)
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(ROOT)}: ({target})"
        if not dest.exists():
            broken.append(f"{where}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{where}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    return broken


def test_every_relative_link_resolves():
    broken = [b for page in _pages() for b in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_readme_links_every_doc_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"docs/{p.name}" not in readme]
    assert not missing, f"docs pages the README does not link: {missing}"


def test_the_checker_catches_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Floor and ceiling: `control/generic`\n")
    page.write_text(
        "[ok](other.md#floor-and-ceiling-controlgeneric) [gone](nowhere.md) [bad](other.md#nope)\n"
        "```\n[in code](ignored.md)\n```\n[web](https://example.org/x)\n"
    )
    found = [b.split(": ", 1)[1] for b in broken_links_at(page, tmp_path)]
    assert found == ["(nowhere.md): no such file", "(other.md#nope): no heading #nope in other.md"]


def broken_links_at(page: Path, root: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return broken_links(page)
    finally:
        ROOT = saved


def test_the_summary_points_at_a_section_that_exists():
    from aloe_bench.reports.run_summary import README_SECTION

    path, _, section = README_SECTION.partition(", section ")
    assert (ROOT / path).is_file(), README_SECTION
    assert anchor(section.strip('"')) in anchors(ROOT / path), README_SECTION
