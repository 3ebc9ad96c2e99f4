"""Reading response data from CSV files: wide (students x questions) or long
(``student, question, response``) layouts, with the row and column labels kept."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from irtbench.responses import validate_responses

__all__ = ["ResponseTable", "load_responses", "check_output", "write_csv"]


class ResponseTable(NamedTuple):
    """A response matrix read from a file, with its row and column labels (``label_column``:
    the file's column the student labels come from, the long file's student column or the
    wide file's first column when taken as labels; None when students are numbered)."""

    responses: np.ndarray
    students: list[str]
    questions: list[str]
    label_column: str | None = None


_LONG_COLUMNS = ("student", "question", "response")
_ID_COLUMN_NAMES = {"", "id", "student", "person", "respondent", "unnamed: 0"}
#: cells read as a missing response, and as answers (compared after stripping and lower-casing)
_MISSING_TOKENS = {"", "na", "nan"}
_ANSWERS = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}


def load_responses(path: str | Path) -> ResponseTable:
    """Read a response matrix from a CSV file (comma-separated, UTF-8 with or without a BOM,
    any line endings).

    Two layouts are recognised:

    * **long**: exactly the columns ``student, question, response`` (any order, any case),
      one row per observed response; pairs that do not appear (or a blank response) are missing.
    * **wide**: one row per student, one column per question, header = question labels; blank,
      ``NA`` or ``NaN`` cells are missing. A first column named ``id``/``student``/``person``
      (or unnamed), or holding mostly other values than answers, is taken as the student labels
      (``ResponseTable.label_column``); one of mostly answers with a few bad cells is refused;
      otherwise students are labelled by their row number (0-based; the file's line is that
      + 2).

    Every cell must be ``0``, ``1`` (``0.0``, ``1.0``) or missing: anything else (``TRUE``,
    ``2``, ``yes``) is refused rather than guessed at.

    Returns:
        A :class:`ResponseTable` ``(responses, students, questions)``; ``responses`` is validated
        as in :func:`validate_responses`.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: one line naming the file, the 1-based line and the column of the first
            problem, and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else "the file is empty"
        raise ValueError(f"{path} is not a readable CSV file: {first_line}") from None
    try:
        _check_header(path, [str(c) for c in table.columns])
        if table.empty:
            raise ValueError("the file has a header but no rows of responses")
        lowered = [str(c).strip().lower() for c in table.columns]
        if sorted(lowered) == sorted(_LONG_COLUMNS):
            student_column = str(table.columns[lowered.index("student")])
            return _from_long(table.set_axis(lowered, axis=1))._replace(
                label_column=student_column)
        return _from_wide(table)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _check_header(path: Path, columns: list[str]) -> None:
    """Refuse a header that names a column twice (pandas would rename the second ``Q1.1``) and
    explain a file that is not comma-separated."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        names = next(csv.reader(handle), [])
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"line 1: the column name {name!r} appears more than once")
        seen.add(name)
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        raise ValueError("line 1: one column only, whose name holds ';', a tab or '|': "
                         "irtbench reads comma-separated files (convert the separators to ',')")


def _answer(value: object, where: str) -> float:
    """One cell as 0.0, 1.0 or NaN (missing); ``ValueError`` naming ``where`` otherwise."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    token = text.strip().lower()
    if token in _MISSING_TOKENS:
        return np.nan
    if token in _ANSWERS:
        return _ANSWERS[token]
    hint = ""
    if token in ("true", "false", "yes", "no"):
        hint = " (write it as 1 or 0)"
    elif any(sep in token for sep in ";\t|"):
        hint = " (irtbench reads comma-separated files)"
    raise ValueError(f"{where}: {text!r} is not 0, 1 or blank{hint}")


#: cells that look like an answer, right or wrong, even where irtbench refuses them
_ANSWER_LIKE = _MISSING_TOKENS | set(_ANSWERS) | {"true", "false", "yes", "no"}


def _is_label_column(name: str, values: pd.Series) -> bool:
    """Whether a wide file's first column holds the student labels: named as an id column, or
    holding anything but answers. A column mostly of answers (0/1/blank, and a few cells such
    as ``yes``) is refused unless it is named as an id column: it is a question with bad
    cells, not labels, and taking it as labels would drop a question without a word."""
    if name.strip().lower() in _ID_COLUMN_NAMES:
        return True
    tokens = values.astype(str).str.strip().str.lower()
    answers = tokens.isin(_MISSING_TOKENS | set(_ANSWERS))
    if answers.all():
        return False
    if tokens.isin(_ANSWER_LIKE).mean() >= 0.5:
        first = int(np.flatnonzero(~answers.to_numpy())[0])
        raise ValueError(
            f"line {first + 2}, column {name!r}: {values.iloc[first]!r} is not 0, 1 or blank, "
            f"and the first column is mostly answers, so it is not taken as the student labels "
            f"(name it id, student or person if it holds labels)")
    return True


def _from_wide(table: pd.DataFrame) -> ResponseTable:
    columns = [str(c) for c in table.columns]
    lines = np.arange(len(table)) + 2  # the header is line 1
    label_column = None
    if len(columns) > 1 and _is_label_column(columns[0], table.iloc[:, 0]):
        label_column = columns[0]
        students = [str(s) for s in table.iloc[:, 0]]
        table, columns = table.iloc[:, 1:], columns[1:]
    else:
        students = [str(i) for i in range(len(table))]
    matrix = np.empty(table.shape, dtype=np.float32)
    for j, name in enumerate(columns):
        for i, value in enumerate(table.iloc[:, j]):
            matrix[i, j] = _answer(value, f"line {lines[i]}, column {name!r}")
    empty_rows = np.flatnonzero(np.isnan(matrix).all(axis=1))
    if empty_rows.size:
        i = empty_rows[0]
        raise ValueError(f"line {lines[i]} (student {students[i]!r}) has no observed response "
                         f"({empty_rows.size} such line(s)); drop empty rows before fitting")
    empty_columns = np.flatnonzero(np.isnan(matrix).all(axis=0))
    if empty_columns.size:
        raise ValueError(f"column {columns[empty_columns[0]]!r} has no observed response "
                         f"({empty_columns.size} such column(s)); drop it before fitting")
    return ResponseTable(validate_responses(matrix), students, columns, label_column)


def _labels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Distinct labels in order (numerically when they are all whole numbers, else as text)
    and the index of each value among them."""
    text = values.astype(str).str.strip().to_numpy()
    numbers = pd.to_numeric(pd.Series(text), errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        distinct, inverse = np.unique(numbers.to_numpy(), return_inverse=True)
        return np.array([f"{int(v)}" for v in distinct]), inverse.reshape(-1)
    distinct, inverse = np.unique(text, return_inverse=True)
    return distinct, inverse.reshape(-1)


def _from_long(table: pd.DataFrame) -> ResponseTable:
    lines = np.arange(len(table)) + 2
    values = np.array([_answer(v, f"line {line}, column 'response'")
                       for v, line in zip(table["response"], lines)], dtype=np.float32)
    kept = ~np.isnan(values)
    table, values, lines = table[kept], values[kept], lines[kept]
    duplicated = table.duplicated(["student", "question"]).to_numpy()
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(
            f"line {lines[duplicated][0]}: student {row['student']!r} has more than one "
            f"response to question {row['question']!r}")
    if not len(table):
        raise ValueError("no observed response: every response is blank")
    students, student_of = _labels(table["student"])
    questions, question_of = _labels(table["question"])
    matrix = np.full((len(students), len(questions)), np.nan, dtype=np.float32)
    matrix[student_of, question_of] = values
    return ResponseTable(validate_responses(matrix), [str(s) for s in students],
                         [str(q) for q in questions])


def check_output(path: Path, *, force: bool = False) -> Path:
    """``path`` if a CSV may be written there; ``ValueError`` naming the problem otherwise (a
    folder, a missing parent folder, an existing file without ``force``), before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name, e.g. {path / 'estimates.csv'}")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise ValueError(f"{path} exists; choose another --out or overwrite it with --force")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"cannot write {path}: the folder {path.parent} is not writable")
    return path


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` to ``path`` atomically: into a temporary file beside it, then renamed, so
    that a failure leaves no partial file (and an old file intact)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes it 0600; a file is the user's
        with os.fdopen(handle, "w", newline="") as stream:
            table.to_csv(stream, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
