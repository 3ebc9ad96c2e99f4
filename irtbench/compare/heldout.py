r"""One fold's held-out prediction, the two baselines without a model, and the mean over folds.

For each fold the estimator is refitted on the training data (cell folds: the fold's cells
masked, NaN; row folds: the other rows) and the held-out answers are predicted and scored
(:mod:`irtbench.compare.scores`; the rows' skills by :mod:`irtbench.compare.rows`). The
summary gives each score's mean over the folds that were fitted and its SD over folds
(``ddof=1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irtbench.compare.budget import Fitter
from irtbench.compare.scores import scores
from irtbench.metrics import predict
from irtbench.models import get_model
from irtbench.responses import observed_of
from irtbench.scoring import SkillPrior, score

__all__ = ["baseline_folds", "heldout_cells", "heldout_rows", "summary_row"]

#: the predictors without a model, each a row of the summary with model "none"
BASELINES = ("constant", "item-means")


def heldout_cells(fitter: Fitter, name: str, model: str, responses: np.ndarray,
                  folds: np.ndarray, k: int) -> dict[str, float]:
    """Fold ``k`` of cell folds: fitted with the fold's cells masked, which are then
    predicted."""
    held = folds == k
    training = np.where(held, np.nan, responses).astype(np.float32)
    fit = fitter(name, model, training)
    rows, columns = np.nonzero(held)
    p, infinite = predict(get_model(model), fit.skill, fit.items, rows, columns)
    return scores(responses[rows, columns].astype(np.float64), p, infinite)


def heldout_rows(fitter: Fitter, name: str, model: str, responses: np.ndarray,
                 folds: np.ndarray, k: int, scoring: np.ndarray, method: str
                 ) -> dict[str, float]:
    """Fold ``k`` of row folds: items fitted on the other rows; each held-out row scored from
    its ``scoring`` half by ``method`` (``"eap"``, ``"map"`` or ``"ml"``; a model of vector
    skills, the M2PL, by ``"map"`` whatever it is) under the fit's skill distribution
    (:meth:`SkillPrior.of <irtbench.scoring.SkillPrior.of>`) and its other half predicted."""
    train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
    fit = fitter(name, model, responses[train])
    described = get_model(model)
    block = responses[test]
    used = np.where(scoring[test], block, np.nan)
    if len(described.skill_shape(1)) > 1:
        method = "map"
    skill = score(described, fit.items, used, method=method, prior=SkillPrior.of(fit)).skill
    target = observed_of(block) & ~scoring[test]
    rows, columns = np.nonzero(target)
    p, infinite = predict(described, skill, fit.items, rows, columns)
    return scores(block[rows, columns].astype(np.float64), p, infinite)


def baseline_folds(responses: np.ndarray, folds: np.ndarray, split: str, scoring: np.ndarray,
                   n_folds: int) -> list[dict[str, Any]]:
    """The folds of two predictors without a model: the training data's proportion correct
    (``constant``) and each item's (``item-means``)."""
    rows_out = []
    observed = observed_of(responses)
    for k in range(n_folds):
        if split == "cells":
            held = folds == k
            train = observed & ~held
        else:
            held = (folds == k)[:, None] & observed & ~scoring
            train = observed & (folds != k)[:, None]
        rows, columns = np.nonzero(held)
        y = responses[rows, columns].astype(np.float64)
        answers = np.where(train, responses, 0.0)
        overall = answers.sum() / train.sum()
        per_item = (answers.sum(axis=0) + overall) / (train.sum(axis=0) + 1.0)
        none = np.zeros(len(y), dtype=bool)
        for name, p in zip(BASELINES, (np.full(len(y), overall), per_item[columns])):
            rows_out.append({"estimator": name, "model": "none", "fold": k, "status": "ok",
                             **scores(y, p, none)})
    return rows_out


def summary_row(name: str, model: str, fold_rows: list[dict[str, Any]], n_folds: int
                ) -> dict[str, Any]:
    """The scores of one pair over its folds: each one's mean and SD, the counts summed, and a
    status and reason when some folds were not fitted."""
    done = [r for r in fold_rows if r["status"] == "ok"]
    row: dict[str, Any] = {"estimator": name, "model": model, "folds_done": len(done)}
    for metric, column in (("logloss", "heldout_logloss"), ("brier", "brier"), ("auc", "auc")):
        values = np.array([r[metric] for r in done], dtype=np.float64)
        row[column] = float(values.mean()) if len(values) else float("nan")
        row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    row["n_heldout"] = int(sum(r["n_heldout"] for r in done))
    row["n_infinite_predictions"] = int(sum(r["n_infinite_predictions"] for r in done))
    if len(done) < n_folds:
        failed = [r for r in fold_rows if r["status"] != "ok"]
        row["status"] = "partial" if done else (failed[0]["status"] if failed else "skipped")
        row["reason"] = (f"{len(failed)} of {n_folds} fold(s) not fitted: "
                         + (failed[0]["reason"] if failed else "not run"))
    return row
