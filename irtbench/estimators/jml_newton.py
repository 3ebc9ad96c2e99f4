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
:func:`irtbench.model.extremes`) are removed before estimation; their estimates are
:math:`\pm\infty` (skill :math:`+\infty` for all right, difficulty :math:`-\infty` for a question
everybody got right) and their SEs ``inf``. With no missing responses, students with the same
raw score share their estimate and are fitted once (see :mod:`._newton`).

**Bias correction.** JML difficulties are spread out by about :math:`J/(J-1)` (Wright & Douglas,
1977); ``correction=True`` multiplies the centred difficulties by :math:`(J-1)/J` (J = mean
number of responses per student) and re-estimates the skills by ML given them.

SEs are :math:`1/\sqrt{I}` from the information at the estimate.

**Sparse triples** (:class:`~irtbench.data.SparseResponses`) are fitted directly: each pass
gathers :math:`\theta_i - b_j` for the observed responses and scatter-adds the sums
(``index_add_``), so time and memory grow with the observed responses, not the cells.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irtbench.estimators import _newton, _torch
from irtbench.estimators.base import Fit, RunResult, register


def _centre(skill: Any, difficulty: Any) -> tuple[Any, Any]:
    shift = difficulty.mean()
    return skill - shift, difficulty - shift


def newton_jml(design: _newton.Design, *, tol: float, max_iter: int, n_observed: float,
               trace: list | None = None) -> tuple[Any, Any, _newton.Moments, list[float], int,
                                                    bool, int]:
    """Alternating Newton steps until the largest step is below ``tol``.

    Returns ``(skill, difficulty, moments, losses, iterations, converged, halvings)``, skills
    per group; ``moments`` at the final estimate; ``losses`` the negative log-likelihood per
    iteration divided by ``n_observed`` (all observed responses, extreme ones included: the
    reference objective, whose extreme terms vanish in the limit); snapshots appended to
    ``trace`` when given.
    """
    skill, difficulty = _newton.log_odds_start(design)
    moments = design.moments(skill, difficulty)
    losses: list[float] = []
    halvings, converged, iteration = 0, False, 0
    for iteration in range(1, max_iter + 1):
        # skills given difficulties
        gradient = design.scores - moments.row_p
        skill, step, moments, halved = _newton.newton_block(
            skill, gradient, gradient / moments.row_w,
            lambda s, d=difficulty: design.moments(s, d),
            lambda m: design.scores - m.row_p, tol)
        largest = step.abs().max()
        # difficulties given skills
        gradient = moments.col_p - design.item_totals
        difficulty, step, moments, halved_too = _newton.newton_block(
            difficulty, gradient, gradient / moments.col_w,
            lambda d, s=skill: design.moments(s, d, with_softplus=True),
            lambda m: m.col_p - design.item_totals, tol)
        halvings += halved + halved_too
        losses.append((design.negative_log_likelihood(skill, moments)
                       + float(design.item_totals @ difficulty)) / n_observed)
        skill, difficulty = _centre(skill, difficulty)
        largest = max(float(largest), float(step.abs().max()))
        if trace is not None:
            trace.append((iteration, skill.clone(), difficulty.clone()))
        if largest < tol:
            converged = True
            break
    return skill, difficulty, moments, losses, iteration, converged, halvings


@register
class JmlNewton(_newton.ClassicalEstimator):
    """Joint maximum likelihood by alternating Newton–Raphson steps (classical JMLE).

    Options:
        tol: stop when the largest parameter step is below this (1e-6 logits).
        max_iter: cap on iterations (500).
        correction: multiply the difficulties by (J-1)/J (Wright–Douglas) and refit the skills.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(500, 40, seed=0)
        >>> fit = irtbench.fit(data.responses, "jml-newton", device="cpu")
        >>> fit.diagnostics["converged"], fit.n_iter < 100
        (True, True)
    """

    name = "jml-newton"
    memory_model = (6.0, 5.0, 150e6)  # float32 answers, bool mask, float64 blocks
    summary = "JML by alternating Newton-Raphson to convergence (classical JMLE, float64)"
    defaults = {"tol": 1e-6, "max_iter": 500, "correction": False, "device": "auto"}
    solves_reference_objective = True
    accepts_sparse = True

    def minimises_reference_objective(self) -> bool:
        return not self.options.get("correction", False)  # corrected: deliberately elsewhere

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        if not isinstance(options["correction"], bool):
            raise ValueError(f"option correction={options['correction']!r} must be True or False")

    def run(self, problem: _newton.Problem) -> RunResult:
        import torch

        options = problem.options
        if problem.shape is not None:  # sparse triples
            reduced = _newton.drop_sparse_extremes(*problem.y, problem.shape)
            design = _newton.sparse_design(reduced)
            n_observed = len(problem.y[2])
        else:
            reduced = _newton.drop_extremes(problem.y, problem.observed)
            design = _newton.build_design(reduced.y, reduced.observed)
            n_observed = problem.y.numel() if problem.observed is None else problem.observed.sum()
        trace: list = []
        skill, difficulty, moments, losses, n_iter, converged, halvings = newton_jml(
            design, tol=options["tol"], max_iter=options["max_iter"],
            n_observed=float(n_observed), trace=trace)
        skill_info = moments.row_w
        if options["correction"]:
            mean_length = float(design.counts @ design.row_counts() / design.counts.sum())
            difficulty = difficulty * (mean_length - 1) / mean_length
            for _ in range(100):  # ML skills given the corrected difficulties
                moments = design.moments(skill, difficulty)
                step = (design.scores - moments.row_p) / moments.row_w
                skill = skill + step.clamp(-2.0, 2.0)
                if float(step.abs().max()) < options["tol"]:
                    break
            moments = design.moments(skill, difficulty)
            skill_info = moments.row_w
        _torch.synchronize(problem.device)
        return RunResult(
            skill, difficulty, torch.tensor(losses, dtype=torch.float64), n_iter,
            skill_se=skill_info.rsqrt(), difficulty_se=moments.col_w.rsqrt(),
            diagnostics={"converged": converged, "halvings": halvings,
                         "design": design, "reduced": reduced},
            trace=trace,
        )

    def finish(self, responses: np.ndarray, options: dict[str, Any], problem: _newton.Problem,
               result: RunResult, seconds: float, compile_seconds: float) -> Fit:
        """Group estimates back to students, extremes back in place as +/-inf."""
        return super().finish(responses, options, problem, expand_result(responses, result),
                              seconds, compile_seconds)


def expand_result(responses: np.ndarray, result: RunResult) -> RunResult:
    """A run's per-group estimates, SEs and snapshots as per-student arrays with the extreme
    students and questions back in place (estimates +/-inf, SEs inf); ``result.diagnostics``
    carries the ``design`` and ``reduced`` the run used (removed here)."""
    diagnostics = dict(result.diagnostics or {})
    design, reduced = diagnostics.pop("design"), diagnostics.pop("reduced")

    def full(skill: Any, difficulty: Any) -> tuple[np.ndarray, np.ndarray]:
        return _newton.expand_parameters(reduced, responses, design.expand(skill),
                                         difficulty.detach().cpu().numpy().astype(np.float64))

    skill, difficulty = full(result.skill, result.difficulty)
    skill_se, difficulty_se = full(result.skill_se, result.difficulty_se)
    skill_se[~reduced.students] = np.inf
    difficulty_se[~reduced.questions] = np.inf
    trace = [(k, *full(s, d)) for k, s, d in result.trace or ()]
    return result._replace(skill=skill, difficulty=difficulty, skill_se=skill_se,
                           difficulty_se=difficulty_se, trace=trace, diagnostics=diagnostics)


def reference_optimum(responses: np.ndarray, *, tol: float = 1e-9) -> Fit:
    """The exact minimiser of the reference objective (torch-adam's, any ``alpha > 0``): the
    JML estimate with centred difficulties, on the CPU in float64 (extremes at +/-inf)."""
    return JmlNewton(tol=tol, max_iter=1000, device="cpu").fit(responses)
