r"""``torch-adam``: the reference estimator, the seed notebook's joint maximum likelihood by Adam.

Objective (mean negative log-likelihood over the observed responses plus a penalty that pins
the origin of the scale):

.. math::
    L(\theta, b) = -\frac{1}{|O|}\sum_{(i,j)\in O}
        \big[y_{ij}\log\sigma(\theta_i - b_j) + (1-y_{ij})\log(1-\sigma(\theta_i - b_j))\big]
        + \alpha\,\bar b^{\,2}

minimised by full-batch Adam (lr 0.01, 1000 epochs) from :math:`\theta = b = 0`, in float32,
with :math:`\alpha = 10^{-2}` — exactly the notebook's defaults.

**Every model, one generic path, the Rasch model's fast ones.** The objective of any model is
the model's own (:class:`~irtbench.models.fitting.Objective`: its log-likelihood from its
logits, its gauge penalty, its priors); for the Rasch model it is the notebook's, above.
:func:`objective_loss` sums it over the pieces of a :class:`DeviceResponses` (the whole float32
matrix, the gathered pairs of sparse triples, or one block of int8 rows at a time), and
``"autograd"`` differentiates it as the notebook does: the path of every model, written with no
branch on the model. Where the model offers faster ones (``Model.fast_paths``): ``"closed"``
(:func:`closed_form_step`) writes the Rasch gradient out, piece by piece, with no graph;
``"compiled"`` (:func:`fused_step` under ``torch.compile``) fuses it over a whole dense matrix
into one pass; ``"fused"`` (:mod:`irtbench.kernels.fused_epoch`, Rasch and 2PL on CUDA) is one
Triton pass per epoch, the epochs replayed as a CUDA graph. ``"auto"`` takes the fused kernel on
CUDA where the model has one, compiles for the Rasch model on CUDA and for float32 matrices of
at least ``COMPILE_FROM`` responses on a CPU, takes the closed form elsewhere for it, and
autograd for the other models. Tests hold the fast paths to autograd of :func:`reference_loss`
(:func:`objective_loss` of the Rasch model).

**Memory.** Up to ``COMPACT_ABOVE`` responses (``storage="auto"``) the data are held as float32
(plus a float32 mask when some are missing): at most about 16 bytes per response at peak (data
4, mask 4, and with autograd the logits, loss terms and their gradient 4 each; the closed form
needs one residual and its absolute value, the compiled kernel nothing of the matrix's size).
Above it, or with ``storage="int8"``, the responses are held as int8 codes (1 byte per response,
-1 = missing), decoded inside the compiled pass or a block of rows at a time (about
``BLOCK_ELEMENTS`` responses) by the other kernels: 1 byte per response plus a few float32
blocks, whatever the size.

**Sparse triples** (:class:`~irtbench.responses.SparseResponses`): the logits of the observed
responses are gathered and the mean runs over them, the same objective (17 bytes per observed
response for the data).

Standard errors are the asymptotic :math:`1/\sqrt{I}` at the estimate, computed inside the
timed fit (``inf`` for students or questions with all responses right or all wrong, which have
no finite ML estimate; their Adam estimates are wherever 1000 epochs happened to leave them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from tqdm.auto import trange

from irtbench.estimators import options as option
from irtbench.estimators import _torch
from irtbench.kernels import fused_epoch, graph_loop
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
from irtbench.models import MODELS, get_model
from irtbench.models.fitting import Objective, ops_for
from irtbench.responses import COMPACT_ABOVE, Responses, is_sparse, row_blocks

if TYPE_CHECKING:
    import torch

#: from this many responses a float32 matrix on a CPU gets the compiled kernel (a 512x512 one)
COMPILE_FROM = 2**18

def stored_as(storage: Option, size: int) -> str:
    """The layout ``"int8"`` or ``"float32"`` that option ``storage`` gives a dense matrix of
    ``size`` responses (``"auto"``: int8 above ``COMPACT_ABOVE``)."""
    if storage == "auto":
        return "int8" if size > COMPACT_ABOVE else "float32"
    return str(storage)


__all__ = ["DeviceResponses", "TorchAdam", "objective_loss", "reference_loss"]


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
                 storage: Option) -> DeviceResponses:
        """Move host responses to ``device`` in the layout ``storage`` asks for
        (``"auto"``: int8 above ``COMPACT_ABOVE`` cells)."""
        if is_sparse(responses):
            student, question, y = _torch.sparse_to_device(responses, device)
            return cls(n_observed, y=y.float(), student=student, question=question)
        if stored_as(storage, responses.size) == "int8":
            return cls(n_observed, codes=_torch.codes_to_device(responses, device))
        y, weight = _torch.responses_to_device(responses, device)
        return cls(n_observed, y=y, weight=weight)

    def pieces(self, dtype: torch.dtype) -> Iterator[Piece]:
        """The :class:`Piece` s of the data: the whole matrix, the gathered observed responses,
        or one block of int8 rows at a time (decoded to ``dtype``)."""
        if self.student is not None:
            yield Piece(None, self.y, None, self.student, self.question)
            return
        if self.codes is None:
            yield Piece(slice(None), self.y, self.weight)
            return
        for rows in row_blocks(tuple(self.codes.shape), gpu=self.codes.is_cuda):
            yield Piece(rows, *_torch.decode(self.codes[rows], dtype))


class Piece(NamedTuple):
    """One piece of the data: a block of dense ``rows`` with their answers ``y`` and the 0/1
    ``weight`` of the observed ones (None: all observed), or (``rows`` None) the observed
    responses gathered as pairs ``student``, ``question``."""

    rows: slice | None
    y: torch.Tensor
    weight: torch.Tensor | None
    student: torch.Tensor | None = None
    question: torch.Tensor | None = None

    def skill(self, skill: torch.Tensor) -> torch.Tensor:
        """The skills of this piece's rows, or of its pairs' students."""
        return skill[self.rows] if self.student is None else skill[self.student]

    def rasch_logits(self, skill: torch.Tensor, difficulty: torch.Tensor) -> torch.Tensor:
        r""":math:`\theta_i - b_j` of the piece (the Rasch model's fast paths)."""
        if self.student is None:
            return skill[self.rows, None] - difficulty[None, :]
        return skill[self.student] - difficulty[self.question]


def objective_loss(objective: Objective, raw: dict[str, torch.Tensor], data: DeviceResponses,
                   *, backward: bool = False) -> torch.Tensor:
    r"""The model's mean objective (:class:`~irtbench.models.fitting.Objective`: its
    log-likelihood from its logits over the observed responses, its gauge penalty, its
    priors) over the pieces of ``data``, from the raw parameters ``raw`` (``"skill"`` and the
    model's unconstrained item parameters). For the Rasch model this is the notebook's
    objective, mean observed negative log-likelihood + alpha * mean(b)^2.

    With ``backward=True`` each piece is differentiated as soon as it is summed (gradients
    accumulate in the parameters' ``.grad``), so only one block's graph is alive at a time; the
    returned loss is then detached."""
    ops = ops_for(raw["skill"])
    values = objective.values(ops, raw)  # shared by the pieces: their graphs keep it
    total = None
    for piece in data.pieces(raw["skill"].dtype):
        term = -objective.log_likelihood(ops, piece.skill(raw["skill"]), values, piece.y,
                                         piece.weight, piece.question) / data.n_observed
        if backward:
            term.backward(retain_graph=True)
            term = term.detach()
        total = term if total is None else total + term
    penalty = objective.penalty(ops, raw, values)
    if backward:
        penalty.backward()
        penalty = penalty.detach()
    return total + penalty


def reference_loss(skill: torch.Tensor, difficulty: torch.Tensor, data: DeviceResponses,
                   alpha: float, *, backward: bool = False) -> torch.Tensor:
    """The notebook's objective, mean observed negative log-likelihood + alpha * mean(b)^2
    (:func:`objective_loss` of the Rasch model)."""
    objective = Objective(get_model("rasch"), {"alpha": alpha}, data.n_observed)
    return objective_loss(objective, {"skill": skill, "difficulty": difficulty}, data,
                          backward=backward)


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
        answers, weight = _torch.decode(answers, logits.dtype)
    residual, nll = residual_terms(logits, answers, weight)
    mean_difficulty = difficulty.mean()
    loss = nll / n_observed + alpha * mean_difficulty * mean_difficulty
    grad_skill = residual.sum(dim=1) / n_observed
    grad_difficulty = (-residual.sum(dim=0) / n_observed
                       + 2 * alpha * mean_difficulty / difficulty.shape[0])
    return loss, grad_skill, grad_difficulty


@dataclass
class AdamState(_torch.TorchState):
    """The torch state plus the model's objective, the kernel that computes each epoch's loss
    and gradient (``"autograd"``, ``"closed"``, ``"compiled"`` or ``"fused"``) and, once
    compiled, the fused step or the captured epochs."""

    objective: Objective | None = None
    kernel: str = "closed"
    step: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
    #: the fused path's captured epochs and the device buffer of the int8 codes
    loop: graph_loop.GraphedEpochs | None = None
    codes: torch.Tensor | None = None


@register
class TorchAdam(_torch.TorchEstimator):
    r"""Joint maximum likelihood by full-batch Adam: the seed notebook's reference estimator.

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
    colour = 12
    objective = "joint"
    infinite_extremes = True
    models = MODELS  # the generic path fits every model
    default_sweep_models = ("rasch", "2pl")
    summary = "reference: JML by full-batch Adam (lr 0.01, 1000 epochs), the seed notebook"
    solves_reference_objective = True
    accepts_sparse = True
    warm_up_options = {"epochs": 2}
    spec = {
        **option.ADAM,
        "storage": option.choice("auto", "'auto' (int8 above COMPACT_ABOVE responses), "
                                  "'float32' or 'int8'", "auto", "float32", "int8"),
        "kernel": option.choice("auto", "'autograd' (the model's objective differentiated, as "
                                 "the notebook does), 'closed' (the gradient written out), "
                                 "'compiled' (torch.compile's fused pass), 'fused' (a Triton "
                                 "pass over int8 codes, the epochs replayed as a CUDA graph) or "
                                 "'auto' (auto_kernel); 'closed' and 'compiled' where the model "
                                 "offers them (Rasch), 'fused' on CUDA (Rasch, 2PL)",
                                 "auto", "autograd", "closed", "compiled", "fused"),
        "progress": option.PROGRESS,
    }

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """int8 storage: 1 byte per response + 250 MB of blocks; float32: 16 (20 with missing)
        bytes per response + 50 MB (the module docstring says why); a model fitted by autograd
        (no closed form: 2PL, 3PL ...) holds about four more float32 per response in its graph
        (logits, terms and their gradients): 32 (36) bytes."""
        size = n_students * n_questions
        chosen = self.config
        if stored_as(chosen["storage"], size) == "int8":
            return 1.0 * size + 250e6
        extra = 0.0 if "closed" in get_model(chosen["model"]).fast_paths else 16.0
        return (20.0 if missing else 16.0) * size + extra * size + 50e6

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        base = super().setup(responses, options, n_observed)
        model = get_model(str(options["model"]))
        kernel = str(options["kernel"])
        if kernel == "auto":
            kernel = self.auto_kernel(responses, base.torch_device.type, model.name)
        elif kernel == "fused" and not fused_epoch.supports(model.name, base.torch_device.type):
            raise ValueError(f"kernel='fused' needs Triton and a CUDA device and fits the "
                             f"{' and '.join(fused_epoch.MODELS)}; here: {model.name} on "
                             f"{base.device}{'' if fused_epoch.available() else ', no Triton'}")
        elif kernel in ("closed", "compiled") and "closed" not in model.fast_paths:
            raise ValueError(f"kernel={kernel!r} is written for the Rasch model; the "
                             f"{model.name} is fitted with kernel='autograd' (or 'fused' on "
                             "CUDA where it has one)")
        if kernel in ("compiled", "fused") and is_sparse(responses):
            raise ValueError(f"kernel={kernel!r} reads a dense matrix; sparse triples are "
                             "fitted with kernel='closed' or 'autograd'")
        return AdamState(**vars(base), objective=Objective(model, options, n_observed),
                         kernel=kernel)

    def auto_kernel(self, responses: Responses, device_type: str, model: str = "rasch") -> str:
        """For dense data on CUDA, ``"fused"`` where the model has a fused kernel and Triton is
        there (:func:`~irtbench.kernels.fused_epoch.supports`), else ``"compiled"`` (where the
        model offers the closed form: Rasch) or ``"autograd"``; on a CPU, with the closed form,
        ``"compiled"`` for float32 data from ``COMPILE_FROM`` responses (Inductor's C++ is
        about 2x the eager closed form there; its int8 decoding is not, and below that size
        its compile is not won back) and ``"closed"`` otherwise; without, ``"autograd"``."""
        dense_cuda = device_type == "cuda" and not is_sparse(responses)
        if dense_cuda and fused_epoch.supports(model, device_type):
            return "fused"
        if "closed" not in get_model(model).fast_paths:
            return "autograd"
        if is_sparse(responses):
            return "closed"
        if device_type == "cuda":
            return "compiled"
        float32 = self.storage(responses) == "float32"
        return "compiled" if float32 and responses.size >= COMPILE_FROM else "closed"

    def storage(self, responses: Responses) -> str:
        """The layout the dense data take on the device: ``"float32"`` or ``"int8"``."""
        return stored_as(self.config["storage"], responses.size)

    def compiles(self, state: AdamState) -> bool:
        return state.kernel in ("compiled", "fused")

    def compile(self, state: AdamState) -> None:
        """The fused path's capture (:meth:`capture`) or ``torch.compile`` of
        :func:`fused_step` (:meth:`compile_step`). Where ``kernel="auto"`` chose the fused
        path and its capture fails, a warning says why and the fit takes the next kernel
        ``auto`` would choose."""
        if state.kernel != "fused":
            self.compile_step(state)
            return
        try:
            self.capture(state)
        except Exception as error:  # Triton's and CUDA's failures have no common type
            if state.options["kernel"] == "fused":
                raise
            closed = "closed" in state.objective.model.fast_paths
            state.kernel = "compiled" if closed else "autograd"
            state.loop = state.codes = None
            warnings.warn(f"the fused kernel failed ({type(error).__name__}: {error}); "
                          f"torch-adam fits with kernel={state.kernel!r} instead",
                          RuntimeWarning, stacklevel=2)
            if state.kernel == "compiled":
                self.compile_step(state)

    def capture(self, state: AdamState) -> None:
        """The fused path's one-time work for these shapes: the int8 codes' device buffer,
        the kernel's partial sums, Triton's compilation and the CUDA graph of one epoch
        (:class:`~irtbench.kernels.graph_loop.GraphedEpochs`), from the model's start."""
        import torch

        options, device = state.options, state.torch_device
        codes = torch.zeros(state.responses.shape, dtype=torch.int8, device=device)
        epoch = fused_epoch.FusedEpoch.for_model(
            codes, state.objective.model.name, options, float(state.n_observed))
        start = state.objective.start(state.responses.shape)
        parameters = [torch.from_numpy(value).to(device) for value in start.values()]

        def gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
            loss, *grads = fused_epoch.epoch_gradients(epoch, *parameters)
            return loss, [g for g in grads if g is not None]

        state.loop = graph_loop.GraphedEpochs(parameters, gradients, float(options["lr"]),
                                              [0.0] * len(parameters))
        state.loop.prepare(int(options["epochs"]))
        state.codes = codes
        _torch.synchronize(device)

    def run_fused(self, state: AdamState) -> Result:
        """The fused path: the codes into their device buffer, the captured epochs replayed,
        the estimates and SEs back."""
        if state.loop is None:
            self.capture(state)
        _torch.fill_codes(state.codes, state.responses)
        loop = state.loop
        names = list(state.objective.start((1, 1)))
        clock = Stopwatch()
        trace: list[Snapshot] = []
        losses = loop.run(checkpoints(loop.epochs), lambda epoch: trace.append(
            _snapshot(state.objective, epoch, dict(zip(names, loop.parameters)))))
        _torch.synchronize(state.torch_device)
        compute_seconds = clock.stop()
        data = DeviceResponses(state.n_observed, codes=state.codes)
        return self.result(state, dict(zip(names, loop.parameters)), data, losses, trace,
                           compute_seconds)

    def compile_step(self, state: AdamState) -> None:
        """``torch.compile`` of :func:`fused_step` for the data's shape and layout, run once on
        zeros. Where ``kernel="auto"`` chose it and compiling fails (no C++ compiler, say), a
        warning says so and the fit uses the closed form."""
        import torch

        device, shape = state.torch_device, state.responses.shape
        int8 = self.storage(state.responses) == "int8"
        answers = torch.zeros(shape, dtype=torch.int8 if int8 else torch.float32, device=device)
        weight = None if int8 or state.n_observed == state.responses.size else answers
        try:
            state.step = torch.compile(fused_step, dynamic=False)
            state.step(torch.zeros(shape[0], device=device), torch.zeros(shape[1], device=device),
                       answers, weight, float(state.n_observed), float(state.options["alpha"]))
        except Exception as error:  # Inductor's failures have no common type
            if state.options["kernel"] == "compiled":
                raise
            warnings.warn(f"torch.compile failed ({type(error).__name__}: {error}); torch-adam "
                          "fits with kernel='closed' instead", RuntimeWarning, stacklevel=2)
            state.kernel, state.step = "closed", None
        _torch.synchronize(device)

    def run(self, state: AdamState) -> Result:
        import torch

        if state.kernel == "fused":
            return self.run_fused(state)
        options, device, objective = state.options, state.torch_device, state.objective
        data = DeviceResponses.transfer(state.responses, state.n_observed, device,
                                        str(options["storage"]))
        if state.kernel == "compiled" and state.step is None:
            state.step = torch.compile(fused_step, dynamic=False)
        clock = Stopwatch()
        torch.manual_seed(int(options["seed"]))
        raw = {name: torch.from_numpy(value).to(device).requires_grad_()
               for name, value in objective.start(state.responses.shape).items()}
        # the notebook's Adam; fused (one kernel per step, the same update) off the autograd path
        optimizer = torch.optim.Adam(list(raw.values()), lr=options["lr"],
                                     fused=state.kernel != "autograd" or None)
        epochs = int(options["epochs"])
        losses = torch.empty(epochs, device=device)
        snapshots, trace = checkpoints(epochs), []
        bar = trange(epochs, desc=self.name, leave=False,
                     disable=not progress_enabled(options["progress"]))
        alpha = float(options["alpha"])
        for epoch in bar:
            optimizer.zero_grad()
            if state.kernel == "closed":
                losses[epoch] = closed_form_step(raw["skill"], raw["difficulty"], data, alpha)
            elif state.kernel == "autograd":
                losses[epoch] = objective_loss(objective, raw, data, backward=True)
            else:
                answers = data.codes if data.codes is not None else data.y
                with torch.no_grad():
                    losses[epoch], raw["skill"].grad, raw["difficulty"].grad = state.step(
                        raw["skill"], raw["difficulty"], answers, data.weight,
                        float(data.n_observed), alpha)
            optimizer.step()
            if epoch + 1 in snapshots:  # a device-side copy of the parameters
                trace.append(_snapshot(objective, epoch + 1, raw))
        _torch.synchronize(device)
        return self.result(state, raw, data, losses, trace, clock.stop())

    def result(self, state: AdamState, raw: dict[str, torch.Tensor], data: DeviceResponses,
               losses: torch.Tensor, trace: list[Snapshot], compute_seconds: float) -> Result:
        """The estimates as the model reports them and their SEs (the model's
        :meth:`~irtbench.models.base.Model.fit_errors`, from information sums taken on the
        device where the model has them and the data are dense), as host arrays."""
        import torch

        objective, model = state.objective, state.objective.model
        items = objective.report({name: host(value) for name, value in raw.items()
                                  if name != "skill"})
        sums = None
        if data.student is None and model.needs_sums(state.scan):
            with torch.no_grad():
                values = objective.values(ops_for(raw["skill"]), raw)
                sums = device_sums(data, model.information_sums, raw["skill"],
                                   *(values[name] for name in model.sums_parameters))
        skill = host(raw["skill"])
        skill_se, item_se = model.fit_errors(state.responses, skill, items, scan=state.scan,
                                             found=state.found, sums=sums)
        return Result(skill, items.pop("difficulty"), skill_se, item_se.pop("difficulty"),
                      host(losses), len(losses), compute_seconds, {"kernel": state.kernel},
                      trace=trace, items=items, item_se=item_se)


def device_sums(data: DeviceResponses, sums: Callable[..., tuple], skill: torch.Tensor,
                *items: torch.Tensor) -> tuple[np.ndarray, ...]:
    """A model's information ``sums(torch, skill, *items, observed)`` (per student first, then
    per question) over dense data on their device in float64: a block of int8 rows at a time,
    or the float32 matrix's blocks with their weight; as host arrays."""
    import torch

    with torch.no_grad():
        skill = skill.detach().double()
        items = tuple(item.detach().double() for item in items)
        matrix = data.y if data.codes is None else data.codes
        totals = None
        for rows in row_blocks(tuple(matrix.shape), gpu=matrix.is_cuda):
            observed = (_torch.decode(data.codes[rows], torch.float64)[1]
                        if data.codes is not None else
                        None if data.weight is None else data.weight[rows])
            parts = sums(torch, skill[rows], *items, observed)
            if totals is None:
                totals = [torch.empty_like(skill)] + [torch.zeros_like(p) for p in parts[1:]]
            totals[0][rows] = parts[0]
            for total, part in zip(totals[1:], parts[1:]):
                total += part
    return tuple(host(total) for total in totals)


def _snapshot(objective: Objective, iteration: int, raw: dict[str, torch.Tensor]) -> Snapshot:
    """A device-side copy of the raw parameters, turned into the model's skills and items on
    the host after the clock."""
    copies = {name: value.detach().clone() for name, value in raw.items()}
    return Snapshot(iteration, lambda: objective.snapshot(
        {name: host(value) for name, value in copies.items()}))
