"""The generate_until interception: ALOE requests go to the ALOE engine, everything else to the model.

`install()` wraps `generate_until` on every lm-eval model class that defines one: the classes already
imported, and (through a wrapper around `lm_eval.api.registry.get_model`) the ones lm-eval imports
lazily later. Methods are looked up on the class, so an LM instance built before `install()` is
covered too; that is why importing the task hooks (which lm-eval does while building the ALOE tasks,
after it built the model) is enough for a plain `lm_eval ... --include_path tasks` run.

Nothing is registered in lm-eval's model registry: registering a model before `lm_eval.models` is
imported hides every built-in model ("Supported model names: <ours>"), and ALOE needs none.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from aloe_bench.integrations.lm_eval.requests import decode_request
from aloe_bench.models.backends.lmeval_backend import PATCH_MARK

log = logging.getLogger("lm_eval.aloe")


def _intercepting(original):
    @functools.wraps(original)
    def generate_until(self, requests, *args, **kwargs):
        decoded = [decode_request(r.args[0], r.args[1] if len(r.args) > 1 else None) for r in requests]
        mine = [i for i, d in enumerate(decoded) if d is not None]
        if not mine:
            return original(self, requests, *args, **kwargs)
        from aloe_bench.integrations.lm_eval.grouped_runs import run_requests

        results: list[Any] = [None] * len(requests)
        others = [i for i, d in enumerate(decoded) if d is None]
        if others:  # other tasks evaluated in the same lm-eval run
            texts = original(self, [requests[i] for i in others], *args, **kwargs)
            for i, text in zip(others, texts, strict=True):
                results[i] = text
        for i, transcript in zip(mine, run_requests(self, [decoded[i] for i in mine]), strict=True):
            results[i] = transcript
        return results

    setattr(generate_until, PATCH_MARK, True)
    return generate_until


def patch_class(cls: type[Any]) -> bool:
    """Wrap `cls.generate_until` if the class defines it itself. Idempotent."""
    fn = cls.__dict__.get("generate_until")
    if fn is None or getattr(fn, PATCH_MARK, False) or getattr(fn, "__isabstractmethod__", False):
        return False
    cls.generate_until = _intercepting(fn)
    return True


def _subclasses(cls: type) -> list[type]:
    seen: list[type] = []
    stack: list[type] = [cls]
    while stack:
        subclasses: list[type] = stack.pop().__subclasses__()
        for sub in subclasses:
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return seen


def install() -> list[str]:
    """Idempotent; returns the classes patched by this call."""
    import lm_eval.api.registry as registry
    from lm_eval.api.model import LM

    from aloe_bench.integrations.lm_eval import quiet

    quiet.install()  # lm-eval warnings that do not apply to these tasks

    patched = [c.__qualname__ for c in _subclasses(LM) if patch_class(c)]
    if not getattr(registry.get_model, PATCH_MARK, False):
        original_get_model = registry.get_model

        @functools.wraps(original_get_model)
        def get_model(model_name):
            cls = original_get_model(model_name)
            for klass in cls.__mro__:
                if isinstance(klass, type) and issubclass(klass, LM):
                    patch_class(klass)
            return cls

        setattr(get_model, PATCH_MARK, True)
        registry.get_model = get_model
    if patched:
        log.debug("ALOE: generate_until intercepted on %s", ", ".join(patched))
    return patched
