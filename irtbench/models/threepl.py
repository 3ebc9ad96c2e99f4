r"""The three-parameter logistic (3PL) model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = c_j + (1 - c_j)\,\sigma\big(a_j(\theta_i - b_j)\big)

with discrimination :math:`a_j` (its sign as the 2PL's: free in ``mml-em``, positive in the
Adam fits), difficulty :math:`b_j` and a floor :math:`c_j \in [0, 1)`
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
:math:`s = \sigma(az + d)`, *plus the floors' prior information* at the truth
(:meth:`Curves.prior_information`): the data alone barely inform the floor of an easy item
(at 2000 x 20 the data-only bound of c was 0.25, above the prior's own SD 0.09, and mml-em's
RMSE 0.10 beat it 2.4x), so the bound the 3PL's estimates are held to is the Bayesian
(van Trees) bound of the floors' generating Beta, evaluated at the true parameters rather than
averaged over the prior (an approximation: ``benchmarks/threepl_accuracy.py`` measures RMSE /
bound over repeated draws).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from irtbench.models.base import FIXED, Items, Model, Truth, sigmoid
from irtbench.models.fitting import SIGMOID, Ops, Parameter, Prior
from irtbench.models.twopl import Curves as TwoPLCurves
from irtbench.models.twopl import TwoPL, node_logits

if TYPE_CHECKING:
    from irtbench.responses import Responses

__all__ = ["GUESSING_MEAN", "GUESSING_WEIGHT", "Curves", "ThreePL", "beta_curvature",
           "beta_parameters", "floor_prior_of", "joint_standard_errors"]

#: BILOG-MG's default floor prior for four options: Beta(20 m + 1, 20 (1 - m) + 1), m = 1/4
GUESSING_MEAN = 0.25
GUESSING_WEIGHT = 20.0


def beta_parameters(mean: float, weight: float) -> tuple[float, float]:
    r"""BILOG-MG's parameterisation of the floor's prior:
    :math:`\mathrm{Beta}(w m + 1, w(1 - m) + 1)`, whose mode is :math:`m`; weight 0 is the
    uniform Beta(1, 1) (no prior)."""
    return weight * mean + 1.0, weight * (1.0 - mean) + 1.0


def floor_prior_of(options: Mapping) -> tuple[float, float]:
    """The Beta(alpha, beta) of an estimator's ``prior_guessing_mean`` and
    ``prior_guessing_weight`` options."""
    return beta_parameters(float(options["prior_guessing_mean"]),
                           float(options["prior_guessing_weight"]))


def joint_standard_errors(responses: Responses, skill: np.ndarray, items: Items,
                          asymptotes: tuple[str, ...] = ("guessing",)
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Asymptotic SEs :math:`1/\sqrt{I}` of a joint (JML) 3PL estimate, each parameter with
    the others known: with :math:`s = \sigma(a(\theta - b))`, :math:`p = c + (u - c)s` (the
    3PL: :math:`u = 1`) and :math:`v = p(1 - p)` over the observed responses,
    :math:`\partial p/\partial\theta = (u - c)as(1 - s) = -\partial p/\partial b`,
    :math:`\partial p/\partial a = (u - c)(\theta - b)s(1 - s)`, :math:`\partial p/\partial c
    = 1 - s`, :math:`\partial p/\partial u = s`, and each information the sum of the squared
    derivative over :math:`v`. ``asymptotes``: the asymptotes reported, ``("guessing",)`` for
    the 3PL, ``("guessing", "ceiling")`` for the 4PL (:mod:`irtbench.models.fourpl`), whose
    ceiling :math:`u` is then read from ``items``. ``inf`` for extreme students and questions.
    Dense responses (a block of rows at a time) or sparse triples."""
    from irtbench.extremes import find_extremes
    from irtbench.responses import is_sparse, observed_of, row_blocks

    a, b, c = (np.asarray(items[name], np.float64)
               for name in ("discrimination", "difficulty", "guessing"))
    u = np.asarray(items["ceiling"], np.float64) if "ceiling" in asymptotes else np.ones_like(c)
    theta = np.asarray(skill, np.float64)
    info_skill = np.zeros(len(theta))
    names = ("difficulty", "discrimination", *asymptotes)
    sums = {name: np.zeros(len(b)) for name in names}

    def terms(deviation: np.ndarray, a: np.ndarray, c: np.ndarray, u: np.ndarray,
              observed: np.ndarray) -> tuple[np.ndarray, ...]:
        """The information terms of the skill (and difficulty), the slope and each asymptote."""
        with np.errstate(invalid="ignore", over="ignore"):
            s = sigmoid(a * deviation)
            p = c + (u - c) * s
            keep = observed & np.isfinite(deviation)
            inverse = np.where(keep, 1.0 / np.maximum(p * (1 - p), 1e-300), 0.0)
            slope = np.where(keep, (u - c) * s * (1 - s), 0.0)
            d_theta = slope * a
            d_a = np.where(keep, slope * deviation, 0.0)
            d_asymptote = {"guessing": 1 - s, "ceiling": s}
            d_rest = [np.where(keep, d_asymptote[name], 0.0) for name in asymptotes]
        return tuple(d**2 * inverse for d in (d_theta, d_a, *d_rest))

    if is_sparse(responses):
        student, question = responses.student, responses.question
        t_theta, *t_items = terms(theta[student] - b[question], a[question], c[question],
                                  u[question], np.ones(len(student), bool))
        info_skill = np.bincount(student, t_theta, len(theta))
        for name, values in zip(names, (t_theta, *t_items)):
            sums[name] = np.bincount(question, values, len(b))
    for rows in [] if is_sparse(responses) else row_blocks(responses.shape):
        t_theta, *t_items = terms(theta[rows, None] - b[None, :], a[None, :], c[None, :],
                                  u[None, :], observed_of(responses[rows]))
        info_skill[rows] = t_theta.sum(axis=1)
        for name, values in zip(names, (t_theta, *t_items)):
            sums[name] += values.sum(axis=0)
    found = find_extremes(responses)
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        item_se = {name: 1.0 / np.sqrt(total) for name, total in sums.items()}
    skill_se[found.students] = np.inf
    for values in item_se.values():
        values[found.questions] = np.inf
    return skill_se, item_se


class Curves(TwoPLCurves):
    """The 3PL's item response curves for the bounds, in :math:`(a, d, c)`; the 4PL's
    (:class:`irtbench.models.fourpl.Curves`) add the ceiling :math:`u` (here 1)."""

    n_parameters = 3

    def __init__(self, discrimination: np.ndarray, difficulty: np.ndarray,
                 guessing: np.ndarray) -> None:
        super().__init__(discrimination, difficulty)
        self.c = np.asarray(guessing, dtype=np.float64)
        self.u = np.ones_like(self.c)

    def prior_information(self) -> np.ndarray:
        r"""The floors' prior information at the truth,
        :math:`-\partial^2_c \log\mathrm{Beta}(c; \alpha, \beta) = (\alpha - 1)/c^2 +
        (\beta - 1)/(1 - c)^2` of the Beta the floors were drawn from (the defaults'), on
        :math:`c` only: the bound becomes the Bayesian (van Trees) bound at the truth, which
        the Bayes-modal estimators are held to (module docstring)."""
        information = np.zeros((len(self.a), self.n_parameters))
        information[:, 2] = beta_curvature(self.c, *beta_parameters(GUESSING_MEAN,
                                                                   GUESSING_WEIGHT))
        return information

    def asymptote_derivatives(self, s: np.ndarray) -> list[np.ndarray]:
        r""":math:`\partial p/\partial c = 1 - s`, after :math:`(a, d)`."""
        return [1.0 - s]

    def at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = sigmoid(node_logits(self.a, self.b, z))
        c, u = self.c[:, None], self.u[:, None]
        p = c + (u - c) * s
        slope = (u - c) * s * (1.0 - s)
        return p, np.stack([slope * z[None, :], slope, *self.asymptote_derivatives(s)], axis=2)


def beta_curvature(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    r""":math:`-\partial^2_x \log\mathrm{Beta}(x; \alpha, \beta) = (\alpha - 1)/x^2 +
    (\beta - 1)/(1 - x)^2`: a Beta prior's information at ``x``."""
    return (alpha - 1) / x**2 + (beta - 1) / (1 - x) ** 2


class ThreePL(TwoPL):
    r"""The 3PL, :math:`P(Y_{ij} = 1) = c_j + (1 - c_j)\sigma(a_j(\theta_i - b_j))` (module
    docstring): the 2PL's description (its alignment, runaway rule and draws of a) plus the
    floor."""

    name = "3pl"
    title = "3PL"
    item_parameters = ("difficulty", "discrimination", "guessing")
    kinds = {**TwoPL.kinds, "guessing": FIXED}
    units = {**TwoPL.units, "guessing": "probability"}
    formula = "P = guessing + (1 - guessing) * sigmoid(discrimination * (skill - difficulty))"
    bound_order = (*TwoPL.bound_order, "guessing")

    def draw_items(self, rng: np.random.Generator, n_questions: int, *,
                   guessing_mean: float = GUESSING_MEAN, guessing_weight: float = GUESSING_WEIGHT,
                   **settings: float) -> dict[str, np.ndarray]:
        r"""The 2PL's :math:`a_j \sim \mathrm{LogNormal}(0, 0.3^2)`, then
        :math:`c_j \sim \mathrm{Beta}(20 \cdot 0.25 + 1, 20 \cdot 0.75 + 1)` = Beta(6, 16)
        (mean 0.27, SD 0.09: :func:`beta_parameters` of ``guessing_mean``,
        ``guessing_weight``)."""
        items = super().draw_items(rng, n_questions, **settings)
        alpha, beta = beta_parameters(guessing_mean, guessing_weight)
        return {**items, "guessing": rng.beta(alpha, beta, n_questions)}

    reads_options = (*TwoPL.reads_options, "prior_guessing_mean", "prior_guessing_weight")
    fast_paths = frozenset()
    information_sums = None
    fit_errors = Model.fit_errors  # the 3PL's joint SEs on the host

    # -- fitting ----------------------------------------------------------------------------
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        r"""The 2PL's, and the floor :math:`c = \sigma(g)` from the prior's mode with the
        Beta prior of :func:`floor_prior_of` over :math:`c` itself (module docstring)."""
        return (*super().fit_parameters(options),
                Parameter("guessing", "logit_floor", SIGMOID,
                          float(options["prior_guessing_mean"]),
                          Prior("beta", floor_prior_of(options), "value")))

    def log_prob(self, ops: Ops, logits: Any, y: Any, at: Mapping[str, Any]) -> Any:
        r"""With :math:`p = c + (1 - c)\sigma(x)`, in log space:
        :math:`\log p = \operatorname{logaddexp}(\log c, \log(1 - c) + \log\sigma(x))`,
        :math:`\log(1 - p) = \log(1 - c) + \log\sigma(-x)`."""
        c = at["guessing"]
        log_not_floor = ops.log1p(-c)
        log_p = ops.logaddexp(ops.log(c), log_not_floor + ops.log_sigmoid(logits))
        return y * log_p + (1 - y) * (log_not_floor + ops.log_sigmoid(-logits))

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        c = np.asarray(items["guessing"])[None, :]
        return c + (1.0 - c) * super().probabilities(skill, items)

    def usable(self, items: Items) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            c = np.asarray(items["guessing"])
            return super().usable(items) & (c >= 0) & (c < 1)

    def curves(self, data: Truth) -> Curves:
        """With the floors; their prior's information joins the bound (module docstring)."""
        return Curves(data.discrimination, data.difficulty, data.guessing)

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return joint_standard_errors(responses, skill, items)
