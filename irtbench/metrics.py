r"""Parameter-recovery metrics: scale alignment, error summaries, and the Cramér–Rao bound.

The Rasch likelihood depends on :math:`\theta_i - b_j` only, so estimates are identified up to
a common shift. Every comparison with the truth first *aligns* both sides: subtract the mean
difficulty from the difficulties and from the skills (the estimate with its own mean, the truth
with its own).

Students (questions) whose observed responses are all right or all wrong have no finite
maximum-likelihood estimate. They are counted (``n_extreme``, ``n_extreme_questions``) and left
out of the skill (difficulty) metrics; ``rmse_skill_all`` keeps them, as estimated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from irtbench.model import extremes, information, sigmoid
from irtbench.responses import Responses, answers_of, is_sparse, observed_of, row_blocks
from irtbench.twopl import Alignment, affine_alignment, item_bounds

if TYPE_CHECKING:
    from irtbench.estimators.base import Fit
    from irtbench.simulate import Dataset

__all__ = ["align", "aligned_errors", "aligned_errors_2pl", "cramer_rao_bound", "recovery",
           "recovery_2pl",
           "trace_rmse",
           "reference_gradient", "optimum_gap", "RECOVERY_METRICS"]

#: z-value of a two-sided 95% normal interval, used for coverage.
Z95 = 1.959963984540054

RECOVERY_METRICS = (
    "rmse_skill",
    "rmse_skill_all",
    "rmse_difficulty",
    "bias_skill",
    "bias_difficulty",
    "scale_skill",
    "scale_difficulty",
    "corr_skill",
    "corr_difficulty",
    "crb_skill",
    "crb_difficulty",
    "crb_ratio_skill",
    "crb_ratio_difficulty",
    "n_extreme",
    "n_extreme_questions",
    "coverage_skill",
    "coverage_difficulty",
    # the 2PL's discriminations (NaN under the Rasch model)
    "rmse_discrimination",
    "bias_discrimination",
    "corr_discrimination",
    "crb_discrimination",
    "crb_ratio_discrimination",
    "coverage_discrimination",
)


def align(
    skill: np.ndarray, difficulty: np.ndarray, questions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Shift skills and difficulties so that the mean difficulty is zero.

    .. math:: \tilde b_j = b_j - \bar b,\qquad \tilde\theta_i = \theta_i - \bar b

    Args:
        skill, difficulty: parameters on any origin.
        questions: optional boolean mask of the questions whose mean defines the origin
            (by default all); used to leave out questions with no finite estimate.

    Returns:
        The shifted ``(skill, difficulty)`` as new float64 arrays.
    """
    skill = np.asarray(skill, dtype=np.float64)
    difficulty = np.asarray(difficulty, dtype=np.float64)
    origin = difficulty[questions].mean() if questions is not None else difficulty.mean()
    return skill - origin, difficulty - origin


def cramer_rao_bound(
    responses: Responses, skill: np.ndarray, difficulty: np.ndarray
) -> tuple[float, float]:
    r"""Root-mean Cramér–Rao bounds for skills and difficulties at the true parameters.

    .. math::
        \mathrm{CRB}_\theta = \sqrt{\operatorname{mean}_i 1/I(\theta_i)},\qquad
        \mathrm{CRB}_b = \sqrt{\operatorname{mean}_j 1/I(b_j)}

    with :math:`I` from :func:`irtbench.model.information` over the observed responses; the
    means run over non-extreme students and questions. An unbiased estimator's RMSE cannot be
    below it (for each parameter with the others known), so ``rmse / crb`` near 1 means the
    estimator extracts all the information the data hold.
    """
    info_skill, info_difficulty = information(responses, skill, difficulty)
    extreme_students, extreme_questions = extremes(responses)
    return (
        float(np.sqrt(np.mean(1.0 / info_skill[~extreme_students]))),
        float(np.sqrt(np.mean(1.0 / info_difficulty[~extreme_questions]))),
    )


def _summary(estimate: np.ndarray, truth: np.ndarray, se: np.ndarray | None) -> dict[str, float]:
    if estimate.size == 0:
        return dict.fromkeys(("rmse", "bias", "scale", "corr", "coverage"), float("nan"))
    error = estimate - truth
    centred_truth = truth - truth.mean()
    spread = float(centred_truth @ centred_truth)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = float(centred_truth @ (estimate - estimate.mean()) / spread)
        corr = float(np.corrcoef(estimate, truth)[0, 1]) if estimate.size > 1 else float("nan")
    coverage = float(np.mean(np.abs(error) <= Z95 * se)) if se is not None else float("nan")
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "bias": float(np.mean(error)),
        "scale": scale,
        "corr": corr,
        "coverage": coverage,
    }


def aligned_errors(
    skill: np.ndarray,
    difficulty: np.ndarray,
    data: Dataset,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Errors (estimate - truth) of every skill and difficulty after aligning both sides on the
    non-extreme questions; ``masks`` = ``extremes(data.responses)``, computed when not given."""
    _, extreme_questions = masks if masks is not None else extremes(data.responses)
    est_skill, est_difficulty = align(skill, difficulty, ~extreme_questions)
    true_skill, true_difficulty = align(data.skill, data.difficulty, ~extreme_questions)
    return est_skill - true_skill, est_difficulty - true_difficulty


def aligned_errors_2pl(fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors (estimate - truth) of every skill, difficulty and discrimination of a 2PL fit
    after the affine alignment of :func:`recovery_2pl` (fitted on the questions with finite
    estimates that ``masks`` does not flag)."""
    alignment, _ = _alignment_2pl(fit, data, masks[1])
    with np.errstate(invalid="ignore"):
        return (alignment.skill(fit.skill) - data.skill,
                alignment.difficulty(fit.difficulty) - data.difficulty,
                alignment.discrimination(fit.discrimination) - data.discrimination)


def _alignment_2pl(fit: Fit, data: Dataset, extreme_questions: np.ndarray
                   ) -> tuple[Alignment, np.ndarray]:
    """The affine alignment of a 2PL fit onto the truth and the questions it was fitted on."""
    if fit.discrimination is None:
        raise ValueError(f"the data are 2PL but the fit ({fit.estimator}, model={fit.model!r}) "
                         "has no discriminations: fit it with model='2pl'")
    keep = ~extreme_questions & np.isfinite(fit.difficulty) & np.isfinite(fit.discrimination)
    keep &= fit.discrimination > 0
    return affine_alignment(fit.difficulty[keep], data.difficulty[keep],
                            fit.discrimination[keep], data.discrimination[keep]), keep


def trace_rmse(
    skill: np.ndarray,
    difficulty: np.ndarray,
    data: Dataset,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, float]:
    """Aligned RMSE of skills (non-extreme students) and difficulties (non-extreme questions),
    as in :func:`recovery`, for one snapshot along a fit."""
    masks = masks if masks is not None else extremes(data.responses)
    skill_error, difficulty_error = aligned_errors(skill, difficulty, data, masks)
    extreme_students, extreme_questions = masks
    return (float(np.sqrt(np.mean(skill_error[~extreme_students] ** 2))),
            float(np.sqrt(np.mean(difficulty_error[~extreme_questions] ** 2))))


def recovery(fit: Fit, data: Dataset) -> dict[str, float]:
    """Compare a fit with the parameters that generated the data (the 2PL:
    :func:`recovery_2pl`).

    Returns a dict with, for ``skill`` and ``difficulty``:

    * ``rmse_*``, ``bias_*`` (mean signed error), ``corr_*`` (Pearson) of the aligned
      estimates against the aligned truth. ``bias_difficulty`` is 0 by construction of the
      alignment (unless extreme questions are left out); JML's outward bias shows in
    * ``scale_*``: the least-squares slope of estimate on truth (1 = no shrinkage or spread);
    * ``crb_*``: the root-mean Cramér–Rao bound and ``crb_ratio_*`` = rmse / crb;
    * ``coverage_*``: fraction of true values inside estimate +/- 1.96 SE (NaN without SEs);
    * ``n_extreme`` (students) and ``n_extreme_questions``, left out of the metrics above;
      ``rmse_skill_all`` includes the extreme students as estimated.
    """
    if data.model == "2pl":
        return recovery_2pl(fit, data)
    responses = data.responses
    extreme_students, extreme_questions = extremes(responses)
    finite_questions = ~extreme_questions
    est_skill, est_difficulty = align(fit.skill, fit.difficulty, finite_questions)
    true_skill, true_difficulty = align(data.skill, data.difficulty, finite_questions)
    crb_skill, crb_difficulty = cramer_rao_bound(responses, data.skill, data.difficulty)

    students = ~extreme_students
    skill_se = fit.skill_se[students] if fit.skill_se is not None else None
    difficulty_se = fit.difficulty_se[finite_questions] if fit.difficulty_se is not None else None
    skill = _summary(est_skill[students], true_skill[students], skill_se)
    difficulty = _summary(
        est_difficulty[finite_questions], true_difficulty[finite_questions], difficulty_se
    )
    return _recovery_row({"skill": skill, "difficulty": difficulty},
                         {"skill": crb_skill, "difficulty": crb_difficulty},
                         est_skill - true_skill, (extreme_students, extreme_questions))


def _recovery_row(parts: dict[str, dict[str, float]], bounds: dict[str, float],
                  skill_errors: np.ndarray, masks: tuple[np.ndarray, np.ndarray]
                  ) -> dict[str, float]:
    """The :data:`RECOVERY_METRICS` of a fit from each part's summary (``rmse``, ``bias``, ...
    of ``"skill"``, ``"difficulty"``, ...), each bounded part's root-mean Cramér–Rao bound and
    ``crb_ratio`` = rmse / bound, ``rmse_skill_all`` from every student's aligned error, and the
    counts of extreme students and questions; NaN for metrics that do not apply."""
    metrics = {f"{name}_{part}": value for part, summary in parts.items()
               for name, value in summary.items()}
    with np.errstate(invalid="ignore", over="ignore"):
        metrics["rmse_skill_all"] = float(np.sqrt(np.mean(skill_errors**2)))
    for part, bound in bounds.items():
        metrics[f"crb_{part}"] = bound
        metrics[f"crb_ratio_{part}"] = metrics[f"rmse_{part}"] / bound
    metrics.update(n_extreme=int(masks[0].sum()), n_extreme_questions=int(masks[1].sum()))
    return {name: metrics.get(name, float("nan")) for name in RECOVERY_METRICS}


def recovery_2pl(fit: Fit, data: Dataset) -> dict[str, float]:
    r""":func:`recovery` under the 2PL, whose scale the likelihood does not fix
    (:math:`\theta \to s\theta + t`, :math:`b \to sb + t`, :math:`a \to a/s`): the estimates
    are first mapped onto the truth's scale by the best affine alignment of the item parameters
    (:func:`irtbench.twopl.affine_alignment`; for marginal fits on the N(0, 1) scale it is close
    to the identity), then summarised as under the Rasch model, discriminations included
    (their SEs scaled by :math:`1/s`, the difficulties' by :math:`s`). ``crb_difficulty`` and
    ``crb_discrimination`` are root-mean Cramér–Rao bounds from the marginal Fisher information
    at the truth (:func:`irtbench.twopl.item_bounds`: skills N(0, 1), all items together),
    projected as the alignment projects the errors (it removes the common shift and stretch
    that the sample of skills puts on every item), and ``crb_ratio_*`` = rmse / crb. Skills
    have no such bound here (EAP and JML skills are different targets): ``crb_skill`` is NaN. Questions with no finite estimate are left out
    and counted, as are the extreme students (from the skill metrics)."""
    extreme_students, extreme_questions = extremes(data.responses)
    alignment, keep = _alignment_2pl(fit, data, extreme_questions)
    crb_a, crb_b = item_bounds(data.discrimination, data.difficulty, data.shape[0],
                               aligned=keep)
    students = ~extreme_students

    def scaled(se: np.ndarray | None, factor: float, mask: np.ndarray) -> np.ndarray | None:
        return None if se is None else se[mask] * factor

    parts = {
        "skill": _summary(alignment.skill(fit.skill[students]), data.skill[students],
                          scaled(fit.skill_se, alignment.scale, students)),
        "difficulty": _summary(alignment.difficulty(fit.difficulty[keep]), data.difficulty[keep],
                               scaled(fit.difficulty_se, alignment.scale, keep)),
        "discrimination": _summary(alignment.discrimination(fit.discrimination[keep]),
                                   data.discrimination[keep],
                                   scaled(fit.discrimination_se, 1.0 / alignment.scale, keep)),
    }
    bounds = {"difficulty": float(np.sqrt(np.mean(crb_b[keep] ** 2))),
              "discrimination": float(np.sqrt(np.mean(crb_a[keep] ** 2)))}
    return _recovery_row(parts, bounds, alignment.skill(fit.skill) - data.skill,
                         (extreme_students, extreme_questions))


def reference_gradient(responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
                       alpha: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of the reference objective :math:`-\ell/N + \alpha\bar b^2` (torch-adam's),
    in float64, computed a block of rows at a time (the numpy implementation of the objective):

    .. math::
        \frac{\partial}{\partial\theta_i} = \frac{1}{N}\sum_{j\ \mathrm{obs}} (p_{ij} - y_{ij}),
        \qquad
        \frac{\partial}{\partial b_j} = -\frac{1}{N}\sum_{i\ \mathrm{obs}} (p_{ij} - y_{ij})
        + \frac{2\alpha\bar b}{J}

    Parameters at :math:`\pm\infty` (the JML estimates of extreme students and questions) are
    limits: their terms vanish and they are left out of :math:`\bar b` and of the gradient
    (their entries are 0).
    """
    skill, difficulty = np.asarray(skill, np.float64), np.asarray(difficulty, np.float64)
    finite_skill, finite_difficulty = np.isfinite(skill), np.isfinite(difficulty)
    grad_skill, grad_difficulty = np.zeros_like(skill), np.zeros_like(difficulty)
    n_observed = 0
    if is_sparse(responses):
        with np.errstate(invalid="ignore"):
            residual = (sigmoid(skill[responses.student] - difficulty[responses.question])
                        - responses.response)
        residual = np.where(np.isnan(residual), 0.0, residual)
        grad_skill += np.bincount(responses.student, residual, len(skill))
        grad_difficulty -= np.bincount(responses.question, residual, len(difficulty))
        n_observed = responses.n_observed
    for rows in [] if is_sparse(responses) else row_blocks(responses.shape):
        block = responses[rows]
        observed = observed_of(block)
        with np.errstate(invalid="ignore"):
            residual = sigmoid(skill[rows, None] - difficulty[None, :]) - answers_of(block, np.float64)
        n_observed += int(observed.sum())
        residual = np.where(observed & ~np.isnan(residual), residual, 0.0)  # missing, inf - inf
        grad_skill[rows] = residual.sum(axis=1)
        grad_difficulty -= residual.sum(axis=0)
    penalty = 2 * alpha * difficulty[finite_difficulty].mean() / finite_difficulty.sum()
    grad_skill /= n_observed
    grad_difficulty = grad_difficulty / n_observed + penalty
    grad_skill[~finite_skill], grad_difficulty[~finite_difficulty] = 0.0, 0.0
    return grad_skill, grad_difficulty


def optimum_gap(
    skill: np.ndarray,
    difficulty: np.ndarray,
    optimum_skill: np.ndarray,
    optimum_difficulty: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray],
) -> tuple[float, float]:
    """``(max, rms)`` distance between a fit and the exact optimum of the reference objective,
    both aligned on the non-extreme questions, over the non-extreme students and questions
    (``masks`` = :func:`irtbench.model.extremes`), skills and difficulties together."""
    extreme_students, extreme_questions = masks
    keep = ~extreme_questions
    est_skill, est_difficulty = align(skill, difficulty, keep)
    opt_skill, opt_difficulty = align(optimum_skill, optimum_difficulty, keep)
    with np.errstate(invalid="ignore"):  # inf - inf at extremes, left out below
        gaps = np.concatenate([(est_skill - opt_skill)[~extreme_students],
                               (est_difficulty - opt_difficulty)[keep]])
    if gaps.size == 0:
        return float("nan"), float("nan")
    return float(np.abs(gaps).max()), float(np.sqrt(np.mean(gaps**2)))
