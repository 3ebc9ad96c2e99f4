r"""One fused pass over the int8 codes per Adam epoch: the reference objective's loss and all of
its gradients, for the Rasch model and the 2PL, as a Triton kernel.

For a block of ``BLOCK_M`` students and a split of the questions, each program reads the codes
once (one byte per response, -1 = missing) and forms the logit :math:`x_{ij}` and the residual
:math:`r_{ij} = \sigma(x_{ij}) - y_{ij}` (0 where missing), which is the gradient of the
negative log-likelihood in the logit. It accumulates

* per student: :math:`\sum_j r_{ij}` (Rasch) or :math:`\sum_j a_j r_{ij}` (2PL), the skill's
  gradient;
* per question, over its block: :math:`\sum_i r_{ij}` and, for the 2PL,
  :math:`\sum_i r_{ij} x_{ij}` (the gradient in :math:`\log a_j`, since
  :math:`\partial x/\partial\log a = x`);
* the negative log-likelihood :math:`-\sum\log(1 - |r_{ij}|)` (the probability of the observed
  answer, floored at :math:`2^{-24}` as in
  :func:`~irtbench.kernels.closed_form.residual_terms`), one logarithm per four tiles of
  products.

Partial sums are written per block and per split and added by :func:`epoch_gradients` in a
fixed order, so an epoch is deterministic (no atomics). The logit's exponential is separable
under the Rasch model, :math:`e^{-x_{ij}} = e^{-\theta_i} e^{b_j}`, so
:math:`\sigma(x_{ij}) = 1/(1 + u_i v_j)` costs one multiply-add and one reciprocal per response;
under the 2PL, :math:`e^{-x} = 2^{c_j - k_j\theta_i}` with :math:`k_j = a_j\log_2 e`,
:math:`c_j = a_j b_j \log_2 e`: one multiply-add and one exponential.

:func:`epoch_gradients` assembles the gradients of the reference objective (the notebook's
penalty :math:`\alpha\bar b^2`, and for the 2PL :math:`\alpha\overline{\log a}^2` and the prior
:math:`\log a_j \sim N(0, s^2)`) from the partial sums with a few small tensor operations, all
capturable in a CUDA graph. Tests hold it to autograd of
:func:`~irtbench.estimators.torch_adam.reference_loss` (on the CPU through Triton's
interpreter, ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from irtbench.models.base import Model
    from irtbench.models.fitting import Objective

__all__ = ["FORMS", "FusedEpoch", "available", "epoch_gradients", "has_slope", "supports"]

#: students per program, questions per tile
BLOCK_M, BLOCK_N = 64, 64
#: the objectives the kernel implements, by the raw item parameters a model fits (after the
#: skills) and whether the logit has a slope: the Rasch model's theta - b, and the 2PL's
#: a (theta - b) with a = exp(log a) (its only prior, a normal one over log a)
FORMS = {("difficulty",): False, ("difficulty", "log_discrimination"): True}
#: aim for at least this many programs (splitting the questions when students are few)
MIN_PROGRAMS = 1024
#: at most this many tiles of questions per program (the loop over them is unrolled)
MAX_TILES = 32
#: the separable exponential u_i v_j stays in float32's normal range (and finite) while every
#: skill and difficulty is within this of 0: e^{2 x 40} = 5.5e34 < 3.4e38, e^{-80} > 1.2e-38
SEPARABLE_REACH = 40.0


def available() -> bool:
    """Whether Triton is importable (a CUDA build of torch ships it)."""
    return importlib.util.find_spec("triton") is not None


def supports(model: Model, device_type: str) -> bool:
    """Whether the fused kernel fits ``model`` on a device of that type: the model declares
    the path (``"fused"`` in :attr:`~irtbench.models.base.Model.fast_paths`, the only switch),
    Triton is there, and the device is CUDA (or the CPU under Triton's interpreter)."""
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    return "fused" in model.fast_paths and available() and (device_type == "cuda" or interpreted)


def has_slope(objective: Objective) -> bool:
    """Whether the objective's logit has a slope (:data:`FORMS`); ``ValueError`` when its
    fitted parameters are not a form the kernel implements (a model that declares ``"fused"``
    must fit one: a test holds every declaration to this)."""
    raws = tuple(p.raw for p in objective.parameters)
    priors = [p.raw for p in objective.parameters if p.prior is not None]
    if raws not in FORMS or priors not in ([], ["log_discrimination"]):
        raise ValueError(f"the fused kernel fits theta - b or exp(log a) (theta - b), with at "
                         f"most a normal prior on log a; the {objective.model.name} model fits "
                         f"{list(raws)} here (priors on {priors})")
    return FORMS[raws]


@functools.lru_cache(maxsize=2)
def _kernel(interpreted: bool) -> Any:  # noqa: ARG001 - the cache key: decorated per mode
    """The Triton kernel, decorated on first use (Triton reads ``TRITON_INTERPRET`` then)."""
    import triton
    import triton.language as tl

    @triton.jit
    def epoch_kernel(codes_ptr, skill_ptr, col_a_ptr, col_c_ptr,  # noqa: ANN001 - Triton
                     row_out_ptr, col_out_ptr, col_x_out_ptr, loss_out_ptr,
                     n_rows, n_cols, COLS_PER_SPLIT: tl.constexpr,
                     HAS_SLOPE: tl.constexpr, SEPARABLE: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_N: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        row_mask = rows < n_rows
        theta = tl.load(skill_ptr + rows, mask=row_mask, other=0.0)
        if SEPARABLE:
            row_term = tl.exp2(-theta * 1.4426950408889634)  # u_i = e^{-theta_i}
        else:
            row_term = theta
        row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
        log_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
        product = tl.full([BLOCK_M, BLOCK_N], 1.0, tl.float32)
        first = pid_n * COLS_PER_SPLIT
        last = tl.minimum(first + COLS_PER_SPLIT, n_cols)
        row_offsets = rows.to(tl.int64)[:, None] * n_cols
        for start in tl.static_range(0, COLS_PER_SPLIT, BLOCK_N):
            cols = first + start + tl.arange(0, BLOCK_N)
            col_mask = cols < last
            mask = row_mask[:, None] & col_mask[None, :]
            codes = tl.load(codes_ptr + row_offsets + cols[None, :], mask=mask, other=-1)
            a = tl.load(col_a_ptr + cols, mask=col_mask, other=0.0)
            c = tl.load(col_c_ptr + cols, mask=col_mask, other=0.0)
            if SEPARABLE:  # a = v_j = e^{b_j}: e^{-x} = u_i v_j
                e = row_term[:, None] * a[None, :]
            else:  # a = a_j, c = a_j b_j: x = a theta - c, e^{-x} = 2^{-x log2 e}
                x = a[None, :] * row_term[:, None] - c[None, :]
                e = tl.exp2(-x * 1.4426950408889634)
            p = 1.0 / (1.0 + e)
            y = tl.where(codes == 1, 1.0, 0.0)
            r = tl.where(codes >= 0, p - y, 0.0)
            product = product * tl.maximum(1.0 - tl.abs(r), 5.9604644775390625e-08)
            if (start // BLOCK_N) % 4 == 3:  # static: unrolled
                log_sum += tl.sum(tl.log(product), axis=1)
                product = tl.full([BLOCK_M, BLOCK_N], 1.0, tl.float32)
            if HAS_SLOPE:
                row_sum += tl.sum(r * a[None, :], axis=1)
                tl.store(col_x_out_ptr + pid_m * n_cols + cols, tl.sum(r * x, axis=0),
                         mask=col_mask)
            else:
                row_sum += tl.sum(r, axis=1)
            tl.store(col_out_ptr + pid_m * n_cols + cols, tl.sum(r, axis=0), mask=col_mask)
        log_sum += tl.sum(tl.log(product), axis=1)
        tl.store(row_out_ptr + pid_n * n_rows + rows, row_sum, mask=row_mask)
        tl.store(loss_out_ptr + pid_m * tl.num_programs(1) + pid_n, -tl.sum(log_sum, axis=0))

    return epoch_kernel


@dataclass
class FusedEpoch:
    """The buffers of one fused epoch over int8 ``codes`` (made once per fit, reused by every
    epoch, as a CUDA graph needs): the partial sums per block of students and per split of the
    questions, and the grid."""

    codes: torch.Tensor
    n_observed: float
    alpha: float
    prior_log_a_sd: float | None
    has_slope: bool
    separable: bool
    splits: int
    cols_per_split: int
    row_partial: torch.Tensor
    col_partial: torch.Tensor
    col_x_partial: torch.Tensor
    loss_partial: torch.Tensor

    @classmethod
    def for_objective(cls, codes: torch.Tensor, objective: Objective,
                      options: Mapping[str, Any], n_observed: float) -> FusedEpoch:
        """:meth:`allocate` for a model's objective (:func:`has_slope`) and a fit's options."""
        return cls.allocate(codes, n_observed, float(options["alpha"]),
                            options.get("prior_log_a_sd"), has_slope(objective),
                            reach=float(options["epochs"]) * float(options["lr"]))

    @classmethod
    def allocate(cls, codes: torch.Tensor, n_observed: float, alpha: float,
                 prior_log_a_sd: float | None, has_slope: bool, reach: float) -> FusedEpoch:
        r"""Buffers for ``codes``; ``reach`` bounds how far any parameter can move from 0 in
        the fit (Adam moves each by at most about ``lr`` an epoch: ``epochs * lr``). The Rasch
        model's separable exponential is used while :math:`e^{2 \cdot reach}` stays
        within float32's normal range (reach <= :data:`SEPARABLE_REACH`)."""
        import torch

        n_rows, n_cols = codes.shape
        blocks = -(-n_rows // BLOCK_M)
        tiles = -(-n_cols // BLOCK_N)
        splits = max(1, min(tiles, -(-MIN_PROGRAMS // blocks)), -(-tiles // MAX_TILES))
        cols_per_split = -(-tiles // splits) * BLOCK_N
        splits = -(-n_cols // cols_per_split)

        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(shape, dtype=torch.float32, device=codes.device)

        separable = not has_slope and reach <= SEPARABLE_REACH
        return cls(codes, float(n_observed), float(alpha), prior_log_a_sd, has_slope, separable,
                   splits,
                   cols_per_split, zeros(splits, n_rows), zeros(blocks, n_cols),
                   zeros(blocks if has_slope else 1, n_cols), zeros(blocks * splits))

    def launch(self, skill: torch.Tensor, col_a: torch.Tensor, col_c: torch.Tensor) -> None:
        """One pass over the codes: fills the partial sums."""
        n_rows, n_cols = self.codes.shape
        grid = (self.col_partial.shape[0], self.splits)
        kernel = _kernel(os.environ.get("TRITON_INTERPRET") == "1")
        kernel[grid](self.codes, skill, col_a, col_c, self.row_partial, self.col_partial,
                     self.col_x_partial, self.loss_partial, n_rows, n_cols,
                     COLS_PER_SPLIT=self.cols_per_split, HAS_SLOPE=self.has_slope, SEPARABLE=self.separable,
                     BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps=4)


def epoch_gradients(epoch: FusedEpoch, skill: torch.Tensor, difficulty: torch.Tensor,
                    log_discrimination: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    r"""``(loss, grad_skill, grad_difficulty, grad_log_discrimination)`` of the reference
    objective at the parameters, from one :meth:`FusedEpoch.launch`:

    .. math::
        \frac{\partial L}{\partial\theta_i} = \frac{1}{|O|}\sum_j a_j r_{ij},\quad
        \frac{\partial L}{\partial b_j} = -\frac{a_j}{|O|}\sum_i r_{ij}
            + \frac{2\alpha\bar b}{J},\quad
        \frac{\partial L}{\partial\log a_j} = \frac{1}{|O|}\sum_i r_{ij}x_{ij}
            + \frac{2\alpha\overline{\log a}}{J} + \frac{\log a_j}{s^2|O|}

    (:math:`a_j = 1` and no last gradient under the Rasch model)."""
    import torch

    n = epoch.n_observed
    mean_difficulty = difficulty.mean()
    if log_discrimination is None:
        ones = torch.ones_like(difficulty)
        epoch.launch(skill, torch.exp(difficulty) if epoch.separable else ones, difficulty)
    else:
        slope = torch.exp(log_discrimination)
        epoch.launch(skill, slope, slope * difficulty)
    grad_skill = epoch.row_partial.sum(dim=0) / n
    column = epoch.col_partial.sum(dim=0) / n
    grad_difficulty = 2 * epoch.alpha * mean_difficulty / difficulty.shape[0] - column
    loss = epoch.loss_partial.sum() / n + epoch.alpha * mean_difficulty * mean_difficulty
    if log_discrimination is None:
        return loss, grad_skill, grad_difficulty, None
    grad_difficulty = 2 * epoch.alpha * mean_difficulty / difficulty.shape[0] - slope * column
    mean_log_a = log_discrimination.mean()
    grad_log_a = (epoch.col_x_partial.sum(dim=0) / n
                  + 2 * epoch.alpha * mean_log_a / log_discrimination.shape[0])
    loss = loss + epoch.alpha * mean_log_a * mean_log_a
    if epoch.prior_log_a_sd is not None:
        precision = 1.0 / (float(epoch.prior_log_a_sd) ** 2 * n)
        grad_log_a = grad_log_a + precision * log_discrimination
        loss = loss + 0.5 * precision * (log_discrimination * log_discrimination).sum()
    return loss, grad_skill, grad_difficulty, grad_log_a
