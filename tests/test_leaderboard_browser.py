"""The published board (leaderboard/index.html) in a real headless Chromium (Debian's `chromium`,
driven by Playwright's Python package, as tests/test_viewer_browser.py does): the printed rows with
their sources, the setup groups, a run of the demo in a group of its own, the inconsistency flag,
and no console error or request leaving the page's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from aloe_bench.reports.leaderboard import publish
from aloe_bench.testing.runs import write_synthetic_run

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        "/usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )

from playwright.sync_api import sync_playwright  # noqa: E402  (after the skip: only needed with a browser)

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def _rows(page, task: str) -> list[dict]:
    return page.eval_on_selector_all(
        f'table.aloe-board[data-task="{task}"] tbody tr',
        "rs => rs.map(r => ({...r.dataset, model: r.querySelector('[data-col=model]').textContent,"
        " check: r.querySelector('[data-col=check]').textContent}))",
    )


def test_the_published_board_shows_printed_rows_sources_and_groups(browser):
    page, errors, requests = _open(browser, REPO / "leaderboard" / "index.html")
    aloe = _rows(page, "aloe")
    assert aloe and all(r["kind"] == "reported" for r in aloe)  # the embedded runs are not ranked here
    assert {r["source"] for r in aloe} == {"RLPA, table 2 or 4"}
    assert [r["rank"] for r in aloe] == [str(i) for i in range(1, len(aloe) + 1)]
    janus = _rows(page, "multifaceted")
    assert {r["source"] for r in janus} == {"Janus, Multifaceted Bench averages (table number not checked)"}
    groups = page.eval_on_selector_all(
        'section[data-task="aloe"] .aloe-groups li', "ls => ls.map(l => l.textContent)"
    )
    assert groups and groups[0].startswith("A: as printed by RLPA")
    links = page.eval_on_selector_all('table.aloe-board td[data-col="source"] a', "as => as.map(a => a.href)")
    assert set(links) == {"https://arxiv.org/abs/2505.15456", "https://arxiv.org/abs/2405.17977"}
    assert "Pipeline check" in page.text_content("body")
    assert page.evaluate("document.querySelector('img').naturalWidth") > 0  # curves.png loads
    assert errors == [] and all(u.startswith(("file:", "data:", "about:")) for u in requests)
    page.close()


def test_a_demo_run_is_its_own_group_and_a_flag_shows(browser, tmp_path):
    board = tmp_path / "board"
    write_synthetic_run(board / "runs" / "demo", {f"p{i}": [3, 4, 4] for i in range(8)}, model="hf/demo")
    shutil.copytree(REPO / "leaderboard" / "reported", board / "reported")
    curve = [20.0, 30.0, 25.0, 40.0, 45.0, 50.0, 48.0, 60.0, 62.0, 70.0]
    (board / "reported" / "zz_check.yaml").write_text(
        yaml.safe_dump(
            {
                "format": "aloe-bench/reported-v1", "paper": "Checked paper", "short": "Checked",
                "arxiv": "2505.15456", "table": "9",
                "setup": {"task": "aloe", "judge": "j", "simulator": "s", "protocol": "p", "scale": "percent",
                          "turns": 10},
                "digits": {"al": 2, "avg": 2},
                "rows": [{"model": "printed-wrong", "al": curve, "avg": 99.0}],
            }
        )
    )  # fmt: skip
    publish(board, command="aloe-bench leaderboard --publish board")
    page, errors, _ = _open(browser, board / "index.html")
    aloe = _rows(page, "aloe")
    run = [r for r in aloe if r["kind"] == "run"]
    assert [(r["model"], r["group"], r["rank"]) for r in run] == [("hf/demo", "A", "1")]
    assert all(r["group"] != "A" for r in aloe if r["kind"] == "reported")
    wrong = next(r for r in aloe if r["model"] == "printed-wrong")
    assert wrong["flag"] == "inconsistent" and wrong["check"].startswith("⚠ inconsistent")
    color = page.eval_on_selector(
        'tr[data-flag="inconsistent"] td[data-col="check"]', "e => getComputedStyle(e).color"
    )
    assert color == "rgb(170, 0, 0)"  # shown in red
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    assert errors == []
    page.close()


def test_the_demo_run_beside_printed_rows_is_a_group_of_its_own(browser, tmp_path, cli):
    """`aloe-bench leaderboard RUN --reported DIR --output board.html` with the stored embedded demo run:
    in Chromium the run is group A, rank 1, and every printed row is in another group."""
    out = tmp_path / "board.html"
    demo = REPO / "leaderboard" / "runs" / "embedded-demo"
    code, _, err = cli("leaderboard", demo, "--reported", REPO / "leaderboard" / "reported", "--output", out)
    assert code == 0, err
    page, errors, requests = _open(browser, out)
    aloe = _rows(page, "aloe")
    assert [(r["kind"], r["group"], r["rank"]) for r in aloe if r["kind"] == "run"] == [("run", "A", "1")]
    printed = [r for r in aloe if r["kind"] == "reported"]
    assert printed and {r["group"] for r in printed} == {"B"} and printed[0]["rank"] == "1"
    headers = page.eval_on_selector_all(
        'table.aloe-board[data-task="aloe"] th', "hs => hs.map(h => h.textContent)"
    )
    assert "AVG (1–5) [95% CI]" in headers and "AVG (%)" in headers  # two scales, side by side
    assert errors == [] and all(u.startswith(("file:", "data:", "about:")) for u in requests)
    page.close()
