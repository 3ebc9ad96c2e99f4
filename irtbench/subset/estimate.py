"""One selection's three estimates of every new respondent's accuracy, each scored against the
truth (:func:`estimate_rows`): shared by ``irtbench subset`` (:mod:`~irtbench.subset.driver`) and
the sweep's items axis (:mod:`~irtbench.subset.simulated`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from irtbench.responses import answers_of, is_sparse, observed_of, to_dense, validate_responses
from irtbench.subset.accuracy import (
    ESTIMATES,
    gpirt,
    kendall_tau,
    mean_absolute_error,
    pirt,
    weighted_mean,
)
from irtbench.subset.calibration import Calibration, score_items
from irtbench.subset.strategies import Selection

__all__ = ["dense", "estimate_rows"]


def dense(responses: object) -> np.ndarray:
    """The responses validated, as a dense float32 matrix (NaN missing)."""
    data = validate_responses(responses)
    data = to_dense(data) if is_sparse(data) else np.where(observed_of(data),
                                                          answers_of(data), np.nan)
    return np.asarray(data, dtype=np.float32)


def estimate_rows(base: dict[str, Any], calibration: Calibration, answers: np.ndarray,
                  truth: np.ndarray, selection: Selection, weight: float
                  ) -> list[dict[str, Any]]:
    """The three estimates of one selection (:data:`~irtbench.subset.accuracy.ESTIMATES`),
    each scored against the ``truth``, with the seconds it took (p-IRT's and gp-IRT's
    include the scoring of the skills)."""
    started = time.perf_counter()
    mean = weighted_mean(answers, selection.items, selection.weights)
    mean_seconds = time.perf_counter() - started
    started = time.perf_counter()
    skill = score_items(calibration, answers, selection.items).skill
    predicted = pirt(calibration.model, calibration.items, skill, answers, selection.items)
    pirt_seconds = time.perf_counter() - started
    started = time.perf_counter()
    mixed = gpirt(mean, predicted, weight)
    mixed_seconds = time.perf_counter() - started + mean_seconds + pirt_seconds
    return [{**base, "method": method, "status": "ok", "reason": "",
             "mae": mean_absolute_error(estimate, truth),
             "kendall_tau": kendall_tau(estimate, truth),
             "n_respondents": int(np.isfinite(truth).sum()),
             "n_undefined": int((np.isfinite(truth) & ~np.isfinite(estimate)).sum()),
             "mixing_weight": weight if method == "gpirt" else np.nan,
             "seconds_select": selection.seconds, "seconds_score": seconds,
             "seconds_weight": base["seconds_weight"] if method == "gpirt" else np.nan}
            for method, estimate, seconds in zip(
                ESTIMATES, (mean, predicted, mixed), (mean_seconds, pirt_seconds, mixed_seconds))]
