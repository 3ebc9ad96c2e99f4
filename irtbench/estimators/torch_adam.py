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

**One objective, three layouts.** :func:`reference_loss` is the only torch implementation of
this objective: it sums :func:`observed_nll` over the pieces of a :class:`DeviceResponses`
(the whole float32 matrix, the gathered logits of sparse triples, or one block of int8 rows at a
time), so every layout minimises exactly the same function.

**Memory.** Up to ``COMPACT_ABOVE`` responses (``storage="auto"``) the data are held as float32
(plus a float32 mask when some are missing) and the loss is differentiated by autograd, as in
the notebook: about 16 bytes per response at peak (data 4, mask 4, logits, loss terms and their
gradient 4 each). Above it, or with ``storage="int8"``, the responses are held as int8 codes
(1 byte per response, -1 = missing) and the gradient is accumulated a block of rows at a time
(about ``BLOCK_ELEMENTS`` responses, each block's graph freed after its backward pass) and
handed to the same Adam: 1 byte per response plus a few float32 blocks, whatever the size.

**Sparse triples** (:class:`~irtbench.responses.SparseResponses`): the logits of the observed
responses are gathered and the mean runs over them, the same objective (17 bytes per observed
response for the data).

Standard errors are the asymptotic :math:`1/\sqrt{I}` at the estimate, computed inside the
timed fit (``inf`` for students or questions with all responses right or all wrong, which have
no finite ML estimate; their Adam estimates are wherever 1000 epochs happened to leave them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm.auto import trange

from irtbench.estimators import _torch
from irtbench.estimators.base import (
    Option,
    Result,
    Snapshot,
    Stopwatch,
    checkpoints,
    host,
    progress_enabled,
    register,
)
from irtbench.model import asymptotic_se
from irtbench.responses import COMPACT_ABOVE, Responses, is_sparse, row_blocks

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceResponses", "observed_nll", "reference_loss", "TorchAdam"]


@dataclass
class DeviceResponses:
    """Responses on a torch device in one of three layouts: float32 answers (``y``, missing 0)
    with an optional 0/1 ``weight``; int8 ``codes`` (-1 = missing); or sparse triples
    (``student``, ``question`` and their float32 answers in ``y``)."""

    n_observed: int
    y: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    student: torch.Tensor | None = None
    question: torch.Tensor | None = None

    @classmethod
    def transfer(cls, responses: Responses, n_observed: int, device: torch.device,
                 storage: str) -> DeviceResponses:
        """Move host responses to ``device`` in the layout ``storage`` asks for
        (``"auto"``: int8 above ``COMPACT_ABOVE`` cells)."""
        if is_sparse(responses):
            student, question, y = _torch.sparse_to_device(responses, device)
            return cls(n_observed, y=y.float(), student=student, question=question)
        if storage == "int8" or (storage == "auto" and responses.size > COMPACT_ABOVE):
            return cls(n_observed, codes=_torch.codes_to_device(responses, device))
        y, weight = _torch.responses_to_device(responses, device)
        return cls(n_observed, y=y, weight=weight)

    def pieces(self, skill: torch.Tensor, difficulty: torch.Tensor
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """``(logits, y, weight)`` of each piece of the data: the whole matrix, the gathered
        observed responses, or one block of int8 rows at a time."""
        if self.student is not None:
            yield skill[self.student] - difficulty[self.question], self.y, None
        elif self.codes is None:
            yield skill[:, None] - difficulty[None, :], self.y, self.weight
        else:
            for rows in row_blocks(tuple(self.codes.shape), gpu=self.codes.is_cuda):
                y, observed = _torch.decode(self.codes[rows], skill.dtype)
                yield skill[rows, None] - difficulty[None, :], y, observed


def observed_nll(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
                 ) -> torch.Tensor:
    r""":math:`\sum_{(i,j)\ \mathrm{obs}} \log(1 + e^{x_{ij}}) - y_{ij}x_{ij}`: the notebook's
    Bernoulli negative log-likelihood from the logits (no probability round trip)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum")


def reference_loss(skill: torch.Tensor, difficulty: torch.Tensor, data: DeviceResponses,
                   alpha: float, *, backward: bool = False) -> torch.Tensor:
    """The notebook's objective: mean observed negative log-likelihood + alpha * mean(b)^2.

    With ``backward=True`` each piece is differentiated as soon as it is summed (gradients
    accumulate in ``skill.grad`` and ``difficulty.grad``), so only one block's graph is alive at
    a time; the returned loss is then detached."""
    total = None
    for logits, y, weight in data.pieces(skill, difficulty):
        term = observed_nll(logits, y, weight) / data.n_observed
        if backward:
            term.backward()
            term = term.detach()
        total = term if total is None else total + term
    penalty = alpha * difficulty.mean() ** 2
    if backward:
        penalty.backward()
        penalty = penalty.detach()
    return total + penalty


def fused_step(skill: torch.Tensor, difficulty: torch.Tensor, codes: torch.Tensor,
               n_observed: float, alpha: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The same objective with its gradient written out, for one fused pass over int8 codes
    (-1 = missing) under ``torch.compile`` (Triton on CUDA, C++ on the CPU):

    .. math::
        \frac{\partial L}{\partial\theta_i} = \frac{1}{|O|}\sum_{j\in O_i}(p_{ij} - y_{ij}),\qquad
        \frac{\partial L}{\partial b_j} = -\frac{1}{|O|}\sum_{i\in O^j}(p_{ij} - y_{ij})
            + \frac{2\alpha\bar b}{J}.

    Returns ``(loss, grad_skill, grad_difficulty)``; a test holds it to :func:`reference_loss`
    and autograd to 1e-5."""
    import torch
    import torch.nn.functional as F

    logits = skill[:, None] - difficulty[None, :]
    answers = (codes == 1).to(logits.dtype)
    observed = (codes >= 0).to(logits.dtype)
    residual = (torch.sigmoid(logits) - answers) * observed
    nll = ((F.softplus(logits) - answers * logits) * observed).sum()
    mean_difficulty = difficulty.mean()
    loss = nll / n_observed + alpha * mean_difficulty * mean_difficulty
    grad_skill = residual.sum(dim=1) / n_observed
    grad_difficulty = (-residual.sum(dim=0) / n_observed
                       + 2 * alpha * mean_difficulty / difficulty.shape[0])
    return loss, grad_skill, grad_difficulty


@dataclass
class AdamState(_torch.TorchState):
    """The torch state plus the choice of kernel and, once compiled, the fused step."""

    compiled: bool = False
    step: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None


@register
class TorchAdam(_torch.TorchEstimator):
    """Joint maximum likelihood by full-batch Adam: the seed notebook's reference estimator.

    Options:
        epochs: number of full-batch Adam steps (1000).
        lr: Adam learning rate (0.01).
        alpha: weight of the penalty ``mean(difficulty)^2`` (1e-2).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        seed: seeds torch (the fit itself is deterministic: zero start, full batch).
        storage: ``"auto"`` (int8 above ``COMPACT_ABOVE`` responses), ``"float32"`` or ``"int8"``.
        kernel: ``"autograd"`` (the objective differentiated by autograd, piece by piece),
            ``"compiled"`` (:func:`fused_step` under ``torch.compile`` over int8 codes: one pass
            per epoch; compiled in ``compile``, timed apart) or ``"auto"`` (compiled on CUDA
            with int8 storage, autograd elsewhere).
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
    summary = "reference: JML by full-batch Adam (lr 0.01, 1000 epochs), the seed notebook"
    solves_reference_objective = True
    accepts_sparse = True
    warm_up_options = {"epochs": 2}
    defaults = {
        "epochs": 1000,
        "lr": 0.01,
        "alpha": 1e-2,
        "device": "auto",
        "seed": 0,
        "storage": "auto",
        "kernel": "auto",
        "progress": None,
    }

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """int8 storage: 1 byte per response + 250 MB of blocks; float32: 16 (20 with missing)
        bytes per response + 50 MB (the module docstring says why)."""
        size = n_students * n_questions
        storage = {**self.defaults, **self.options}["storage"]
        if storage == "int8" or (storage == "auto" and size > COMPACT_ABOVE):
            return 1.0 * size + 250e6
        return (20.0 if missing else 16.0) * size + 50e6

    def check_options(self, options: dict[str, Option]) -> None:
        super().check_options(options)
        if options["storage"] not in ("auto", "float32", "int8"):
            raise ValueError(f"option storage={options['storage']!r} must be 'auto', 'float32' "
                             "or 'int8'")
        if options["kernel"] not in ("auto", "autograd", "compiled"):
            raise ValueError(f"option kernel={options['kernel']!r} must be 'auto', 'autograd' "
                             "or 'compiled'")

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        base = super().setup(responses, options, n_observed)
        int8 = options["storage"] == "int8" or (options["storage"] == "auto"
                                                and responses.size > COMPACT_ABOVE)
        compiled = options["kernel"] == "compiled" or (
            options["kernel"] == "auto" and base.torch_device.type == "cuda" and int8
            and not is_sparse(responses))
        if compiled and is_sparse(responses):
            raise ValueError("kernel='compiled' reads a dense int8 matrix; sparse triples are "
                             "fitted with kernel='autograd'")
        return AdamState(**vars(base), compiled=compiled)

    def compiles(self, state: AdamState) -> bool:
        return state.compiled

    def compile(self, state: AdamState) -> None:
        """``torch.compile`` of :func:`fused_step` for the data's shape, run once on zeros."""
        import torch

        state.step = torch.compile(fused_step, dynamic=False)
        codes = torch.zeros(state.responses.shape, dtype=torch.int8, device=state.torch_device)
        zeros = [torch.zeros(n, device=state.torch_device) for n in state.responses.shape]
        state.step(*zeros, codes, float(state.n_observed), float(state.options["alpha"]))
        _torch.synchronize(state.torch_device)

    def run(self, state: AdamState) -> Result:
        import torch

        options, device = state.options, state.torch_device
        storage = "int8" if state.compiled else str(options["storage"])
        data = DeviceResponses.transfer(state.responses, state.n_observed, device, storage)
        step = state.step or (torch.compile(fused_step, dynamic=False) if state.compiled else None)
        clock = Stopwatch()
        torch.manual_seed(int(options["seed"]))
        n_students, n_questions = state.responses.shape
        skill = torch.zeros(n_students, device=device, requires_grad=True)
        difficulty = torch.zeros(n_questions, device=device, requires_grad=True)
        optimizer = torch.optim.Adam([skill, difficulty], lr=options["lr"])
        epochs = int(options["epochs"])
        losses = torch.empty(epochs, device=device)
        snapshots, trace = checkpoints(epochs), []
        bar = trange(epochs, desc=self.name, leave=False,
                     disable=not progress_enabled(options["progress"]))
        alpha = float(options["alpha"])
        for epoch in bar:
            optimizer.zero_grad()
            if step is None:
                losses[epoch] = reference_loss(skill, difficulty, data, alpha, backward=True)
            else:
                with torch.no_grad():
                    losses[epoch], skill.grad, difficulty.grad = step(
                        skill, difficulty, data.codes, float(data.n_observed), alpha)
            optimizer.step()
            if epoch + 1 in snapshots:  # a device-side copy of n_students + n_questions floats
                trace.append(_snapshot(epoch + 1, skill, difficulty))
        _torch.synchronize(device)
        compute_seconds = clock.stop()
        skill_host, difficulty_host = host(skill), host(difficulty)
        skill_se, difficulty_se = asymptotic_se(state.responses, skill_host, difficulty_host)
        return Result(skill_host, difficulty_host, skill_se, difficulty_se, host(losses),
                      epochs, compute_seconds, trace=trace)


def _snapshot(iteration: int, skill: torch.Tensor, difficulty: torch.Tensor) -> Snapshot:
    """A device-side copy of the parameters, brought to the host after the clock."""
    skill, difficulty = skill.detach().clone(), difficulty.detach().clone()
    return Snapshot(iteration, lambda: (host(skill), host(difficulty)))
