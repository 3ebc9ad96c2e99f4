"""Students and questions with no finite maximum-likelihood estimate (all answers right or all
wrong), found again and again until none is left: the one implementation of this rule in
irtbench, a property of the data whatever the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irtbench.responses import Scan, scan_responses
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


def _sparse_counts(responses: SparseResponses, keep_students: np.ndarray,
                   keep_questions: np.ndarray) -> Counts:
    """Right answers and observed responses per student over the ``keep_questions`` and per
    question over the ``keep_students`` of sparse triples, by ``np.bincount``."""
    n_students, n_questions = responses.shape
    student, question = responses.student, responses.question
    right = responses.response.astype(np.float64)
    kept_question = keep_questions[question].astype(np.float64)
    kept_student = keep_students[student].astype(np.float64)
    return (np.bincount(student, right * kept_question, n_students),
            np.bincount(student, kept_question, n_students),
            np.bincount(question, right * kept_student, n_questions),
            np.bincount(question, kept_student, n_questions))


def _removed_counts(responses: Responses, rows: np.ndarray, columns: np.ndarray) -> Counts:
    """What removing ``rows`` (students) and ``columns`` (questions) takes from the totals:
    per student, right answers and observed responses on ``columns``; per question, the same
    on ``rows``. Reads those rows and columns only (a few, after the first round)."""
    n_students, n_questions = responses.shape
    if is_sparse(responses):
        in_rows, in_columns = np.zeros(n_students, bool), np.zeros(n_questions, bool)
        in_rows[rows], in_columns[columns] = True, True
        return _sparse_counts(responses, in_rows, in_columns)
    row_right, row_seen = np.zeros(n_students), np.zeros(n_students)
    col_right, col_seen = np.zeros(n_questions), np.zeros(n_questions)
    if columns.size:
        for block in row_blocks((n_students, columns.size)):
            part = responses[block][:, columns]
            row_right[block] = answers_of(part, np.float64).sum(axis=1)
            row_seen[block] = observed_of(part).sum(axis=1)
    for block in row_blocks((rows.size, n_questions)):
        part = responses[rows[block]]
        col_right += answers_of(part, np.float64).sum(axis=0)
        col_seen += observed_of(part).sum(axis=0)
    return row_right, row_seen, col_right, col_seen


def find_extremes(responses: Responses, *, judge_students: bool = True,
                  scan: Scan | None = None) -> Extremes:
    """Students and questions with no finite maximum-likelihood estimate (the one
    implementation of this rule in irtbench; every estimator and metric uses it).

    A student whose observed responses are all right or all wrong (a question answered right or
    wrong by every student who saw it) has no finite estimate: the likelihood keeps increasing as
    the parameter goes to +/-infinity. Removing them can make others extreme (a student whose one
    wrong answer was to a question nobody got right), so the rule is applied again to what
    remains until nothing changes, as JML programs do.

    The first round reads the totals of ``scan`` (:func:`irtbench.responses.scan_responses`; one
    pass over the data when not given); each later round reads only the rows and columns it
    removed, and subtracts them.

    Args:
        responses: dense (either form) or sparse responses.
        judge_students: False keeps every student (for marginal ML, where a student's
            posterior is finite whatever they answered): only questions everybody got right
            or wrong are then extreme, and the totals decide without reading the data.
        scan: the responses' :class:`~irtbench.responses.Scan`, when already taken.

    Returns:
        An :class:`Extremes`.
    """
    if scan is None:
        responses, scan = scan_responses(responses)
    row_right, row_seen = scan.row_right.astype(np.float64), scan.row_seen.astype(np.float64)
    col_right, col_seen = scan.col_right.astype(np.float64), scan.col_seen.astype(np.float64)
    n_students, n_questions = responses.shape
    students = np.zeros(n_students, dtype=bool)
    questions = np.zeros(n_questions, dtype=bool)
    while True:
        new_students = students.copy()
        if judge_students:
            new_students |= (row_right == 0) | (row_right == row_seen)
        new_questions = questions | (col_right == 0) | (col_right == col_seen)
        added_students = np.flatnonzero(new_students & ~students)
        added_questions = np.flatnonzero(new_questions & ~questions)
        if not added_students.size and not added_questions.size:
            break
        less = _removed_counts(responses, added_students, added_questions)
        row_right, row_seen = row_right - less[0], row_seen - less[1]
        col_right, col_seen = col_right - less[2], col_seen - less[3]
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
