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
    """Students and questions with no finite maximum-likelihood estimate.

    A student whose observed responses are all right or all wrong (a question answered right or
    wrong by every student who saw it) has no finite estimate: the likelihood keeps increasing as
    the parameter goes to +/-infinity. Removing them can make others extreme (a student whose one
    wrong answer was to a question nobody got right), so the rule is applied again to what
    remains until nothing changes, as JML programs do. Every metric reports these apart.

    Returns:
        ``(extreme_students, extreme_questions)``, boolean masks.
    """
    observed = ~np.isnan(responses)
    right = np.where(observed, responses, 0.0).astype(np.float32)
    seen = observed.astype(np.float32)
    students = np.zeros(responses.shape[0], dtype=bool)
    questions = np.zeros(responses.shape[1], dtype=bool)
    while True:
        keep_questions, keep_students = (~questions).astype(np.float32), (~students).astype(np.float32)
        row_right, row_seen = right @ keep_questions, seen @ keep_questions
        col_right, col_seen = keep_students @ right, keep_students @ seen
        new_students = students | (row_right == 0) | (row_right == row_seen)
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        if (new_students == students).all() and (new_questions == questions).all():
            return students, questions
        students, questions = new_students, new_questions


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
