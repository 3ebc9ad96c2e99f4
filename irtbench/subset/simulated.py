r"""The few-item measurement of :mod:`irtbench.subset` on simulated data, where the truth is
known: the sweep's ``--items`` axis (``irtbench run --items 25,50,100``).

A cell's fit calibrates the items; then **new respondents** are drawn from the cell's own
population (its true skills resampled with replacement, their answers drawn from the true item
parameters: :func:`new_respondents`), each answering every item. For each :math:`k` of
``items`` and each of :data:`STRATEGIES` (the cheap ones, non-adaptive), each new respondent's
whole-benchmark accuracy is estimated from its answers to the :math:`k` chosen items three ways
(:data:`~irtbench.subset.accuracy.ESTIMATES`: the weighted mean, p-IRT, gp-IRT) under the
fit's items and scored against its realised accuracy over all items: the mean absolute error
and Kendall's :math:`\tau_b` of the ranking. So the metric these users care about sits beside
RMSE and the Cramér–Rao bound, from the same fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from irtbench.estimators import Fit
from irtbench.models import get_model
from irtbench.results import ACCURACY_COLUMNS
from irtbench.simulate import Dataset
from irtbench.subset.accuracy import answer_variance, mixing_weight, pirt_bias, true_accuracy
from irtbench.subset.calibration import Calibration
from irtbench.subset.estimate import dense, estimate_rows
from irtbench.subset.strategies import get_strategy

__all__ = ["NEW_RESPONDENTS", "STRATEGIES", "accuracy_rows", "new_respondents"]

#: the strategies the sweep measures (the subset benchmark has all five)
STRATEGIES = ("random", "information")
#: how many new respondents a cell draws at most
NEW_RESPONDENTS = 1000


def new_respondents(data: Dataset, n: int, seed: int) -> np.ndarray:
    """``n`` new respondents' answers to every item, ``(n, J)`` float64: skills resampled from
    the data's true ones, answers drawn from the model's probabilities at the true items."""
    rng = np.random.default_rng([seed, 0x5EB])
    skill = np.asarray(data.skill)[rng.integers(0, len(data.skill), n)]
    p = get_model(data.model).probabilities(skill, data.items)
    return (rng.random(p.shape) < p).astype(np.float64)


def accuracy_rows(key: Mapping[str, Any], fit: Fit, data: Dataset, items: Sequence[int],
                  ) -> list[dict[str, Any]]:
    """The rows of ``accuracy.csv`` for one cell's fit: each :math:`k` of ``items`` (those up
    to the number of items) x strategy x estimate (module docstring)."""
    n_items = data.responses.shape[1]
    sizes = sorted({int(k) for k in items if 1 <= int(k) <= n_items})
    if not sizes:
        return []
    calibration = Calibration.of(fit)
    training = dense(data.responses).astype(np.float64)
    bias, variance = pirt_bias(calibration, training), answer_variance(training)
    answers = new_respondents(data, min(NEW_RESPONDENTS, max(len(data.skill), 50)),
                              int(key.get("seed", 0)))
    truth = true_accuracy(answers)
    rows = []
    for name in STRATEGIES:
        strategy = get_strategy(name)
        for k, selection in strategy.select(calibration, answers, sizes,
                                            seed=(int(key.get("seed", 0)),)).items():
            weight = mixing_weight(bias, variance, k, strategy.mean_variance_divisor)
            base = {**key, "items": k, "strategy": name, "seconds_weight": 0.0}
            rows += [{column: row.get(column) for column in ACCURACY_COLUMNS}
                     for row in estimate_rows(base, calibration, answers, truth, selection,
                                              weight)]
    return rows
