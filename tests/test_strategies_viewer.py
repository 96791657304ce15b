"""The report page shows a strategy's intermediate texts above the reply (real headless Chromium)."""

from __future__ import annotations

from test_strategies import NumberedModel, _run
from test_viewer_browser import Page, browser  # noqa: F401  (the module's browser fixture)

from aloe_bench.reports.viewer import build_report
from aloe_bench.testing.fake_openai import FakeOpenAIServer


def test_draft_and_critique_are_shown_above_the_reply(browser, cli, tmp_path):  # noqa: F811
    with NumberedModel() as model, FakeOpenAIServer() as other:
        assert _run(cli, tmp_path, "self-critic", model, other, limit=1)[0] == 0
    page_file = build_report([tmp_path / "run"], tmp_path / "page.html")
    p = Page(browser, page_file)
    pg = p.page
    pg.click("#conv-table tr.conv >> nth=0")
    blocks = pg.locator("#detail details.strategy")
    assert blocks.count() == 2  # one per turn
    assert "self-critic: 3 model call(s)" in blocks.nth(0).text_content()
    kinds = pg.eval_on_selector_all("#detail pre.strategy-step", "es => es.map(e => e.dataset.kind)")
    assert kinds == ["draft", "critique", "draft", "critique"]
    steps = pg.eval_on_selector_all("#detail pre.strategy-step", "es => es.map(e => e.textContent)")
    assert steps[0] == "model text #1 zebra" and steps[1] == "model text #2 zebra"
    # the steps come before the reply they led to, which is shown as the model's reply
    order = pg.eval_on_selector("#detail .turn", "t => [...t.children].map(c => c.className)")
    assert order.index("msg user") < order.index("strategy") < order.index("msg assistant")
    assert "model text #3 zebra" in pg.text_content("#detail .turn .msg.assistant")
    p.clean()
