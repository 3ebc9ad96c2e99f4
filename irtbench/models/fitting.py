r"""What a model gives the fits: its parameters in the unconstrained space the optimisers move
in, its priors with the space each is a density over, and the backend functions its likelihood
is written with, once for numpy, torch and JAX.

A model file (``rasch.py``, ``twopl.py`` ...) declares, in :meth:`Model.fit_parameters
<irtbench.models.base.Model.fit_parameters>`, one :class:`Parameter` per item parameter the fits
move — its unconstrained name (``log_discrimination``), the :class:`Transform` to the value
(:math:`a = e^{\log a}`), its start and its :class:`Prior` — and writes its logits
(:meth:`~irtbench.models.base.Model.logits`), the log-probability of an answer from them
(:meth:`~irtbench.models.base.Model.log_prob`) and the penalty that pins its indeterminacy
(:meth:`~irtbench.models.base.Model.gauge_penalty`) with the functions of an :class:`Ops`.
:class:`Objective` assembles them into the joint fits' mean objective; ``torch-adam``,
``jax-adam`` and the NumPyro models consume it with no branch on the model.

**Why an** :class:`Ops` **and not the array API standard** (``array_api_compat``). The standard
covers the arithmetic but not the two fused, numerically careful primitives every likelihood
here is written with, :math:`\log(1 + e^x)` and :math:`\log\sigma(x)`; composed from
``logaddexp`` they cost torch's eager autograd an extra pass and a temporary of the matrix's
size per epoch (the 2PL's generic path is the default one on a CPU). :class:`Ops` is the
backend's own module (``numpy``, ``torch``, ``jax.numpy``: the standard's names, ``exp``,
``log``, ``log1p``, ``logaddexp``, ``where``, ``sum``, ``matmul`` ... exist in all three) plus
those primitives taken from each backend's fused implementation, and one more dependency is
not needed.

**Priors and their space.** A prior is a density over one space, named by
:attr:`Prior.space`: ``"raw"`` (the unconstrained parameter: :math:`\log a \sim N(0, s^2)`) or
``"value"`` (the parameter itself: the floor :math:`c \sim \mathrm{Beta}(\alpha, \beta)`). The
two differ by a Jacobian and have different modes (the mode of a lognormal density of
:math:`a` is :math:`e^{-s^2}`, that of the normal density of :math:`\log a` is 1), so the Adam
fits' MAP term is the log-density in its stated space with no Jacobian, and the NumPyro models
sample the parameter in that space (a prior on ``"raw"`` samples the unconstrained parameter
and transforms it; a prior on ``"value"`` samples the value, and NumPyro adds the Jacobian of
its own unconstraining map, as a density demands).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from irtbench.models.base import Model

__all__ = ["EXP", "IDENTITY", "SIGMOID", "Objective", "Ops", "Parameter", "Prior",
           "Transform", "ops_for"]


class Ops:
    """The functions a likelihood is written with, for one backend: the module's own
    (``exp``, ``log``, ``log1p``, ``logaddexp``, ``where``, ``sum``, ``mean``, ``matmul`` ...,
    by attribute) and four fused primitives (``softplus``, ``log_sigmoid``, ``sigmoid``,
    ``bernoulli_log_prob``) from the backend's implementation."""

    def __init__(self, module: Any, softplus: Callable, log_sigmoid: Callable,
                 sigmoid: Callable, bernoulli_log_prob: Callable, name: str) -> None:
        self.module, self.name = module, name
        self.softplus, self.log_sigmoid, self.sigmoid = softplus, log_sigmoid, sigmoid
        #: :math:`y x - \log(1 + e^x)`, the log-probability of answer ``y`` at logit ``x``
        self.bernoulli_log_prob = bernoulli_log_prob

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def masked_sum(self, terms: Any, observed: Any | None) -> Any:
        """The sum of ``terms`` where ``observed`` (a 0/1 or boolean mask; None: all)."""
        if observed is None:
            return self.module.sum(terms)
        return self.module.sum(self.module.where(observed > 0, terms, 0.0))


def _numpy_ops() -> Ops:
    def softplus(x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, x)

    return Ops(np, softplus, lambda x: -softplus(-x), lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
               lambda x, y: y * x - softplus(x), "numpy")


def _torch_ops() -> Ops:
    import torch
    import torch.nn.functional as F

    def bernoulli_log_prob(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(x, y.to(x.dtype), reduction="none")

    return Ops(torch, F.softplus, F.logsigmoid, torch.sigmoid, bernoulli_log_prob, "torch")


def _jax_ops() -> Ops:
    import jax
    import jax.numpy as jnp

    return Ops(jnp, jax.nn.softplus, jax.nn.log_sigmoid, jax.nn.sigmoid,
               lambda x, y: y * x - jax.nn.softplus(x), "jax")


_OPS: dict[str, Ops] = {}


def ops_for(array: Any) -> Ops:
    """The :class:`Ops` of the backend ``array`` belongs to (a torch tensor, a JAX array or
    tracer, else numpy), made once per backend."""
    module = type(array).__module__.split(".")[0]
    name = {"torch": "torch", "jax": "jax", "jaxlib": "jax"}.get(module, "numpy")
    if name not in _OPS:
        _OPS[name] = {"torch": _torch_ops, "jax": _jax_ops, "numpy": _numpy_ops}[name]()
    return _OPS[name]


@dataclass(frozen=True)
class Transform:
    """A map from the unconstrained line onto a parameter's space: ``value(ops, raw)`` and its
    inverse ``raw(value)`` (numpy, for starts)."""

    name: str
    value: Callable[[Ops, Any], Any]
    raw: Callable[[np.ndarray], np.ndarray]


IDENTITY = Transform("identity", lambda ops, x: x, lambda v: np.asarray(v, np.float64))
#: a positive parameter as :math:`e^{x}` (a slope, :math:`a = e^{\log a}`)
EXP = Transform("exp", lambda ops, x: ops.exp(x), lambda v: np.log(v))
#: a probability as :math:`\sigma(x)` (a floor :math:`c = \sigma(\operatorname{logit} c)`)
SIGMOID = Transform("sigmoid", lambda ops, x: ops.sigmoid(x),
                    lambda v: np.log(v) - np.log1p(-np.asarray(v)))


@dataclass(frozen=True)
class Prior:
    r"""A prior density over one space of a parameter: ``family`` ``"normal"`` (mean, SD) or
    ``"beta"`` (:math:`\alpha`, :math:`\beta`), over ``space`` ``"raw"`` (the unconstrained
    parameter) or ``"value"`` (the module docstring says why it matters)."""

    family: str
    parameters: tuple[float, float]
    space: str

    def log_density(self, ops: Ops, x: Any) -> Any:
        """The log-density at ``x`` (in :attr:`space`) up to its constant, summed."""
        first, second = (float(p) for p in self.parameters)
        if self.family == "normal":
            return -ops.sum((x - first) ** 2) / (2.0 * second**2)
        return ops.sum((first - 1.0) * ops.log(x) + (second - 1.0) * ops.log1p(-x))

    def distribution(self) -> Any:
        """The NumPyro distribution of this prior."""
        import numpyro.distributions as dist

        first, second = (float(p) for p in self.parameters)
        return dist.Normal(first, second) if self.family == "normal" else dist.Beta(first, second)


@dataclass(frozen=True)
class Parameter:
    """One item parameter as the fits see it.

    Attributes:
        name: the parameter's name in results (``"discrimination"``).
        raw: its unconstrained name, the one the optimisers move (``"log_discrimination"``).
        transform: raw -> value.
        start: where the Adam fits start it, on the value's scale, or ``"random"``
            (:math:`N(0, 0.1^2)` draws of the raw parameter: a start of zeros is a saddle).
        prior: its :class:`Prior` (None: none; a Bayesian fit needs one on every parameter).
        per_dimension: whether it has one column per latent dimension (``(J, D)``).
    """

    name: str
    raw: str
    transform: Transform = IDENTITY
    start: float | str = 0.0
    prior: Prior | None = None
    per_dimension: bool = False

    @property
    def site(self) -> str:
        """The name NumPyro samples it under: the space its prior is a density over."""
        return self.raw if self.prior is None or self.prior.space == "raw" else self.name

    def from_site(self, ops: Ops, x: Any) -> Any:
        """Its value from a draw (or point) of its :attr:`site`: transformed where the site is
        the raw parameter, as it is where the site is the value."""
        return self.transform.value(ops, x) if self.site == self.raw else x


#: the SD of the raw draws of a ``"random"`` start
RANDOM_START_SD = 0.1


class Objective:
    r"""The joint fits' objective for one model, options and data size, written once:

    .. math::
        L = -\frac{1}{|O|}\sum_{(i,j)\in O}\log P(y_{ij}\mid\theta_i, \text{item}_j)
            + \text{gauge}(\theta, \text{items}) - \frac{1}{|O|}\sum_k \log\pi_k

    the model's :meth:`~irtbench.models.base.Model.log_prob` of its
    :meth:`~irtbench.models.base.Model.logits`, its
    :meth:`~irtbench.models.base.Model.gauge_penalty` (for the Rasch model the notebook's
    :math:`\alpha\bar b^2`), and the log-density of each prior in its own space, divided by
    the number of observed responses like the likelihood. Parameters are held by their raw
    names, ``"skill"`` among them, in any backend's arrays."""

    def __init__(self, model: Model, options: Mapping[str, Any], n_observed: int) -> None:
        self.model = model
        self.parameters = model.fit_parameters(options)
        self.dims = model.skill_dims(options)
        self.alpha = float(options.get("alpha", 0.0))
        self.n_observed = int(n_observed)
        self.seed = int(options.get("seed", 0))

    # -- parameters ---------------------------------------------------------------------------
    def start(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """The raw parameters' float32 start (``"skill"`` first): zeros, each item parameter at
        its declared start, or, where the model starts at random, seeded normal draws."""
        n_students, n_questions = shape
        rng = np.random.default_rng(self.seed)
        columns = () if self.dims is None else (self.dims,)
        start = {"skill": (rng.normal(0, 1.0, (n_students, *columns))
                           if self.model.random_skill_start else np.zeros(n_students))}
        for p in self.parameters:
            size = (n_questions, *columns) if p.per_dimension else (n_questions,)
            start[p.raw] = (rng.normal(0, RANDOM_START_SD, size) if p.start == "random"
                            else np.full(size, p.transform.raw(np.float64(p.start))))
        return {name: value.astype(np.float32) for name, value in start.items()}

    def values(self, ops: Ops, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The item parameters' values by name from the raw ones."""
        return {p.name: p.transform.value(ops, raw[p.raw]) for p in self.parameters}

    def report(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The fit's item parameters besides those the estimators return apart, as float64 host
        arrays (:meth:`~irtbench.models.base.Model.report`)."""
        values = self.values(ops_for(np.zeros(1)),
                             {name: np.asarray(v, np.float64) for name, v in raw.items()})
        return self.model.report(values)

    def snapshot(self, raw: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
        """A trace point from host raw parameters: ``(skill, difficulty, other items)``."""
        items = self.report({name: value for name, value in raw.items() if name != "skill"})
        difficulty = items.pop("difficulty")
        return np.asarray(raw["skill"], np.float64), difficulty, items

    # -- the objective -------------------------------------------------------------------------
    def log_likelihood(self, ops: Ops, skill: Any, values: Mapping[str, Any], y: Any,
                       observed: Any | None, question: Any | None = None) -> Any:
        """The summed log-likelihood of one piece of the data: a block of dense rows (``skill``
        those rows' skills, ``question`` None) or gathered pairs (``skill`` per pair,
        ``question`` their questions)."""
        at = self.model.at(values, question)
        logits = self.model.logits(ops, skill, at, question)
        return ops.masked_sum(self.model.log_prob(ops, logits, y, at), observed)

    def penalty(self, ops: Ops, raw: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
        """The gauge penalty plus each prior's negative log-density over :math:`|O|`."""
        total = self.model.gauge_penalty(ops, raw["skill"], raw, self.alpha)
        for p in self.parameters:
            if p.prior is not None:
                x = raw[p.raw] if p.prior.space == "raw" else values[p.name]
                total = total - p.prior.log_density(ops, x) / self.n_observed
        return total

    def loss(self, raw: Mapping[str, Any], y: Any, observed: Any | None,
             student: Any | None = None, question: Any | None = None) -> Any:
        """The whole mean objective over one piece holding all the data (dense ``y``, or the
        gathered answers of pairs ``student``, ``question``), for autodiff."""
        ops = ops_for(raw["skill"])
        values = self.values(ops, raw)
        skill = raw["skill"] if student is None else raw["skill"][student]
        nll = -self.log_likelihood(ops, skill, values, y, observed, question)
        return nll / self.n_observed + self.penalty(ops, raw, values)


def normal_prior(sd: Any, mean: float = 0.0) -> Prior | None:
    r""":math:`N(\\text{mean}, \\text{sd}^2)` over the raw parameter, or None where ``sd`` is."""
    return None if sd is None else Prior("normal", (mean, float(sd)), "raw")


def location_prior(options: Mapping[str, Any]) -> Prior | None:
    """The Bayesian fits' prior on a model's location parameter (the difficulty, the M2PL's
    intercept): :math:`N(0, s^2)` with ``s`` the option ``difficulty_scale``; None for the
    joint ML fits, which do not declare it."""
    return normal_prior(options.get("difficulty_scale"))
