import numpy as np
import torch

from aloe_bench.models.backends.sampling import PerRowSampler, RowSampling


def _draw(logits: torch.Tensor, rows: list[RowSampling], step: int = 0) -> torch.Tensor:
    sampler = PerRowSampler(rows, prompt_length=5)
    ids = torch.zeros((len(rows), 5 + step), dtype=torch.long)
    return sampler(ids, logits.clone()).argmax(-1)


def test_samples_follow_softmax_of_logits_over_temperature():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    n = 4000
    rows = [RowSampling(temperature=1.0, seed=s) for s in range(n)]
    picks = _draw(logits.repeat(n, 1), rows).numpy()
    freq = np.bincount(picks, minlength=4) / n
    expected = torch.softmax(logits, -1).numpy()
    assert np.abs(freq - expected).max() < 0.03


def test_row_outcome_depends_on_its_seed_not_on_the_batch():
    torch.manual_seed(0)
    logits = torch.randn(6, 50)
    rows = [RowSampling(temperature=0.9, top_p=0.95, seed=100 + i) for i in range(6)]
    together = _draw(logits, rows, step=3)
    alone = torch.stack([_draw(logits[i : i + 1], [rows[i]], step=3)[0] for i in range(6)])
    shuffled_order = [5, 2, 0, 4, 1, 3]
    shuffled = _draw(logits[shuffled_order], [rows[i] for i in shuffled_order], step=3)
    assert together.tolist() == alone.tolist()
    assert shuffled.tolist() == together[shuffled_order].tolist()


def test_greedy_rows_are_untouched_and_top_p_truncates():
    logits = torch.tensor([[0.0, 3.0, 1.0]] * 3)
    # at temperature 5 the probabilities are about [0.25, 0.45, 0.30]: top_p 0.4 keeps only the top
    # token, top_p 0.6 keeps the top two (the mass before the second, 0.45, is below 0.6)
    rows = [RowSampling(temperature=0.0), RowSampling(temperature=5.0, top_p=0.4, seed=3),
            RowSampling(temperature=5.0, top_p=0.6, seed=4)]  # fmt: skip
    third_row = set()
    for step in range(40):
        greedy, top_only, top_two = _draw(logits, rows, step=step).tolist()
        assert greedy == 1 and top_only == 1
        third_row.add(top_two)
    assert third_row == {1, 2}
