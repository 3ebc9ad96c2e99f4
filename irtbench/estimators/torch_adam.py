r"""``torch-adam``: the reference estimator, the seed notebook's joint maximum likelihood by Adam.

Objective (mean negative log-likelihood over the observed responses plus a penalty that pins
the origin of the scale):

.. math::
    L(\theta, b) = -\frac{1}{|O|}\sum_{(i,j)\in O}
        \big[y_{ij}\log\sigma(\theta_i - b_j) + (1-y_{ij})\log(1-\sigma(\theta_i - b_j))\big]
        + \alpha\,\bar b^{\,2}

minimised by full-batch Adam (lr 0.01, 1000 epochs) from :math:`\theta = b = 0`, in float32,
with :math:`\alpha = 10^{-2}` — exactly the notebook's defaults.

**One objective, three layouts, three kernels.** :func:`reference_loss` defines the objective
over the pieces of a :class:`DeviceResponses` (the whole float32 matrix, the gathered logits of
sparse triples, or one block of int8 rows at a time) from the logits
(``binary_cross_entropy_with_logits``: the notebook's Bernoulli log-probability without its
probability round trip). Each epoch's loss and gradient come from one of three kernels
(option ``kernel``): ``"autograd"`` differentiates :func:`reference_loss` as the notebook does;
``"closed"`` (:func:`closed_form_step`) writes the gradient out, piece by piece, with no graph;
``"compiled"`` (:func:`fused_step` under ``torch.compile``) fuses the closed form over a whole
dense matrix into one pass. ``"auto"`` compiles on CUDA and for float32 matrices of at least
``COMPILE_FROM`` responses on a CPU, and takes the closed form elsewhere. Tests hold the three
to each other to 1e-5 after 300 epochs.

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
from irtbench.models import get_model
from irtbench.models.rasch import information, information_sums, standard_errors
from irtbench.responses import COMPACT_ABOVE, Responses, is_sparse, row_blocks
from irtbench.models.threepl import (
    adam_items,
    floor_prior_of,
    floor_prior_term,
    start_logit_floor,
)
from irtbench.models.twopl import check_item_priors, joint_standard_errors, log_a_prior
from irtbench.models.twopl import information_sums as twopl_information_sums

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


__all__ = ["DeviceResponses", "TorchAdam", "observed_nll", "reference_loss"]


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

    def pieces(self, skill: torch.Tensor, difficulty: torch.Tensor,
               discrimination: torch.Tensor | None = None,
               logit_floor: torch.Tensor | None = None) -> Iterator[Piece]:
        r"""The :class:`Piece` s of the data: the whole matrix, the gathered observed responses,
        or one block of int8 rows at a time; logits :math:`\theta_i - b_j`, or
        :math:`a_j(\theta_i - b_j)` given the 2PL's ``discrimination``; with the 3PL's
        ``logit_floor`` (:math:`\operatorname{logit} c_j`) each piece carries it too."""
        if self.student is not None:
            logits = skill[self.student] - difficulty[self.question]
            if discrimination is not None:
                logits = logits * discrimination[self.question]
            floor = None if logit_floor is None else logit_floor[self.question]
            yield Piece(None, logits, self.y, None, floor)
            return
        blocks = ([(slice(None), self.y, self.weight)] if self.codes is None else
                  ((rows, *_torch.decode(self.codes[rows], skill.dtype))
                   for rows in row_blocks(tuple(self.codes.shape), gpu=self.codes.is_cuda)))
        for rows, y, weight in blocks:
            logits = skill[rows, None] - difficulty[None, :]
            if discrimination is not None:
                logits = logits * discrimination[None, :]
            yield Piece(rows, logits, y, weight,
                        None if logit_floor is None else logit_floor[None, :])


class Piece(NamedTuple):
    """One piece of the data: its ``logits`` (a block of rows, or gathered observed responses
    when ``rows`` is None), the answers ``y`` and the 0/1 ``weight`` of the observed ones (None:
    all observed)."""

    rows: slice | None
    logits: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor | None
    logit_floor: torch.Tensor | None = None


def observed_nll(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
                 ) -> torch.Tensor:
    r""":math:`\sum_{(i,j)\ \mathrm{obs}} \log(1 + e^{x_{ij}}) - y_{ij}x_{ij}`: the notebook's
    Bernoulli negative log-likelihood from the logits (no probability round trip)."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits, y, weight=weight, reduction="sum")


def floored_nll(logits: torch.Tensor, logit_floor: torch.Tensor, y: torch.Tensor,
                weight: torch.Tensor | None) -> torch.Tensor:
    r"""The 3PL's negative log-likelihood over the observed responses, with
    :math:`p = c + (1 - c)\sigma(x)`, :math:`c = \sigma(g)`, in log space:
    :math:`\log p = \operatorname{logaddexp}(\log\sigma(g), \log\sigma(-g) + \log\sigma(x))`,
    :math:`\log(1 - p) = \log\sigma(-g) + \log\sigma(-x)`."""
    import torch
    import torch.nn.functional as F

    log_not_floor = F.logsigmoid(-logit_floor)
    log_p = torch.logaddexp(F.logsigmoid(logit_floor), log_not_floor + F.logsigmoid(logits))
    terms = -(y * log_p + (1 - y) * (log_not_floor + F.logsigmoid(-logits)))
    return (terms if weight is None else terms * weight).sum()


def reference_loss(skill: torch.Tensor, difficulty: torch.Tensor, data: DeviceResponses,
                   alpha: float, *, backward: bool = False,
                   log_discrimination: torch.Tensor | None = None,
                   prior_log_a_sd: float | None = None,
                   logit_floor: torch.Tensor | None = None,
                   floor_prior: tuple[float, float] | None = None) -> torch.Tensor:
    r"""The notebook's objective: mean observed negative log-likelihood + alpha * mean(b)^2;
    for the 2PL (``log_discrimination`` given) the logits are :math:`a_j(\theta_i - b_j)` with
    :math:`a = e^{\log a}`, so the slopes are positive (a downward item's slope goes towards 0;
    ``mml-em``'s is free in sign: :mod:`irtbench.models.twopl`), and the penalty gains
    :math:`\alpha\,\overline{\log a}^{\,2}`, which pins the scale as the notebook's term pins the
    origin. ``prior_log_a_sd`` adds the prior :math:`\log a_j \sim N(0, \sigma^2)`
    (:func:`~irtbench.models.twopl.log_a_prior`).
    For the 3PL (``logit_floor`` given too) each response's term is :func:`floored_nll`'s and
    the floors' Beta prior ``floor_prior`` joins the penalty
    (:func:`~irtbench.models.threepl.floor_prior_term`).

    With ``backward=True`` each piece is differentiated as soon as it is summed (gradients
    accumulate in the parameters' ``.grad``), so only one block's graph is alive at a time; the
    returned loss is then detached."""
    total = None
    discrimination = None if log_discrimination is None else log_discrimination.exp()
    for piece in data.pieces(skill, difficulty, discrimination, logit_floor):
        term = (observed_nll(piece.logits, piece.y, piece.weight) if logit_floor is None else
                floored_nll(piece.logits, piece.logit_floor, piece.y, piece.weight))
        term = term / data.n_observed
        if backward:  # the 2PL's exp(log a) is shared by the pieces: keep its graph
            term.backward(retain_graph=discrimination is not None)
            term = term.detach()
        total = term if total is None else total + term
    penalty = alpha * difficulty.mean() ** 2
    if log_discrimination is not None:
        penalty = penalty + alpha * log_discrimination.mean() ** 2
        penalty = penalty + log_a_prior(log_discrimination, prior_log_a_sd, data.n_observed)
    if logit_floor is not None:
        import torch.nn.functional as F

        penalty = penalty + floor_prior_term(F.logsigmoid(logit_floor),
                                             F.logsigmoid(-logit_floor), floor_prior,
                                             data.n_observed)
    if backward:
        penalty.backward()
        penalty = penalty.detach()
    return total + penalty


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
        for piece in data.pieces(skill, difficulty):
            residual, piece_nll = residual_terms(piece.logits, piece.y, piece.weight)
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
    """The torch state plus the kernel that computes each epoch's loss and gradient
    (``"autograd"``, ``"closed"`` or ``"compiled"``) and, once compiled, the fused step."""

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
    models = ("rasch", "2pl", "3pl")
    default_sweep_models = ("rasch", "2pl")
    summary = "reference: JML by full-batch Adam (lr 0.01, 1000 epochs), the seed notebook"
    solves_reference_objective = True
    accepts_sparse = True
    warm_up_options = {"epochs": 2}
    spec = {
        **option.ADAM,
        "storage": option.choice("auto", "'auto' (int8 above COMPACT_ABOVE responses), "
                                  "'float32' or 'int8'", "auto", "float32", "int8"),
        "kernel": option.choice("auto", "'autograd' (the notebook's), 'closed' (the gradient "
                                 "written out), 'compiled' (torch.compile's fused pass), "
                                 "'fused' (a Triton pass over int8 codes, the epochs replayed "
                                 "as a CUDA graph: Rasch and 2PL on CUDA) or 'auto' "
                                 "(auto_kernel); the 3PL uses autograd",
                                 "auto", "autograd", "closed", "compiled", "fused"),
        "progress": option.PROGRESS,
    }

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """int8 storage: 1 byte per response + 250 MB of blocks; float32: 16 (20 with missing)
        bytes per response + 50 MB (the module docstring says why); the 2PL's and 3PL's
        autograd graph holds about four more float32 per response (a(theta - b), the floor's
        terms and their gradients): 32 (36) bytes."""
        size = n_students * n_questions
        chosen = {**self.defaults, **self.options}
        if stored_as(chosen["storage"], size) == "int8":
            return 1.0 * size + 250e6
        extra = 0.0 if chosen.get("model", "rasch") == "rasch" else 16.0
        return (20.0 if missing else 16.0) * size + extra * size + 50e6

    def check_options(self, options: dict[str, Option]) -> None:
        super().check_options(options)
        check_item_priors(options, ("prior_log_a_sd",), models=("2pl", "3pl"))

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        base = super().setup(responses, options, n_observed)
        kernel, model = str(options["kernel"]), str(options["model"])
        if kernel == "auto":
            kernel = self.auto_kernel(responses, base.torch_device.type, model)
        elif kernel == "fused" and not fused_epoch.supports(model, base.torch_device.type):
            raise ValueError(f"kernel='fused' needs Triton and a CUDA device and fits the "
                             f"{' and '.join(fused_epoch.MODELS)}; here: {model} on "
                             f"{base.device}{'' if fused_epoch.available() else ', no Triton'}")
        elif model != "rasch" and kernel not in ("autograd", "fused"):
            raise ValueError(f"kernel={kernel!r} is written for the Rasch model; the {model} is "
                             "fitted with kernel='autograd' (or 'fused' on CUDA)")
        if kernel in ("compiled", "fused") and is_sparse(responses):
            raise ValueError(f"kernel={kernel!r} reads a dense matrix; sparse triples are "
                             "fitted with kernel='closed' or 'autograd'")
        return AdamState(**vars(base), kernel=kernel)

    def auto_kernel(self, responses: Responses, device_type: str, model: str = "rasch") -> str:
        """For dense data on CUDA, ``"fused"`` where the model has a fused kernel and Triton is
        there (:func:`~irtbench.kernels.fused_epoch.supports`), else ``"compiled"`` (Rasch) or
        ``"autograd"``; on a CPU, for the Rasch model, ``"compiled"`` for float32 data from
        ``COMPILE_FROM`` responses (Inductor's C++ is about 2x the eager closed form there;
        its int8 decoding is not, and below that size its compile is not won back) and
        ``"closed"`` otherwise; the 2PL and 3PL ``"autograd"``."""
        dense_cuda = device_type == "cuda" and not is_sparse(responses)
        if dense_cuda and fused_epoch.supports(model, device_type):
            return "fused"
        if model != "rasch":
            return "autograd"
        if is_sparse(responses):
            return "closed"
        if device_type == "cuda":
            return "compiled"
        float32 = self.storage(responses) == "float32"
        return "compiled" if float32 and responses.size >= COMPILE_FROM else "closed"

    def storage(self, responses: Responses) -> str:
        """The layout the dense data take on the device: ``"float32"`` or ``"int8"``."""
        return stored_as({**self.defaults, **self.options}["storage"], responses.size)

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
            state.kernel = "compiled" if state.options["model"] == "rasch" else "autograd"
            state.loop = state.codes = None
            warnings.warn(f"the fused kernel failed ({type(error).__name__}: {error}); "
                          f"torch-adam fits with kernel={state.kernel!r} instead",
                          RuntimeWarning, stacklevel=2)
            if state.kernel == "compiled":
                self.compile_step(state)

    def capture(self, state: AdamState) -> None:
        """The fused path's one-time work for these shapes: the int8 codes' device buffer,
        the kernel's partial sums, Triton's compilation and the CUDA graph of one epoch
        (:class:`~irtbench.kernels.graph_loop.GraphedEpochs`), on zeros."""
        import torch

        options, device = state.options, state.torch_device
        codes = torch.zeros(state.responses.shape, dtype=torch.int8, device=device)
        two_pl = options["model"] == "2pl"
        epoch = fused_epoch.FusedEpoch.allocate(
            codes, float(state.n_observed), float(options["alpha"]), options["prior_log_a_sd"],
            two_pl, reach=float(options["epochs"]) * float(options["lr"]))
        n_students, n_questions = state.responses.shape
        parameters = [torch.zeros(n_students, device=device),
                      torch.zeros(n_questions, device=device)]
        if two_pl:
            parameters.append(torch.zeros(n_questions, device=device))

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
        options, device = state.options, state.torch_device
        if state.loop is None:
            self.capture(state)
        _torch.fill_codes(state.codes, state.responses)
        loop = state.loop
        clock = Stopwatch()
        trace: list[Snapshot] = []
        losses = loop.run(checkpoints(loop.epochs),
                          lambda epoch: trace.append(_snapshot(epoch, *loop.parameters)))
        _torch.synchronize(device)
        compute_seconds = clock.stop()
        skill, difficulty = loop.parameters[0], loop.parameters[1]
        skill_host, difficulty_host = host(skill), host(difficulty)
        data = DeviceResponses(state.n_observed, codes=state.codes)
        if options["model"] == "2pl":
            items = adam_items(host(loop.parameters[2]), None)
            sums = device_sums(data, twopl_information_sums, skill, difficulty,
                               loop.parameters[2].exp())
            skill_se, difficulty_se, discrimination_se = joint_standard_errors(
                state.responses, skill_host, difficulty_host, items["discrimination"],
                state.found, sums)
            return Result(skill_host, difficulty_host, skill_se, difficulty_se, host(losses),
                          loop.epochs, compute_seconds, {"kernel": state.kernel}, trace=trace,
                          items=items,
                          item_se={"discrimination": discrimination_se})
        skill_se, difficulty_se = standard_errors(
            *device_information(state, data, skill, difficulty), state.found)
        return Result(skill_host, difficulty_host, skill_se, difficulty_se, host(losses),
                      loop.epochs, compute_seconds, {"kernel": state.kernel}, trace=trace)

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
        options, device = state.options, state.torch_device
        data = DeviceResponses.transfer(state.responses, state.n_observed, device,
                                        str(options["storage"]))
        if state.kernel == "compiled" and state.step is None:
            state.step = torch.compile(fused_step, dynamic=False)
        clock = Stopwatch()
        torch.manual_seed(int(options["seed"]))
        n_students, n_questions = state.responses.shape
        skill = torch.zeros(n_students, device=device, requires_grad=True)
        difficulty = torch.zeros(n_questions, device=device, requires_grad=True)
        parameters = [skill, difficulty]
        log_discrimination = logit_floor = floor_prior = None
        if options["model"] != "rasch":  # a = exp(log a), from a = 1
            log_discrimination = torch.zeros(n_questions, device=device, requires_grad=True)
            parameters.append(log_discrimination)
        if options["model"] == "3pl":  # c = sigmoid(g), from the prior's mean
            floor_prior = floor_prior_of(options)
            logit_floor = torch.full((n_questions,), start_logit_floor(options), device=device,
                                     requires_grad=True)
            parameters.append(logit_floor)
        # the notebook's Adam; fused (one kernel per step, the same update) off the autograd path
        optimizer = torch.optim.Adam(parameters, lr=options["lr"],
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
                losses[epoch] = closed_form_step(skill, difficulty, data, alpha)
            elif state.kernel == "autograd":
                losses[epoch] = reference_loss(
                    skill, difficulty, data, alpha, backward=True,
                    log_discrimination=log_discrimination,
                    prior_log_a_sd=options["prior_log_a_sd"],
                    logit_floor=logit_floor, floor_prior=floor_prior)
            else:
                answers = data.codes if data.codes is not None else data.y
                with torch.no_grad():
                    losses[epoch], skill.grad, difficulty.grad = state.step(
                        skill, difficulty, answers, data.weight, float(data.n_observed), alpha)
            optimizer.step()
            if epoch + 1 in snapshots:  # a device-side copy of n_students + n_questions floats
                trace.append(_snapshot(epoch + 1, skill, difficulty, log_discrimination,
                                       logit_floor))
        _torch.synchronize(device)
        compute_seconds = clock.stop()
        skill_host, difficulty_host = host(skill), host(difficulty)
        if log_discrimination is not None:
            items = adam_items(host(log_discrimination),
                               None if logit_floor is None else host(logit_floor))
            skill_se, item_se = get_model(options["model"]).joint_errors(
                state.responses, skill_host, {"difficulty": difficulty_host, **items})
            return Result(skill_host, difficulty_host, skill_se, item_se.pop("difficulty"),
                          host(losses), epochs, compute_seconds, {"kernel": state.kernel},
                          trace=trace, items=items,
                          item_se=item_se)
        skill_se, difficulty_se = standard_errors(
            *device_information(state, data, skill, difficulty), state.found)
        return Result(skill_host, difficulty_host, skill_se, difficulty_se, host(losses),
                      epochs, compute_seconds, {"kernel": state.kernel}, trace=trace)


def device_information(state: _torch.TorchState, data: DeviceResponses, skill: torch.Tensor,
                       difficulty: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The Rasch information at the estimate: from the raw scores when nothing is missing
    (:func:`~irtbench.models.rasch.complete_information`, no pass over the data), else in one
    pass over the data where they are (:func:`device_sums` of
    :func:`~irtbench.models.rasch.information_sums`)."""
    if state.scan.complete or data.student is not None:  # sparse: bincounts on the host
        return information(state.responses, host(skill), host(difficulty), state.scan)
    return device_sums(data, information_sums, skill, difficulty)


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
            observed = (data.weight[rows] if data.codes is None else
                        _torch.decode(data.codes[rows], torch.float64)[1])
            parts = sums(torch, skill[rows], *items, observed)
            if totals is None:
                totals = [torch.empty_like(skill)] + [torch.zeros_like(p) for p in parts[1:]]
            totals[0][rows] = parts[0]
            for total, part in zip(totals[1:], parts[1:]):
                total += part
    return tuple(host(total) for total in totals)


def _snapshot(iteration: int, skill: torch.Tensor, difficulty: torch.Tensor,
              log_discrimination: torch.Tensor | None = None,
              logit_floor: torch.Tensor | None = None) -> Snapshot:
    """A device-side copy of the parameters, brought to the host after the clock."""
    skill, difficulty = skill.detach().clone(), difficulty.detach().clone()
    if log_discrimination is None:
        return Snapshot(iteration, lambda: (host(skill), host(difficulty)))
    log_a = log_discrimination.detach().clone()
    g = None if logit_floor is None else logit_floor.detach().clone()

    def values() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        return host(skill), host(difficulty), adam_items(host(log_a),
                                                         None if g is None else host(g))

    return Snapshot(iteration, values)
