"""Response data: simulation from the Rasch model, CSV loading, and input validation.

A response matrix has one row per student and one column per question; entries are
``1.0`` (correct), ``0.0`` (wrong) or ``NaN`` (not observed), stored as ``float32``, or, in the
**compact** form (``simulate(..., compact=True)``, any ``int8`` array), ``1``, ``0`` or ``-1``
(:data:`MISSING`) as ``int8``: a quarter of the memory. Every function of irtbench accepts both;
:func:`observed_of` and :func:`answers_of` read either, a block of rows at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from irtbench.model import probabilities, sigmoid

__all__ = [
    "Dataset",
    "ResponseTable",
    "SparseResponses",
    "simulate",
    "simulate_sparse",
    "to_dense",
    "to_sparse",
    "load_responses",
    "validate_responses",
]

DISTRIBUTIONS = ("uniform", "normal")
_ROWS_PER_CHUNK = 4096
#: the missing code of compact (int8) responses
MISSING = -1
#: elements per block when a function walks a large matrix a block of rows at a time
BLOCK_ELEMENTS = 1 << 22


def is_compact(responses: Any) -> bool:
    """True for the compact form: an ``int8`` numpy array with ``-1`` for missing."""
    return isinstance(responses, np.ndarray) and responses.dtype == np.int8


def observed_of(responses: np.ndarray) -> np.ndarray:
    """Boolean mask of the observed entries of a (block of a) response matrix, either form."""
    return responses >= 0 if is_compact(responses) else ~np.isnan(responses)


def answers_of(responses: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The 0/1 answers of a (block of a) response matrix, missing entries as 0, as ``dtype``."""
    if is_compact(responses):
        return (responses == 1).astype(dtype)
    return np.where(np.isnan(responses), 0.0, responses).astype(dtype)


def row_blocks(shape: tuple[int, ...], elements: int = BLOCK_ELEMENTS) -> list[slice]:
    """Slices of rows covering a matrix of ``shape`` about ``elements`` entries at a time."""
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
class Dataset:
    """A simulated response matrix together with the parameters that generated it.

    Attributes:
        responses: ``(n_students, n_questions)`` float32, 1.0/0.0, NaN = missing.
        skill: true skills, float64, shape ``(n_students,)``.
        difficulty: true difficulties, float64, shape ``(n_questions,)``.
        seed: the seed that generated it.
        missing: the requested fraction of responses missing at random.
    """

    responses: np.ndarray
    skill: np.ndarray
    difficulty: np.ndarray
    seed: int | None = None
    missing: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.responses.shape  # type: ignore[return-value]


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


def is_sparse(responses: Any) -> bool:
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


def simulate_sparse(
    n_students: int,
    n_questions: int,
    n_observed: int,
    *,
    seed: int | None = 0,
    skill_scale: float = 3.0,
    difficulty_scale: float = 3.0,
) -> Dataset:
    """Simulate a sparse response matrix: about ``n_observed`` responses at (student, question)
    pairs drawn uniformly at random, skills and difficulties Uniform(-scale, scale).

    Every student and every question gets at least one response (one random pair each first),
    duplicate pairs are dropped, and the triples are sorted by student. Returns a
    :class:`Dataset` whose ``responses`` are :class:`SparseResponses`; no dense matrix is made.
    """
    for name, value in (("n_students", n_students), ("n_questions", n_questions),
                        ("n_observed", n_observed)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_observed > n_students * n_questions:
        raise ValueError(f"n_observed={n_observed} exceeds the {n_students * n_questions} cells")
    rng = np.random.default_rng(seed)
    skill = rng.uniform(-skill_scale, skill_scale, n_students)
    difficulty = rng.uniform(-difficulty_scale, difficulty_scale, n_questions)
    extra = max(0, n_observed - n_students - n_questions)
    student = np.concatenate([np.arange(n_students), rng.integers(n_students, size=n_questions),
                              rng.integers(n_students, size=extra)])
    question = np.concatenate([rng.integers(n_questions, size=n_students), np.arange(n_questions),
                               rng.integers(n_questions, size=extra)])
    cells = np.unique(student * np.int64(n_questions) + question)  # sorted, no duplicates
    student, question = np.divmod(cells, np.int64(n_questions))
    logits = skill[student] - difficulty[question]
    response = (rng.random(len(cells)) < sigmoid(logits)).astype(np.int8)
    return Dataset(SparseResponses(student, question, response, (n_students, n_questions)),
                   skill, difficulty, seed=seed, missing=1.0 - len(cells) / (n_students * n_questions))


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


class ResponseTable(NamedTuple):
    """A response matrix read from a file, with its row and column labels."""

    responses: np.ndarray
    students: list[str]
    questions: list[str]


def _draw(rng: np.random.Generator, distribution: str, scale: float, size: int) -> np.ndarray:
    if distribution == "uniform":
        return rng.uniform(-scale, scale, size)
    if distribution == "normal":
        return rng.normal(0.0, scale, size)
    raise ValueError(f"unknown distribution {distribution!r}; choose one of {DISTRIBUTIONS}")


def simulate(
    n_students: int,
    n_questions: int,
    *,
    seed: int | None = 0,
    missing: float = 0.0,
    skill_distribution: str = "uniform",
    skill_scale: float = 3.0,
    difficulty_distribution: str = "uniform",
    difficulty_scale: float = 3.0,
    compact: bool = False,
) -> Dataset:
    r"""Simulate responses from the Rasch model, as the seed notebook does (with its bug fixed).

    .. math::
        \theta_i \sim D_\theta,\quad b_j \sim D_b,\quad
        Y_{ij} \sim \mathrm{Bernoulli}\big(\sigma(\theta_i - b_j)\big)

    where ``"uniform"`` means Uniform(-scale, scale) (the notebook's Uniform(-3, 3) by default)
    and ``"normal"`` means Normal(0, scale^2). Each response is then hidden (NaN) independently
    with probability ``missing``. Whenever that leaves a student or a question with no observed
    response, one of its responses (chosen by the same generator) is kept, so the result is
    always a valid input for every estimator.

    Draws come from ``numpy.random.default_rng(seed)`` in a fixed order (skills, difficulties,
    responses row-chunk by row-chunk, missingness), so a seed gives the same data on every machine.

    Args:
        n_students: number of rows, >= 1.
        n_questions: number of columns, >= 1.
        seed: seed of the numpy Generator.
        missing: fraction in [0, 1) of responses missing completely at random.
        skill_distribution, difficulty_distribution: ``"uniform"`` or ``"normal"``.
        skill_scale, difficulty_scale: half-width (uniform) or standard deviation (normal).
        compact: return the responses as ``int8`` with ``-1`` for missing (the same draws),
            written a block at a time, so that no float32 matrix of that size ever exists.

    Returns:
        A :class:`Dataset`.

    Examples:
        >>> data = simulate(1000, 100, seed=0)
        >>> data.responses.shape, data.responses.dtype
        ((1000, 100), dtype('float32'))
        >>> float(data.skill.min()) >= -3.0
        True
    """
    for name, value in (("n_students", n_students), ("n_questions", n_questions)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be a fraction in [0, 1), got {missing!r}")
    rng = np.random.default_rng(seed)
    skill = _draw(rng, skill_distribution, skill_scale, n_students)
    difficulty = _draw(rng, difficulty_distribution, difficulty_scale, n_questions)
    responses = np.empty((n_students, n_questions), dtype=np.int8 if compact else np.float32)
    for start in range(0, n_students, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, n_students)
        p = probabilities(skill[start:stop], difficulty)
        responses[start:stop] = rng.random(p.shape) < p
    if missing > 0:
        _hide_at_random(responses, missing, rng)
    return Dataset(responses, skill, difficulty, seed=seed, missing=float(missing))


def _hide_at_random(responses: np.ndarray, missing: float, rng: np.random.Generator) -> None:
    """Set a ``missing`` fraction of entries to missing (NaN or -1), keeping >= 1 observation per
    row and column."""
    n_students, n_questions = responses.shape
    hidden = rng.random(responses.shape) < missing
    for i in np.flatnonzero(hidden.all(axis=1)):
        hidden[i, rng.integers(n_questions)] = False
    for j in np.flatnonzero(hidden.all(axis=0)):
        hidden[rng.integers(n_students), j] = False
    responses[hidden] = MISSING if is_compact(responses) else np.nan


def validate_responses(responses: Any) -> np.ndarray:
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


_LONG_COLUMNS = ("student", "question", "response")
_ID_COLUMN_NAMES = {"", "id", "student", "person", "respondent", "unnamed: 0"}


def load_responses(path: str | Path) -> ResponseTable:
    """Read a response matrix from a CSV file.

    Two layouts are recognised:

    * **long**: exactly the columns ``student, question, response`` (any order, any case),
      one row per observed response; pairs that do not appear are missing.
    * **wide**: one row per student, one column per question, header = question labels; blank,
      ``NA`` or ``NaN`` cells are missing. A first column named ``id``/``student``/``person``
      (or unnamed), or holding text, is taken as the student labels; otherwise students are
      labelled by their row number (0-based).

    Returns:
        A :class:`ResponseTable` ``(responses, students, questions)``; ``responses`` is validated
        as in :func:`validate_responses`.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file is not a readable CSV, or its contents are not valid responses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "empty file"
        raise ValueError(f"{path} is not a readable CSV file: {first_line}") from None
    lowered = [str(c).strip().lower() for c in table.columns]
    try:
        if sorted(lowered) == sorted(_LONG_COLUMNS):
            return _from_long(table.set_axis(lowered, axis=1))
        return _from_wide(table)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _from_long(table: pd.DataFrame) -> ResponseTable:
    duplicated = table.duplicated(["student", "question"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(
            f"student {row['student']!r} has more than one response to question "
            f"{row['question']!r} (line {int(np.flatnonzero(duplicated)[0]) + 2})"
        )
    values = pd.to_numeric(table["response"], errors="coerce")
    unparsable = values.isna() & table["response"].notna()
    if unparsable.any():
        line = int(np.flatnonzero(unparsable)[0]) + 2
        raise ValueError(f"response {table['response'][unparsable].iloc[0]!r} on line {line} is not 0/1")
    wide = table.assign(response=values).pivot(index="student", columns="question", values="response")
    matrix = validate_responses(wide.to_numpy(dtype=np.float64))
    return ResponseTable(matrix, [str(s) for s in wide.index], [str(q) for q in wide.columns])


def _from_wide(table: pd.DataFrame) -> ResponseTable:
    first = table.columns[0]
    first_is_label = str(first).strip().lower() in _ID_COLUMN_NAMES or (
        table[first].dtype == object and pd.to_numeric(table[first], errors="coerce").isna().any()
    )
    if first_is_label and table.shape[1] > 1:
        students = [str(s) for s in table[first]]
        table = table.drop(columns=first)
    else:
        students = [str(i) for i in range(len(table))]
    numeric = table.apply(pd.to_numeric, errors="coerce")
    unparsable = numeric.isna() & table.notna()
    if unparsable.to_numpy().any():
        i, j = np.argwhere(unparsable.to_numpy())[0]
        raise ValueError(
            f"value {table.iat[i, j]!r} at row {i}, column {table.columns[j]!r} is not 0/1 or blank"
        )
    matrix = validate_responses(numeric.to_numpy(dtype=np.float64))
    return ResponseTable(matrix, students, [str(q) for q in table.columns])


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


def size_label(n_students: int, n_questions: int) -> str:
    """``"1000x100"``: the label of a matrix size used in tables and plots."""
    return f"{n_students}x{n_questions}"


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"1000x100"`` (also ``1e3x100``) into ``(n_students, n_questions)``."""
    try:
        rows, columns = (int(float(part)) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not of the form STUDENTSxQUESTIONS, e.g. 1000x100") from None
    if rows < 1 or columns < 1 or not math.isfinite(rows * columns):
        raise ValueError(f"size {text!r} must have positive dimensions")
    return rows, columns
