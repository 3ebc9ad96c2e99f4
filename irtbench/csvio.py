"""Reading response data from CSV and Parquet files: wide (students x questions) or long (one
row per answer: a respondent, an item, an answer) layouts, with the row and column labels kept
and the rows and columns with no observed answer left out (:class:`Unobserved`)."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from irtbench.responses import validate_responses

__all__ = ["LONG_COLUMNS", "PARQUET_SUFFIXES", "ExtraNotInstalled", "ResponseTable",
           "Unobserved", "check_output", "first_few", "load_responses", "with_unobserved",
           "write_csv"]


class Unobserved(NamedTuple):
    """The file's students and questions with no observed answer, left out of a
    :class:`ResponseTable`'s matrix: each as ``(place, label)``, its 0-based place among the
    file's students (questions) in the order :func:`load_responses` reads them."""

    students: tuple[tuple[int, str], ...] = ()
    questions: tuple[tuple[int, str], ...] = ()

    def __bool__(self) -> bool:
        """False when nothing was left out (not a tuple's length, always 2)."""
        return bool(self.students or self.questions)


class ResponseTable(NamedTuple):
    """A response matrix read from a file, with its row and column labels (``label_column``:
    the file's column the student labels come from, the long file's respondent column or the
    wide file's first column when taken as labels; None when students are numbered).

    ``responses``, ``students`` and ``questions`` hold only the students and questions with at
    least one observed answer; ``unobserved`` names the others (left out: they carry no
    information) and ``notes`` says in a line each what was left out or ignored."""

    responses: np.ndarray
    students: list[str]
    questions: list[str]
    label_column: str | None = None
    unobserved: Unobserved = Unobserved()
    notes: tuple[str, ...] = ()


class ExtraNotInstalled(ImportError):
    """An optional dependency of irtbench (an extra, ``irtbench[parquet]``) is not installed."""


#: a long file's columns, by role, as they may be named (stripped, in any case; a respondent's
#: or an item's name also with ``_id``: ``person_id``, ``item_id``): the names of irtbench's
#: own files, of the item-response warehouses (``id, item, resp``) and of evaluation
#: harnesses (``model, item, correct`` or ``score``)
LONG_COLUMNS: dict[str, tuple[str, ...]] = {
    "respondent": ("student", "person", "respondent", "id", "model", "subject", "examinee",
                   "user"),
    "item": ("question", "item", "problem"),
    "answer": ("response", "resp", "correct", "score"),
}
#: the suffixes of the files read as Parquet (pandas with pyarrow: ``irtbench[parquet]``)
PARQUET_SUFFIXES = (".parquet", ".pq")

_ID_COLUMN_NAMES = {"", "id", "student", "person", "respondent", "unnamed: 0"}
#: cells read as a missing response, and as answers (compared after stripping and lower-casing)
_MISSING_TOKENS = {"", "na", "nan"}
_ANSWERS = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0}
#: cells that look like an answer, right or wrong, even where irtbench refuses them
_ANSWER_LIKE = _MISSING_TOKENS | set(_ANSWERS) | {"true", "false", "yes", "no"}
#: how many labels a note names before it only counts
_SHOWN = 5

#: where a data row of a file is: its 0-based index -> ``line 7`` (CSV) or ``row 5`` (Parquet);
#: :data:`HEADER` -> where the column names are (``line 1``, ``the column names``)
Place = Callable[[int], str]
HEADER = -1


def _csv_place(row: int) -> str:
    return "line 1" if row == HEADER else f"line {row + 2}"


def _parquet_place(row: int) -> str:
    return "the column names" if row == HEADER else f"row {row}"


def load_responses(path: str | Path) -> ResponseTable:
    """Read a response matrix from a CSV file (comma-separated, UTF-8 with or without a BOM,
    any line endings) or a Parquet file (suffix ``.parquet`` or ``.pq``; needs pyarrow:
    ``pip install 'irtbench[parquet]'``).

    Two layouts are recognised:

    * **long**: one row per observed answer, with one column for each role, named as in
      :data:`LONG_COLUMNS` in any case: the respondent (``student``, ``person``, ``id``,
      ``model``, ...), the item (``question``, ``item``, ``problem``) and the answer
      (``response``, ``resp``, ``correct``, ``score``); ``person_id``, ``item_id`` and the
      like too. Other columns (a response time, a date) are ignored, with a note. Pairs that
      do not appear (or a blank answer) are missing. A header with an item column and a
      respondent or answer column but not one of each is refused, naming what is missing and
      the accepted names.
    * **wide**: one row per student, one column per question, header = question labels; blank,
      ``NA`` or ``NaN`` cells are missing. A first column named ``id``/``student``/``person``
      (or unnamed), or holding mostly other values than answers, is taken as the student labels
      (``ResponseTable.label_column``); one of mostly answers with a few bad cells is refused;
      otherwise students are labelled by their row number (0-based; a CSV file's line is that
      + 2).

    Every cell must be ``0``, ``1`` (``0.0``, ``1.0``; a Parquet column of booleans as
    ``False``/``True``) or missing: anything else (``TRUE`` in a CSV file, ``0.5``, ``2``,
    ``yes``) is refused rather than guessed at.

    Students and questions with no observed answer carry no information about the others:
    they are left out of the matrix and named in ``ResponseTable.unobserved`` and ``notes``
    (the Python API, :func:`irtbench.fit`, refuses a matrix with such a row or column).

    Returns:
        A :class:`ResponseTable` ``(responses, students, questions, label_column, unobserved,
        notes)``; ``responses`` is validated as in :func:`validate_responses`.

    Raises:
        FileNotFoundError: the path does not exist.
        ExtraNotInstalled: a Parquet file without pyarrow (the message names the install
            command).
        ValueError: one line naming the file, the place of the first problem (the 1-based line
            of a CSV file, the 0-based row of a Parquet file) and its column, and what was
            expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    table = _read_parquet(path) if parquet else _read_csv(path)
    place = _parquet_place if parquet else _csv_place
    try:
        if not parquet:
            _check_csv_header(path, [str(c) for c in table.columns])
        _check_names(table.columns, place)
        if table.empty:
            raise ValueError("the file has a header but no rows of responses")
        columns = _long_columns([str(c) for c in table.columns], place)
        if columns is not None:
            return _from_long(table, columns, place)
        return _from_wide(table, place)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _read_csv(path: Path) -> pd.DataFrame:
    """The cells of a CSV file as text, or a one-line ``ValueError``."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else "the file is empty"
        raise ValueError(f"{path} is not a readable CSV file: {first_line}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    """The cells of a Parquet file as text, as a CSV file's would read (:func:`_as_text`), with
    the index pandas stored (:func:`_index_as_columns`). :class:`ExtraNotInstalled` without
    pyarrow, a one-line ``ValueError`` for a file it cannot read."""
    try:
        import pyarrow
    except ImportError:
        raise ExtraNotInstalled(f"{path}: reading Parquet needs pyarrow, which is not "
                                "installed; install it with: pip install 'irtbench[parquet]'"
                                ) from None
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else "the file is empty"
        raise ValueError(f"{path} is not a readable Parquet file: {first_line}") from None
    return _as_text(_index_as_columns(frame))


def _index_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the index pandas stored in the file as its first columns where it holds
    labels: a named index (the ``model`` and ``item`` of a long frame indexed by them), or an
    unnamed one of text in a wide file (its students' labels; then named ``id``). An unnamed
    index of numbers (the positions left by filtering a frame) is dropped, as ``to_csv(...,
    index=False)`` would."""
    index = frame.index
    if any(name is not None for name in index.names):
        return frame.reset_index()
    if (index.nlevels == 1 and not pd.api.types.is_numeric_dtype(index.dtype)
            and not any(_role_of(str(c)) == "item" for c in frame.columns)):
        return frame.rename_axis("id").reset_index()
    return frame.reset_index(drop=True)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A typed frame's cells as a CSV file's text: nulls blank, booleans ``1``/``0`` (a
    column of booleans is right and wrong answers), numbers as Python writes them
    (``1.0``, ``0.5``, ``3``), every column named by its text."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_bool_dtype(values.dtype):
            text = values.astype(object).map({True: "1", False: "0"})
        else:
            text = values.astype(object)
        columns[str(name)] = text.where(values.notna().to_numpy(), "").astype(str)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _check_csv_header(path: Path, columns: list[str]) -> None:
    """Refuse a header that names a column twice (pandas would rename the second ``Q1.1``) and
    explain a file that is not comma-separated."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        _check_names(next(csv.reader(handle), []), _csv_place)
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        raise ValueError("line 1: one column only, whose name holds ';', a tab or '|': "
                         "irtbench reads comma-separated files (convert the separators to ',')")


def _check_names(names: Sequence[object], place: Place) -> None:
    """Refuse a column named twice."""
    seen: set[str] = set()
    for name in map(str, names):
        if name in seen:
            raise ValueError(f"{place(HEADER)}: the column name {name!r} appears more than "
                             "once")
        seen.add(name)


# -- the long layout -----------------------------------------------------------------------
def _role_of(name: str) -> str | None:
    """The role of a long file's column from its name (:data:`LONG_COLUMNS`), else None."""
    token = name.strip().lower()
    for role, names in LONG_COLUMNS.items():
        if token in names or (role != "answer" and token.endswith("_id")
                              and token[:-3] in names):
            return role
    return None


def _accepted_long_columns() -> str:
    """The names a long file's columns may have, by role, in words (for error messages)."""
    return ("a long file has one column for each role, named in any case: "
            + "; ".join(f"{role}: {', '.join(names)}" for role, names in LONG_COLUMNS.items())
            + "; a respondent's or an item's name also with _id (person_id, item_id)")


def _unplaced(columns: Sequence[str]) -> str:
    """``the column(s) 'a', 'b' could not be placed; `` for the columns of no role, or ''."""
    names = [repr(c) for c in columns if _role_of(c) is None]
    return f"the column(s) {', '.join(names)} could not be placed; " if names else ""


def _long_columns(columns: list[str], place: Place) -> dict[str, str] | None:
    """The column of each role when the header is a long file's, None when it is a wide
    file's (no column named as an item, or none named as a respondent or an answer besides).
    A header with an item column and another role's but not exactly one of each is refused in
    one line naming what is missing or doubled and the accepted names."""
    placed = {role: [c for c in columns if _role_of(c) == role] for role in LONG_COLUMNS}
    if not placed["item"] or not (placed["respondent"] or placed["answer"]):
        return None
    problems = [f"no column for the {role}" if not found else
                f"{len(found)} columns could be the {role} ({', '.join(map(repr, found))})"
                for role, found in placed.items() if len(found) != 1]
    if problems:
        raise ValueError(f"{place(HEADER)}: a long file's header, but " + "; ".join(problems)
                         + "; " + _unplaced(columns) + _accepted_long_columns())
    return {role: found[0] for role, found in placed.items()}


def _from_long(table: pd.DataFrame, columns: dict[str, str], place: Place) -> ResponseTable:
    """A long file's matrix: one row per distinct respondent, one column per distinct item
    (each in the order of :func:`_labels`), blank answers and absent pairs missing."""
    respondent, item, answer = (columns[role] for role in LONG_COLUMNS)
    values = _answers(table[answer], answer, place)
    ignored = [c for c in map(str, table.columns) if c not in columns.values()]
    students, student_of = _labels(table[respondent])
    questions, question_of = _labels(table[item])
    kept = ~np.isnan(values)
    if not kept.any():
        raise ValueError(f"no observed response: every value of column {answer!r} is blank")
    pairs = pd.DataFrame({"student": student_of[kept], "question": question_of[kept]})
    duplicated = pairs.duplicated().to_numpy()
    if duplicated.any():
        first = int(np.flatnonzero(kept)[np.flatnonzero(duplicated)[0]])
        also = (f" (the columns {', '.join(map(repr, ignored))} are ignored: keep one row per "
                "pair)" if ignored else "")
        raise ValueError(f"{place(first)}: student {table[respondent].iloc[first]!r} has more "
                         f"than one response to question {table[item].iloc[first]!r}{also}")
    matrix = np.full((len(students), len(questions)), np.nan, dtype=np.float32)
    matrix[student_of[kept], question_of[kept]] = values[kept]
    notes = ((f"the columns {', '.join(map(repr, ignored))} ignored (a long file's "
              f"respondent, item and answer are {respondent!r}, {item!r} and {answer!r})"),
             ) if ignored else ()
    return _observed(matrix, [str(s) for s in students], [str(q) for q in questions],
                     respondent, notes)


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


# -- the wide layout -----------------------------------------------------------------------
def _is_label_column(name: str, values: pd.Series, place: Place) -> bool:
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
            f"{place(first)}, column {name!r}: {values.iloc[first]!r} is not 0, 1 or blank, "
            f"and the first column is mostly answers, so it is not taken as the student labels "
            f"(name it id, student or person if it holds labels)")
    return True


def _holds_labels(values: pd.Series) -> bool:
    """Whether a column holds mostly other values than answers (a long file's respondents or
    items)."""
    return bool(values.astype(str).str.strip().str.lower().isin(_ANSWER_LIKE).mean() < 0.5)


def _from_wide(table: pd.DataFrame, place: Place) -> ResponseTable:
    """A wide file's matrix; a cell that is not an answer is refused, with the long layout's
    names when two or more columns hold labels (the file may be a long one whose columns have
    other names)."""
    columns = [str(c) for c in table.columns]
    label_column = None
    if len(columns) > 1 and _is_label_column(columns[0], table.iloc[:, 0], place):
        label_column = columns[0]
        students = [str(s) for s in table.iloc[:, 0]]
        answers, questions = table.iloc[:, 1:], columns[1:]
    else:
        students = [str(i) for i in range(len(table))]
        answers, questions = table, columns
    matrix = np.empty(answers.shape, dtype=np.float32)
    try:
        for j, name in enumerate(questions):
            matrix[:, j] = _answers(answers.iloc[:, j], name, place)
    except ValueError as error:
        if sum(_holds_labels(table[c]) for c in table.columns) >= 2:
            raise ValueError(f"{error}, read as a wide file; if it is a long one, "
                             + _unplaced(columns) + _accepted_long_columns()) from None
        raise
    return _observed(matrix, students, questions, label_column)


# -- both ----------------------------------------------------------------------------------
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


def _answers(values: pd.Series, column: str, place: Place) -> np.ndarray:
    """A column of cells as 0.0, 1.0 or NaN (float32), by the rule of :func:`_answer`, which
    names the first other cell (``line 7, column 'resp': '0.5' is not 0, 1 or blank``)."""
    tokens = values.astype(str).str.strip().str.lower()
    read = tokens.map(_ANSWERS)
    bad = (read.isna() & ~tokens.isin(_MISSING_TOKENS)).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        _answer(values.iloc[first], f"{place(first)}, column {column!r}")
    return read.to_numpy(np.float32)


def _observed(matrix: np.ndarray, students: list[str], questions: list[str],
              label_column: str | None, notes: tuple[str, ...] = ()) -> ResponseTable:
    """The table of the students and questions with an observed answer, the others named in
    its ``unobserved`` and in a note. (Leaving a row out changes no column's observed answers,
    and a column none of a row's, so one pass finds them all.)"""
    observed = ~np.isnan(matrix)
    rows, cols = observed.any(axis=1), observed.any(axis=0)
    if not rows.any():
        raise ValueError("no observed response: every cell is blank")
    unobserved = Unobserved(
        tuple((int(i), students[i]) for i in np.flatnonzero(~rows)),
        tuple((int(j), questions[j]) for j in np.flatnonzero(~cols)))
    if unobserved:
        matrix = matrix[np.ix_(rows, cols)]
        students = [s for s, keep in zip(students, rows) if keep]
        questions = [q for q, keep in zip(questions, cols) if keep]
        notes = (*notes, _unobserved_note(unobserved))
    return ResponseTable(validate_responses(matrix), students, questions, label_column,
                         unobserved, notes)


def first_few(names: Sequence[str], shown: int = _SHOWN) -> str:
    """The first ``shown`` of ``names``, quoted, and how many there are in all."""
    head = ", ".join(repr(name) for name in names[:shown])
    return head + (f" ... ({len(names)} in all)" if len(names) > shown else "")


def _unobserved_note(unobserved: Unobserved) -> str:
    """One line: how many students and questions had no observed answer, the first few by
    label, and that they were left out."""
    parts = [f"{len(places)} {kind}(s) with no observed answer "
             f"({first_few([label for _, label in places])})"
             for kind, places in (("respondent", unobserved.students),
                                  ("question", unobserved.questions)) if places]
    return " and ".join(parts) + " left out (they carry no information about the others)"


def with_unobserved(frame: pd.DataFrame, unobserved: Sequence[tuple[int, str]],
                    **fill: object) -> pd.DataFrame:
    """``frame``, one row per student (or question) of a :class:`ResponseTable` in order, with
    a row for each of ``unobserved`` (:class:`Unobserved`'s students or questions) at its place
    in the file: its ``label``, False in the boolean columns, ``fill``'s values where given,
    NaN elsewhere; and the column ``unobserved``, True on those rows. So a file written from
    it has one row per student (question) of the input file."""
    places = [place for place, _ in unobserved]
    n = len(frame) + len(places)
    kept = np.setdiff1d(np.arange(n), places)
    out = frame.set_axis(kept).reindex(np.arange(n))
    out.loc[places, "label"] = [label for _, label in unobserved]
    for column, value in fill.items():
        out.loc[places, column] = value
    for column in frame.columns:
        if frame[column].dtype == bool:
            out[column] = out[column].fillna(False)
        if not out[column].isna().any() and out[column].dtype != frame[column].dtype:
            out[column] = out[column].astype(frame[column].dtype)
    out["unobserved"] = np.isin(np.arange(n), places)
    return out


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
