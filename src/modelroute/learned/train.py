"""Train and compare scorers on an outcome set, calibrate the chosen one, write the file.

Every kind asked for is fitted on the train split and measured on the validation split: its
predictions' mean squared error, and the route's quality and cost at the threshold and at the
lambda calibrated to the target (both rules, ``calibrate.py``). The kind kept is the cheapest
one that meets the target under the rule asked for (the highest quality when none does); its
threshold and lambda go into the file, so a policy may use either rule; the comparison goes
into the file's header.
"""

from __future__ import annotations

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
    """The scorer's predictions prompt by prompt, exactly as at serving time."""
    scorer = fitted.scorer
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
) -> Trained:
    if rule not in RULES:
        raise ValueError(f"rule is one of {', '.join(RULES)}, not {rule!r}")
    split = data.split(seed)
    fit_set, val = data.subset(split == "train"), data.subset(split == "validation")
    if len(fit_set.ids) < 10 or len(val.ids) < 10:
        raise ValueError(
            f"too few prompts to train ({len(fit_set.ids)}) and validate ({len(val.ids)})"
        )
    features = HashedNgrams(DIM)
    idf = idf_of([features.counts(t) for t in fit_set.texts], DIM)
    x, xv = matrix(fit_set.texts, features, idf), matrix(val.texts, features, idf)
    order = np.argsort(np.nanmean(fit_set.cost, axis=0), kind="stable")
    trials: dict[str, Trial] = {}
    for kind in kinds:
        if kind == "knn":
            fitted = fit_knn(data.models, features, idf, x, fit_set.score, xv, val.score)
        elif kind == "category":
            fitted = fit_category(data.models, fit_set.categories, fit_set.score)
        else:
            fitted = fit_projected(
                kind, data.models, features, idf, x, fit_set.score, xv, val.score, seed
            )
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
        "features": {"kind": "hashed_word_ngrams", "dim": DIM, "ngrams": features.ngrams},
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


def write(trained: Trained, out: str | Path) -> str:
    return save_router(out, trained.header, trained.chosen.fitted.arrays)
