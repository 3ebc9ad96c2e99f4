r"""How far a fit stops from the exact optimum, in log-likelihood: the column ``ll_gap`` of the
sweep, ``compare``, ``subset`` and the peer benchmarks.

The gap is always a *marginal* log-likelihood difference, the one every method of the suite can
be held to whatever it optimises: the reference is the exact marginal maximum likelihood
estimate of the model (the estimator that declares ``exact_optimum``, ``mml-em``, at a tight
tolerance; the 3PL and 4PL without priors on their asymptotes, their marginal ML estimate, or the
nested model's maximum where higher: the 3PL with every floor 0 is the 2PL, and its EM stops
short of that boundary), and the gap is that maximum minus the marginal log-likelihood at the
fit's item estimates,

.. math::
    \Delta = \max_\phi \ell(\phi) - \ell(\hat\phi), \qquad
    \ell(\phi) = \sum_i \log \int \prod_{j\ \mathrm{obs}} P_j(\theta)^{y_{ij}}
    (1 - P_j(\theta))^{1 - y_{ij}}\, dN(\theta; \mu, \sigma^2),

each integral by :func:`marginal_log_likelihood`: adaptive Gauss–Hermite quadrature on
``nodes`` nodes (21 by default) centred and scaled on each respondent's integrand (a rule fixed at
N(0, 1), 121 nodes before, was off by hundreds of units at 1000 items and more).
Where the model puts the skills at N(0, 1) (the marginal and Bayesian fits of a model with a
slope) :math:`\ell` is taken there; where the skills' scale is the fit's own (the joint fits,
whose skills have no distribution, and the Rasch model, whose unit is the logit and whose
skills' SD the reference estimates) the items are given the best normal skill distribution,
:math:`\max_{\mu, \sigma}` (Nelder–Mead). So the gap of a joint or Bayesian fit is how far its
items are from the marginal ML items, not from its own optimum (under the 2PL the joint one
does not exist), and a Bayesian fit's includes what its priors cost. The M2PL has no exact
marginal optimum here: no gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from irtbench.estimators import Fit, estimators, get_estimator
from irtbench.estimators import fit as fit_with
from irtbench.models import get_model
from irtbench.models.base import SLOPE, Model
from irtbench.responses import Responses, answers_of, is_sparse, observed_of, row_blocks, to_dense

__all__ = [
    "DEFAULT_NODES",
    "Gap",
    "best_normal",
    "gap",
    "loglik",
    "marginal_log_likelihood",
    "reference_estimator",
    "reference_maximum",
]

#: adaptive Gauss–Hermite nodes of every integral (:func:`marginal_log_likelihood`)
DEFAULT_NODES = 21
#: the points of the grid that locates each respondent's integrand
LOCATING_GRID = 401
#: the reference's tolerance (on every item parameter)
REFERENCE_TOL = 1e-8


def marginal_log_likelihood(model: Model, items: Mapping[str, np.ndarray], responses: Responses,
                            *, sigma: float = 1.0, nodes: int = DEFAULT_NODES) -> float:
    r""":math:`\sum_i \log \int \prod_{j\ \mathrm{obs}} p_j(\theta)^{y_{ij}}
    (1 - p_j(\theta))^{1 - y_{ij}}\, dN(\theta; 0, \sigma^2)`: the log-likelihood of the items
    with the skills integrated out, by **adaptive** Gauss–Hermite quadrature. Each respondent's
    integrand is located first, its log on a fine grid of :data:`LOCATING_GRID` points over
    :math:`\pm 8\sigma`: its mode :math:`\mu_i` and curvature :math:`-1/s_i^2` from the
    parabola through the grid's top three points; then
    :math:`\int f \approx \sum_q w_q e^{z_q^2/2} s_i f(\mu_i + s_i z_q)` with the
    probabilists' rule of ``nodes`` nodes, as lme4 and mirt place them. A rule fixed at
    N(0, 1) needs nodes closer than a posterior's width, which narrows as
    :math:`1/\sqrt{J}`: at 2000 x 1000 121 fixed nodes were 146 log-likelihood units from 241.
    Items with a non-finite estimate (answered all right or all wrong, whose limit contributes
    :math:`\log 1 = 0`) are left out."""
    return _integrate(_located(model, items, responses, mu=0.0, sigma=sigma, nodes=nodes),
                      0.0, sigma)


class _Located(NamedTuple):
    r"""Each respondent's quadrature nodes :math:`\theta_{iq}` and what the integrand needs
    there but the skills' density: :math:`\log P(y_i \mid \theta_{iq})` and the rule's
    log-weight :math:`\log w_q + z_q^2/2 + \log s_i`; all ``(n, Q)``."""

    theta: np.ndarray
    log_likelihood: np.ndarray
    log_weight: np.ndarray


def _located(model: Model, items: Mapping[str, np.ndarray], responses: Responses, *,
             mu: float, sigma: float, nodes: int) -> _Located:
    """The nodes of every respondent's integrand under N(mu, sigma^2) skills
    (:func:`marginal_log_likelihood`)."""
    if len(model.skill_shape(1)) > 1:
        raise ValueError(f"the marginal log-likelihood of the {model.name}'s skills in R^D is "
                         "not computed here (one skill only)")
    dense = to_dense(responses) if is_sparse(responses) else responses
    usable = np.logical_and.reduce([np.isfinite(np.asarray(items[n], np.float64))
                                    for n in model.item_parameters])
    parameters = {n: np.asarray(items[n], np.float64)[usable] for n in model.item_parameters}
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    grid = mu + sigma * np.linspace(-8.0, 8.0, LOCATING_GRID)
    log_p, log_q = _log_probabilities(model, grid, parameters)  # (G, J) each
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for rows in row_blocks((dense.shape[0], len(z) * dense.shape[1] + LOCATING_GRID)):
        block = dense[rows][:, usable]
        answered = observed_of(block)
        right = np.where(answered, answers_of(block, np.float64), 0.0) * answered
        wrong = answered - right
        located = right @ log_p.T + wrong @ log_q.T + _log_normal(grid - mu, sigma)  # (n, G)
        centre, scale = _locate(located, grid)
        theta = centre[:, None] + scale[:, None] * z  # (n, Q)
        lp, lq = _log_probabilities(model, theta.ravel(), parameters)
        lp, lq = lp.reshape(*theta.shape, -1), lq.reshape(*theta.shape, -1)
        parts.append((theta, (lp @ right[:, :, None])[..., 0] + (lq @ wrong[:, :, None])[..., 0],
                      np.log(w) + z**2 / 2 + np.log(scale)[:, None]))
    return _Located(*(np.concatenate(column) for column in zip(*parts)))


def _integrate(located: _Located, mu: float, sigma: float) -> float:
    r""":math:`\sum_i \log \sum_q` of the integrand at the located nodes under
    N(mu, sigma^2) skills: cheap for any (mu, sigma) near those the nodes were located for."""
    joint = (located.log_likelihood + _log_normal(located.theta - mu, sigma)
             + located.log_weight)
    peak = joint.max(axis=1, keepdims=True)
    return float((peak[:, 0] + np.log(np.exp(joint - peak).sum(axis=1))).sum())


def _log_probabilities(model: Model, theta: np.ndarray, parameters: Mapping[str, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\log p` and :math:`\log(1 - p)` at each skill of ``theta`` (1-D) for every
    item, ``(len(theta), J)``."""
    p = np.clip(model.probabilities(theta, parameters), 1e-300, 1 - 1e-16)
    return np.log(p), np.log1p(-p)


def _log_normal(theta: np.ndarray, sigma: float) -> np.ndarray:
    return -0.5 * (theta / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)


def _locate(log_f: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Each row's mode and scale :math:`s = (-\partial^2 \log f)^{-1/2}` from the parabola
    through its three highest grid points (the scale at most the grid's half-width, at least a
    tenth of its step, for integrands flat or peaked past what the grid resolves)."""
    step = grid[1] - grid[0]
    top = np.clip(log_f.argmax(axis=1), 1, len(grid) - 2)
    rows = np.arange(len(log_f))
    left, middle, right = (log_f[rows, top - 1], log_f[rows, top], log_f[rows, top + 1])
    curvature = (left - 2 * middle + right) / step**2
    bent = curvature < 0
    shift = np.where(bent, (left - right) / (2 * np.where(bent, left - 2 * middle + right, -1)),
                     0.0)
    centre = grid[top] + np.clip(shift, -1, 1) * step
    scale = np.where(bent, 1 / np.sqrt(np.where(bent, -curvature, 1)), grid[-1] / 4)
    return centre, np.clip(scale, step / 10, grid[-1] / 2)


class Gap(NamedTuple):
    """A fit's marginal log-likelihood, where it was taken (``"N(0,1)"`` or ``"best
    normal"`` with its ``mu`` and ``sigma``), the reference maximum, and the gap."""

    loglik: float
    reference: float
    gap: float
    at: str
    mu: float
    sigma: float


def _slope(model: Model) -> bool:
    """Whether the model has a slope, whose scale the skills' N(0, 1) fixes."""
    return SLOPE in model.kinds.values()


def loglik(model: Model, items: Mapping[str, np.ndarray], responses: Responses, *,
           mu: float = 0.0, sigma: float = 1.0, nodes: int = DEFAULT_NODES) -> float:
    r""":math:`\ell` with skills :math:`N(\mu, \sigma^2)`: the items moved onto N(0, 1) skills
    (:math:`a\sigma`, :math:`(b - \mu)/\sigma`; a model without a slope, the Rasch model, keeps
    its unit: :math:`b - \mu` under :math:`N(0, \sigma^2)`)."""
    parameters = {n: np.asarray(items[n], np.float64) for n in model.item_parameters}
    moved = {**parameters, "difficulty": parameters["difficulty"] - mu}
    if not _slope(model):
        return marginal_log_likelihood(model, moved, responses, sigma=sigma, nodes=nodes)
    moved["difficulty"] = moved["difficulty"] / sigma
    moved["discrimination"] = parameters["discrimination"] * sigma
    return marginal_log_likelihood(model, moved, responses, nodes=nodes)


def best_normal(model: Model, items: Mapping[str, np.ndarray], responses: Responses,
                start: tuple[float, float] = (0.0, 1.0), *, nodes: int = DEFAULT_NODES
                ) -> tuple[float, float, float]:
    """``(loglik, mu, sigma)`` at the normal skill distribution that fits the items best, to
    1e-5 in the log-likelihood (Nelder–Mead from ``start``: a gap is read to 1e-3). Skills
    N(mu, sigma^2) under the items are the items moved onto N(0, 1) (:func:`loglik`), so the
    search integrates the items as they are, on nodes located once per round (each
    respondent's likelihood computed there once, the density alone changing: a fraction of a
    full integral per step); two rounds, the second located at the first's optimum, and the
    value at the optimum a full integral."""
    from scipy.optimize import minimize

    mu, sigma = float(start[0]), max(float(start[1]), 1e-3)
    for _ in range(2):
        located = _located(model, items, responses, mu=mu, sigma=sigma, nodes=nodes)
        found = minimize(_negative_integral, np.array([mu, np.log(sigma)]), args=(located,),
                         method="Nelder-Mead",
                         options={"xatol": 1e-4, "fatol": 1e-5, "maxiter": 2000})
        mu, sigma = float(found.x[0]), float(np.exp(found.x[1]))
    return loglik(model, items, responses, mu=mu, sigma=sigma, nodes=nodes), mu, sigma


def _negative_integral(x: np.ndarray, located: _Located) -> float:
    """Minus :func:`_integrate` at ``mu, log sigma = x``."""
    return -_integrate(located, float(x[0]), float(np.exp(x[1])))


def at_its_skills(fit: Fit, responses: Responses, *, nodes: int = DEFAULT_NODES,
                  objective: str | None = None) -> tuple[float, str, float, float]:
    """``(loglik, at, mu, sigma)`` of a fit's items (module docstring); the best normal
    skills searched from the fit's own skills' mean and SD (its estimated ``sigma`` where it
    has one). ``objective``: the estimator's (default: the registered one's)."""
    model = get_model(fit.model)
    objective = objective or get_estimator(fit.estimator).objective
    joint = objective in ("joint", "conditional")
    if joint or not _slope(model):
        finite = fit.skill[np.isfinite(fit.skill)]
        sigma = fit.diagnostics.get("sigma")
        spread = (float(sigma) if isinstance(sigma, (int, float)) and sigma > 0
                  else float(np.std(finite)) if finite.size > 1 else 1.0)
        start = (float(np.mean(finite)) if joint and finite.size else 0.0, spread or 1.0)
        ll, mu, sigma = best_normal(model, fit.items, responses, start, nodes=nodes)
        return ll, "best normal", mu, sigma
    return loglik(model, fit.items, responses, nodes=nodes), "N(0,1)", 0.0, 1.0


def reference_estimator(model: str) -> str | None:
    """The installed estimator that declares ``exact_optimum`` and fits ``model`` (the
    marginal ML reference), or None."""
    for name in estimators(available_only=True):
        cls = get_estimator(name)
        if cls.exact_optimum and model in cls.models:
            return name
    return None


def reference_maximum(responses: Responses, model: str, *, nodes: int = DEFAULT_NODES
                      ) -> float | None:
    """The exact marginal maximum of :math:`\\ell` for ``model`` (module docstring), or None
    where no estimator computes it (the M2PL) or where it has none: when an item of the
    reference fit runs away (a slope growing without bound as the likelihood creeps up to its
    supremum, :meth:`~irtbench.models.base.Model.runaway`) the value where the fit stopped is
    no maximum, and a fit that stopped elsewhere could beat it (a negative gap)."""
    name = reference_estimator(model)
    if name is None:
        return None
    description = get_model(model)
    no_priors: dict[str, Any] = {key: 0.0 for key in description.options
                                 if key.endswith("_weight")}  # the asymptotes' Beta priors
    best = fit_with(responses, name, device="cpu", model=model, tol=REFERENCE_TOL,
                    max_iter=10000, **no_priors)
    if best.diagnostics.get("n_runaway", 0):
        return None
    value, *_ = at_its_skills(best, responses, nodes=nodes)
    for smaller in get_estimator(name).models:
        if _nests(get_model(smaller), description):
            value = max(value, reference_maximum(responses, smaller, nodes=nodes) or -np.inf)
    return value


def _nests(small: Model, large: Model) -> bool:
    """Whether ``small`` is ``large`` with some asymptotes at their bounds: the same slope
    family with fewer item parameters (the 2PL in the 3PL, the 3PL in the 4PL)."""
    return (_slope(small) and _slope(large) and small.name != large.name
            and set(small.item_parameters) < set(large.item_parameters))


def gap(fit: Fit, responses: Responses, reference: float | None = None, *,
        nodes: int = DEFAULT_NODES, objective: str | None = None) -> Gap | None:
    """The fit's :class:`Gap` to the exact marginal optimum (``reference``, the maximum of
    :func:`reference_maximum`, computed here when not given); None for a model without one.
    ``objective``: the estimator's (default: the registered one's)."""
    if reference is None:
        reference = reference_maximum(responses, fit.model, nodes=nodes)
        if reference is None:
            return None
    ll, at, mu, sigma = at_its_skills(fit, responses, nodes=nodes, objective=objective)
    return Gap(ll, reference, reference - ll, at, mu, sigma)
