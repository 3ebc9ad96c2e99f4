r"""The Rasch model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = p_{ij} = \sigma(\theta_i - b_j) = \frac{1}{1 + e^{-(\theta_i - b_j)}}

with skill :math:`\theta_i` of student *i* and difficulty :math:`b_j` of question *j*.
Missing responses (NaN, or -1 in the compact int8 form) are left out of every sum. Every function
walks the matrix a block of rows at a time, so memory stays a few blocks beyond the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irtbench.responses import (
    Responses,
    SparseResponses,
    answers_of,
    is_sparse,
    observed_of,
    row_blocks,
)

__all__ = [
    "sigmoid",
    "probabilities",
    "log_likelihood",
    "information",
    "Extremes",
    "find_extremes",
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


def log_likelihood(responses: Responses, skill: np.ndarray, difficulty: np.ndarray) -> float:
    r"""Log-likelihood over the observed responses.

    .. math::
        \ell(\theta, b) = \sum_{(i,j)\ \mathrm{observed}} y_{ij} x_{ij} - \log(1 + e^{x_{ij}}),
        \qquad x_{ij} = \theta_i - b_j
    """
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    if is_sparse(responses):
        logits = skill[responses.student] - difficulty[responses.question]
        return float((responses.response * logits - np.logaddexp(0.0, logits)).sum())
    total = 0.0
    for rows in row_blocks(responses.shape):
        logits = skill[rows, None] - difficulty[None, :]
        terms = answers_of(responses[rows], np.float64) * logits - np.logaddexp(0.0, logits)
        total += float(terms[observed_of(responses[rows])].sum())
    return total


def information(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray
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
    if is_sparse(responses):
        p = sigmoid(skill[responses.student] - difficulty[responses.question])
        weight = p * (1.0 - p)
        return (np.bincount(responses.student, weight, len(skill)),
                np.bincount(responses.question, weight, len(difficulty)))
    info_skill, info_difficulty = np.empty(len(skill)), np.zeros(len(difficulty))
    for rows in row_blocks(responses.shape):
        p = probabilities(skill[rows], difficulty)
        weight = p * (1.0 - p)
        weight[~observed_of(responses[rows])] = 0.0
        info_skill[rows] = weight.sum(axis=1)
        info_difficulty += weight.sum(axis=0)
    return info_skill, info_difficulty


@dataclass(frozen=True)
class Extremes:
    """Students and questions with no finite maximum-likelihood estimate, the limits their
    likelihood grows towards, and the counts left once they are removed.

    Attributes:
        students, questions: boolean masks of the extreme ones.
        skill_limit: ``+inf`` for an extreme student whose kept responses are all right,
            ``-inf`` for all wrong, NaN for the others; ``difficulty_limit`` likewise
            (``-inf`` for a question everybody kept got right).
        scores, seen: right answers and observed responses of every student on the kept
            questions (float64); ``item_totals``, ``item_counts``: the same per question over
            the kept students. Without missing responses these are all that the classical
            estimators need from the data (the raw scores are sufficient).
    """

    students: np.ndarray
    questions: np.ndarray
    skill_limit: np.ndarray
    difficulty_limit: np.ndarray
    scores: np.ndarray
    seen: np.ndarray
    item_totals: np.ndarray
    item_counts: np.ndarray


Counts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _dense_counts(responses: Responses, keep_students: np.ndarray, keep_questions: np.ndarray
                  ) -> Counts:
    """Right answers and observed responses per row over the kept questions and per column over
    the kept students, a block of rows at a time (float32 products of 0/1, exact per block)."""
    n_students, n_questions = responses.shape
    keep_q = keep_questions.astype(np.float32)
    row_right, row_seen = np.empty(n_students), np.empty(n_students)
    col_right, col_seen = np.zeros(n_questions), np.zeros(n_questions)
    for rows in row_blocks(responses.shape):
        block = responses[rows]
        observed = observed_of(block)
        complete = bool(observed.all())
        right = block if complete and block.dtype == np.float32 else answers_of(block)
        keep_s = keep_students[rows].astype(np.float32)
        row_right[rows] = right @ keep_q
        col_right += keep_s @ right
        if complete:
            row_seen[rows] = keep_q.sum()
            col_seen += keep_s.sum()
        else:
            seen = observed.astype(np.float32)
            row_seen[rows] = seen @ keep_q
            col_seen += keep_s @ seen
    return row_right, row_seen, col_right, col_seen


def _sparse_counts(responses: SparseResponses, keep_students: np.ndarray,
                   keep_questions: np.ndarray) -> Counts:
    """:func:`_dense_counts` of sparse triples, by ``np.bincount``."""
    n_students, n_questions = responses.shape
    student, question = responses.student, responses.question
    right = responses.response.astype(np.float64)
    kept_question = keep_questions[question].astype(np.float64)
    kept_student = keep_students[student].astype(np.float64)
    return (np.bincount(student, right * kept_question, n_students),
            np.bincount(student, kept_question, n_students),
            np.bincount(question, right * kept_student, n_questions),
            np.bincount(question, kept_student, n_questions))


def find_extremes(responses: Responses, *, judge_students: bool = True) -> Extremes:
    """Students and questions with no finite maximum-likelihood estimate (the one
    implementation of this rule in irtbench; every estimator and metric uses it).

    A student whose observed responses are all right or all wrong (a question answered right or
    wrong by every student who saw it) has no finite estimate: the likelihood keeps increasing as
    the parameter goes to +/-infinity. Removing them can make others extreme (a student whose one
    wrong answer was to a question nobody got right), so the rule is applied again to what
    remains until nothing changes, as JML programs do. Each round is one pass over the data.

    Args:
        responses: dense (either form) or sparse responses.
        judge_students: False keeps every student (for marginal ML, where a student's
            posterior is finite whatever they answered): only questions everybody got right
            or wrong are then extreme, and one pass decides.

    Returns:
        An :class:`Extremes`.
    """
    counts = _sparse_counts if is_sparse(responses) else _dense_counts
    n_students, n_questions = responses.shape
    students = np.zeros(n_students, dtype=bool)
    questions = np.zeros(n_questions, dtype=bool)
    while True:
        row_right, row_seen, col_right, col_seen = counts(responses, ~students, ~questions)
        new_students = students.copy()
        if judge_students:
            new_students |= (row_right == 0) | (row_right == row_seen)
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        if (new_students == students).all() and (new_questions == questions).all():
            break
        students, questions = new_students, new_questions
    skill_limit = np.where(students, np.where(row_right == row_seen, np.inf, -np.inf), np.nan)
    difficulty_limit = np.where(questions, np.where(col_right == col_seen, -np.inf, np.inf),
                                np.nan)
    return Extremes(students, questions, skill_limit, difficulty_limit,
                    row_right, row_seen, col_right, col_seen)


def extremes(responses: Responses) -> tuple[np.ndarray, np.ndarray]:
    """``(extreme_students, extreme_questions)``: the boolean masks of :func:`find_extremes`."""
    found = find_extremes(responses)
    return found.students, found.questions


def asymptotic_se(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
    found: Extremes | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Asymptotic standard errors :math:`1/\sqrt{I}` evaluated at an estimate.

    A student (question) whose observed responses are all right or all wrong has no finite
    maximum-likelihood estimate and so no standard error: it gets ``inf``. ``found`` (the
    :func:`find_extremes` of ``responses``) saves the passes that find them.
    """
    info_skill, info_difficulty = information(responses, skill, difficulty)
    found = find_extremes(responses) if found is None else found
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        difficulty_se = 1.0 / np.sqrt(info_difficulty)
    skill_se[found.students] = np.inf
    difficulty_se[found.questions] = np.inf
    return skill_se, difficulty_se
