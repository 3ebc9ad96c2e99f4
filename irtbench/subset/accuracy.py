r"""A new respondent's accuracy on the whole benchmark, estimated from its answers to a few
items, three ways (tinyBenchmarks' estimators), and how the estimates are scored.

Respondent :math:`i` has answered the observed items :math:`O_i` (all :math:`J` items of a
complete matrix); its **true accuracy** is the mean of its observed answers,

.. math::
    A_i = \frac{1}{|O_i|}\sum_{j \in O_i} y_{ij}.

It is shown the items :math:`S_i` (:math:`k` of them, with weights :math:`w_{ij}` summing to
1; :mod:`~irtbench.subset.strategies`) and answers those of :math:`S_i \cap O_i`.

* ``mean``: the weighted mean of its answers, :math:`\hat A_i = \sum_{j \in S_i\cap O_i}
  w_{ij}y_{ij} / \sum_{j \in S_i\cap O_i} w_{ij}` (undefined, NaN, when it answered none of
  them). tinyBenchmarks' "IRT" estimator with the anchor weights; the plain mean with equal
  weights.
* ``pirt`` (p-IRT): the answered items counted as answered and every other observed item by
  its probability at the respondent's skill :math:`\hat\theta_i`, estimated from its answers
  under the calibrated items (:mod:`irtbench.scoring`),

  .. math::
      \hat A^{\mathrm{p}}_i = \frac{1}{|O_i|}\Big(\sum_{j \in S_i\cap O_i} y_{ij}
      + \sum_{j \in O_i \setminus S_i} P_j(\hat\theta_i)\Big),

  which is :math:`A_i` exactly when every item is shown (:math:`S_i \supseteq O_i`).
  tinyBenchmarks writes it :math:`\lambda\bar y_{S} + (1-\lambda)\bar P_{\bar S}` with
  :math:`\lambda = |S|/J`: the same thing for a complete row. (Their experiments put the
  strategy's weighted mean in place of :math:`\bar y_S`; the definition above is the paper's.)
* ``gpirt`` (gp-IRT): :math:`\lambda_k\hat A_i + (1 - \lambda_k)\hat A^{\mathrm{p}}_i`, the
  mean and p-IRT mixed by the weight tinyBenchmarks gives them (:func:`mixing_weight`),
  :math:`\lambda = b^2/(b^2 + \sigma^2_k)`: the share of p-IRT's squared bias :math:`b^2` in
  the sum with the mean's variance :math:`\sigma^2_k = v/(c k)`. Here :math:`v` is the mean
  over the calibration respondents of the variance of their answers (:func:`answer_variance`;
  :math:`v/k` is the variance of the mean of :math:`k` items drawn at random), :math:`c` the
  strategy's ``mean_variance_divisor`` (tinyBenchmarks: 1 for random draws, 4 for their
  anchor points and adaptive choices), and :math:`b` p-IRT's error on the calibration rows
  (:func:`pirt_bias`): each calibration respondent scored from the even-numbered items, its
  accuracy over the odd-numbered ones predicted from that skill, :math:`b` the mean absolute
  error. tinyBenchmarks measures :math:`b` the same way on a fifth of the calibration rows
  held out of a second fit of the items; here the one calibration fit serves (no second fit
  per fold), so :math:`b` is measured in sample and errs low when the items overfit: a
  documented shortcut, smaller :math:`b` giving p-IRT more weight.

**Scores of the estimates** over a fold's new respondents: the mean absolute error
:math:`\frac1n\sum_i|\hat A_i - A_i|` (:func:`mean_absolute_error`) and Kendall's
:math:`\tau_b` between the estimated and the true accuracies (:func:`kendall_tau`).

References:
    Maia Polo, F., Weber, L., Choshen, L., Sun, Y., Xu, G. & Yurochkin, M. (2024).
    tinyBenchmarks: evaluating LLMs with fewer examples. *ICML 2024* (arXiv:2402.14992);
    their code, github.com/felipemaiapolo/tinyBenchmarks and felipemaiapolo/efficbench
    (``get_lambda``, ``compute_acc_pirt``).
    Kendall, M. G. (1945). The treatment of ties in ranking problems. *Biometrika* 33(3),
    239-251.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from irtbench.metrics import predict
from irtbench.models import Model
from irtbench.responses import row_blocks
from irtbench.subset.calibration import Calibration, score_items

__all__ = ["ESTIMATES", "answer_variance", "answered_mask", "gpirt", "kendall_tau",
           "mean_absolute_error", "mixing_weight", "pirt", "pirt_bias", "true_accuracy",
           "weighted_mean"]

#: the three estimates of a respondent's accuracy, in the tables' order
ESTIMATES = ("mean", "pirt", "gpirt")


def true_accuracy(answers: np.ndarray) -> np.ndarray:
    """Each row's mean over its observed answers (NaN missing), ``(n,)``; NaN for a row with
    none."""
    observed = ~np.isnan(answers)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(observed, answers, 0.0).sum(axis=1) / observed.sum(axis=1)


def answered_mask(answers: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``(n, k)`` bool: whether row ``i`` answered its ``k`` items ``items`` (``(n, k)``, or
    ``(1, k)`` shared by every row)."""
    rows = np.arange(answers.shape[0])[:, None]
    return ~np.isnan(answers[rows, np.broadcast_to(items, (answers.shape[0], items.shape[1]))])


def weighted_mean(answers: np.ndarray, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``mean`` (module docstring): each row's weighted mean over the items it was shown and
    answered, the weights renormalised over those; NaN where it answered none."""
    n = answers.shape[0]
    items = np.broadcast_to(items, (n, items.shape[1]))
    weights = np.broadcast_to(weights, items.shape)
    shown = answers[np.arange(n)[:, None], items]
    answered = ~np.isnan(shown)
    total = np.where(answered, weights, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered, weights * shown, 0.0).sum(axis=1) / total


def pirt(model: Model, fitted: Mapping[str, np.ndarray], skill: np.ndarray,
         answers: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``pirt`` (module docstring): each row's answers to the items it was shown and its
    predicted probabilities (:func:`irtbench.metrics.predict`, limits for infinite estimates)
    on its other observed items, over its observed items; a block of rows at a time."""
    n, n_items = answers.shape
    items = np.broadcast_to(items, (n, items.shape[1]))
    observed = ~np.isnan(answers)
    estimate = np.full(n, np.nan)
    for block in row_blocks((n, n_items)):
        rows = np.arange(n)[block]
        shown = np.zeros((len(rows), n_items), dtype=bool)
        shown[np.arange(len(rows))[:, None], items[block]] = True
        known = np.where(shown & observed[block], answers[block], 0.0).sum(axis=1)
        where, columns = np.nonzero(observed[block] & ~shown)
        p, _ = predict(model, skill, fitted, rows[where], columns)
        predicted = np.bincount(where, weights=p, minlength=len(rows))
        with np.errstate(invalid="ignore", divide="ignore"):
            estimate[block] = (known + predicted) / observed[block].sum(axis=1)
    return estimate


def answer_variance(answers: np.ndarray) -> float:
    r""":math:`v`: the mean over rows of the variance of each row's observed answers
    (:math:`\bar y_i(1 - \bar y_i)` for 0/1 answers; ``ddof=0``, tinyBenchmarks'
    ``np.var(...).mean()``)."""
    accuracy = true_accuracy(answers)
    return float(np.nanmean(accuracy * (1.0 - accuracy)))


def pirt_bias(calibration: Calibration, answers: np.ndarray) -> float:
    r""":math:`b`: p-IRT's mean absolute error on the calibration rows ``answers`` (module
    docstring): each row scored from the even-numbered items (:func:`~irtbench.subset.
    calibration.score_items`), its accuracy over the odd-numbered ones predicted from that
    skill alone (:func:`pirt` with no item shown). 0 with fewer than two items (or no row to
    measure it on)."""
    n_items = answers.shape[1]
    if n_items < 2:
        return 0.0
    even, odd = np.arange(0, n_items, 2), np.arange(1, n_items, 2)
    skill = score_items(calibration, answers, even[None, :]).skill
    held = answers[:, odd]
    fitted = {name: np.asarray(values)[odd] for name, values in calibration.items.items()}
    predicted = pirt(calibration.model, fitted, skill, held, np.empty((1, 0), np.int64))
    error = mean_absolute_error(predicted, true_accuracy(held))
    return error if np.isfinite(error) else 0.0


def mixing_weight(bias: float, variance: float, k: int, divisor: float) -> float:
    r""":math:`\lambda = b^2/(b^2 + v/(ck))` (module docstring; tinyBenchmarks'
    ``get_lambda(b, v/(c k))``): 0 when both vanish."""
    spread = variance / (divisor * k)
    total = bias**2 + spread
    return float(bias**2 / total) if total > 0 else 0.0


def gpirt(mean: np.ndarray, pirt_estimate: np.ndarray, weight: float) -> np.ndarray:
    r"""``gpirt``: :math:`\lambda\hat A + (1 - \lambda)\hat A^{\mathrm p}`; p-IRT alone where
    the mean is undefined (a row that answered none of its items)."""
    return np.where(np.isnan(mean), pirt_estimate,
                    weight * mean + (1.0 - weight) * pirt_estimate)


def mean_absolute_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """The mean of :math:`|\\hat A_i - A_i|` over the rows where both are defined (NaN if
    none)."""
    both = np.isfinite(estimate) & np.isfinite(truth)
    return float(np.abs(estimate[both] - truth[both]).mean()) if both.any() else float("nan")


def signs(difference: np.ndarray, ties_below: float) -> np.ndarray:
    """The sign of each difference, 0 where it is no larger than ``ties_below``."""
    return np.where(np.abs(difference) <= ties_below, 0.0, np.sign(difference))


def kendall_tau(x: np.ndarray, y: np.ndarray, *, ties_below: float = 1e-12,
                block: int = 2048) -> float:
    r"""Kendall's :math:`\tau_b` of the pairs where both are defined,

    .. math::
        \tau_b = \frac{\sum_{i<j}\operatorname{sgn}(x_i - x_j)\operatorname{sgn}(y_i - y_j)}
        {\sqrt{\sum_{i<j}|\operatorname{sgn}(x_i - x_j)|\,\sum_{i<j}|\operatorname{sgn}(y_i
        - y_j)|}}

    (ties count in neither the concordant nor the discordant pairs, and two values closer than
    ``ties_below`` are tied: accuracies that differ by rounding alone, as a weighted sum and a
    mean of the same answers do; NaN with fewer than two pairs or a constant side), ``block``
    rows of pairs at a time: :math:`O(n^2)` time, :math:`O(n \cdot \mathrm{block})` memory.

    Examples:
        >>> kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
        0.3333333333333333
    """
    both = np.isfinite(x) & np.isfinite(y)
    x, y = np.asarray(x, np.float64)[both], np.asarray(y, np.float64)[both]
    concordance = ties_x = ties_y = 0.0
    for start in range(0, len(x), block):
        sx = signs(x[start:start + block, None] - x[None, :], ties_below)
        sy = signs(y[start:start + block, None] - y[None, :], ties_below)
        concordance += float((sx * sy).sum())
        ties_x += float(np.abs(sx).sum())
        ties_y += float(np.abs(sy).sum())
    denominator = np.sqrt(ties_x * ties_y)
    return float(concordance / denominator) if denominator > 0 else float("nan")
