r"""Marginal log-likelihood, information criteria and likelihood-ratio tests of nested models.

For the marginal-likelihood fits (the estimators whose declared ``objective`` is
``"marginal"``, on the full data): the marginal log-likelihood :math:`\ell` the fit reports
(``diagnostics["log_likelihood"]``), or else computed by Gauss–Hermite quadrature under the
fit's skill distribution (:func:`irtbench.gaps.marginal_log_likelihood`); :math:`\text{AIC} = 2k - 2\ell`,
:math:`\text{BIC} = k\log N - 2\ell` with :math:`N` respondents and :math:`k` free parameters
(:func:`n_parameters`, :math:`J` the items with finite estimates): the fitted parameters of
each item (:meth:`Model.fit_parameters <irtbench.models.base.Model.fit_parameters>`, not the
parameters derived from them) plus the skills' SD where the model learns it: :math:`J + 1`
for the Rasch model (difficulties and the skill SD), :math:`2J` for the 2PL, :math:`3J` for
the 3PL and :math:`4J` for the 4PL under N(0, 1) skills; for the M2PL, whose MDIFF and MDISC
derive from its :math:`D` loadings and intercept, :math:`J(D + 1) - D(D - 1)/2`: skills
:math:`N(0, I_D)` leave a rotation of the loadings free, :math:`D(D - 1)/2` parameters the
likelihood does not see.

Nested models, Rasch :math:`\subset` 2PL :math:`\subset` 3PL :math:`\subset` 4PL (the Rasch
model with skill SD :math:`\sigma` is the 2PL with every slope :math:`\sigma` under N(0, 1); the
2PL is the 3PL with every floor 0, the 3PL the 4PL with every ceiling 1), are compared by
:math:`2(\ell_1 - \ell_0) \sim \chi^2_{k_1 - k_0}` (:func:`likelihood_ratio_tests`); the
asymptotes' values 0 and 1 lie on the boundary of their space, so those tests are
conservative, and their fits maximise a posterior (Beta priors on the asymptotes), so their
:math:`\ell` is the likelihood at the posterior mode.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from irtbench.estimators import Fit
from irtbench.gaps import marginal_log_likelihood
from irtbench.models import MODELS, get_model
from irtbench.models.base import FIXED

__all__ = ["chi2_sf", "information_criteria", "likelihood_ratio_tests", "n_parameters"]



def n_parameters(model: str, n_items: int, dims: int | None = None) -> int:
    """Free parameters of a marginal fit of ``n_items`` items (module docstring): each item's
    fitted parameters (``dims`` columns of those with one per dimension: the M2PL's loadings;
    its default ``dims`` unless given), less the rotation that skills :math:`N(0, I_D)` leave
    free, plus the skills' SD where the model learns it (:attr:`Model.learns_skill_scale
    <irtbench.models.base.Model.learns_skill_scale>`)."""
    described = get_model(model)
    options = {name: spec.default for name, spec in described.options.items()}
    if dims is not None and "dims" in options:
        options["dims"] = dims
    width = described.skill_dims(options)
    per_item = sum(width if p.per_dimension else 1
                   for p in described.fit_parameters(options))
    rotation = 0 if width is None else width * (width - 1) // 2
    return per_item * n_items - rotation + int(described.learns_skill_scale)


def information_criteria(fit: Fit, responses: np.ndarray) -> dict[str, Any]:
    """``loglik`` (reported, or by :func:`marginal_log_likelihood`), its source, ``k``, AIC and
    BIC of a marginal fit on the full data."""
    model = get_model(fit.model)
    reported = fit.diagnostics.get("log_likelihood")
    if isinstance(reported, (int, float)) and math.isfinite(reported):
        loglik, source = float(reported), "reported"
    else:
        sigma = fit.diagnostics.get("sigma", 1.0)
        loglik = marginal_log_likelihood(model, fit.items, responses,
                                         sigma=float(sigma) if fit.model == "rasch" else 1.0)
        source = "quadrature"
    n_items = int(np.logical_and.reduce([np.isfinite(np.asarray(fit.items[n], np.float64))
                                         for n in model.item_parameters]).sum())
    k = n_parameters(fit.model, n_items, None if np.ndim(fit.skill) < 2 else fit.skill.shape[1])
    n = responses.shape[0]
    return {"loglik": loglik, "loglik_source": source, "n_parameters": k,
            "aic": 2 * k - 2 * loglik, "bic": k * math.log(n) - 2 * loglik}


def chi2_sf(statistic: float, df: int) -> float:
    """:math:`P(\\chi^2_{df} > x)`, the regularised upper incomplete gamma function (torch's)."""
    import torch

    if df <= 0:
        return float("nan")
    value = torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64),
                                    torch.tensor(max(statistic, 0.0) / 2.0, dtype=torch.float64))
    return float(value)


def likelihood_ratio_tests(summary: pd.DataFrame) -> pd.DataFrame:
    """Per marginal estimator, every nested pair of its fitted models (Rasch < 2PL < 3PL < 4PL):
    statistic :math:`2(\\ell_1 - \\ell_0)`, its degrees of freedom and p-value."""
    columns = ["estimator", "smaller", "larger", "statistic", "df", "p_value", "note"]
    rows = []
    if "loglik" not in summary:
        return pd.DataFrame(columns=columns)
    fitted = summary[summary.loglik.notna()]
    for name, group in fitted.groupby("estimator", sort=False):
        by_model = {row.model: row for row in group.itertuples()}
        present = [m for m in MODELS if m in by_model]
        for small, large in combinations(present, 2):
            a, b = by_model[small], by_model[large]
            statistic = 2.0 * (b.loglik - a.loglik)
            df = int(b.n_parameters - a.n_parameters)
            bounded = [n for n in get_model(large).item_parameters
                       if get_model(large).kinds[n] == FIXED]  # the floors (and ceilings)
            note = (f"{get_model(large).title}: a posterior mode (Beta priors on "
                    f"{' and '.join(bounded)}) and asymptotes on the boundary: approximate, "
                    "conservative" if bounded else "")
            rows.append({"estimator": name, "smaller": small, "larger": large,
                         "statistic": statistic, "df": df, "p_value": chi2_sf(statistic, df),
                         "note": note})
    return pd.DataFrame(rows, columns=columns)
