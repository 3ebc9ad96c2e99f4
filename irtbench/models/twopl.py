r"""The two-parameter logistic (2PL) model in numpy float64, independent of every estimator.

.. math::
    P(Y_{ij} = 1) = \sigma\big(a_j(\theta_i - b_j)\big)

with discrimination (slope) :math:`a_j` and difficulty :math:`b_j` of question *j*.

**The slope's sign.** The model allows any real :math:`a_j`: an item that slopes downwards
(a badly keyed one) has a finite negative ML slope,
and a flat one a slope near 0, where :math:`b_j = -d_j/a_j` passes any limit while the
slope-intercept parameters :math:`(a_j, d_j)` stay finite. ``mml-em`` (without a slope prior)
estimates the slope free in sign; ``torch-adam``, ``jax-adam`` and the NumPyro fits estimate
:math:`\log a_j` (:math:`a_j = e^{\log a_j} > 0`), so a downward item's slope goes towards 0
there; a slope prior (the lognormal) keeps :math:`a_j > 0` by its support. Runaways are judged
on :math:`(a, d)` (:func:`runaway_items`); the comparisons use every finite item, the
alignment the positive ones (:meth:`TwoPL.align`).

The likelihood is unchanged by :math:`\theta \to s\theta + t,\ b \to sb + t,\ a \to a/s`, so the
scale must be fixed from outside: by the skill distribution, :math:`\theta \sim N(0, 1)`, in
marginal maximum likelihood (and in :func:`irtbench.simulate` with ``model="2pl"``), by a
penalty in the joint fits. Estimates are compared with the truth after the best affine alignment
(:func:`affine_alignment`).

**Marginal Fisher information** (for the Cramér–Rao bound of the item parameters). With the
skills integrated out under :math:`N(0, 1)` by quadrature (:func:`quadrature`: nodes
:math:`z_q`, weights :math:`w_q`), a response pattern :math:`y` has the marginal log-likelihood
:math:`\log\sum_q w_q\prod_j p_j(z_q)^{y_j}(1 - p_j(z_q))^{1-y_j}` and, in the slope-intercept
form :math:`\text{logit } p_j(\theta) = a_j\theta + d_j`, the score (Fisher's identity)

.. math::
    s_{a_j}(y) = \sum_q \pi_q(y)\,(y_j - p_j(z_q))\,z_q,\qquad
    s_{d_j}(y) = \sum_q \pi_q(y)\,(y_j - p_j(z_q))

with :math:`\pi_q(y)` the pattern's posterior weight of node *q*. The information of one student
is :math:`I_1 = E[s s^\top]`, the expectation over patterns: exact by enumerating the
:math:`2^J` patterns for short tests, and over a fixed-seed Monte Carlo sample of simulated
patterns otherwise (:func:`marginal_information`). *N* students carry :math:`N I_1`; the bound is
the diagonal of its inverse (all items together, so the skills' uncertainty and the items'
coupling through them are accounted for), carried from :math:`(a, d)` to :math:`(a, b)`,
:math:`b = -d/a`, by the delta method, and (:func:`item_bounds`) projected as the affine
alignment projects the errors. A test checks the information against the numerical Hessian of
the expected marginal log-likelihood on a tiny case.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collections.abc import Mapping

from irtbench.extremes import Extremes, find_extremes
from irtbench.models.base import LOCATION, SLOPE, Z95, Alignment, Items, Model, Truth, sigmoid
from irtbench.models.fitting import EXP, Ops, Parameter, location_prior, normal_prior
from irtbench.responses import Responses, is_sparse, observed_of, row_blocks
from irtbench.specs import Spec, positive

__all__ = [
    "SLOPE_OPTIONS",
    "Logistic",
    "TwoPL",
    "Alignment",
    "affine_alignment",
    "default_nodes",
    "diverged",
    "flat_items",
    "item_bounds",
    "known_skill_covariance",
    "marginal_information",
    "pattern_scores",
    "quadrature",
    "runaway_items",
]

#: up to this many questions :func:`marginal_information` enumerates every response pattern
ENUMERATE_UP_TO = 12
#: up to this many questions :func:`item_bounds` inverts the marginal information of all the
#: items together; above, each item's bound with the skills known
DENSE_UP_TO = 1000


def quadrature(nodes: int = 61, limit: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Nodes :math:`z_q` equally spaced on :math:`[-6, 6]` and weights :math:`w_q \propto
    \phi(z_q)` summing to 1, so :math:`E[g(\theta)] \approx \sum_q w_q g(z_q)` for
    :math:`\theta \sim N(0, 1)`: mirt's default rule (61 nodes, spacing 0.2). For the smooth,
    peaked integrands of a likelihood it is far more accurate than Gauss–Hermite with as many
    nodes (whose nodes spread to +/-10 and sit 0.4 apart near 0), as long as a student's
    posterior SD stays above about half the spacing."""
    z = np.linspace(-limit, limit, nodes)
    w = np.exp(-0.5 * z**2)
    return z, w / w.sum()


def default_nodes(n_questions: int) -> int:
    """Nodes on [-6, 6] for a test of ``n_questions``: spacing min(0.2, 3/sqrt(J)), so that
    it stays below twice the narrowest posterior SD a 2PL test of that length gives
    (about 1.9/sqrt(J) for discriminations around 1): 61 nodes up to 225 questions, 128 at
    1000."""
    spacing = min(0.2, 3.0 / np.sqrt(n_questions))
    return int(np.ceil(12.0 / spacing)) + 1


def node_logits(discrimination: np.ndarray, difficulty: np.ndarray, z: np.ndarray) -> np.ndarray:
    r""":math:`a_j(z_q - b_j)`, shape ``(n_questions, n_nodes)``."""
    return np.asarray(discrimination)[:, None] * (z[None, :] - np.asarray(difficulty)[:, None])


class Curves:
    r"""The item response curves of a test, for the bounds: :meth:`at` gives each item's
    probability :math:`p_j(z)` at points :math:`z` and its derivatives with respect to the
    item's parameters in the slope-intercept form :math:`(a_j, d_j, \dots)`,
    :math:`d_j = -a_jb_j` (the 2PL: :math:`p = \sigma(az + d)`, :math:`\partial p/\partial
    (a, d) = p(1 - p)(z, 1)`). A model with more item parameters (the 3PL's floor) subclasses
    it, appending its own after :math:`(a, d)`."""

    n_parameters = 2

    def __init__(self, discrimination: np.ndarray, difficulty: np.ndarray) -> None:
        self.a = np.asarray(discrimination, dtype=np.float64)
        self.b = np.asarray(difficulty, dtype=np.float64)

    def at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p, dp)``: ``(J, Q)`` probabilities and ``(J, Q, K)`` derivatives."""
        p = sigmoid(node_logits(self.a, self.b, z))
        slope = p * (1.0 - p)
        return p, np.stack([slope * z[None, :], slope], axis=2)

    def prior_information(self) -> np.ndarray:
        """Information about each item's parameters from outside the data, ``(J, K)``, added to
        the data's before inverting (none for the 2PL)."""
        return np.zeros((len(self.a), self.n_parameters))

    def to_difficulty(self) -> np.ndarray:
        r"""Each item's Jacobian ``(J, K, K)`` from :math:`(a, d, \dots)` to
        :math:`(a, b, \dots)`: :math:`\partial b/\partial a = -b/a`,
        :math:`\partial b/\partial d = -1/a`, the rest the identity."""
        jacobian = np.tile(np.eye(self.n_parameters), (len(self.a), 1, 1))
        jacobian[:, 1, 0], jacobian[:, 1, 1] = -self.b / self.a, -1.0 / self.a
        return jacobian


def curve_scores(answers: np.ndarray, curves: Curves, nodes: int) -> np.ndarray:
    r"""Scores (Fisher's identity) of each complete 0/1 row's quadrature marginal
    log-likelihood with respect to every item's parameters, ``(n, J K)`` item by item:
    :math:`s_{jk}(y) = \sum_q \pi_q(y)\,\frac{y_j - p_{jq}}{p_{jq}(1 - p_{jq})}
    \frac{\partial p_{jq}}{\partial \eta_{jk}}`."""
    z, w = quadrature(nodes)
    p, dp = curves.at(z)
    y = np.asarray(answers, dtype=np.float64)
    log_joint = y @ np.log(p) + (1.0 - y) @ np.log1p(-p) + np.log(w)[None, :]  # (n, Q)
    posterior = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    u = dp / (p * (1.0 - p))[:, :, None]  # (J, Q, K)
    scores = np.empty((len(y), y.shape[1], curves.n_parameters))
    for k in range(curves.n_parameters):  # two matrix products per parameter (BLAS)
        scores[:, :, k] = y * (posterior @ u[:, :, k].T) - posterior @ (u[:, :, k] * p).T
    return scores.reshape(len(y), -1)


def pattern_scores(answers: np.ndarray, discrimination: np.ndarray, difficulty: np.ndarray,
                   nodes: int = 61) -> np.ndarray:
    r"""Scores :math:`s(y_i)` of each row's marginal log-likelihood with respect to
    :math:`(a_1, d_1, \dots, a_J, d_J)` (slope-intercept form), shape ``(n, 2J)``; complete
    0/1 rows. See the module docstring."""
    return curve_scores(answers, Curves(discrimination, difficulty), nodes)


def _all_patterns(n_questions: int) -> np.ndarray:
    codes = np.arange(2**n_questions)[:, None]
    return ((codes >> np.arange(n_questions)[None, :]) & 1).astype(np.float64)


def curves_information(curves: Curves, *, nodes: int | None = None, samples: int = 20000,
                       seed: int = 0) -> np.ndarray:
    r"""One student's marginal Fisher information about every item's parameters,
    :math:`E[s s^\top]` over response patterns under :math:`\theta \sim N(0, 1)`: exact over
    all :math:`2^J` patterns up to ``ENUMERATE_UP_TO`` questions, else the mean over
    ``samples`` patterns simulated (generator ``seed``), a block of patterns at a time.
    ``(J K, J K)``."""
    n_questions = len(curves.a)
    size = curves.n_parameters * n_questions
    nodes = nodes or default_nodes(n_questions)
    if n_questions <= ENUMERATE_UP_TO:
        patterns = _all_patterns(n_questions)
        z, w = quadrature(nodes)
        p, _ = curves.at(z)
        log_prob = patterns @ np.log(p) + (1.0 - patterns) @ np.log1p(-p) + np.log(w)
        weight = np.exp(log_prob).sum(axis=1)  # marginal probability of each pattern
        scores = curve_scores(patterns, curves, nodes)
        return (scores * weight[:, None]).T @ scores
    rng = np.random.default_rng(seed)
    skill = rng.standard_normal(samples)
    information = np.zeros((size, size))
    for rows in row_blocks((samples, size)):
        probs, _ = curves.at(skill[rows])  # (J, n)
        patterns = (rng.random(probs.T.shape) < probs.T).astype(np.float64)
        scores = curve_scores(patterns, curves, nodes)
        information += scores.T @ scores
    return information / samples


def marginal_information(discrimination: np.ndarray, difficulty: np.ndarray, *,
                         nodes: int | None = None, samples: int = 20000, seed: int = 0
                         ) -> np.ndarray:
    r"""One student's marginal Fisher information about :math:`(a_1, d_1, \dots, a_J, d_J)`
    (:func:`curves_information` of the 2PL's curves). ``(2J, 2J)``."""
    return curves_information(Curves(discrimination, difficulty), nodes=nodes, samples=samples,
                              seed=seed)


def curves_covariance(curves: Curves, n_students: int, *, nodes: int | None = None,
                      samples: int = 20000, seed: int = 0) -> np.ndarray:
    r"""The Cramér–Rao bound on the covariance of :math:`(a_1, b_1, \dots)` (item by item, each
    item's parameters together) for ``n_students`` students: :math:`(N I_1)^{-1}` from
    :func:`curves_information`, carried from :math:`d` to :math:`b = -d/a` by the delta method.

    Where :math:`I_1` is a Monte Carlo mean of :math:`n` outer products of :math:`p = JK`
    scores, its inverse is biased up by about :math:`n/(n - p - 1)` (exactly so for Gaussian
    scores: the mean of an inverse Wishart matrix), which would inflate the bound (by 5% in
    SD at 1000 2PL items and 20000 patterns, by 2.2x at 8000 items): the inverse is multiplied
    by :math:`(n - p - 1)/n`, which removes that bias to first order."""
    information = n_students * curves_information(curves, nodes=nodes, samples=samples, seed=seed)
    information[np.diag_indices_from(information)] += curves.prior_information().ravel()
    covariance = np.linalg.inv(information)
    size = len(covariance)
    if len(curves.a) > ENUMERATE_UP_TO:
        covariance *= (samples - size - 1) / samples
    k = curves.n_parameters
    jacobian = np.zeros_like(covariance)
    for j, block in enumerate(curves.to_difficulty()):
        jacobian[k * j:k * (j + 1), k * j:k * (j + 1)] = block
    return jacobian @ covariance @ jacobian.T


def item_covariance(discrimination: np.ndarray, difficulty: np.ndarray, n_students: int, *,
                    nodes: int | None = None, samples: int = 20000, seed: int = 0) -> np.ndarray:
    r"""The 2PL's :func:`curves_covariance` of :math:`(a_1, b_1, \dots, a_J, b_J)`.
    ``(2J, 2J)``."""
    return curves_covariance(Curves(discrimination, difficulty), n_students, nodes=nodes,
                             samples=samples, seed=seed)


def known_skill_curves_covariance(curves: Curves, n_students: int, *, nodes: int = 121
                                  ) -> np.ndarray:
    r"""Each item's Cramér–Rao bound with the skills *known*, ``(J, K, K)`` in
    :math:`(a_j, b_j, \dots)`: the inverse of
    :math:`N\,E_\theta[\nabla p_j \nabla p_j^\top / (p_j(1 - p_j))]` under
    :math:`\theta \sim N(0, 1)` (quadrature), carried to :math:`b`. Knowing the skills can only
    help, so this is a lower bound of the marginal one (:func:`curves_covariance`), and a close
    one when the test is long: each student's skill is then pinned down and little information
    about an item is lost to its uncertainty (``benchmarks/twopl_bounds.py`` measures how
    close)."""
    z, w = quadrature(nodes)
    p, dp = curves.at(z)
    weight = n_students * w[None, :] / (p * (1.0 - p))  # (J, Q)
    info = np.einsum("jq,jqk,jql->jkl", weight, dp, dp)
    info[:, np.arange(curves.n_parameters), np.arange(curves.n_parameters)] += (
        curves.prior_information())
    jacobian = curves.to_difficulty()
    return jacobian @ np.linalg.inv(info) @ np.swapaxes(jacobian, 1, 2)


def known_skill_covariance(discrimination: np.ndarray, difficulty: np.ndarray,
                           n_students: int, *, nodes: int = 121) -> np.ndarray:
    r"""The 2PL's :func:`known_skill_curves_covariance`, ``(J, 2, 2)`` in :math:`(a_j, b_j)`."""
    return known_skill_curves_covariance(Curves(discrimination, difficulty), n_students,
                                         nodes=nodes)


def curves_bounds(curves: Curves, n_students: int, *, aligned: np.ndarray | None = None,
                  nodes: int | None = None, samples: int = 20000, seed: int = 0,
                  known_skills: bool | None = None) -> np.ndarray:
    r"""Cramér–Rao bounds (standard deviations) of each item's parameters, ``(K, J)`` in the
    order :math:`(a, b, \dots)`: up to ``DENSE_UP_TO`` questions the marginal bound of all
    items together (:func:`curves_covariance`); above, each item's bound with the skills
    known (:func:`known_skill_curves_covariance`, a lower bound of the marginal one and close
    to it for such long tests), which costs :math:`O(J)` instead of a :math:`JK \times JK`
    inverse; ``known_skills`` True or False chooses one of the two whatever the length.

    With ``aligned`` (a mask of questions), the bounds of those questions' errors *after*
    :func:`affine_alignment` onto the truth: to first order the alignment removes the errors'
    projection on the two directions a change of scale and origin moves them along
    (:math:`\delta b_j = \delta s\, b_j + \delta t`, :math:`\delta\log a_j = -\delta s`),
    among them the common shift and stretch that the sample of skills induces, so the
    covariance of :math:`(b, \log a)` becomes :math:`(I - H)\Sigma(I - H)^\top` with
    :math:`H` that least-squares projection; parameters the alignment does not move (the
    3PL's floor) keep their bounds. NaN for questions outside the mask. These are the
    bounds aligned errors are compared with."""
    a, b, k = curves.a, curves.b, curves.n_parameters
    dense = len(a) <= DENSE_UP_TO if known_skills is None else not known_skills
    if dense:
        full = curves_covariance(curves, n_students, nodes=nodes, samples=samples, seed=seed)
        blocks = np.stack([full[k * j:k * (j + 1), k * j:k * (j + 1)] for j in range(len(a))])
    else:
        blocks = known_skill_curves_covariance(curves, n_students)
    bounds = np.sqrt(np.stack([blocks[:, i, i] for i in range(k)]))
    if aligned is None:
        return bounds
    index = np.flatnonzero(aligned)
    # the errors in (b, log a), d log a = da / a; the design of the two directions
    design = np.zeros((2 * len(index), 2))
    design[: len(index), 0], design[: len(index), 1] = b[index], 1.0
    design[len(index):, 0] = -1.0
    if dense:
        rows = np.concatenate([k * index + 1, k * index])  # b's, then a's
        scale = np.concatenate([np.ones(len(index)), 1.0 / a[index]])
        sigma = full[np.ix_(rows, rows)] * np.outer(scale, scale)
        residual = np.eye(2 * len(index)) - design @ np.linalg.pinv(design)
        diagonal = np.diag(residual @ sigma @ residual.T)
    else:
        ab = np.stack([blocks[index, 0, 0], blocks[index, 0, 1], blocks[index, 1, 1]], axis=1)
        diagonal = _projected_block_diagonal(ab, a[index], design)
    projected = np.full_like(bounds, np.nan)
    projected[2:, index] = bounds[2:, index]
    projected[1, index] = np.sqrt(np.maximum(diagonal[: len(index)], 0.0))
    projected[0, index] = np.sqrt(np.maximum(diagonal[len(index):], 0.0)) * a[index]
    return projected


def item_bounds(discrimination: np.ndarray, difficulty: np.ndarray, n_students: int, *,
                aligned: np.ndarray | None = None, nodes: int | None = None,
                samples: int = 20000, seed: int = 0, known_skills: bool | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    r"""The 2PL's :func:`curves_bounds`: ``(bound_a, bound_b)``, each ``(J,)``."""
    bound_a, bound_b = curves_bounds(Curves(discrimination, difficulty), n_students,
                                     aligned=aligned, nodes=nodes, samples=samples, seed=seed,
                                     known_skills=known_skills)
    return bound_a, bound_b


def _projected_block_diagonal(blocks: np.ndarray, a: np.ndarray, design: np.ndarray
                              ) -> np.ndarray:
    r"""The diagonal of :math:`(I - P)\Sigma(I - P)^\top`, :math:`P = X(X^\top X)^{-1}X^\top`
    (``design`` :math:`X`, ``(2K, 2)``), for a :math:`\Sigma` in :math:`(b, \log a)` whose
    only non-zero entries are each item's 2x2 block (``blocks``: var a, cov(a, b), var b in
    :math:`(a, b)`), in :math:`O(K)`:
    :math:`\operatorname{diag}\Sigma - 2\operatorname{diag}(P\Sigma) + \operatorname{diag}(P\Sigma P)`."""
    k = len(a)
    var_b, cov_ba, var_la = blocks[:, 2], blocks[:, 1] / a, blocks[:, 0] / a**2
    x_b, x_la = design[:k], design[k:]
    sigma_x = np.concatenate([var_b[:, None] * x_b + cov_ba[:, None] * x_la,
                              cov_ba[:, None] * x_b + var_la[:, None] * x_la])  # Sigma X
    gram_inverse = np.linalg.inv(design.T @ design)
    xg = design @ gram_inverse
    middle = gram_inverse @ (design.T @ sigma_x) @ gram_inverse
    diagonal_sigma = np.concatenate([var_b, var_la])
    return (diagonal_sigma - 2 * np.sum(xg * sigma_x, axis=1)
            + np.sum((design @ middle) * design, axis=1))


def information_sums(xp: Any, skill: Any, difficulty: Any, discrimination: Any,
                     observed: Any | None = None) -> tuple[Any, Any, Any]:
    r"""The joint 2PL information sums of a block of students, with :math:`w = p(1-p)` and
    :math:`d_{ij} = \theta_i - b_j` over the observed entries (``observed`` 0/1, None: all):
    per student :math:`\sum_j a_j^2 w_{ij}`; per question :math:`\sum_i w_{ij}` and
    :math:`\sum_i d_{ij}^2 w_{ij}`. Written once for every backend (``xp``: ``numpy``,
    ``torch`` or ``jax.numpy``); a non-finite deviation (an infinite skill) adds nothing."""
    deviation = skill[:, None] - difficulty[None, :]
    finite = xp.isfinite(deviation)
    deviation = xp.where(finite, deviation, 0.0 * deviation[:1, :1])
    p = 1.0 / (1.0 + xp.exp(-discrimination[None, :] * deviation))
    w = xp.where(finite, p - p * p, 0.0 * p[:1, :1])
    if observed is not None:
        w = w * observed
    return (xp.sum(w * (discrimination * discrimination)[None, :], axis=1), xp.sum(w, axis=0),
            xp.sum(w * deviation * deviation, axis=0))


def joint_standard_errors(responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
                          discrimination: np.ndarray, found: Extremes | None = None,
                          sums: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Asymptotic SEs :math:`1/\sqrt{I}` of a joint (JML) 2PL estimate, each parameter with
    the others known: with :math:`w = p(1-p)` over observed responses,
    :math:`I(\theta_i) = \sum_j a_j^2 w_{ij}`, :math:`I(b_j) = a_j^2\sum_i w_{ij}`,
    :math:`I(a_j) = \sum_i (\theta_i - b_j)^2 w_{ij}` (:func:`information_sums`). ``inf`` for
    the students and questions with all responses right or all wrong (no finite estimate).
    Dense responses, a block of rows at a time, or sparse triples; or ``sums`` already taken
    where the data are (an estimator's device). ``found``: the extremes, when known. Returns
    ``(skill_se, difficulty_se, discrimination_se)``."""
    a = np.asarray(discrimination, np.float64)
    b = np.asarray(difficulty, np.float64)
    theta = np.asarray(skill, np.float64)
    if sums is not None:
        info_skill, sum_w, sum_w_dev2 = (np.asarray(x, np.float64) for x in sums)
    elif is_sparse(responses):  # the same sums over the observed triples
        student, question = responses.student, responses.question
        deviation = theta[student] - b[question]
        with np.errstate(invalid="ignore"):
            p = sigmoid(a[question] * deviation)
            w = np.where(np.isfinite(deviation), p * (1 - p), 0.0)
        info_skill = np.bincount(student, w * a[question] ** 2, len(theta))
        sum_w = np.bincount(question, w, len(b))
        sum_w_dev2 = np.bincount(question, np.where(w > 0, w * deviation**2, 0.0), len(b))
    else:
        info_skill = np.zeros(len(theta))
        sum_w, sum_w_dev2 = np.zeros(len(b)), np.zeros(len(b))
        for rows in row_blocks(responses.shape):
            with np.errstate(invalid="ignore", over="ignore"):
                row_sum, column_w, column_w_dev2 = information_sums(
                    np, theta[rows], b, a, observed_of(responses[rows]))
            info_skill[rows] = row_sum
            sum_w += column_w
            sum_w_dev2 += column_w_dev2
    found = find_extremes(responses) if found is None else found
    with np.errstate(divide="ignore"):
        skill_se = 1.0 / np.sqrt(info_skill)
        difficulty_se = 1.0 / np.sqrt(a * a * sum_w)
        discrimination_se = 1.0 / np.sqrt(sum_w_dev2)
    skill_se[found.students] = np.inf
    difficulty_se[found.questions] = np.inf
    discrimination_se[found.questions] = np.inf
    return skill_se, difficulty_se, discrimination_se


#: the bound past which a 2PL item's slope-intercept estimate :math:`(a, d)`, or the SE of its
#: slope, says the estimate diverged (:func:`runaway_items`). On the N(0, 1) scale of the
#: skills a slope of 50 takes an item from 12% to 88% right over 0.08 SD of skill: a step no
#: sample of students resolves, so no finite optimum of the likelihood lies there, nor with an
#: intercept beyond 50 (the curve at 0 or 1 for every student within 50/|a| SD of the mean)
#: or an SE of the slope above 50 (the data cannot tell 0 from 100)
RUNAWAY_LIMIT = 50.0


def diverged(discrimination, intercept):  # noqa: ANN001, ANN201 - numpy or torch alike
    r"""Where a slope-intercept estimate :math:`(a, d)` is past :data:`RUNAWAY_LIMIT` in either
    parameter, or not finite: written with operators only, so that numpy arrays (the fits'
    results) and torch tensors (mml-em's EM while it runs) share one rule."""
    inside = (abs(discrimination) <= RUNAWAY_LIMIT) & (abs(intercept) <= RUNAWAY_LIMIT)
    return ~inside  # NaN compares False: not finite is outside


def runaway_items(discrimination: np.ndarray, difficulty: np.ndarray,
                  discrimination_se: np.ndarray | None, extreme: np.ndarray) -> np.ndarray:
    r"""The questions (outside ``extreme``, whose ML estimate is infinite anyway) whose 2PL
    estimates ran away: diverged, the likelihood still rising along them, rather than at a
    finite optimum.

    The rule is on the slope-intercept parameters :math:`(a, d = -ab)`, which the likelihood
    is smooth in, not on :math:`b = -d/a`, which passes any limit as :math:`a` crosses 0 (a
    flat or downward item, :math:`a \le 0`, is a finite optimum: the slope is free in sign in
    the model, see :class:`TwoPL`). A non-extreme item's likelihood can only keep rising
    towards infinity along a ray on which :math:`|a| \to \infty` (with :math:`a` bounded, an
    intercept :math:`|d| \to \infty` sends the curve to 0 or 1 for everybody and the
    likelihood of its mixed answers to :math:`-\infty`), and along it the information about
    the slope vanishes (the curve becomes a step: no student's answer is uncertain), so the SE
    of :math:`a` grows without bound. An item has run away when it is not finite, when
    :math:`|a|` or :math:`|d|` is past :data:`RUNAWAY_LIMIT` (:func:`diverged`; no finite
    optimum lies there), or when the SE of :math:`a` is (the estimate stopped on the way out:
    the data do not identify it). A large finite optimum (:math:`a = 8.4` at 150 x 35, SE
    about 3) and a negative one are not runaways."""
    a, b = np.asarray(discrimination, np.float64), np.asarray(difficulty, np.float64)
    with np.errstate(invalid="ignore"):
        bad = diverged(a, -a * b)
        if discrimination_se is not None:
            bad |= ~(np.asarray(discrimination_se, np.float64) <= RUNAWAY_LIMIT)
    return bad & ~np.asarray(extreme, bool)


def flat_items(difficulty: np.ndarray, difficulty_se: np.ndarray | None, skill: np.ndarray,
               excluded: np.ndarray) -> np.ndarray | None:
    r"""The questions (outside ``excluded``: the extremes and the runaways) whose difficulty
    the data do not locate: the 95% interval of the difficulty,
    :math:`\hat b_j \pm 1.96\,\widehat{SE}(\hat b_j)`, holds every student's estimated
    skill (the finite ones),

    .. math::
        \hat b_j - 1.96\,\widehat{SE}_j \le \min_i \hat\theta_i
        \quad\text{and}\quad \hat b_j + 1.96\,\widehat{SE}_j \ge \max_i \hat\theta_i,

    so that the data cannot say of any student whether the item is above or below them. Such
    an item is *flat*: its slope is near 0 (spisa's Q39 under the 3PL by mml-em: :math:`a =
    0.086`, :math:`b = 13.5`, SE 20.9, for skills within about :math:`\pm 2.7`), its curve
    nearly level over the students, and :math:`b = -d/a`, where it crosses 1/2, lies anywhere
    along a line on which the likelihood barely changes; the delta method's SE of
    :math:`b`, :math:`\sqrt{\operatorname{Var} d + b^2 \operatorname{Var} a +
    2b \operatorname{Cov}(a, d)}/|a|`, grows as :math:`1/|a|`.

    **Not a runaway** (:func:`runaway_items`, unchanged): a runaway diverged, its slope going
    to infinity with the likelihood still rising and the SE of the slope without bound, so the
    fit is not converged. A flat item is a finite optimum: its slope and intercept
    :math:`(a, d)` are finite, their SEs small, more iterations do not move them; it is only its
    difficulty, a ratio with a denominator near 0, that means nothing. The fit stays
    ``converged``; the item is flagged so that its difficulty is not read as a location (read
    its slope and intercept, or leave it out).

    **Why this rule.** The other natural rule, a slope not distinguishable from 0,
    :math:`|\hat a| < 1.96\,\widehat{SE}(\hat a)` (exactly when Fieller's 95% confidence
    set of :math:`b = -d/a` is unbounded), trusts a normal sampling distribution of the slope,
    which the 3PL's steep items do not have: spisa's Q20 (:math:`a = 3.06`, SE 1.7) fails it
    while its difficulty is :math:`1.84 \pm 0.20`. The rule here asks the user's question
    (does the data place the item among the students at all?) of the difficulty itself.

    Args:
        difficulty, difficulty_se: the fit's :math:`\hat b` and their SEs.
        skill: the fit's skills (``inf`` for the students with no finite estimate, left out).
        excluded: the questions not to judge (extreme, or run away).

    Returns:
        The flags, or None without SEs (nothing to judge by).
    """
    if difficulty_se is None:
        return None
    skill = np.asarray(skill, np.float64)
    skill = skill[np.isfinite(skill)]
    b, se = np.asarray(difficulty, np.float64), np.asarray(difficulty_se, np.float64)
    if skill.size == 0:
        return np.zeros(b.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        covers = (b - Z95 * se <= skill.min()) & (b + Z95 * se >= skill.max())
    return covers & ~np.asarray(excluded, bool)


def affine_alignment(difficulty: np.ndarray, true_difficulty: np.ndarray,
                     discrimination: np.ndarray, true_discrimination: np.ndarray) -> Alignment:
    r"""The map of the estimate's scale onto the truth's that best matches the item parameters:
    :math:`(s, t)` minimising
    :math:`\sum_j (s\hat b_j + t - b_j)^2 + (\log\hat a_j - \log s - \log a_j)^2`, i.e. the
    least-squares fit of the difficulties and of the log-discriminations at once (a small
    linear least-squares problem in :math:`(s, t)` once :math:`\log s` is linearised; solved by
    a few Gauss–Newton steps from mean/sigma linking)."""
    b_hat, b = np.asarray(difficulty, np.float64), np.asarray(true_difficulty, np.float64)
    log_a_hat = np.log(np.asarray(discrimination, np.float64))
    log_a = np.log(np.asarray(true_discrimination, np.float64))
    scale = float(np.std(b) / np.std(b_hat)) if np.std(b_hat) > 0 else 1.0
    shift = float(np.mean(b) - scale * np.mean(b_hat))
    for _ in range(20):
        residual = np.concatenate([scale * b_hat + shift - b, log_a_hat - np.log(scale) - log_a])
        jacobian = np.zeros((residual.size, 2))
        jacobian[: b.size, 0], jacobian[: b.size, 1] = b_hat, 1.0
        jacobian[b.size:, 0] = -1.0 / scale
        step = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        scale, shift = max(scale + step[0], 1e-3 * scale), shift + step[1]
        if np.abs(step).max() < 1e-12:
            break
    return Alignment(float(scale), float(shift))


#: the options of the logistic family's slope and intercept (the 2PL, 3PL and 4PL read them),
#: each with its one meaning: the space a prior is a density over decides its mode
SLOPE_OPTIONS: dict[str, Spec] = {
    "prior_log_a_sd": positive(
        None, "2PL/3PL/4PL: prior SD s of log a, the normal density of log a, "
        "log a ~ N(0, s^2), its mode taken in log a (a = 1); None: none", none_ok=True),
    "prior_a_lognormal_sd": positive(
        None, "2PL/3PL/4PL: BILOG-MG's slope prior, the lognormal density of a: log a ~ "
        "N(0, s^2) with its Jacobian 1/a kept, so the mode is taken in a (at e^(-s^2)); "
        "BILOG-MG's s is 0.5; None: none", none_ok=True),
    "prior_d_sd": positive(
        None, "2PL/3PL/4PL: prior SD of the intercept d = -ab (mirt's normal prior on d); "
        "None: none", none_ok=True),
}


class Logistic(Model):
    r"""What the 2PL, 3PL and 4PL share, the logistic curve of a slope and a difficulty,
    :math:`\sigma(a_j(\theta_i - b_j))`: the kinds and units of :math:`(b, a)`, the draws of
    :math:`a`, the alignment (:func:`affine_alignment`), the runaway rule, the bounds from the
    model's item response curves (:meth:`curves`), and the fitted :math:`(b, \log a)` with
    their logits and gauge penalty. :class:`TwoPL` is this curve alone (with its fast paths);
    :class:`~irtbench.models.asymptotic.AsymptoticLogistic` puts it between asymptotes (the
    3PL and 4PL)."""

    kinds = {"skill": LOCATION, "difficulty": LOCATION, "discrimination": SLOPE}
    units = {"skill": "logits", "difficulty": "logits", "discrimination": ""}
    options = SLOPE_OPTIONS
    #: the bounds' rows (:func:`curves_bounds`) by parameter
    bound_order: tuple[str, ...] = ("discrimination", "difficulty")

    # -- fitting ----------------------------------------------------------------------------
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        r"""The difficulty from 0, and :math:`\log a` from 0 (:math:`a = e^{\log a} = 1`:
        the Adam fits' slopes are positive, module docstring) with the prior
        :math:`\log a_j \sim N(0, s^2)` over :math:`\log a`, ``s`` the option
        ``prior_log_a_sd`` (None: none)."""
        return (Parameter("difficulty", "difficulty", prior=location_prior(options)),
                Parameter("discrimination", "log_discrimination", EXP, 1.0,
                          normal_prior(options.get("prior_log_a_sd"))))

    def logits(self, ops: Ops, skill: Any, at: Mapping[str, Any], question: Any | None
               ) -> Any:
        r""":math:`a_j(\theta_i - b_j)`."""
        return (self.skill_column(skill, question) - at["difficulty"]) * at["discrimination"]

    def gauge_penalty(self, ops: Ops, skill: Any, raw: Mapping[str, Any], alpha: float) -> Any:
        r""":math:`\alpha(\bar b^2 + \overline{\log a}^{\,2})`: the notebook's term pins the
        origin, the second the scale."""
        return alpha * (ops.mean(raw["difficulty"]) ** 2
                        + ops.mean(raw["log_discrimination"]) ** 2)

    def draw_items(self, rng: np.random.Generator, n_questions: int, *,
                   discrimination_sd: float = 0.3, **settings: float) -> dict[str, np.ndarray]:
        r""":math:`a_j \sim \mathrm{LogNormal}(0, \sigma_a^2)`, ``discrimination_sd`` =
        :math:`\sigma_a` (0.3: discriminations mostly 0.55-1.8)."""
        return {"discrimination": rng.lognormal(0.0, discrimination_sd, n_questions)}

    def curve(self, skill: np.ndarray, items: Items) -> np.ndarray:
        r""":math:`\sigma(a_j(\theta_i - b_j))`, ``(n_students, n_questions)``."""
        a, b = np.asarray(items["discrimination"]), np.asarray(items["difficulty"])
        return sigmoid(a[None, :] * (np.asarray(skill, np.float64)[:, None] - b[None, :]))

    def align(self, estimate: Items, truth: Items, keep: np.ndarray) -> Alignment:
        r""":func:`affine_alignment` fitted on the ``keep`` items whose slopes are positive in
        both (the identity when there are none): the log-slopes it matches exist only there,
        and an item with :math:`a \le 0`, whose :math:`b = -d/a` passes any limit as
        :math:`a` crosses 0, would pull the difficulties' fit anywhere. The other ``keep``
        items are compared after the alignment like these (:meth:`usable`: every finite item,
        whatever the sign of its slope). (A positive but nearly flat slope's far difficulty
        still enters the fit unweighted, as before.)"""
        with np.errstate(invalid="ignore"):
            fitted = (keep & (np.asarray(estimate["discrimination"]) > 0)
                      & (np.asarray(truth["discrimination"]) > 0))
        if not fitted.any():
            return Alignment(1.0, 0.0)
        return affine_alignment(estimate["difficulty"][fitted], truth["difficulty"][fitted],
                                estimate["discrimination"][fitted],
                                truth["discrimination"][fitted])

    common_frame = ("each fit moved to a mean difficulty of 0 and a mean log discrimination "
                    "of 0 over the items both estimate with positive slopes")

    def common_frames(self, first: Items, second: Items, keep: np.ndarray,
                      first_skill: np.ndarray, second_skill: np.ndarray
                      ) -> tuple[Alignment, Alignment]:
        r"""Each fit moved by :math:`\theta \to s\theta + t` to the joint fits' own
        identification, :math:`\overline{\log a} = 0` and :math:`\bar b = 0`, over the
        ``keep`` items whose slopes are positive in both (all ``keep`` items where none is):
        :math:`s = \exp\overline{\log a}`, :math:`t = -s\bar b`. A fit that is an affine map
        of the other lands exactly on it; no least-squares fit of one onto the other is made,
        so the comparison is symmetric."""
        with np.errstate(invalid="ignore"):
            fitted = (keep & (np.asarray(first["discrimination"]) > 0)
                      & (np.asarray(second["discrimination"]) > 0))
        frames = []
        for fit in (first, second):
            slopes = np.asarray(fit["discrimination"], np.float64)[fitted]
            scale = float(np.exp(np.mean(np.log(slopes)))) if fitted.any() else 1.0
            centre = float(np.mean(np.asarray(fit["difficulty"], np.float64)[
                fitted if fitted.any() else keep]))
            frames.append(Alignment(scale, -scale * centre))
        return frames[0], frames[1]

    def curves(self, data: Truth) -> Curves:
        """The true item response curves whose marginal information gives the bounds."""
        return Curves(data.discrimination, data.difficulty)

    def bounds(self, data: Truth, keep: np.ndarray) -> dict[str, float]:
        """Root-mean bounds of the aligned item parameters from the marginal information at
        the truth (:func:`curves_bounds` of :meth:`curves`); the skills (EAP or JML, different
        targets) have none here."""
        rows = curves_bounds(self.curves(data), data.shape[0], aligned=keep)
        return {name: float(np.sqrt(np.mean(bound[keep] ** 2)))
                for name, bound in zip(self.bound_order, rows)}

    def runaway(self, items: Items, item_se: Mapping[str, np.ndarray | None],
                extreme: np.ndarray) -> np.ndarray:
        return runaway_items(items["discrimination"], items["difficulty"],
                             item_se.get("discrimination"), extreme)

    def flat(self, items: Items, item_se: Mapping[str, np.ndarray | None], skill: np.ndarray,
             extreme: np.ndarray) -> np.ndarray | None:
        """:func:`flat_items` outside the extremes and the runaways."""
        runaway = self.runaway(items, item_se, extreme)
        return flat_items(items["difficulty"], item_se.get("difficulty"), skill,
                          np.asarray(extreme, bool) | runaway)


class TwoPL(Logistic):
    r"""The 2PL, :math:`P(Y_{ij} = 1) = \sigma(a_j(\theta_i - b_j))`: a difficulty and a
    discrimination per question; the scale is free up to :math:`\theta \to s\theta + t`
    (:func:`affine_alignment` removes it). The logistic family's curve alone, with the fast
    paths it offers: the fused kernel and its information sums on the device."""

    name = "2pl"
    title = "2PL"
    item_parameters = ("difficulty", "discrimination")
    formula = "P = sigmoid(discrimination * (skill - difficulty))"

    fast_paths = frozenset({"fused", "logit"})
    information_sums = staticmethod(information_sums)
    sums_parameters = ("difficulty", "discrimination")

    def fit_errors(self, responses: Responses, skill: np.ndarray, items: Items, *,
                   scan: Any, found: Extremes | None, sums: tuple | None = None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:func:`joint_standard_errors`, from ``sums`` where given."""
        skill_se, difficulty_se, discrimination_se = joint_standard_errors(
            responses, skill, items["difficulty"], items["discrimination"], found, sums)
        return skill_se, {"difficulty": difficulty_se, "discrimination": discrimination_se}

    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        return self.curve(skill, items)

    def linear_logits(self, items: Items) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`a_j(\theta_i - b_j)`: slopes :math:`a_j`, intercepts :math:`-a_jb_j`."""
        a = np.asarray(items["discrimination"], np.float64)
        return a, -a * np.asarray(items["difficulty"], np.float64)

    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items,
                     found: Extremes | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        skill_se, difficulty_se, discrimination_se = joint_standard_errors(
            responses, skill, items["difficulty"], items["discrimination"], found)
        return skill_se, {"difficulty": difficulty_se, "discrimination": discrimination_se}
