r"""Calibrate once, evaluate with few items: the efficient-evaluation benchmark
(``irtbench subset``, :func:`subset`).

The people who fit IRT to a matrix of language models x benchmark items mostly want one
thing of it: to evaluate a *new* model on :math:`k \ll J` items and still know its accuracy
on the whole benchmark. This measures, on one response matrix, which estimator, which model,
which way of choosing the items and which estimate give the most accurate score for the
fewest items, and how fast.

**Folds** (:mod:`~irtbench.subset.driver`). The rows are split into K folds
(:func:`irtbench.compare.row_folds`). For fold :math:`f`, the items are *calibrated* on the
other rows by each (estimator, model) pair (a fit, :attr:`Fit.items
<irtbench.estimators.Fit.items>`, timed by the suite's one clock), and the fold's rows are the
*new respondents*.

**Strategies** (:mod:`~irtbench.subset.strategies`): which :math:`k` items each new
respondent answers, with weights :math:`w_j` summing to 1 —

* ``random``: :math:`k` at random, :math:`w_j = 1/k`;
* ``stratified``: :math:`k` strata of equal count by calibrated difficulty, one item from each,
  :math:`w_j = |S_l|/J`;
* ``information``: the :math:`k` items of most Fisher information summed over the calibration
  respondents' skills, :math:`\arg\max \sum_i \operatorname{tr} I_j(\hat\theta_i)`;
* ``clustering``: tinyBenchmarks' anchor points, K-means (:mod:`~irtbench.subset.kmeans`) of
  the items' IRT embeddings :math:`(a_j, d_j)` into :math:`k` clusters, the item nearest each
  centre, :math:`w_j` the cluster's share of the items;
* ``adaptive``: computerised adaptive testing, each respondent's next item the one that most
  increases :math:`\det\big(\Sigma^{-1} + \sum_{j \in S_i} I_j(\hat\theta_i)\big)` at its
  current estimate (:mod:`~irtbench.subset.information`).

**Estimates** of respondent :math:`i`'s accuracy :math:`A_i = \frac{1}{|O_i|}\sum_{j\in O_i}
y_{ij}` (the mean of all its observed answers, the truth) from its answers to its items
:math:`S_i` (:mod:`~irtbench.subset.accuracy`):

.. math::
    \hat A_i = \sum_{j \in S_i} w_j y_{ij},\qquad
    \hat A^{\mathrm p}_i = \frac{1}{|O_i|}\Big(\sum_{j \in S_i} y_{ij}
        + \sum_{j \in O_i\setminus S_i} P_j(\hat\theta_i)\Big),\qquad
    \hat A^{\mathrm{gp}}_i = \lambda\hat A_i + (1 - \lambda)\hat A^{\mathrm p}_i

(``mean``, ``pirt``, ``gpirt``), the skill :math:`\hat\theta_i` scored on the :math:`k` answers
alone under the calibrated items (:func:`irtbench.scoring.score`: EAP under the calibration
skill distribution, MAP for the M2PL), and
:math:`\lambda = b^2/(b^2 + v/(ck))` tinyBenchmarks' weight (:math:`b` p-IRT's error,
:math:`v/(ck)` the mean's variance).

**Scores** per (estimator, model, strategy, k, estimate) and fold: the mean absolute error
:math:`\frac1n\sum_i|\hat A_i - A_i|` over the fold's new respondents, Kendall's
:math:`\tau_b` between :math:`\hat A` and :math:`A`, and the seconds to calibrate, select and
score; the summary gives each one's mean over folds and its SD over folds. The report
(:mod:`~irtbench.subset.report`) names the best combination at each :math:`k` and how random
selection compares.

References:
    Maia Polo, F., Weber, L., Choshen, L., Sun, Y., Xu, G. & Yurochkin, M. (2024).
    tinyBenchmarks: evaluating LLMs with fewer examples. *ICML 2024* (arXiv:2402.14992).
    Segall, D. O. (1996). Multidimensional adaptive testing. *Psychometrika* 61(2), 331-354.

Examples:
    >>> import irtbench
    >>> from irtbench.subset import subset
    >>> data = irtbench.simulate(300, 60, seed=1, model="2pl")
    >>> result = subset(data.responses, items=[10, 30], strategies=["random", "clustering"],
    ...                 folds=3, progress=False)
    >>> sorted(set(result.summary.method))
    ['gpirt', 'mean', 'pirt']
"""

from __future__ import annotations

from irtbench.subset.accuracy import (
    ESTIMATES,
    gpirt,
    kendall_tau,
    mixing_weight,
    pirt,
    true_accuracy,
    weighted_mean,
)
from irtbench.subset.calibration import Calibration, default_method, score_items
from irtbench.subset.driver import (
    DEFAULT_ESTIMATORS,
    DEFAULT_ITEMS,
    DEFAULT_MODELS,
    FOLD_COLUMNS,
    SUMMARY_COLUMNS,
    SubsetResult,
    subset,
)
from irtbench.subset.information import item_embeddings, item_information
from irtbench.subset.kmeans import kmeans
from irtbench.subset.strategies import STRATEGIES, Selection, Strategy, get_strategy

__all__ = ["DEFAULT_ESTIMATORS", "DEFAULT_ITEMS", "DEFAULT_MODELS", "ESTIMATES", "FOLD_COLUMNS",
           "STRATEGIES", "SUMMARY_COLUMNS", "Calibration", "Selection", "Strategy",
           "SubsetResult", "default_method", "get_strategy", "gpirt", "item_embeddings",
           "item_information", "kendall_tau", "kmeans", "mixing_weight", "pirt", "score_items",
           "subset", "true_accuracy", "weighted_mean", "write_subset"]


def __getattr__(name: str) -> object:
    """:func:`~irtbench.subset.report.write_subset` on first use: the report draws with
    matplotlib and sets its Agg backend, which importing the benchmark alone must not do."""
    if name == "write_subset":
        from irtbench.subset.report import write_subset

        return write_subset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
