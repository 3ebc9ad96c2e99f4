"""Reading response data from CSV files: wide (students x questions) or long
(``student, question, response``) layouts, with the row and column labels kept."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from irtbench.responses import validate_responses

__all__ = ["ResponseTable", "load_responses", "check_output", "write_csv"]


class ResponseTable(NamedTuple):
    """A response matrix read from a file, with its row and column labels."""

    responses: np.ndarray
    students: list[str]
    questions: list[str]


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
        with os.fdopen(handle, "w", newline="") as stream:
            table.to_csv(stream, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
