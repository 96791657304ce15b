"""Seeded sampling whose outcome for a row depends on that row's seed alone, not on the batch.

transformers samples a whole batch from one random stream, so a conversation's reply would change
with whichever other conversations happened to share its batch (and a resumed run would diverge).
Here each row draws Gumbel noise from a counter-based hash of (its seed, decoding step, token id):
`argmax(logits / T + gumbel)` is an exact sample from softmax(logits / T), greedy decoding then picks
it, and the same seed gives the same reply in any batch, like an API's `seed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class RowSampling:
    """Sampling for one row; temperature 0 (or None with do_sample off) means greedy."""

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # A 32-bit integer hash (lowbias32), computed in int64 so overflow is explicit masking.
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


class PerRowSampler:
    """A logits processor for `generate(do_sample=False, logits_processor=[...])`."""

    def __init__(self, rows: list[RowSampling], prompt_length: int):
        self.rows = rows
        self.prompt_length = prompt_length
        device = "cpu"
        self._temps = torch.tensor([max(r.temperature, 1e-6) for r in rows], device=device)
        self._top_p = torch.tensor([r.top_p for r in rows], device=device)
        self._top_k = [r.top_k for r in rows]
        self._seeds = torch.tensor([r.seed & _MASK32 for r in rows], dtype=torch.int64, device=device)
        self._sampled = torch.tensor([not r.greedy for r in rows], device=device)
        self.any_sampled = bool(self._sampled.any())

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return self.apply(scores, input_ids.shape[1] - self.prompt_length)

    def apply(self, scores: torch.Tensor, step: int) -> torch.Tensor:
        """Scores whose argmax is each row's choice at decoding step `step` (0 = first new token)."""
        if not self.any_sampled:
            return scores
        device = scores.device
        vocab = scores.shape[-1]
        logits = scores / self._temps.to(device)[:, None]
        logits = self._filter_top_k(logits)
        logits = self._filter_top_p(logits, self._top_p.to(device))
        row_key = _mix32(
            self._seeds.to(device) * 0x9E3779B1 + _mix32(torch.tensor(step, device=device) + 0x632BE5AB)
        )
        token_ids = torch.arange(vocab, device=device, dtype=torch.int64)
        bits = _mix32(row_key[:, None] ^ _mix32(token_ids[None, :] * 0x85EBCA6B + 0x27D4EB2F))
        uniform = (bits.to(torch.float64) + 0.5) / 4294967296.0
        gumbel = (-torch.log(-torch.log(uniform))).to(logits.dtype)
        sampled = logits + gumbel
        return torch.where(self._sampled.to(device)[:, None], sampled, scores)

    def _filter_top_k(self, logits: torch.Tensor) -> torch.Tensor:
        for i, k in enumerate(self._top_k):
            if 0 < k < logits.shape[-1]:
                kth = torch.topk(logits[i], k).values[-1]
                logits[i] = logits[i].masked_fill(logits[i] < kth, float("-inf"))
        return logits

    @staticmethod
    def _filter_top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
        if bool((top_p >= 1.0).all()):
            return logits
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the top token always stays).
        mass_before = torch.cumsum(probs, dim=-1) - probs
        drop_sorted = mass_before >= top_p[:, None]
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        return logits.masked_fill(drop, float("-inf"))
