"""`recall/SPEC`: the person's earlier messages most similar to their latest one are put in front of
the model (one call). Retrieval is lexical (TF-IDF cosine over lower-cased words, computed here, no
model call), so it is deterministic, free, and needs no embedding model: the baseline measures
whether having the right earlier turns in view helps, not the quality of a retriever."""

from __future__ import annotations

import math
import re
from collections import Counter

from aloe_bench.models.backends.base import ChatRequest
from aloe_bench.models.strategies.base import StrategyBackend, Trace, with_system

_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def recall(history: list[str], query: str, top_k: int) -> list[str]:
    """The `top_k` messages of `history` most similar to `query` (TF-IDF cosine; ties and order:
    earlier first), in the order they were said; messages sharing no word with the query are left out."""
    if not history or top_k < 1:
        return []
    docs = [Counter(_words(h)) for h in history]
    q = Counter(_words(query))
    n = len(docs) + 1
    df = Counter(w for d in [*docs, q] for w in d)
    idf = {w: math.log((1 + n) / (1 + c)) + 1 for w, c in df.items()}

    def vec(c: Counter) -> dict[str, float]:
        return {w: tf * idf[w] for w, tf in c.items()}

    qv = vec(q)
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    scored = []
    for i, d in enumerate(docs):
        dv = vec(d)
        dot = sum(v * qv.get(w, 0.0) for w, v in dv.items())
        if dot > 0:
            dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
            scored.append((-dot / (dn * qn), i))
    best = sorted(i for _, i in sorted(scored)[:top_k])
    return [history[i] for i in best]


class RecallBackend(StrategyBackend):
    strategy = provider = "recall"
    prompt_file = "strategy_recall.yaml"

    async def respond(self, request: ChatRequest, trace: Trace, priority: int) -> str:
        users = [m["content"] for m in request.messages if m["role"] == "user"]
        top_k = int(self.prompt.defaults.get("top_k", 3))
        recalled = recall(users[:-1], users[-1] if users else "", top_k)
        trace.add("recalled", recalled)
        if not recalled:  # first turn, or nothing related said before: the plain request
            return await self.call(trace, "reply", request.messages, request.settings, priority)
        note = self.prompt.render(recalled=recalled)[0]["content"]
        return await self.call(
            trace, "reply", with_system(request.messages, note), request.settings, priority
        )
