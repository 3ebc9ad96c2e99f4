r"""The four-parameter logistic (4PL) model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = c_j + (u_j - c_j)\,\sigma\big(a_j(\theta_i - b_j)\big)

the 3PL (:mod:`irtbench.models.threepl`: discrimination :math:`a_j`, difficulty :math:`b_j`,
floor :math:`c_j`) with an upper asymptote, the **ceiling** :math:`u_j`, :math:`0 \le c_j <
u_j \le 1`: the chance that a student of very high skill answers right, below 1 where strong
students slip (a miskeyed or ambiguous item, careless errors; on LLM benchmarks, the questions
whose keys are wrong, which metabench fits the 4PL for). :math:`u_j = 1` is the 3PL. The
ceiling is a probability, as the floor: the affine indeterminacy :math:`\theta \to s\theta + t`
moves :math:`a` and :math:`b` alone, so the alignment is the 2PL's and :math:`u` is compared
as it is.

**The prior on the ceiling.** Only students far above an item's difficulty inform its
ceiling, as only students far below inform its floor, so its marginal likelihood is as
poorly conditioned and its ML estimate wanders to 1 or trades off against :math:`a` and
:math:`b`. The packages that fit the 4PL put a Beta prior on it (R mirt on its ``u`` by
``parprior``, Python mirt by ``priors={"upper": BetaPrior(...)}``, theta-irt on the slip
:math:`1 - u`); irtbench parameterises it as the floor's,
:math:`u_j \sim \mathrm{Beta}(w m + 1, w(1 - m) + 1)` with mode :math:`m`, by default
:math:`m` = 0.95 and :math:`w` = 20, Beta(20, 2) (mean 0.91, SD 0.06): options
``prior_ceiling_mean`` and ``prior_ceiling_weight`` (:data:`CEILING_MEAN`,
:data:`CEILING_WEIGHT`; weight 0 is plain ML), beside the floor's Beta(6, 16). Simulation draws
the ceilings from the same Beta by default, after everything the 3PL draws (so that no other
model's draws change); under the two defaults an item has :math:`u_j \le c_j` with
probability :math:`1.7 \cdot 10^{-6}` (a falling curve, left out of the comparisons by
:meth:`FourPL.usable`).

**Bounds.** As the 3PL's: the marginal Fisher information of :math:`(a_j, d_j, c_j, u_j)`
under :math:`\theta \sim N(0, 1)` (:func:`~irtbench.models.twopl.curves_bounds` with
:class:`Curves`), :math:`\partial p/\partial(a, d, c, u) = ((u - c)s(1 - s)z, (u - c)s(1 - s),
1 - s, s)`, :math:`s = \sigma(az + d)`, plus both priors' information at the truth
(:meth:`Curves.prior_information`): the Bayesian (van Trees) bound of the generating Betas,
evaluated at the true parameters rather than averaged over the priors (the 3PL's
approximation, with the same caveat: for a ceiling near 1 the Beta's curvature
:math:`(\beta - 1)/(1 - u)^2` is large and the item's bound small).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from irtbench.models.base import FIXED, Items, Truth
from irtbench.models.fitting import SIGMOID, Ops, Parameter, Prior
from irtbench.models.threepl import Curves as ThreePLCurves
from irtbench.models.threepl import (ThreePL, beta_curvature, beta_parameters, floor_prior_of,
                                     joint_standard_errors)

if TYPE_CHECKING:
    from irtbench.responses import Responses

__all__ = ["CEILING_MEAN", "CEILING_WEIGHT", "PRIOR_OF", "Curves", "FourPL", "ceiling_prior_of"]

#: the ceiling's default prior: Beta(20 m + 1, 20 (1 - m) + 1) with mode m = 0.95, Beta(20, 2)
CEILING_MEAN = 0.95
CEILING_WEIGHT = 20.0


def ceiling_prior_of(options: dict) -> tuple[float, float]:
    """The Beta(alpha, beta) of an estimator's ``prior_ceiling_mean`` and
    ``prior_ceiling_weight`` options."""
    return beta_parameters(float(options["prior_ceiling_mean"]),
                           float(options["prior_ceiling_weight"]))


#: each asymptote's Beta(alpha, beta) prior from an estimator's options, by item parameter
PRIOR_OF = {"guessing": floor_prior_of, "ceiling": ceiling_prior_of}


class Curves(ThreePLCurves):
    """The 4PL's item response curves for the bounds, in :math:`(a, d, c, u)`."""

    n_parameters = 4

    def __init__(self, discrimination: np.ndarray, difficulty: np.ndarray,
                 guessing: np.ndarray, ceiling: np.ndarray) -> None:
        super().__init__(discrimination, difficulty, guessing)
        self.u = np.asarray(ceiling, dtype=np.float64)

    def prior_information(self) -> np.ndarray:
        r"""The floors' prior information (the 3PL's) and the ceilings',
        :math:`(\alpha - 1)/u^2 + (\beta - 1)/(1 - u)^2` of the Beta they were drawn from (the
        defaults'), at the truth: the van Trees bound (module docstring)."""
        information = super().prior_information()
        information[:, 3] = beta_curvature(self.u, *beta_parameters(CEILING_MEAN,
                                                                   CEILING_WEIGHT))
        return information

    def asymptote_derivatives(self, s: np.ndarray) -> list[np.ndarray]:
        r""":math:`\partial p/\partial c = 1 - s`, :math:`\partial p/\partial u = s`."""
        return [*super().asymptote_derivatives(s), s]


class FourPL(ThreePL):
    r"""The 4PL, :math:`P(Y_{ij} = 1) = c_j + (u_j - c_j)\sigma(a_j(\theta_i - b_j))` (module
    docstring): the 3PL's description (its alignment, runaway rule and draws) plus the
    ceiling."""

    name = "4pl"
    title = "4PL"
    item_parameters = ("difficulty", "discrimination", "guessing", "ceiling")
    kinds = {**ThreePL.kinds, "ceiling": FIXED}
    units = {**ThreePL.units, "ceiling": "probability"}
    formula = ("P = guessing + (ceiling - guessing) * sigmoid(discrimination * "
               "(skill - difficulty))")
    bound_order = (*ThreePL.bound_order, "ceiling")

    reads_options = (*ThreePL.reads_options, "prior_ceiling_mean", "prior_ceiling_weight")

    # -- fitting ----------------------------------------------------------------------------
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        r"""The 3PL's, and the ceiling :math:`u = \sigma(h)` from its prior's mode with the
        Beta prior of :func:`ceiling_prior_of` over :math:`u` itself."""
        return (*super().fit_parameters(options),
                Parameter("ceiling", "logit_ceiling", SIGMOID,
                          float(options["prior_ceiling_mean"]),
                          Prior("beta", ceiling_prior_of(options), "value")))

    def log_prob(self, ops: Ops, logits: Any, y: Any, at: Mapping[str, Any]) -> Any:
        r"""With :math:`p = c + (u - c)\sigma(x) = u\,\sigma(x) + c\,\sigma(-x)` and
        :math:`1 - p = (1 - u)\sigma(x) + (1 - c)\sigma(-x)`, both sums of positive terms for
        any :math:`c, u \in (0, 1)` (a start or a draw with :math:`u < c` is a decreasing
        curve, not an undefined one), in log space:
        :math:`\log p = \operatorname{logaddexp}(\log u + \log\sigma(x),
        \log c + \log\sigma(-x))`, likewise :math:`\log(1 - p)`."""
        c, u = at["guessing"], at["ceiling"]
        up, down = ops.log_sigmoid(logits), ops.log_sigmoid(-logits)
        log_p = ops.logaddexp(ops.log(u) + up, ops.log(c) + down)
        log_not_p = ops.logaddexp(ops.log1p(-u) + up, ops.log1p(-c) + down)
        return y * log_p + (1 - y) * log_not_p

    def draw_items(self, rng: np.random.Generator, n_questions: int, *,
                   ceiling_mean: float = CEILING_MEAN, ceiling_weight: float = CEILING_WEIGHT,
                   **settings: float) -> dict[str, np.ndarray]:
        r"""The 3PL's draws (:math:`a_j`, then :math:`c_j`), then
        :math:`u_j \sim \mathrm{Beta}(20 \cdot 0.95 + 1, 20 \cdot 0.05 + 1)` = Beta(20, 2)
        (:func:`~irtbench.models.threepl.beta_parameters` of ``ceiling_mean``,
        ``ceiling_weight``)."""
        items = super().draw_items(rng, n_questions, **settings)
        alpha, beta = beta_parameters(ceiling_mean, ceiling_weight)
        return {**items, "ceiling": rng.beta(alpha, beta, n_questions)}

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        c = np.asarray(items["guessing"])[None, :]
        u = np.asarray(items["ceiling"])[None, :]
        s = super(ThreePL, self).probabilities(skill, items)  # the 2PL's curve
        return c + (u - c) * s

    def usable(self, items: Items) -> np.ndarray:
        """Finite estimates with :math:`0 \\le c < u \\le 1`."""
        with np.errstate(invalid="ignore"):
            c, u = np.asarray(items["guessing"]), np.asarray(items["ceiling"])
            return super().usable(items) & (c < u) & (u <= 1)

    def curves(self, data: Truth) -> Curves:
        """With the floors and ceilings; both priors' information joins the bound."""
        return Curves(data.discrimination, data.difficulty, data.guessing, data.ceiling)

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return joint_standard_errors(responses, skill, items, ("guessing", "ceiling"))
