"""Students and questions with no finite maximum-likelihood estimate (all answers right or all
wrong), found again and again until none is left: the one implementation of this rule in
irtbench, a property of the data whatever the model."""

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

__all__ = ["Extremes", "extremes", "find_extremes"]


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
