r"""Bock–Aitkin EM for the 3PL and the 4PL with Beta priors on their asymptotes (``mml-em``,
``model="3pl"`` and ``model="4pl"``).

.. math::
    p_j(\theta) = c_j + (u_j - c_j)\,\sigma(a_j\theta + d_j),\qquad \theta \sim N(0, 1),
    \qquad c_j \sim \mathrm{Beta}(\alpha, \beta),\quad u_j \sim \mathrm{Beta}(\alpha_u, \beta_u)

with the ceiling :math:`u_j = 1` in the 3PL (:mod:`irtbench.models.threepl` and
:mod:`irtbench.models.fourpl` say why the asymptotes need priors and which; weight 0 is plain
marginal ML). One EM serves both: its items are a named tuple of per-item tensors, the
slope-intercept :math:`(a_j, d_j)` and then the logit of each asymptote (:class:`Items3`:
:math:`g_j`, :math:`c_j = \sigma(g_j)`; :class:`Items4`: also :math:`h_j`,
:math:`u_j = \sigma(h_j)`), each asymptote with its own Beta prior, and every step below is
written once over those :math:`K` parameters. On the fixed quadrature of the 2PL (nodes
:math:`z_q` on [-6, 6], N(0, 1) weights), each EM iteration is

* **E-step**, a block of rows at a time from the int8 codes of the kept questions on the
  device (:class:`~irtbench.kernels.device_responses.DeviceResponses`): the students'
  log-likelihoods at the nodes
  :math:`\ell_{iq} = \sum_j y_{ij}\log\frac{p_{jq}}{1 - p_{jq}} + o_{ij}\log(1 - p_{jq})`
  (two matrix products), their posteriors :math:`\pi_{iq} \propto w_q e^{\ell_{iq}}`, and the
  expected counts :math:`r_{jq} = \sum_i y_{ij}\pi_{iq}` (right) and
  :math:`n_{jq} = \sum_i o_{ij}\pi_{iq}` (seen);
* **M-step**, every item at once: Fisher scoring on
  :math:`Q_j = \sum_q r_{jq}\log p_{jq} + (n_{jq} - r_{jq})\log(1 - p_{jq}) + (\alpha - 1)\log c_j
  + (\beta - 1)\log(1 - c_j)` (and the ceiling's log prior) in :math:`(a_j, d_j, g_j[, h_j])`
  (each prior's mode is taken in its probability, as BILOG-MG does; the logits only keep the
  asymptotes in (0, 1)), with the expected information
  :math:`\sum_q n_{jq}\nabla p\nabla p^\top / (p(1 - p))` plus each prior's curvature,
  :math:`(\alpha + \beta - 2)c(1 - c)` in :math:`g`, each step halved until :math:`Q_j` does not
  decrease;

accelerated by SQUAREM (:func:`~irtbench.estimators.classical.acceleration.squarem`), until no
item's slope-intercept parameters or asymptotes move more than ``tol`` (as the 2PL's); the
slope is free in sign, as the 2PL's. The 4PL's ceiling is not tied to lie above the floor
(:math:`(a, d, c, u)` and :math:`(-a, -d, u, c)` are the same curve; the two priors, modes
0.25 and 0.95, keep the fit on the first); an estimate with :math:`u \le c` is left out of
the comparisons (:meth:`~irtbench.models.fourpl.FourPL.usable`). EAP skills and posterior SDs
come from the last E-step; item SEs from the cross-product of the students' marginal scores
(Fisher's identity) plus the priors' curvature, carried to :math:`(a, b, c[, u])` by the delta
method. Dense responses only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.estimators.classical.acceleration import ascend, finite, item_changes, squarem
from irtbench.estimators.classical.em2pl import BLOCK_ENTRIES, EMResult, Items, Priors
from irtbench.kernels.device_responses import DeviceResponses
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
    :math:`a_j\\theta + d_j`, and the floor :math:`c_j = \\sigma(g_j)` (its ceiling is 1)."""

    a: torch.Tensor
    d: torch.Tensor
    g: torch.Tensor

    #: the model's title (messages) and its asymptotes by item parameter name, in field order
    TITLE = "3PL"
    ASYMPTOTES = ("guessing",)
    WORDS = "a floor"
    ADVICE = "fit the 2PL, or the 3PL with a slope prior (torch-adam -o prior_log_a_sd=0.5)"
    #: where each asymptote starts without a prior, and the range its prior's mode is held to
    STARTS = ((0.2, 0.05, 0.5),)

    @property
    def difficulty(self) -> torch.Tensor:
        return -self.d / self.a

    @property
    def guessing(self) -> torch.Tensor:
        return self.g.sigmoid()

    @property
    def ceiling(self) -> torch.Tensor:
        return self.g.new_ones(())

    def asymptote_derivatives(self, s: torch.Tensor) -> list[torch.Tensor]:
        r""":math:`\partial p/\partial g = (1 - s)c(1 - c)`, ``(J, Q)``."""
        c = self.guessing[:, None]
        return [(1 - s) * c * (1 - c)]


class Items4(NamedTuple):
    """The 4PL's items on the device: :class:`Items3`'s and the ceiling
    :math:`u_j = \\sigma(h_j)`."""

    a: torch.Tensor
    d: torch.Tensor
    g: torch.Tensor
    h: torch.Tensor

    TITLE = "4PL"
    ASYMPTOTES = ("guessing", "ceiling")
    WORDS = "a floor and a ceiling"
    ADVICE = "fit the 3PL or the 2PL"
    STARTS = (*Items3.STARTS, (0.9, 0.5, 0.99))
    difficulty = Items3.difficulty
    guessing = Items3.guessing

    @property
    def ceiling(self) -> torch.Tensor:
        return self.h.sigmoid()

    def asymptote_derivatives(self, s: torch.Tensor) -> list[torch.Tensor]:
        r"""The floor's (:class:`Items3`) and :math:`\partial p/\partial h = s\,u(1 - u)`."""
        u = self.ceiling[:, None]
        return [*Items3.asymptote_derivatives(self, s), s * u * (1 - u)]


#: the items of either model
ItemsB = Items3 | Items4


def asymptotes(items: ItemsB) -> tuple[torch.Tensor, ...]:
    """Each asymptote's values (the floors, then the ceilings), in field order after (a, d)."""
    return tuple(logit.sigmoid() for logit in items[2:])


class Curves(NamedTuple):
    """Each item's probability at every node and its derivatives in :math:`(a, d, g[, h])`."""

    p: torch.Tensor  # (J, Q)
    dp: torch.Tensor  # (J, Q, K)


def curves(items: ItemsB, z: torch.Tensor) -> Curves:
    import torch

    s = torch.sigmoid(items.a[:, None] * z[None, :] + items.d[:, None])
    c = items.guessing[:, None]
    u = items.ceiling
    u = u[:, None] if u.dim() else u
    p = (c + (u - c) * s).clamp(EDGE, 1 - EDGE)
    slope = (u - c) * s * (1 - s)
    return Curves(p, torch.stack([slope * z[None, :], slope, *items.asymptote_derivatives(s)],
                                 dim=2))


class EStep3(NamedTuple):
    posterior: torch.Tensor  # (N, Q)
    right: torch.Tensor  # (J, Q)
    seen: torch.Tensor  # (J, Q)
    log_likelihood: float


def e_step(data: DeviceResponses, items: ItemsB, z: torch.Tensor, log_w: torch.Tensor) -> EStep3:
    """One E-step, a block of rows at a time (module docstring)."""
    p = curves(items, z).p
    log_q = (-p).log1p()  # (J, Q)
    log_odds = p.log() - log_q
    posterior = z.new_empty((data.shape[0], len(z)))
    right, seen = z.new_zeros(p.shape), z.new_zeros(p.shape)
    total = 0.0
    for block in data.blocks(z.dtype, BLOCK_ENTRIES):
        observed = block.weight
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
    """An asymptote's Beta(alpha, beta) prior (alpha = beta = 1: none), its mode taken in the
    probability :math:`x = \\sigma(g)`; its gradient and curvature in the logit :math:`g`."""

    alpha: float
    beta: float

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha - 1) * x.log() + (self.beta - 1) * (-x).log1p()

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\partial_g \\log p = (\\alpha - 1)(1 - x) - (\\beta - 1)x`."""
        return (self.alpha - 1) * (1 - x) - (self.beta - 1) * x

    def curvature(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`-\\partial^2_g \\log p = (\\alpha + \\beta - 2)x(1 - x)`."""
        return (self.alpha + self.beta - 2) * x * (1 - x)

    def start(self, default: float, low: float, high: float) -> float:
        """Where the EM starts the asymptote: the prior's mode held to ``[low, high]``, or
        ``default`` without a prior."""
        if self.alpha + self.beta <= 2:
            return default
        return min(max((self.alpha - 1) / (self.alpha + self.beta - 2), low), high)


def log_prior(items: ItemsB, priors: tuple[Prior, ...], slope: Priors = Priors()
              ) -> torch.Tensor:
    """Each item's log prior density of its asymptotes and (``slope``, the 2PL's) of its
    slope and intercept."""
    total = sum(prior.log_density(x) for prior, x in zip(priors, asymptotes(items)))
    return total + slope.item_log_density(Items(items.a, items.d))


def expected_objective(post: EStep3, items: ItemsB, z: torch.Tensor,
                       priors: tuple[Prior, ...], slope: Priors = Priors()) -> torch.Tensor:
    """:math:`Q_j` of every item (module docstring)."""
    p = curves(items, z).p
    return ((post.right * p.log() + (post.seen - post.right) * (-p).log1p()).sum(1)
            + log_prior(items, priors, slope))


def add_slope_prior(gradient: torch.Tensor, information: torch.Tensor, items: ItemsB,
                    slope: Priors) -> None:
    """Adds the 2PL's slope and intercept priors (:class:`~irtbench.estimators.classical.
    em2pl.Priors`: BILOG-MG's lognormal density of :math:`a`, a normal one of :math:`d`) to
    each item's gradient and information in :math:`(a, d)`, in place."""
    if slope == Priors():
        return
    g_a, g_d, h_aa, h_ad, h_dd = slope.curvature(Items(items.a, items.d))
    if gradient is not None:
        gradient[:, 0] += g_a
        gradient[:, 1] += g_d
    information[:, 0, 0] += h_aa
    information[:, 0, 1] += h_ad
    information[:, 1, 0] += h_ad
    information[:, 1, 1] += h_dd


def m_step(post: EStep3, items: ItemsB, z: torch.Tensor, priors: tuple[Prior, ...],
           slope: Priors = Priors()) -> ItemsB:
    """Fisher scoring on every item's :math:`Q_j`, steps halved where it would decrease."""
    import torch

    for _ in range(SCORING_STEPS):
        p, dp = curves(items, z)
        weight = 1.0 / (p * (1 - p))
        gradient = torch.einsum("jq,jqk->jk", (post.right - post.seen * p) * weight, dp)
        information = torch.einsum("jq,jqk,jql->jkl", post.seen * weight, dp, dp)
        for k, (prior, x) in enumerate(zip(priors, asymptotes(items)), start=2):
            gradient[:, k] += prior.gradient(x)
            information[:, k, k] += prior.curvature(x) + 1e-9
        add_slope_prior(gradient, information, items, slope)
        step, singular = torch.linalg.solve_ex(information, gradient)
        if bool((singular != 0).any()):
            raise ValueError(
                f"mml-em's {items.TITLE}: the information of {int((singular != 0).sum())} "
                "item(s) became singular (their estimates ran away: the data do not identify a "
                f"slope, a difficulty and {items.WORDS} for each, too few students for the "
                f"{items.TITLE}); {items.ADVICE}")
        items, _ = ascend(lambda x: expected_objective(post, x, z, priors, slope), items,
                          step.unbind(1), HALVINGS)
    return items


def change(new: ItemsB, old: ItemsB, free: torch.Tensor | None = None) -> float:
    """Largest change of an item's slope-intercept parameters (the 2PL's
    :func:`~irtbench.estimators.classical.acceleration.item_changes`) or asymptotes."""
    return max(float(item_changes(new, old).max()),
               *(float((x - y).abs().max()) for x, y in zip(asymptotes(new), asymptotes(old))))


def score_products(data: DeviceResponses, items: ItemsB, z: torch.Tensor, posterior: torch.Tensor
                   ) -> torch.Tensor:
    """The cross-product information of the students' marginal scores in
    :math:`(a, d, g[, h])`, ``(KJ, KJ)`` up to ``FULL_UP_TO`` parameters, else each item's
    ``(J, K, K)`` block."""
    import torch

    p, dp = curves(items, z)
    u = dp / (p * (1 - p))[:, :, None]  # (J, Q, K)
    n_items, k = len(items.a), len(items)
    full = k * n_items <= FULL_UP_TO
    total = z.new_zeros((k * n_items, k * n_items) if full else (n_items, k, k))
    for block in data.blocks(z.dtype, BLOCK_ENTRIES):
        post = posterior[block.rows]
        with_y = torch.einsum("iq,jqk->ijk", post, u)
        without = torch.einsum("iq,jqk->ijk", post, u * p[:, :, None])
        scores = block.y[:, :, None] * with_y - without
        if block.weight is not None:
            scores = scores * block.weight[:, :, None]
        if full:
            flat = scores.reshape(len(post), -1)
            total += flat.T @ flat
        else:
            total += torch.einsum("ijk,ijl->jkl", scores, scores)
    return total


def standard_errors(products: torch.Tensor, items: ItemsB, priors: tuple[Prior, ...],
                    slope: Priors = Priors()) -> tuple[np.ndarray, ...]:
    """SEs of :math:`(a, b, c[, u])` from the score cross-products plus the priors'
    curvature (the asymptotes', and the slope's and intercept's), by the delta method from
    :math:`(a, d, g[, h])`."""
    import torch

    n_items, k = len(items.a), len(items)
    values = asymptotes(items)
    information = products.clone()
    if products.dim() == 2:
        for place, (prior, x) in enumerate(zip(priors, values), start=2):
            index = k * torch.arange(n_items, device=products.device) + place
            information[index, index] += prior.curvature(x)
        if slope != Priors():
            blocks = torch.zeros((n_items, k, k), dtype=products.dtype, device=products.device)
            add_slope_prior(None, blocks, items, slope)
            index = k * torch.arange(n_items, device=products.device)
            for row in range(2):
                for column in range(2):
                    information[index + row, index + column] += blocks[:, row, column]
        covariance = torch.linalg.inv(information)
        blocks = torch.stack([covariance[k * j:k * j + k, k * j:k * j + k]
                              for j in range(n_items)])
    else:
        for place, (prior, x) in enumerate(zip(priors, values), start=2):
            information[:, place, place] += prior.curvature(x)
        add_slope_prior(None, information, items, slope)
        blocks = torch.linalg.inv(information)
    a, b = items.a, items.difficulty
    jacobian = torch.zeros_like(blocks)  # (a, d, g, ...) -> (a, b, c, ...)
    jacobian[:, 0, 0] = 1.0
    jacobian[:, 1, 0], jacobian[:, 1, 1] = -b / a, -1.0 / a
    for place, x in enumerate(values, start=2):
        jacobian[:, place, place] = x * (1 - x)
    moved = jacobian @ blocks @ jacobian.transpose(1, 2)
    variances = moved.diagonal(dim1=1, dim2=2).clamp(min=0.0).sqrt().cpu().numpy()
    return tuple(variances[:, i] for i in range(k))


class BoundedResult(NamedTuple):
    """:class:`~irtbench.estimators.classical.em2pl.EMResult` plus the asymptotes (the
    floors, and the 4PL's ceilings) and their SEs, by item parameter name."""

    em: EMResult
    asymptotes: dict[str, np.ndarray]
    asymptote_se: dict[str, np.ndarray]


def fit_bounded(responses: Responses, found: Extremes, device: torch.device, *, nodes: int,
                tol: float, max_iter: int, priors: tuple[Prior, ...],
                kind: type[ItemsB] = Items3, slope: Priors = Priors()) -> BoundedResult:
    """Bock–Aitkin EM for the 3PL (``kind`` :class:`Items3`, ``priors`` the floors') or the
    4PL (:class:`Items4`, the floors' and the ceilings') on the questions not in ``found``,
    with the 2PL's slope and intercept priors ``slope`` (none by default; module
    docstring)."""
    import torch

    if len(priors) != len(kind.ASYMPTOTES):
        raise ValueError(f"the {kind.TITLE} takes {len(kind.ASYMPTOTES)} asymptote prior(s)")
    keep = ~found.questions
    data = DeviceResponses.transfer(responses, int(found.item_counts[keep].sum()), device,
                                    "int8", columns=keep)
    z_host, w_host = quadrature(nodes)
    z = torch.as_tensor(z_host, device=device)
    log_w = torch.as_tensor(np.log(w_host), device=device)
    proportion = torch.as_tensor(found.item_totals[keep] / found.item_counts[keep], device=device)
    starts = [prior.start(*where) for prior, where in zip(priors, kind.STARTS)]
    floor, ceiling = (*starts, 1.0)[:2]  # the 3PL's ceiling is 1
    above = ((proportion - floor) / (ceiling - floor)).clamp(0.05, 0.95)
    items = kind(torch.ones_like(proportion), torch.log(above / (1 - above)),
                 *(torch.full_like(proportion, float(np.log(x / (1 - x)))) for x in starts))
    losses: list[float] = []

    def em_update(x: ItemsB) -> ItemsB:
        post = e_step(data, x, z, log_w)
        losses.append(-post.log_likelihood - float(log_prior(x, priors, slope).sum()))
        return m_step(post, x, z, priors, slope)

    def feasible(x: ItemsB) -> bool:  # the slope prior's density is 0 at a <= 0
        return finite(x) and (slope.log_a_sd is None or bool((x.a > 0).all()))

    items, converged, iteration = squarem(em_update, items, lambda: -losses[-1], tol=tol,
                                          max_iter=max_iter, change=change, feasible=feasible)
    post = e_step(data, items, z, log_w)
    skill = post.posterior @ z
    skill_sd = ((post.posterior @ (z * z)) - skill**2).clamp(min=0.0).sqrt()
    a_se, b_se, *rest_se = standard_errors(score_products(data, items, z, post.posterior),
                                           items, priors, slope)
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
    return BoundedResult(
        em, {name: full(x, np.nan) for name, x in zip(kind.ASYMPTOTES, asymptotes(items))},
        {name: full(se, np.nan) for name, se in zip(kind.ASYMPTOTES, rest_se)})
