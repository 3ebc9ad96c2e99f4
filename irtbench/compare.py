r"""Which estimator, and which model, for *my* data? :func:`compare` fits each chosen estimator
for each model it fits to one response matrix and answers with held-out prediction, information
criteria, agreement between estimators, time and convergence (``irtbench compare``).

**Held-out prediction.** The observed cells (``split="cells"``) or the respondents
(``split="rows"``) are split into K folds. For each fold the estimator is refitted with the
fold's cells masked (NaN) and the held-out answers :math:`y` are predicted by the model's own
probability function, :math:`\hat p = P(Y = 1 \mid \hat\theta_i, \hat\beta_j)`
(:meth:`Model.probabilities <irtbench.models.base.Model.probabilities>`), clipped to
:math:`[\varepsilon, 1 - \varepsilon]`, :math:`\varepsilon =` :data:`EPS` = 1e-6 (at most
13.8 nats per response). Per fold:

.. math::
    \text{logloss} = -\frac{1}{n}\sum y\log\hat p + (1 - y)\log(1 - \hat p),\qquad
    \text{Brier} = \frac{1}{n}\sum(\hat p - y)^2,\qquad
    \text{AUC} = \frac{\bar R_1 - (n_1 + 1)/2}{n_0}

(:math:`\bar R_1` the mean mid-rank of the correct answers among all held-out :math:`\hat p`:
the Mann–Whitney form, ties counted one half); the tables give the mean over folds and its SD
over folds (``ddof=1``). An estimate at :math:`\pm\infty` (a maximum-likelihood estimate of a
respondent or item whose training answers are all right or all wrong) predicts 0 or 1 (its
limit; 1/2 where two infinities meet), which the clip turns into a finite but large loss:
``n_infinite_predictions`` counts the held-out predictions that involved one.

*Cell folds* (:func:`cell_folds`) are drawn at random, balanced, then repaired so that in every
training set every row and every column keeps an observed answer: a cell whose row or column
would lose its last training answer is never held out (fold -1). *Row folds*
(:func:`row_folds`) hold out whole respondents, as when a new language model is scored on a
benchmark: items are fitted on the other rows; each held-out row's observed items are split at
random into halves, its skill is estimated from one half under the fitted items
(:func:`score_skills`: EAP under a normal prior, or ML) and the other half is predicted.

**Information criteria** (marginal-likelihood fits: the estimators whose declared ``objective``
is ``"marginal"``, on the full
data): the marginal log-likelihood :math:`\ell` the fit reports (``diagnostics
["log_likelihood"]``), or else computed by Gauss–Hermite quadrature under the fit's skill
distribution (:func:`marginal_log_likelihood`); :math:`\text{AIC} = 2k - 2\ell`,
:math:`\text{BIC} = k\log N - 2\ell` with :math:`N` respondents and :math:`k` free parameters:
:math:`J + 1` for the Rasch model (difficulties and the skill SD), :math:`2J` for the 2PL and
:math:`3J` for the 3PL under N(0, 1) skills (:math:`J` the items with finite estimates).
Nested models, Rasch :math:`\subset` 2PL :math:`\subset` 3PL (the Rasch model with skill SD
:math:`\sigma` is the 2PL with every slope :math:`\sigma` under N(0, 1); the 2PL is the 3PL with
every floor 0), are compared by :math:`2(\ell_1 - \ell_0) \sim \chi^2_{k_1 - k_0}`
(:func:`likelihood_ratio_tests`); the 3PL's floor 0 lies on the boundary of its space, so that
test is conservative, and its fit maximises a posterior (a Beta prior on the floors), so its
:math:`\ell` is the likelihood at the posterior mode.

**Agreement.** For each model, every pair of estimators' full-data fits: the second's estimates
mapped onto the first's scale by the model's alignment (:meth:`Model.align
<irtbench.models.base.Model.align>`, fitted on the items both estimate usably) and, per
parameter, Pearson's correlation and the RMSE over those items (``n_items``; ``n_left_out``
says how many items the alignment could not use: non-finite or outside the model's range).

**Budget.** ``time_budget`` seconds for the whole comparison: each fit runs under the time that
is left (a SIGALRM in this process's main thread; a fit in C code is stopped when it returns to
Python), and once it is spent the remaining fits are skipped with that reason.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from irtbench.estimators import Fit, get_estimator
from irtbench.harness.cells import DEFAULT_MODELS, check_sweep_options, estimator_options
from irtbench.harness.limits import FitTimeout, first_line, time_limit
from irtbench.harness.memory import PeakMemory
from irtbench.metrics import EPS, log_loss, predict  # noqa: F401 - compare's own names too
from irtbench.models import MODELS, Model, get_model
from irtbench.models.base import FIXED
from irtbench.responses import (
    Responses,
    answers_of,
    is_sparse,
    observed_of,
    row_blocks,
    to_dense,
    validate_responses,
)

__all__ = ["EPS", "SPLITS", "Comparison", "auc", "cell_folds", "compare",
           "default_pairs", "likelihood_ratio_tests", "marginal_log_likelihood", "predict",
           "row_folds", "score_skills", "write_comparison"]

SPLITS = ("cells", "rows")
#: the marginal log-likelihood's parameters beyond the items' (the Rasch model's skill SD)
_EXTRA_PARAMETERS = {"rasch": 1}


class Comparison(NamedTuple):
    """What :func:`compare` gives: ``summary`` (one row per estimator x model, ``compare.csv``),
    ``agreement`` (one row per model x pair x parameter), ``folds`` (one row per estimator x
    model x fold) and ``tests`` (likelihood-ratio tests of nested models)."""

    summary: pd.DataFrame
    agreement: pd.DataFrame
    folds: pd.DataFrame
    tests: pd.DataFrame


# -- folds ----------------------------------------------------------------------------------
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


def halves(observed: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each row's observed items split at random into a scoring half (True) and a scored half:
    ``(n, J)`` bool of the scoring half (``ceil(m/2)`` of a row's ``m`` answers; a row with a
    single answer has nothing to score)."""
    rng = np.random.default_rng(seed)
    scoring = np.zeros(observed.shape, dtype=bool)
    for i in range(observed.shape[0]):
        items = np.flatnonzero(observed[i])
        chosen = rng.permutation(items)[: (len(items) + 1) // 2]
        scoring[i, chosen] = True
    return scoring


# -- prediction and its scores ----------------------------------------------------------------
# (predict, log_loss and EPS live in irtbench.metrics, which held_out_log_likelihood shares)
def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((p - y) ** 2))


def mid_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties given their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """The area under the ROC curve by the Mann–Whitney rank formula (module docstring); NaN
    when the answers are all of one kind."""
    y = np.asarray(y) > 0.5
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    ranks = mid_ranks(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def scores(y: np.ndarray, p: np.ndarray, infinite: np.ndarray) -> dict[str, float]:
    """One fold's held-out scores."""
    return {"logloss": log_loss(y, p), "brier": brier(y, p), "auc": auc(y, p),
            "n_heldout": len(y), "n_infinite_predictions": int(infinite.sum())}


# -- scoring new respondents ------------------------------------------------------------------
def score_skills(model: Model, items: Mapping[str, np.ndarray], responses: np.ndarray, *,
                 method: str = "eap", centre: float = 0.0, spread: float = 1.0,
                 nodes: int = 161) -> np.ndarray:
    r"""Each row's skill under known items, from its observed answers (NaN = not used):
    ``"eap"``, the posterior mean under :math:`N(\mu, s^2)` (``centre``, ``spread``) by
    quadrature on ``nodes`` points of :math:`\mu \pm 8s`; ``"ml"``, the maximum of the
    likelihood on a grid of :math:`[-10, 10]` refined by a parabola through the best three
    points, :math:`\pm\infty` for rows all right or all wrong. Items with a non-finite
    estimate are left out."""
    usable = np.logical_and.reduce([np.isfinite(np.asarray(items[n], np.float64))
                                    for n in model.item_parameters])
    parameters = {n: np.asarray(items[n], np.float64)[usable] for n in model.item_parameters}
    answered = observed_of(responses)[:, usable]
    y = np.where(answered, answers_of(responses[:, usable], np.float64), 0.0)
    if method == "eap":
        grid = centre + spread * np.linspace(-8.0, 8.0, nodes)
    elif method == "ml":
        grid = np.linspace(-10.0, 10.0, 2001)
    else:
        raise ValueError(f"method={method!r} must be 'eap' or 'ml'")
    p = np.clip(model.probabilities(grid, parameters), 1e-300, 1 - 1e-16)  # (Q, J)
    log_lik = (y * answered) @ np.log(p).T + ((1 - y) * answered) @ np.log1p(-p).T  # (n, Q)
    if method == "eap":
        log_post = log_lik - 0.5 * ((grid - centre) / spread) ** 2
        weights = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        return (weights @ grid) / weights.sum(axis=1)
    best = np.clip(log_lik.argmax(axis=1), 1, len(grid) - 2)
    left, mid, right = (np.take_along_axis(log_lik, (best + d)[:, None], 1)[:, 0]
                        for d in (-1, 0, 1))
    curvature = left - 2 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    skill = grid[best] + offset * (grid[1] - grid[0])
    count, total = answered.sum(axis=1), (y * answered).sum(axis=1)
    skill[(total == count) & (count > 0)] = np.inf
    skill[(total == 0) & (count > 0)] = -np.inf
    return skill


def skill_prior(fit: Fit) -> tuple[float, float]:
    """``(centre, spread)`` of the normal prior that scores new respondents under a fit: the
    mean of its finite skills, and the skill SD it estimated (``diagnostics["sigma"]``) or else
    the SD of its finite skills."""
    finite = fit.skill[np.isfinite(fit.skill)]
    centre = float(finite.mean()) if finite.size else 0.0
    spread = fit.diagnostics.get("sigma")
    if not isinstance(spread, (int, float)) or not spread > 0:
        spread = float(finite.std()) if finite.size > 1 and finite.std() > 0 else 1.0
    return centre, float(spread)


# -- marginal likelihood ----------------------------------------------------------------------
def marginal_log_likelihood(model: Model, items: Mapping[str, np.ndarray], responses: Responses,
                            *, sigma: float = 1.0, nodes: int = 61) -> float:
    r""":math:`\sum_i \log \sum_q w_q \prod_{j\ \mathrm{obs}} p_j(\sigma z_q)^{y_{ij}}
    (1 - p_j(\sigma z_q))^{1 - y_{ij}}` with the probabilists' Gauss–Hermite rule
    (:math:`w_q` normalised to sum to 1): the log-likelihood of the items with skills
    :math:`N(0, \sigma^2)` integrated out. Items with a non-finite estimate (answered all
    right or all wrong, whose limit contributes :math:`\log 1 = 0`) are left out."""
    dense = to_dense(responses) if is_sparse(responses) else responses
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    usable = np.logical_and.reduce([np.isfinite(np.asarray(items[n], np.float64))
                                    for n in model.item_parameters])
    parameters = {n: np.asarray(items[n], np.float64)[usable] for n in model.item_parameters}
    p = np.clip(model.probabilities(sigma * z, parameters), 1e-300, 1 - 1e-16)  # (Q, J)
    log_p, log_q, log_w = np.log(p).T, np.log1p(-p).T, np.log(w / w.sum())
    total = 0.0
    for rows in row_blocks(dense.shape):
        block = dense[rows][:, usable]
        answered = observed_of(block)
        y = np.where(answered, answers_of(block, np.float64), 0.0)
        joint = (y * answered) @ log_p + ((1 - y) * answered) @ log_q + log_w  # (n, Q)
        peak = joint.max(axis=1, keepdims=True)
        total += float((peak[:, 0] + np.log(np.exp(joint - peak).sum(axis=1))).sum())
    return total


def n_parameters(model: str, n_items: int) -> int:
    """Free parameters of a marginal fit (module docstring)."""
    return len(get_model(model).item_parameters) * n_items + _EXTRA_PARAMETERS.get(model, 0)


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
    k = n_parameters(fit.model, n_items)
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


# -- agreement --------------------------------------------------------------------------------
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


# -- the budget -------------------------------------------------------------------------------
@dataclass
class Budget:
    """Seconds left of the whole comparison (``seconds`` None or 0: no limit)."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float | None:
        if not self.seconds:
            return None
        return self.seconds - (time.perf_counter() - self.started)

    def spent(self) -> bool:
        left = self.left()
        return left is not None and left <= 0.05


class Skipped(Exception):
    """A fit not run or not finished: its reason is the message."""


# -- the pairs to fit -------------------------------------------------------------------------
def default_pairs(estimators: Sequence[str] | None = None, models: Sequence[str] | None = None
                  ) -> list[tuple[str, str]]:
    """The (estimator, model) pairs: by default the sweep's (its default estimators but those
    that declare ``left_out_of_compare``, each with its ``default_sweep_models`` among ``models``, the
    sweep's ``DEFAULT_MODELS`` unless told);
    estimators named fit every model of ``models`` they fit. Installed or not: a missing
    backend becomes a skipped row."""
    from irtbench.estimators import estimators as registered

    chosen_models = list(models) if models else list(DEFAULT_MODELS)
    for model in chosen_models:
        get_model(model)
    if estimators is None:
        names = [n for n in registered(available_only=True)
                 if get_estimator(n).in_default_sweep
                 and not get_estimator(n).left_out_of_compare]
    else:
        names = list(estimators)
    pairs = []
    for name in names:
        cls = get_estimator(name)
        fits = cls.models if estimators is not None or cls.default_sweep_models is None \
            else cls.default_sweep_models
        chosen = [m for m in chosen_models if m in fits]
        if estimators is not None and not chosen:
            raise ValueError(f"estimator {name!r} fits the {' and '.join(cls.models)} model(s), "
                             f"none of {', '.join(chosen_models)}")
        pairs += [(name, m) for m in chosen]
    if not pairs:
        raise ValueError(f"no default estimator fits {', '.join(chosen_models)}; name some "
                         "with estimators=")
    return pairs


# -- the driver -------------------------------------------------------------------------------
@dataclass
class Fitter:
    """Fits one (estimator, model) pair under the budget, counting the fits for the progress
    bar."""

    budget: Budget
    options: Mapping[str, Any]
    tick: Callable[[int], object]

    def __call__(self, name: str, model: str, responses: np.ndarray, *,
                 warm_up: bool = False) -> Fit:
        """One fit (after an untimed warm-up on the same data with ``warm_up``: the estimator's
        ``warm_up_options``, a few iterations, so that one-off costs stay out of its
        ``seconds``)."""
        if self.budget.spent():
            raise Skipped(f"the time budget of {self.budget.seconds:g} s was spent")
        estimator = get_estimator(name)(**estimator_options(name, self.options, "cpu"),
                                        model=model)
        try:
            with time_limit(self.budget.left()):
                if warm_up:
                    estimator.warm_up(responses)
                return estimator.fit(responses)
        except FitTimeout:
            raise Skipped(f"the time budget of {self.budget.seconds:g} s ran out during a "
                          "fit") from None
        finally:
            self.tick(1)


def effective_options(options: Mapping[str, Any] | None, names: Sequence[str], split: str,
                      n_rows: int) -> dict[str, Any]:
    """The user's options over compare's own (each estimator's ``compare_options``; and, for cell folds,
    ``cml``'s ``max_patterns`` raised to the number of rows: masking cells gives every row its
    own pattern of missing answers, which conditional ML handles one pattern at a time)."""
    chosen: dict[str, Any] = {}
    for name in names:
        own = dict(get_estimator(name).compare_options)
        if split == "cells" and "max_patterns" in get_estimator(name).defaults:
            own["max_patterns"] = max(n_rows, int(get_estimator(name).defaults["max_patterns"]))
        chosen.update({f"{name}:{key}": value for key, value in own.items()})
    return {**chosen, **(options or {})}


def _heldout_cells(fitter: Fitter, name: str, model: str, responses: np.ndarray,
                   folds: np.ndarray, k: int) -> dict[str, float]:
    held = folds == k
    training = np.where(held, np.nan, responses).astype(np.float32)
    fit = fitter(name, model, training)
    rows, columns = np.nonzero(held)
    p, infinite = predict(get_model(model), fit.skill, fit.items, rows, columns)
    return scores(responses[rows, columns].astype(np.float64), p, infinite)


def _heldout_rows(fitter: Fitter, name: str, model: str, responses: np.ndarray,
                  folds: np.ndarray, k: int, scoring: np.ndarray, method: str
                  ) -> dict[str, float]:
    train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
    fit = fitter(name, model, responses[train])
    centre, spread = skill_prior(fit)
    block = responses[test]
    used = np.where(scoring[test], block, np.nan)
    skill = score_skills(get_model(model), fit.items, used, method=method, centre=centre,
                         spread=spread)
    target = observed_of(block) & ~scoring[test]
    rows, columns = np.nonzero(target)
    p, infinite = predict(get_model(model), skill, fit.items, rows, columns)
    return scores(block[rows, columns].astype(np.float64), p, infinite)


def _baseline_folds(responses: np.ndarray, folds: np.ndarray, split: str, scoring: np.ndarray,
                    n_folds: int) -> list[dict[str, Any]]:
    """The folds of two predictors without a model: the training data's proportion correct
    (``constant``) and each item's (``item-means``)."""
    rows_out = []
    observed = observed_of(responses)
    for k in range(n_folds):
        if split == "cells":
            held = folds == k
            train = observed & ~held
        else:
            held = (folds == k)[:, None] & observed & ~scoring
            train = observed & (folds != k)[:, None]
        rows, columns = np.nonzero(held)
        y = responses[rows, columns].astype(np.float64)
        answers = np.where(train, responses, 0.0)
        overall = answers.sum() / train.sum()
        per_item = (answers.sum(axis=0) + overall) / (train.sum(axis=0) + 1.0)
        none = np.zeros(len(y), dtype=bool)
        for name, p in (("constant", np.full(len(y), overall)), ("item-means", per_item[columns])):
            rows_out.append({"estimator": name, "model": "none", "fold": k, "status": "ok",
                             **scores(y, p, none)})
    return rows_out


def _summary_row(name: str, model: str, fold_rows: list[dict[str, Any]], n_folds: int
                 ) -> dict[str, Any]:
    done = [r for r in fold_rows if r["status"] == "ok"]
    row: dict[str, Any] = {"estimator": name, "model": model, "folds_done": len(done)}
    for metric, column in (("logloss", "heldout_logloss"), ("brier", "brier"), ("auc", "auc")):
        values = np.array([r[metric] for r in done], dtype=np.float64)
        row[column] = float(values.mean()) if len(values) else float("nan")
        row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    row["n_heldout"] = int(sum(r["n_heldout"] for r in done))
    row["n_infinite_predictions"] = int(sum(r["n_infinite_predictions"] for r in done))
    if len(done) < n_folds:
        failed = [r for r in fold_rows if r["status"] != "ok"]
        row["status"] = "partial" if done else (failed[0]["status"] if failed else "skipped")
        row["reason"] = (f"{len(failed)} of {n_folds} fold(s) not fitted: "
                         + (failed[0]["reason"] if failed else "not run"))
    return row


def _fit_row(fit: Fit, responses: np.ndarray, peak: float) -> dict[str, Any]:
    """What a full-data fit says of itself: time, memory, convergence, runaways, extremes,
    and (a marginal fit) its information criteria."""
    converged = fit.diagnostics.get("converged")
    runaway = fit.diagnostics.get("n_runaway")
    row = {"seconds": fit.seconds, "compile_seconds": fit.compile_seconds,
           "peak_memory_bytes": peak, "n_iter": fit.n_iter,
           "converged": "" if converged is None else bool(converged),
           "n_runaway": np.nan if runaway is None else int(runaway),
           "n_infinite_estimates": int((~np.isfinite(fit.skill)).sum()
                                       + (~np.isfinite(fit.difficulty)).sum())}
    if get_estimator(fit.estimator).objective == "marginal":
        row.update(information_criteria(fit, responses))
    return row


#: the columns of ``compare.csv``, in order (more may follow: none today)
SUMMARY_COLUMNS = (
    "estimator", "model", "status", "reason", "heldout_logloss", "heldout_logloss_sd", "brier",
    "brier_sd", "auc", "auc_sd", "n_heldout", "n_infinite_predictions", "folds_done", "loglik",
    "loglik_source", "n_parameters", "aic", "bic", "seconds", "compile_seconds",
    "seconds_all_fits", "peak_memory_bytes", "n_iter", "converged", "n_runaway",
    "n_infinite_estimates",
)


def compare(
    responses: object,
    estimators: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    folds: int = 5,
    split: str = "cells",
    time_budget: float | None = None,
    seed: int = 0,
    *,
    options: Mapping[str, Any] | None = None,
    scoring: str = "eap",
    threads: int | None = None,
    progress: bool | None = None,
) -> Comparison:
    """Compare estimators and models on one response matrix (module docstring).

    Args:
        responses: a response matrix (0/1, NaN missing; a :class:`~irtbench.csvio.ResponseTable`,
            compact int8 or sparse triples, made dense here).
        estimators, models: as :func:`default_pairs`.
        folds: K of the K-fold split (at least 2).
        split: ``"cells"`` (observed cells) or ``"rows"`` (whole respondents).
        time_budget: seconds for the whole comparison (None or 0: no limit).
        seed: fixes the folds (and the rows' halves).
        options: estimator options as ``irtbench run``'s (``{"epochs": 500}`` for every
            estimator that has it, ``{"torch-adam:epochs": 500}`` for one).
        scoring: how held-out respondents are scored under ``split="rows"``: ``"eap"`` or
            ``"ml"``.
        threads: threads of every fit, pinned (None: the cores other processes leave idle;
            :func:`irtbench.threads.held_to`).
        progress: a tqdm bar over the fits on stderr (None: when stderr is a terminal).
    """
    from tqdm.auto import tqdm

    from irtbench.threads import held_to

    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {', '.join(SPLITS)}")
    if scoring not in ("eap", "ml"):
        raise ValueError(f"scoring={scoring!r} must be 'eap' or 'ml'")
    if time_budget is not None and time_budget < 0:
        raise ValueError(f"time_budget={time_budget!r} must be >= 0 (0 or None: no limit)")
    data = validate_responses(responses)
    data = to_dense(data) if is_sparse(data) else np.where(observed_of(data),
                                                          answers_of(data), np.nan)
    data = np.asarray(data, dtype=np.float32)
    pairs = default_pairs(estimators, models)
    check_sweep_options(sorted({name for name, _ in pairs}), options or {})
    observed = observed_of(data)
    if split == "cells":
        fold_of = cell_folds(observed, folds, seed)
        scoring_half = np.zeros_like(observed)
    else:
        fold_of = row_folds(data.shape[0], folds, seed)
        scoring_half = halves(observed, seed)
    budget = Budget(time_budget)
    options = effective_options(options, sorted({name for name, _ in pairs}), split,
                                data.shape[0])
    bar = tqdm(total=len(pairs) * (folds + 1), desc="irtbench compare", unit="fit",
               disable=progress is False, leave=progress is True)
    fitter = Fitter(budget, options, bar.update)
    summary, fold_table, fits = [], _baseline_folds(data, fold_of, split, scoring_half, folds), {}
    try:
        with held_to(threads):
            for name, model in pairs:
                bar.set_postfix_str(f"{name} {model}")
                row, pair_folds = _compare_pair(fitter, name, model, data, fold_of, folds, split,
                                                scoring_half, scoring, fits)
                summary.append(row)
                fold_table += pair_folds
    finally:
        bar.close()
    for name in ("constant", "item-means"):
        summary.append({**_summary_row(name, "none", [r for r in fold_table
                                                      if r["estimator"] == name], folds),
                        "status": "ok", "reason": "baseline: no model"})
    table = pd.DataFrame(summary)
    table = table.reindex(columns=[*SUMMARY_COLUMNS,
                                   *(c for c in table.columns if c not in SUMMARY_COLUMNS)])
    return Comparison(table, agreement(fits), pd.DataFrame(fold_table),
                      likelihood_ratio_tests(table))


def _compare_pair(fitter: Fitter, name: str, model: str, data: np.ndarray, fold_of: np.ndarray,
                  folds: int, split: str, scoring_half: np.ndarray, scoring: str,
                  fits: dict[tuple[str, str], Fit]
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary row and fold rows of one pair: the full-data fit, then each fold."""
    cls = get_estimator(name)
    started = time.perf_counter()
    base = {"estimator": name, "model": model}
    if not cls.available():
        fitter.tick(folds + 1)
        return {**base, "status": "skipped",
                "reason": f"not installed: {cls.install_command()}"}, []
    row: dict[str, Any] = {}
    try:
        with PeakMemory() as memory:
            fit = fitter(name, model, data, warm_up=True)
        fits[(name, model)] = fit
        row = _fit_row(fit, data, memory.measure(fit.device, cls.backend)[0])
    except Skipped as why:
        fitter.tick(folds)
        return {**base, "status": "skipped", "reason": str(why)}, []
    except Exception as error:  # noqa: BLE001 - a failing estimator becomes a row
        fitter.tick(folds)
        return {**base, "status": "error", "reason": first_line(error)}, []
    fold_rows = []
    for k in range(folds):
        try:
            if split == "cells":
                result = _heldout_cells(fitter, name, model, data, fold_of, k)
            else:
                result = _heldout_rows(fitter, name, model, data, fold_of, k, scoring_half,
                                       scoring)
            fold_rows.append({**base, "fold": k, "status": "ok", **result})
        except Skipped as why:
            fold_rows.append({**base, "fold": k, "status": "skipped", "reason": str(why)})
        except Exception as error:  # noqa: BLE001
            fold_rows.append({**base, "fold": k, "status": "error",
                              "reason": first_line(error)})
    summary = {**base, "status": "ok", "reason": "", **row,
               **_summary_row(name, model, fold_rows, folds),
               "seconds_all_fits": time.perf_counter() - started}
    return summary, fold_rows


# -- writing ----------------------------------------------------------------------------------
@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder``'s files; on success each file in it is renamed into
    ``folder`` (one atomic rename per file), so that no file there is ever half written."""
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".compare-", dir=folder))
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_comparison(comparison: Comparison, folder: Path | str, *, source: str = "",
                     seconds: float | None = None, settings: str = "") -> list[Path]:
    """``compare.csv``, ``agreement.csv``, ``folds.csv``, ``tests.csv``, the figures and
    ``report.md`` in ``folder`` (each written whole or not at all)."""
    from irtbench.compare_report import draw_figures, report_text

    folder = Path(folder)
    with staged(folder) as stage:
        comparison.summary.to_csv(stage / "compare.csv", index=False)
        comparison.agreement.to_csv(stage / "agreement.csv", index=False)
        comparison.folds.to_csv(stage / "folds.csv", index=False)
        comparison.tests.to_csv(stage / "tests.csv", index=False)
        figures = draw_figures(comparison, stage)
        (stage / "report.md").write_text(report_text(
            comparison, figures, source=source, seconds=seconds, settings=settings, eps=EPS))
        names = sorted(p.name for p in stage.iterdir())
    return [folder / name for name in names]
