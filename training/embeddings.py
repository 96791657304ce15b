"""Moved to `aloe_bench.models.embeddings` (the benchmark's simulator audit uses the same embedders,
and the benchmark does not import the training package); importable from here as before."""

import sys

from aloe_bench.models import embeddings
from aloe_bench.models.embeddings import (
    MINILM_PACKAGE,
    ORIGINAL_MODEL,
    Embedder,
    PackagedMiniLMEmbedder,
    SentenceTransformerEmbedder,
    TfidfEmbedder,
    get_embedder,
    packaged_minilm_dir,
    select_novel,
)

__all__ = [
    "MINILM_PACKAGE",
    "ORIGINAL_MODEL",
    "Embedder",
    "PackagedMiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "TfidfEmbedder",
    "get_embedder",
    "packaged_minilm_dir",
    "select_novel",
]

sys.modules[__name__] = embeddings  # one module: a patch through either name reaches both
