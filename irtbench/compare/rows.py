r"""Scoring held-out respondents under fitted items (``split="rows"``).

Each held-out row's observed items are split at random into halves (:func:`halves`); its skill
is estimated from one half under the items fitted on the other rows (:func:`score_skills`: EAP
under the normal prior of :func:`skill_prior`, or ML) and the other half is predicted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from irtbench.estimators import Fit
from irtbench.models import Model
from irtbench.responses import answers_of, observed_of

__all__ = ["halves", "score_skills", "skill_prior"]


def halves(observed: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each row's observed items split at random into a scoring half (True) and a scored half:
    ``(n, J)`` bool of the scoring half (``ceil(m/2)`` of a row's ``m`` answers; a row with a
    single answer has nothing to score)."""
    rng = np.random.default_rng(seed)
    scoring = np.zeros(observed.shape, dtype=bool)
    for i in range(observed.shape[0]):
        items = np.flatnonzero(observed[i])
        chosen = rng.permutation(items)[: (len(items) + 1) // 2]
        scoring[i, chosen] = True
    return scoring


def score_skills(model: Model, items: Mapping[str, np.ndarray], responses: np.ndarray, *,
                 method: str = "eap", centre: float = 0.0, spread: float = 1.0,
                 nodes: int = 161) -> np.ndarray:
    r"""Each row's skill under known items, from its observed answers (NaN = not used):
    ``"eap"``, the posterior mean under :math:`N(\mu, s^2)` (``centre``, ``spread``) by
    quadrature on ``nodes`` points of :math:`\mu \pm 8s`; ``"ml"``, the maximum of the
    likelihood on a grid of :math:`[-10, 10]` refined by a parabola through the best three
    points, :math:`\pm\infty` for rows all right or all wrong. Items with a non-finite
    estimate are left out."""
    usable = np.logical_and.reduce([np.isfinite(np.asarray(items[n], np.float64))
                                    for n in model.item_parameters])
    parameters = {n: np.asarray(items[n], np.float64)[usable] for n in model.item_parameters}
    answered = observed_of(responses)[:, usable]
    y = np.where(answered, answers_of(responses[:, usable], np.float64), 0.0)
    if method == "eap":
        grid = centre + spread * np.linspace(-8.0, 8.0, nodes)
    elif method == "ml":
        grid = np.linspace(-10.0, 10.0, 2001)
    else:
        raise ValueError(f"method={method!r} must be 'eap' or 'ml'")
    p = np.clip(model.probabilities(grid, parameters), 1e-300, 1 - 1e-16)  # (Q, J)
    log_lik = (y * answered) @ np.log(p).T + ((1 - y) * answered) @ np.log1p(-p).T  # (n, Q)
    if method == "eap":
        log_post = log_lik - 0.5 * ((grid - centre) / spread) ** 2
        weights = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        return (weights @ grid) / weights.sum(axis=1)
    best = np.clip(log_lik.argmax(axis=1), 1, len(grid) - 2)
    left, mid, right = (np.take_along_axis(log_lik, (best + d)[:, None], 1)[:, 0]
                        for d in (-1, 0, 1))
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    skill = grid[best] + offset * (grid[1] - grid[0])
    count, total = answered.sum(axis=1), (y * answered).sum(axis=1)
    skill[(total == count) & (count > 0)] = np.inf
    skill[(total == 0) & (count > 0)] = -np.inf
    return skill


def skill_prior(fit: Fit) -> tuple[float, float]:
    """``(centre, spread)`` of the normal prior that scores new respondents under a fit: the
    mean of its finite skills, and the skill SD it estimated (``diagnostics["sigma"]``) or else
    the SD of its finite skills."""
    finite = fit.skill[np.isfinite(fit.skill)]
    centre = float(finite.mean()) if finite.size else 0.0
    spread = fit.diagnostics.get("sigma")
    if not isinstance(spread, (int, float)) or not spread > 0:
        spread = float(finite.std()) if finite.size > 1 and finite.std() > 0 else 1.0
    return centre, float(spread)
