r"""Skills of respondents under item parameters held fixed, written once for every model of
:data:`irtbench.models.MODELS` and for everything that scores (``irtbench score``, the row
split of ``irtbench compare``, the subset benchmark): :func:`score`.

A respondent *i* who answered the items :math:`j` with :math:`o_{ij} = 1` has, under items
calibrated elsewhere, the log-likelihood

.. math::
    \ell_i(\theta) = \sum_j o_{ij}\,\big[y_{ij}\log p_j(\theta) + (1 - y_{ij})\log(1 - p_j(\theta))\big]

with :math:`p_j` the model's probability (:meth:`Model.probabilities
<irtbench.models.base.Model.probabilities>`), and :func:`score` gives per row

- ``"ml"``: :math:`\hat\theta = \arg\max_\theta \ell_i(\theta)` with SE
  :math:`1/\sqrt{-\ell_i''(\hat\theta)}` (the observed information: for the Rasch model and
  the 2PL, whose :math:`\ell''` does not depend on the answers, the expected one too). A row
  whose answers are all right or all wrong has no finite maximum (the likelihood rises
  towards :math:`\pm\infty`): :math:`\pm\infty` with SE :math:`\infty` and ``extreme`` True,
  as ``irtbench fit`` writes an extreme student (:mod:`irtbench.extremes`; the items are known
  here, so the rule needs no second round).
- ``"map"``: the mode of the posterior under :math:`\theta \sim N(\mu, s^2)` (a
  :class:`SkillPrior`), with SE :math:`1/\sqrt{I + 1/s^2}`, :math:`I = -\ell_i''` at the
  mode. For the M2PL, skills :math:`\theta_i \in R^D` under :math:`N(\mu, \Sigma)`, the mode
  of :math:`\ell_i(\theta) - \tfrac12(\theta - \mu)^\top\Sigma^{-1}(\theta - \mu)` and the SE
  of each coordinate the square root of the diagonal of :math:`(I + \Sigma^{-1})^{-1}`,
  :math:`I = \sum_j o_{ij}p_{ij}(1 - p_{ij})a_ja_j^\top`: the only method for the M2PL (its
  likelihood alone fixes no frame, so its ML and a quadrature over :math:`R^D` are not
  offered).
- ``"eap"`` (the default): the posterior mean and SD under the same prior, by quadrature.

Extreme rows keep finite MAP and EAP estimates, flagged ``extreme`` all the same; a row with
no usable answer gets the prior's mean and SD (MAP, EAP) or NaN with SE :math:`\infty` (ML).
Items with a non-finite estimate (an item a JML fit found all right or all wrong) are left
out, and :attr:`Scores.n_left_out` counts them.

**How, for one skill** (:func:`maximise`, :func:`posterior_moments`). Each row's target (its
log-likelihood, plus the log-prior for MAP and EAP) is evaluated on a coarse grid of
:data:`COARSE_NODES` skills common to every row, covering :math:`[-10, 10]` and
:math:`\mu \pm 9s`; its best node brackets the maximum, which safeguarded Newton steps then
find (bisection of the bracket where a step would leave it), the derivatives exact where the
evaluator has them, else by central differences of step :data:`STEP` (:class:`Target`).
EAP integrates over the coarse grid where the posterior is wider than the grid's spacing (the
trapezoid rule on a smooth integrand is then accurate to far below the SD: its error falls
like :math:`e^{-2\pi^2 s^2/h^2}`), and elsewhere over a grid of the row's own, at half the
Laplace SD, around the mode (every node of the coarse grid within :data:`TAIL_NATS` of the
peak, and 12 SDs each side).

The target is evaluated two ways. **A complete row under a model of linear logits**
(:meth:`Model.linear_logits <irtbench.models.base.Model.linear_logits>`: the Rasch model,
the 2PL), :math:`\text{logit}\,p_j = a_j\theta + d_j`, has

.. math::
    \ell_i(\theta) = r_i\theta + \sum_j y_{ij}d_j - F(\theta),\qquad
    r_i = \sum_j y_{ij}a_j,\qquad F(\theta) = \sum_j \log(1 + e^{a_j\theta + d_j})

so one matrix-vector product over the data gives every :math:`r_i` and one function :math:`F`,
common to all rows, does the rest (:class:`LinearRows`): it is tabulated in float64 with
:math:`F'` and :math:`F''` at spacing :data:`TABLE_SPACING` and read by quintic Hermite
interpolation (:class:`LinearTable`: below :math:`10^{-6}` of a curvature). The weighted scores
are float32 products (at 28659 items, :math:`r_i` within 0.003 of its float64 value:
:math:`5 \cdot 10^{-7}` in the skill, below :math:`10^{-4}` SE). **Any other row** (missing answers, the
3PL and 4PL) is evaluated from its answered items alone (gathered, so that a row of k answers
costs k, or every column of a dense block): under a model of linear logits by
:class:`LinearAnswers`, its terms in float32 and its derivatives exact; under the others by
:class:`AnsweredRows`, the model's own log-probability of each answer (:meth:`Model.logits
<irtbench.models.base.Model.logits>` and :meth:`~irtbench.models.base.Model.log_prob`, as the
fits use them) in float64, the coarse grid of a dense block by two matrix products.

**The M2PL** (:func:`vector_map`): Newton's method on the concave log-posterior with exact
gradient and Hessian (its logits are linear; terms in float32, sums in float64), each step
halved until it lowers the Newton decrement.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from irtbench.models.base import Model
from irtbench.models.fitting import ops_for
from irtbench.responses import (
    BLOCK_ELEMENTS,
    MISSING,
    is_compact,
    is_sparse,
    row_blocks,
    to_dense,
)

if TYPE_CHECKING:
    from irtbench.estimators import Fit

__all__ = ["METHODS", "Scores", "SkillPrior", "score", "usable_items"]

#: the methods :func:`score` offers (the M2PL: ``"map"`` only)
METHODS = ("eap", "map", "ml")
#: nodes of the coarse grid every row's target is first evaluated on
COARSE_NODES = 121
#: the coarse grid covers at least [-SKILL_RANGE, SKILL_RANGE]
SKILL_RANGE = 10.0
#: prior SDs each side of the prior's mean that the coarse grid covers under MAP and EAP
PRIOR_WIDTH = 9.0
#: a maximum past this is taken as none: an ML estimate of +/-inf (a 3PL row whose
#: likelihood rises towards -inf though it is not all wrong, or a 4PL row towards +inf)
SKILL_LIMIT = 50.0
#: an ML estimate with a larger SE is on a plateau the likelihood rises along for ever (the
#: 3PL's towards -inf, its floor's): +/-inf, as past :data:`SKILL_LIMIT`
FLAT_SE = 1e3
#: the step of the central differences (in the skill's units): their truncation error in a
#: curvature is about STEP^2 a^2 / 12 of it (a the items' slopes), their rounding error
#: 2e-16 |target| / STEP^2, both below 1e-5 of it at 28659 items
STEP = 1e-3
#: Newton stops when a step is shorter than this
TOLERANCE = 1e-9
#: Newton's most steps
MAX_STEPS = 80
#: the M2PL's Newton stops where the decrement g'H^-1 g, about the squared distance to the mode
#: in SEs, is below this (1e-5 SE; float32's rounding of the gradient sits below it)
CLOSE_ENOUGH = 1e-10
#: how far below its peak a row's posterior is taken as zero in EAP's integral (nats)
TAIL_NATS = 40.0
#: the spacing of the table of F (:class:`LinearTable`) at most
TABLE_SPACING = 0.1
#: a row's own EAP grid has at most this many nodes
MOST_NODES = 4097
#: rows answering at most this share of the items are gathered (else every column is read)
GATHER_BELOW = 0.5
#: answered cells per group of rows scored together (their gathered arrays' size)
GROUP_CELLS = 1 << 22


class Scores(NamedTuple):
    """What :func:`score` gives: per row ``skill`` (``(n,)``, or ``(n, D)`` for the M2PL),
    ``skill_se`` (alike: the SE, or the posterior SD for EAP), ``extreme`` (answers all right
    or all wrong among the usable items), ``n_answered`` (usable items answered); and
    ``n_left_out``, the items left out for a non-finite estimate."""

    skill: np.ndarray
    skill_se: np.ndarray
    extreme: np.ndarray
    n_answered: np.ndarray
    n_left_out: int


class SkillPrior(NamedTuple):
    r"""The skills' distribution new respondents are scored under: :math:`N(\mu, s^2)`
    (``mean`` a float, ``sd_or_cov`` the SD :math:`s`) or, for the M2PL,
    :math:`N(\mu, \Sigma)` (``mean`` ``(D,)``, ``sd_or_cov`` the covariance ``(D, D)``)."""

    mean: float | np.ndarray
    sd_or_cov: float | np.ndarray

    @classmethod
    def standard(cls, dims: int | None = None) -> SkillPrior:
        """:math:`N(0, 1)`, or :math:`N(0, I_D)` with ``dims``."""
        return cls(0.0, 1.0) if dims is None else cls(np.zeros(dims), np.eye(dims))

    @classmethod
    def of(cls, source: Fit | str | os.PathLike) -> SkillPrior:
        """The skill distribution of a fit (a :class:`~irtbench.estimators.Fit`) or of an
        estimates file that ``irtbench fit`` wrote (its path): :meth:`of_skills` of its
        skills, with the SD the fit estimated (``diagnostics["sigma"]``) where it has one."""
        if isinstance(source, (str, os.PathLike)):
            from irtbench.estimates import read_estimates

            return cls.of_skills(read_estimates(source)[0])
        return cls.of_skills(source.skill, sigma=source.diagnostics.get("sigma"))

    @classmethod
    def of_skills(cls, skill: np.ndarray, sigma: object = None) -> SkillPrior:
        """The mean of the finite skills and ``sigma`` (when a positive number) or else their
        SD (1 with fewer than two, or none spread); for skills ``(n, D)``, the mean vector and
        the covariance (``ddof=0``) of the rows finite throughout (:math:`N(0, I)` with fewer
        than two)."""
        skill = np.asarray(skill, np.float64)
        if skill.ndim == 2:
            chosen = skill[np.isfinite(skill).all(axis=1)]
            if len(chosen) < 2:
                return cls.standard(skill.shape[1])
            return cls(chosen.mean(axis=0),
                       np.atleast_2d(np.cov(chosen, rowvar=False, ddof=0)))
        finite = skill[np.isfinite(skill)]
        mean = float(finite.mean()) if finite.size else 0.0
        if isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma > 0:
            return cls(mean, float(sigma))
        spread = float(finite.std()) if finite.size > 1 else 0.0
        return cls(mean, spread if spread > 0 else 1.0)

    def checked(self, dims: int | None) -> SkillPrior:
        """This prior as float64, checked against the skills' dimensions (None: one skill);
        ``ValueError`` naming the problem."""
        if dims is None:
            mean, sd = float(np.asarray(self.mean)), float(np.asarray(self.sd_or_cov))
            if not (np.isfinite(mean) and np.isfinite(sd) and sd > 0):
                raise ValueError(f"the skill prior needs a finite mean and a positive SD, got "
                                 f"N({mean:g}, {sd:g}^2)")
            return SkillPrior(mean, sd)
        mean = np.asarray(self.mean, np.float64).reshape(-1)
        cov = np.atleast_2d(np.asarray(self.sd_or_cov, np.float64))
        if mean.shape != (dims,) or cov.shape != (dims, dims):
            raise ValueError(f"the skill prior of {dims}-dimensional skills needs a mean of "
                             f"{dims} and a {dims} x {dims} covariance, got {mean.shape} and "
                             f"{cov.shape}")
        if not (np.isfinite(cov).all() and np.allclose(cov, cov.T)
                and np.linalg.eigvalsh(cov).min() > 0):
            raise ValueError("the skill prior's covariance must be symmetric positive definite")
        return SkillPrior(mean, cov)


# -- the data --------------------------------------------------------------------------------
def usable_items(model: Model, items: Mapping[str, np.ndarray]) -> np.ndarray:
    """The items whose every parameter (every loading of the M2PL) is finite."""
    keep = np.ones(len(np.asarray(items["difficulty"])), dtype=bool)
    for name in model.item_parameters:
        values = np.asarray(items[name], np.float64)
        keep &= np.isfinite(values).reshape(len(values), -1).all(axis=1)
    return keep


def dense_matrix(responses: object, n_items: int) -> np.ndarray:
    """The responses as a dense matrix of ``n_items`` columns: float (NaN missing) or compact
    int8 kept as they are, sparse triples made dense, anything else (a table's ``.responses``,
    a DataFrame, lists, bools) as float32; ``ValueError`` for another shape."""
    if hasattr(responses, "responses"):
        responses = responses.responses
    if is_sparse(responses):
        responses = to_dense(responses)
    if not (isinstance(responses, np.ndarray) and (is_compact(responses)
                                                   or responses.dtype.kind == "f")):
        responses = np.asarray(responses, dtype=np.float32)
    if responses.ndim != 2 or responses.shape[1] != n_items:
        raise ValueError(f"the responses must be a matrix of one column per item ({n_items}), "
                         f"got shape {responses.shape}")
    return responses


def answers_and_observed(block: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """A block's float32 answers (0 where missing) and observed mask; ``ValueError`` naming
    the first cell that is not 0, 1 or missing (row ``start`` + its index)."""
    if is_compact(block):
        observed = block != MISSING
        bad = observed & (block != 0) & (block != 1)
        answers = (block == 1).astype(np.float32)
    else:
        observed = ~np.isnan(block)
        bad = observed & (block != 0) & (block != 1)
        answers = np.where(observed, block, 0).astype(np.float32)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"responses must be 0, 1 or missing; row {start + i}, column {j} "
                         f"holds {block[i, j]!r}")
    return answers, observed


def item_columns(responses: np.ndarray, usable: np.ndarray, rows: slice | np.ndarray
                 ) -> np.ndarray:
    """Rows of the responses on the usable items only."""
    block = responses[rows]
    return block if usable.all() else block[:, usable]


# -- evaluating each row's log-likelihood ----------------------------------------------------
def softplus_and_sigmoid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\log(1 + e^x)` and :math:`\sigma(x)` from one exponential of :math:`-|x|`."""
    e = np.exp(-np.abs(x))
    inverse = 1.0 / (1.0 + e)
    return np.maximum(x, 0) + np.log1p(e), np.where(x >= 0, inverse, e * inverse)


class LinearTable:
    r""":math:`F(\theta) = \sum_j \log(1 + e^{a_j\theta + d_j})` (module docstring) with its
    first two derivatives, :math:`\sum_j a_j\sigma_j` and :math:`\sum_j a_j^2\sigma_j(1 -
    \sigma_j)`, tabulated in float64 over ``[low, high]`` at :data:`TABLE_SPACING` (finer where
    the slopes are steep: at most 0.3 over the 99th percentile of :math:`|a_j|`) and read by
    quintic Hermite interpolation, whose error is about :math:`h^6F^{(6)}/46080` (in a
    curvature :math:`h^4F^{(6)}/720`: below :math:`10^{-6}` of it at :math:`h = 0.1`); exact
    (a sum over the items) outside."""

    def __init__(self, slope: np.ndarray, intercept: np.ndarray, low: float, high: float
                 ) -> None:
        self.slope, self.intercept = slope, intercept
        steep = float(np.percentile(np.abs(slope), 99)) if slope.size else 1.0
        spacing = min(TABLE_SPACING, 0.3 / max(steep, 1e-12))
        count = int(np.ceil((high - low) / spacing)) + 1
        self.nodes = np.linspace(low, high, count)
        self.spacing = (high - low) / (count - 1)
        self.table = np.stack(self.sums(self.nodes))  # (3, count): F, F', F''

    def sums(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:math:`F`, :math:`F'` and :math:`F''` summed over the items at each of ``theta``
        (1-D), a block of points at a time."""
        value, first, second = (np.empty(len(theta)) for _ in range(3))
        for part in row_blocks((len(theta), len(self.slope))):
            soft, sig = softplus_and_sigmoid(theta[part, None] * self.slope + self.intercept)
            value[part], first[part] = soft.sum(axis=1), sig @ self.slope
            second[part] = (sig * (1.0 - sig)) @ (self.slope * self.slope)
        return value, first, second

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """:math:`F` at ``theta`` (any shape)."""
        flat = np.asarray(theta, np.float64).ravel()
        position = (flat - self.nodes[0]) / self.spacing
        inside = (position >= 0) & (position <= len(self.nodes) - 1)
        k = np.clip(np.floor(position), 0, len(self.nodes) - 2).astype(np.int64)
        u = np.where(inside, position - k, 0.0)
        h = self.spacing
        u3 = u * u * u
        u4, u5 = u3 * u, u3 * u * u
        f, df, ddf = self.table[:, k]
        g, dg, ddg = self.table[:, k + 1]
        out = (f * (1 - 10 * u3 + 15 * u4 - 6 * u5) + h * df * (u - 6 * u3 + 8 * u4 - 3 * u5)
               + 0.5 * h * h * ddf * (u * u - 3 * u3 + 3 * u4 - u5)
               + g * (10 * u3 - 15 * u4 + 6 * u5) + h * dg * (-4 * u3 + 7 * u4 - 3 * u5)
               + 0.5 * h * h * ddg * (u3 - 2 * u4 + u5))
        if not inside.all():
            out[~inside] = self.sums(flat[~inside])[0]
        return out.reshape(np.shape(theta))


class LinearRows:
    r"""Complete rows under a model of linear logits: :math:`\ell_i(\theta) = r_i\theta -
    F(\theta)` up to a constant of the row (module docstring), from the weighted scores
    ``weighted`` :math:`r_i` and the :class:`LinearTable` :math:`F`."""

    def __init__(self, weighted: np.ndarray, table: LinearTable) -> None:
        self.weighted, self.table = weighted, table

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The log-likelihood of each of ``rows`` at its row of ``theta`` ``(m, K)``."""
        return self.weighted[rows, None] * theta - self.table(theta)

    def grid(self, nodes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The log-likelihood of ``rows`` at ``nodes`` common to them, ``(m, Q)``."""
        return self.weighted[rows, None] * nodes[None, :] - self.table(nodes)[None, :]


class AnsweredRows:
    r"""Rows evaluated from their answered items by the model's own log-probability of each
    answer (:meth:`Model.logits <irtbench.models.base.Model.logits>`,
    :meth:`~irtbench.models.base.Model.log_prob`): ``question`` ``(m, k)`` the items each row
    answered (padded; None: every column), ``answers`` and ``mask`` alike."""

    def __init__(self, model: Model, items: Mapping[str, np.ndarray], question: np.ndarray | None,
                 answers: np.ndarray, mask: np.ndarray) -> None:
        self.model, self.items = model, items
        self.question, self.answers, self.mask = question, answers, mask
        values = {p.name: items[p.name] for p in model.fit_parameters(default_options(model))}
        n_items = len(items["difficulty"])
        self.where = (question[:, None, :] if question is not None
                      else np.arange(n_items)[None, None, :])
        self.at = model.at(values, self.where)
        self.width = self.where.shape[-1]

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The log-likelihood of each of ``rows`` at its row of ``theta`` ``(m, K)``."""
        ops = ops_for(theta)
        out = np.empty(theta.shape)
        step = max(1, BLOCK_ELEMENTS // max(1, theta.shape[1] * self.width))
        for start in range(0, len(rows), step):
            part = rows[start:start + step]
            at, where = self.at, self.where
            if self.question is not None:  # the rows' own items; else every row's columns
                at, where = {name: value[part] for name, value in at.items()}, where[part]
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                logits = self.model.logits(ops, theta[start:start + step, :, None], at, where)
                terms = self.model.log_prob(ops, logits, self.answers[part][:, None, :], at)
            out[start:start + step] = np.where(self.mask[part][:, None, :], terms, 0.0).sum(-1)
        return out

    def grid(self, nodes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The log-likelihood of ``rows`` at ``nodes`` common to them, ``(m, Q)``: two matrix
        products (float32) where every column is read, else as :meth:`__call__`."""
        if self.question is not None:
            return self(np.broadcast_to(nodes, (len(rows), len(nodes))), rows)
        with np.errstate(divide="ignore"):
            p = np.clip(self.model.probabilities(nodes, self.items), 1e-300, 1.0)
            log_p, log_q = np.log(p).T, np.log1p(-np.minimum(p, 1 - 1e-16)).T
        right = self.answers[rows].astype(np.float32)
        wrong = self.mask[rows].astype(np.float32) - right
        return (right @ log_p.astype(np.float32)
                + wrong @ log_q.astype(np.float32)).astype(np.float64)


class LinearAnswers(AnsweredRows):
    r"""Rows of answered items under a model of linear logits (:meth:`Model.linear_logits
    <irtbench.models.base.Model.linear_logits>`, one skill): :math:`x_{ij} = a_j\theta_i +
    d_j`, :math:`\ell_i = \sum_j o_{ij}[y_{ij}x_{ij} - \log(1 + e^{x_{ij}})]`, its exact
    derivatives :math:`\sum_j o_{ij}a_j(y_{ij} - \sigma_{ij})` and :math:`-\sum_j o_{ij}a_j^2
    \sigma_{ij}(1 - \sigma_{ij})` (:meth:`derivatives`: no central differences), each term in
    float32 and the sums in float64 (about :math:`10^{-7}` of each term: far below an SE)."""

    def __init__(self, model: Model, items: Mapping[str, np.ndarray], question: np.ndarray | None,
                 answers: np.ndarray, mask: np.ndarray) -> None:
        super().__init__(model, items, question, answers, mask)
        slope, intercept = (v.astype(np.float32) for v in model.linear_logits(items))
        self.slope = slope[question] if question is not None else slope[None, :]
        self.intercept = intercept[question] if question is not None else intercept[None, :]
        self.y, self.weight = answers.astype(np.float32), mask.astype(np.float32)

    def part(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slopes and intercepts of ``rows``' answered items (every row's columns alike)."""
        if self.question is None:
            return self.slope, self.intercept
        return self.slope[rows], self.intercept[rows]

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.empty(theta.shape)
        step = max(1, BLOCK_ELEMENTS // max(1, theta.shape[1] * self.width))
        for start in range(0, len(rows), step):
            part = rows[start:start + step]
            a, d = self.part(part)
            x = theta[start:start + step, :, None].astype(np.float32) * a[:, None, :] \
                + d[:, None, :]
            soft, _ = softplus_and_sigmoid(x)
            terms = (self.y[part][:, None, :] * x - soft) * self.weight[part][:, None, :]
            out[start:start + step] = terms.sum(axis=-1, dtype=np.float64)
        return out

    def grid(self, nodes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self(np.broadcast_to(nodes, (len(rows), len(nodes))), rows)

    def derivatives(self, theta: np.ndarray, rows: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The log-likelihood of each of ``rows`` at its one skill ``theta`` and its first two
        derivatives, exactly."""
        value, first, second = (np.empty(len(rows)) for _ in range(3))
        step = max(1, BLOCK_ELEMENTS // max(1, self.width))
        for start in range(0, len(rows), step):
            part, chosen = rows[start:start + step], slice(start, start + step)
            a, d = self.part(part)
            x = theta[chosen, None].astype(np.float32) * a + d
            soft, sig = softplus_and_sigmoid(x)
            weight = self.weight[part]
            value[chosen] = ((self.y[part] * x - soft) * weight).sum(axis=1, dtype=np.float64)
            first[chosen] = (a * (self.y[part] - sig) * weight).sum(axis=1, dtype=np.float64)
            second[chosen] = -(a * a * sig * (1 - sig) * weight).sum(axis=1, dtype=np.float64)
        return value, first, second


def default_options(model: Model) -> dict[str, Any]:
    """The model's options at their defaults (what :meth:`Model.fit_parameters
    <irtbench.models.base.Model.fit_parameters>` reads to name the fitted parameters)."""
    return {name: spec.default for name, spec in model.options.items()}


# -- one skill: the maximum, the curvature, the posterior's moments ---------------------------
def coarse_grid(items: Mapping[str, np.ndarray], prior: SkillPrior | None) -> np.ndarray:
    r"""The :data:`COARSE_NODES` skills every row is first evaluated at: :math:`[-10, 10]`,
    widened to the items' difficulties (2nd to 98th percentile) :math:`\pm 4` and, under a
    prior, to :math:`\mu \pm 9s`, within :math:`\pm` :data:`SKILL_LIMIT`."""
    difficulty = np.asarray(items["difficulty"], np.float64)
    low, high = -SKILL_RANGE, SKILL_RANGE
    if difficulty.size:
        low = min(low, float(np.percentile(difficulty, 2)) - 4.0)
        high = max(high, float(np.percentile(difficulty, 98)) + 4.0)
    if prior is not None:
        low = min(low, prior.mean - PRIOR_WIDTH * prior.sd_or_cov)
        high = max(high, prior.mean + PRIOR_WIDTH * prior.sd_or_cov)
    return np.linspace(max(low, -SKILL_LIMIT), min(high, SKILL_LIMIT), COARSE_NODES)


class Target:
    """What each row's estimate maximises: its log-likelihood (an evaluator's: ``rows`` of
    :class:`LinearRows`, :class:`AnsweredRows`, :class:`LinearAnswers`) plus, under a prior,
    the normal log-prior (up to a constant): at each row's own skills (a call), at skills
    common to the rows (:meth:`grid`), and its first two derivatives at one skill per row
    (:meth:`derivatives`: the evaluator's own where it has them, else central differences of
    step :data:`STEP`)."""

    def __init__(self, evaluate: Any, prior: SkillPrior | None) -> None:
        self.evaluate, self.prior = evaluate, prior

    def log_prior(self, theta: np.ndarray) -> np.ndarray | float:
        if self.prior is None:
            return 0.0
        return -0.5 * ((theta - self.prior.mean) / self.prior.sd_or_cov) ** 2

    def __call__(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.evaluate(theta, rows) + self.log_prior(theta)

    def grid(self, nodes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.evaluate.grid(nodes, rows) + self.log_prior(nodes)

    def derivatives(self, theta: np.ndarray, rows: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The value, first and second derivatives at ``theta`` (one per row)."""
        exact = getattr(self.evaluate, "derivatives", None)
        if exact is None:
            values = self(theta[:, None] + np.array([-STEP, 0.0, STEP]), rows)
            value = values[:, 1]
            first = (values[:, 2] - values[:, 0]) / (2 * STEP)
            second = (values[:, 2] - 2 * values[:, 1] + values[:, 0]) / STEP**2
            return value, first, second
        value, first, second = exact(theta, rows)
        if self.prior is None:
            return value, first, second
        precision = self.prior.sd_or_cov ** -2.0
        return (value + self.log_prior(theta), first - (theta - self.prior.mean) * precision,
                second - precision)


class Maximum(NamedTuple):
    """Each row's maximum of its target: where, the value there and its second derivative."""

    skill: np.ndarray
    value: np.ndarray
    curvature: np.ndarray


def maximise(target: Target, coarse: np.ndarray, nodes: np.ndarray, spacing: float
             ) -> Maximum:
    """Each row's maximum from the best node of its ``coarse`` values at ``nodes``:
    safeguarded Newton steps (of at most 4 ``spacing``) within the bracket of that node's
    neighbours (open beyond the grid's ends, up to :data:`SKILL_LIMIT`), bisecting the
    bracket where a step would leave it, until a step is shorter than :data:`TOLERANCE`."""
    n = len(coarse)
    best = coarse.argmax(axis=1)
    skill = nodes[best].astype(np.float64)
    lower = np.where(best > 0, nodes[np.maximum(best - 1, 0)], -SKILL_LIMIT)
    upper = np.where(best < len(nodes) - 1, nodes[np.minimum(best + 1, len(nodes) - 1)],
                     SKILL_LIMIT)
    active = np.arange(n)
    for _ in range(MAX_STEPS):
        if not active.size:
            break
        theta = skill[active]
        _, first, second = target.derivatives(theta, active)
        low = np.where(first > 0, theta, lower[active])
        high = np.where(first > 0, upper[active], theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(second < 0, -first / second, np.sign(first) * spacing)
        moved = theta + np.clip(np.nan_to_num(step), -4 * spacing, 4 * spacing)
        outside = (moved <= low) | (moved >= high)
        moved = np.where(outside, 0.5 * (low + high), moved)
        done = (np.abs(moved - theta) < TOLERANCE) | (high - low < TOLERANCE)
        skill[active], lower[active], upper[active] = moved, low, high
        active = active[~done]
    value, _, curvature = target.derivatives(skill, np.arange(n))
    return Maximum(skill, value, curvature)


def trapezoid_moments(nodes: np.ndarray, log_density: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each row's density on its (equally spaced) ``nodes`` by the trapezoid
    rule; ``nodes`` ``(Q,)`` or ``(m, Q)``."""
    weight = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    weight[:, [0, -1]] *= 0.5
    total = weight.sum(axis=1)
    mean = (weight * nodes).sum(axis=1) / total
    centred = nodes - mean[:, None]
    return mean, np.sqrt((weight * centred * centred).sum(axis=1) / total)


def posterior_moments(target: Target, coarse: np.ndarray, nodes: np.ndarray, peak: Maximum
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's posterior mean and SD (module docstring): over the coarse grid where the
    Laplace SD at the mode is at least its spacing, else over a grid of the row's own."""
    spacing = nodes[1] - nodes[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        laplace = np.where(peak.curvature < 0, 1.0 / np.sqrt(-peak.curvature), np.inf)
    mean, sd = np.empty(len(coarse)), np.empty(len(coarse))
    wide = laplace >= spacing
    if wide.any():
        mean[wide], sd[wide] = trapezoid_moments(nodes, coarse[wide])
    narrow = np.flatnonzero(~wide)
    if not narrow.size:
        return mean, sd
    above = coarse[narrow] >= peak.value[narrow, None] - TAIL_NATS
    first = np.where(above.any(axis=1), above.argmax(axis=1), len(nodes))
    last = np.where(above.any(axis=1), len(nodes) - 1 - above[:, ::-1].argmax(axis=1), -1)
    centre, width = peak.skill[narrow], 12.0 * laplace[narrow]
    low = np.minimum(nodes[np.clip(first - 1, 0, len(nodes) - 1)], centre - width)
    high = np.maximum(nodes[np.clip(last + 1, 0, len(nodes) - 1)], centre + width)
    wanted = np.ceil((high - low) / (0.5 * laplace[narrow])) + 1
    size = 2 ** np.ceil(np.log2(np.clip(wanted, 33, MOST_NODES) - 1)).astype(int) + 1
    for count in np.unique(size):
        chosen = np.flatnonzero(size == count)
        own = low[chosen, None] + (high - low)[chosen, None] * np.linspace(0.0, 1.0, count)
        rows = narrow[chosen]
        mean[rows], sd[rows] = trapezoid_moments(own, target(own, rows))
    return mean, sd


def scalar_estimates(evaluate: Any, n_rows: int, method: str, prior: SkillPrior,
                     items: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(skill, se)`` of ``n_rows`` rows of one skill that each answered some item (and, for
    ML, not all right or all wrong) by ``method``, from an evaluator of their log-likelihood
    (:class:`Target`)."""
    used_prior = None if method == "ml" else prior
    target = Target(evaluate, used_prior)
    nodes = coarse_grid(items, used_prior)
    spacing = nodes[1] - nodes[0]
    if used_prior is None:  # a likelihood higher at the limits than inside: no finite maximum
        nodes = np.r_[-SKILL_LIMIT, nodes, SKILL_LIMIT]
    coarse = target.grid(nodes, np.arange(n_rows))
    peak = maximise(target, coarse, nodes, spacing)
    if method == "eap":
        return posterior_moments(target, coarse, nodes, peak)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(peak.curvature < 0, 1.0 / np.sqrt(-peak.curvature), np.inf)
    skill = peak.skill.copy()
    if method == "ml":  # at the limit, or on a plateau: no maximum, the likelihood rising
        beyond = (np.abs(skill) >= SKILL_LIMIT - 1e-6) | (se > FLAT_SE)
        skill[beyond], se[beyond] = np.sign(skill[beyond]) * np.inf, np.inf
    return skill, se


# -- the M2PL: MAP by Newton's method ---------------------------------------------------------
def vector_map(slope: np.ndarray, intercept: np.ndarray, question: np.ndarray | None,
               answers: np.ndarray, mask: np.ndarray, prior: SkillPrior
               ) -> tuple[np.ndarray, np.ndarray]:
    r"""``(skill, se)`` ``(m, D)`` of rows under logits :math:`\theta\cdot a_j + d_j`: the mode
    of :math:`\sum_j o_{ij}[y_{ij}x_{ij} - \log(1 + e^{x_{ij}})] - \tfrac12(\theta - \mu)^\top
    P(\theta - \mu)`, :math:`P = \Sigma^{-1}`, by Newton's method from :math:`\mu` with the
    exact gradient :math:`g = \sum_j o_{ij}(y_{ij} - p_{ij})a_j - P(\theta - \mu)` and Hessian
    :math:`-H`, :math:`H = \sum_j o_{ij}p_{ij}(1 - p_{ij})a_ja_j^\top + P`; a step is halved
    until it lowers the Newton decrement :math:`g^\top H^{-1}g` (which the strictly concave
    log-posterior has at 0 only at its mode; judged by gradients, whose float32 terms, summed,
    stay accurate where differences of the log-posterior itself would not), until the
    decrement is below :data:`CLOSE_ENOUGH`. The SEs
    :math:`\sqrt{\operatorname{diag} H^{-1}}` at the mode. ``question`` ``(m, k)`` the items
    each row answered (None: every column)."""
    mean, precision = prior.mean, np.linalg.inv(prior.sd_or_cov)
    m, dims = len(answers), len(mean)
    gathered = question is not None
    a = (slope[question] if gathered else slope).astype(np.float32)
    d = (intercept[question] if gathered else intercept[None, :]).astype(np.float32)
    y, weight = answers.astype(np.float32), mask.astype(np.float32)
    outer = None if gathered else np.einsum("jd,je->jde", a, a).reshape(len(a), dims * dims)

    def gradient_and_hessian(theta: np.ndarray, rows: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
        own = theta.astype(np.float32)
        if gathered:
            x = np.einsum("nkd,nd->nk", a[rows], own) + d[rows]
        else:
            x = own @ a.T + d
        _, p = softplus_and_sigmoid(x)
        residual, w = (y[rows] - p) * weight[rows], p * (1 - p) * weight[rows]
        if gathered:
            gradient = np.einsum("nk,nkd->nd", residual, a[rows])
            hessian = np.einsum("nk,nkd,nke->nde", w, a[rows], a[rows])
        else:
            gradient, hessian = residual @ a, (w @ outer).reshape(len(rows), dims, dims)
        return (gradient.astype(np.float64) - (theta - mean) @ precision,
                hessian.astype(np.float64) + precision)

    def decrement(gradient: np.ndarray, hessian: np.ndarray) -> np.ndarray:
        solved = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        return np.einsum("nd,nd->n", gradient, solved)

    skill = np.tile(mean, (m, 1))
    gradient, hessian = gradient_and_hessian(skill, np.arange(m))
    size = decrement(gradient, hessian)
    active = np.flatnonzero(size >= CLOSE_ENOUGH)
    for _ in range(MAX_STEPS):
        if not active.size:
            break
        step = np.linalg.solve(hessian[active], gradient[active][..., None])[..., 0]
        length, waiting = np.ones(len(active)), np.arange(len(active))
        for _ in range(40):  # halve where the step does not bring the mode nearer
            rows = active[waiting]
            trial = skill[rows] + length[waiting, None] * step[waiting]
            new_gradient, new_hessian = gradient_and_hessian(trial, rows)
            new_size = decrement(new_gradient, new_hessian)
            better = (new_size < size[rows]) | (new_size < CLOSE_ENOUGH)
            taken = rows[better]
            skill[taken], gradient[taken], hessian[taken] = (trial[better], new_gradient[better],
                                                             new_hessian[better])
            size[taken] = new_size[better]
            waiting = waiting[~better]
            if not waiting.size:
                break
            length[waiting] *= 0.5
        stuck = np.isin(np.arange(len(active)), waiting)  # no step helped: at its mode
        active = active[~stuck & (size[active] >= CLOSE_ENOUGH)]
    se = np.sqrt(np.diagonal(np.linalg.inv(hessian), axis1=1, axis2=2))
    return skill, se


# -- the rows, in groups ----------------------------------------------------------------------
def groups(rows: np.ndarray, counts: np.ndarray) -> Iterator[np.ndarray]:
    """``rows`` in groups of at most :data:`GROUP_CELLS` cells of gathered answers (each row
    counted at the group's most answers)."""
    start = 0
    while start < len(rows):
        most, stop = 0, start
        while stop < len(rows):
            most = max(most, int(counts[rows[stop]]))
            if (stop - start + 1) * max(most, 1) > GROUP_CELLS and stop > start:
                break
            stop += 1
        yield rows[start:stop]
        start = stop


def gathered(responses: np.ndarray, usable: np.ndarray, rows: np.ndarray, most: int
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(question, answers, mask)`` of ``rows``: each row's answered items first, ``most``
    columns (``question`` None and every column where ``most`` is over :data:`GATHER_BELOW`
    of the items), answers float64 (0 where missing)."""
    n_items = int(usable.sum())
    every = most > GATHER_BELOW * n_items
    width = n_items if every else most
    question = None if every else np.zeros((len(rows), width), np.int64)
    answers, mask = np.zeros((len(rows), width)), np.zeros((len(rows), width), bool)
    for part in row_blocks((len(rows), n_items)):
        y, observed = answers_and_observed(item_columns(responses, usable, rows[part]), 0)
        if every:
            answers[part], mask[part] = y, observed
            continue
        row, column = np.nonzero(observed)  # row by row, in order
        place = np.arange(len(row)) - np.searchsorted(row, np.arange(len(observed)))[row]
        at = (row + part.start, place)
        question[at], answers[at], mask[at] = column, y[row, column], True
    return question, answers, mask


def score(model: Model, items: Mapping[str, np.ndarray], responses: object, *,
          method: str = "eap", prior: SkillPrior | None = None) -> Scores:
    r"""Each respondent's skill (and its SE) under items held fixed (module docstring).

    Args:
        model: the model the items were calibrated under (:func:`irtbench.models.get_model`).
        items: its item parameters by name (:attr:`Fit.items
            <irtbench.estimators.Fit.items>`, :func:`irtbench.estimates.read_estimates`'), one
            entry per column of ``responses``.
        responses: the respondents' answers, dense (0/1 with NaN missing, or compact int8
            with -1), one column per item, read a block of rows at a time; sparse triples are
            made dense.
        method: ``"eap"``, ``"map"`` or ``"ml"`` (the M2PL: ``"map"`` only).
        prior: the skills' distribution for EAP and MAP (:class:`SkillPrior`, e.g.
            ``SkillPrior.of(fit)``; None: :math:`N(0, 1)`, :math:`N(0, I_D)`); ML ignores it.

    Returns:
        :class:`Scores`.

    Examples:
        >>> import numpy as np
        >>> from irtbench.models import get_model
        >>> items = {"difficulty": np.array([-1.0, 0.0, 1.0])}
        >>> scores = score(get_model("rasch"), items, np.array([[1, 1, 0], [1, 1, 1.0]]),
        ...                method="ml")
        >>> round(float(scores.skill[0]), 3), float(scores.skill[1]), bool(scores.extreme[1])
        (0.803, inf, True)
    """
    multidimensional = len(model.skill_shape(1)) > 1
    if method not in METHODS:
        raise ValueError(f"method={method!r} must be one of {', '.join(METHODS)}")
    if multidimensional and method != "map":
        raise ValueError(f"the {model.name} scores by MAP only, under the fit's skill "
                         f"distribution (method='map'), not {method!r}")
    usable = usable_items(model, items)
    parameters = {name: np.asarray(items[name], np.float64)[usable]
                  for name in model.item_parameters}
    data = dense_matrix(responses, len(usable))
    linear = model.linear_logits(parameters)
    dims = linear[0].shape[1] if multidimensional else None
    prior = (prior if prior is not None else SkillPrior.standard(dims)).checked(dims)
    n = data.shape[0]
    counts, right = np.zeros(n, np.int64), np.zeros(n, np.int64)
    weighted = np.zeros(n) if linear is not None and not multidimensional else None
    for rows in row_blocks(data.shape):
        answers, observed = answers_and_observed(data[rows], rows.start)  # every cell checked
        if not usable.all():
            answers, observed = answers[:, usable], observed[:, usable]
        counts[rows], right[rows] = observed.sum(axis=1), answers.sum(axis=1)
        if weighted is not None:
            weighted[rows] = answers @ linear[0].astype(np.float32)
    extreme = (counts > 0) & ((right == 0) | (right == counts))
    n_items = int(usable.sum())
    shape = (n, dims) if multidimensional else (n,)
    skill, se = np.full(shape, np.nan), np.full(shape, np.inf)
    if method == "ml":
        skill[extreme] = np.where(right[extreme] > 0, np.inf, -np.inf)
    else:
        skill[counts == 0] = prior.mean
        se[counts == 0] = (np.sqrt(np.diag(prior.sd_or_cov)) if multidimensional
                           else prior.sd_or_cov)
    solve = (counts > 0) & ~(extreme & (method == "ml"))
    complete = solve & (counts == n_items) & (weighted is not None)
    if complete.any():
        rows = np.flatnonzero(complete)
        nodes = coarse_grid(parameters, None if method == "ml" else prior)
        table = LinearTable(*linear, nodes[0], nodes[-1])
        evaluate = LinearRows(weighted[rows], table)
        skill[rows], se[rows] = scalar_estimates(evaluate, len(rows), method, prior, parameters)
    for group in groups(np.flatnonzero(solve & ~complete), counts):
        question, answers, mask = gathered(data, usable, group, int(counts[group].max()))
        if multidimensional:
            skill[group], se[group] = vector_map(*linear, question, answers, mask, prior)
            continue
        kind = LinearAnswers if linear is not None else AnsweredRows
        evaluate = kind(model, parameters, question, answers, mask)
        skill[group], se[group] = scalar_estimates(evaluate, len(group), method, prior,
                                                   parameters)
    return Scores(skill, se, extreme, counts, int((~usable).sum()))

