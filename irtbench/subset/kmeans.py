r"""K-means by Lloyd's algorithm from k-means++ starts, seeded, in numpy: the clustering of
tinyBenchmarks' anchor points (:class:`~irtbench.subset.strategies.Clustering`).

Given points :math:`x_1, \dots, x_J \in R^d` and :math:`k \le J`, K-means looks for centres
:math:`c_1, \dots, c_k` minimising the *inertia*

.. math::
    \sum_{j=1}^{J} \min_{c} \|x_j - c\|^2 .

**k-means++ starts** (Arthur & Vassilvitskii, 2007): the first centre is a point drawn
uniformly; each next one is a point drawn with probability proportional to its squared distance
to the nearest centre chosen so far (uniformly among the points not yet chosen once every
point sits on a centre, as when points repeat).

**Lloyd's iterations**: each point joins its nearest centre; each centre moves to the mean of
its points; until no point changes cluster, or the centres move by less than ``tol`` times the
points' mean variance per coordinate in all (summed squared shifts: scikit-learn's rule and
default, 1e-4), or ``max_iter``. A cluster left empty is given
the point farthest from its own centre among the clusters of more than one point, so that the
``k`` clusters stay non-empty whenever :math:`k \le J`.

``n_init`` starts are run and the solution of least inertia kept: one by default, as
scikit-learn's ``n_init="auto"`` with k-means++ starts in tinyBenchmarks' anchor-point tutorial
(their paper's experiments keep the best of five). scikit-learn is not needed for this.

References:
    Lloyd, S. (1982). Least squares quantization in PCM. *IEEE Transactions on Information
    Theory* 28(2), 129-137.
    Arthur, D. & Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding.
    *SODA 2007*, 1027-1035.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Clusters", "kmeans"]


class Clusters(NamedTuple):
    """A K-means solution: ``centres`` ``(k, d)``, each point's cluster ``labels`` ``(J,)``
    and the ``inertia``."""

    centres: np.ndarray
    labels: np.ndarray
    inertia: float


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    r""":math:`\|x_j - c_l\|^2`, ``(J, k)``, as :math:`\|x\|^2 - 2x\cdot c + \|c\|^2` (floored
    at 0 against rounding)."""
    products = points @ centres.T
    distances = (points * points).sum(axis=1)[:, None] - 2.0 * products \
        + (centres * centres).sum(axis=1)[None, :]
    return np.maximum(distances, 0.0)


def plus_plus_starts(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The indices of ``k`` distinct starting points by k-means++ (module docstring)."""
    chosen = [int(rng.integers(len(points)))]
    nearest = squared_distances(points, points[chosen]).min(axis=1)
    for _ in range(1, k):
        weights = nearest.copy()
        weights[chosen] = 0.0
        if weights.sum() <= 0.0:  # every point on a centre: a point not yet chosen, uniformly
            weights = np.ones(len(points))
            weights[chosen] = 0.0
        pick = int(rng.choice(len(points), p=weights / weights.sum()))
        chosen.append(pick)
        nearest = np.minimum(nearest, squared_distances(points, points[[pick]])[:, 0])
    return np.array(chosen)


def fill_empty(points: np.ndarray, labels: np.ndarray, centres: np.ndarray,
               distances: np.ndarray) -> np.ndarray:
    """``labels`` with each empty cluster given the point farthest from its centre among the
    clusters of more than one point (module docstring)."""
    k = len(centres)
    counts = np.bincount(labels, minlength=k)
    own = distances[np.arange(len(points)), labels]
    for empty in np.flatnonzero(counts == 0):
        movable = counts[labels] > 1
        far = int(np.argmax(np.where(movable, own, -1.0)))
        counts[labels[far]] -= 1
        labels[far], counts[empty], own[far] = empty, 1, 0.0
    return labels


def lloyd(points: np.ndarray, centres: np.ndarray, max_iter: int, tol: float) -> Clusters:
    """Lloyd's iterations from ``centres`` (module docstring)."""
    k = len(centres)
    labels = np.full(len(points), -1)
    small = tol * float(points.var(axis=0).mean())
    for _ in range(max_iter):
        distances = squared_distances(points, centres)
        new = fill_empty(points, distances.argmin(axis=1), centres, distances)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        moved = np.stack([np.bincount(labels, weights=column, minlength=k)
                          for column in points.T], axis=1) / counts[:, None]
        shift, centres = float(((moved - centres) ** 2).sum()), moved
        if shift <= small:
            break
    inertia = float(squared_distances(points, centres)[np.arange(len(points)), labels].sum())
    return Clusters(centres, labels, inertia)


def kmeans(points: np.ndarray, k: int, *, seed: int | np.random.Generator = 0,
           n_init: int = 1, max_iter: int = 300, tol: float = 1e-4) -> Clusters:
    """The K-means solution of least inertia over ``n_init`` k-means++ starts (module
    docstring); the same for the same ``seed``.

    Args:
        points: ``(J, d)`` float.
        k: the number of clusters, ``1 <= k <= J``.
        seed: a seed or a generator for the starts.
        n_init: the starts tried.
        max_iter: Lloyd's iterations at most per start.
        tol: the stopping rule's share of the points' variance (module docstring).

    Examples:
        >>> points = np.array([[0.0], [0.1], [5.0], [5.2], [9.9], [10.0]])
        >>> sorted(np.round(kmeans(points, 3).centres[:, 0], 2).tolist())
        [0.05, 5.1, 9.95]
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or not np.isfinite(points).all():
        raise ValueError("kmeans needs a finite (J, d) matrix of points")
    if not 1 <= k <= len(points):
        raise ValueError(f"k={k} clusters of {len(points)} points: 1 <= k <= J is needed")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        solution = lloyd(points, points[plus_plus_starts(points, k, rng)], max_iter, tol)
        if best is None or solution.inertia < best.inertia:
            best = solution
    return best
