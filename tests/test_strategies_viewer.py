"""The report page shows a strategy's intermediate texts above the reply (real headless Chromium)."""

from __future__ import annotations

import pytest
from test_strategies import NumberedModel
from test_viewer_browser import Page, browser  # noqa: F401  (the module's browser fixture)

from aloe_bench.reports.viewer import build_report
from aloe_bench.testing.fake_openai import FakeOpenAIServer


@pytest.fixture(scope="module")
def self_critic_page(tmp_path_factory):
    """Made before the browser starts: Playwright's sync API holds an event loop on this thread."""
    from aloe_bench.cli.main import main

    root = tmp_path_factory.mktemp("strategy-view")
    with NumberedModel() as model, FakeOpenAIServer() as other:
        code = main(
            [
                "run", "--model", "self-critic/openai/fake-model", "--model-base-url", model.base_url,
                "--simulator", "openai/fake-model", "--simulator-base-url", other.base_url,
                "--judge", "openai/fake-model", "--judge-base-url", other.base_url,
                "--personas", "demo", "--limit", "1", "--turns", "2", "--no-progress",
                "--output", str(root / "run"), "--cache", str(root / "calls.sqlite"),
            ]
        )  # fmt: skip
    assert code == 0
    return build_report([root / "run"], root / "page.html")


def test_draft_and_critique_are_shown_above_the_reply(self_critic_page, browser):  # noqa: F811
    p = Page(browser, self_critic_page)
    pg = p.page
    pg.click("#conv-table tr.conv >> nth=0")
    blocks = pg.locator("#detail details.strategy")
    assert blocks.count() == 2  # one per turn
    assert "self-critic: 3 model call(s)" in blocks.nth(0).text_content()
    kinds = pg.eval_on_selector_all("#detail pre.strategy-step", "es => es.map(e => e.dataset.kind)")
    assert kinds == ["draft", "critique", "draft", "critique"]
    steps = pg.eval_on_selector_all("#detail pre.strategy-step", "es => es.map(e => e.textContent)")
    assert steps[:2] == ["model text #1 zebra", "model text #2 zebra"]
    # the steps sit between the person's message and the reply they led to
    order = pg.eval_on_selector("#detail .turn", "t => [...t.children].map(c => c.className)")
    assert order.index("msg user") < order.index("strategy") < order.index("msg assistant")
    assert "model text #3 zebra" in pg.text_content("#detail .turn .msg.assistant")
    p.clean()
