"""A task from scratch: short answers. Its own questions, one reply each, scored by a rule (5 when the
reply keeps within `max_words` words, else 1), with its own metric `short_rate` beside the curve."""

from dataclasses import asdict, dataclass

from aloe_bench.tasks import api  # what a task module imports: the engine's contract and parts

TEXTS = ["What is the capital of France?", "Name a colour.", "How many legs has a spider?", "Is ice cold?"]
SETTINGS = {"max_words": int, "limit": int, "seed": int}


@dataclass(frozen=True)
class Question:
    id: str
    text: str

    def to_payload(self):  # what the lm-eval bridge carries; `item_from_payload` reads it back
        return asdict(self)


@dataclass
class Config(api.TaskConfig):
    max_words: int = 12


def short_metrics(samples, settings):  # a metric: scored samples in, named figures out
    scored = [s.value(0) for s in samples if s.status == "complete" and s.value(0) == s.value(0)]
    rate = sum(v == 5 for v in scored) / len(scored) if scored else None
    return {**api.alignment_curve(samples, settings), "short_rate": rate, "short_n": len(scored)}


class ShortScorer:  # a rule, no model call: 5 when the reply has at most `max_words` words, else 1
    def __init__(self, max_words, hooks):
        self.max_words, self.judged = max_words, hooks.judged

    def submit(self, conv, index):
        turn, words = conv.turns[index], len((conv.turns[index].assistant or "").split())
        turn.score, turn.judge_raw, turn.judged = 5 if words <= self.max_words else 1, f"{words} words", True
        self.judged(conv, index)

    async def drain(self): ...

    async def cancel(self): ...


def setup(config, items, engine, out, backends=None) -> api.TaskRun:
    model = api.Role(
        "model", api.role_backends(engine.pool, {"model": config.model}, 8, backends)["model"], engine.cache
    )
    ask = {q.id: q.text for q in items}
    return api.TaskRun(api.run_header(config, {"model": model}, {}, {"set": "short-answers", "count": len(items)}),
        [api.ConversationRecord(q.id, {"profile": q.text}) for q in items], {"model": model}, turns=1,
        seed=config.seed, n_bootstrap=200, scorer=lambda hooks: ShortScorer(config.max_words, hooks),
        solver=lambda hooks, scorer: api.SingleReply(model, config.model.settings(32), config.seed,
            lambda c: [{"role": "user", "content": ask[c.id]}], lambda c: ask[c.id], scorer.submit,
            hooks.turn_done, hooks.failed), sample_metrics=short_metrics, journaled=True)  # fmt: skip


def dataset(config):
    return [Question(f"q{i}", text) for i, text in enumerate(TEXTS)][: config.limit]


def make_config(name, settings, flags, *, model=None, **fields):
    model = model or api.role_config(flags, "model", settings, None)
    return Config(model, task=name, **api.typed_settings(name, settings, flags, SETTINGS), **fields)


TASK = api.Task("short_answers", "Short answers", "question", SETTINGS, frozenset({"model", "max_new_tokens", "cache"}),
    make_config, lambda config, overwrite=False: api.prepare_task(config, dataset(config), setup, overwrite=overwrite),
    dataset, setup, item_from_payload=lambda data: Question(**data), headline=("short", "short_rate"))  # fmt: skip
