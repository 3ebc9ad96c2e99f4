r"""Bock–Aitkin EM for the 3PL with a Beta prior on the floors (``mml-em``, ``model="3pl"``).

.. math::
    p_j(\theta) = c_j + (1 - c_j)\,\sigma(a_j\theta + d_j),\qquad \theta \sim N(0, 1),
    \qquad c_j \sim \mathrm{Beta}(\alpha, \beta)

(:mod:`irtbench.models.threepl` says why the floor needs a prior and which; weight 0 is plain
marginal ML). On the fixed quadrature of the 2PL (nodes :math:`z_q` on [-6, 6], N(0, 1)
weights), each EM iteration is

* **E-step**, a block of rows at a time from the int8 codes of
  :class:`~irtbench.estimators.classical.em2pl.DenseData`: the students' log-likelihoods at the
  nodes :math:`\ell_{iq} = \sum_j y_{ij}\log\frac{p_{jq}}{1 - p_{jq}} + o_{ij}\log(1 - p_{jq})`
  (two matrix products), their posteriors :math:`\pi_{iq} \propto w_q e^{\ell_{iq}}`, and the
  expected counts :math:`r_{jq} = \sum_i y_{ij}\pi_{iq}` (right) and
  :math:`n_{jq} = \sum_i o_{ij}\pi_{iq}` (seen);
* **M-step**, every item at once: Fisher scoring on
  :math:`Q_j = \sum_q r_{jq}\log p_{jq} + (n_{jq} - r_{jq})\log(1 - p_{jq}) + (\alpha - 1)\log c_j
  + (\beta - 1)\log(1 - c_j)` in :math:`(a_j, d_j, g_j)`, :math:`c_j = \sigma(g_j)` (the prior's
  mode is taken in :math:`c`, as BILOG-MG does; :math:`g` only keeps :math:`c` in (0, 1)), with
  the expected information :math:`\sum_q n_{jq}\nabla p\nabla p^\top / (p(1 - p))` plus the
  prior's curvature :math:`(\alpha + \beta - 2)c(1 - c)`, each step halved until :math:`Q_j`
  does not decrease;

accelerated by SQUAREM (:func:`~irtbench.estimators.classical.em2pl.squarem`), until no
item's slope-intercept parameters or floor moves more than ``tol`` (as the 2PL's); the slope is
free in sign, as the 2PL's. EAP skills and posterior SDs come from the last E-step; item SEs
from the cross-product of the students' marginal scores (Fisher's identity) plus the prior's
curvature, carried to :math:`(a, b, c)` by the delta method. Dense responses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.estimators.classical.em2pl import (DenseData, EMResult, ascend, item_changes,
                                                 squarem)
from irtbench.models import Extremes
from irtbench.models.twopl import quadrature

if TYPE_CHECKING:
    import torch

    from irtbench.responses import Responses

#: Fisher-scoring steps per M-step, and halvings per step
SCORING_STEPS = 3
HALVINGS = 8
#: probabilities are kept this far inside (0, 1) in the logarithms
EDGE = 1e-12
#: up to this many item parameters the SEs come from the full cross-product information
FULL_UP_TO = 3000


class Items3(NamedTuple):
    """The 3PL's items on the device: ``logit`` of the curve above its floor
    :math:`a_j\\theta + d_j`, and the floor :math:`c_j = \\sigma(g_j)`."""

    a: torch.Tensor
    d: torch.Tensor
    g: torch.Tensor

    @property
    def difficulty(self) -> torch.Tensor:
        return -self.d / self.a

    @property
    def guessing(self) -> torch.Tensor:
        return self.g.sigmoid()


class Curves(NamedTuple):
    """Each item's probability at every node and its derivatives in :math:`(a, d, g)`."""

    p: torch.Tensor  # (J, Q)
    dp: torch.Tensor  # (J, Q, 3)


def curves(items: Items3, z: torch.Tensor) -> Curves:
    import torch

    s = torch.sigmoid(items.a[:, None] * z[None, :] + items.d[:, None])
    c = items.guessing[:, None]
    p = (c + (1 - c) * s).clamp(EDGE, 1 - EDGE)
    slope = (1 - c) * s * (1 - s)
    return Curves(p, torch.stack([slope * z[None, :], slope, (1 - s) * c * (1 - c)], dim=2))


class EStep3(NamedTuple):
    posterior: torch.Tensor  # (N, Q)
    right: torch.Tensor  # (J, Q)
    seen: torch.Tensor  # (J, Q)
    log_likelihood: float


def e_step(data: DenseData, items: Items3, z: torch.Tensor, log_w: torch.Tensor) -> EStep3:
    """One E-step, a block of rows at a time (module docstring)."""
    p = curves(items, z).p
    log_q = (-p).log1p()  # (J, Q)
    log_odds = p.log() - log_q
    posterior = z.new_empty((data.shape[0], len(z)))
    right, seen = z.new_zeros(p.shape), z.new_zeros(p.shape)
    total = 0.0
    for block in data.blocks():
        observed = block.observed
        joint = block.y @ log_odds + log_w
        joint += (observed @ log_q) if observed is not None else log_q.sum(0)
        peak = joint.max(dim=1, keepdim=True).values
        weights = (joint - peak).exp()
        norm = weights.sum(dim=1, keepdim=True)
        total += float((peak + norm.log()).sum())
        post = weights / norm
        posterior[block.rows] = post
        right += block.y.T @ post
        seen += post.sum(0, keepdim=True) if observed is None else observed.T @ post
    return EStep3(posterior, right, seen, total)


class Prior(NamedTuple):
    """The floors' Beta(alpha, beta) prior (alpha = beta = 1: none)."""

    alpha: float
    beta: float

    def log_density(self, c: torch.Tensor) -> torch.Tensor:
        return (self.alpha - 1) * c.log() + (self.beta - 1) * (-c).log1p()


def expected_objective(post: EStep3, items: Items3, z: torch.Tensor, prior: Prior
                       ) -> torch.Tensor:
    """:math:`Q_j` of every item (module docstring)."""
    p = curves(items, z).p
    return ((post.right * p.log() + (post.seen - post.right) * (-p).log1p()).sum(1)
            + prior.log_density(items.guessing))


def m_step(post: EStep3, items: Items3, z: torch.Tensor, prior: Prior) -> Items3:
    """Fisher scoring on every item's :math:`Q_j`, steps halved where it would decrease."""
    import torch

    for _ in range(SCORING_STEPS):
        p, dp = curves(items, z)
        weight = 1.0 / (p * (1 - p))
        gradient = torch.einsum("jq,jqk->jk", (post.right - post.seen * p) * weight, dp)
        information = torch.einsum("jq,jqk,jql->jkl", post.seen * weight, dp, dp)
        c = items.guessing
        gradient[:, 2] += ((prior.alpha - 1) * (1 - c) - (prior.beta - 1) * c)
        information[:, 2, 2] += (prior.alpha + prior.beta - 2) * c * (1 - c) + 1e-9
        step, singular = torch.linalg.solve_ex(information, gradient)
        if bool((singular != 0).any()):
            raise ValueError(
                f"mml-em's 3PL: the information of {int((singular != 0).sum())} item(s) became "
                "singular (their estimates ran away: the data do not identify a slope, a "
                "difficulty and a floor for each, too few students for the 3PL); fit the 2PL, "
                "or the 3PL with a slope prior (torch-adam -o prior_log_a_sd=0.5)")
        items, _ = ascend(lambda x: expected_objective(post, x, z, prior), items,
                          step.unbind(1), HALVINGS)
    return items


def change(new: Items3, old: Items3, free: torch.Tensor | None = None) -> float:
    """Largest change of an item's slope-intercept parameters (the 2PL's
    :func:`~irtbench.estimators.classical.em2pl.item_changes`) or floor."""
    return max(float(item_changes(new, old).max()),
               float((new.guessing - old.guessing).abs().max()))


def score_products(data: DenseData, items: Items3, z: torch.Tensor, posterior: torch.Tensor
                   ) -> torch.Tensor:
    """The cross-product information of the students' marginal scores in :math:`(a, d, g)`,
    ``(3J, 3J)`` up to ``FULL_UP_TO`` parameters, else each item's ``(J, 3, 3)`` block."""
    import torch

    p, dp = curves(items, z)
    u = dp / (p * (1 - p))[:, :, None]  # (J, Q, 3)
    n_items = len(items.a)
    full = 3 * n_items <= FULL_UP_TO
    total = z.new_zeros((3 * n_items, 3 * n_items) if full else (n_items, 3, 3))
    for block in data.blocks():
        post = posterior[block.rows]
        with_y = torch.einsum("iq,jqk->ijk", post, u)
        without = torch.einsum("iq,jqk->ijk", post, u * p[:, :, None])
        scores = block.y[:, :, None] * with_y - without
        if block.observed is not None:
            scores = scores * block.observed[:, :, None]
        if full:
            flat = scores.reshape(len(post), -1)
            total += flat.T @ flat
        else:
            total += torch.einsum("ijk,ijl->jkl", scores, scores)
    return total


def standard_errors(products: torch.Tensor, items: Items3, prior: Prior
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SEs of :math:`(a, b, c)` from the score cross-products plus the prior's curvature, by
    the delta method from :math:`(a, d, g)`."""
    import torch

    c = items.guessing
    prior_curvature = (prior.alpha + prior.beta - 2) * c * (1 - c)
    n_items = len(items.a)
    if products.dim() == 2:
        index = 3 * torch.arange(n_items, device=products.device) + 2
        information = products.clone()
        information[index, index] += prior_curvature
        covariance = torch.linalg.inv(information)
        blocks = torch.stack([covariance[3 * j:3 * j + 3, 3 * j:3 * j + 3]
                              for j in range(n_items)])
    else:
        information = products.clone()
        information[:, 2, 2] += prior_curvature
        blocks = torch.linalg.inv(information)
    a, b = items.a, items.difficulty
    jacobian = torch.zeros_like(blocks)  # (a, d, g) -> (a, b, c)
    jacobian[:, 0, 0] = 1.0
    jacobian[:, 1, 0], jacobian[:, 1, 1] = -b / a, -1.0 / a
    jacobian[:, 2, 2] = c * (1 - c)
    moved = jacobian @ blocks @ jacobian.transpose(1, 2)
    variances = moved.diagonal(dim1=1, dim2=2).clamp(min=0.0).sqrt().cpu().numpy()
    return variances[:, 0], variances[:, 1], variances[:, 2]


class EM3Result(NamedTuple):
    """:class:`~irtbench.estimators.classical.em2pl.EMResult` plus the floors and their SEs."""

    em: EMResult
    guessing: np.ndarray
    guessing_se: np.ndarray


def fit_3pl(responses: Responses, found: Extremes, device: torch.device, *, nodes: int,
            tol: float, max_iter: int, prior: Prior) -> EM3Result:
    """Bock–Aitkin EM for the 3PL (module docstring) on the questions not in ``found``."""
    import torch

    keep = ~found.questions
    data = DenseData(responses, keep, device)
    z_host, w_host = quadrature(nodes)
    z = torch.as_tensor(z_host, device=device)
    log_w = torch.as_tensor(np.log(w_host), device=device)
    proportion = torch.as_tensor(found.item_totals[keep] / found.item_counts[keep], device=device)
    floor = (prior.alpha - 1) / max(prior.alpha + prior.beta - 2, 1e-9) if (
        prior.alpha + prior.beta > 2) else 0.2
    floor = min(max(floor, 0.05), 0.5)
    above = ((proportion - floor) / (1 - floor)).clamp(0.05, 0.95)
    items = Items3(torch.ones_like(proportion), torch.log(above / (1 - above)),
                   torch.full_like(proportion, float(np.log(floor / (1 - floor)))))
    losses: list[float] = []

    def em_update(x: Items3) -> Items3:
        post = e_step(data, x, z, log_w)
        losses.append(-post.log_likelihood - float(prior.log_density(x.guessing).sum()))
        return m_step(post, x, z, prior)

    items, converged, iteration = squarem(em_update, items, lambda: -losses[-1], tol=tol,
                                          max_iter=max_iter, change=change)
    post = e_step(data, items, z, log_w)
    skill = post.posterior @ z
    skill_sd = ((post.posterior @ (z * z)) - skill**2).clamp(min=0.0).sqrt()
    a_se, b_se, c_se = standard_errors(score_products(data, items, z, post.posterior), items,
                                       prior)
    n_questions = len(keep)

    def full(values: torch.Tensor | np.ndarray, fill: float) -> np.ndarray:
        out = np.full(n_questions, fill)
        out[keep] = values.cpu().numpy() if hasattr(values, "cpu") else values
        return out

    difficulty = full(items.difficulty, np.nan)
    difficulty[found.questions] = found.difficulty_limit[found.questions]
    em = EMResult(skill.cpu().numpy(), skill_sd.cpu().numpy(), full(items.a, np.nan),
                  full(a_se, np.nan), difficulty, full(b_se, np.inf), np.asarray(losses),
                  iteration, converged, float(skill_sd.median()))
    return EM3Result(em, full(items.guessing, np.nan), full(c_se, np.nan))
