r"""Which fit predicts best, and by how much: the InterModel Vigorish of every fit and the one
sentence that ``report.md`` opens with and ``irtbench compare`` prints.

Per fold, each fit's held-out mean log-loss and the ``item-means`` baseline's on the same
held-out answers give the fit's IMV over the baseline (:func:`~irtbench.compare.scores.imv`);
``compare.csv`` holds its mean over the folds (``imv``) and SD over folds (``imv_sd``), and
``imv_to_best``: the best fit's IMV over this one, fold by fold, averaged (0 for the best; how
much more predictable a coin the best one is). The best fit is the one with the lowest mean
held-out log-loss among those that completed every fold (``status`` ok). The next best is
*within the fold-to-fold noise* of it when the mean over folds of their paired per-fold
difference in log-loss is below the SD over folds of that difference (each fold's two fits
predict the same answers, so the pairing removes what the folds share).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irtbench.compare.heldout import BASELINES
from irtbench.compare.scores import imv
from irtbench.models import get_model

__all__ = ["BASELINE", "best_sentence", "with_imv"]

#: the predictor every fit's IMV is taken over
BASELINE = "item-means"


def with_imv(summary: pd.DataFrame, folds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``folds`` with each fold's ``imv`` over :data:`BASELINE`, and ``summary`` with ``imv``,
    ``imv_sd`` and ``imv_to_best`` (module docstring)."""
    folds, summary = folds.copy(), summary.copy()
    if folds.empty or "logloss" not in folds:
        summary[["imv", "imv_sd", "imv_to_best"]] = np.nan
        return summary, folds
    base = folds[folds.estimator == BASELINE].set_index("fold").logloss
    folds["imv"] = imv(folds.fold.map(base).to_numpy(float), folds.logloss.to_numpy(float))
    ok = folds[folds.status == "ok"]
    per_pair = ok.groupby(["estimator", "model"], sort=False).imv
    keys = pd.MultiIndex.from_frame(summary[["estimator", "model"]])
    summary["imv"] = per_pair.mean().reindex(keys).to_numpy()
    summary["imv_sd"] = per_pair.std(ddof=1).reindex(keys).to_numpy()
    summary["imv_to_best"] = np.nan
    best = ranked(summary)
    if best:
        best_folds = fold_losses(ok, *best[0])
        for i, row in summary.iterrows():
            if row.estimator in BASELINES or row.status != "ok":
                continue
            mine = fold_losses(ok, row.estimator, row.model)
            shared = mine.index.intersection(best_folds.index)
            summary.loc[i, "imv_to_best"] = float(np.mean(imv(mine[shared].to_numpy(),
                                                              best_folds[shared].to_numpy())))
    return summary, folds


def ranked(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """The fits that completed every fold, best held-out log-loss first."""
    fitted = summary[~summary.estimator.isin(BASELINES) & (summary.status == "ok")
                     & summary.heldout_logloss.notna()]
    fitted = fitted.sort_values("heldout_logloss", kind="stable")
    return list(zip(fitted.estimator, fitted.model))


def fold_losses(folds: pd.DataFrame, estimator: str, model: str) -> pd.Series:
    """One fit's held-out log-loss by fold (the folds it completed)."""
    mine = folds[(folds.estimator == estimator) & (folds.model == model)]
    return mine.set_index("fold").logloss.astype(float)


def label(estimator: str, model: str) -> str:
    return f"{estimator} {get_model(model).title}"


def best_sentence(summary: pd.DataFrame, folds: pd.DataFrame) -> str:
    """One sentence: the estimator and model with the best held-out log-loss (its IMV over
    :data:`BASELINE`), and whether the next best is within the fold-to-fold noise (module
    docstring: the mean paired difference against its SD over folds)."""
    order = ranked(summary)
    if not order:
        return "No fit completed every fold: no estimator and model can be recommended here."
    table = summary.set_index(["estimator", "model"])
    best = table.loc[order[0]]
    head = (f"Best held-out log-loss: {label(*order[0])} ({best.heldout_logloss:.4f} nats per "
            f"response; IMV over {BASELINE} {best.get('imv', np.nan):+.3f})")
    if len(order) == 1:
        return head + ", the only fit that completed every fold."
    ok = folds[folds.status == "ok"]
    first, second = fold_losses(ok, *order[0]), fold_losses(ok, *order[1])
    shared = first.index.intersection(second.index)
    difference = (second[shared] - first[shared]).to_numpy()
    mean = float(difference.mean())
    noise = float(difference.std(ddof=1)) if len(difference) > 1 else float("nan")
    within = not mean > noise  # NaN noise (one fold): cannot tell them apart
    return (f"{head}; the next best, {label(*order[1])} "
            f"({table.loc[order[1]].heldout_logloss:.4f}), is "
            + ("within" if within else "beyond")
            + f" the fold-to-fold noise: their paired difference, {mean:.4f}, is "
            + ("below" if within else "above")
            + f" its SD over {len(difference)} folds, {noise:.4f}.")
