r"""The Rasch model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = p_{ij} = \sigma(\theta_i - b_j) = \frac{1}{1 + e^{-(\theta_i - b_j)}}

with skill :math:`\theta_i` of student *i* and difficulty :math:`b_j` of question *j*.
Missing responses (NaN, or -1 in the compact int8 form) are left out of every sum. Every function
walks the matrix a block of rows at a time, so memory stays a few blocks beyond the data.
"""

from __future__ import annotations

import numpy as np

from irtbench import data as _data  # format helpers (data imports this module: no names here)

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
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if _data.is_sparse(responses):
        logits = skill[responses.student] - difficulty[responses.question]
        return float((responses.response * logits - np.logaddexp(0.0, logits)).sum())
    total = 0.0
    for rows in _data.row_blocks(responses.shape):
        logits = skill[rows, None] - difficulty[None, :]
        terms = _data.answers_of(responses[rows], np.float64) * logits - np.logaddexp(0.0, logits)
        total += float(terms[_data.observed_of(responses[rows])].sum())
    return total


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
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if _data.is_sparse(responses):
        p = sigmoid(skill[responses.student] - difficulty[responses.question])
        weight = p * (1.0 - p)
        return (np.bincount(responses.student, weight, len(skill)),
                np.bincount(responses.question, weight, len(difficulty)))
    info_skill, info_difficulty = np.empty(len(skill)), np.zeros(len(difficulty))
    for rows in _data.row_blocks(responses.shape):
        p = probabilities(skill[rows], difficulty)
        weight = p * (1.0 - p)
        weight[~_data.observed_of(responses[rows])] = 0.0
        info_skill[rows] = weight.sum(axis=1)
        info_difficulty += weight.sum(axis=0)
    return info_skill, info_difficulty


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
    if _data.is_sparse(responses):
        return _sparse_extremes(responses)
    blocks = _data.row_blocks(responses.shape)
    students = np.zeros(responses.shape[0], dtype=bool)
    questions = np.zeros(responses.shape[1], dtype=bool)
    while True:
        keep_questions = (~questions).astype(np.float64)
        new_students = students.copy()
        col_right, col_seen = np.zeros(responses.shape[1]), np.zeros(responses.shape[1])
        for rows in blocks:
            right = _data.answers_of(responses[rows], np.float64)
            seen = _data.observed_of(responses[rows]).astype(np.float64)
            row_right, row_seen = right @ keep_questions, seen @ keep_questions
            new_students[rows] |= (row_right == 0) | (row_right == row_seen)
            keep_students = (~students[rows]).astype(np.float64)
            col_right += keep_students @ right
            col_seen += keep_students @ seen
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        if (new_students == students).all() and (new_questions == questions).all():
            return students, questions
        students, questions = new_students, new_questions


def _sparse_extremes(responses: _data.SparseResponses) -> tuple[np.ndarray, np.ndarray]:
    """:func:`extremes` of sparse triples, by counting with ``np.bincount``."""
    n_students, n_questions = responses.shape
    student, question = responses.student, responses.question
    right = responses.response.astype(np.float64)
    students = np.zeros(n_students, dtype=bool)
    questions = np.zeros(n_questions, dtype=bool)
    while True:
        kept = ~(students[student] | questions[question])
        row_right = np.bincount(student, right * kept, n_students)
        row_seen = np.bincount(student, kept.astype(np.float64), n_students)
        col_right = np.bincount(question, right * kept, n_questions)
        col_seen = np.bincount(question, kept.astype(np.float64), n_questions)
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
