r"""Which estimator, and which model, for *my* data? :func:`compare` fits each chosen estimator
for each model it fits to one response matrix and answers with held-out prediction, information
criteria, agreement between estimators, time and convergence (``irtbench compare``).

**Held-out prediction.** The observed cells (``split="cells"``) or the respondents
(``split="rows"``) are split into K folds (:mod:`~irtbench.compare.folds`). For each fold the
estimator is refitted without the fold (:mod:`~irtbench.compare.heldout`) and the held-out
answers are predicted by the model's own probability function and scored by log-loss, Brier
score and AUC (:mod:`~irtbench.compare.scores`); under the row split each held-out respondent's
skill is first estimated from half of its answers under the fitted items
(:mod:`~irtbench.compare.rows`, :func:`irtbench.scoring.score`). The tables give the mean over folds and its SD over folds,
beside two predictors without a model (``constant``, ``item-means``).

**Information criteria** (:mod:`~irtbench.compare.likelihood`): for the marginal-likelihood
fits (the estimators whose declared ``objective`` is ``"marginal"``), the marginal
log-likelihood, AIC, BIC and likelihood-ratio tests of nested models.

**The InterModel Vigorish and the verdict** (:mod:`~irtbench.compare.verdict`): each fit's
IMV over the ``item-means`` baseline and the best fit's over it, beside the log-loss; one
sentence names the best estimator and model and says whether the next best is within the
fold-to-fold noise.

**Agreement** (:mod:`~irtbench.compare.agreement`): for each model, every pair of estimators'
full-data fits, each moved into one frame by the model (symmetric: no fit is the reference),
compared parameter by parameter (correlation and RMSE).

**Budget** (:mod:`~irtbench.compare.budget`): ``time_budget`` seconds for the whole
comparison; once it is spent the remaining fits are skipped with that reason.

The driver (:mod:`~irtbench.compare.driver`: :func:`compare`, :func:`default_pairs`) runs
them; :mod:`~irtbench.compare.report` writes the tables, the figures and ``report.md``
(:func:`write_comparison`). Each module's docstring gives its maths.
"""

from __future__ import annotations

# (the functions agreement and scores are not re-exported: their names are their modules')
from irtbench.compare.budget import Budget, Fitter, Skipped
from irtbench.compare.driver import (
    SPLITS,
    SUMMARY_COLUMNS,
    Comparison,
    compare,
    default_pairs,
    effective_options,
)
from irtbench.compare.folds import cell_folds, row_folds
from irtbench.compare.likelihood import information_criteria, likelihood_ratio_tests, n_parameters
from irtbench.compare.rows import halves
from irtbench.compare.scores import auc, brier, coin_weight, imv
from irtbench.compare.verdict import best_sentence
from irtbench.gaps import marginal_log_likelihood
from irtbench.metrics import EPS, log_loss, predict

__all__ = ["EPS", "SPLITS", "SUMMARY_COLUMNS", "Budget", "Comparison", "Fitter", "Skipped",
           "auc", "best_sentence", "brier", "cell_folds", "coin_weight", "compare",
           "default_pairs", "effective_options", "halves", "imv", "information_criteria",
           "likelihood_ratio_tests", "log_loss", "marginal_log_likelihood", "n_parameters",
           "predict", "row_folds", "write_comparison"]


def __getattr__(name: str) -> object:
    """:func:`~irtbench.compare.report.write_comparison` on first use: the report draws with
    matplotlib and sets its Agg backend, which importing the comparison alone must not do (in a
    notebook it would stop the figures showing)."""
    if name == "write_comparison":
        from irtbench.compare.report import write_comparison

        return write_comparison
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
