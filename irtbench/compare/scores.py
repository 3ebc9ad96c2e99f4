r"""The scores of held-out predictions: log-loss, Brier score, AUC and the InterModel Vigorish.

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
maximum-likelihood estimate of a respondent or item whose training answers are all right or all
wrong) predicts 0 or 1 (its limit; 1/2 where two infinities meet), which the clip turns into a
finite but large loss: ``n_infinite_predictions`` counts the held-out predictions that involved
one.

**The InterModel Vigorish** (IMV; Domingue et al., 2021, "InterModel Vigorish (IMV): a novel
approach for quantifying predictive accuracy with binary outcomes"): a fold's mean log-loss
:math:`L` is minus the log of the geometric mean likelihood :math:`A = e^{-L}` of its
predictions, and the *entropy-equivalent coin* is the weight :math:`w \ge 1/2` of the coin as
predictable, :math:`w\log w + (1 - w)\log(1 - w) = \log A` (:func:`coin_weight`; a fair coin,
1/2, for predictions no better than one). The IMV of predictions :math:`L_1` over a baseline's
:math:`L_0` on the same answers is the relative gain in the coin's weight,
:math:`(w_1 - w_0)/w_0` (:func:`imv`): 0.05 means a coin 5% more predictable. It is not
antisymmetric: the IMV of 0 over 1 is not minus that of 1 over 0.
"""

from __future__ import annotations

import numpy as np

from irtbench.metrics import log_loss

__all__ = ["auc", "brier", "coin_weight", "imv", "mid_ranks", "scores"]


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


def coin_weight(logloss: np.ndarray | float) -> np.ndarray:
    r"""The weight :math:`w \in [1/2, 1)` of the coin whose entropy is the mean log-loss
    ``logloss`` (module docstring): :math:`-w\log w - (1 - w)\log(1 - w) = L`, by bisection
    to machine precision (the entropy falls from :math:`\log 2` at 1/2 to 0 at 1); 1/2 where
    :math:`L \ge \log 2`."""
    target = -np.asarray(logloss, np.float64)
    low, high = np.full(target.shape, 0.5), np.ones(target.shape)
    for _ in range(60):
        mid = 0.5 * (low + high)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.nan_to_num(mid * np.log(mid) + (1 - mid) * np.log1p(-mid))
        below = value < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return np.where(np.isnan(target), np.nan, 0.5 * (low + high))


def imv(baseline_logloss: np.ndarray | float, logloss: np.ndarray | float) -> np.ndarray:
    """The InterModel Vigorish of predictions of mean log-loss ``logloss`` over a baseline's
    on the same answers, :math:`(w_1 - w_0)/w_0` (module docstring)."""
    base = coin_weight(baseline_logloss)
    return (coin_weight(logloss) - base) / base


def scores(y: np.ndarray, p: np.ndarray, infinite: np.ndarray) -> dict[str, float]:
    """One fold's held-out scores: ``logloss``, ``brier``, ``auc``, ``n_heldout`` and
    ``n_infinite_predictions`` (``infinite``: the predictions that used an infinite
    estimate)."""
    return {"logloss": log_loss(y, p), "brier": brier(y, p), "auc": auc(y, p),
            "n_heldout": len(y), "n_infinite_predictions": int(infinite.sum())}
