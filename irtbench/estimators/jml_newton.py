r"""``jml-newton``: joint maximum likelihood by Newton–Raphson, the classical JMLE.

The same likelihood as the reference (:mod:`~irtbench.estimators.torch_adam`), solved to
convergence. Given the difficulties, the skills are independent one-dimensional problems, and
given the skills so are the difficulties (the Hessian blocks are diagonal), so each iteration
takes one exact Newton step for every skill, then one for every difficulty (block Gauss–Seidel):

.. math::
    \theta_i \leftarrow \theta_i + \frac{r_i - \sum_j p_{ij}}{\sum_j p_{ij}(1-p_{ij})},\qquad
    b_j \leftarrow b_j + \frac{\sum_i p_{ij} - s_j}{\sum_i p_{ij}(1-p_{ij})}

over observed responses, then centres the difficulties (:math:`\bar b = 0`). A step whose
parameter's gradient grows is halved (step-halving); the fit stops when the largest step is
below ``tol`` or after ``max_iter`` iterations. It starts from the log-odds of the raw scores.

**Why this is also the exact optimum of the reference objective.** The reference minimises
:math:`-\ell(\theta, b)/N + \alpha \bar b^2`. The likelihood is unchanged by a common shift, so
any point can be shifted to :math:`\bar b = 0` without changing :math:`\ell` while zeroing the
penalty: the minimiser is the JML estimate with centred difficulties, for every
:math:`\alpha > 0`. :func:`reference_optimum` is that point, used by the harness to measure how
far the iterative fits stop from it.

**Extremes.** Students and questions with all responses right or all wrong (found repeatedly,
:func:`irtbench.models.find_extremes`, in the timed load) are removed before estimation; their estimates are
:math:`\pm\infty` (skill :math:`+\infty` for all right, difficulty :math:`-\infty` for a question
everybody got right) and their SEs ``inf``. With no missing responses, students with the same
raw score share their estimate and are fitted once (see
:mod:`irtbench.estimators.classical.design`).

**Bias correction.** JML difficulties are spread out by about :math:`J/(J-1)` (Wright & Douglas,
1977); ``correction=True`` multiplies the centred difficulties by :math:`(J-1)/J` (J = mean
number of responses per student) and re-estimates the skills by ML given them.

SEs are :math:`1/\sqrt{I}` from the information at the estimate.

**Sparse triples** (:class:`~irtbench.responses.SparseResponses`) are fitted directly: each pass
gathers :math:`\theta_i - b_j` for the observed responses and scatter-adds the sums
(``index_add_``), so time and memory grow with the observed responses, not the cells.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from irtbench.estimators import options as option
from irtbench.estimators import _torch
from irtbench.estimators.base import Fit, Result, Snapshot, Stopwatch, host, register
from irtbench.estimators.classical import design as _design
from irtbench.estimators.classical.newton import log_odds_start, newton_block, skill_newton
from irtbench.models import Extremes

if TYPE_CHECKING:
    import torch


def _centre(skill: torch.Tensor, difficulty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shift = difficulty.mean()
    return skill - shift, difficulty - shift


def newton_jml(design: _design.AnyDesign, *, tol: float, max_iter: int, n_observed: float,
               snapshot: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, _design.Moments, list[float], int, bool, int]:
    """Alternating Newton steps until the largest step is below ``tol``.

    Returns ``(skill, difficulty, moments, losses, iterations, converged, halvings)``, skills
    per group; ``moments`` at the final estimate; ``losses`` the negative log-likelihood per
    iteration divided by ``n_observed`` (all observed responses, extreme ones included: the
    reference objective, whose extreme terms vanish in the limit); ``snapshot(iteration, skill,
    difficulty)`` is called after each iteration when given.
    """
    skill, difficulty = log_odds_start(design)
    moments = design.moments(skill, difficulty)
    losses: list[float] = []
    halvings, converged, iteration = 0, False, 0
    for iteration in range(1, max_iter + 1):
        # skills given difficulties
        gradient = design.scores - moments.row_p
        skill, step, moments, halved = newton_block(
            skill, gradient, gradient / moments.row_w,
            lambda s, d=difficulty: design.moments(s, d),
            lambda m: design.scores - m.row_p, tol)
        largest = step.abs().max()
        # difficulties given skills
        gradient = moments.col_p - design.item_totals
        difficulty, step, moments, halved_too = newton_block(
            difficulty, gradient, gradient / moments.col_w,
            lambda d, s=skill: design.moments(s, d, with_softplus=True),
            lambda m: m.col_p - design.item_totals, tol)
        halvings += halved + halved_too
        losses.append((design.negative_log_likelihood(skill, moments)
                       + float(design.item_totals @ difficulty)) / n_observed)
        skill, difficulty = _centre(skill, difficulty)
        largest = max(float(largest), float(step.abs().max()))
        if snapshot is not None:
            snapshot(iteration, skill, difficulty)
        if largest < tol:
            converged = True
            break
    return skill, difficulty, moments, losses, iteration, converged, halvings


def snapshots_of(found: Extremes, design: _design.AnyDesign, *, everyone: bool = False
                 ) -> tuple[list[Snapshot], Callable[[int, torch.Tensor, torch.Tensor], None]]:
    """A trace to fill and the function that records a snapshot of per-group skills and kept
    difficulties in it (device copies now, per-student host arrays after the clock)."""
    trace: list[Snapshot] = []

    def record(iteration: int, skill: torch.Tensor, difficulty: torch.Tensor) -> None:
        skill, difficulty = skill.clone(), difficulty.clone()
        trace.append(Snapshot(iteration, lambda: _design.expand(found, design, skill, difficulty,
                                                                everyone=everyone)))

    return trace, record


@register
class JmlNewton(_torch.TorchEstimator):
    """Joint maximum likelihood by alternating Newton–Raphson steps (classical JMLE).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(500, 40, seed=0)
        >>> fit = irtbench.fit(data.responses, "jml-newton", device="cpu")
        >>> fit.diagnostics["converged"], fit.n_iter < 100
        (True, True)
    """

    name = "jml-newton"
    colour = 5
    objective = "joint"
    infinite_extremes = True
    memory_model = (1.0, 2.0, 150e6)  # float32 blocks of the extremes' pass; a bool mask if missing
    summary = "JML by alternating Newton-Raphson to convergence (classical JMLE, float64)"
    spec = {
        "tol": option.positive(1e-6, "stop when the largest parameter step is below this"),
        "max_iter": option.positive_int(500, "cap on iterations"),
        "correction": option.flag(False, "multiply the difficulties by (J-1)/J "
                                   "(Wright-Douglas) and refit the skills"),
        "device": option.DEVICE,
    }
    warm_up_options = {"max_iter": 2}
    solves_reference_objective = True
    accepts_sparse = True

    def minimises_reference_objective(self) -> bool:
        return not self.options.get("correction", False)  # corrected: deliberately elsewhere

    def run(self, state: _torch.TorchState) -> Result:
        options = state.options
        found = state.found
        design = _design.build_design(state.responses, found, state.torch_device)
        clock = Stopwatch()
        trace, record = snapshots_of(found, design)
        skill, difficulty, moments, losses, n_iter, converged, halvings = newton_jml(
            design, tol=float(options["tol"]), max_iter=int(options["max_iter"]),
            n_observed=float(state.n_observed), snapshot=record)
        skill_info = moments.row_w
        if options["correction"]:
            mean_length = float(design.counts @ design.row_counts() / design.counts.sum())
            difficulty = difficulty * (mean_length - 1) / mean_length
            skill, skill_info, _ = skill_newton(design, difficulty, start=skill,
                                                tol=float(options["tol"]))
            moments = design.moments(skill, difficulty)
        _torch.synchronize(state.torch_device)
        compute_seconds = clock.stop()
        skill_host, difficulty_host = _design.expand(found, design, skill, difficulty)
        skill_se, difficulty_se = _design.expand_se(found, design, skill_info,
                                                    moments.col_w.rsqrt())
        return Result(skill_host, difficulty_host, skill_se, difficulty_se, host(losses), n_iter,
                      compute_seconds, {"converged": converged, "halvings": halvings}, trace)


def reference_optimum(responses: object, *, tol: float = 1e-9) -> Fit:
    """The exact minimiser of the reference objective (torch-adam's, any ``alpha > 0``): the
    JML estimate with centred difficulties, on the CPU in float64 (extremes at +/-inf)."""
    return JmlNewton(tol=tol, max_iter=1000, device="cpu").fit(responses)
