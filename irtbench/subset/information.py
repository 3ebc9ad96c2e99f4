r"""The Fisher information of each item at a skill, for any model of the suite, and the items'
IRT embeddings: what the ``information``, ``adaptive`` and ``clustering`` strategies read
(:mod:`~irtbench.subset.strategies`).

**Information.** An answer :math:`Y_j \sim \mathrm{Bernoulli}(P_j(\theta))` carries about the
skill :math:`\theta \in R^D` the Fisher information

.. math::
    I_j(\theta) = \frac{\nabla P_j(\theta)\,\nabla P_j(\theta)^\top}{P_j(\theta)(1 - P_j(\theta))},

a matrix of rank one, :math:`w\,u u^\top` (:class:`ItemInformation`). For a model whose
probability is the logistic of a logit linear in the skill, :math:`P_j = \sigma(\theta\cdot
a_j + d_j)` (the Rasch model, the 2PL, the M2PL: :meth:`Model.linear_logits
<irtbench.models.base.Model.linear_logits>`), :math:`\nabla P_j = P_j(1 - P_j)a_j`, so
:math:`w = P_j(1 - P_j)` and :math:`u = a_j`, the same direction for every respondent (the
2PL's :math:`a_j^2P_j(1 - P_j)`). For the others (the 3PL and 4PL) the gradient is taken by
central differences of :meth:`Model.probabilities <irtbench.models.base.Model.probabilities>`
(step :data:`STEP`: error :math:`O(h^2)`, about 1e-10 relative), :math:`w = 1/(P(1 - P))`,
:math:`u = \nabla P`.

Items whose calibrated parameters are not all finite carry no information here (zero).

**Embeddings** (:func:`item_embeddings`): tinyBenchmarks clusters the items by their IRT
parameters, the loadings and the intercept of the logit, :math:`x_j = (a_j, d_j) \in R^{D+1}`
(py-irt's ``disc`` and ``diff``, :math:`\sigma(a_j\cdot\theta - b_j)`: the same points up to
the sign of the last coordinate, which K-means does not see). For a model without a linear
logit, :math:`a_j` is the logit's slope by central differences over :math:`\bar\theta \pm 1`
(the calibration skills' mean), :math:`d_j` the logit at :math:`\bar\theta` less
:math:`a_j\cdot\bar\theta`: the linear logit's own coefficients where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from irtbench.models import Model
from irtbench.responses import row_blocks

__all__ = ["STEP", "ItemInformation", "finite_items", "item_embeddings", "item_information"]

#: the central differences' step in the skill
STEP = 1e-5


class ItemInformation(NamedTuple):
    r"""The information of every item at every respondent's skill, :math:`I_{ij} = w_{ij}
    u_{ij}u_{ij}^\top`: ``weight`` ``(n, J)`` and ``direction`` ``(J, D)`` (the same for every
    respondent: a linear logit) or ``(n, J, D)``."""

    weight: np.ndarray
    direction: np.ndarray

    def trace(self) -> np.ndarray:
        r""":math:`\operatorname{tr} I_{ij} = w_{ij}\|u_{ij}\|^2`, ``(n, J)``."""
        return self.weight * (self.direction ** 2).sum(axis=-1)

    def quadratic(self, inverse: np.ndarray) -> np.ndarray:
        r""":math:`w_{ij}\,u_{ij}^\top M_i^{-1}u_{ij}`, ``(n, J)``, for each respondent's
        ``inverse`` :math:`M_i^{-1}` ``(n, D, D)``: by the matrix determinant lemma,
        :math:`\det(M_i + I_{ij}) = \det M_i\,(1 + w_{ij}u_{ij}^\top M_i^{-1}u_{ij})`, so the
        item that most increases the determinant of :math:`M_i` maximises it. A block of
        respondents at a time."""
        n, n_items = self.weight.shape
        spread = np.empty((n, n_items))
        for rows in row_blocks((n, n_items * inverse.shape[-1])):
            direction = (self.direction[None] if self.direction.ndim == 2
                         else self.direction[rows])
            spread[rows] = ((direction @ inverse[rows]) * direction).sum(axis=-1)
        return self.weight * spread

    def summed(self, chosen: np.ndarray) -> np.ndarray:
        r""":math:`\sum_{j \in S_i} I_{ij}`, ``(n, D, D)``, over each row's items ``chosen``
        ``(n, t)``."""
        rows = np.arange(len(chosen))[:, None]
        weight = self.weight[rows, chosen]  # (n, t)
        direction = (self.direction[chosen] if self.direction.ndim == 2
                     else self.direction[rows, chosen])  # (n, t, D)
        return np.einsum("nt,ntd,nte->nde", weight, direction, direction)


def finite_items(items: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(J,)`` bool: the items whose parameters are all finite (a matrix's row by row)."""
    return np.logical_and.reduce([
        np.isfinite(np.asarray(values, np.float64)).reshape(len(values), -1).all(axis=1)
        for values in items.values()])


def skill_rows(skill: np.ndarray) -> np.ndarray:
    """The skills as ``(n, D)``, a vector being one dimension."""
    skill = np.asarray(skill, np.float64)
    return skill[:, None] if skill.ndim == 1 else skill


def as_model_skill(theta: np.ndarray, scalar: bool) -> np.ndarray:
    """``(n, D)`` skills back in the shape the model takes: ``(n,)`` for a scalar model."""
    return theta[:, 0] if scalar else theta


def probability_gradients(model: Model, items: Mapping[str, np.ndarray], skill: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    r"""``(P, dP)``: the probabilities ``(n, J)`` and their gradients in the skill
    ``(n, J, D)`` by central differences (module docstring)."""
    scalar = np.asarray(skill).ndim == 1
    theta = skill_rows(skill)
    p = model.probabilities(as_model_skill(theta, scalar), items)
    gradient = np.empty((*p.shape, theta.shape[1]))
    for d in range(theta.shape[1]):
        step = np.zeros(theta.shape[1])
        step[d] = STEP
        upper = model.probabilities(as_model_skill(theta + step, scalar), items)
        lower = model.probabilities(as_model_skill(theta - step, scalar), items)
        gradient[:, :, d] = (upper - lower) / (2.0 * STEP)
    return p, gradient


def item_information(model: Model, items: Mapping[str, np.ndarray], skill: np.ndarray
                     ) -> ItemInformation:
    """The information of every item at each of the skills ``skill`` (``(n,)``, or ``(n, D)``
    for vector skills; all finite): :class:`ItemInformation` (module docstring)."""
    usable = finite_items(items)
    linear = model.linear_logits(items)
    if linear is not None:
        slopes = np.asarray(linear[0], np.float64).reshape(len(usable), -1)
        with np.errstate(invalid="ignore", over="ignore"):
            p = model.probabilities(skill, items)
        weight = np.where(usable, p * (1.0 - p), 0.0)
        return ItemInformation(np.nan_to_num(weight), np.where(usable[:, None], slopes, 0.0))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        p, gradient = probability_gradients(model, items, skill)
        weight = np.where(usable & (p > 0) & (p < 1), 1.0 / (p * (1.0 - p)), 0.0)
    return ItemInformation(np.nan_to_num(weight),
                           np.nan_to_num(np.where(usable[None, :, None], gradient, 0.0)))


def item_embeddings(model: Model, items: Mapping[str, np.ndarray], centre: np.ndarray
                    ) -> np.ndarray:
    r"""Each item's point :math:`(a_j, d_j)`, ``(J, D + 1)`` (module docstring); ``centre``
    :math:`\bar\theta` ``(D,)`` serves the models without a linear logit. Items with a
    non-finite parameter are NaN."""
    usable = finite_items(items)
    linear = model.linear_logits(items)
    if linear is not None:
        slopes = np.asarray(linear[0], np.float64).reshape(len(usable), -1)
        intercepts = np.asarray(linear[1], np.float64)
    else:
        centre = np.asarray(centre, np.float64).reshape(1, -1)
        scalar = centre.shape[1] == 1

        def logit(theta: np.ndarray) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                p = model.probabilities(as_model_skill(theta, scalar), items)[0]
                return np.log(p) - np.log1p(-p)

        slopes = np.stack([(logit(centre + unit) - logit(centre - unit)) / 2.0
                           for unit in np.eye(centre.shape[1])], axis=1)
        intercepts = logit(centre) - slopes @ centre[0]
    points = np.column_stack([slopes, intercepts])
    points[~(usable & np.isfinite(points).all(axis=1))] = np.nan
    return points
