r"""The logistic curve between asymptotes, written once: the 3PL and the 4PL are composed from
it (:mod:`irtbench.models.threepl`, :mod:`irtbench.models.fourpl`), in numpy float64,
independent of every estimator.

.. math::
    P(Y_{ij} = 1) = c_j + (u_j - c_j)\,s_{ij},\qquad s_{ij} = \sigma\big(a_j(\theta_i - b_j)\big)

with the 2PL's slope :math:`a_j` and difficulty :math:`b_j` (:class:`~irtbench.models.twopl.
Logistic`: their draws, alignment, runaway rule and bounds), a **floor** :math:`c_j`
("guessing": the chance that a student of very low skill answers right) and a **ceiling**
:math:`u_j` (the chance that a student of very high skill does: below 1 where strong students
slip). A model declares which asymptotes it has (:attr:`AsymptoticLogistic.asymptotes`): the
3PL the floor (its ceiling is 1), the 4PL both; the 2PL is the curve with neither (its floor 0,
its ceiling 1). Each asymptote is described once in :data:`ASYMPTOTES`: its fitted logit, its
Beta prior's options and defaults, its bound.

**Derivatives**, once (:func:`curve`), for the bounds' item response curves, the joint SEs and
mml-em's EM (numpy arrays or torch tensors alike, written with operators only):
:math:`\partial p/\partial x = (u - c)s(1 - s)` for the logit :math:`x` (so
:math:`\partial p/\partial\theta = a\,\partial p/\partial x`, and in the slope-intercept form
:math:`x = az + d`, :math:`\partial p/\partial(a, d) = \partial p/\partial x\,(z, 1)`),
:math:`\partial p/\partial c = 1 - s`, :math:`\partial p/\partial u = s`.

**Priors on the asymptotes.** Only students far below an item's difficulty inform its floor,
and only students far above its ceiling, so their marginal likelihoods are poorly conditioned
and ML estimates wander to 0 or 1 or trade off against :math:`a` and :math:`b`. The field's
practice is a Beta prior: BILOG-MG's :math:`c_j \sim \mathrm{Beta}(w m + 1, w(1 - m) + 1)`
(mode :math:`m`, weight :math:`w`; :math:`m = 1/k` for :math:`k` options, Beta(6, 16) for four,
mode 0.25), and the ceiling's alike (R mirt's ``parprior``, theta-irt on the slip
:math:`1 - u`), by default Beta(20, 2), mode 0.95. Options ``prior_guessing_mean`` and
``prior_guessing_weight``, ``prior_ceiling_mean`` and ``prior_ceiling_weight`` (weight 0 is
plain ML); each prior is a density over the probability itself, so its mode is taken there
(:class:`~irtbench.models.fitting.Prior` with space ``"value"``). Simulation draws each
asymptote from its default Beta, after the slopes, the floor before the ceiling (so that adding
a model changes no other model's draws); under the two defaults an item has :math:`u_j \le c_j`
with probability :math:`1.7 \cdot 10^{-6}` (a falling curve, left out of the comparisons by
:meth:`AsymptoticLogistic.usable`).

**Bounds.** The marginal Fisher information of :math:`(a_j, d_j, c_j[, u_j])` under
:math:`\theta \sim N(0, 1)` by Fisher's identity, as for the 2PL
(:func:`~irtbench.models.twopl.curves_bounds` with :class:`Curves`), plus each asymptote
prior's information at the truth (:meth:`Curves.prior_information`): the data alone barely
inform the floor of an easy item (at 2000 x 20 the data-only bound of c was 0.25, above the
prior's own SD 0.09, and mml-em's RMSE 0.10 beat it 2.4x), so the bound the estimates are held
to is the Bayesian (van Trees) bound of the generating Betas, evaluated at the true parameters
rather than averaged over the priors (an approximation: ``benchmarks/threepl_accuracy.py``
measures RMSE / bound over repeated draws; for a ceiling near 1 the Beta's curvature
:math:`(\beta - 1)/(1 - u)^2` is large and the item's bound small). The asymptotes are
probabilities: the affine indeterminacy :math:`\theta \to s\theta + t` moves :math:`a` and
:math:`b` alone, so the alignment is the 2PL's and the asymptotes are compared as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from irtbench.models.base import FIXED, Items, Truth, sigmoid
from irtbench.models.fitting import SIGMOID, Ops, Parameter, Prior
from irtbench.models.twopl import Curves as TwoPLCurves
from irtbench.models.twopl import Logistic, node_logits
from irtbench.specs import Spec, fraction, positive

if TYPE_CHECKING:
    from irtbench.responses import Responses

__all__ = ["ASYMPTOTES", "Asymptote", "AsymptoticLogistic", "Curves", "beta_curvature",
           "beta_parameters", "curve", "joint_standard_errors"]


def beta_parameters(mean: float, weight: float) -> tuple[float, float]:
    r"""BILOG-MG's parameterisation of an asymptote's prior:
    :math:`\mathrm{Beta}(w m + 1, w(1 - m) + 1)`, whose mode is :math:`m`; weight 0 is the
    uniform Beta(1, 1) (no prior)."""
    return weight * mean + 1.0, weight * (1.0 - mean) + 1.0


def beta_curvature(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    r""":math:`-\partial^2_x \log\mathrm{Beta}(x; \alpha, \beta) = (\alpha - 1)/x^2 +
    (\beta - 1)/(1 - x)^2`: a Beta prior's information at ``x``."""
    return (alpha - 1) / x**2 + (beta - 1) / (1 - x) ** 2


class Asymptote(NamedTuple):
    """One asymptote of the curve, described once: its item parameter's name, the logit the
    fits move, the value it takes where a model does not fit it, its Beta prior's default mode
    and weight (the simulation's too) and the options that set them, and their words."""

    name: str
    raw: str
    absent: float
    mean: float
    weight: float
    what: str
    mean_doc: str
    weight_doc: str

    @property
    def mean_option(self) -> str:
        return f"prior_{self.name}_mean"

    @property
    def weight_option(self) -> str:
        return f"prior_{self.name}_weight"

    def options(self) -> dict[str, Spec]:
        """Its prior's two options, declared once."""
        return {self.mean_option: fraction(self.mean, self.mean_doc),
                self.weight_option: positive(self.weight, self.weight_doc, zero_ok=True)}

    def prior_of(self, options: Mapping[str, Any]) -> tuple[float, float]:
        """The Beta(alpha, beta) of a fit's options."""
        return beta_parameters(float(options[self.mean_option]),
                               float(options[self.weight_option]))

    def default_prior(self) -> tuple[float, float]:
        """The Beta(alpha, beta) of the defaults (the simulation's, the bounds')."""
        return beta_parameters(self.mean, self.weight)


#: the asymptotes, floor first (the order of every model's item parameters and draws)
ASYMPTOTES: dict[str, Asymptote] = {a.name: a for a in (
    Asymptote("guessing", "logit_floor", 0.0, 0.25, 20.0, "floor",
              "3PL, 4PL: mode m of the floors' Beta prior (1/options)",
              "3PL, 4PL: weight w of the floors' Beta prior (BILOG-MG's 20; 0: none)"),
    Asymptote("ceiling", "logit_ceiling", 1.0, 0.95, 20.0, "ceiling",
              "4PL: mode m of the ceilings' Beta prior",
              "4PL: weight w of the ceilings' Beta prior (20: Beta(20, 2); 0: none)"),
)}


def curve(s: Any, floor: Any, ceiling: Any, asymptotes: tuple[str, ...]
          ) -> tuple[Any, Any, list[Any]]:
    r"""``(p, dp_dx, [dp/d asymptote, ...])`` of the curve :math:`p = c + (u - c)s` at
    :math:`s = \sigma(x)` (module docstring): :math:`\partial p/\partial x = (u - c)s(1 - s)`,
    then, for each of ``asymptotes`` in order, :math:`1 - s` (the floor) or :math:`s` (the
    ceiling). Operators only: numpy arrays or torch tensors."""
    span = ceiling - floor
    by_name = {"guessing": 1 - s, "ceiling": s}
    return floor + span * s, span * s * (1 - s), [by_name[name] for name in asymptotes]


def _present(items: Mapping[str, Any], asymptotes: tuple[str, ...], like: Any
             ) -> tuple[Any, Any]:
    """The floor and ceiling of ``items`` (each asymptote a model does not fit at its
    :attr:`Asymptote.absent` value)."""
    floor, ceiling = (np.asarray(items[name], np.float64) if name in asymptotes
                      else np.full_like(like, ASYMPTOTES[name].absent)
                      for name in ("guessing", "ceiling"))
    return floor, ceiling


class Curves(TwoPLCurves):
    """The item response curves between asymptotes, for the bounds, in
    :math:`(a, d, \\text{asymptotes})`: the floor ``guessing`` and the ceiling ``ceiling``,
    each None where the model does not fit it (the 3PL: no ceiling)."""

    def __init__(self, discrimination: np.ndarray, difficulty: np.ndarray,
                 guessing: np.ndarray | None = None, ceiling: np.ndarray | None = None) -> None:
        super().__init__(discrimination, difficulty)
        given = {"guessing": guessing, "ceiling": ceiling}
        self.asymptotes = tuple(name for name in ASYMPTOTES if given[name] is not None)
        self.c, self.u = _present({k: v for k, v in given.items() if v is not None},
                                  self.asymptotes, self.a)
        self.n_parameters = 2 + len(self.asymptotes)

    def prior_information(self) -> np.ndarray:
        r"""Each asymptote's prior information at the truth,
        :math:`(\alpha - 1)/x^2 + (\beta - 1)/(1 - x)^2` of the Beta it was drawn from (the
        default), on the asymptotes only: the van Trees bound (module docstring)."""
        information = np.zeros((len(self.a), self.n_parameters))
        values = {"guessing": self.c, "ceiling": self.u}
        for k, name in enumerate(self.asymptotes, start=2):
            information[:, k] = beta_curvature(values[name], *ASYMPTOTES[name].default_prior())
        return information

    def at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = sigmoid(node_logits(self.a, self.b, z))
        p, slope, rest = curve(s, self.c[:, None], self.u[:, None], self.asymptotes)
        return p, np.stack([slope * z[None, :], slope, *rest], axis=2)


def joint_standard_errors(responses: Responses, skill: np.ndarray, items: Items,
                          asymptotes: tuple[str, ...]
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Asymptotic SEs :math:`1/\sqrt{I}` of a joint (JML) estimate of the curve, each
    parameter with the others known: with :math:`v = p(1 - p)` over the observed responses
    and the derivatives of :func:`curve` (:math:`\partial p/\partial\theta =
    -\partial p/\partial b = a\,\partial p/\partial x`, :math:`\partial p/\partial a =
    (\theta - b)\,\partial p/\partial x`), each information the sum of the squared derivative
    over :math:`v`. ``inf`` for extreme students and questions. Dense responses (a block of
    rows at a time) or sparse triples."""
    from irtbench.extremes import find_extremes
    from irtbench.responses import is_sparse, observed_of, row_blocks

    a, b = (np.asarray(items[name], np.float64) for name in ("discrimination", "difficulty"))
    c, u = _present(items, asymptotes, a)
    theta = np.asarray(skill, np.float64)
    info_skill = np.zeros(len(theta))
    names = ("difficulty", "discrimination", *asymptotes)
    sums = {name: np.zeros(len(b)) for name in names}

    def terms(deviation: np.ndarray, a: np.ndarray, c: np.ndarray, u: np.ndarray,
              observed: np.ndarray) -> tuple[np.ndarray, ...]:
        """The information terms of the skill (and difficulty), the slope and each asymptote."""
        with np.errstate(invalid="ignore", over="ignore"):
            p, slope, rest = curve(sigmoid(a * deviation), c, u, asymptotes)
            keep = observed & np.isfinite(deviation)
            inverse = np.where(keep, 1.0 / np.maximum(p * (1 - p), 1e-300), 0.0)
            slope = np.where(keep, slope, 0.0)
            derivatives = (slope * a, np.where(keep, slope * deviation, 0.0),
                           *(np.where(keep, d, 0.0) for d in rest))
        return tuple(d**2 * inverse for d in derivatives)

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


class AsymptoticLogistic(Logistic):
    r""":math:`P(Y_{ij} = 1) = c_j + (u_j - c_j)\sigma(a_j(\theta_i - b_j))` with the
    asymptotes a subclass declares (:attr:`asymptotes`; module docstring): the logistic
    family's description (its alignment, runaway rule, draws of a, bounds) plus, for each
    asymptote, its draws, prior, fitted logit, range and SEs, written once over them."""

    #: the asymptotes this model fits, names of :data:`ASYMPTOTES` in their order
    asymptotes: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        """The item parameters, kinds, units, options and bound rows follow from
        :attr:`asymptotes`."""
        super().__init_subclass__(**kwargs)
        cls.item_parameters = ("difficulty", "discrimination", *cls.asymptotes)
        cls.kinds = {**Logistic.kinds, **{name: FIXED for name in cls.asymptotes}}
        cls.units = {**Logistic.units, **{name: "probability" for name in cls.asymptotes}}
        cls.options = {**Logistic.options,
                       **{k: v for name in cls.asymptotes
                          for k, v in ASYMPTOTES[name].options().items()}}
        cls.bound_order = (*Logistic.bound_order, *cls.asymptotes)

    def draw_items(self, rng: np.random.Generator, n_questions: int, **settings: float
                   ) -> dict[str, np.ndarray]:
        r"""The logistic family's :math:`a_j`, then each asymptote from its Beta: the
        defaults', or ``<asymptote>_mean`` and ``<asymptote>_weight`` (``guessing_mean``,
        ``ceiling_weight``, ...) where given: Beta(6, 16) for the floor (mean 0.27, SD 0.09),
        Beta(20, 2) for the ceiling (mean 0.91, SD 0.06)."""
        slope_settings = {k: v for k, v in settings.items()
                          if not k.startswith(tuple(ASYMPTOTES))}
        items = super().draw_items(rng, n_questions, **slope_settings)
        for name in self.asymptotes:
            asymptote = ASYMPTOTES[name]
            alpha, beta = beta_parameters(settings.get(f"{name}_mean", asymptote.mean),
                                          settings.get(f"{name}_weight", asymptote.weight))
            items[name] = rng.beta(alpha, beta, n_questions)
        return items

    # -- fitting ----------------------------------------------------------------------------
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        r"""The logistic family's, then each asymptote :math:`x = \sigma(g)` from its prior's
        mode, with its Beta prior over :math:`x` itself (module docstring)."""
        return (*super().fit_parameters(options),
                *(Parameter(name, ASYMPTOTES[name].raw, SIGMOID,
                            float(options[ASYMPTOTES[name].mean_option]),
                            Prior("beta", ASYMPTOTES[name].prior_of(options), "value"))
                  for name in self.asymptotes))

    def log_prob(self, ops: Ops, logits: Any, y: Any, at: Mapping[str, Any]) -> Any:
        r"""With :math:`p = c + (u - c)\sigma(x) = u\,\sigma(x) + c\,\sigma(-x)` and
        :math:`1 - p = (1 - u)\sigma(x) + (1 - c)\sigma(-x)`, both sums of positive terms for
        any :math:`c, u \in (0, 1)` (a start or a draw with :math:`u < c` is a decreasing
        curve, not an undefined one), in log space: :math:`\log p =
        \operatorname{logaddexp}(\log u + \log\sigma(x), \log c + \log\sigma(-x))`, likewise
        :math:`\log(1 - p)`; a ceiling of 1 (a model without one) leaves
        :math:`\log(1 - p) = \log(1 - c) + \log\sigma(-x)`."""
        c = at["guessing"]
        up, down = ops.log_sigmoid(logits), ops.log_sigmoid(-logits)
        if "ceiling" in self.asymptotes:
            u = at["ceiling"]
            log_p = ops.logaddexp(ops.log(u) + up, ops.log(c) + down)
            log_not_p = ops.logaddexp(ops.log1p(-u) + up, ops.log1p(-c) + down)
        else:
            log_p = ops.logaddexp(up, ops.log(c) + down)
            log_not_p = ops.log1p(-c) + down
        return y * log_p + (1 - y) * log_not_p

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        s = self.curve(skill, items)
        c, u = _present(items, self.asymptotes, np.asarray(items["difficulty"], np.float64))
        return curve(s, c[None, :], u[None, :], self.asymptotes)[0]

    def usable(self, items: Items) -> np.ndarray:
        """Finite estimates with :math:`0 \\le c < u \\le 1`."""
        with np.errstate(invalid="ignore"):
            c, u = _present(items, self.asymptotes, np.asarray(items["difficulty"], np.float64))
            return super().usable(items) & (c >= 0) & (c < u) & (u <= 1)

    def curves(self, data: Truth) -> Curves:
        """With the asymptotes; their priors' information joins the bound (module
        docstring)."""
        return Curves(data.discrimination, data.difficulty,
                      **{name: getattr(data, name) for name in self.asymptotes})

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return joint_standard_errors(responses, skill, items, self.asymptotes)
