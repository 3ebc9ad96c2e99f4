"""What the sweep measures of a fit beside its recovery (:func:`irtbench.metrics.recovery`):
the loss curve with each snapshot's aligned RMSE and gap to the exact optimum, the convergence
of the reference objective, and every estimate's aligned error; one row list per file
(``curves.csv``, ``errors.csv``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from irtbench.estimators import Fit
from irtbench.metrics import (
    aligned_errors_by_part,
    optimum_gap,
    reference_gradient,
    trace_rmse,
)
from irtbench.simulate import Dataset

MAX_CURVE_POINTS = 200


def curve_rows(key: Mapping[str, Any], fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray],
           optimum: Fit | None) -> list[dict[str, Any]]:
    """The loss at up to MAX_CURVE_POINTS iterations plus every snapshot of ``fit.trace`` with
    its aligned RMSE against the truth and (``optimum`` given) its RMS gap to the exact optimum
    of the reference objective; seconds assume equal time per iteration."""
    n = len(fit.losses)
    if n == 0:
        return []
    errors = {k: trace_rmse(skill, {"difficulty": difficulty, **(extra[0] if extra else {})},
                            data, masks)
              for k, skill, difficulty, *extra in fit.trace}
    gaps = {} if optimum is None else {
        k: optimum_gap(skill, difficulty, optimum.skill, optimum.difficulty, masks)[1]
        for k, skill, difficulty, *_ in fit.trace}
    thinned = np.linspace(1, n, min(n, MAX_CURVE_POINTS)).round().astype(int)
    iterations = sorted(set(thinned.tolist()) | set(errors))
    return [
        {**key, "iteration": k, "seconds": fit.seconds * k / n,
         "loss": float(fit.losses[k - 1]),
         "rmse_skill": errors.get(k, (math.nan, math.nan))[0],
         "rmse_difficulty": errors.get(k, (math.nan, math.nan))[1],
         "gap_rms": gaps.get(k, math.nan)}
        for k in iterations if 1 <= k <= n
    ]


def convergence(fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray],
                optimum: Fit | None, alpha: float) -> dict[str, float]:
    """``grad_norm`` (L2 norm of the reference objective's gradient at the fit, :func:`~irtbench.
    metrics.reference_gradient`), ``gap_max`` and ``gap_rms`` (to the exact optimum): for the
    estimators whose objective is the reference's (``optimum`` given); otherwise the fit's own
    ``grad_norm`` diagnostic, if any, and NaN gaps."""
    if optimum is None:
        return {"grad_norm": fit.diagnostics.get("grad_norm", math.nan),
                "gap_max": math.nan, "gap_rms": math.nan}
    grad_skill, grad_difficulty = reference_gradient(data.responses, fit.skill, fit.difficulty,
                                                     alpha)
    gap_max, gap_rms = optimum_gap(fit.skill, fit.difficulty, optimum.skill,
                                   optimum.difficulty, masks)
    return {"grad_norm": float(np.sqrt(grad_skill @ grad_skill + grad_difficulty @ grad_difficulty)),
            "gap_max": gap_max, "gap_rms": gap_rms}


def error_rows(key: Mapping[str, Any], fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray]
            ) -> list[dict[str, Any]]:
    """Aligned errors of every skill and every item parameter of the model (extreme ones
    flagged, and the item parameters of the questions that ran away,
    ``Fit.runaway_questions``); a two-dimensional part (the M2PL's skills and loadings,
    ``(rows, D)``) row by row, ``index`` running over its entries in row-major order
    (``i * D + k``)."""
    rows = []
    n_students, n_questions = masks[0].shape[0], masks[1].shape[0]
    runaway = (np.zeros(n_questions, bool) if fit.runaway_questions is None
               else np.asarray(fit.runaway_questions, bool))
    for kind, values in aligned_errors_by_part(fit, data, masks).items():
        extreme = masks[0] if kind == "skill" else masks[1]
        ran = np.zeros(n_students, bool) if kind == "skill" else runaway
        values = np.asarray(values)
        width = int(np.prod(values.shape[1:], dtype=int))
        flags = np.repeat(np.asarray(extreme, bool), width)
        ran = np.repeat(ran, width)
        rows += [{**key, "kind": kind, "index": i, "error": f"{e:.6g}", "extreme": bool(x),
                  "runaway": bool(r)}
                 for i, (e, x, r) in enumerate(zip(values.reshape(-1), flags, ran))]
    return rows
