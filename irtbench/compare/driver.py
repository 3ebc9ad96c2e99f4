r"""The driver of ``irtbench compare``: which (estimator, model) pairs, and for each its
full-data fit and its folds (:func:`compare`, the package's docstring).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from irtbench.compare.agreement import agreement
from irtbench.compare.budget import Budget, Fitter, Skipped
from irtbench.compare.folds import cell_folds, row_folds
from irtbench.compare.heldout import (
    BASELINES,
    baseline_folds,
    heldout_cells,
    heldout_rows,
    summary_row,
)
from irtbench.compare.likelihood import information_criteria, likelihood_ratio_tests
from irtbench.compare.rows import halves
from irtbench.compare.verdict import best_sentence, with_imv
from irtbench.estimators import Fit, get_estimator
from irtbench.harness.cells import DEFAULT_MODELS, check_sweep_options
from irtbench.harness.limits import first_line
from irtbench.harness.memory import PeakMemory
from irtbench.models import get_model
from irtbench.responses import answers_of, is_sparse, observed_of, to_dense, validate_responses
from irtbench.scoring import METHODS

__all__ = ["SPLITS", "SUMMARY_COLUMNS", "Comparison", "compare", "default_pairs",
           "effective_options"]

SPLITS = ("cells", "rows")


class Comparison(NamedTuple):
    """What :func:`compare` gives: ``summary`` (one row per estimator x model, ``compare.csv``),
    ``agreement`` (one row per model x pair x parameter), ``folds`` (one row per estimator x
    model x fold), ``tests`` (likelihood-ratio tests of nested models) and ``verdict``, the
    sentence that names the best fit (:func:`~irtbench.compare.verdict.best_sentence`)."""

    summary: pd.DataFrame
    agreement: pd.DataFrame
    folds: pd.DataFrame
    tests: pd.DataFrame
    verdict: str = ""


def default_pairs(estimators: Sequence[str] | None = None, models: Sequence[str] | None = None
                  ) -> list[tuple[str, str]]:
    """The (estimator, model) pairs: by default the sweep's (its default estimators but those
    that declare ``left_out_of_compare``, each with its ``default_sweep_models`` among
    ``models``, the sweep's ``DEFAULT_MODELS`` unless told); estimators named fit every model
    of ``models`` they fit. Installed or not: a missing
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


def effective_options(options: Mapping[str, Any] | None, names: Sequence[str], split: str,
                      n_rows: int) -> dict[str, Any]:
    """The user's options over compare's own (each estimator's ``compare_options``; and, for
    cell folds, ``cml``'s ``max_patterns`` raised to the number of rows: masking cells gives
    every row its own pattern of missing answers, which conditional ML handles one pattern at a
    time)."""
    chosen: dict[str, Any] = {}
    for name in names:
        own = dict(get_estimator(name).compare_options)
        if split == "cells" and "max_patterns" in get_estimator(name).defaults:
            own["max_patterns"] = max(n_rows, int(get_estimator(name).defaults["max_patterns"]))
        chosen.update({f"{name}:{key}": value for key, value in own.items()})
    return {**chosen, **(options or {})}


def fit_row(fit: Fit, responses: np.ndarray, peak: float) -> dict[str, Any]:
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
    "estimator", "model", "status", "reason", "heldout_logloss", "heldout_logloss_sd", "imv",
    "imv_sd", "imv_to_best", "brier",
    "brier_sd", "auc", "auc_sd", "n_heldout", "n_infinite_predictions", "folds_done", "loglik",
    "loglik_source", "n_parameters", "aic", "bic", "seconds", "compile_seconds",
    "seconds_all_fits", "peak_memory_bytes", "n_iter", "converged", "n_runaway", "ll_gap",
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
    """Compare estimators and models on one response matrix (:mod:`irtbench.compare`).

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
        scoring: how held-out respondents are scored under ``split="rows"``: ``"eap"``,
            ``"map"`` or ``"ml"`` (:func:`irtbench.scoring.score`; the M2PL by ``"map"``).
        threads: threads of every fit, pinned (None: the cores other processes leave idle;
            :func:`irtbench.threads.held_to`).
        progress: a tqdm bar over the fits on stderr (None: when stderr is a terminal).
    """
    from tqdm.auto import tqdm

    from irtbench.threads import held_to

    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {', '.join(SPLITS)}")
    if scoring not in METHODS:
        raise ValueError(f"scoring={scoring!r} must be one of {', '.join(METHODS)}")
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
    summary, fold_table, fits = [], baseline_folds(data, fold_of, split, scoring_half, folds), {}
    try:
        with held_to(threads):
            for name, model in pairs:
                bar.set_postfix_str(f"{name} {model}")
                row, pair_folds = compare_pair(fitter, name, model, data, fold_of, folds, split,
                                               scoring_half, scoring, fits)
                summary.append(row)
                fold_table += pair_folds
    finally:
        bar.close()
    add_gaps(summary, fits, data)
    for name in BASELINES:
        summary.append({**summary_row(name, "none", [r for r in fold_table
                                                     if r["estimator"] == name], folds),
                        "status": "ok", "reason": "baseline: no model"})
    table, fold_frame = with_imv(pd.DataFrame(summary), pd.DataFrame(fold_table))
    table = table.reindex(columns=[*SUMMARY_COLUMNS,
                                   *(c for c in table.columns if c not in SUMMARY_COLUMNS)])
    return Comparison(table, agreement(fits), fold_frame, likelihood_ratio_tests(table),
                      best_sentence(table, fold_frame))


def add_gaps(summary: list[dict[str, Any]], fits: Mapping[tuple[str, str], Fit],
             data: np.ndarray) -> None:
    """Each full-data fit's ``ll_gap``: its marginal log-likelihood's distance to the exact
    marginal maximum of its model (:mod:`irtbench.gaps`, computed once per model; NaN for a
    model without one, the M2PL), in place."""
    from irtbench.gaps import gap, reference_maximum  # it reads compare's likelihood

    references: dict[str, float | None] = {}
    for row in summary:
        fit = fits.get((row["estimator"], row["model"]))
        if fit is None:
            continue
        if fit.model not in references:
            references[fit.model] = reference_maximum(data, fit.model)
        found = (None if references[fit.model] is None
                 else gap(fit, data, references[fit.model]))
        row["ll_gap"] = np.nan if found is None else found.gap


def compare_pair(fitter: Fitter, name: str, model: str, data: np.ndarray, fold_of: np.ndarray,
                 folds: int, split: str, scoring_half: np.ndarray, scoring: str,
                 fits: dict[tuple[str, str], Fit]
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary row and fold rows of one pair: the full-data fit (kept in ``fits``), then
    each fold; a pair not installed, out of budget or failing becomes a row saying why."""
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
        row = fit_row(fit, data, memory.measure(fit.device, cls.backend)[0])
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
                result = heldout_cells(fitter, name, model, data, fold_of, k)
            else:
                result = heldout_rows(fitter, name, model, data, fold_of, k, scoring_half,
                                      scoring)
            fold_rows.append({**base, "fold": k, "status": "ok", **result})
        except Skipped as why:
            fold_rows.append({**base, "fold": k, "status": "skipped", "reason": str(why)})
        except Exception as error:  # noqa: BLE001
            fold_rows.append({**base, "fold": k, "status": "error",
                              "reason": first_line(error)})
    summary = {**base, "status": "ok", "reason": "", **row,
               **summary_row(name, model, fold_rows, folds),
               "seconds_all_fits": time.perf_counter() - started}
    return summary, fold_rows
