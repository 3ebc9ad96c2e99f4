r"""Response matrices: their formats, validation, and walking them a block of rows at a time.

A response matrix has one row per student and one column per question; entries are
``1.0`` (correct), ``0.0`` (wrong) or ``NaN`` (not observed), stored as ``float32``, or, in the
**compact** form (``simulate(..., compact=True)``, any ``int8`` array), ``1``, ``0`` or ``-1``
(:data:`MISSING`) as ``int8``: a quarter of the memory. Sparse data come as
:class:`SparseResponses` triples. Every function of irtbench accepts all three;
:func:`observed_of` and :func:`answers_of` read the dense forms a block of rows at a time.

**One pass.** :func:`scan_responses` validates a matrix and takes its observed count and row
and column totals in one pass, shared by every estimator as one typed :class:`Scan`. Before it,
each fit walked the host matrix four times before its first iteration
(validation, the observed count, then each round of the extremes) and once more after it (the
standard errors): at :math:`10^9` responses on a GPU that host work was 95% of what a user waited
for. :func:`scan_responses` reads each block of rows once, on every core this process may use
(``numpy`` releases the GIL in its reductions), and returns what everything after it needs:

* the checks of :func:`validate_responses` (values 0/1, NaN or -1 missing, no
  empty row or column), with the same one-line errors;
* :math:`r_i = \sum_j y_{ij}`, :math:`n_i = \sum_j o_{ij}` per student and
  :math:`s_j = \sum_i y_{ij}`, :math:`m_j = \sum_i o_{ij}` per question (:math:`o` the observed
  indicator), exact in integers;
* whether any response is missing (then the Rasch information needs the pattern; without, the
  raw scores are sufficient and the information a function of the estimates alone).

:func:`irtbench.extremes.find_extremes` starts from these totals and reads only the rows and
columns it removes; :mod:`irtbench.models.rasch` computes the SEs of complete data from them.

This is the bottom layer of the package: it imports nothing else of irtbench.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    "Scan",
    "scan_responses",
    "scan_workers",
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


def row_blocks(shape: tuple[int, ...], *, gpu: bool = False, elements: int | None = None
               ) -> list[slice]:
    """Slices of rows covering a matrix of ``shape`` ``elements`` entries at a time (default
    :data:`BLOCK_ELEMENTS`, ``GPU_BLOCK_FACTOR`` times more for work on a GPU); ``shape[1]``
    may be any per-row width (e.g. nodes x questions)."""
    elements = elements or BLOCK_ELEMENTS * (GPU_BLOCK_FACTOR if gpu else 1)
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
    :class:`ResponseTable`). A float32 or int8 array is checked a block of rows at a time, on
    every core, and returned without a copy: the checks of :func:`scan_responses`, whose
    totals this drops.

    Raises:
        ValueError: naming the problem and the first offending row/column when the input is not
            2-D, is empty, holds a value other than 0, 1 or NaN (-1 in the compact form), or has a
            student (row) or a question (column) with no observed response.
    """
    if hasattr(responses, "responses"):
        responses = responses.responses
    if is_sparse(responses):
        return _validate_sparse(responses)
    return scan_responses(responses)[0]


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


# -- one pass: validation and totals ------------------------------------------------------------
@dataclass(frozen=True)
class Scan:
    """What one pass over the responses tells.

    Attributes:
        shape: ``(n_students, n_questions)``.
        n_observed: observed responses.
        row_right, row_seen: right answers and observed responses per student (int64).
        col_right, col_seen: the same per question (int64).
    """

    shape: tuple[int, int]
    n_observed: int
    row_right: np.ndarray
    row_seen: np.ndarray
    col_right: np.ndarray
    col_seen: np.ndarray

    @property
    def complete(self) -> bool:
        """True when no response is missing."""
        return self.n_observed == self.shape[0] * self.shape[1]


def scan_workers() -> int:
    """Threads for the pass: the cores this process may use (the thread policy's pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Totals:
    """Per-block results written into shared arrays (each block its own rows; the column
    totals summed per block and added once at the end, so no two threads write one cell)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.row_right = np.empty(shape[0], dtype=np.int64)
        self.row_seen = np.empty(shape[0], dtype=np.int64)


def _block_counts(block: np.ndarray, allowed: str, start: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate one block of rows and return its ``(row_right, row_seen, col_right,
    col_seen)``; ``ValueError`` naming the first bad value's row and column."""
    if is_compact(block):
        low, high = int(block.min()), int(block.max())
        if low < MISSING or high > 1:
            _bad_value(block, (block < MISSING) | (block > 1), allowed, start)
        if low >= 0:  # complete block: the codes are the answers
            rows, columns = block.shape
            return (_sum(block, 1), np.full(rows, columns, dtype=np.int64), _sum(block, 0),
                    np.full(columns, rows, dtype=np.int64))
        right, observed = (block == 1).view(np.uint8), (block >= 0).view(np.uint8)
    else:
        observed = ~np.isnan(block)
        right = block == 1
        bad = ~(right | (block == 0) | ~observed)
        if bad.any():
            _bad_value(block, bad, allowed, start)
        right, observed = right.view(np.uint8), observed.view(np.uint8)
    return _sum(right, 1), _sum(observed, 1), _sum(right, 0), _sum(observed, 0)


def _sum(block: np.ndarray, axis: int) -> np.ndarray:
    """Sums of 0/1 bytes along ``axis`` as int64, accumulated in the narrowest integer that
    cannot overflow (int16 below 32768 terms: twice as fast as int64 here)."""
    terms = block.shape[axis]
    dtype = np.int16 if terms < 2**15 else np.int32 if terms < 2**31 else np.int64
    return block.sum(axis=axis, dtype=dtype).astype(np.int64)


def _bad_value(block: np.ndarray, bad: np.ndarray, allowed: str, start: int) -> None:
    i, j = np.argwhere(bad)[0]
    raise ValueError(
        f"responses must be {allowed}; found {float(block[i, j]):g} at row {start + i}, "
        f"column {j} ({int(bad.sum())} such value(s) in rows {start}-{start + len(block) - 1})")


def _as_matrix(responses: object) -> tuple[np.ndarray, str]:
    """The dense matrix to scan (float32 or int8, no copy of either) and the allowed values."""
    if hasattr(responses, "responses"):
        responses = responses.responses
    if isinstance(responses, pd.DataFrame):
        responses = responses.to_numpy()
    if is_compact(responses):
        array, allowed = responses, "0, 1 or -1 (missing, in int8 responses)"
    else:
        try:
            array = np.asarray(responses, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"responses must be numeric 0/1 with NaN for missing: {error}") from None
        allowed = "0, 1 or NaN (missing)"
    if array.ndim != 2:
        raise ValueError(f"responses must be a 2-D matrix (students x questions), got "
                         f"{array.ndim}-D with shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"responses is empty (shape {array.shape})")
    return array, allowed


def _sparse_scan(responses: SparseResponses) -> Scan:
    """The totals of validated triples, by ``np.bincount``."""
    n_students, n_questions = responses.shape
    right = responses.response.astype(np.float64)
    count = np.bincount
    return Scan(responses.shape, responses.n_observed,
                count(responses.student, right, n_students).astype(np.int64),
                count(responses.student, minlength=n_students).astype(np.int64),
                count(responses.question, right, n_questions).astype(np.int64),
                count(responses.question, minlength=n_questions).astype(np.int64))


def _require_observed(seen: np.ndarray, what: str, line: str) -> None:
    """``ValueError`` naming the first of ``what`` (``"student (row)"``) with no response."""
    empty = np.flatnonzero(seen == 0)
    if empty.size:
        raise ValueError(f"{what} {empty[0]} has no observed response ({empty.size} such "
                         f"{line}(s)); drop empty {line}s before fitting")


def scan_responses(responses: object, workers: int | None = None) -> tuple[Responses, Scan]:
    """Validate ``responses`` and count them in one pass, a block of rows at a time on
    ``workers`` threads (default :func:`scan_workers`).

    Returns:
        ``(responses, scan)``: the responses as :func:`~irtbench.responses.validate_responses`
        returns them (float32 with NaN, the int8 compact form unchanged, or sparse triples) and
        their :class:`Scan`.

    Raises:
        ValueError: the one line of :func:`~irtbench.responses.validate_responses` for a value
            other than 0/1/missing, a shape that is not 2-D, an empty matrix, or an empty row or
            column.
    """
    if hasattr(responses, "responses"):
        responses = responses.responses
    if is_sparse(responses):
        responses = _validate_sparse(responses)
        return responses, _sparse_scan(responses)
    array, allowed = _as_matrix(responses)
    blocks = row_blocks(array.shape)
    totals = _Totals(array.shape)

    def count(rows: slice) -> tuple[np.ndarray, np.ndarray]:
        right, seen, col_right, col_seen = _block_counts(array[rows], allowed, rows.start)
        totals.row_right[rows], totals.row_seen[rows] = right, seen
        return col_right, col_seen

    col_right = np.zeros(array.shape[1], dtype=np.int64)
    col_seen = np.zeros(array.shape[1], dtype=np.int64)
    for block_right, block_seen in _map(count, blocks, workers or scan_workers()):
        col_right += block_right
        col_seen += block_seen
    _require_observed(totals.row_seen, "student (row)", "row")
    _require_observed(col_seen, "question (column)", "column")
    scan = Scan(array.shape, int(totals.row_seen.sum()), totals.row_right, totals.row_seen,
                col_right, col_seen)
    return array, scan


def _map(function: Callable[[slice], tuple[np.ndarray, np.ndarray]], blocks: list[slice],
         workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``function`` over the blocks, on ``workers`` threads when there is more than one block
    each (in order; the first error raised as it is)."""
    if workers < 2 or len(blocks) < 2 * workers:
        return [function(rows) for rows in blocks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, blocks))
