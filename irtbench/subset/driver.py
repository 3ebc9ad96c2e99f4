r"""The driver of ``irtbench subset``: the folds of rows, each fold's calibration by every
(estimator, model) pair, each strategy's items at each size, the three estimates of every new
respondent's accuracy and their scores (:func:`subset`; the package's docstring).

For fold :math:`f` of K (:func:`irtbench.compare.row_folds`) the items are calibrated on the
other rows (one fit per pair, timed by the suite's one clock, :attr:`Fit.seconds
<irtbench.estimators.Fit.seconds>`, through :class:`irtbench.compare.Fitter` under the time
budget), and the fold's rows are the new respondents: each strategy chooses their items at
every :math:`k` (:mod:`~irtbench.subset.strategies`), each respondent is scored on its items
alone (:mod:`~irtbench.subset.calibration`) and its accuracy estimated
(:mod:`~irtbench.subset.accuracy`); the fold's row of the table gives the mean absolute error
over its new respondents, Kendall's :math:`\tau_b` of their ranking and the seconds to
calibrate, select and score. The summary gives each measure's mean over the folds and its SD
over folds (``ddof=1``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from irtbench.compare import Budget, Fitter, Skipped, default_pairs, effective_options, row_folds
from irtbench.estimators import estimators as registered
from irtbench.estimators import get_estimator
from irtbench.harness.cells import check_sweep_options
from irtbench.harness.limits import first_line
from irtbench.models import MODELS, get_model
from irtbench.subset.accuracy import (
    ESTIMATES,
    answer_variance,
    mixing_weight,
    pirt_bias,
    true_accuracy,
)
from irtbench.subset.calibration import Calibration
from irtbench.subset.estimate import dense, estimate_rows
from irtbench.subset.strategies import STRATEGIES, Strategy, get_strategy

__all__ = ["DEFAULT_ESTIMATORS", "DEFAULT_ITEMS", "DEFAULT_MODELS", "FOLD_COLUMNS",
           "SUMMARY_COLUMNS", "SubsetResult", "calibrating_pairs", "item_sizes", "options_for",
           "subset", "summarise"]

#: the pairs a user of this field starts from, cheap: mml-em's 2PL (marginal ML by EM, seconds
#: at leaderboard shape); name others (e.g. jax-adam with ``models=["2pl", "m2pl"]``)
DEFAULT_ESTIMATORS = ("mml-em",)
DEFAULT_MODELS = ("2pl",)
#: the numbers of items shown (tinyBenchmarks': 100)
DEFAULT_ITEMS = (25, 50, 100, 200)

#: the columns of ``subset.csv``: one row per estimator x model x strategy x k x method x fold
FOLD_COLUMNS = ("estimator", "model", "strategy", "k", "method", "fold", "status", "reason",
                "mae", "kendall_tau", "n_respondents", "n_undefined", "mixing_weight",
                "scoring", "seconds_calibrate", "seconds_select", "seconds_score",
                "seconds_weight")
#: the columns of ``summary.csv``: one row per estimator x model x strategy x k x method
SUMMARY_COLUMNS = ("estimator", "model", "strategy", "k", "method", "status", "reason", "mae",
                   "mae_sd", "kendall_tau", "kendall_tau_sd", "folds_done", "mixing_weight",
                   "seconds_calibrate", "seconds_select", "seconds_score")


class SubsetResult(NamedTuple):
    """What :func:`subset` gives: ``folds`` (``subset.csv``, :data:`FOLD_COLUMNS`),
    ``summary`` (``summary.csv``, :data:`SUMMARY_COLUMNS`: means and SDs over folds) and
    ``notes`` (sentences on what was left out, e.g. sizes above the number of items)."""

    folds: pd.DataFrame
    summary: pd.DataFrame
    notes: tuple[str, ...]


def item_sizes(items: Sequence[int], n_items: int) -> tuple[list[int], list[str]]:
    """The sizes ``k`` to run, sorted, those above the ``n_items`` items left out with a note;
    ``ValueError`` for a size under 1 or when none is left."""
    sizes = sorted({int(k) for k in items})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"items={list(items)!r}: each size must be a positive integer")
    kept = [k for k in sizes if k <= n_items]
    if not kept:
        raise ValueError(f"items={sizes}: every size exceeds the {n_items} items of the data")
    dropped = [k for k in sizes if k > n_items]
    notes = ([(f"item sizes {', '.join(map(str, dropped))} exceed the {n_items} items of "
               "the data and were left out")] if dropped else [])
    return kept, notes


def calibrating_pairs(estimators: Sequence[str] | None, models: Sequence[str] | None
                      ) -> list[tuple[str, str]]:
    """The (estimator, model) pairs (:func:`irtbench.compare.default_pairs` of the names, by
    default :data:`DEFAULT_ESTIMATORS` and :data:`DEFAULT_MODELS`); a model the default
    estimators do not fit is refused with the installed estimators that do."""
    models = list(models or DEFAULT_MODELS)
    if estimators is None:
        for model in models:
            if not any(model in get_estimator(name).models for name in DEFAULT_ESTIMATORS):
                fitting = [name for name in registered(available_only=True)
                           if model in get_estimator(name).models]
                raise ValueError(f"the default estimator {', '.join(DEFAULT_ESTIMATORS)} does "
                                 f"not fit the {model}: name one that does with --estimators "
                                 f"({', '.join(fitting) or 'none is installed'})")
    return default_pairs(list(estimators or DEFAULT_ESTIMATORS), models)


def options_for(options: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The options of the fits of ``model``: those that belong to other models
    (:attr:`Model.options <irtbench.models.base.Model.options>`, e.g. the M2PL's ``dims``)
    left out, so that ``{"dims": 10}`` reaches the M2PL's fits and not the 2PL's beside them
    (which would refuse it)."""
    others = {name for m in MODELS for name in get_model(m).options} - set(
        get_model(model).options)
    return {key: value for key, value in options.items()
            if key.rpartition(":")[2] not in others}


def subset(
    responses: object,
    estimators: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    items: Sequence[int] = DEFAULT_ITEMS,
    strategies: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    *,
    time_budget: float | None = None,
    options: Mapping[str, Any] | None = None,
    scoring: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> SubsetResult:
    """The efficient-evaluation benchmark on one response matrix (:mod:`irtbench.subset`).

    Args:
        responses: a response matrix (0/1, NaN missing; a :class:`~irtbench.csvio.ResponseTable`,
            compact int8 or sparse triples, made dense here).
        estimators, models: the calibrating pairs, as :func:`irtbench.compare.default_pairs`
            (default :data:`DEFAULT_ESTIMATORS` and :data:`DEFAULT_MODELS`: mml-em's 2PL).
        items: the numbers of items shown, ``k`` (those above the data's items are left out
            with a note in :attr:`SubsetResult.notes`).
        strategies: names of :data:`~irtbench.subset.strategies.STRATEGIES` (default all).
        folds: K of the K-fold split of the rows (at least 2).
        seed: fixes the folds and every strategy's draws.
        time_budget: seconds for the whole run (None or 0: no limit); what is left when it is
            spent is skipped with that reason.
        options: estimator options as ``irtbench compare``'s; a model's own option
            (``dims``) reaches the fits of that model alone (:func:`options_for`).
        scoring: how new respondents are scored (``"eap"``, ``"map"``, ``"ml"``; None: EAP for
            one skill, MAP for vector skills, :func:`~irtbench.subset.calibration.
            default_method`).
        threads: threads of every fit, pinned (None: the cores other processes leave idle).
        progress: a tqdm bar over the fits on stderr (None: when stderr is a terminal).

    Examples:
        >>> import irtbench
        >>> from irtbench.subset import subset
        >>> data = irtbench.simulate(200, 40, seed=0, model="2pl")
        >>> result = subset(data.responses, items=[10, 40], strategies=["random"], folds=2,
        ...                 progress=False)
        >>> exact = result.summary.query("k == 40 and method == 'pirt'").mae.iloc[0]
        >>> bool(exact < 1e-9)
        True
    """
    from tqdm.auto import tqdm

    from irtbench.threads import held_to

    if time_budget is not None and time_budget < 0:
        raise ValueError(f"time_budget={time_budget!r} must be >= 0 (0 or None: no limit)")
    chosen = [get_strategy(name) for name in (strategies or STRATEGIES)]
    pairs = calibrating_pairs(estimators, models)
    names = sorted({name for name, _ in pairs})
    check_sweep_options(names, options or {})
    data = dense(responses)
    sizes, notes = item_sizes(items, data.shape[1])
    fold_of = row_folds(data.shape[0], folds, seed)
    fitter_options = effective_options(options, names, "rows", data.shape[0])
    budget = Budget(time_budget)
    bar = tqdm(total=len(pairs) * folds, desc="irtbench subset", unit="fit",
               disable=progress is False, leave=progress is True)
    rows: list[dict[str, Any]] = []
    try:
        with held_to(threads):
            for name, model in pairs:
                fitter = Fitter(budget, options_for(fitter_options, model), bar.update)
                for fold in range(folds):
                    bar.set_postfix_str(f"{name} {model} fold {fold}")
                    rows += fold_rows(fitter, name, model, data, fold_of == fold, fold, sizes,
                                      chosen, seed, scoring)
    finally:
        bar.close()
    table = pd.DataFrame(rows).reindex(columns=list(FOLD_COLUMNS))
    return SubsetResult(table, summarise(table, folds), tuple(notes))


def fold_rows(fitter: Fitter, name: str, model: str, data: np.ndarray, new: np.ndarray,
              fold: int, sizes: list[int], strategies: list[Strategy], seed: int,
              scoring: str | None) -> list[dict[str, Any]]:
    """The rows of one pair and one fold: its calibration on the other rows, then every
    strategy; a calibration or strategy that fails, or is out of budget, becomes rows saying
    why."""
    base = {"estimator": name, "model": model, "fold": fold}
    try:
        fit = fitter(name, model, data[~new], warm_up=fold == 0)
        calibration = Calibration.of(fit, scoring)
        started = time.perf_counter()
        training = data[~new].astype(np.float64)
        bias, variance = pirt_bias(calibration, training), answer_variance(training)
        weight_seconds = time.perf_counter() - started
    except Skipped as why:
        return failed_rows(base, strategies, sizes, "skipped", str(why))
    except Exception as error:  # noqa: BLE001 - a failing estimator becomes rows
        return failed_rows(base, strategies, sizes, "error", first_line(error))
    answers = data[new].astype(np.float64)
    truth = true_accuracy(answers)
    base.update(scoring=calibration.method, seconds_calibrate=fit.seconds,
                seconds_weight=weight_seconds)
    rows = []
    for strategy in strategies:
        if fitter.budget.spent():
            rows += failed_rows(base, [strategy], sizes, "skipped",
                                f"the time budget of {fitter.budget.seconds:g} s was spent")
            continue
        try:
            selections = strategy.select(calibration, answers, sizes, seed=(seed, fold))
            for k, selection in selections.items():
                weight = mixing_weight(bias, variance, k, strategy.mean_variance_divisor)
                rows += estimate_rows({**base, "strategy": strategy.name, "k": k},
                                      calibration, answers, truth, selection, weight)
        except Exception as error:  # noqa: BLE001
            rows += failed_rows(base, [strategy], sizes, "error", first_line(error))
    return rows


def failed_rows(base: dict[str, Any], strategies: Sequence[Strategy], sizes: list[int],
                status: str, reason: str) -> list[dict[str, Any]]:
    """One row per strategy x size x estimate saying why nothing was measured."""
    return [{**base, "strategy": strategy.name, "k": k, "method": method, "status": status,
             "reason": reason}
            for strategy in strategies for k in sizes for method in ESTIMATES]


def summarise(table: pd.DataFrame, n_folds: int) -> pd.DataFrame:
    """One row per estimator x model x strategy x k x method: the mean over the folds that
    were measured of each measure and the SD over folds (``ddof=1``) of the error and of
    :math:`\\tau`; a status and reason when some folds were not."""
    keys = ["estimator", "model", "strategy", "k", "method"]
    summary = []
    for key, rows in table.groupby(keys, sort=False):
        done = rows[rows.status == "ok"]
        row: dict[str, Any] = dict(zip(keys, key))
        for column in ("mae", "kendall_tau"):
            values = done[column].to_numpy(np.float64)
            row[column] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
            row[f"{column}_sd"] = (float(np.nanstd(values, ddof=1))
                                   if np.isfinite(values).sum() > 1 else np.nan)
        for column in ("mixing_weight", "seconds_calibrate", "seconds_select", "seconds_score"):
            values = done[column].to_numpy(np.float64)
            row[column] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
        row["folds_done"] = len(done)
        row["status"], row["reason"] = "ok", ""
        if len(done) < n_folds:
            failed = rows[rows.status != "ok"]
            row["status"] = "partial" if len(done) else (failed.status.iloc[0]
                                                         if len(failed) else "skipped")
            row["reason"] = (f"{len(failed)} of {n_folds} fold(s) not measured: "
                             + (failed.reason.iloc[0] if len(failed) else "not run"))
        summary.append(row)
    return pd.DataFrame(summary).reindex(columns=list(SUMMARY_COLUMNS))
