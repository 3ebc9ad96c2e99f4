r"""The scores of held-out predictions: log-loss, Brier score and AUC.

The held-out answers :math:`y` are predicted by the model's own probability function,
:math:`\hat p = P(Y = 1 \mid \hat\theta_i, \hat\beta_j)` (:func:`irtbench.metrics.predict`,
:meth:`Model.probabilities <irtbench.models.base.Model.probabilities>`), clipped to
:math:`[\varepsilon, 1 - \varepsilon]`, :math:`\varepsilon =` :data:`irtbench.metrics.EPS` =
1e-6 (at most 13.8 nats per response). Per fold:

.. math::
    \text{logloss} = -\frac{1}{n}\sum y\log\hat p + (1 - y)\log(1 - \hat p),\qquad
    \text{Brier} = \frac{1}{n}\sum(\hat p - y)^2,\qquad
    \text{AUC} = \frac{\bar R_1 - (n_1 + 1)/2}{n_0}

(:math:`\bar R_1` the mean mid-rank of the correct answers among all held-out :math:`\hat p`:
the Mann–Whitney form, ties counted one half). An estimate at :math:`\pm\infty` (a
maximum-likelihood estimate of a respondent or item whose training answers are all right or
all wrong) predicts 0 or 1 (its limit; 1/2 where two infinities meet), which the clip turns
into a finite but large loss: ``n_infinite_predictions`` counts the held-out predictions that
involved one.
"""

from __future__ import annotations

import numpy as np

from irtbench.metrics import log_loss

__all__ = ["auc", "brier", "mid_ranks", "scores"]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((p - y) ** 2))


def mid_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties given their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """The area under the ROC curve by the Mann–Whitney rank formula (module docstring); NaN
    when the answers are all of one kind."""
    y = np.asarray(y) > 0.5
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    ranks = mid_ranks(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def scores(y: np.ndarray, p: np.ndarray, infinite: np.ndarray) -> dict[str, float]:
    """One fold's held-out scores: ``logloss``, ``brier``, ``auc``, ``n_heldout`` and
    ``n_infinite_predictions`` (``infinite``: the predictions that used an infinite
    estimate)."""
    return {"logloss": log_loss(y, p), "brier": brier(y, p), "auc": auc(y, p),
            "n_heldout": len(y), "n_infinite_predictions": int(infinite.sum())}
