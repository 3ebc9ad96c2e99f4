r"""The three-parameter logistic (3PL) model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = c_j + (1 - c_j)\,\sigma\big(a_j(\theta_i - b_j)\big)

with discrimination :math:`a_j > 0`, difficulty :math:`b_j` and a floor :math:`c_j \in [0, 1)`
(the "guessing" parameter: the chance that a student of very low skill answers right, near
1/k for a multiple-choice item of k options; LLM benchmarks: four options, a floor near 0.25).
The floor is a probability: the affine indeterminacy :math:`\theta \to s\theta + t` of the 2PL
moves :math:`a` and :math:`b` alone, so the alignment is the 2PL's
(:func:`~irtbench.models.twopl.affine_alignment`) and :math:`c` is compared as it is.

**The prior on the floor.** The 3PL's marginal likelihood is poorly conditioned in
:math:`c`: only students far below an item's difficulty inform its floor, so for easy or
flat items :math:`c` trades off against :math:`a` and :math:`b` and its ML estimate wanders to
0 or to 1. The field's practice is a Beta prior: BILOG-MG's default is
:math:`c_j \sim \mathrm{Beta}(20\,m + 1, 20(1 - m) + 1)` with :math:`m = 1/k` (Beta(6, 16) for
four options, mode 0.25); irtbench's ``mml-em`` and the Adam fits take it by default (options
``prior_guessing_mean`` = 0.25 and ``prior_guessing_weight`` = 20; weight 0 is plain ML).
Simulation draws the floors from the same Beta by default.

**Bounds.** The marginal Fisher information of :math:`(a_j, d_j, c_j)` under
:math:`\theta \sim N(0, 1)` by Fisher's identity, as for the 2PL
(:func:`~irtbench.models.twopl.curves_bounds` with :class:`Curves`), with
:math:`\partial p/\partial(a, d, c) = ((1 - c)s(1 - s)z, (1 - c)s(1 - s), 1 - s)`,
:math:`s = \sigma(az + d)`. They are the bounds of unbiased estimators from the data alone:
the prior adds information about :math:`c` (Beta(6, 16): about 107 at its mode, against
:math:`N I_{cc}` from the data), so a Bayes-modal estimate can come under the bound for items
whose floor the data barely inform (``benchmarks/threepl_accuracy.py`` measures by how much).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from irtbench.models.base import FIXED, LOCATION, SLOPE, Alignment, Items, Model, sigmoid
from irtbench.models.twopl import Curves as TwoPLCurves
from irtbench.models.twopl import affine_alignment, curves_bounds, node_logits, runaway_items

if TYPE_CHECKING:
    from irtbench.simulate import Dataset

__all__ = ["GUESSING_MEAN", "GUESSING_WEIGHT", "Curves", "ThreePL", "beta_parameters"]

#: BILOG-MG's default floor prior for four options: Beta(20 m + 1, 20 (1 - m) + 1), m = 1/4
GUESSING_MEAN = 0.25
GUESSING_WEIGHT = 20.0


def beta_parameters(mean: float, weight: float) -> tuple[float, float]:
    r"""BILOG-MG's parameterisation of the floor's prior:
    :math:`\mathrm{Beta}(w m + 1, w(1 - m) + 1)`, whose mode is :math:`m`; weight 0 is the
    uniform Beta(1, 1) (no prior)."""
    return weight * mean + 1.0, weight * (1.0 - mean) + 1.0


class Curves(TwoPLCurves):
    """The 3PL's item response curves for the bounds, in :math:`(a, d, c)`."""

    n_parameters = 3

    def __init__(self, discrimination: np.ndarray, difficulty: np.ndarray,
                 guessing: np.ndarray) -> None:
        super().__init__(discrimination, difficulty)
        self.c = np.asarray(guessing, dtype=np.float64)

    def at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = sigmoid(node_logits(self.a, self.b, z))
        c = self.c[:, None]
        p = c + (1.0 - c) * s
        slope = (1.0 - c) * s * (1.0 - s)
        return p, np.stack([slope * z[None, :], slope, 1.0 - s], axis=2)


class ThreePL(Model):
    r"""The 3PL, :math:`P(Y_{ij} = 1) = c_j + (1 - c_j)\sigma(a_j(\theta_i - b_j))` (module
    docstring)."""

    name = "3pl"
    title = "3PL"
    item_parameters = ("difficulty", "discrimination", "guessing")
    kinds = {"skill": LOCATION, "difficulty": LOCATION, "discrimination": SLOPE,
             "guessing": FIXED}
    units = {"skill": "logits", "difficulty": "logits", "discrimination": "",
             "guessing": "probability"}
    formula = "P = guessing + (1 - guessing) * sigmoid(discrimination * (skill - difficulty))"

    def draw_items(self, rng: np.random.Generator, n_questions: int, *,
                   discrimination_sd: float = 0.3, guessing_mean: float = GUESSING_MEAN,
                   guessing_weight: float = GUESSING_WEIGHT, **settings: float
                   ) -> dict[str, np.ndarray]:
        r""":math:`a_j \sim \mathrm{LogNormal}(0, 0.3^2)` as the 2PL's, then
        :math:`c_j \sim \mathrm{Beta}(20 \cdot 0.25 + 1, 20 \cdot 0.75 + 1)` = Beta(6, 16)
        (mean 0.27, SD 0.09: :func:`beta_parameters` of ``guessing_mean``,
        ``guessing_weight``)."""
        discrimination = rng.lognormal(0.0, discrimination_sd, n_questions)
        alpha, beta = beta_parameters(guessing_mean, guessing_weight)
        return {"discrimination": discrimination, "guessing": rng.beta(alpha, beta, n_questions)}

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        a, b = np.asarray(items["discrimination"]), np.asarray(items["difficulty"])
        c = np.asarray(items["guessing"])
        s = sigmoid(a[None, :] * (np.asarray(skill, np.float64)[:, None] - b[None, :]))
        return c[None, :] + (1.0 - c[None, :]) * s

    def usable(self, items: Items) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            c = np.asarray(items["guessing"])
            return (super().usable(items) & (np.asarray(items["discrimination"]) > 0)
                    & (c >= 0) & (c < 1))

    def align(self, estimate: Items, truth: Items, keep: np.ndarray) -> Alignment:
        return affine_alignment(estimate["difficulty"][keep], truth["difficulty"][keep],
                                estimate["discrimination"][keep], truth["discrimination"][keep])

    def bounds(self, data: Dataset, keep: np.ndarray) -> dict[str, float]:
        """Root-mean marginal bounds of the aligned difficulties and discriminations and of the
        floors, at the truth (module docstring); the skills have none here."""
        curves = Curves(data.discrimination, data.difficulty, data.guessing)
        bound_a, bound_b, bound_c = curves_bounds(curves, data.shape[0], aligned=keep)
        return {name: float(np.sqrt(np.mean(bound[keep] ** 2))) for name, bound in
                (("difficulty", bound_b), ("discrimination", bound_a), ("guessing", bound_c))}

    def runaway(self, items: Items, item_se: Mapping[str, np.ndarray | None],
                extreme: np.ndarray) -> np.ndarray:
        """The 2PL's rule on :math:`a` and :math:`b` (a floor at 0 or near 1 is the prior's
        business, not a runaway)."""
        return runaway_items(items["discrimination"], items["difficulty"],
                             item_se.get("discrimination"), item_se.get("difficulty"), extreme)
