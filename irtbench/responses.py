"""Response matrices: their formats, validation, and walking them a block of rows at a time.

A response matrix has one row per student and one column per question; entries are
``1.0`` (correct), ``0.0`` (wrong) or ``NaN`` (not observed), stored as ``float32``, or, in the
**compact** form (``simulate(..., compact=True)``, any ``int8`` array), ``1``, ``0`` or ``-1``
(:data:`MISSING`) as ``int8``: a quarter of the memory. Sparse data come as
:class:`SparseResponses` triples. Every function of irtbench accepts all three;
:func:`observed_of` and :func:`answers_of` read the dense forms a block of rows at a time.

This is the bottom layer of the package: it imports nothing else of irtbench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np
import pandas as pd

__all__ = [
    "MISSING",
    "BLOCK_ELEMENTS",
    "GPU_BLOCK_FACTOR",
    "COMPACT_ABOVE",
    "Responses",
    "SparseResponses",
    "is_compact",
    "is_sparse",
    "observed_of",
    "answers_of",
    "row_blocks",
    "to_compact",
    "to_sparse",
    "to_dense",
    "validate_responses",
    "split_observed",
    "observed_count",
    "size_label",
    "parse_size",
]

#: the missing code of compact (int8) responses
MISSING = -1
#: elements per block whenever anything walks a large matrix a block of rows at a time (numpy
#: and torch alike): 2 MB per float64 intermediate, so that a chain of elementwise operations on
#: a block stays in the CPU's cache (measured here: mml-em's E-step twice as fast as with 2^22)
BLOCK_ELEMENTS = 1 << 18
#: on a GPU each block costs kernel launches, so blocks are this many times larger there
GPU_BLOCK_FACTOR = 64
#: above this many cells, simulations and the reference estimator hold responses as int8
COMPACT_ABOVE = 1 << 25


def is_compact(responses: object) -> bool:
    """True for the compact form: an ``int8`` numpy array with ``-1`` for missing."""
    return isinstance(responses, np.ndarray) and responses.dtype == np.int8


def observed_of(responses: np.ndarray) -> np.ndarray:
    """Boolean mask of the observed entries of a (block of a) response matrix, either form."""
    return responses >= 0 if is_compact(responses) else ~np.isnan(responses)


def answers_of(responses: np.ndarray, dtype: type | np.dtype = np.float32) -> np.ndarray:
    """The 0/1 answers of a (block of a) response matrix, missing entries as 0, as ``dtype``."""
    if is_compact(responses):
        return (responses == 1).astype(dtype)
    return np.where(np.isnan(responses), 0.0, responses).astype(dtype)


def row_blocks(shape: tuple[int, ...], *, gpu: bool = False) -> list[slice]:
    """Slices of rows covering a matrix of ``shape`` :data:`BLOCK_ELEMENTS` entries at a time
    (``GPU_BLOCK_FACTOR`` times more for work on a GPU); ``shape[1]`` may be any per-row width
    (e.g. nodes x questions)."""
    elements = BLOCK_ELEMENTS * (GPU_BLOCK_FACTOR if gpu else 1)
    step = max(1, elements // max(1, shape[1]))
    return [slice(start, min(start + step, shape[0])) for start in range(0, shape[0], step)]


def to_compact(responses: np.ndarray) -> np.ndarray:
    """The compact ``int8`` form (``-1`` = missing) of a response matrix, a block at a time."""
    if is_compact(responses):
        return responses
    compact = np.empty(responses.shape, dtype=np.int8)
    for rows in row_blocks(responses.shape):
        block = responses[rows]
        compact[rows] = np.where(np.isnan(block), MISSING, block)
    return compact


@dataclass(frozen=True)
class SparseResponses:
    """Observed responses as ``(student, question, response)`` triples, for data where most
    responses are missing (online platforms: millions of learners, a few percent observed).

    Attributes:
        student, question: int64 indices of each observed response (0-based).
        response: int8 0/1 answers.
        shape: ``(n_students, n_questions)``.

    Memory: 17 bytes per observed response (two int64 indices and an int8), against 4 (float32)
    or 1 (int8) per *cell* of the dense matrix: the smaller when fewer than 1 in 17 (1 in 4.25
    against int8) cells are observed. ``jml-newton``, ``torch-adam`` and ``jax-adam`` fit these
    directly (gathers and scatter-adds); the metrics of :mod:`irtbench.metrics` accept them.
    """

    student: np.ndarray
    question: np.ndarray
    response: np.ndarray
    shape: tuple[int, int]

    @property
    def size(self) -> int:
        """Number of cells of the dense matrix these triples come from."""
        return self.shape[0] * self.shape[1]

    @property
    def n_observed(self) -> int:
        return len(self.response)


#: what every estimator and metric takes: a dense matrix (float32 with NaN, or compact int8)
#: or sparse triples
Responses = Union[np.ndarray, SparseResponses]


def is_sparse(responses: object) -> bool:
    return isinstance(responses, SparseResponses)


def to_sparse(responses: np.ndarray) -> SparseResponses:
    """The observed entries of a dense matrix (either form) as triples, row by row."""
    observed = observed_of(responses)
    student, question = np.nonzero(observed)
    return SparseResponses(student.astype(np.int64), question.astype(np.int64),
                           answers_of(responses[observed], np.int8), responses.shape)


def to_dense(responses: SparseResponses) -> np.ndarray:
    """The float32 matrix (NaN = missing) of sparse triples."""
    dense = np.full(responses.shape, np.nan, dtype=np.float32)
    dense[responses.student, responses.question] = responses.response
    return dense


def _validate_sparse(responses: SparseResponses) -> SparseResponses:
    n_students, n_questions = responses.shape
    student, question, response = responses.student, responses.question, responses.response
    if not (len(student) == len(question) == len(response)) or len(response) == 0:
        raise ValueError("sparse responses need equally long, non-empty student, question and "
                         "response arrays")
    for name, index, limit in (("student", student, n_students), ("question", question, n_questions)):
        if index.min() < 0 or index.max() >= limit:
            raise ValueError(f"a {name} index is outside 0..{limit - 1}")
    bad = (response != 0) & (response != 1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"responses must be 0 or 1; found {response[k]} for student "
                         f"{student[k]}, question {question[k]}")
    cells = student.astype(np.int64) * n_questions + question
    if not (cells[1:] > cells[:-1]).all() and len(np.unique(cells)) < len(cells):
        raise ValueError("a (student, question) pair appears more than once")
    for name, index, limit in (("student (row)", student, n_students),
                               ("question (column)", question, n_questions)):
        empty = np.flatnonzero(np.bincount(index, minlength=limit) == 0)
        if empty.size:
            raise ValueError(f"{name} {empty[0]} has no observed response ({empty.size} such)")
    return responses


def validate_responses(responses: object) -> Responses:
    """Check a response matrix and return it as float32 with NaN for missing, or, given the
    compact form (``int8``, ``-1`` = missing), as that same array.

    Accepts any 2-D array-like of 0/1 (bool, int, float; NaN or None = missing), a pandas
    DataFrame, or an object with a ``.responses`` attribute (a :class:`Dataset` or
    :class:`ResponseTable`). A float32 or int8 array is checked a block of rows at a time and
    returned without a copy.

    Raises:
        ValueError: naming the problem and the first offending row/column when the input is not
            2-D, is empty, holds a value other than 0, 1 or NaN (-1 in the compact form), or has a
            student (row) or a question (column) with no observed response.
    """
    if hasattr(responses, "responses"):
        responses = responses.responses
    if isinstance(responses, pd.DataFrame):
        responses = responses.to_numpy()
    if is_sparse(responses):
        return _validate_sparse(responses)
    if is_compact(responses):
        array, allowed = responses, "0, 1 or -1 (missing, in int8 responses)"
    else:
        try:
            array = np.asarray(responses, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(f"responses must be numeric 0/1 with NaN for missing: {error}") from None
        allowed = "0, 1 or NaN (missing)"
    if array.ndim != 2:
        raise ValueError(
            f"responses must be a 2-D matrix (students x questions), got {array.ndim}-D "
            f"with shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"responses is empty (shape {array.shape})")
    row_seen = np.zeros(array.shape[0], dtype=np.int64)
    column_seen = np.zeros(array.shape[1], dtype=np.int64)
    for rows in row_blocks(array.shape):
        block = array[rows]
        observed = observed_of(block)
        bad = ~((block == 0) | (block == 1) | (~observed if not is_compact(block) else block == MISSING))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"responses must be {allowed}; found {float(block[i, j]):g} at row "
                f"{rows.start + i}, column {j} ({int(bad.sum())} such value(s) in rows "
                f"{rows.start}-{rows.stop - 1})"
            )
        row_seen[rows] = observed.sum(axis=1)
        column_seen += observed.sum(axis=0)
    empty_rows = np.flatnonzero(row_seen == 0)
    if empty_rows.size:
        raise ValueError(
            f"student (row) {empty_rows[0]} has no observed response "
            f"({empty_rows.size} such row(s)); drop empty rows before fitting"
        )
    empty_columns = np.flatnonzero(column_seen == 0)
    if empty_columns.size:
        raise ValueError(
            f"question (column) {empty_columns[0]} has no observed response "
            f"({empty_columns.size} such column(s)); drop empty columns before fitting"
        )
    return array


def split_observed(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    """``(y, weight, n_observed)`` for the estimators' masked objectives: float32 responses with
    missing entries set to 0, a float32 0/1 weight of the observed entries (None when nothing
    is missing, so that the objective can take a plain mean), and the observed count."""
    n_observed = observed_count(responses)
    y = np.empty(responses.shape, dtype=np.float32)
    weight = np.empty(responses.shape, dtype=np.float32) if n_observed < responses.size else None
    for rows in row_blocks(responses.shape):
        y[rows] = answers_of(responses[rows])
        if weight is not None:
            weight[rows] = observed_of(responses[rows])
    return y, weight, n_observed


def observed_count(responses: np.ndarray) -> int:
    """Number of observed responses (not NaN, or not -1 in the compact form)."""
    if is_sparse(responses):
        return responses.n_observed
    return int(sum(observed_of(responses[rows]).sum() for rows in row_blocks(responses.shape)))


def most_answers(responses: Responses) -> int:
    """The most responses any one student gave (the test length a student's posterior sees)."""
    if is_sparse(responses):
        return int(np.bincount(responses.student, minlength=responses.shape[0]).max(initial=0))
    if not is_compact(responses) and not np.isnan(responses).any():
        return int(responses.shape[1])
    return int(max(observed_of(responses[rows]).sum(axis=1).max(initial=0)
                   for rows in row_blocks(responses.shape)))


def size_label(n_students: int, n_questions: int) -> str:
    """``"1000x100"``: the label of a matrix size used in tables and plots."""
    return f"{n_students}x{n_questions}"


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"1000x100"`` (also ``1e3x100``) into ``(n_students, n_questions)``."""
    try:
        parts = [float(part) for part in text.lower().split("x")]
        if len(parts) != 2 or not all(map(math.isfinite, parts)):
            raise ValueError
        rows, columns = (int(part) for part in parts)
    except ValueError:
        raise ValueError(f"size {text!r} is not of the form STUDENTSxQUESTIONS with finite "
                         "numbers, e.g. 1000x100 or 1e4x1e3") from None
    if rows < 1 or columns < 1 or rows != parts[0] or columns != parts[1]:
        raise ValueError(f"size {text!r} must have positive whole numbers of students and "
                         "questions")
    return rows, columns
