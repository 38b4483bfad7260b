"""Fitting the scorers (``modelroute train``) with numpy and scipy only.

Prompts are featurised as at serving time (``features.py``); ``linear`` and ``mf`` read a
dense projection of those vectors (a truncated SVD of the training prompts), fitted by
L-BFGS on the masked binary cross-entropy of the 0/1 (or [0, 1]) scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from modelroute.learned.features import HashedNgrams
from modelroute.learned.scorers import (
    BaseScorer,
    CategoryScorer,
    KnnScorer,
    LinearScorer,
    MfScorer,
)

F64 = npt.NDArray[np.float64]
DIM = 2**15
RANK = 64  # the projection's dimension
MF_DIM = 16  # the embeddings' dimension in mf
K_CHOICES = (5, 10, 20, 40, 80)


@dataclass
class Fitted:
    kind: str
    scorer: BaseScorer
    arrays: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)


def idf_of(counts: list[dict[int, int]], dim: int) -> npt.NDArray[np.float32]:
    df = np.zeros(dim)
    for c in counts:
        df[list(c)] += 1
    return (np.log((1 + len(counts)) / (1 + df)) + 1).astype(np.float32)


def matrix(texts: Sequence[str], features: HashedNgrams, idf: npt.NDArray[np.float32]) -> Any:
    """The prompts' vectors as a CSR matrix, prompts x dim (rows L2-normalised)."""
    indptr, indices, data = [0], [], []
    for text in texts:
        index, values = features.vector(text, idf)
        indices.append(index)
        data.append(values)
        indptr.append(indptr[-1] + len(index))
    cat = np.concatenate
    return csr_matrix(
        (cat(data) if data else [], cat(indices) if indices else [], indptr),
        shape=(len(texts), features.dim),
        dtype=np.float32,
    )


def _knn_predict(sims: F64, y: F64, known: F64, prior: F64, k: int) -> F64:
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    w = np.maximum(np.take_along_axis(sims, top, 1), 0.0) + 1e-6
    total = np.einsum("nk,nkm->nm", w, known[top])
    mean = np.einsum("nk,nkm->nm", w, y[top]) / np.maximum(total, 1e-12)
    wm = w.mean(axis=1, keepdims=True)
    out: F64 = (mean * total + prior * wm) / (total + wm)
    return out


def fit_knn(
    models: tuple[str, ...], features: HashedNgrams, idf: Any, x: Any, y: F64, xv: Any, yv: F64
) -> Fitted:
    known = (~np.isnan(y)).astype(float)
    y0 = np.nan_to_num(y)
    prior = np.nanmean(y, axis=0)
    sims = (xv @ x.T).toarray()
    mask = ~np.isnan(yv)
    best_k, best_loss = K_CHOICES[0], np.inf
    for k in K_CHOICES:
        if k > x.shape[0]:
            break
        p = _knn_predict(sims, y0, known, prior, k)
        loss = float(np.mean((p[mask] - yv[mask]) ** 2))
        if loss < best_loss:
            best_k, best_loss = k, loss
    by_bucket = x.T.tocsr().astype(np.float32)
    arrays = {
        "idf": idf,
        "x_data": by_bucket.data,
        "x_indices": by_bucket.indices.astype(np.int32),
        "x_indptr": by_bucket.indptr.astype(np.int64),
        "y": y.astype(np.float32),
        "prior": prior.astype(np.float32),
    }
    scorer = KnnScorer(
        models, features, idf, by_bucket, y.astype(np.float32), best_k,
        prior.astype(np.float32),
    )  # fmt: skip
    return Fitted("knn", scorer, arrays, {"k": best_k})


def projection(x: Any, rank: int, seed: int) -> npt.NDArray[np.float32]:
    """dim x rank: the training prompts' top singular directions, scaled so that projected
    features have about unit variance."""
    rank = min(rank, min(x.shape) - 1)
    v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
    _, s, vt = svds(x.astype(np.float64), k=rank, v0=v0)
    scale = np.maximum(s, 1e-9) / np.sqrt(x.shape[0])
    out: npt.NDArray[np.float32] = (vt.T / scale).astype(np.float32)
    return out


def _bce(s: F64, y: F64, mask: F64) -> tuple[float, F64]:
    p = 1.0 / (1.0 + np.exp(-np.clip(s, -30, 30)))
    n = max(mask.sum(), 1.0)
    eps = 1e-9
    loss = -(mask * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum() / n
    return float(loss), mask * (p - y) / n


def fit_linear(z: F64, y: F64, l2: float) -> tuple[F64, F64]:
    r, m = z.shape[1], y.shape[1]
    mask, y0 = (~np.isnan(y)).astype(float), np.nan_to_num(y)

    def f(theta: F64) -> tuple[float, F64]:
        w, b = theta[: r * m].reshape(r, m), theta[r * m :]
        loss, g = _bce(z @ w + b, y0, mask)
        gw = z.T @ g + l2 * w
        return loss + 0.5 * l2 * float((w * w).sum()), np.concatenate([gw.ravel(), g.sum(0)])

    prior = np.clip(np.nanmean(y, axis=0), 0.01, 0.99)
    theta0 = np.concatenate([np.zeros(r * m), np.log(prior / (1 - prior))])
    res = minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[: r * m].reshape(r, m), res.x[r * m :]


def fit_mf(z: F64, y: F64, l2: float, d: int, seed: int) -> tuple[F64, F64, F64]:
    r, m = z.shape[1], y.shape[1]
    mask, y0 = (~np.isnan(y)).astype(float), np.nan_to_num(y)
    sizes = (r * d, m * d)

    def f(theta: F64) -> tuple[float, F64]:
        u = theta[: sizes[0]].reshape(r, d)
        v = theta[sizes[0] : sizes[0] + sizes[1]].reshape(m, d)
        b = theta[sum(sizes) :]
        h = z @ u
        loss, g = _bce(h @ v.T + b, y0, mask)
        gu = z.T @ (g @ v) + l2 * u
        gv = g.T @ h + l2 * v
        reg = 0.5 * l2 * float((u * u).sum() + (v * v).sum())
        return loss + reg, np.concatenate([gu.ravel(), gv.ravel(), g.sum(0)])

    rng = np.random.default_rng(seed)
    prior = np.clip(np.nanmean(y, axis=0), 0.01, 0.99)
    theta0 = np.concatenate([rng.normal(0, 0.1, sum(sizes)), np.log(prior / (1 - prior))])
    res = minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    t = res.x
    return (
        t[: sizes[0]].reshape(r, d),
        t[sizes[0] : sizes[0] + sizes[1]].reshape(m, d),
        t[sum(sizes) :],
    )


def _val_loss(p: F64, y: F64) -> float:
    mask = ~np.isnan(y)
    return float(np.mean((p[mask] - y[mask]) ** 2))


def fit_projected(
    kind: str,
    models: tuple[str, ...],
    features: HashedNgrams,
    idf: Any,
    x: Any,
    y: F64,
    xv: Any,
    yv: F64,
    seed: int,
) -> Fitted:
    proj = projection(x, RANK, seed)
    z, zv = np.asarray(x @ proj, np.float64), np.asarray(xv @ proj, np.float64)
    names = models
    best: tuple[float, Fitted] | None = None
    for l2 in (1e-4, 1e-3, 1e-2):
        if kind == "linear":
            w, b = fit_linear(z, y, l2)
            pv = 1 / (1 + np.exp(-(zv @ w + b)))
            arrays = {
                "idf": idf,
                "proj": proj,
                "w": w.astype(np.float32),
                "b": b.astype(np.float32),
            }
            scorer: BaseScorer = LinearScorer(names, features, idf, proj, arrays["w"], arrays["b"])
        else:
            u, v, b = fit_mf(z, y, l2, MF_DIM, seed)
            pv = 1 / (1 + np.exp(-((zv @ u) @ v.T + b)))
            arrays = {
                "idf": idf, "proj": proj, "u": u.astype(np.float32),
                "v": v.astype(np.float32), "b": b.astype(np.float32),
            }  # fmt: skip
            scorer = MfScorer(names, features, idf, proj, arrays["u"], arrays["v"], arrays["b"])
        loss = _val_loss(pv, yv)
        if best is None or loss < best[0]:
            params = {"rank": proj.shape[1], "l2": l2} | ({"dim": MF_DIM} if kind == "mf" else {})
            best = (loss, Fitted(kind, scorer, arrays, params))
    assert best is not None
    return best[1]


def fit_category(
    models: tuple[str, ...], categories: Sequence[str | None], y: F64, shrink: float = 5.0
) -> Fitted:
    prior = np.nanmean(y, axis=0)
    names = sorted({c for c in categories if c is not None})
    table = np.zeros((len(names), y.shape[1]))
    cats = np.array([c if c is not None else "" for c in categories])
    for i, name in enumerate(names):
        rows = y[cats == name]
        n = (~np.isnan(rows)).sum(axis=0)
        table[i] = (np.nansum(rows, axis=0) + shrink * prior) / (n + shrink)
    arrays = {"table": table.astype(np.float32), "prior": prior.astype(np.float32)}
    scorer = CategoryScorer(models, tuple(names), arrays["table"], arrays["prior"])
    return Fitted("category", scorer, arrays, {"categories": names})


def fit_dense(
    kind: str,
    models: tuple[str, ...],
    embedder: Any,  # embed.Embedder
    z: F64,
    y: F64,
    zv: F64,
    yv: F64,
    seed: int,
) -> Fitted:
    """``knn``, ``linear`` or ``mf`` over sentence embeddings (``embed.py``): the same fits as
    over hashed features, with the embeddings in place of the projection."""
    from modelroute.learned.embed import DenseScorer

    prior = np.nanmean(y, axis=0)
    mask = ~np.isnan(yv)
    best: tuple[float, Fitted] | None = None
    if kind == "knn":
        sims, known, y0 = zv @ z.T, (~np.isnan(y)).astype(float), np.nan_to_num(y)
        for k in (k for k in K_CHOICES if k <= len(z)):
            p = _knn_predict(sims, y0, known, prior, k)
            arrays = {"x": z.astype(np.float32), "y": y.astype(np.float32),
                      "prior": prior.astype(np.float32)}  # fmt: skip
            loss = float(np.mean((p[mask] - yv[mask]) ** 2))
            scorer = DenseScorer(kind, models, embedder, arrays, k)
            if best is None or loss < best[0]:
                best = (loss, Fitted(kind, scorer, arrays, {"k": k}))
    for l2 in (1e-4, 1e-3, 1e-2) if kind != "knn" else ():
        if kind == "linear":
            w, b = fit_linear(z, y, l2)
            arrays = {"w": w.astype(np.float32), "b": b.astype(np.float32)}
        else:
            u, v, b = fit_mf(z, y, l2, MF_DIM, seed)
            arrays = {"u": u.astype(np.float32), "v": v.astype(np.float32),
                      "b": b.astype(np.float32)}  # fmt: skip
        scorer = DenseScorer(kind, models, embedder, arrays)
        loss = _val_loss(scorer.head(zv.astype(np.float32)).astype(np.float64), yv)
        if best is None or loss < best[0]:
            params = {"l2": l2} | ({"dim": MF_DIM} if kind == "mf" else {})
            best = (loss, Fitted(kind, scorer, arrays, params))
    assert best is not None
    return best[1]
