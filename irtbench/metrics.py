r"""Parameter-recovery metrics: alignment, error summaries, and the Cramér–Rao bound, for every
model (:mod:`irtbench.models`) by looping over its parameters.

Every model's likelihood is unchanged by a map of the latent scale (the Rasch model: a shift;
the 2PL, 3PL and 4PL: an affine map; the M2PL: any invertible affine map of the skills), so every comparison with the truth first maps the estimate
onto the truth's scale by the model's :meth:`~irtbench.models.base.Model.align` (the Rasch
model: the shift that gives both the same mean difficulty), fitted on the questions with
finite estimates, and compares each part (``skill`` and each item parameter) after it.

A multidimensional model (the M2PL: skills ``(n, D)``, loadings ``(J, D)``) aligns through its
own :meth:`~irtbench.models.base.Model.alignment` (whitened skills, then a rotation of the
loadings), and its two-dimensional parts are summarised over all their entries (``rmse_skill``
over every student's every coordinate, ``corr_loadings`` the correlation of all the aligned
loadings with the true ones).

**Held-out log-likelihood** (:func:`held_out_log_likelihood`): the mean log-likelihood per
held-out observed response under any model's probabilities (:func:`predict`, which
:mod:`irtbench.compare` predicts its folds with), clipped to :math:`[\varepsilon, 1 -
\varepsilon]`, :data:`EPS`.

Students (questions) whose observed responses are all right or all wrong have no finite
maximum-likelihood estimate. They are counted (``n_extreme``, ``n_extreme_questions``) and left
out of the skill (difficulty) metrics; ``rmse_skill_all`` keeps them, as estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from irtbench.models import ITEM_PARAMETERS, Model, extremes, get_model, sigmoid
from irtbench.models.base import Z95, Aligner  # Z95: the 95% interval's z, for coverage
from irtbench.models.rasch import root_mean_bounds
from irtbench.responses import Responses, answers_of, is_sparse, observed_of, row_blocks

if TYPE_CHECKING:
    from irtbench.estimators.base import Fit
    from irtbench.simulate import Dataset

__all__ = ["align", "aligned_errors_by_part", "aligned_parts", "cramer_rao_bound", "recovery",
           "trace_rmse", "reference_gradient", "optimum_gap", "RECOVERY_METRICS", "EPS", "Z95",
           "held_out_log_likelihood", "log_loss", "predict"]

#: predicted probabilities are clipped to [EPS, 1 - EPS] before a log-likelihood (at most
#: 13.8 nats per response)
EPS = 1e-6


#: what is summarised of each part beyond the skills and difficulties (the other item
#: parameters of every model)
PART_METRICS = ("rmse", "bias", "corr", "crb", "crb_ratio", "coverage")

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
    # the other item parameters of every model (NaN under a model that has none)
    *(f"{metric}_{name}" for name in ITEM_PARAMETERS[1:] for metric in PART_METRICS),
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

    with :math:`I` from :func:`irtbench.models.information` over the observed responses; the
    means run over non-extreme students and questions (the Rasch model's
    :func:`~irtbench.models.rasch.root_mean_bounds`). An unbiased estimator's RMSE cannot be
    below it (for each parameter with the others known), so ``rmse / crb`` near 1 means the
    estimator extracts all the information the data hold.
    """
    return root_mean_bounds(responses, skill, difficulty)


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


def aligned_parts(fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray]
                  ) -> tuple[Aligner, np.ndarray]:
    """The model's alignment of a fit onto the truth
    (:meth:`~irtbench.models.base.Model.alignment`, given the skills and the non-extreme
    students for a model that whitens them) and the questions it was fitted on: those
    ``masks`` does not flag as extreme whose estimates the model can use."""
    model = get_model(data.model)
    missing = [name for name in model.item_parameters if getattr(fit, name) is None]
    if fit.model != data.model or missing:
        raise ValueError(f"the data are {model.title} but the fit ({fit.estimator}, "
                         f"model={fit.model!r}) has no {', '.join(missing) or 'such parameters'}:"
                         f" fit it with model={data.model!r}")
    keep = ~masks[1] & model.usable(fit.items)
    return model.alignment(fit.items, data.items, keep, skill=fit.skill, true_skill=data.skill,
                           students=~masks[0]), keep


def aligned_errors_by_part(fit: Fit, data: Dataset, masks: tuple[np.ndarray, np.ndarray]
                           ) -> dict[str, np.ndarray]:
    """Errors (estimate - truth) of every skill and of every item parameter after the model's
    alignment (:func:`aligned_parts`), by part name."""
    model = get_model(data.model)
    alignment, _ = aligned_parts(fit, data, masks)
    with np.errstate(invalid="ignore"):
        errors = {"skill": alignment.skill(fit.skill) - data.skill}
        moved = alignment.items(fit.items, model.kinds)
        for name in model.item_parameters:
            errors[name] = moved[name] - data.items[name]
    return errors


def trace_rmse(skill: np.ndarray, items: Mapping[str, np.ndarray], data: Dataset,
               masks: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float]:
    """Aligned RMSE of skills (non-extreme students) and difficulties (the questions the
    alignment uses), as in :func:`recovery`, for one snapshot along a fit: its skills and
    item parameters by name (NaN when the snapshot lacks some of the model's)."""
    model = get_model(data.model)
    if any(name not in items for name in model.item_parameters):
        return float("nan"), float("nan")
    masks = masks if masks is not None else extremes(data.responses)
    keep = ~masks[1] & model.usable(items)
    alignment = model.alignment(items, data.items, keep, skill=skill, true_skill=data.skill,
                                students=~masks[0])
    with np.errstate(invalid="ignore"):
        skill_error = alignment.skill(skill)[~masks[0]] - data.skill[~masks[0]]
        moved = alignment.items({name: items[name] for name in model.item_parameters},
                                model.kinds)
        difficulty_error = moved["difficulty"][keep] - data.difficulty[keep]
    return (float(np.sqrt(np.mean(skill_error**2))),
            float(np.sqrt(np.mean(difficulty_error**2))))


def recovery(fit: Fit, data: Dataset) -> dict[str, float]:
    """Compare a fit with the parameters that generated the data, after the model's alignment
    (:func:`aligned_parts`).

    Returns a dict with, for ``skill`` and each item parameter of the model:

    * ``rmse_*``, ``bias_*`` (mean signed error), ``corr_*`` (Pearson) of the aligned
      estimates against the truth. ``bias_difficulty`` is 0 by construction of the Rasch
      alignment (unless extreme questions are left out); JML's outward bias shows in
    * ``scale_*`` (skills and difficulties): the least-squares slope of estimate on truth (1 =
      no shrinkage or spread);
    * ``crb_*``: the root-mean Cramér–Rao bound of the aligned errors
      (:meth:`~irtbench.models.base.Model.bounds`; NaN for a part with none, as the skills of
      the 2PL, 3PL, 4PL and M2PL, whose EAP and JML skills are different targets) and ``crb_ratio_*`` =
      rmse / crb;
    * ``coverage_*``: fraction of true values inside estimate +/- 1.96 SE (NaN without SEs),
      the SEs scaled as the alignment scales their parameter (NaN under the M2PL, whose
      alignment leaves no SE: :mod:`irtbench.models.m2pl`);

    Under the M2PL the parts are the skills ``(n, D)`` and the four item parameters: MDIFF
    (``difficulty``), MDISC (``discrimination``), ``intercept`` and ``loadings`` ``(J, D)``,
    all after the whitening and the rotation; a two-dimensional part is summarised over all
    its entries (``rmse_loadings``: the RMSE of the aligned loadings).
    * ``n_extreme`` (students) and ``n_extreme_questions``, left out of the metrics above (and
      the questions whose estimates the model cannot use, from the item parameters');
      ``rmse_skill_all`` includes the extreme students as estimated.
    """
    model = get_model(data.model)
    masks = extremes(data.responses)
    alignment, keep = aligned_parts(fit, data, masks)
    students = ~masks[0]

    def part(name: str, moved: np.ndarray, truth: np.ndarray, se: np.ndarray | None,
             mask: np.ndarray) -> dict[str, float]:
        """One part's summary over the ``mask`` rows, every entry of a 2-D part."""
        se = alignment.se(model.kinds[name], None if se is None else se[mask])
        return _summary(np.ravel(moved[mask]), np.ravel(truth[mask]),
                        None if se is None else np.ravel(se))

    with np.errstate(invalid="ignore"):
        moved = alignment.items(fit.items, model.kinds)
        skill = alignment.skill(fit.skill)
    parts = {"skill": part("skill", skill, data.skill, fit.skill_se, students)}
    for name in model.item_parameters:
        parts[name] = part(name, moved[name], data.items[name], fit.item_se[name], keep)
    with np.errstate(invalid="ignore"):
        skill_errors = skill - data.skill
    return _recovery_row(parts, model.bounds(data, keep), skill_errors, masks)


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


#: the weight of the reference objective's penalty, the seed notebook's ``alpha``
REFERENCE_ALPHA = 1e-2


def reference_gradient(responses: Responses, skill: np.ndarray, difficulty: np.ndarray,
                       alpha: float = REFERENCE_ALPHA) -> tuple[np.ndarray, np.ndarray]:
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
    (``masks`` = :func:`irtbench.models.extremes`), skills and difficulties together."""
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


# -- prediction and held-out log-likelihood ----------------------------------------------------
def predict(model: Model, skill: np.ndarray, items: Mapping[str, np.ndarray], rows: np.ndarray,
            columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(p, infinite)`` for the cells ``(rows[k], columns[k])``: the model's probabilities,
    the limit (0 or 1; 1/2 where :math:`\theta - b` is undefined) where an estimate is not
    finite, and whether one was. Row blocks of the held-out rows at a time. Skills ``(n, D)``
    and item parameters ``(J, D)`` (the M2PL) too: an estimate is finite when all its entries
    are, and a cell with a non-finite one predicts its probability where that is defined, else
    1/2 (no scalar :math:`\theta - b` gives its limit)."""
    skill = np.asarray(skill, dtype=np.float64)
    parameters = {name: np.asarray(items[name], dtype=np.float64)
                  for name in model.item_parameters}
    finite_items = np.logical_and.reduce(
        [np.isfinite(v).reshape(len(v), -1).all(axis=1) for v in parameters.values()])
    finite_skill = np.isfinite(skill).reshape(len(skill), -1).all(axis=1)
    p = np.empty(len(rows))
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    unique_rows = np.unique(sorted_rows)
    for block in row_blocks((len(unique_rows), len(parameters["difficulty"]))):
        chosen = unique_rows[block]
        first = np.searchsorted(sorted_rows, chosen[0])
        last = np.searchsorted(sorted_rows, chosen[-1], side="right")
        cells = order[first:last]
        local = np.searchsorted(chosen, rows[cells])
        with np.errstate(invalid="ignore", over="ignore"):
            matrix = model.probabilities(skill[chosen], parameters)
        p[cells] = matrix[local, columns[cells]]
    infinite = ~finite_skill[rows] | ~finite_items[columns]
    if infinite.any() and skill.ndim == 1:
        with np.errstate(invalid="ignore"):
            gap = skill[rows] - parameters["difficulty"][columns]
        limit = np.where(np.isnan(gap), 0.5, (gap > 0).astype(np.float64))
        p = np.where(np.isnan(p), limit, p)
    return np.nan_to_num(p, nan=0.5), infinite


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = EPS) -> float:
    """Mean negative log-likelihood per response, ``p`` clipped to [eps, 1 - eps]."""
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def held_out_log_likelihood(model: Model | str, responses: np.ndarray, held_out: np.ndarray,
                            skill: np.ndarray, items: Mapping[str, np.ndarray], *,
                            eps: float = EPS) -> float:
    r"""The mean log-likelihood per held-out response, :math:`\frac{1}{|H|}\sum_{(i,j) \in H}
    y_{ij}\log\hat p_{ij} + (1 - y_{ij})\log(1 - \hat p_{ij})`, over the *observed* cells of
    the boolean mask ``held_out`` (``responses``' shape, dense: NaN or -1 missing), with
    :math:`\hat p` the model's probabilities at ``skill`` and ``items`` (:func:`predict`:
    any model, the M2PL's ``(n, D)`` skills included) clipped to [eps, 1 - eps]: the negative
    of :mod:`irtbench.compare`'s ``logloss``. Higher is better; :math:`\log(1/2) = -0.693` is
    a coin's. ``ValueError`` when no held-out cell is observed."""
    model = get_model(model) if isinstance(model, str) else model
    responses = np.asarray(responses)
    held_out = np.asarray(held_out, bool)
    if held_out.shape != responses.shape:
        raise ValueError(f"the held-out mask {held_out.shape} and the responses "
                         f"{responses.shape} differ in shape")
    rows, columns = np.nonzero(held_out & observed_of(responses))
    if not len(rows):
        raise ValueError("no observed response is held out")
    p, _ = predict(model, skill, items, rows, columns)
    return -log_loss(answers_of(responses[rows, columns], np.float64), p, eps)
