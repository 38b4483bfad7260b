"""Train and compare scorers on an outcome set, calibrate the chosen one, write the file.

Every kind asked for is fitted on the train split and measured on the validation split: its
predictions' mean squared error, and the route's quality and cost at the threshold and at the
lambda calibrated to the target (both rules, ``calibrate.py``). The kind kept is the cheapest
one that meets the target under the rule asked for (the highest quality when none does); its
threshold and lambda go into the file, so a policy may use either rule; the comparison goes
into the file's header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelroute.learned.calibrate import Calibration, calibrate, calibrate_lambda
from modelroute.learned.data import OutcomeSet
from modelroute.learned.features import HashedNgrams
from modelroute.learned.fit import (
    DIM,
    Fitted,
    fit_category,
    fit_dense,
    fit_knn,
    fit_projected,
    idf_of,
    matrix,
)
from modelroute.learned.format import save_router
from modelroute.learned.scorers import KINDS

RULES = ("threshold", "score_minus_cost")


@dataclass
class Trial:
    fitted: Fitted
    calibration: Calibration  # under the rule the kind was chosen by
    mse: float
    predictions: np.ndarray[Any, Any]
    threshold: Calibration  # each rule's calibration
    lam: Calibration


@dataclass
class Trained:
    chosen: Trial
    trials: dict[str, Trial]
    header: dict[str, Any]
    train_prompts: int
    validation_prompts: int


def _predict(fitted: Fitted, data: OutcomeSet) -> np.ndarray[Any, Any]:
    """The scorer's predictions prompt by prompt, exactly as at serving time (an embedding
    scorer's in one batch: the same model, batched)."""
    scorer = fitted.scorer
    many = getattr(scorer, "predict_many", None)
    if many is not None:
        return np.asarray(many(data.texts), dtype=np.float64)
    return np.array(
        [scorer.predict(t, c) for t, c in zip(data.texts, data.categories, strict=True)],
        dtype=np.float64,
    )


def _mse(pred: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> float:
    mask = ~np.isnan(y)
    return float(np.mean((pred[mask] - y[mask]) ** 2))


def train(
    data: OutcomeSet,
    kinds: tuple[str, ...] = KINDS,
    target: float = 0.95,
    seed: int = 0,
    source: str = "",
    rule: str = "threshold",
    features: str = "hashed",
) -> Trained:
    """``features``: ``hashed`` (word n-grams, numpy only) or ``embedding`` (a sentence
    embedding model, ``embed.py``: needs the ``embed`` extra)."""
    if rule not in RULES:
        raise ValueError(f"rule is one of {', '.join(RULES)}, not {rule!r}")
    if features not in FEATURES:
        raise ValueError(f"features are one of {', '.join(FEATURES)}, not {features!r}")
    split = data.split(seed)
    fit_set, val = data.subset(split == "train"), data.subset(split == "validation")
    if len(fit_set.ids) < 10 or len(val.ids) < 10:
        raise ValueError(
            f"too few prompts to train ({len(fit_set.ids)}) and validate ({len(val.ids)})"
        )
    fit, features_header = _fitter(features, data.models, fit_set, val, seed)
    order = np.argsort(np.nanmean(fit_set.cost, axis=0), kind="stable")
    trials: dict[str, Trial] = {}
    for kind in kinds:
        fitted = fit(kind)
        pred = _predict(fitted, val)
        by_t = calibrate(pred, val.score, val.cost, order, data.models, target)
        by_l = calibrate_lambda(pred, val.score, val.cost, order, data.models, target)
        chosen_cal = by_l if rule == "score_minus_cost" else by_t
        trials[kind] = Trial(fitted, chosen_cal, _mse(pred, val.score), pred, by_t, by_l)
    met = [t for t in trials.values() if t.calibration.met]
    chosen = (
        min(met, key=lambda t: t.calibration.cost)
        if met
        else max(trials.values(), key=lambda t: t.calibration.quality)
    )
    header = {
        "kind": chosen.fitted.kind,
        "models": list(data.models),
        "features": features_header,
        "params": chosen.fitted.params,
        "threshold": chosen.threshold.threshold,
        "lambda": chosen.lam.lam,
        "rule": rule,
        "target": target,
        "target_quality": chosen.calibration.target_quality,
        "cost_order": [data.models[i] for i in order],
        "validation": {
            kind: {"mse": t.mse, **t.threshold.to_dict(), "score_minus_cost": t.lam.to_dict()}
            for kind, t in trials.items()
        },
        "training": {
            "outcomes": source,
            "data_hash": data.data_hash,
            "seed": seed,
            "train_prompts": len(fit_set.ids),
            "validation_prompts": len(val.ids),
            "split": "dataset split column" if any(data.splits) else "seeded 60/20/20",
        },
    }
    return Trained(chosen, trials, header, len(fit_set.ids), len(val.ids))


FEATURES = ("hashed", "embedding")


def _fitter(
    features: str, models: tuple[str, ...], fit_set: OutcomeSet, val: OutcomeSet, seed: int
) -> tuple[Callable[[str], Fitted], dict[str, Any]]:
    """kind -> the kind fitted on ``fit_set`` (tuned on ``val``) over ``features``, and the
    features' part of the file's header."""
    y, yv = fit_set.score, val.score

    def category() -> Fitted:
        return fit_category(models, fit_set.categories, y)

    if features == "embedding":
        from modelroute.learned.embed import Embedder

        embedder = Embedder()
        z = embedder.encode(fit_set.texts).astype(np.float64)
        zv = embedder.encode(val.texts).astype(np.float64)

        def dense(kind: str) -> Fitted:
            if kind == "category":
                return category()
            return fit_dense(kind, models, embedder, z, y, zv, yv, seed)

        return dense, {"kind": "embedding", "model": embedder.name, "dim": embedder.dim}
    hashed = HashedNgrams(DIM)
    idf = idf_of([hashed.counts(t) for t in fit_set.texts], DIM)
    x, xv = matrix(fit_set.texts, hashed, idf), matrix(val.texts, hashed, idf)

    def sparse(kind: str) -> Fitted:
        if kind == "knn":
            return fit_knn(models, hashed, idf, x, y, xv, yv)
        if kind == "category":
            return category()
        return fit_projected(kind, models, hashed, idf, x, y, xv, yv, seed)

    return sparse, {"kind": "hashed_word_ngrams", "dim": DIM, "ngrams": hashed.ngrams}


def write(trained: Trained, out: str | Path) -> str:
    return save_router(out, trained.header, trained.chosen.fitted.arrays)
