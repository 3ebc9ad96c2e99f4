r"""Marginal maximum likelihood (or, with priors, Bayes modal estimation) of the 2PL model by
Bock–Aitkin EM (``mml-em`` with ``model="2pl"``), in torch float64 on the fit's device.

The skills are integrated out under :math:`\theta \sim N(0, 1)`, which fixes the 2PL's
location and scale, on the fixed quadrature of :func:`irtbench.models.twopl.quadrature` (``nodes``
equally spaced on [-6, 6], mirt's rule). In the slope-intercept form
:math:`x_j(\theta) = \text{logit } p_j(\theta) = a_j\theta + d_j`:

**E-step.** The log-likelihood of student *i* at node *q* is
:math:`\ell_{iq} = \sum_j o_{ij}[y_{ij}x_j(z_q) - \log(1 + e^{x_j(z_q)})]`. Its first term is
rank two, :math:`z_q (Ya)_i + (Yd)_i`: one pass over the answers, not a product with every
node; the second is the observed mask times :math:`\log(1 - p)` (with nothing missing, one
sum over the questions, the same for every student). The posterior node weights
:math:`\pi_{iq} \propto w_q e^{\ell_{iq}}` give Bock and Aitkin's artificial data, of which the
M-step needs only :math:`\sum_q r_{jq}z_q = \sum_i y_{ij}\bar z_i` (:math:`\bar z_i` the EAP:
a second pass over the answers), :math:`\sum_q r_{jq}`, the item total, and
:math:`n_{jq} = \sum_i o_{ij}\pi_{iq}` (one row shared by all questions when nothing is
missing). With missing responses the mask enters as one product each way, for a block of
students at a time on the **window** of nodes where their posteriors are not 0: a student's
:math:`\ell_{iq} + \log w_q` is concave in :math:`z_q`, so once it lies ``UNDERFLOW`` (750)
below its top at both ends of a window it is lower still beyond them, where
:math:`e^{\ell - \text{top}}` rounds to exactly 0 in float64: the nodes left out are those
the whole grid gives weight 0, and the products cost the window, not the grid (a long test
has narrow posteriors: at 300 x 28659, 610 nodes and windows of about 80). Each block's
window is where its students' weights lay in the last E-step, widened until the rule holds
(:meth:`DenseData.windows`, :func:`_widened`). Only the order of the arithmetic differs from
the whole grid's.

**M-step.** Each item's expected complete-data log-likelihood
:math:`\sum_q r_{jq}x_j(z_q) - n_{jq}\log(1 + e^{x_j(z_q)})`, plus its log prior, is maximised
by Newton steps on :math:`(a_j, d_j)` (2x2, all items at once, a step longer than 1 scaled
back, each step halved where it would lower that objective
(:func:`~irtbench.estimators.classical.acceleration.ascend`: so every M-step raises it, a
generalised EM that cannot cycle, and, the slope prior's density being 0 at :math:`a \le 0`,
the slopes stay positive under it); two steps per EM iteration. EM (SQUAREM-accelerated,
:func:`~irtbench.estimators.classical.acceleration.squarem`) stops when the largest change of
the items' slope-intercept parameters
(:func:`~irtbench.estimators.classical.acceleration.item_changes`: :math:`|\Delta a_j|` and
:math:`|\Delta d_j|/\max(1, |a_j|)`) is below
``tol``, not of :math:`b_j = -d_j/a_j`, which moves without bound as :math:`a_j` nears 0.

**The slope is free in sign** without a slope prior: an item that slopes downwards (a badly
keyed one, whose item-rest correlation is negative) has a finite negative ML slope, which the
EM reaches like any other. An item whose estimate diverges (the likelihood still rising as
:math:`|a_j| \to \infty`) is held once it passes the bound of
:func:`~irtbench.models.twopl.diverged` (:class:`Runaways`).

**Priors** (Bayes modal estimation, BILOG-MG's and mirt's remedy for items the data do not
pin down): on the slope, BILOG-MG's lognormal *density of* :math:`a_j` (mirt's ``lnorm``),

.. math::
    \log p(a_j) = -\log a_j - \frac{(\log a_j)^2}{2\sigma_a^2} + \text{const},\quad a_j > 0,

i.e. :math:`\log a_j \sim N(0, \sigma_a^2)` with the Jacobian :math:`1/a_j` of
:math:`a \mapsto \log a` kept, so that the mode is taken in :math:`a` (the prior's own mode is
:math:`e^{-\sigma_a^2}`, 0.78 for :math:`\sigma_a = 0.5`); and :math:`d_j \sim N(0, \sigma_d^2)`
on the intercept (mirt's ``norm`` prior on ``d``: a normal prior on :math:`b = -d/a` instead
lets :math:`a` grow to pull :math:`b` to 0, and is unstable without a strong slope prior); none
by default (plain marginal ML). The EM maximises the marginal log-likelihood plus these log
densities (:meth:`Priors.log_density`), the objective its ``losses`` record.

**The data** of the kept questions are held on the device by
:class:`~irtbench.kernels.device_responses.DeviceResponses`, the data layer of every torch fit:
int8 codes decoded a block of rows at a time (1 byte per response: 427 million responses in
0.43 GB), or, for :class:`~irtbench.responses.SparseResponses`, the triples as two compressed
sparse matrices (by student and by question): every pass then costs the observed responses,
never the dense matrix.

**Outputs.** Discriminations :math:`a_j`, difficulties :math:`b_j`; skills are EAP with
posterior SDs as SEs. Item SEs from the cross-product (XPD) information
:math:`\sum_i s_i s_i^\top` of the students' marginal scores (mirt's ``SE.type =
"crossprod"``), plus the priors' curvature, inverted for all items at once when there are at
least ``FULL_XPD_PER_PARAMETER`` students per parameter, else item by item (the items'
coupling through the skills left out, small when the test is long), and carried to :math:`b`
by the delta method. Questions everybody got right or wrong have no finite estimate: they are
left out and get :math:`\mp\infty` difficulty and NaN discrimination. When the students'
posteriors are narrower than the node spacing allows (median posterior SD below half the
spacing), a warning says to raise ``nodes``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.estimators.classical.acceleration import ascend, finite, squarem
from irtbench.kernels.device_responses import DeviceResponses, Piece
from irtbench.models import Extremes
from irtbench.models.twopl import default_nodes, quadrature  # noqa: F401 - default_nodes: mml-em's
from irtbench.responses import Responses, is_sparse, row_blocks

if TYPE_CHECKING:
    import torch


#: students per item parameter from which the SEs use the whole cross-product information
FULL_XPD_PER_PARAMETER = 5
#: entries of a block of rows decoded at a time (float64: 32 MB)
BLOCK_ENTRIES = 1 << 22



class Items(NamedTuple):
    """Slope-intercept item parameters on the device: ``logit p_j(theta) = a_j theta + d_j``."""

    a: torch.Tensor
    d: torch.Tensor

    @property
    def difficulty(self) -> torch.Tensor:
        return -self.d / self.a


class Priors(NamedTuple):
    r"""The SDs of the priors on the slope, the lognormal density of :math:`a`
    (:math:`\log a \sim N(0, \sigma_a^2)`, its Jacobian kept: module docstring), and on the
    intercept, :math:`d \sim N(0, \sigma_d^2)` (:math:`d = -ab`); None: no prior on that
    parameter."""

    log_a_sd: float | None = None
    d_sd: float | None = None

    def item_log_density(self, items: Items) -> torch.Tensor:
        r"""Each item's log prior (constants left out):
        :math:`-\log a_j - (\log a_j)^2/(2\sigma_a^2) - d_j^2/(2\sigma_d^2)`; NaN at
        :math:`a_j \le 0` under the slope prior (density 0)."""
        total = items.a.new_zeros(items.a.shape)
        if self.log_a_sd is not None:
            log_a = items.a.log()
            total = total - log_a - log_a**2 / (2 * self.log_a_sd**2)
        if self.d_sd is not None:
            total = total - items.d**2 / (2 * self.d_sd**2)
        return total

    def log_density(self, items: Items) -> float:
        """The log prior of all the items (constants left out)."""
        return float(self.item_log_density(items).sum())

    def curvature(self, items: Items) -> tuple[torch.Tensor, ...]:
        r"""The gradient ``(g_a, g_d)`` of the log prior,
        :math:`g_a = -(1 + \log a/\sigma_a^2)/a`, :math:`g_d = -d/\sigma_d^2`, and its
        curvature ``(h_aa, h_ad, h_dd)`` (positive), :math:`h_{dd} = 1/\sigma_d^2` and
        :math:`h_{aa} = \max(1/\sigma_a^2, (1 - \log a)/\sigma_a^2 - 1)/a^2`: the exact
        :math:`-\partial^2_a \log p(a)` below the prior's mode :math:`e^{-\sigma_a^2}`, the
        Gauss–Newton :math:`1/(\sigma_a a)^2` above it, where the exact one falls and changes
        sign (at :math:`e^{1 - \sigma_a^2}`). Below the mode the Gauss–Newton term is too
        small (by 3x at Q23's :math:`a = 0.11`), and Newton steps overshoot; where the
        gradient is 0 (the mode) is the same either way."""
        a, d = items
        zero = a.new_zeros(a.shape)
        g_a, g_d, h_aa, h_ad, h_dd = zero, zero, zero, zero, zero
        if self.log_a_sd is not None:
            variance = self.log_a_sd**2
            g_a = g_a - 1.0 / a - a.log() / (variance * a)
            h_aa = h_aa + ((1.0 - a.log()) / variance - 1.0).clamp(min=1.0 / variance) / (a * a)
        if self.d_sd is not None:
            variance = self.d_sd**2
            g_d = g_d - d / variance
            h_dd = h_dd + 1.0 / variance
        return g_a, g_d, h_aa, h_ad, h_dd


class EStep(NamedTuple):
    """Posterior node weights ``(n, Q)``; what the M-step needs of the artificial data:
    ``r1`` (``sum_q r_jq z_q``, ``(J,)``) and ``n`` (``n_jq``, nodes by items: ``(Q, J)``, or
    ``(Q, 1)`` when nothing is missing); the marginal log-likelihood."""

    posterior: torch.Tensor
    r1: torch.Tensor
    n: torch.Tensor
    log_likelihood: float
    #: the nodes the rows of ``n`` are (every other node has no mass)
    nodes: slice = slice(None)


class EMResult(NamedTuple):
    """What :func:`fit_2pl` gives back, per student and per question on the host; the
    marginal log-likelihood and the log prior (constants left out, 0 without priors) at the
    estimate (``losses`` are the objective at each iteration's start)."""

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
    log_likelihood: float = float("nan")
    log_prior: float = 0.0


class DenseData:
    """The E-step over dense responses of the kept questions: their int8 codes on the device
    (:class:`~irtbench.kernels.device_responses.DeviceResponses`), decoded to float64 a block
    of rows at a time; with missing responses, each block of students on the window of nodes
    where their posteriors are not 0 (:meth:`windows`)."""

    def __init__(self, responses: DeviceResponses) -> None:
        self.responses = responses
        self.shape = responses.shape
        self.complete = responses.complete
        #: each student's nodes of non-zero posterior weight in the last E-step, first and last
        self.support: tuple[torch.Tensor, torch.Tensor] | None = None

    def blocks(self) -> Iterator[Piece]:
        """Blocks of ``BLOCK_ENTRIES`` entries: float64 answers (missing 0) and the 0/1 mask
        of the observed ones (None when nothing is missing)."""
        import torch

        return self.responses.blocks(torch.float64, BLOCK_ENTRIES)

    def windows(self, n_nodes: int) -> list[tuple[slice | torch.Tensor, slice]]:
        """Blocks of students (a slice of rows, or their row numbers) and the nodes to compute
        their posteriors on: every node, a block of ``BLOCK_ENTRIES`` entries at a time,
        when nothing is missing (the E-step's cost is then the nodes' sums over the items,
        not the students') or before the first E-step; otherwise the students grouped by
        where their posteriors lay in the last E-step (:func:`group_windows`), each group on
        the nodes where its members' weights were not 0, ``WINDOW_MARGIN`` more on each side.
        :meth:`e_step` widens a window that proves too narrow."""
        import torch

        blocks = row_blocks(self.shape, elements=BLOCK_ENTRIES)
        if self.complete or self.support is None:
            return [(rows, slice(0, n_nodes)) for rows in blocks]
        low, high = (x.cpu().numpy() for x in self.support)
        low = np.maximum(low - WINDOW_MARGIN, 0)
        high = np.minimum(high + WINDOW_MARGIN + 1, n_nodes)
        device = self.support[0].device
        return [(torch.as_tensor(rows, device=device), nodes)
                for rows, nodes in group_windows(low, high, blocks[0].stop - blocks[0].start)]

    def e_step(self, items: Items, z: torch.Tensor, log_w: torch.Tensor) -> EStep:
        r"""One E-step (module docstring), a block of students at a time, each on its window
        of nodes (:meth:`windows`, widened by :func:`_widened` until every node left out has
        weight 0). With missing responses the term :math:`\sum_j o_{ij}\log(1 - p_j(z_q))`
        is the product of the block's mask with the window's rows of :math:`\log(1 - p)`
        (nodes by items), and the node masses :math:`n_{qj}` gain the product of the window's
        posteriors with the mask; without, both are one row shared by every student and
        item. The nodes' arrays cover only the nodes some window covers (:class:`NodeSpan`):
        every other node has no posterior weight."""
        import torch

        n_nodes = len(z)
        windows = self.windows(n_nodes)
        span = slice(min(nodes.start for _, nodes in windows),
                     max(nodes.stop for _, nodes in windows))
        per_node = NodeSpan(items, z, log_w, self.complete, span)
        ad = torch.stack([items.a, items.d], dim=1)
        posterior = z.new_zeros((self.shape[0], n_nodes))
        r1 = z.new_zeros(self.shape[1])
        low = high = None  # each student's first and last node of non-zero weight
        if not self.complete:
            low, high = (torch.empty(self.shape[0], dtype=torch.long, device=z.device)
                         for _ in range(2))
        log_likelihood = 0.0
        for rows, nodes in windows:
            block = self.responses.rows(rows, torch.float64)
            linear = block.y @ ad
            while True:
                joint = (linear[:, :1] * z[nodes] + linear[:, 1:]
                         + per_node.joint(block.weight, nodes))
                wider = _widened(joint, nodes, n_nodes)
                if wider is None:
                    break
                nodes = wider
            post, total = _normalise(joint)
            log_likelihood += total
            posterior[rows, nodes] = post
            r1 += block.y.T @ (post @ z[nodes])
            per_node.add_mass(post, block.weight, nodes)
            if block.weight is not None:
                low[rows], high[rows] = _support(post, nodes)
        self.support = None if self.complete else (low, high)
        return EStep(posterior, r1, per_node.mass, log_likelihood, per_node.span)

    def score_products(self, items: Items, z: torch.Tensor, posterior: torch.Tensor,
                       full: bool) -> torch.Tensor:
        """The cross-product information of the students' marginal scores
        (:func:`student_scores`): ``(2J, 2J)`` with ``full``, else the ``(J, 2, 2)`` blocks of
        each item."""
        p = _probabilities(items, z)
        total = None
        for block in self.blocks():
            u, v = student_scores(block.y, block.weight, p, z, posterior[block.rows])
            part = _products(u, v, full)
            total = part if total is None else total + part
        return total


class SparseData:
    """The E-step over sparse triples of the kept questions on the device
    (:class:`~irtbench.kernels.device_responses.DeviceResponses`, float64 answers), through
    their compressed sparse row matrices by student (``Y``, ``O``) and by question (``Y^T``,
    ``O^T``): every product costs the observed responses."""

    def __init__(self, responses: DeviceResponses) -> None:
        self.shape = responses.shape
        self.complete = False
        self.student, self.question, self.y = responses.student, responses.question, responses.y
        self.by_student, self.by_question = responses.compressed()

    def e_step(self, items: Items, z: torch.Tensor, log_w: torch.Tensor) -> EStep:
        import torch

        y_csr, observed_csr = self.by_student
        yt_csr, observed_t_csr = self.by_question
        log_q = _log_q(items, z)
        linear = y_csr @ torch.stack([items.a, items.d], dim=1)
        joint = linear[:, :1] * z + linear[:, 1:] + observed_csr @ log_q + log_w
        posterior, log_likelihood = _normalise(joint)
        r1 = (yt_csr @ (posterior @ z)[:, None])[:, 0]
        return EStep(posterior, r1, (observed_t_csr @ posterior).T, log_likelihood)

    def score_products(self, items: Items, z: torch.Tensor, posterior: torch.Tensor,
                       full: bool) -> torch.Tensor:
        """As :meth:`DenseData.score_products`, over the observed responses in chunks."""
        import torch

        p = _probabilities(items, z)
        n_questions = self.shape[1]
        if full:  # few questions (at least 10 students per one): per-student dense rows
            dense = torch.zeros(self.shape, dtype=torch.float64, device=z.device)
            observed = torch.zeros_like(dense)
            dense[self.student, self.question] = self.y
            observed[self.student, self.question] = 1.0
            u, v = student_scores(dense, observed, p, z, posterior)
            return _products(u, v, True)
        sums = z.new_zeros((n_questions, 3))
        step = max(1, BLOCK_ENTRIES // len(z))
        for start in range(0, len(self.y), step):
            part = slice(start, start + step)
            student, question, y = self.student[part], self.question[part], self.y[part]
            post = posterior[student]  # (chunk, Q)
            expected_p = (post * p[question]).sum(1)
            expected_zp = (post * z * p[question]).sum(1)
            u, v = y * (post @ z) - expected_zp, y - expected_p
            sums.index_add_(0, question, torch.stack([u * u, u * v, v * v], dim=1))
        return torch.stack([torch.stack([sums[:, 0], sums[:, 1]], 1),
                            torch.stack([sums[:, 1], sums[:, 2]], 1)], 1)


def _logits(items: Items, z: torch.Tensor) -> torch.Tensor:
    """:math:`a_j z_q + d_j`, ``(J, Q)``."""
    import torch

    return torch.addcmul(items.d[:, None], items.a[:, None], z[None, :])


def _log_q(items: Items, z: torch.Tensor) -> torch.Tensor:
    """:math:`\\log(1 - p_j(z_q))`, ``(J, Q)``."""
    import torch.nn.functional as F

    return -F.softplus(_logits(items, z))


def _softplus_sum(items: Items, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_j \log(1 + e^{a_j z_q + d_j})` for every node, a chunk of items at a time."""
    import torch
    import torch.nn.functional as F

    total = torch.zeros_like(z)
    for part in item_chunks(len(items.a)):
        total += F.softplus(_logits(Items(items.a[part], items.d[part]), z)).sum(0)
    return total


def _probabilities(items: Items, z: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.sigmoid(_logits(items, z))


def _normalise(joint: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Posterior weights from the log joint (in place) and the log marginal likelihood."""
    top = joint.max(dim=1, keepdim=True).values
    posterior = joint.sub_(top).exp_()
    total = posterior.sum(dim=1, keepdim=True)
    posterior /= total
    return posterior, float(top.sum() + total.log().sum())


#: a student's log joint this far below its top at a node makes that node's posterior weight
#: :math:`e^{\ell - \text{top}}` round to exactly 0 in float64 (below about -745.13)
UNDERFLOW = 750.0
#: nodes added on each side of a student's last nodes of non-zero weight for its next window
WINDOW_MARGIN = 2


def group_windows(low: np.ndarray, high: np.ndarray, max_rows: int
                  ) -> list[tuple[np.ndarray, slice]]:
    """Blocks of at most ``max_rows`` students whose windows of nodes (``low`` to ``high``,
    exclusive) are alike, each with the nodes of all of its members': the students of a width
    within one octave whose windows' centres fall in one bin of a quarter of that octave, so
    that a block's window is at most 1.25 times the octave (narrow windows give blocks of the
    students of nearby skills; wide ones, blocks of any students)."""
    octave = np.ceil(np.log2(np.maximum(high - low, 1))).astype(np.int64)
    centre = (low + high) // (2 * np.maximum(2 ** (octave - 2), 1))
    key = octave * (int(centre.max()) + 1) + centre
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.diff(key[order], prepend=-1))
    groups = []
    for start, stop in zip(starts, [*starts[1:], len(order)]):
        for part in range(start, stop, max_rows):
            rows = order[part:min(part + max_rows, stop)]
            groups.append((rows, slice(int(low[rows].min()), int(high[rows].max()))))
    return groups


class NodeSpan:
    r"""The E-step's arrays over the nodes, kept on the ``span`` of nodes its windows cover
    (grown when a widened window leaves it): the nodes' terms of the log joint (with missing
    responses :math:`\log(1 - p_j(z_q))`, nodes by items; without, :math:`\log w_q - \sum_j
    \log(1 + e^{a_jz_q + d_j})`, one row shared by every student) and the node masses
    :math:`n_{qj}` added up a block of students at a time (nodes by items, or one column)."""

    def __init__(self, items: Items, z: torch.Tensor, log_w: torch.Tensor, complete: bool,
                 span: slice) -> None:
        self.items, self.z, self.log_w, self.complete = items, z, log_w, complete
        self.span = span
        self.terms = self.compute(span)
        self.mass = z.new_zeros((span.stop - span.start, 1 if complete else len(items.a)))

    def joint(self, weight: torch.Tensor | None, nodes: slice) -> torch.Tensor:
        r"""The nodes' terms of a block of students (``weight`` its 0/1 mask of observed
        responses, None when nothing is missing) on the window ``nodes``: the shared row, or
        :math:`\log w_q` plus the mask times :math:`\log(1 - p)`, ``(rows, nodes)``."""
        import torch

        self.cover(nodes)
        terms = self.terms[self.local(nodes)]
        return terms if weight is None else torch.addmm(self.log_w[nodes], weight, terms.T)

    def add_mass(self, posterior: torch.Tensor, weight: torch.Tensor | None,
                 nodes: slice) -> None:
        """Add a block of students' ``posterior`` weights on the window ``nodes`` (after
        :meth:`joint` there) to the node masses: their sum, or the product with the mask."""
        mass = self.mass[self.local(nodes)]
        if weight is None:
            mass[:, 0] += posterior.sum(0)
        else:
            mass.addmm_(posterior.T, weight)

    def local(self, nodes: slice) -> slice:
        """``nodes`` as rows of the span's arrays."""
        return slice(nodes.start - self.span.start, nodes.stop - self.span.start)

    def cover(self, nodes: slice) -> None:
        """Grow the span to take in ``nodes``: the terms computed anew, the masses kept."""
        if nodes.start >= self.span.start and nodes.stop <= self.span.stop:
            return
        old, self.span = self.span, slice(min(nodes.start, self.span.start),
                                          max(nodes.stop, self.span.stop))
        self.terms = self.compute(self.span)
        mass = self.mass.new_zeros((self.span.stop - self.span.start, self.mass.shape[1]))
        mass[self.local(old)] = self.mass
        self.mass = mass

    def compute(self, span: slice) -> torch.Tensor:
        """The terms on the nodes ``span``."""
        import torch
        import torch.nn.functional as F

        z = self.z[span]
        if self.complete:
            return self.log_w[span] - _softplus_sum(self.items, z)
        logits = torch.addcmul(self.items.d[None, :], z[:, None], self.items.a[None, :])
        return F.softplus(logits).neg_()


def _widened(joint: torch.Tensor, nodes: slice, n_nodes: int) -> slice | None:
    r"""None when every student's log joint at the window's inner ends of the grid (those
    that are not the grid's own ends) is more than ``UNDERFLOW`` below its top in the window;
    otherwise the window widened by its width on each side where it is not.

    Enough to leave the nodes outside out: a student's log joint :math:`\ell_i(z) = \sum_j
    o_{ij}[y_{ij}(a_jz + d_j) - \log(1 + e^{a_jz + d_j})] - z^2/2 + \text{const}` is concave
    in :math:`z`, so past a node ``UNDERFLOW`` below a higher one it only falls: every node
    outside has weight :math:`e^{\ell - \text{top}} = 0` exactly, as the whole grid gives,
    and the window's top is the grid's."""
    top = joint.max(dim=1).values - UNDERFLOW
    low = nodes.start > 0 and not bool((joint[:, 0] < top).all())
    high = nodes.stop < n_nodes and not bool((joint[:, -1] < top).all())
    if not (low or high):
        return None
    width = nodes.stop - nodes.start
    return slice(max(0, nodes.start - width) if low else nodes.start,
                 min(n_nodes, nodes.stop + width) if high else nodes.stop)


def _support(posterior: torch.Tensor, nodes: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's first and last node (of the grid) of non-zero ``posterior`` weight on the
    window ``nodes``."""
    import torch

    positive = (posterior > 0).to(torch.int32)
    width = posterior.shape[1]
    return (positive.argmax(dim=1) + nodes.start,
            nodes.start + width - 1 - positive.flip(1).argmax(dim=1))


def student_scores(y: torch.Tensor, observed: torch.Tensor | None, p: torch.Tensor,
                   z: torch.Tensor, posterior: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Each student's score of the marginal log-likelihood with respect to each
    :math:`(a_j, d_j)`, two ``(n, J)`` tensors:
    :math:`\sum_q \pi_{iq}(y_{ij} - p_j(z_q))(z_q, 1)` over observed responses."""
    expected_p = posterior @ p.T
    expected_zp = (posterior * z[None, :]) @ p.T
    score_a, score_d = y * (posterior @ z)[:, None] - expected_zp, y - expected_p
    if observed is not None:
        score_a, score_d = score_a * observed, score_d * observed
    return score_a, score_d


def _products(u: torch.Tensor, v: torch.Tensor, full: bool) -> torch.Tensor:
    """``S^T S`` of the interleaved scores ``(u_1, v_1, u_2, ...)`` (``full``), or each item's
    ``2 x 2`` block of it."""
    import torch

    if full:
        scores = torch.stack([u, v], dim=2).reshape(u.shape[0], -1)
        return scores.T @ scores
    uu, uv, vv = (u * u).sum(0), (u * v).sum(0), (v * v).sum(0)
    return torch.stack([torch.stack([uu, uv], 1), torch.stack([uv, vv], 1)], 1)


#: nodes whose posterior mass (summed over the students) is below this share of the students
#: are left out of the M-step: their terms change no gradient by more than about 1e-12
NEGLIGIBLE_MASS = 1e-14


#: items per chunk of the M-step and of the E-step's sums over items: their (items, nodes)
#: tensors stay in the CPU's cache across the chunk's passes
ITEM_CHUNK = 256


def item_chunks(n_items: int) -> list[slice]:
    return [slice(start, min(start + ITEM_CHUNK, n_items))
            for start in range(0, n_items, ITEM_CHUNK)]


def m_step(post: EStep, totals: torch.Tensor, items: Items, z: torch.Tensor, priors: Priors, *,
           free: torch.Tensor | None = None, steps: int = 2) -> Items:
    """Newton steps per item on the expected complete-data log-likelihood plus the log prior
    (module docstring), for the ``free`` items (a boolean mask; default all: the others keep
    their values), over the nodes that carry posterior mass, a chunk of items at a time. Two
    steps from the last iterate suffice: EM's fixed points are the Newton map's, whatever the
    number of steps (more cost passes, not accuracy)."""
    import torch

    mass = post.n.sum(1)
    active = _rows_of(mass > NEGLIGIBLE_MASS * float(mass.sum()))
    n, z = post.n[active], z[post.nodes][active]  # nodes by items
    powers = torch.stack([z * z, z, torch.ones_like(z)], dim=1)  # (Q, 3)
    shared = n.shape[1] == 1  # nothing missing: one row of n for every item
    weighted = n[:, 0, None] * powers if shared else None
    chosen = (torch.arange(len(items.a), device=z.device) if free is None
              else torch.nonzero(free).flatten())
    a, d = items.a.clone(), items.d.clone()
    for part in item_chunks(len(chosen)):
        index = chosen[part]
        a[index], d[index] = _newton(a[index], d[index], post.r1[index], totals[index],
                                     weighted if shared else n[:, index].T.contiguous(), z,
                                     powers, priors, shared=shared, steps=steps)
    return Items(a, d)


def _rows_of(mask: torch.Tensor) -> slice | torch.Tensor:
    """A boolean ``mask`` as the slice it is when its true entries are contiguous (indexing by
    it then copies nothing), else itself."""
    import torch

    index = torch.nonzero(mask).flatten()
    if len(index) and int(index[-1]) - int(index[0]) + 1 == len(index):
        return slice(int(index[0]), int(index[-1]) + 1)
    return mask


def _newton(a: torch.Tensor, d: torch.Tensor, r1: torch.Tensor, totals: torch.Tensor,
            n: torch.Tensor, z: torch.Tensor, powers: torch.Tensor, priors: Priors, *,
            shared: bool, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton steps for a chunk of items, each step halved where it would lower the item's
    :func:`expected_objective`; ``n`` is the chunk's ``(items, Q)`` mass or, when nothing is
    missing (``shared``), the mass every item shares times ``powers`` (``(Q, 3)``)."""
    import torch

    def objective(x: Items) -> torch.Tensor:
        return expected_objective(x, r1, totals, n[:, 2] if shared else n, z, priors)

    value = None
    for _ in range(steps):
        p = torch.addcmul(d[:, None], a[:, None], z[None, :]).sigmoid_()
        if shared:  # the node sums as two products with the weighted powers of z
            first = p @ n[:, 1:]
            second = torch.addcmul(p, p, p, value=-1.0) @ n
        else:
            expected = n * p
            first = expected @ powers[:, 1:]
            second = torch.addcmul(expected, expected, p, value=-1.0) @ powers
        g_a, g_d = r1 - first[:, 0], totals - first[:, 1]
        h_aa, h_ad, h_dd = second.unbind(1)
        if priors != Priors():
            prior = priors.curvature(Items(a, d))
            g_a, g_d = g_a + prior[0], g_d + prior[1]
            h_aa, h_ad, h_dd = h_aa + prior[2], h_ad + prior[3], h_dd + prior[4]
        det = h_aa * h_dd - h_ad * h_ad
        step_a = (h_dd * g_a - h_ad * g_d) / det
        step_d = (h_aa * g_d - h_ad * g_a) / det
        longest = torch.maximum(step_a.abs(), step_d.abs())
        shorten = longest.clamp(min=1.0)
        (a, d), value = ascend(objective, Items(a, d), (step_a / shorten, step_d / shorten),
                               before=value)
        if float(longest.max()) < 1e-10:
            break
    return a, d


def expected_objective(items: Items, r1: torch.Tensor, totals: torch.Tensor, n: torch.Tensor,
                       z: torch.Tensor, priors: Priors) -> torch.Tensor:
    r"""Each item's expected complete-data log-likelihood plus its log prior (module
    docstring), :math:`a_j\sum_q r_{jq}z_q + d_j\sum_q r_{jq} - \sum_q n_{jq}\log(1 +
    e^{a_jz_q + d_j}) + \log p(a_j, d_j)`, from ``r1`` and ``totals`` and the mass ``n``
    (``(J, Q)``, or ``(Q,)`` shared by all); NaN where the prior's density is 0
    (:math:`a_j \le 0` under the slope prior)."""
    import torch.nn.functional as F

    softplus = F.softplus(_logits(items, z))
    mass = softplus @ n if n.dim() == 1 else (n * softplus).sum(1)
    return items.a * r1 + items.d * totals - mass + priors.item_log_density(items)


def item_standard_errors(products: torch.Tensor, items: Items, priors: Priors
                         ) -> tuple[np.ndarray, np.ndarray]:
    """SEs of ``a`` and ``b = -d/a`` from the cross-product information (``(2J, 2J)``, or the
    ``(J, 2, 2)`` blocks of each item) plus the priors' curvature."""
    import torch

    _, _, h_aa, h_ad, h_dd = priors.curvature(items)
    prior = torch.stack([torch.stack([h_aa, h_ad], 1), torch.stack([h_ad, h_dd], 1)], 1)
    if products.dim() == 2:
        index = torch.arange(len(items.a), device=products.device)
        information = products.clone()
        for row, column in ((0, 0), (0, 1), (1, 0), (1, 1)):
            information[2 * index + row, 2 * index + column] += prior[:, row, column]
        covariance = torch.linalg.inv(information).cpu().numpy()
        var_a, var_d = np.diag(covariance)[0::2], np.diag(covariance)[1::2]
        cov_ad = np.diag(covariance, 1)[0::2]
    else:
        blocks = torch.linalg.inv(products + prior).cpu().numpy()
        var_a, var_d, cov_ad = blocks[:, 0, 0], blocks[:, 1, 1], blocks[:, 0, 1]
    a, d = items.a.cpu().numpy(), items.d.cpu().numpy()
    grad_a, grad_d = d / a**2, -1.0 / a
    var_b = grad_a**2 * var_a + 2 * grad_a * grad_d * cov_ad + grad_d**2 * var_d
    return np.sqrt(np.maximum(var_a, 0.0)), np.sqrt(np.maximum(var_b, 0.0))


class Runaways:
    r"""The items whose estimates diverged during the EM: a slope or intercept past
    :data:`~irtbench.models.twopl.RUNAWAY_LIMIT` (or not finite,
    :func:`~irtbench.models.twopl.diverged`), where no finite optimum lies. EM would walk them
    off to infinity for ever, never meeting ``tol``: each is held where it first crossed
    (``hold``), left out of the M-step and of the convergence test (``free``), and flagged by
    the fit (:func:`irtbench.models.twopl.runaway_items`). Such an item's curve is a step: it
    tells the skills no more there than further out, so the others are not moved by where it
    is held. The bound is far past every finite optimum (an ML slope of 8.4 is reached, not
    held)."""

    def __init__(self, items: Items) -> None:
        import torch

        self.free = torch.ones_like(items.a, dtype=torch.bool)

    def hold(self, new: Items, old: Items) -> Items:
        import torch

        from irtbench.models.twopl import diverged

        a = new.a
        crossed = diverged(a, new.d) & self.free
        if not bool(crossed.any()):
            return new
        self.free &= ~crossed
        keep_old = crossed & ~torch.isfinite(a) | crossed & ~torch.isfinite(new.d)
        return Items(torch.where(keep_old, old.a, a), torch.where(keep_old, old.d, new.d))


def fit_2pl(responses: Responses, found: Extremes, device: torch.device, *, nodes: int,
            tol: float, max_iter: int, priors: Priors = Priors()) -> EMResult:
    """Bock–Aitkin EM for the 2PL (module docstring) on the questions not in ``found``."""
    import torch

    keep = ~found.questions
    kept = DeviceResponses.transfer(responses, int(found.item_counts[keep].sum()), device,
                                    "int8", columns=keep, dtype=torch.float64)
    data = (SparseData if is_sparse(responses) else DenseData)(kept)
    z_host, w_host = quadrature(nodes)
    z = torch.as_tensor(z_host, device=device)
    log_w = torch.as_tensor(np.log(w_host), device=device)
    counts = z.new_tensor(found.item_counts[keep])
    totals = z.new_tensor(found.item_totals[keep])
    items = Items(torch.ones_like(totals), torch.log(totals / (counts - totals)))
    losses: list[float] = []
    runaways = Runaways(items)

    def em_update(x: Items) -> Items:
        post = data.e_step(x, z, log_w)
        losses.append(-post.log_likelihood - priors.log_density(x))
        return runaways.hold(m_step(post, totals, x, z, priors, free=runaways.free), x)

    def feasible(x: Items) -> bool:  # the slope prior's density is 0 at a <= 0
        return finite(x) and (priors.log_a_sd is None or bool((x.a > 0).all()))

    items, converged, iteration = squarem(em_update, items, lambda: -losses[-1], tol=tol,
                                          max_iter=max_iter, free=runaways.free,
                                          feasible=feasible)
    post = data.e_step(items, z, log_w)
    skill = post.posterior @ z
    skill_sd = ((post.posterior @ (z * z)) - skill**2).clamp(min=0.0).sqrt()
    full = data.shape[0] >= FULL_XPD_PER_PARAMETER * 2 * data.shape[1]
    a_se, b_se = item_standard_errors(data.score_products(items, z, post.posterior, full),
                                      items, priors)
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
                    converged, median_sd, post.log_likelihood, priors.log_density(items))
