r"""The Rasch model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = p_{ij} = \sigma(\theta_i - b_j) = \frac{1}{1 + e^{-(\theta_i - b_j)}}

with skill :math:`\theta_i` of student *i* and difficulty :math:`b_j` of question *j*.
Missing responses (NaN) are left out of every sum.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "probabilities",
    "log_likelihood",
    "information",
    "extremes",
    "asymptotic_se",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, computed as ``(1 + tanh(x/2)) / 2`` (no overflow for any x)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def probabilities(skill: np.ndarray, difficulty: np.ndarray) -> np.ndarray:
    r"""Matrix of :math:`p_{ij} = \sigma(\theta_i - b_j)`, shape ``(n_students, n_questions)``."""
    skill = np.asarray(skill, dtype=np.float64)
    difficulty = np.asarray(difficulty, dtype=np.float64)
    return sigmoid(skill[:, None] - difficulty[None, :])


def log_likelihood(responses: np.ndarray, skill: np.ndarray, difficulty: np.ndarray) -> float:
    r"""Log-likelihood over the observed responses.

    .. math::
        \ell(\theta, b) = \sum_{(i,j)\ \mathrm{observed}} y_{ij} x_{ij} - \log(1 + e^{x_{ij}}),
        \qquad x_{ij} = \theta_i - b_j
    """
    logits = np.asarray(skill, np.float64)[:, None] - np.asarray(difficulty, np.float64)[None, :]
    terms = responses * logits - np.logaddexp(0.0, logits)
    return float(np.nansum(terms))


def information(
    responses: np.ndarray, skill: np.ndarray, difficulty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fisher information of each skill and each difficulty (the others held known).

    .. math::
        I(\theta_i) = \sum_{j\ \mathrm{obs}} p_{ij}(1 - p_{ij}), \qquad
        I(b_j) = \sum_{i\ \mathrm{obs}} p_{ij}(1 - p_{ij})

    These are the diagonal of the joint information matrix, which is block-diagonal within
    skills and within difficulties.

    Args:
        responses: the response matrix; only its pattern of observed entries is used.
        skill, difficulty: the parameters at which to evaluate the information.

    Returns:
        ``(info_skill, info_difficulty)``.
    """
    p = probabilities(skill, difficulty)
    weight = p * (1.0 - p)
    weight[np.isnan(responses)] = 0.0
    return weight.sum(axis=1), weight.sum(axis=0)


def extremes(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Students and questions whose observed responses are all right or all wrong.

    Their maximum-likelihood estimates do not exist (the likelihood keeps increasing as the
    parameter goes to +/-infinity), so every metric reports them apart.

    Returns:
        ``(extreme_students, extreme_questions)``, boolean masks.
    """
    observed = ~np.isnan(responses)
    right = np.nansum(responses, axis=1), np.nansum(responses, axis=0)
    count = observed.sum(axis=1), observed.sum(axis=0)
    return tuple((r == 0) | (r == n) for r, n in zip(right, count))  # type: ignore[return-value]


def asymptotic_se(
    responses: np.ndarray, skill: np.ndarray, difficulty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Asymptotic standard errors :math:`1/\sqrt{I}` evaluated at an estimate.

    A student (question) whose observed responses are all right or all wrong has no finite
    maximum-likelihood estimate and so no standard error: it gets ``inf``.
    """
    info_skill, info_difficulty = information(responses, skill, difficulty)
    extreme_students, extreme_questions = extremes(responses)
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        difficulty_se = 1.0 / np.sqrt(info_difficulty)
    skill_se[extreme_students] = np.inf
    difficulty_se[extreme_questions] = np.inf
    return skill_se, difficulty_se
