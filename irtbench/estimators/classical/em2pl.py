r"""Marginal maximum likelihood of the 2PL model by Bock–Aitkin EM (``mml-em`` with
``model="2pl"``), in torch float64 on the fit's device.

The skills are integrated out under :math:`\theta \sim N(0, 1)`, which fixes the 2PL's
location and scale, on the fixed quadrature of :func:`irtbench.twopl.quadrature` (``nodes``
equally spaced on [-6, 6], mirt's rule). In the slope-intercept form
:math:`\text{logit } p_j(\theta) = a_j\theta + d_j`:

**E-step.** The log-likelihood of every student at every node,
:math:`\ell_{iq} = \sum_j y_{ij}\log p_j(z_q) + (1 - y_{ij})\log(1 - p_j(z_q))` over the
observed responses, is two matrix products (:math:`Y(\log p - \log(1-p))^\top` plus the
observed mask times :math:`\log(1-p)^\top`); the posterior node weights
:math:`\pi_{iq} \propto w_q e^{\ell_{iq}}` give the "artificial data" of Bock and Aitkin,
:math:`r_{jq} = \sum_i \pi_{iq} y_{ij}` and :math:`n_{jq} = \sum_i \pi_{iq} o_{ij}`.

**M-step.** Each item's expected complete-data log-likelihood
:math:`\sum_q r_{jq}\log p_j(z_q) + (n_{jq} - r_{jq})\log(1 - p_j(z_q))` is a logistic
regression on the nodes: Newton steps on :math:`(a_j, d_j)` (2x2, all items at once, a step
longer than 1 scaled back) until the step is below 1e-10 or after 20 steps. EM stops when the
largest change of an :math:`a_j` or :math:`b_j = -d_j/a_j` is below ``tol``.

**Outputs.** Discriminations :math:`a_j`, difficulties :math:`b_j`; skills are EAP with
posterior SDs as SEs. Item SEs from the cross-product (XPD) information
:math:`\sum_i s_i s_i^\top` of the students' marginal scores (:func:`irtbench.twopl.pattern_scores`
with missing responses left out; mirt's ``SE.type = "crossprod"``), inverted for all items at
once (or item by item when there are fewer than 5 students per parameter:
:func:`item_standard_errors`) and carried to :math:`b` by the delta method. Questions everybody got right or wrong have
no finite estimate: they are left out and get :math:`\mp\infty` difficulty and NaN
discrimination. When the students' posteriors are narrower than the node spacing allows
(median posterior SD below half the spacing: long tests), a warning says to raise ``nodes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.model import Extremes
from irtbench.responses import Responses, answers_of, observed_of
from irtbench.twopl import quadrature

if TYPE_CHECKING:
    import torch


#: students per item parameter from which the SEs use the whole cross-product information
FULL_XPD_PER_PARAMETER = 5


class Items(NamedTuple):
    """Slope-intercept item parameters on the device: ``logit p_j(theta) = a_j theta + d_j``."""

    a: torch.Tensor
    d: torch.Tensor

    @property
    def difficulty(self) -> torch.Tensor:
        return -self.d / self.a


class EStep(NamedTuple):
    """Posterior node weights ``(n, Q)``, the artificial data ``r, n`` ``(J, Q)`` (``n`` is
    ``(1, Q)`` when nothing is missing) and the marginal log-likelihood."""

    posterior: torch.Tensor
    r: torch.Tensor
    n: torch.Tensor
    log_likelihood: float


class EMResult(NamedTuple):
    """What :func:`fit_2pl` gives back, per student and per question on the host."""

    skill: np.ndarray
    skill_se: np.ndarray
    discrimination: np.ndarray
    discrimination_se: np.ndarray
    difficulty: np.ndarray
    difficulty_se: np.ndarray
    losses: np.ndarray
    n_iter: int
    converged: bool
    median_posterior_sd: float


def e_step(y: torch.Tensor, observed: torch.Tensor | None, items: Items, z: torch.Tensor,
           log_w: torch.Tensor) -> EStep:
    r"""One E-step (module docstring). With :math:`x = a z + d`,
    :math:`\log p - \log(1 - p) = x`, so the likelihood's main term is ``y @ x``."""
    import torch.nn.functional as F

    logit = items.a[:, None] * z[None, :] + items.d[:, None]  # (J, Q)
    log_q = -F.softplus(logit)  # log(1 - p)
    joint = y @ logit
    if observed is None:
        joint += log_w + log_q.sum(0)
    else:
        joint += observed @ log_q
        joint += log_w
    top = joint.max(dim=1, keepdim=True).values
    posterior = joint.sub_(top).exp_()
    total = posterior.sum(dim=1, keepdim=True)
    posterior /= total
    log_likelihood = float(top.sum() + total.log().sum())
    n = posterior.sum(0, keepdim=True) if observed is None else observed.T @ posterior
    return EStep(posterior, y.T @ posterior, n, log_likelihood)


def m_step(post: EStep, items: Items, z: torch.Tensor, *, steps: int = 20) -> Items:
    """Newton steps per item on the expected complete-data log-likelihood (module docstring)."""
    import torch

    a, d = items
    for _ in range(steps):
        p = torch.sigmoid(a[:, None] * z[None, :] + d[:, None])
        residual = post.r - post.n * p
        weight = post.n * (p - p * p)
        g_a, g_d = residual @ z, residual.sum(1)
        h_aa, h_ad, h_dd = weight @ (z * z), weight @ z, weight.sum(1)
        det = h_aa * h_dd - h_ad * h_ad
        step_a = (h_dd * g_a - h_ad * g_d) / det
        step_d = (h_aa * g_d - h_ad * g_a) / det
        longest = torch.maximum(step_a.abs(), step_d.abs()).clamp(min=1.0)
        a, d = a + step_a / longest, d + step_d / longest
        if float(torch.maximum(step_a.abs(), step_d.abs()).max()) < 1e-10:
            break
    return Items(a, d)


def student_scores(y: torch.Tensor, observed: torch.Tensor | None, items: Items,
                   z: torch.Tensor, posterior: torch.Tensor) -> torch.Tensor:
    r"""Each student's score of the marginal log-likelihood with respect to
    :math:`(a_1, d_1, \dots)`, ``(n, 2J)``: :math:`\sum_q \pi_{iq}(y_{ij} - p_j(z_q))(z_q, 1)`
    over observed responses."""
    import torch

    p = torch.sigmoid(items.a[:, None] * z[None, :] + items.d[:, None])  # (J, Q)
    expected_p = posterior @ p.T
    expected_zp = (posterior * z[None, :]) @ p.T
    mean_z = posterior @ z
    score_a, score_d = y * mean_z[:, None] - expected_zp, y - expected_p
    if observed is not None:
        score_a, score_d = score_a * observed, score_d * observed
    return torch.stack([score_a, score_d], dim=2).reshape(y.shape[0], -1)


def item_standard_errors(scores: torch.Tensor, items: Items) -> tuple[np.ndarray, np.ndarray]:
    """SEs of ``a`` and ``b = -d/a`` from the cross-product information of ``scores``: the
    whole ``(2J, 2J)`` matrix when there are at least ``FULL_XPD_PER_PARAMETER`` students per
    parameter (it is then well conditioned), else its 2x2 block of each item (with fewer
    students than parameters the whole matrix is singular; the blocks leave out the items'
    coupling through the skills, small when the test is long)."""
    import torch

    n_students, n_parameters = scores.shape
    if n_students >= FULL_XPD_PER_PARAMETER * n_parameters:
        covariance = torch.linalg.inv(scores.T @ scores).cpu().numpy()
        var_a, var_d = np.diag(covariance)[0::2], np.diag(covariance)[1::2]
        cov_ad = np.diag(covariance, 1)[0::2]
    else:
        pairs = scores.reshape(n_students, -1, 2)
        blocks = torch.linalg.inv(torch.einsum("nji,njk->jik", pairs, pairs)).cpu().numpy()
        var_a, var_d, cov_ad = blocks[:, 0, 0], blocks[:, 1, 1], blocks[:, 0, 1]
    a, d = items.a.cpu().numpy(), items.d.cpu().numpy()
    grad_a, grad_d = d / a**2, -1.0 / a
    var_b = grad_a**2 * var_a + 2 * grad_a * grad_d * cov_ad + grad_d**2 * var_d
    return np.sqrt(np.maximum(var_a, 0.0)), np.sqrt(np.maximum(var_b, 0.0))


def default_nodes(n_questions: int) -> int:
    """Nodes on [-6, 6] for a test of ``n_questions``: spacing min(0.2, 3/sqrt(J)), so that
    it stays below twice the narrowest posterior SD a 2PL test of that length gives
    (about 1.9/sqrt(J) for discriminations around 1): 61 nodes up to 225 questions, 128 at
    1000."""
    spacing = min(0.2, 3.0 / np.sqrt(n_questions))
    return int(np.ceil(12.0 / spacing)) + 1


def _change(new: Items, old: Items) -> float:
    """Largest change of a discrimination or a difficulty."""
    return max(float((new.a - old.a).abs().max()),
               float((new.difficulty - old.difficulty).abs().max()))


def squarem(update: Callable[[Items], Items], items: Items,
            log_likelihood: Callable[[], float], *, tol: float, max_iter: int
            ) -> tuple[Items, bool, int]:
    r"""EM accelerated by SQUAREM (Varadhan & Roland 2008, scheme S3): from :math:`x_0`, two EM
    updates :math:`x_1, x_2`, then the extrapolation :math:`x' = x_0 - 2\alpha r + \alpha^2 v`
    with :math:`r = x_1 - x_0`, :math:`v = x_2 - 2x_1 + x_0`,
    :math:`\alpha = \min(-\lVert r\rVert/\lVert v\rVert, -1)`, and one EM update from
    there; if the likelihood at :math:`x'` is below :math:`x_1`'s, the plain :math:`x_2` is kept.
    It has EM's fixed points and cuts the iterations several times over. ``update`` runs one
    EM iteration (E-step at its argument, whose log-likelihood ``log_likelihood()`` then
    returns, and M-step); it stops when an EM update moves no parameter more than ``tol``.
    Returns the estimate, whether it converged and the number of EM updates run."""
    import torch

    count = 0
    while count < max_iter:
        x1 = update(items)
        count += 1
        if _change(x1, items) < tol:
            return x1, True, count
        x2 = update(x1)
        count += 1
        log_likelihood_1 = log_likelihood()
        if _change(x2, x1) < tol:
            return x2, True, count
        r = torch.cat([x1.a - items.a, x1.d - items.d])
        v = torch.cat([x2.a - x1.a, x2.d - x1.d]) - r
        alpha = min(-float(r.norm() / v.norm()), -1.0)
        jump = Items(*(x0 - 2 * alpha * (p1 - x0) + alpha**2 * (p2 - 2 * p1 + x0)
                       for x0, p1, p2 in zip(items, x1, x2)))
        items = update(jump)
        count += 1
        if not (log_likelihood() >= log_likelihood_1 and bool(torch.isfinite(items.a).all())):
            items = x2
    return items, False, count


def to_device(responses: Responses, keep: np.ndarray, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, observed)`` of the kept questions as float64 on ``device`` (missing 0 in ``y``;
    ``observed`` None when nothing is missing)."""
    import torch

    block = np.asarray(responses)[:, keep]
    seen = observed_of(block)
    y = torch.as_tensor(answers_of(block, np.float64), device=device)
    observed = None if seen.all() else torch.as_tensor(seen, dtype=torch.float64, device=device)
    return y, observed


def fit_2pl(responses: Responses, found: Extremes, device: torch.device, *, nodes: int,
            tol: float, max_iter: int) -> EMResult:
    """Bock–Aitkin EM for the 2PL (module docstring) on the questions not in ``found``."""
    import torch

    keep = ~found.questions
    y, observed = to_device(responses, keep, device)
    z_host, w_host = quadrature(nodes)
    z = torch.as_tensor(z_host, device=device)
    log_w = torch.as_tensor(np.log(w_host), device=device)
    counts = y.new_tensor(found.item_counts[keep])
    totals = y.new_tensor(found.item_totals[keep])
    items = Items(torch.ones_like(totals), torch.log(totals / (counts - totals)))
    losses: list[float] = []

    def em_update(x: Items) -> Items:
        post = e_step(y, observed, x, z, log_w)
        losses.append(-post.log_likelihood)
        return m_step(post, x, z)

    items, converged, iteration = squarem(em_update, items, lambda: -losses[-1], tol=tol,
                                          max_iter=max_iter)
    post = e_step(y, observed, items, z, log_w)
    skill = post.posterior @ z
    skill_sd = ((post.posterior @ (z * z)) - skill**2).clamp(min=0.0).sqrt()
    a_se, b_se = item_standard_errors(student_scores(y, observed, items, z, post.posterior), items)
    median_sd = float(skill_sd.median())
    spacing = float(z_host[1] - z_host[0])
    if median_sd < spacing / 2:
        warnings.warn(f"mml-em 2pl: the students' posteriors (median SD {median_sd:.3f}) are "
                      f"narrow for {nodes} quadrature nodes {spacing:.2f} apart; raise nodes",
                      RuntimeWarning, stacklevel=3)
    n_questions = len(keep)
    discrimination, difficulty = np.full(n_questions, np.nan), np.empty(n_questions)
    discrimination_se, difficulty_se = np.full(n_questions, np.nan), np.full(n_questions, np.inf)
    discrimination[keep], difficulty[keep] = items.a.cpu().numpy(), items.difficulty.cpu().numpy()
    discrimination_se[keep], difficulty_se[keep] = a_se, b_se
    difficulty[found.questions] = found.difficulty_limit[found.questions]
    return EMResult(skill.cpu().numpy(), skill_sd.cpu().numpy(), discrimination,
                    discrimination_se, difficulty, difficulty_se, np.asarray(losses), iteration,
                    converged, median_sd)
