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

**Memory.** Up to ``COMPACT_ABOVE`` responses (``storage="auto"``) the data are held as float32
(plus a float32 mask when some are missing) and the loss is differentiated by autograd, as in
the notebook: about 16 bytes per response at peak (data 4, mask 4, logits, loss terms and their
gradient 4 each). Above it, or with ``storage="int8"``, the responses are held as int8 codes
(1 byte per response, -1 = missing) and the objective and its exact gradient,

.. math::
    \frac{\partial L}{\partial\theta_i} = \frac{1}{|O|}\sum_{j\in O_i}(p_{ij} - y_{ij}),\qquad
    \frac{\partial L}{\partial b_j} = -\frac{1}{|O|}\sum_{i\in O^j}(p_{ij} - y_{ij})
        + \frac{2\alpha\bar b}{J},

are accumulated a block of rows at a time (about ``BLOCK_ELEMENTS`` responses) and handed to the
same Adam: 1 byte per response plus a few float32 blocks (about 100 MB), whatever the size.

**Sparse triples** (:class:`~irtbench.data.SparseResponses`): the logits of the observed
responses are gathered and the mean runs over them, the same objective (17 bytes per observed
response for the data).

Standard errors are the asymptotic :math:`1/\sqrt{I}` at the estimate (``inf`` for students
or questions with all responses right or all wrong, which have no finite ML estimate; their
Adam estimates are wherever 1000 epochs happened to leave them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import trange

from irtbench.data import is_sparse
from irtbench.estimators import _newton, _torch
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


def sparse_reference_loss(
    skill: torch.Tensor,
    difficulty: torch.Tensor,
    student: torch.Tensor,
    question: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """The reference objective from sparse triples: the logits of the observed responses are
    gathered (autograd scatter-adds their gradient back), mean over them + alpha * mean(b)^2."""
    import torch.nn.functional as F

    logits = skill[student] - difficulty[question]
    return F.binary_cross_entropy_with_logits(logits, y, reduction="mean") + alpha * difficulty.mean() ** 2


#: above this many responses, ``storage="auto"`` holds them as int8 and fits block by block
COMPACT_ABOVE = 1 << 25
#: responses per block of the blockwise objective
BLOCK_ELEMENTS = 1 << 22


def blockwise_loss_and_gradient(
    skill: torch.Tensor,
    difficulty: torch.Tensor,
    codes: torch.Tensor,
    n_observed: int,
    alpha: float,
    rows_per_block: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference objective and its gradient from int8 codes, a block of rows at a time:
    ``(loss, grad_skill, grad_difficulty)`` (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    grad_skill = torch.empty_like(skill)
    grad_difficulty = torch.zeros_like(difficulty)
    nll = torch.zeros((), dtype=skill.dtype, device=skill.device)
    for start in range(0, codes.shape[0], rows_per_block):
        rows = slice(start, start + rows_per_block)
        y, observed = _torch.decode(codes[rows], skill.dtype)
        logits = skill[rows, None] - difficulty[None, :]
        nll += F.binary_cross_entropy_with_logits(logits, y, weight=observed, reduction="sum")
        residual = (torch.sigmoid(logits) - y) * observed
        grad_skill[rows] = residual.sum(dim=1)
        grad_difficulty -= residual.sum(dim=0)
    mean_difficulty = difficulty.mean()
    loss = nll / n_observed + alpha * mean_difficulty**2
    grad_difficulty = grad_difficulty / n_observed + 2 * alpha * mean_difficulty / len(difficulty)
    return loss, grad_skill / n_observed, grad_difficulty


@dataclass
class _Problem:
    y: torch.Tensor | None  # float32 storage
    weight: torch.Tensor | None
    codes: torch.Tensor | None  # int8 storage
    triples: tuple[torch.Tensor, torch.Tensor] | None  # sparse: (student, question); y in ``y``
    n_observed: int
    shape: tuple[int, int]
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
        storage: ``"auto"`` (int8 above ``COMPACT_ABOVE`` responses), ``"float32"`` or ``"int8"``.
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
    accepts_sparse = True
    defaults = {
        "epochs": 1000,
        "lr": 0.01,
        "alpha": 1e-2,
        "device": "auto",
        "seed": 0,
        "storage": "auto",
        "progress": None,
    }

    @classmethod
    def devices(cls) -> list[str]:
        return ["cpu", "cuda"] if _torch.cuda_available() else ["cpu"]

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """int8 storage: 1 byte per response + 250 MB of blocks; float32: 16 (20 with missing)
        bytes per response + 50 MB (the module docstring says why)."""
        size = n_students * n_questions
        storage = {**self.defaults, **self.options}["storage"]
        if storage == "int8" or (storage == "auto" and size > COMPACT_ABOVE):
            return 1.0 * size + 250e6
        return (20.0 if missing else 16.0) * size + 50e6

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        if options["storage"] not in ("auto", "float32", "int8"):
            raise ValueError(f"option storage={options['storage']!r} must be 'auto', 'float32' "
                             "or 'int8'")

    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> _Problem:
        device = _torch.resolve_device(options["device"])
        storage = options["storage"]
        if is_sparse(responses):
            student, question, y = _newton.sparse_on_device(responses, device)
            return _Problem(y.float(), None, None, (student, question), len(y), responses.shape,
                            device, options)
        if storage == "int8" or (storage == "auto" and responses.size > COMPACT_ABOVE):
            codes, n_observed = _torch.codes_to_device(responses, device)
            return _Problem(None, None, codes, None, n_observed, responses.shape, device, options)
        y, weight, n_observed = _torch.responses_to_device(responses, device)
        return _Problem(y, weight, None, None, n_observed, responses.shape, device, options)

    def device_of(self, problem: _Problem) -> str:
        return _torch.device_name(problem.device)

    def run(self, problem: _Problem) -> RunResult:
        import torch

        options, device = problem.options, problem.device
        torch.manual_seed(options["seed"])
        n_students, n_questions = problem.shape
        skill = torch.zeros(n_students, device=device, requires_grad=True)
        difficulty = torch.zeros(n_questions, device=device, requires_grad=True)
        optimizer = torch.optim.Adam([skill, difficulty], lr=options["lr"])
        epochs = options["epochs"]
        losses = torch.empty(epochs, device=device)
        snapshots, trace = checkpoints(epochs), []
        bar = trange(epochs, desc=self.name, leave=False,
                     disable=not progress_enabled(options["progress"]))
        rows_per_block = max(1, BLOCK_ELEMENTS // n_questions)
        for epoch in bar:
            optimizer.zero_grad()
            if problem.triples is not None:
                loss = sparse_reference_loss(skill, difficulty, *problem.triples, problem.y,
                                             options["alpha"])
                loss.backward()
            elif problem.codes is None:  # float32 storage: autograd, as the notebook
                loss = reference_loss(skill, difficulty, problem.y, problem.weight,
                                      problem.n_observed, options["alpha"])
                loss.backward()
            else:
                with torch.no_grad():
                    loss, skill.grad, difficulty.grad = blockwise_loss_and_gradient(
                        skill, difficulty, problem.codes, problem.n_observed, options["alpha"],
                        rows_per_block)
            losses[epoch] = loss.detach()
            optimizer.step()
            if epoch + 1 in snapshots:  # a device-side copy of n_students + n_questions floats
                trace.append((epoch + 1, skill.detach().clone(), difficulty.detach().clone()))
        _torch.synchronize(device)
        return RunResult(skill.detach(), difficulty.detach(), losses, n_iter=epochs, trace=trace)
