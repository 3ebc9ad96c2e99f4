r"""How far estimators agree with each other on the same data.

For each model, every pair of estimators' full-data fits: the second's estimates mapped onto
the first's scale by the model's alignment (:meth:`Model.align
<irtbench.models.base.Model.align>`, fitted on the items both estimate usably) and, per
parameter, Pearson's correlation and the RMSE over those items (``n_items``; ``n_left_out``
says how many items the alignment could not use: non-finite or outside the model's range).
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from irtbench.estimators import Fit
from irtbench.models import MODELS, get_model

__all__ = ["agreement"]


def agreement(fits: Mapping[tuple[str, str], Fit]) -> pd.DataFrame:
    """Every pair of estimators' full fits of each model, aligned (module docstring): one row
    per model x pair x parameter (the skills too) with ``corr``, ``rmse``, ``n_items`` and
    ``n_left_out``."""
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
            alignment = model.alignment(b.items, a.items, keep, skill=b.skill,
                                        true_skill=a.skill)
            pairs = {"skill": (np.asarray(a.skill, np.float64), alignment.skill(b.skill))}
            moved = alignment.items(b.items, model.kinds)
            for name in model.item_parameters:
                pairs[name] = (np.asarray(a.items[name], np.float64), moved[name])
            for parameter, (x, y) in pairs.items():
                mask = np.isfinite(x) & np.isfinite(y)
                if parameter != "skill":  # (an M2PL's loadings: every entry of a kept item)
                    mask &= keep.reshape(-1, *[1] * (x.ndim - 1))
                left_out = int((~mask).sum())
                x, y = x[mask], y[mask]
                corr = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() and y.std() \
                    else float("nan")
                rows.append({"model": model_name, "estimator": first, "other": second,
                             "parameter": parameter, "corr": corr,
                             "rmse": float(np.sqrt(np.mean((x - y) ** 2))) if len(x) else
                             float("nan"), "n_items": len(x), "n_left_out": left_out,
                             "scale": alignment.scale, "shift": alignment.shift})
    return pd.DataFrame(rows, columns=columns)
