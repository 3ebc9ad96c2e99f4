r"""Which :math:`k` of a benchmark's :math:`J` items a new respondent answers: five strategies,
each a class that declares what the rest reads (:data:`STRATEGIES`).

Each gives a :class:`Selection`: the items, ``(1, k)`` shared by every new respondent or
``(n, k)`` one row each (``adaptive``), with weights summing to 1 on each row (the ``mean``
estimate's, :mod:`~irtbench.subset.accuracy`), and the seconds it took. All read the items as
calibrated on the other rows (:class:`~irtbench.subset.calibration.Calibration`).

* ``random``: :math:`k` items drawn without replacement (seeded); weights :math:`1/k`.
* ``stratified``: the items sorted by calibrated difficulty (the model's first item parameter:
  the M2PL's is MDIFF) and cut into :math:`k` strata of equal count (sizes differing by one
  where :math:`k` does not divide :math:`J`), one item drawn from each; each weight the
  stratum's share of the items, :math:`|S_l|/J` (stratified sampling's weights).
* ``information``: the :math:`k` items of most Fisher information at the calibration
  population, each item's :math:`\frac1n\sum_i \operatorname{tr} I_j(\hat\theta_i)` over the
  calibration respondents' fitted skills (finite ones): the sum over the empirical
  population, not an integral under a fitted distribution; the trace for vector skills
  (:mod:`~irtbench.subset.information`); weights :math:`1/k`.
* ``clustering``: tinyBenchmarks' anchor points: K-means with :math:`k` clusters
  (:func:`~irtbench.subset.kmeans.kmeans`, k-means++ starts, seeded) of the items' IRT
  embeddings :math:`(a_j, d_j)` (:func:`~irtbench.subset.information.item_embeddings`); in
  each cluster the item nearest its centre (tinyBenchmarks takes the item nearest each centre
  over all items: the same item unless two centres share their nearest one, which would repeat
  an item); each weight the cluster's share of the items. Items with a non-finite parameter
  are left out of the clustering and of the shares.
* ``adaptive``: computerised adaptive testing, one respondent at a time in parallel: its
  skill estimated from the answers so far (the scoring module, EAP under the calibration
  skill distribution, MAP for vector skills; before any answer, that distribution's mean;
  an ML estimate that is infinite, for answers all right or all wrong so far, is taken at
  four of the distribution's SDs from its mean),
  then the next item the one that most increases the determinant of
  :math:`M_i = \Sigma^{-1} + \sum_{j \in S_i} I_j(\hat\theta_i)` (:math:`\Sigma` the skill
  distribution's covariance; D-optimality, Segall 1996; with one dimension, the item of most
  information at :math:`\hat\theta_i`), among the items the respondent answered in the data
  (those it did not answer are taken only when none is left); weights :math:`1/k`. Run once
  to the largest :math:`k`, whose first :math:`k` items are the selection at each smaller
  :math:`k` (its seconds the clock at that step).

``mean_variance_divisor`` is tinyBenchmarks' :math:`c` in the variance :math:`v/(ck)` of the
weighted mean, which sets gp-IRT's mixing weight: 1 for random draws, 4 for their anchor
points and their adaptive selection (and here for every strategy but ``random``). For
``information`` and ``adaptive`` the plain mean is not an estimate of the whole benchmark's
accuracy at all (adaptive testing aims every respondent at items it answers half the time),
which their rule does not see.

References:
    Maia Polo, F. et al. (2024). tinyBenchmarks: evaluating LLMs with fewer examples.
    *ICML 2024* (arXiv:2402.14992).
    Segall, D. O. (1996). Multidimensional adaptive testing. *Psychometrika* 61(2), 331-354.
    van der Linden, W. J. & Glas, C. A. W. (eds.) (2010). *Elements of Adaptive Testing*.
    Springer.
"""

from __future__ import annotations

import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np

from irtbench.responses import row_blocks
from irtbench.subset.calibration import Calibration, score_items
from irtbench.subset.information import finite_items, item_embeddings, item_information
from irtbench.subset.kmeans import kmeans

__all__ = ["STRATEGIES", "Adaptive", "Clustering", "Information", "Random", "Selection",
           "Strategy", "Stratified", "get_strategy"]


class Selection(NamedTuple):
    """The items shown, ``(1, k)`` (every respondent) or ``(n, k)`` (one row each), int; their
    weights, the same shape, each row summing to 1; and the seconds the choice took."""

    items: np.ndarray
    weights: np.ndarray
    seconds: float


def equal_weights(items: np.ndarray) -> np.ndarray:
    """:math:`1/k` for each of the ``k`` items of each row."""
    return np.full(items.shape, 1.0 / items.shape[1])


class Strategy(ABC):
    """One way of choosing the items (module docstring).

    Class attributes:
        name: the key of :data:`STRATEGIES` and of ``--strategies``.
        summary: one line for the help and the report.
        mean_variance_divisor: tinyBenchmarks' :math:`c` of the weighted mean's variance
            :math:`v/(ck)` (gp-IRT's weight).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    mean_variance_divisor: ClassVar[float] = 4.0

    def rng(self, seed: Sequence[int], k: int) -> np.random.Generator:
        """The generator of this strategy at ``k`` items under ``seed``: the same whatever
        other strategies or sizes run beside it."""
        return np.random.default_rng([*seed, zlib.crc32(self.name.encode()), k])

    @abstractmethod
    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(items, weights)`` of ``k`` items for the new respondents' ``answers`` ``(n, J)``
        (NaN: not answered)."""

    def select(self, calibration: Calibration, answers: np.ndarray, ks: Sequence[int],
               seed: Sequence[int] = (0,)) -> dict[int, Selection]:
        """A :class:`Selection` for each ``k`` of ``ks``, each timed on its own."""
        selections = {}
        for k in ks:
            check_size(k, answers.shape[1])
            started = time.perf_counter()
            items, weights = self.choose(calibration, answers, k, self.rng(seed, k))
            selections[k] = Selection(items, weights, time.perf_counter() - started)
        return selections


def check_size(k: int, n_items: int) -> None:
    if not 1 <= k <= n_items:
        raise ValueError(f"{k} items of {n_items}: between 1 and the number of items")


class Random(Strategy):
    name = "random"
    summary = "k items drawn at random (seeded), equal weights"
    mean_variance_divisor = 1.0

    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        items = np.sort(rng.choice(answers.shape[1], size=k, replace=False))[None, :]
        return items, equal_weights(items)


class Stratified(Strategy):
    name = "stratified"
    summary = ("one item at random from each of k strata of equal count by calibrated "
               "difficulty, weighted by the strata's shares")

    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        difficulty = np.asarray(calibration.items[calibration.model.item_parameters[0]],
                                np.float64)
        strata = np.array_split(np.argsort(difficulty, kind="stable"), k)  # NaN last
        items = np.array([stratum[rng.integers(len(stratum))] for stratum in strata])[None, :]
        weights = np.array([len(stratum) for stratum in strata], np.float64)[None, :]
        return items, weights / weights.sum()


class Information(Strategy):
    name = "information"
    summary = ("the k items of most Fisher information summed over the calibration "
               "respondents' skills (the trace for vector skills), equal weights")

    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        information = population_information(calibration)
        items = np.sort(np.argsort(-information, kind="stable")[:k])[None, :]
        return items, equal_weights(items)


def population_information(calibration: Calibration) -> np.ndarray:
    r"""Each item's :math:`\frac1n\sum_i\operatorname{tr} I_j(\hat\theta_i)` over the
    calibration respondents' finite skills, ``(J,)``, a block of respondents at a time."""
    skill = np.asarray(calibration.skill, np.float64)
    skill = skill[np.isfinite(skill.reshape(len(skill), -1)).all(axis=1)]
    n_items = len(calibration.items[calibration.model.item_parameters[0]])
    total = np.zeros(n_items)
    for rows in row_blocks((len(skill), n_items * (skill[0].size if len(skill) else 1))):
        total += item_information(calibration.model, calibration.items,
                                  skill[rows]).trace().sum(axis=0)
    return total / max(len(skill), 1)


class Clustering(Strategy):
    name = "clustering"
    summary = ("tinyBenchmarks' anchor points: K-means of the items' IRT embeddings, the item "
               "nearest each centre, weighted by the clusters' shares")

    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        points = item_embeddings(calibration.model, calibration.items,
                                 calibration.prior_mean())
        usable = np.flatnonzero(np.isfinite(points).all(axis=1))
        if k > len(usable):
            raise ValueError(f"{k} anchor points of {len(usable)} items with finite "
                             "calibrated parameters")
        clusters = kmeans(points[usable], k, seed=rng)
        distance = ((points[usable] - clusters.centres[clusters.labels]) ** 2).sum(axis=1)
        order = np.lexsort((distance, clusters.labels))  # by cluster, nearest first
        first = np.flatnonzero(np.r_[True, np.diff(clusters.labels[order]) != 0])
        anchors = order[first]  # one per cluster, in cluster order
        weights = np.bincount(clusters.labels, minlength=k)[clusters.labels[anchors]]
        return usable[anchors][None, :], (weights / len(usable))[None, :]


class Adaptive(Strategy):
    name = "adaptive"
    summary = ("computerised adaptive testing: each respondent's next item the one that most "
               "increases the determinant of its information at its current estimate")

    def choose(self, calibration: Calibration, answers: np.ndarray, k: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        selection = self.select(calibration, answers, [k])[k]
        return selection.items, selection.weights

    def select(self, calibration: Calibration, answers: np.ndarray, ks: Sequence[int],
               seed: Sequence[int] = (0,)) -> dict[int, Selection]:
        """One adaptive test to the largest ``k``, its first ``k`` items at each ``k``
        (module docstring)."""
        n, n_items = answers.shape
        for k in ks:
            check_size(k, n_items)
        tier = (finite_items(calibration.items)[None, :].astype(int)
                + 2 * (~np.isnan(answers) & finite_items(calibration.items)[None, :]))
        precision = np.linalg.inv(calibration.prior_covariance())
        chosen = np.empty((n, 0), dtype=np.int64)
        selections: dict[int, Selection] = {}
        started = time.perf_counter()
        for step in range(max(ks)):
            skill = (calibration.prior_skills(n) if step == 0
                     else finite_skills(calibration, score_items(calibration, answers,
                                                                 chosen).skill))
            information = item_information(calibration.model, calibration.items, skill)
            matrix = precision[None] + information.summed(chosen)
            gain = information.quadratic(np.linalg.inv(matrix))
            chosen = np.column_stack([chosen, best_untaken(gain, tier, chosen)])
            if step + 1 in ks:
                selections[step + 1] = Selection(chosen.copy(), equal_weights(chosen),
                                                 time.perf_counter() - started)
        return selections


#: where the adaptive test takes the information of a respondent with no finite estimate
#: (ML, answers all right or all wrong so far): this many prior SDs from the prior's mean
FAR_SDS = 4.0


def finite_skills(calibration: Calibration, skill: np.ndarray) -> np.ndarray:
    """``skill`` with each infinite entry (ML's, for answers all right or all wrong so far)
    at :data:`FAR_SDS` prior SDs from the prior's mean on its side, and NaN at the mean."""
    if np.isfinite(skill).all():
        return skill
    mean = calibration.prior_skills(len(skill))
    spread = np.sqrt(np.diag(calibration.prior_covariance()))
    spread = spread if calibration.vector_skills else spread[0]
    far = mean + FAR_SDS * np.sign(np.nan_to_num(skill)) * spread
    return np.where(np.isfinite(skill), skill, np.where(np.isnan(skill), mean, far))


def best_untaken(gain: np.ndarray, tier: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Each row's item of most ``gain`` among those not ``chosen`` in its best ``tier`` (2:
    answered in the data with finite parameters; 1: finite parameters; 0: any)."""
    rows = np.arange(len(gain))[:, None]
    tier = tier.copy()
    tier[rows, chosen] = -1
    candidates = tier == tier.max(axis=1, keepdims=True)
    key = np.where(candidates, np.nan_to_num(gain, nan=-np.inf), -np.inf)
    pick = key.argmax(axis=1)
    stuck = np.isneginf(key[rows[:, 0], pick])  # no finite gain: the first candidate
    pick[stuck] = candidates[stuck].argmax(axis=1)
    return pick


#: every strategy by name, in the tables' order
STRATEGIES: dict[str, Strategy] = {cls.name: cls() for cls in (
    Random, Stratified, Information, Clustering, Adaptive)}


def get_strategy(name: str) -> Strategy:
    """The strategy ``name``; a ``ValueError`` naming the strategies otherwise."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: choose among {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
