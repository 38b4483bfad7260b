"""The router file: a ``.npz`` of plain arrays plus a JSON header. No pickle: loading a policy
never executes code from a file.

The header (array ``header``, UTF-8 JSON bytes) holds::

    format: "modelroute-router"     version: 1
    kind: knn | linear | mf | category
    models: [...]                    the order of every per-model array
    features: {dim, ngrams}          hashed word n-grams (``features.py``)
    params: {...}                    the kind's settings (k for knn, rank for mf)
    threshold, target, target_quality, cost_order
    lambda                           score per USD for ``rule: score_minus_cost`` (optional)
    validation: {...}                metrics measured on the validation split
    training: {outcomes, data_hash, prompts, seed, split}

Arrays by kind: ``idf`` (dim) for the text kinds; knn: ``x_data``, ``x_indices``,
``x_indptr`` (the training prompts' vectors, CSR by bucket), ``y`` (prompts x models, NaN
where unknown), ``prior``; linear: ``proj``, ``w``, ``b``; mf: ``proj``, ``u``, ``v``, ``b``;
category: ``table`` (categories x models), ``prior``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from modelroute.learned.features import HashedNgrams
from modelroute.learned.scorers import (
    KINDS,
    BaseScorer,
    CategoryScorer,
    KnnScorer,
    LinearScorer,
    MfScorer,
)

FORMAT = "modelroute-router"
VERSION = 1
_ARRAYS = {
    "knn": ("idf", "x_data", "x_indices", "x_indptr", "y", "prior"),
    "linear": ("idf", "proj", "w", "b"),
    "mf": ("idf", "proj", "u", "v", "b"),
    "category": ("table", "prior"),
}


class RouterFileError(ValueError):
    """A router file that cannot be used: unreadable, not a router file, or inconsistent."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class LoadedRouter:
    """A router file as read: its header, its scorer and the hash of its bytes."""

    def __init__(
        self, header: dict[str, Any], scorer: BaseScorer, file_hash: str, file: str = ""
    ) -> None:
        self.header, self.scorer, self.file_hash, self.file = header, scorer, file_hash, file

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def models(self) -> tuple[str, ...]:
        return self.scorer.models

    @property
    def threshold(self) -> float:
        return float(self.header["threshold"])

    @property
    def lam(self) -> float | None:
        """The lambda calibrated for ``rule: score_minus_cost`` (score per USD); None in a
        file trained before it was calibrated."""
        value = self.header.get("lambda")
        return float(value) if isinstance(value, int | float) else None

    @property
    def target(self) -> float | None:
        target = self.header.get("target")
        return None if target is None else float(target)


# Over sentence embeddings (``features.kind: embedding``, ``embed.py``): no idf, no projection.
_DENSE_ARRAYS = {"knn": ("x", "y", "prior"), "linear": ("w", "b"), "mf": ("u", "v", "b")}


def _embedded(header: dict[str, Any]) -> bool:
    features = header.get("features")
    return isinstance(features, dict) and features.get("kind") == "embedding"


def save_router(path: str | Path, header: dict[str, Any], arrays: dict[str, Any]) -> str:
    """Write the file; returns the sha256 of its bytes."""
    wanted = (_DENSE_ARRAYS if _embedded(header) else _ARRAYS)[header["kind"]]
    missing = set(wanted) - set(arrays)
    if missing:
        raise ValueError(f"missing arrays for {header['kind']}: {sorted(missing)}")
    full = {"format": FORMAT, "version": VERSION, **header}
    buffer = io.BytesIO()
    blob = np.frombuffer(orjson.dumps(full, option=orjson.OPT_SERIALIZE_NUMPY), np.uint8)
    np.savez_compressed(buffer, header=blob, **arrays)
    data = buffer.getvalue()
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_router(path: str | Path) -> LoadedRouter:
    """Read and check a router file; every problem is a ``RouterFileError`` with a hint."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise RouterFileError(
            "router file not found", "train one: modelroute train --outcomes DIR --out FILE"
        ) from None
    except OSError as exc:
        raise RouterFileError(f"cannot read the router file: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    retrain = "retrain it with modelroute train (the file may be truncated or not a router)"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise RouterFileError(f"not a readable router file ({exc})", retrain) from None
    header = _header(arrays.pop("header", None), retrain)
    return LoadedRouter(header, _scorer(header, arrays), digest, str(path))


def _header(raw: npt.NDArray[Any] | None, retrain: str) -> dict[str, Any]:
    if raw is None or raw.dtype != np.uint8:
        raise RouterFileError("the file has no router header", retrain)
    try:
        header = orjson.loads(raw.tobytes())
    except orjson.JSONDecodeError:
        raise RouterFileError("the router header is not valid JSON", retrain) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RouterFileError(f"not a {FORMAT} file", retrain)
    if header.get("version") != VERSION:
        raise RouterFileError(
            f"router file format version {header.get('version')!r}; this modelroute reads "
            f"version {VERSION}",
            "retrain the router with this version of modelroute",
        )
    if header.get("kind") not in KINDS:
        raise RouterFileError(f"unknown scorer kind {header.get('kind')!r}", retrain)
    models = header.get("models")
    if (
        not isinstance(models, list)
        or len(models) < 2
        or not all(isinstance(m, str) for m in models)
    ):
        raise RouterFileError("the router header lists no models", retrain)
    if not isinstance(header.get("threshold"), int | float):
        raise RouterFileError("the router header has no calibrated threshold", retrain)
    return header


def _need(arrays: dict[str, Any], name: str, shape: tuple[int | None, ...]) -> Any:
    value = arrays.get(name)
    if (
        value is None
        or value.ndim != len(shape)
        or any(w is not None and g != w for g, w in zip(value.shape, shape, strict=False))
        or value.dtype.kind not in "fiu"
    ):
        raise RouterFileError(
            f"array {name!r} is missing or has the wrong shape (want {shape})",
            "retrain the router with modelroute train; the file is inconsistent",
        )
    return value


def _scorer(header: dict[str, Any], arrays: dict[str, Any]) -> BaseScorer:
    models = tuple(header["models"])
    m = len(models)
    kind = header["kind"]
    if kind == "category":
        cats = tuple(str(c) for c in header.get("params", {}).get("categories", []))
        table = _need(arrays, "table", (len(cats), m)).astype(np.float32)
        return CategoryScorer(models, cats, table, _need(arrays, "prior", (m,)).astype(np.float32))
    feats = header.get("features") or {}
    if _embedded(header):
        return _dense(header, arrays, models)
    dim, ngrams = feats.get("dim"), feats.get("ngrams", 2)
    if not isinstance(dim, int) or dim <= 0 or dim & (dim - 1):
        raise RouterFileError("the feature dimension is not a power of two", "retrain the router")
    features = HashedNgrams(dim, int(ngrams))
    idf = _need(arrays, "idf", (dim,)).astype(np.float32)
    if kind == "knn":
        return _knn(header, arrays, models, features, idf)
    proj = _need(arrays, "proj", (dim, None)).astype(np.float32)
    r = proj.shape[1]
    if kind == "linear":
        w = _need(arrays, "w", (r, m)).astype(np.float32)
        return LinearScorer(
            models, features, idf, proj, w, _need(arrays, "b", (m,)).astype(np.float32)
        )
    u = _need(arrays, "u", (r, None)).astype(np.float32)
    v = _need(arrays, "v", (m, u.shape[1])).astype(np.float32)
    return MfScorer(models, features, idf, proj, u, v, _need(arrays, "b", (m,)).astype(np.float32))


def _knn(
    header: dict[str, Any], arrays: dict[str, Any], models: tuple[str, ...],
    features: HashedNgrams, idf: npt.NDArray[np.float32],
) -> KnnScorer:  # fmt: skip
    from scipy.sparse import csr_matrix

    m, dim = len(models), features.dim
    y = _need(arrays, "y", (None, m)).astype(np.float32)
    n = y.shape[0]
    indptr = _need(arrays, "x_indptr", (dim + 1,)).astype(np.int64)
    indices = _need(arrays, "x_indices", (None,)).astype(np.int64)
    data = _need(arrays, "x_data", (len(indices),)).astype(np.float32)
    if indptr[0] != 0 or indptr[-1] != len(indices) or (len(indices) and indices.max() >= n):
        raise RouterFileError("the kNN index is inconsistent", "retrain the router")
    k = header.get("params", {}).get("k", 20)
    if not isinstance(k, int) or k < 1:
        raise RouterFileError(f"kNN's k must be a positive integer, not {k!r}", "retrain")
    by_bucket = csr_matrix((data, indices, indptr), shape=(dim, n))
    prior = _need(arrays, "prior", (m,)).astype(np.float32)
    return KnnScorer(models, features, idf, by_bucket, y, k, prior)


def _dense(header: dict[str, Any], arrays: dict[str, Any], models: tuple[str, ...]) -> BaseScorer:
    """A scorer over sentence embeddings: loads the embedding model (and torch) now."""
    from modelroute.learned.embed import (
        INSTALL,
        MODELS,
        DenseScorer,
        Embedder,
        EmbeddingUnavailable,
    )

    kind, m = header["kind"], len(models)
    name = header["features"].get("model")
    if kind not in _DENSE_ARRAYS:
        raise RouterFileError(f"kind {kind!r} does not read embeddings", "retrain the router")
    if name not in MODELS:
        raise RouterFileError(f"unknown embedding model {name!r}", "retrain the router")
    dim = MODELS[name][1]
    if kind == "knn":
        y = _need(arrays, "y", (None, m)).astype(np.float32)
        got = {
            "x": _need(arrays, "x", (len(y), dim)),
            "y": y,
            "prior": _need(arrays, "prior", (m,)),
        }
    elif kind == "linear":
        got = {"w": _need(arrays, "w", (dim, m)), "b": _need(arrays, "b", (m,))}
    else:
        u = _need(arrays, "u", (dim, None))
        got = {"u": u, "v": _need(arrays, "v", (m, u.shape[1])), "b": _need(arrays, "b", (m,))}
    k = header.get("params", {}).get("k", 20)
    if not isinstance(k, int) or k < 1:
        raise RouterFileError(f"kNN's k must be a positive integer, not {k!r}", "retrain")
    try:
        embedder = Embedder(name)
    except EmbeddingUnavailable as exc:
        raise RouterFileError(str(exc), f"install the embedding extra: {INSTALL}") from None
    typed = {key: value.astype(np.float32) for key, value in got.items()}
    return DenseScorer(kind, models, embedder, typed, k)
