"""The runtime scorers: a prompt's predicted score per model, with numpy only.

Each kind reads its arrays from a router file (``format.py``); fitting lives in ``fit.py``.

- ``knn``: the k most similar training prompts (cosine over hashed TF-IDF), their scores
  averaged per model, weighted by similarity.
- ``linear``: one logistic regression per model over the prompt's projected features.
- ``mf``: matrix factorisation: prompt and model embeddings whose product predicts the score
  (RouteLLM's "mf" router over the same projected features).
- ``category``: each model's mean score in the prompt's category (the request's task label);
  the overall mean when the category is unknown. The baseline the others must beat.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from modelroute.learned.features import HashedNgrams

F32 = npt.NDArray[np.float32]
KINDS = ("knn", "linear", "mf", "category")


def _sigmoid(x: npt.NDArray[np.floating[Any]]) -> F32:
    out: F32 = (1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))).astype(np.float32)
    return out


class BaseScorer:
    kind = ""

    def __init__(self, models: tuple[str, ...]) -> None:
        self._models = models

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def predict(self, text: str, task: str | None = None) -> F32:
        raise NotImplementedError

    def scores(self, text: str, task: str | None = None) -> Mapping[str, float]:
        values = self.predict(text, task)
        return MappingProxyType(dict(zip(self._models, values.tolist(), strict=True)))


class TextScorer(BaseScorer):
    def __init__(self, models: tuple[str, ...], features: HashedNgrams, idf: F32) -> None:
        super().__init__(models)
        self.features, self.idf = features, idf

    def vector(self, text: str) -> tuple[npt.NDArray[np.int64], F32]:
        return self.features.vector(text, self.idf)


class KnnScorer(TextScorer):
    kind = "knn"

    def __init__(
        self,
        models: tuple[str, ...],
        features: HashedNgrams,
        idf: F32,
        by_bucket: Any,  # scipy CSR matrix, dim x prompts: training prompts by bucket
        y: F32,  # prompts x models, NaN where a model has no outcome
        k: int,
        prior: F32,
    ) -> None:
        super().__init__(models, features, idf)
        self.by_bucket, self.k, self.prior = by_bucket, k, prior
        self.known = ~np.isnan(y)
        self.y = np.nan_to_num(y)

    def predict(self, text: str, task: str | None = None) -> F32:
        index, values = self.vector(text)
        if len(index) == 0:
            return self.prior
        rows = self.by_bucket[index]  # nnz x prompts
        sims = np.asarray(rows.T @ values).ravel()
        k = min(self.k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        weights = np.maximum(sims[top], 0.0) + 1e-6
        known = self.known[top]
        total = weights @ known
        mean = (weights @ self.y[top]) / np.maximum(total, 1e-12)
        # One pseudo-observation of the model's overall mean keeps thin neighbourhoods sane.
        shrunk = (mean * total + self.prior * weights.mean()) / (total + weights.mean())
        out: F32 = shrunk.astype(np.float32)
        return out


class ProjectedScorer(TextScorer):
    """Prompt -> dense features ``z`` (the hashed TF-IDF vector times a fitted projection)."""

    def __init__(self, models: tuple[str, ...], features: HashedNgrams, idf: F32, proj: F32):
        super().__init__(models, features, idf)
        self.proj = proj

    def embed(self, text: str) -> F32:
        index, values = self.vector(text)
        if len(index) == 0:
            return np.zeros(self.proj.shape[1], np.float32)
        out: F32 = values @ self.proj[index]
        return out


class LinearScorer(ProjectedScorer):
    kind = "linear"

    def __init__(
        self, models: tuple[str, ...], features: HashedNgrams, idf: F32, proj: F32, w: F32, b: F32
    ) -> None:
        super().__init__(models, features, idf, proj)
        self.w, self.b = w, b  # r x models, models

    def predict(self, text: str, task: str | None = None) -> F32:
        return _sigmoid(self.embed(text) @ self.w + self.b)


class MfScorer(ProjectedScorer):
    kind = "mf"

    def __init__(
        self,
        models: tuple[str, ...],
        features: HashedNgrams,
        idf: F32,
        proj: F32,
        u: F32,
        v: F32,
        b: F32,
    ) -> None:
        super().__init__(models, features, idf, proj)
        self.u, self.v, self.b = u, v, b  # r x d, models x d, models

    def predict(self, text: str, task: str | None = None) -> F32:
        return _sigmoid((self.embed(text) @ self.u) @ self.v.T + self.b)


class CategoryScorer(BaseScorer):
    kind = "category"

    def __init__(
        self, models: tuple[str, ...], categories: tuple[str, ...], table: F32, prior: F32
    ) -> None:
        super().__init__(models)
        self.rows = {name: i for i, name in enumerate(categories)}
        self.table, self.prior = table, prior

    def predict(self, text: str, task: str | None = None) -> F32:
        row = self.rows.get(task) if task is not None else None
        return self.prior if row is None else self.table[row]
