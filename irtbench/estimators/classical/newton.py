r"""Newton's method for the classical estimators: separable blocks with step-halving, and the
one loop that estimates skills given difficulties (ML, Warm's WLE, or a normal prior's mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from irtbench.estimators.classical.design import AnyDesign, Moments

if TYPE_CHECKING:
    import torch

__all__ = ["log_odds_start", "newton_block", "skill_newton"]


def log_odds_start(design: AnyDesign) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Starting values: :math:`b_j = \log\frac{n_j - s_j}{s_j}` centred and
    :math:`\theta_g = \log\frac{r_g}{J_g - r_g}` (infinite for scores 0 and J_g)."""
    import torch

    difficulty = torch.log((design.item_counts - design.item_totals) / design.item_totals)
    difficulty = difficulty - difficulty.mean()
    skill = torch.log(design.scores / (design.row_counts() - design.scores))
    return skill, difficulty


def _halve_failed(step: torch.Tensor, old_gradient: torch.Tensor, new_gradient: torch.Tensor,
                  tol: float) -> torch.Tensor:
    """The part of ``step`` to take back (half of it) where the gradient grew in size (an
    overshoot), zero elsewhere and for steps below ``tol``."""
    failed = (new_gradient.abs() > old_gradient.abs()) & (step.abs() > tol)
    return step * 0.5 * failed


def newton_block(value: torch.Tensor, gradient: torch.Tensor, step: torch.Tensor,
                 evaluate: Callable[[torch.Tensor], Moments],
                 residual: Callable[[Moments], torch.Tensor], tol: float, tries: int = 20
                 ) -> tuple[torch.Tensor, torch.Tensor, Moments, int]:
    """Take the separable Newton ``step`` from ``value`` and halve it (up to ``tries`` times)
    for the parameters whose gradient grew. ``evaluate(value)`` gives the moments there and
    ``residual(moments)`` the gradient. Returns ``(value, step taken, moments, halvings)``."""
    value = value + step
    moments = evaluate(value)
    halvings = 0
    for _ in range(tries):
        back = _halve_failed(step, gradient, residual(moments), tol)
        if not bool(back.any()):
            break
        halvings += 1
        value, step = value - back, step - back
        moments = evaluate(value)
    return value, step, moments, halvings


def skill_newton(design: AnyDesign, difficulty: torch.Tensor, *, method: str = "ml",
                 precision: float = 0.0, start: torch.Tensor | None = None, tol: float = 1e-8,
                 max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor, int]:
    r"""Skills of every group given the difficulties, by Newton's method (steps clamped to 2
    logits) from ``start`` until the largest step is below ``tol``; the default start is
    :math:`\bar b + \log\frac{r_g + 1/2}{J_g - r_g + 1/2}`, finite for every score.

    * ``"ml"``: maximum likelihood, the root of :math:`r_g - \sum_j p_{gj} - \theta_g\tau = 0`
      with prior precision :math:`\tau` = ``precision`` (0: plain ML, no finite solution for
      scores 0 and J; :math:`1/\sigma^2`: the posterior mode under :math:`N(0, \sigma^2)`);
    * ``"wle"``: Warm's weighted likelihood estimate, the root of
      :math:`r_g - \sum_j p_{gj} + \frac{J_g}{2 I_g} = 0` with :math:`I = \sum p(1-p)` and
      :math:`J = \sum p(1-p)(1-2p)`; finite for every score and less biased than ML.

    Returns:
        ``(skill, information, iterations)`` per group, the information
        :math:`\sum_j p(1-p) + \tau` at the returned skills (the SE is its ``rsqrt``).
    """
    import torch

    if method not in ("ml", "wle"):
        raise ValueError(f"person method {method!r}: choose 'ml' or 'wle'")
    wle = method == "wle"
    if start is None:
        half = 0.5
        start = difficulty.mean() + torch.log((design.scores + half)
                                              / (design.row_counts() - design.scores + half))
    skill = start.clone()
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 (returned)
        moments = design.moments(skill, difficulty, with_wle=wle)
        info = moments.row_w + precision
        gradient = design.scores - moments.row_p - skill * precision
        slope = -info
        if wle:
            third, fourth = moments.row_third, moments.row_fourth
            gradient = gradient + third / (2 * info)
            slope = slope + (fourth * info - third * third) / (2 * info * info)
        step = (-gradient / slope).clamp(-2.0, 2.0)
        skill = skill + step
        if float(step.abs().max()) < tol:
            break
    return skill, design.moments(skill, difficulty).row_w + precision, iteration
