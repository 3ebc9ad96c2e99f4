r"""``cml``: conditional maximum likelihood of the difficulties, then the skills given them.

Given a student's raw score :math:`r`, the Rasch likelihood of their response pattern no
longer involves their skill:

.. math::
    P(y \mid r) = \frac{\prod_j \varepsilon_j^{y_j}}{\gamma_r(\varepsilon)},\qquad
    \varepsilon_j = e^{-b_j},

where :math:`\gamma_r` is the elementary symmetric function of order *r* of the
:math:`\varepsilon_j`. Maximising :math:`\ell_c(b) = -\sum_j s_j b_j - \sum_r n_r\log\gamma_r`
(:math:`s_j` right answers to question *j*, :math:`n_r` students with score *r*) gives
difficulties that are consistent as the number of students grows for a fixed number of
questions, unlike JML's.

**Numerics.** :math:`\gamma_r` overflows double precision at a few hundred questions
(:math:`\gamma_{J/2}` grows like :math:`\binom{J}{J/2}`), so it is computed by the summation
algorithm in log space, :math:`\log\gamma^{(k)}_r = \operatorname{logaddexp}(\log\gamma^{(k-1)}_r,
-b_k + \log\gamma^{(k-1)}_{r-1})`. The conditional probabilities
:math:`\pi_{rj} = P(y_j = 1 \mid r) = \varepsilon_j\gamma^{(j)}_{r-1}/\gamma_r` follow from the
ratios :math:`\gamma_{r-1}/\gamma_r` by :math:`\pi_{rj} = \varepsilon_j \frac{\gamma_{r-1}}{\gamma_r}
(1 - \pi_{r-1,j})` run upward from :math:`\pi_{0j} = 0` while :math:`\pi \le 1/2` and downward
from :math:`\pi_{Jj} = 1` above (each direction is stable where its error factor is below 1).
Pair probabilities use :math:`\sum_r n_r\pi_{r,jk} = (\varepsilon_k A_j - \varepsilon_j A_k) /
(\varepsilon_k - \varepsilon_j)` with :math:`A_j = \sum_r n_r\pi_{rj}` (and, for questions with
equal difficulties, the row-sum identity :math:`\sum_{k\ne j}\pi_{r,jk} = (r-1)\pi_{rj}`).

The two recursions are sequential O(J) loops over vectors of length J: they run on the host in
numpy (on a GPU, kernel launches would dominate them); the matrix work runs on the device.

**Newton.** Gradient :math:`\sum_r n_r\pi_{rj} - s_j`; the information is
:math:`\sum_r n_r \operatorname{Cov}(y \mid r)`, singular along the common shift, which the
centring :math:`\bar b = 0` removes. Steps are halved while :math:`\ell_c` does not increase.
SEs are the square roots of the diagonal of the information's inverse under that constraint.

**Skills** are then ML given the difficulties (``person="ml"``; students with all or no answers
right get :math:`\pm\infty`) or Warm's WLE (``person="wle"``; finite for every score).

**Missing responses.** Students are grouped by their pattern of observed questions and each
group has its own :math:`\gamma` over its questions; with more than ``max_patterns`` patterns
(as with responses missing at random) the fit refuses with a clear error: use ``jml-newton``
or ``mml-em`` there. Students with all or no answers right and questions everybody got right
or wrong carry no information on the other difficulties and are left out, as in eRm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators import _torch
from irtbench.estimators.base import Result, Snapshot, Stopwatch, register
from irtbench.estimators.classical import design as _design
from irtbench.estimators.classical.newton import log_odds_start, skill_newton

if TYPE_CHECKING:
    import torch

#: two difficulties closer than this are treated as equal in the pair-probability identity
TIE = 1e-6


def log_esf(difficulty: np.ndarray) -> np.ndarray:
    r"""Log elementary symmetric functions :math:`\log\gamma_r`, r = 0..J, of
    :math:`\varepsilon_j = e^{-b_j}` by the summation algorithm in log space (numpy float64)."""
    n = difficulty.shape[0]
    log_gamma = np.full(n + 1, -np.inf)
    log_gamma[0] = 0.0
    for k in range(n):
        log_gamma[1 : k + 2] = np.logaddexp(log_gamma[1 : k + 2], log_gamma[: k + 1] - difficulty[k])
    return log_gamma


def conditional_probabilities(difficulty: np.ndarray, log_gamma: np.ndarray) -> np.ndarray:
    r""":math:`\pi_{rj} = P(y_j = 1 \mid \text{score } r)`, shape ``(J + 1, J)`` (numpy)."""
    n = difficulty.shape[0]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        factor = np.exp(log_gamma[:-1] - log_gamma[1:])[:, None] * np.exp(-difficulty)[None, :]
        up, down = np.zeros((n + 1, n)), np.ones((n + 1, n))
        for r in range(1, n + 1):  # stable while pi <= 1/2
            up[r] = factor[r - 1] * (1 - up[r - 1])
        for r in range(n, 0, -1):  # stable while pi >= 1/2
            down[r - 1] = 1 - down[r] / factor[r - 1]
        above = np.maximum.accumulate(up > 0.5, axis=0)
    return np.clip(np.where(above, down, up), 0.0, 1.0)


class _Pattern(NamedTuple):
    questions: torch.Tensor  # long tensor of the observed questions of this pattern
    score_counts: torch.Tensor  # float64 (K + 1,) students with each score


def _patterns(design: _design.Design, max_patterns: int) -> list[_Pattern]:
    """Students grouped by the set of questions they answered, counted by score."""
    import torch

    device = design.scores.device
    if design.observed is None:  # score groups: one pattern
        counts = torch.zeros(design.n_questions + 1, dtype=torch.float64, device=device)
        counts.index_add_(0, design.scores.long(), design.counts)
        return [_Pattern(torch.arange(design.n_questions, device=device), counts)]
    distinct, which = torch.unique(design.observed, dim=0, return_inverse=True)
    if len(distinct) > max_patterns:
        raise ValueError(
            f"cml: the responses have {len(distinct)} distinct patterns of missing answers "
            f"(more than max_patterns={max_patterns}); conditional ML needs one set of "
            "symmetric functions per pattern. Use 'jml-newton' or 'mml-em' for responses "
            "missing at random, or raise max_patterns for a design with few booklets"
        )
    patterns = []
    for index, mask in enumerate(distinct):
        questions = torch.nonzero(mask).flatten()
        scores = design.scores[which == index].long()
        patterns.append(_Pattern(questions, torch.bincount(
            scores, minlength=len(questions) + 1).to(torch.float64)))
    return patterns


def _pattern_information(difficulty: torch.Tensor, pi: torch.Tensor, counts: torch.Tensor,
                         scores: torch.Tensor) -> torch.Tensor:
    r"""The conditional information of one pattern, :math:`\sum_r n_r \operatorname{Cov}(y
    \mid r)`: :math:`\sum_r n_r\pi_{r,jk} - \sum_r n_r\pi_{rj}\pi_{rk}` off the diagonal,
    :math:`A_j - \sum_r n_r\pi_{rj}^2` on it, with the pair sums from the identity of the module
    docstring. ``pi``, ``counts`` and ``scores`` hold the scores that occur (rows with
    :math:`n_r > 0`); built in place to keep the J x J temporaries few."""
    import torch

    eps = torch.exp(-difficulty)
    a = counts @ pi
    diff = eps[None, :] - eps[:, None]  # eps_k - eps_j
    order = torch.sort(difficulty).values
    has_ties = bool(((order[1:] - order[:-1]) < TIE).any())
    if has_ties:
        tied = (difficulty[None, :] - difficulty[:, None]).abs() < TIE
        diff = torch.where(tied, torch.ones_like(diff), diff)
    info = eps[None, :] * a[:, None]
    info.sub_(eps[:, None] * a[None, :]).div_(diff)
    if has_ties:  # equal difficulties: share what the row sum leaves
        row_total = (counts * (scores - 1)) @ pi  # sum_k!=j sum_r n_r pi_{r,jk}
        off = tied & ~torch.eye(len(difficulty), dtype=torch.bool, device=pi.device)
        known = torch.where(tied, torch.zeros_like(info), info).sum(dim=1)
        share = (row_total - known) / off.sum(dim=1).clamp(min=1)
        info = torch.where(off, share[:, None].expand_as(info), info)
        info = 0.5 * (info + info.T)
    info.diagonal().copy_(a)
    return info.addmm_(pi.T, counts[:, None] * pi, alpha=-1.0)


class Conditional(NamedTuple):
    log_likelihood: float
    gradient: torch.Tensor  # d l_c / d b
    information: torch.Tensor  # -Hessian


def conditional_terms(difficulty: torch.Tensor, patterns: list[_Pattern], item_totals: torch.Tensor,
                      *, with_information: bool = True) -> Conditional:
    """The conditional log-likelihood, its gradient and information, summed over patterns."""
    import torch

    n = difficulty.shape[0]
    log_lik = -float(item_totals @ difficulty)
    gradient = -item_totals.clone()
    information = None
    for pattern in patterns:
        whole = len(pattern.questions) == n  # no missing responses: one pattern, every question
        b = difficulty if whole else difficulty[pattern.questions]
        host_b = b.cpu().numpy()
        log_gamma = log_esf(host_b)
        host_counts = pattern.score_counts.cpu().numpy()
        log_lik -= float(host_counts @ log_gamma)
        present = np.flatnonzero(host_counts)  # scores that no student has add nothing
        pi = torch.as_tensor(conditional_probabilities(host_b, log_gamma)[present],
                             device=b.device)
        counts = pattern.score_counts[present]
        gradient[pattern.questions] += counts @ pi
        if with_information:
            scores = torch.as_tensor(present, dtype=pi.dtype, device=pi.device)
            cov = _pattern_information(b, pi, counts, scores)
            if information is None and whole:
                information = cov
                continue
            if information is None:
                information = torch.zeros(n, n, dtype=difficulty.dtype, device=difficulty.device)
            information[pattern.questions[:, None], pattern.questions[None, :]] += cov
    if information is None:
        information = torch.zeros(n, n, dtype=difficulty.dtype, device=difficulty.device)
    return Conditional(log_lik, gradient, information)


def constrained_variances(information: torch.Tensor) -> torch.Tensor:
    r"""Variances of centred estimates: the diagonal of :math:`(I + \mathbf{1}\mathbf{1}^T/J)^{-1}
    - \mathbf{1}\mathbf{1}^T/J` (the pseudo-inverse of an information singular along 1), from
    the Cholesky factor :math:`LL^T` of the positive definite first term:
    :math:`\operatorname{diag}(A^{-1})_j = \sum_i (L^{-1})_{ij}^2`."""
    import torch

    n = information.shape[0]
    factor = torch.linalg.cholesky(information + 1.0 / n)
    eye = torch.eye(n, dtype=information.dtype, device=information.device)
    inverse = torch.linalg.solve_triangular(factor, eye, upper=False)
    return (inverse * inverse).sum(dim=0) - 1.0 / n


def newton_cml(patterns: list[_Pattern], item_totals: torch.Tensor, start: torch.Tensor, *,
               tol: float, max_iter: int,
               snapshot: Callable[[int, torch.Tensor], None] | None = None
               ) -> tuple[torch.Tensor, Conditional, list[float], int, bool, int]:
    """Newton steps on the centred difficulties with step-halving on the conditional
    log-likelihood. Returns ``(difficulty, terms, losses, iterations, converged, halvings)``."""
    import torch

    difficulty = start - start.mean()
    terms = conditional_terms(difficulty, patterns, item_totals)
    n = difficulty.shape[0]
    shift = torch.full((n, n), 1.0 / n, dtype=difficulty.dtype, device=difficulty.device)
    losses = [-terms.log_likelihood]
    halvings, converged, iteration = 0, False, 0
    for iteration in range(1, max_iter + 1):
        step = torch.cholesky_solve(terms.gradient[:, None],
                                    torch.linalg.cholesky(terms.information + shift))[:, 0]
        step = step - step.mean()
        for _ in range(30):
            candidate = conditional_terms(difficulty + step, patterns, item_totals)
            if candidate.log_likelihood >= terms.log_likelihood - 1e-12 * abs(terms.log_likelihood):
                break
            halvings += 1
            step = step / 2
        difficulty, terms = difficulty + step, candidate
        losses.append(-terms.log_likelihood)
        if snapshot is not None:
            snapshot(iteration, difficulty)
        if float(step.abs().max()) < tol:
            converged = True
            break
    return difficulty, terms, losses, iteration, converged, halvings


@register
class ConditionalML(_torch.TorchEstimator):
    """Conditional maximum likelihood (CML) of the difficulties; skills by ML or WLE given them.

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(500, 20, seed=0)
        >>> fit = irtbench.fit(data.responses, "cml", device="cpu")
        >>> fit.diagnostics["converged"], abs(float(fit.difficulty.mean())) < 1e-12
        (True, True)
    """

    name = "cml"
    colour = 0
    objective = "conditional"
    infinite_extremes = True
    memory_model = (1.0, 2.0, 150e6)  # as jml-newton
    summary = "conditional ML of difficulties (log-space ESFs, Newton), skills by ML/WLE"
    spec = {
        "tol": option.positive(1e-6, "stop when the largest Newton step is below this (logits;"
                                " the error left is about its square)"),
        "max_iter": option.positive_int(100, "cap on Newton iterations"),
        "person": option.choice("ml", "the skills: 'ml' (extreme students +/-inf) or 'wle' "
                                 "(Warm, finite for all)", "ml", "wle"),
        "max_patterns": option.positive_int(100, "most distinct patterns of missing responses"),
        "device": option.DEVICE,
    }
    # warm-up: a whole fit (0.4 s at 10^7), so that the next meets the same J x J buffers

    def run(self, state: _torch.TorchState) -> Result:

        options, device = state.options, state.torch_device
        person = str(options["person"])
        found = state.found
        design = _design.build_design(state.responses, found, device)
        everyone = person == "wle"  # WLE is finite for the extreme students too
        people = (_design.build_design(state.responses, found, device,
                                       students=np.ones(len(found.students), dtype=bool))
                  if everyone else design)
        clock = Stopwatch()
        patterns = _patterns(design, int(options["max_patterns"]))
        _, start = log_odds_start(design)
        trace: list[Snapshot] = []

        def record(iteration: int, difficulty: torch.Tensor) -> None:
            def values(difficulty: torch.Tensor = difficulty.clone()) -> tuple[np.ndarray, np.ndarray]:
                skill = skill_newton(people, difficulty, method=person)[0]
                return _design.expand(found, people, skill, difficulty, everyone=everyone)

            trace.append(Snapshot(iteration, values))

        difficulty, terms, losses, n_iter, converged, halvings = newton_cml(
            patterns, design.item_totals, start, tol=float(options["tol"]),
            max_iter=int(options["max_iter"]), snapshot=record)
        difficulty_se = constrained_variances(terms.information).sqrt()
        skill, info, _ = skill_newton(people, difficulty, method=person)
        _torch.synchronize(device)
        compute_seconds = clock.stop()
        skill_host, difficulty_host = _design.expand(found, people, skill, difficulty,
                                                     everyone=everyone)
        skill_se, difficulty_se = _design.expand_se(found, people, info, difficulty_se,
                                                    everyone=everyone)
        return Result(skill_host, difficulty_host, skill_se, difficulty_se,
                      np.asarray(losses, dtype=np.float64), n_iter, compute_seconds,
                      {"converged": converged, "halvings": halvings,
                       "grad_norm": float(terms.gradient.norm())}, trace)
