r"""The generic machinery of the EM fits (``mml-em``'s 2PL, 3PL and 4PL): SQUAREM
acceleration (:func:`squarem`), the M-step's step halving that makes every EM update raise its
objective (:func:`ascend`), and the convergence measure on the items' slope-intercept
parameters (:func:`item_changes`). Each works on any named tuple of per-item tensors (the
2PL's ``(a, d)``, the 3PL's ``(a, d, g)``, the 4PL's ``(a, d, g, h)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

__all__ = ["BACKTRACKS", "HALVINGS", "ascend", "extrapolate", "finite", "item_changes",
           "largest_change", "squarem"]

#: the items of an EM fit: a named tuple of per-item tensors
ItemsT = TypeVar("ItemsT", bound=tuple)


#: halvings of an M-step's step before an item keeps its value (a step of 2^-30: nothing)
HALVINGS = 30


def ascend(objective: Callable[[ItemsT], torch.Tensor], items: ItemsT, step: tuple,
           halvings: int = HALVINGS, before: torch.Tensor | None = None
           ) -> tuple[ItemsT, torch.Tensor]:
    """``items + size * step``, each item's size halved from 1 (at most ``halvings`` times)
    until its ``objective`` does not decrease (nor is NaN, as outside its parameter space);
    an item still worse keeps its value. Every M-step then raises the expected objective
    (a generalised EM: the marginal objective never falls, and a Newton step that overshoots
    cannot cycle). ``before``: the objective at ``items`` if known. Returns the new items and
    their objective."""
    import torch

    kind = type(items)
    before = objective(items) if before is None else before
    size = torch.ones_like(items[0])
    for _ in range(halvings + 1):
        trial = kind(*(x + size * s for x, s in zip(items, step)))
        after = objective(trial)
        worse = ~(after >= before - 1e-12) | ~torch.isfinite(after)
        if not bool(worse.any()):
            break
        size = torch.where(worse, size / 2, size)
    return (kind(*(torch.where(worse, x, t) for x, t in zip(items, trial))),
            torch.where(worse, before, after))


def item_changes(new: tuple, old: tuple) -> torch.Tensor:
    r"""Each item's change between two EM iterates of its slope-intercept parameters (the
    first two fields of ``new`` and ``old``): :math:`\max(|\Delta a|, |\Delta d| /
    \max(1, |a|))`. For a steep item the intercept's change over the slope is how far the
    curve moved along the skills (:math:`\Delta b` when :math:`a` holds still); for a flat one
    the intercept's own change, where :math:`b = -d/a` passes any limit as :math:`a` nears 0
    and its change says nothing of convergence."""
    import torch

    (a_new, d_new), (a_old, d_old) = new[:2], old[:2]
    return torch.maximum((a_new - a_old).abs(), (d_new - d_old).abs() / a_old.abs().clamp(min=1.0))


def largest_change(new: tuple, old: tuple, free: torch.Tensor | None = None) -> float:
    """Largest :func:`item_changes` of the ``free`` items."""
    changes = item_changes(new, old)
    if free is not None:
        changes = changes[free]
    return float(changes.max()) if changes.numel() else 0.0


#: how many times SQUAREM halves its way back from an extrapolation outside the parameter space
BACKTRACKS = 20


def finite(items: tuple) -> bool:
    """Whether every parameter of every item is finite."""
    import torch

    return all(bool(torch.isfinite(values).all()) for values in items)


def squarem(update: Callable[[ItemsT], ItemsT], items: ItemsT,
            log_likelihood: Callable[[], float], *, tol: float, max_iter: int,
            free: torch.Tensor | None = None,
            change: Callable[[ItemsT, ItemsT, torch.Tensor | None], float] | None = None,
            feasible: Callable[[ItemsT], bool] | None = None) -> tuple[ItemsT, bool, int]:
    r"""EM accelerated by SQUAREM (Varadhan & Roland 2008, scheme S3): from :math:`x_0`, two EM
    updates :math:`x_1, x_2`, then the extrapolation :math:`x' = x_0 - 2\alpha r + \alpha^2 v`
    with :math:`r = x_1 - x_0`, :math:`v = x_2 - 2x_1 + x_0`,
    :math:`\alpha = \min(-\lVert r\rVert/\lVert v\rVert, -1)`, and one EM update from
    there; if the objective at :math:`x'` is below :math:`x_1`'s, the plain :math:`x_2` is kept
    (and so is the ``free`` mask from before that update: an item held on the way from a
    rejected :math:`x'` is not held). An :math:`x'` outside the parameter space (``feasible``,
    default: every parameter finite; the 2PL's slope prior also needs :math:`a > 0`) is
    stepped back towards :math:`x_2` (:math:`\alpha = -1`) by :math:`\alpha \leftarrow
    (\alpha - 1)/2`, as Varadhan and Roland do. It has EM's fixed points and cuts the
    iterations several times over. ``items`` is any named tuple of per-item tensors (the 2PL's
    :class:`~irtbench.estimators.classical.em2pl.Items`, the 3PL's and 4PL's); ``update``
    runs one EM iteration (E-step at its argument, whose objective ``log_likelihood()`` then
    returns, and M-step); it stops when ``change`` (default :func:`largest_change`) says an EM
    update moved no parameter of the ``free`` items (a mask, which ``update`` may narrow;
    default all) more than ``tol``. Returns the estimate, whether it converged and the number
    of EM updates run."""
    import torch

    change = change or largest_change
    feasible = feasible or finite
    count = 0
    while count < max_iter:
        x1 = update(items)
        count += 1
        if change(x1, items, free) < tol:
            return x1, True, count
        x2 = update(x1)
        count += 1
        log_likelihood_1 = log_likelihood()
        if change(x2, x1, free) < tol:
            return x2, True, count
        r = torch.cat([p1 - p0 for p0, p1 in zip(items, x1)])
        v = torch.cat([p2 - p1 for p1, p2 in zip(x1, x2)]) - r
        alpha = min(-float(r.norm() / v.norm()), -1.0) if float(v.norm()) > 0 else -1.0
        jump = extrapolate(items, x1, x2, alpha, free)
        for _ in range(BACKTRACKS):
            if feasible(jump):
                break
            alpha = (alpha - 1.0) / 2.0
            jump = extrapolate(items, x1, x2, alpha, free)
        else:
            jump = x2
        held = None if free is None else free.clone()
        items = update(jump)
        count += 1
        if not (log_likelihood() >= log_likelihood_1 and feasible(items)):
            items = x2
            if held is not None:
                free.copy_(held)
    return items, False, count


def extrapolate(x0: ItemsT, x1: ItemsT, x2: ItemsT, alpha: float,
                free: torch.Tensor | None = None) -> ItemsT:
    r"""SQUAREM's step from :math:`x_0` through the EM updates :math:`x_1, x_2`:
    :math:`x_0 - 2\alpha(x_1 - x_0) + \alpha^2(x_2 - 2x_1 + x_0)`, with the items outside
    ``free`` (held) left at :math:`x_2`."""
    import torch

    kind = type(x0)
    jump = kind(*(p0 - 2 * alpha * (p1 - p0) + alpha**2 * (p2 - 2 * p1 + p0)
                  for p0, p1, p2 in zip(x0, x1, x2)))
    if free is not None:  # held items stay where they are held
        jump = kind(*(torch.where(free, j, p2) for j, p2 in zip(jump, x2)))
    return jump
