r"""The estimates file: what ``irtbench fit`` writes (:func:`estimates_table`) and what reads it
back (:func:`read_estimates`; :func:`read_items`, the items by name with the model their
columns are, for ``irtbench score``).

One CSV row per student, then one per question, in the order of the response file, with the
columns:

- ``kind``: ``student`` or ``question``; ``label``: the row's label (the file's label column,
  else the row number from 0) or the question's column name.
- ``estimate`` and ``se``: the skill :math:`\theta_i` of a student, the difficulty :math:`b_j`
  of a question (the M2PL's MDIFF), with its standard error (empty where the estimator gives
  none).
- ``extreme``: True for a student or question answered all right or all wrong
  (:func:`irtbench.models.extremes`): a maximum-likelihood fit (an estimator that declares
  ``infinite_extremes``) writes ``-inf`` or ``inf`` with SE ``inf`` there, the others a finite
  posterior summary pulled in by the prior.
- the model's other item parameters, each with its SE, on the question rows:
  ``discrimination``/``discrimination_se`` (2PL and up; the M2PL's MDISC), ``guessing`` (3PL,
  4PL), ``ceiling`` (4PL), ``intercept`` (M2PL); a parameter of D coordinates (the M2PL's
  loadings) as ``loading_1``, ``loading_1_se``, ..., ``loading_D_se`` (:func:`part_columns`),
  and the M2PL's skills likewise as ``skill_1`` ... ``skill_D_se`` on the student rows, whose
  ``estimate`` and ``se`` are then empty.
- ``runaway`` (models with slopes): True for a question whose estimates ran away (the likelihood
  keeps rising along it: not identified by the data).
- ``flat`` (the 2PL, 3PL and 4PL, from an estimator with SEs): True for a question whose
  difficulty the data do not locate at a finite optimum, its 95% interval holding every
  student's skill (a slope near 0: :func:`irtbench.models.twopl.flat_items`); not a runaway.
- ``origin``: how the estimates are identified (a key of :data:`ORIGINS`): the estimator's own
  identification, or skills and difficulties shifted alike so that the mean difficulty of the
  non-extreme questions is 0.
- ``unobserved`` (only in a file whose input had them): True for a student or question with no
  observed answer in the response file, left out of the fit
  (:class:`irtbench.csvio.Unobserved`) and written at its place as not estimated: every
  estimate and SE empty (NaN), ``extreme`` and the other flags False. The file keeps one row
  per student and question of the input; :func:`read_estimates` reads their estimates as NaN,
  and ``irtbench score`` leaves such questions out.

Probabilities follow from a row of each kind by the model's formula (:mod:`irtbench.models`),
e.g. the 2PL's :math:`P(y_{ij} = 1) = \sigma(a_j(\theta_i - b_j))`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from irtbench.csvio import ResponseTable, with_unobserved
from irtbench.metrics import align
from irtbench.models import MODELS, extremes, get_model

if TYPE_CHECKING:
    from irtbench.estimators import Fit

__all__ = ["COLUMN_STEMS", "NOT_PARAMETERS", "ORIGINS", "ItemEstimates", "estimates_table",
           "model_of", "part_columns", "read_estimates", "read_items"]

#: ``irtbench fit --origin``: how the written estimates are identified (default the first)
ORIGINS = {
    "estimator": "each estimator's own identification, as irtbench.fit returns it and the "
                 "field's packages report it (the marginal fits: skills of mean 0)",
    "mean-difficulty": "one origin for every estimator: skills and difficulties shifted alike "
                       "so that the mean difficulty of the non-extreme questions is 0",
}


#: the column stem of each coordinate of a two-dimensional part (``loading_1``, ``skill_1``)
COLUMN_STEMS = {"loadings": "loading", "skill": "skill"}
#: the columns of the file that are no parameter: labels, flags and the origin
NOT_PARAMETERS = ("kind", "label", "estimate", "se", "extreme", "origin", "runaway", "flat",
                  "unobserved")


def part_columns(name: str, values: np.ndarray, se: np.ndarray | None) -> dict[str, object]:
    """The columns of one part in the estimates file: ``name`` and ``name_se`` for a vector;
    for an ``(rows, D)`` matrix (the M2PL's loadings and skills) one pair per coordinate,
    ``loading_1``, ``loading_1_se``, ..., ``loading_D_se`` (:data:`COLUMN_STEMS`)."""
    values = np.asarray(values)
    if values.ndim == 1:
        return {name: values, f"{name}_se": se if se is not None else np.nan}
    columns: dict[str, object] = {}
    stem = COLUMN_STEMS.get(name, name)
    for k in range(values.shape[1]):
        columns[f"{stem}_{k + 1}"] = values[:, k]
        columns[f"{stem}_{k + 1}_se"] = np.asarray(se)[:, k] if se is not None else np.nan
    return columns


def estimates_table(table: ResponseTable, result: Fit, origin: str = "estimator"
                    ) -> pd.DataFrame:
    """One row per student and per question: kind, label, estimate, se, extreme, the model's
    other item parameters, and ``origin`` (a key of :data:`ORIGINS`: the estimator's own
    identification, or skills and difficulties shifted alike so that the mean difficulty of
    the non-extreme questions is 0; a common shift leaves every model's predictions as they
    are).

    Skills of D dimensions (the M2PL) are the columns ``skill_1`` ... ``skill_D`` (and
    ``skill_1_se`` ...) of the student rows, whose ``estimate`` and ``se`` are then empty, and
    the loadings the columns ``loading_1`` ... ``loading_D`` of the question rows, beside MDIFF
    (``estimate``), MDISC (``discrimination``) and ``intercept``
    (:func:`part_columns`; :func:`read_estimates` reads the file back). Their origin is the
    estimator's only: ``mean-difficulty`` is refused (no common scalar shift of vector skills
    leaves the logits unchanged).

    ``result`` is the fit of ``table.responses``; the students and questions the file had with
    no observed answer (``table.unobserved``) get a row each at their place, not estimated,
    flagged in the column ``unobserved`` (:func:`irtbench.csvio.with_unobserved`)."""
    extreme_students, extreme_questions = extremes(table.responses)
    skill, difficulty = result.skill, result.difficulty
    multidimensional = np.ndim(skill) == 2
    if origin == "mean-difficulty":
        if multidimensional:
            raise ValueError("--origin mean-difficulty shifts scalar skills; the skills of the "
                             f"{result.model} model are vectors: use --origin estimator")
        skill, difficulty = align(skill, difficulty, ~extreme_questions)

    def block(kind: str, labels: list[str], estimate: np.ndarray, se: np.ndarray | None,
              extreme: np.ndarray, **more: object) -> pd.DataFrame:
        return pd.DataFrame({"kind": kind, "label": labels, "estimate": estimate,
                             "se": se if se is not None else np.nan, "extreme": extreme, **more})

    more: dict[str, object] = {}  # the model's other item parameters beside each question
    for name, values in result.extra_items.items():
        more |= part_columns(name, values, result.extra_se.get(name))
    if result.runaway_questions is not None:
        more["runaway"] = result.runaway_questions
    if result.flat_questions is not None:
        more["flat"] = result.flat_questions
    students = (block("student", table.students, np.nan, None, extreme_students,
                      **part_columns("skill", skill, result.skill_se)) if multidimensional
                else block("student", table.students, skill, result.skill_se, extreme_students))
    questions = block("question", table.questions, difficulty, result.difficulty_se,
                      extreme_questions, **more)
    if table.unobserved:
        students = with_unobserved(students, table.unobserved.students, kind="student")
        questions = with_unobserved(questions, table.unobserved.questions, kind="question")
    estimates = pd.concat([students, questions], ignore_index=True)
    estimates["origin"] = origin
    if "unobserved" in estimates:  # the last column, after the origin
        estimates = estimates[[c for c in estimates if c != "unobserved"] + ["unobserved"]]
    return estimates


def read_estimates(path: Path | str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(skill, items)`` of an estimates file that ``irtbench fit`` wrote
    (:func:`estimates_table`): the skills, ``(n,)`` or, from ``skill_1`` ... columns,
    ``(n, D)``; the item parameters by name, ``"difficulty"`` (the question rows' ``estimate``)
    first, then every other parameter column, the ``loading_k`` columns gathered into
    ``"loadings"`` ``(J, D)``. SEs and flags are not read; the students and questions not
    estimated (``unobserved``) are NaN."""
    frame = pd.read_csv(path)
    students, questions = frame[frame.kind == "student"], frame[frame.kind == "question"]

    def gathered(rows: pd.DataFrame, stem: str) -> np.ndarray | None:
        names = [f"{stem}_{k}" for k in range(1, frame.shape[1] + 1)
                 if f"{stem}_{k}" in frame.columns]
        return rows[names].to_numpy(np.float64) if names else None

    skill = gathered(students, COLUMN_STEMS["skill"])
    if skill is None:
        skill = students.estimate.to_numpy(np.float64)
    items = {"difficulty": questions.estimate.to_numpy(np.float64)}
    stems = {f"{stem}_": name for name, stem in COLUMN_STEMS.items()}
    for column in frame.columns:
        if column.endswith("_se") or column in NOT_PARAMETERS:
            continue
        stem = next((name for prefix, name in stems.items() if column.startswith(prefix)), None)
        if stem == "loadings" and stem not in items:
            items[stem] = gathered(questions, COLUMN_STEMS[stem])
        elif stem is None:
            items[column] = questions[column].to_numpy(np.float64)
    return skill, items


class ItemEstimates(NamedTuple):
    """What :func:`read_items` reads of an estimates file: the model its columns are, the
    questions' labels, their parameters by name (:func:`read_estimates`'s items), the
    students' skills and which questions were not estimated (``unobserved``: no observed
    answer in the data of the fit; their parameters NaN)."""

    model: str
    labels: list[str]
    items: dict[str, np.ndarray]
    skill: np.ndarray
    unobserved: np.ndarray


def model_of(names: Iterable[str]) -> str:
    """The model whose item parameters are exactly ``names`` (each model writes its own set of
    columns: :func:`estimates_table`); ``ValueError`` naming them otherwise."""
    names = set(names)
    for model in MODELS:
        if set(get_model(model).item_parameters) == names:
            return model
    raise ValueError(f"its item columns ({', '.join(sorted(names))}) are no model's: "
                     + "; ".join(f"{m}: {', '.join(get_model(m).item_parameters)}"
                                 for m in MODELS))


def read_items(path: Path | str) -> ItemEstimates:
    """The items of an estimates file that ``irtbench fit`` wrote, with the model read from its
    columns (:func:`model_of`) and the questions' labels as written; ``FileNotFoundError`` or a
    one-line ``ValueError`` naming the file and the problem (not a CSV, not an estimates file,
    no question, a label twice, columns of no model)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        header = set(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        raise ValueError(f"{path} is not a readable CSV file") from None
    missing = sorted({"kind", "label", "estimate"} - header)
    if missing:
        raise ValueError(f"{path}: not an estimates file of 'irtbench fit' (no "
                         f"{', '.join(missing)} column)")
    skill, items = read_estimates(path)
    flags = ["unobserved"] if "unobserved" in header else []
    rows = pd.read_csv(path, usecols=["kind", "label", *flags], dtype=str,
                       keep_default_na=False)
    questions = rows[rows.kind == "question"]
    labels = questions.label.tolist()
    if not labels:
        raise ValueError(f"{path}: no question rows (kind = question)")
    twice = pd.Series(labels)[pd.Series(labels).duplicated()]
    if len(twice):
        raise ValueError(f"{path}: the question {twice.iloc[0]!r} has more than one row")
    try:
        model = model_of(items)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    unobserved = ((questions.unobserved.str.strip().str.lower() == "true").to_numpy()
                  if flags else np.zeros(len(labels), dtype=bool))
    return ItemEstimates(model, labels, items, skill, unobserved)
