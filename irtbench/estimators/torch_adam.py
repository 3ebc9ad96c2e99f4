r"""``torch-adam``: the reference estimator, the seed notebook's joint maximum likelihood by Adam.

Objective (mean negative log-likelihood over the observed responses plus a penalty that pins
the origin of the scale):

.. math::
    L(\theta, b) = -\frac{1}{|O|}\sum_{(i,j)\in O}
        \big[y_{ij}\log\sigma(\theta_i - b_j) + (1-y_{ij})\log(1-\sigma(\theta_i - b_j))\big]
        + \alpha\,\bar b^{\,2}

minimised by full-batch Adam (lr 0.01, 1000 epochs) from :math:`\theta = b = 0`, in float32,
with :math:`\alpha = 10^{-2}` — exactly the notebook's defaults. The loss is computed from the
logits (``binary_cross_entropy_with_logits``), which is the notebook's Bernoulli log-probability
without its probability round trip: numerically safe at extreme logits and much faster.

Standard errors are the asymptotic :math:`1/\sqrt{I}` at the estimate (``inf`` for students
or questions with all responses right or all wrong, which have no finite ML estimate; their
Adam estimates are wherever 1000 epochs happened to leave them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import trange

from irtbench.estimators import _torch
from irtbench.estimators.base import (
    Estimator,
    RunResult,
    checkpoints,
    progress_enabled,
    register,
)

if TYPE_CHECKING:
    import torch


def reference_loss(
    skill: torch.Tensor,
    difficulty: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    n_observed: int,
    alpha: float,
) -> torch.Tensor:
    """The notebook's objective: mean observed negative log-likelihood + alpha * mean(b)^2."""
    import torch.nn.functional as F

    logits = skill[:, None] - difficulty[None, :]
    if weight is None:
        nll = F.binary_cross_entropy_with_logits(logits, y, reduction="mean")
    else:
        nll = F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum")
        nll = nll / n_observed
    return nll + alpha * difficulty.mean() ** 2


@dataclass
class _Problem:
    y: torch.Tensor
    weight: torch.Tensor | None
    n_observed: int
    device: torch.device
    options: dict[str, Any]


@register
class TorchAdam(Estimator):
    """Joint maximum likelihood by full-batch Adam: the seed notebook's reference estimator.

    Options:
        epochs: number of full-batch Adam steps (1000).
        lr: Adam learning rate (0.01).
        alpha: weight of the penalty ``mean(difficulty)^2`` (1e-2).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        seed: seeds torch (the fit itself is deterministic: zero start, full batch).
        progress: tqdm bar over epochs; None = only when stderr is a terminal.

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(300, 30, seed=1)
        >>> fit = irtbench.fit(data.responses, "torch-adam", device="cpu")
        >>> fit.n_iter, fit.device
        (1000, 'cpu')
        >>> bool(irtbench.recovery(fit, data)["corr_difficulty"] > 0.95)
        True
    """

    name = "torch-adam"
    backend = "torch"
    requirements = ("torch",)
    extra = "torch"
    summary = "reference: JML by full-batch Adam (lr 0.01, 1000 epochs), the seed notebook"
    asymptotic_standard_errors = True
    solves_reference_objective = True
    defaults = {
        "epochs": 1000,
        "lr": 0.01,
        "alpha": 1e-2,
        "device": "auto",
        "seed": 0,
        "progress": None,
    }

    @classmethod
    def devices(cls) -> list[str]:
        return ["cpu", "cuda"] if _torch.cuda_available() else ["cpu"]

    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> _Problem:
        device = _torch.resolve_device(options["device"])
        y, weight, n_observed = _torch.responses_to_device(responses, device)
        return _Problem(y, weight, n_observed, device, options)

    def device_of(self, problem: _Problem) -> str:
        return _torch.device_name(problem.device)

    def run(self, problem: _Problem) -> RunResult:
        import torch

        options, device = problem.options, problem.device
        torch.manual_seed(options["seed"])
        n_students, n_questions = problem.y.shape
        skill = torch.zeros(n_students, device=device, requires_grad=True)
        difficulty = torch.zeros(n_questions, device=device, requires_grad=True)
        optimizer = torch.optim.Adam([skill, difficulty], lr=options["lr"])
        epochs = options["epochs"]
        losses = torch.empty(epochs, device=device)
        snapshots, trace = checkpoints(epochs), []
        bar = trange(epochs, desc=self.name, leave=False,
                     disable=not progress_enabled(options["progress"]))
        for epoch in bar:
            optimizer.zero_grad()
            loss = reference_loss(skill, difficulty, problem.y, problem.weight,
                                  problem.n_observed, options["alpha"])
            losses[epoch] = loss.detach()
            loss.backward()
            optimizer.step()
            if epoch + 1 in snapshots:  # a device-side copy of n_students + n_questions floats
                trace.append((epoch + 1, skill.detach().clone(), difficulty.detach().clone()))
        _torch.synchronize(device)
        return RunResult(skill.detach(), difficulty.detach(), losses, n_iter=epochs, trace=trace)
