"""The report pages in a real headless Chromium (Debian's `chromium`, driven by Playwright's Python
package; no browser is downloaded). Checks what a reader relies on: no console errors, the curve drawn,
every conversation listed, the right transcript and scores on click, working filters and sorting,
untrusted text shown literally with nothing run, and a 100 x 10 run's size and time to interactive.
Screenshots go to $ALOE_VIEW_SHOTS (default /tmp/aloe-view-shots/)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from aloe_bench.log.results import load_run
from aloe_bench.reports.viewer import build_report
from aloe_bench.testing.report_runs import write_report_run

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        "/usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import sync_playwright  # noqa: E402  (after the skip: only needed with a browser)

REPO = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("ALOE_VIEW_SHOTS", "/tmp/aloe-view-shots"))
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Page:
    """A loaded report with everything it logged; fails the test on any console error."""

    def __init__(self, browser, path: Path, viewport=(1280, 900), fragment: str = ""):
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))
        start = time.perf_counter()
        self.page.goto(path.resolve().as_uri() + fragment)
        self.page.wait_for_function("window.__aloeReady === true", timeout=20_000)
        self.wall_s = time.perf_counter() - start
        self.ready_ms = self.page.evaluate("window.__aloeReadyMs")

    def rows(self, table="#conv-table") -> list[str]:
        return self.page.eval_on_selector_all(f"{table} tbody tr", "rs => rs.map(r => r.dataset.id)")

    def count_text(self) -> str:
        return self.page.text_content("#conv-table-count")

    def clean(self) -> None:
        assert self.errors == [] and self.dialogs == []
        assert all(u.startswith(("file:", "data:", "about:")) for u in self.requests), self.requests

    def shot(self, name: str, full_page=True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / name), full_page=full_page)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser-runs")
    return {
        "base": write_report_run(root / "base", personas=20, turns=6, seed=0, model="demo/base", failed=2),
        "sft": write_report_run(root / "sft", personas=20, turns=6, seed=1, model="demo/sft", skill=0.7),
        "dpo": write_report_run(root / "dpo", personas=20, turns=6, seed=2, model="demo/dpo", skill=-0.4),
        "injection": write_report_run(root / "injection", personas=3, turns=5, seed=3, injection=True),
    }


def _score_text(s: float | None) -> str:
    """How the page writes a turn score: an integer plainly, a panel mean with two decimals."""
    if s is None:
        return "–"
    return str(int(s)) if float(s).is_integer() else f"{s:.2f}"


def _means(run_dir: Path) -> dict[str, float | None]:
    out = {}
    for c in load_run(run_dir).conversations:
        scores = [t.score for t in c.turns if t.score is not None]
        out[c.id] = float(np.mean(scores)) if scores else None
    return out


def test_one_run_page(browser, runs):
    page_file = build_report([runs["base"]], runs["base"] / "report.html")
    p = Page(browser, page_file)
    pg = p.page
    # the judge flag sits at the top, above the run's figures
    assert pg.locator("#warnings [data-code=judge-no-discrimination]").count() == 1
    assert pg.locator("#warnings [data-code=failed]").count() == 1
    # the curve: one line through the 6 turns, and its band
    d = pg.get_attribute("svg.curve path.line", "d")
    assert d.startswith("M") and d.count("L") == 5
    assert pg.locator("svg.curve path.band").count() == 1 and pg.locator("svg.curve circle.pt").count() == 6
    # every conversation is listed
    ids = [c.id for c in load_run(runs["base"]).conversations]
    assert sorted(p.rows()) == sorted(ids) and p.count_text() == "showing 20 of 20"
    p.shot("one-run.png")

    # clicking a conversation shows its transcript with its scores and judgements
    conv = load_run(runs["base"]).conversations[3]
    pg.click(f"#conv-table tr[data-id={conv.id}]")
    assert pg.is_visible("#detail.open")
    assert pg.text_content("#detail-title") == f"Conversation {conv.id}"
    shown = pg.eval_on_selector_all("#detail .turn > .turn-head .score", "xs => xs.map(x => x.textContent)")
    expected = [_score_text(t.score) for t in conv.turns]
    assert shown == expected
    assert pg.locator("#detail .turn").first.locator("table.judgements tr").count() == 3  # header + 2 judges
    assert conv.persona["profile"] == pg.text_content("#detail .persona-profile")
    assert pg.locator("#detail .fact").count() > 0  # audited: the persona's facts, revealed ones marked
    assert pg.locator("#detail .chip").count() > 0
    p.shot("one-run-transcript.png", full_page=False)
    assert pg.evaluate("location.hash") == f"#conv={conv.id}"  # the transcript has its own address
    pg.click("#detail-close")
    assert not pg.is_visible("#detail.open")
    linked = Page(browser, page_file, fragment=f"#conv={conv.id}")
    assert linked.page.text_content("#detail-title") == f"Conversation {conv.id}"
    linked.clean()

    # filters: text, status, score range; and sorting by mean
    target = conv.persona["profile"][:60]
    pg.fill("#conv-table-search", target.lower())
    assert p.rows() == [c.id for c in load_run(runs["base"]).conversations if target in c.persona["profile"]]
    pg.fill("#conv-table-search", "")
    pg.select_option("#conv-table-status", "failed")
    assert sorted(p.rows()) == ["p018", "p019"]
    pg.select_option("#conv-table-status", "")
    means = _means(runs["base"])
    pg.fill("#conv-table-min", "3")
    assert sorted(p.rows()) == sorted(k for k, v in means.items() if v is not None and v >= 3)
    pg.fill("#conv-table-min", "")
    pg.click("#conv-table th:has-text('mean')")  # numbers sort high first
    assert p.rows()[0] == max(means, key=lambda k: means[k] if means[k] is not None else -1)
    p.clean()


def test_untrusted_text_is_shown_literally_and_runs_nothing(browser, runs):
    page_file = build_report([runs["injection"]], runs["injection"] / "report.html")
    p = Page(browser, page_file)
    pg = p.page
    pg.click("#conv-table tr[data-id=p000]")
    assert pg.evaluate("typeof window.__pwned") == "undefined"
    assert "<script>window.__pwned = 'script'; alert(1)</script>" in pg.text_content(
        "#detail .persona-profile"
    )
    assert "</script><script>window.__pwned = 'breakout'</script>" in pg.text_content("#detail")
    assert pg.locator("img").count() == 0 and pg.locator("b").count() == 0  # no markup from the data
    assert pg.locator("script").count() == 2  # the data block and the page's own script
    pg.click("#detail .turn >> nth=0")
    p.shot("injection.png", full_page=False)
    assert pg.evaluate("typeof window.__pwned") == "undefined"
    p.clean()


def test_three_run_page(browser, runs, tmp_path):
    page_file = build_report(
        [runs["base"], runs["sft"], runs["dpo"]], tmp_path / "three.html", ["base", "SFT", "DPO"]
    )
    payload = json.loads(
        page_file.read_text(encoding="utf-8").split('id="aloe-data">')[1].split("</script>")[0]
    )
    p = Page(browser, page_file)
    pg = p.page
    assert pg.locator("svg.curve path.line").count() == 3
    rows = pg.eval_on_selector_all(
        "#comparison-table tr", "rs => rs.slice(1).map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [r[0] for r in rows] == ["SFT", "DPO"]
    for row, c in zip(rows, payload["comparisons"], strict=True):
        d = c["overall"]
        assert row[1] == str(d["n"]) and row[5] == f"{d['diff']:+.3f}"
        p_text = "< 0.001" if d["p_value"] < 0.001 else f"{d['p_value']:.3f}"
        assert row[7] == p_text
    assert len(p.rows()) == 20
    avgs = pg.eval_on_selector_all("#scores-table tr", "rs => rs.slice(1).map(r => r.cells[2].textContent)")
    assert [a.split(" ")[0] for a in avgs] == [f"{r['metrics']['avg']:.3f}" for r in payload["runs"]]
    p.shot("three-runs.png")
    pg.click("#conv-table tr[data-id=p004]")
    assert pg.locator("#detail .side-row[data-turn='1'] .side-cell").count() == 3
    deltas = pg.eval_on_selector_all(
        "#detail .side-row[data-turn='2'] .delta", "xs => xs.map(x => x.textContent)"
    )
    convs = [
        next(c for c in load_run(runs[n]).conversations if c.id == "p004") for n in ("base", "sft", "dpo")
    ]
    base = convs[0].turns[1].score
    assert deltas == [f"Δ {t.turns[1].score - base:+.2f}" for t in convs[1:]]
    p.shot("three-runs-side-by-side.png", full_page=False)
    p.clean()


def test_multifaceted_page_shows_rubrics(browser, tmp_path):
    page_file = build_report([REPO / "tests" / "data" / "view_multifaceted_run"], tmp_path / "mf.html")
    p = Page(browser, page_file)
    pg = p.page
    assert len(p.rows()) == 2 and pg.locator("svg.curve").count() == 0
    assert "By dimension" in pg.text_content("main")
    pg.click("#conv-table tr.conv >> nth=0")
    assert pg.locator("#detail table.rubrics tr").count() == 5  # header + 4 rubrics
    assert "Instance: what the model was given" in pg.text_content("#detail")  # named by the task's item
    # turn.scores by scorer (an older run: its one scorer read back as `score`)
    assert pg.locator("#detail .turn-head .scorers").first.text_content().startswith("score ")
    p.shot("multifaceted.png", full_page=False)
    p.clean()


def test_published_run_report_opens_on_a_phone(browser):
    p = Page(browser, REPO / "leaderboard" / "runs" / "embedded-demo" / "report.html", viewport=(390, 844))
    pg = p.page
    assert pg.locator("#warnings [data-code=embedded-judge]").count() == 1
    assert len(p.rows()) == 12
    # nothing wider than the phone's screen outside the scrolling tables
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    p.shot("phone.png", full_page=False)
    pg.click("#conv-table tr.conv >> nth=1")
    panel = pg.eval_on_selector("#detail .panel", "e => [e.getBoundingClientRect().width, e.scrollWidth]")
    assert panel[0] <= 390 and panel[1] <= 390 + 1  # the transcript fills the screen, no sideways scroll
    p.shot("phone-transcript.png", full_page=False)
    p.clean()


def test_hundred_by_ten_run_is_small_and_quick(browser, tmp_path):
    run = write_report_run(tmp_path / "big", personas=100, turns=10, seed=5)
    start = time.perf_counter()
    page_file = build_report([run], run / "report.html")
    build_s = time.perf_counter() - start
    size = page_file.stat().st_size
    p = Page(browser, page_file)
    print(f"\n100x10 run: page {size / 1e6:.2f} MB, built in {build_s:.2f} s, interactive after {p.ready_ms:.0f} ms "
          f"(navigation start to drawn; {p.wall_s:.2f} s wall from goto)")  # fmt: skip
    assert size < 5_000_000
    assert p.ready_ms < 2000
    assert len(p.rows()) == 100
    p.clean()
