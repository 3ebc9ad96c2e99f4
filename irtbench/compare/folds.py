r"""The folds of :func:`irtbench.compare.compare`'s held-out prediction.

*Cell folds* (:func:`cell_folds`) split the observed cells into K folds, drawn at random,
balanced, then repaired so that in every training set every row and every column keeps an
observed answer: a cell whose row or column would lose its last training answer is never held
out (fold -1). *Row folds* (:func:`row_folds`) hold out whole respondents, as when a new
language model is scored on a benchmark: the items are fitted on the other rows, and each
held-out row is scored from half of its answers (:mod:`irtbench.compare.rows`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_folds", "row_folds"]


def cell_folds(observed: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """The fold of every cell, ``(n, J)`` int: -1 for cells not observed or never held out,
    else 0..folds-1, balanced at random, so that in every fold's training set every row and
    every column keeps at least one observed answer (module docstring)."""
    if folds < 2:
        raise ValueError(f"folds={folds!r}: at least 2 folds are needed")
    rng = np.random.default_rng(seed)
    fold = np.full(observed.shape, -1, dtype=np.int64)
    rows, columns = np.nonzero(observed)
    order = rng.permutation(len(rows))
    fold[rows[order], columns[order]] = np.arange(len(rows)) % folds
    for k in range(folds):
        for axis in (1, 0):  # rows, then columns
            held = fold == k
            training = (observed & ~held).sum(axis=axis)
            for index in np.flatnonzero(training == 0):
                line = held[index] if axis == 1 else held[:, index]
                candidates = np.flatnonzero(line)
                if candidates.size:
                    pick = rng.choice(candidates)
                    if axis == 1:
                        fold[index, pick] = -1
                    else:
                        fold[pick, index] = -1
    return fold


def row_folds(n_rows: int, folds: int, seed: int = 0) -> np.ndarray:
    """The fold of every row, balanced at random, ``(n,)`` int."""
    if not 2 <= folds <= n_rows:
        raise ValueError(f"folds={folds!r}: between 2 and the {n_rows} rows are needed")
    return np.random.default_rng(seed).permutation(n_rows) % folds
