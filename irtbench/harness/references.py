"""The exact marginal maximum of each cell's data (:func:`irtbench.gaps.reference_maximum`),
computed once per data and kept in the results folder (``references.csv``), so that every
estimator's ``ll_gap`` on the same data is measured against one reference and the sweep pays
for it once, not once per estimator; an interrupted sweep keeps those it computed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from irtbench.gaps import reference_maximum
from irtbench.harness.cells import Cell
from irtbench.responses import Responses
from irtbench.results import append_rows

__all__ = ["REFERENCES_FILE", "reference_for"]

REFERENCES_FILE = "references.csv"
#: what makes a cell's data (the estimator's simulation settings aside: they join the key)
DATA_KEY = ("model", "n_students", "n_questions", "missing", "seed", "settings")
COLUMNS = (*DATA_KEY, "ll_reference")


def reference_for(cell: Cell, responses: Responses, settings: Mapping[str, Any],
                  folder: Path | None) -> float | None:
    """The cell's data's reference maximum: read from ``folder``'s ``references.csv`` when an
    earlier cell of the same data computed it, else computed and appended (None for a model
    without one, the M2PL, kept as NaN)."""
    key = {**{name: getattr(cell, name) for name in DATA_KEY[:-1]},
           "settings": repr(sorted(settings.items()))}
    path = None if folder is None else Path(folder) / REFERENCES_FILE
    if path is not None and path.is_file() and path.stat().st_size:
        table = pd.read_csv(path, dtype={"settings": str}, keep_default_na=False,
                            na_values={"ll_reference": ["", "nan"]})
        found = table[(table.model == key["model"]) & (table.n_students == key["n_students"])
                      & (table.n_questions == key["n_questions"])
                      & (table.missing == key["missing"]) & (table.seed == key["seed"])
                      & (table.settings == key["settings"])]
        if len(found):
            value = float(found.ll_reference.iloc[0])
            return None if math.isnan(value) else value
    value = reference_maximum(responses, cell.model)
    if path is not None:
        append_rows(path, COLUMNS, [{**key, "ll_reference": math.nan if value is None else value}])
    return value
