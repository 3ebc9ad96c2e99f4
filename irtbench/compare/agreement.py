r"""How far estimators agree with each other on the same data.

For each model, every pair of estimators' full-data fits, each moved into one frame by the
model (:meth:`Model.common_frames <irtbench.models.base.Model.common_frames>`, its
:attr:`~irtbench.models.base.Model.common_frame` in words: the Rasch model's fits shifted to
a mean difficulty of 0; the 2PL's, 3PL's and 4PL's to a mean difficulty of 0 and a mean log
discrimination of 0, the joint fits' own identification, over the items both estimate with
positive slopes; the M2PL's skills whitened and one fit's loadings rotated onto the other's),
and, per parameter, Pearson's correlation (the M2PL's skills and loadings: Tucker's congruence,
which the rotation keeps) and the RMSE over the items both estimate usably
(``n_items``; ``n_left_out`` says how many items were left out: non-finite or outside the
model's range). No least-squares map of one fit onto the other is made: each fit is moved by
its own parameters alone (the M2PL's rotation keeps every distance), so a pair's numbers do not
depend on which estimator comes first (before, spisa's 2PL difficulty RMSE was 0.49 one way and
1.22 the other). ``scale`` and ``shift``: the map of the second fit's scale onto the first's
that the two frames imply.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from irtbench.estimators import Fit
from irtbench.models import MODELS, get_model
from irtbench.models.base import COVECTOR, VECTOR

__all__ = ["agreement"]


def agreement(fits: Mapping[tuple[str, str], Fit]) -> pd.DataFrame:
    """Every pair of estimators' full fits of each model, in the model's common frame (module
    docstring): one row per model x pair x parameter (the skills too) with ``corr``,
    ``rmse``, ``n_items``, ``n_left_out``, ``scale`` and ``shift``."""
    columns = ["model", "estimator", "other", "parameter", "corr", "rmse", "n_items",
               "n_left_out", "scale", "shift"]
    rows = []
    for model_name in MODELS:
        model = get_model(model_name)
        named = [(name, fit) for (name, m), fit in fits.items() if m == model_name]
        for (first, a), (second, b) in combinations(named, 2):
            keep = model.usable(a.items) & model.usable(b.items)
            if keep.sum() < 2:
                continue
            frame_a, frame_b = model.common_frames(a.items, b.items, keep, a.skill, b.skill)
            pairs = {"skill": (frame_a.skill(a.skill), frame_b.skill(b.skill))}
            moved_a = frame_a.items(a.items, model.kinds)
            moved_b = frame_b.items(b.items, model.kinds)
            for name in model.item_parameters:
                pairs[name] = (moved_a[name], moved_b[name])
            relative = {"scale": frame_b.scale / frame_a.scale,
                        "shift": (frame_b.shift - frame_a.shift) / frame_a.scale}
            for parameter, (x, y) in pairs.items():
                rows.append({"model": model_name, "estimator": first, "other": second,
                             "parameter": parameter,
                             **distance(x, y, keep, parameter, model.kinds[parameter]),
                             **relative})
    return pd.DataFrame(rows, columns=columns)


def distance(x: np.ndarray, y: np.ndarray, keep: np.ndarray, parameter: str, kind: str
             ) -> dict[str, float | int]:
    r"""``corr``, ``rmse``, ``n_items`` and ``n_left_out`` of two fits' values of one parameter
    over the entries finite in both (and, for an item parameter, of the ``keep`` items: every
    entry of a kept item for the M2PL's loadings). ``corr`` is Pearson's, except for vectors
    the frame rotates (the M2PL's skills and loadings: :data:`~irtbench.models.base.VECTOR`,
    :data:`~irtbench.models.base.COVECTOR`), where it is Tucker's congruence coefficient
    :math:`\sum xy/\sqrt{\sum x^2\sum y^2}`, which a rotation of both keeps (Pearson's
    centres on the mean entry, which a rotation moves)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mask = np.isfinite(x) & np.isfinite(y)
    if parameter != "skill":
        mask &= keep.reshape(-1, *[1] * (x.ndim - 1))
    left_out = int((~mask).sum())
    x, y = x[mask], y[mask]
    if kind in (VECTOR, COVECTOR):
        norms = np.sqrt(np.sum(x * x) * np.sum(y * y))
        corr = float(np.sum(x * y) / norms) if len(x) and norms > 0 else float("nan")
    else:
        corr = (float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() and y.std()
                else float("nan"))
    rmse = float(np.sqrt(np.mean((x - y) ** 2))) if len(x) else float("nan")
    return {"corr": corr, "rmse": rmse, "n_items": len(x), "n_left_out": left_out}
