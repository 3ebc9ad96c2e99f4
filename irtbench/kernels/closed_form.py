r"""Gradients written out instead of differentiating the whole objective, for the models that
declare these fast paths (:attr:`Model.fast_paths <irtbench.models.base.Model.fast_paths>`):

* ``"closed"``, the Rasch model's closed form: in torch, piece by piece
  (:func:`closed_form_step`) or over a whole dense matrix as one function for
  ``torch.compile`` to fuse (:func:`fused_step`), and in JAX (:func:`jax_value_and_grad`,
  inside jax-adam's compiled loop);
* ``"logit"``, any model whose log-likelihood is the Bernoulli one of its logits (the Rasch
  model, the 2PL, the M2PL): the gradient in a logit is the residual :math:`\sigma(x) - y`,
  chained through the model's own logits by autodiff (:func:`logit_step` in torch,
  :func:`jax_logit_value_and_grad` in JAX; :func:`check_logit`).

The closed form implements one objective, the seed notebook's: the mean observed negative
log-likelihood of the logits :math:`x_{ij} = \theta_i - b_j` plus :math:`\alpha\bar b^2`, and no prior.
:func:`check` refuses a model whose fitted parameters are not that objective's (a model that
declares ``"closed"`` must fit exactly the difficulty, on the line, with no prior), so the
model's declaration is the only switch and a wrong one fails loudly. Tests hold each to
autodiff of the model's generic objective.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from irtbench.kernels.device_responses import DeviceResponses, decode

if TYPE_CHECKING:
    import jax
    import torch

    from irtbench.models.fitting import Objective

__all__ = ["check", "check_logit", "closed_form_step", "fused_step", "jax_logit_value_and_grad",
           "jax_value_and_grad", "logit_step", "residual_terms", "sum_log"]


def check(objective: Objective) -> None:
    """``ValueError`` unless the objective is the one the closed form implements: one fitted
    item parameter, the difficulty, on the line, with no prior (module docstring)."""
    fitted = [(p.raw, p.transform.name, p.prior) for p in objective.parameters]
    if fitted != [("difficulty", "identity", None)]:
        raise ValueError(f"the closed form fits theta - b with no prior; the "
                         f"{objective.model.name} model's fitted parameters here are "
                         f"{[p.raw for p in objective.parameters]}")


def residual_terms(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(residual, nll)`` of one piece, overwriting ``logits``: the residual
    :math:`r_{ij} = \sigma(x_{ij}) - y_{ij}` (0 where missing), which is the gradient of the
    negative log-likelihood with respect to the logit (what autograd computes for
    ``binary_cross_entropy_with_logits``), and the negative log-likelihood
    :math:`-\sum\log(1 - |r_{ij}|)`, since :math:`1 - |r_{ij}|` is the probability of the
    observed answer (one that rounds to 0 in float32 counts as :math:`2^{-24}`). In place, so
    eager torch allocates one piece-sized tensor; ``torch.compile`` fuses it all the same."""
    import torch

    residual = torch.sigmoid_(logits).sub_(y)
    if weight is not None:
        residual = residual.mul_(weight)
    return residual, -sum_log(residual.abs().neg_().add_(1).clamp_(min=2**-24))


def sum_log(probabilities: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum\log p` over a tensor of probabilities in :math:`[2^{-24}, 1]` with one
    logarithm per four entries: the product of four such entries stays above :math:`2^{-96}`,
    far from float32's underflow, and a logarithm costs several times a product."""
    flat = probabilities.reshape(-1)
    quarter = flat.numel() // 4
    product = flat[:quarter] * flat[quarter:2 * quarter]
    product = product.mul_(flat[2 * quarter:3 * quarter]).mul_(flat[3 * quarter:4 * quarter])
    return product.log_().sum() + flat[4 * quarter:].log().sum()


def closed_form_step(skill: torch.Tensor, difficulty: torch.Tensor, data: DeviceResponses,
                     alpha: float) -> torch.Tensor:
    r""":func:`reference_loss` with its gradient written out, piece by piece, without autograd:
    sets ``skill.grad`` and ``difficulty.grad`` and returns the loss. With the residuals of
    :func:`residual_terms`,

    .. math::
        \frac{\partial L}{\partial\theta_i} = \frac{1}{|O|}\sum_j r_{ij},\qquad
        \frac{\partial L}{\partial b_j} = -\frac{1}{|O|}\sum_i r_{ij}
            + \frac{2\alpha\bar b}{J}.

    One sigmoid per response and one logarithm per four, against autograd's softplus forward
    and sigmoid backward. A test holds it to autograd of :func:`reference_loss`."""
    import torch

    with torch.no_grad():
        grad_skill, grad_difficulty = torch.zeros_like(skill), torch.zeros_like(difficulty)
        nll = torch.zeros((), dtype=skill.dtype, device=skill.device)
        for piece in data.pieces(skill.dtype):
            residual, piece_nll = residual_terms(piece.rasch_logits(skill, difficulty), piece.y,
                                                 piece.weight)
            nll += piece_nll
            if piece.rows is None:
                grad_skill.index_add_(0, data.student, residual)
                grad_difficulty.index_add_(0, data.question, residual, alpha=-1)
            else:
                grad_skill[piece.rows] += residual.sum(dim=1)
                grad_difficulty -= residual.sum(dim=0)
        mean_difficulty = difficulty.mean()
        skill.grad = grad_skill.div_(data.n_observed)
        difficulty.grad = grad_difficulty.div_(data.n_observed).add_(
            2 * alpha * mean_difficulty / difficulty.shape[0])
        return nll / data.n_observed + alpha * mean_difficulty * mean_difficulty


def fused_step(skill: torch.Tensor, difficulty: torch.Tensor, answers: torch.Tensor,
               weight: torch.Tensor | None, n_observed: float, alpha: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`closed_form_step` over a whole dense matrix as one function, for
    ``torch.compile`` to fuse into one pass per epoch (Triton on CUDA, C++ on the CPU):
    ``answers`` are int8 codes (-1 = missing, decoded inside the pass, so an epoch reads one
    byte per response) or float32 answers with an optional 0/1 ``weight``. Returns
    ``(loss, grad_skill, grad_difficulty)``; a test holds it to autograd of
    :func:`reference_loss`."""
    import torch

    logits = skill[:, None] - difficulty[None, :]
    if answers.dtype == torch.int8:
        answers, weight = decode(answers, logits.dtype)
    residual, nll = residual_terms(logits, answers, weight)
    mean_difficulty = difficulty.mean()
    loss = nll / n_observed + alpha * mean_difficulty * mean_difficulty
    grad_skill = residual.sum(dim=1) / n_observed
    grad_difficulty = (-residual.sum(dim=0) / n_observed
                       + 2 * alpha * mean_difficulty / difficulty.shape[0])
    return loss, grad_skill, grad_difficulty


def jax_value_and_grad(params: dict[str, jax.Array], answers: jax.Array,
                             student: jax.Array | None, question: jax.Array | None, *,
                             n_observed: int, alpha: float
                             ) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""``jax.value_and_grad`` of the notebook's objective written out (the same closed form
    as :func:`closed_form_step`): with the residual
    :math:`r_{ij} = \sigma(x_{ij}) - y_{ij}` (0 where missing) the gradients are its row and
    column sums over :math:`|O|`, and the loss is :math:`-\sum\log(1 - |r_{ij}|)/|O|`, since
    :math:`1 - |r_{ij}|` is the probability of the observed answer. One sigmoid and one
    logarithm per response instead of autodiff's softplus forward and sigmoid backward (about
    3x faster on a CPU); a test holds it to autodiff of :func:`reference_loss`."""
    import jax
    import jax.numpy as jnp

    skill, difficulty = params["skill"], params["difficulty"]
    if student is None:
        logits = skill[:, None] - difficulty[None, :]
        y = (answers == 1).astype(logits.dtype)
        residual = jnp.where(answers >= 0, jax.nn.sigmoid(logits) - y, 0.0)
        grad_skill, minus_grad_difficulty = residual.sum(axis=1), residual.sum(axis=0)
    else:
        residual = jax.nn.sigmoid(skill[student] - difficulty[question]) - answers
        grad_skill = jnp.zeros_like(skill).at[student].add(residual)
        minus_grad_difficulty = jnp.zeros_like(difficulty).at[question].add(residual)
    nll = -jnp.sum(jnp.log1p(-jnp.minimum(jnp.abs(residual), 1 - 2**-24)))
    mean_difficulty = jnp.mean(difficulty)
    loss = nll / n_observed + alpha * mean_difficulty**2
    grads = {"skill": grad_skill / n_observed,
             "difficulty": (2 * alpha * mean_difficulty / difficulty.shape[0]
                            - minus_grad_difficulty / n_observed)}
    return loss, grads




# -- the Bernoulli log-likelihood of any model's logits: the residual chained through them ----
def check_logit(objective: Objective) -> None:
    """``ValueError`` unless the model's log-likelihood is the Bernoulli one of its logits
    (it keeps :meth:`~irtbench.models.base.Model.log_prob`'s default), which the logit path
    needs: a model that declares ``"logit"`` must."""
    from irtbench.models.base import Model

    if type(objective.model).log_prob is not Model.log_prob:
        raise ValueError(f"the logit path needs the Bernoulli log-likelihood of the logits; the "
                         f"{objective.model.name} model writes its own log_prob")


def logit_step(objective: Objective, raw: dict[str, torch.Tensor], data: DeviceResponses
               ) -> torch.Tensor:
    r"""The model's mean objective and its gradient, for a model whose log-likelihood is the
    Bernoulli one of its logits (``"logit"`` in its ``fast_paths``): the gradient of the
    negative log-likelihood in a logit is the residual :math:`r_{ij} = \sigma(x_{ij}) -
    y_{ij}` (0 where missing), so each piece's logits are built with autograd, the residual
    and the loss :math:`-\sum\log(1 - |r_{ij}|)` (:func:`residual_terms`) without, and
    ``logits.backward(r / |O|)`` chains it to the parameters (the gauge penalty and the
    priors by autograd, as they are small): one sigmoid per response, against autograd's
    softplus forward and sigmoid backward. Accumulates the gradients in ``.grad`` and returns
    the loss; a test holds it to autograd of the objective."""
    import torch

    from irtbench.models.fitting import ops_for

    ops = ops_for(raw["skill"])
    values = objective.values(ops, raw)
    model, total = objective.model, torch.zeros((), dtype=raw["skill"].dtype,
                                                 device=raw["skill"].device)
    for piece in data.pieces(raw["skill"].dtype):
        at = model.at(values, piece.question)
        logits = model.logits(ops, piece.skill(raw["skill"]), at, piece.question)
        with torch.no_grad():
            residual, nll = residual_terms(logits.detach().clone(), piece.y, piece.weight)
            total += nll
        logits.backward(residual.div_(data.n_observed), retain_graph=True)
    penalty = objective.penalty(ops, raw, values)
    penalty.backward()
    return total / data.n_observed + penalty.detach()


def jax_logit_value_and_grad(objective: Objective) -> Callable[..., tuple]:
    r"""``value_and_grad`` of the model's mean objective for jax-adam's compiled loop, for a
    model whose log-likelihood is the Bernoulli one of its logits (:func:`logit_step`'s
    residual, chained through the logits by ``jax.vjp``; the penalty and priors by
    ``jax.value_and_grad``): ``f(params, answers, student, question)`` over dense int8 codes
    (``student`` None) or the answers of sparse pairs. About 2x autodiff of the whole
    objective on a CPU (measured on 300 x 8000: the 2PL 1.85 s against 3.29 s, the M2PL 1.33
    s against 2.82 s for 200 epochs)."""
    import jax
    import jax.numpy as jnp

    from irtbench.models.fitting import ops_for

    model, n_observed = objective.model, objective.n_observed

    def value_and_grad(params: dict[str, jax.Array], answers: jax.Array,
                       student: jax.Array | None, question: jax.Array | None) -> tuple:
        ops = ops_for(jnp.asarray(params["skill"]))  # JAX's, whatever arrays come in

        def logits_of(p: dict[str, jax.Array]) -> jax.Array:
            skill = p["skill"] if student is None else p["skill"][student]
            return model.logits(ops, skill, model.at(objective.values(ops, p), question),
                                question)

        logits, pullback = jax.vjp(logits_of, params)
        if student is None:
            y = (answers == 1).astype(logits.dtype)
            residual = jnp.where(answers >= 0, jax.nn.sigmoid(logits) - y, 0.0)
        else:
            residual = jax.nn.sigmoid(logits) - answers
        nll = -jnp.sum(jnp.log1p(-jnp.minimum(jnp.abs(residual), 1 - 2**-24)))
        (grads,) = pullback(residual / n_observed)
        penalty, penalty_grads = jax.value_and_grad(
            lambda p: objective.penalty(ops, p, objective.values(ops, p)))(params)
        return (nll / n_observed + penalty,
                jax.tree_util.tree_map(jnp.add, grads, penalty_grads))

    return value_and_grad
