r"""``torch-adam``: the reference estimator, the seed notebook's joint maximum likelihood by Adam.

Objective (mean negative log-likelihood over the observed responses plus a penalty that pins
the origin of the scale):

.. math::
    L(\theta, b) = -\frac{1}{|O|}\sum_{(i,j)\in O}
        \big[y_{ij}\log\sigma(\theta_i - b_j) + (1-y_{ij})\log(1-\sigma(\theta_i - b_j))\big]
        + \alpha\,\bar b^{\,2}

minimised by full-batch Adam (lr 0.01, 1000 epochs) from :math:`\theta = b = 0`, in float32,
with :math:`\alpha = 10^{-2}` — exactly the notebook's defaults.

**Every model, one generic path, the fast ones its model offers.** The objective of any model
is the model's own (:class:`~irtbench.models.fitting.Objective`: its log-likelihood from its
logits, its gauge penalty, its priors); for the Rasch model it is the notebook's, above.
:func:`objective_loss` sums it over the pieces of a
:class:`~irtbench.kernels.device_responses.DeviceResponses` (the whole float32 matrix, the
gathered pairs of sparse triples, or one block of int8 rows at a time), and ``"autograd"``
differentiates it as the notebook does: the path of every model, written with no branch on the
model. Where the model offers faster ones (``Model.fast_paths``, the only switch;
:mod:`irtbench.kernels`): ``"closed"`` (:func:`~irtbench.kernels.closed_form.closed_form_step`)
writes the Rasch gradient out, piece by piece, with no graph; ``"compiled"``
(:func:`~irtbench.kernels.closed_form.fused_step` under ``torch.compile``) fuses it over a whole
dense matrix into one pass; ``"logit"`` (:func:`~irtbench.kernels.closed_form.logit_step`, the
Rasch model, 2PL and M2PL) chains the Bernoulli residual through the model's logits;
``"fused"`` (:mod:`irtbench.kernels.fused_epoch`, Rasch and 2PL on CUDA) is one Triton pass per
epoch, the epochs replayed as a CUDA graph. ``"auto"`` takes the fused kernel on CUDA where the
model has one, compiles for the Rasch model on CUDA and for float32 matrices of at least
``COMPILE_FROM`` responses on a CPU, takes the closed form elsewhere for it, the logit path for
the 2PL and M2PL, and autograd for the 3PL and 4PL. Tests hold the fast paths to autograd of
the model's objective (:func:`objective_loss`; :func:`reference_loss` for the Rasch model).

**Memory.** Up to ``COMPACT_ABOVE`` responses (``storage="auto"``) the data are held as float32
(plus a float32 mask when some are missing): at most about 16 bytes per response at peak (data
4, mask 4, and with autograd the logits, loss terms and their gradient 4 each; the closed form
needs one residual and its absolute value, the compiled kernel nothing of the matrix's size).
Above it, or with ``storage="int8"``, the responses are held as int8 codes (1 byte per response,
-1 = missing), decoded inside the compiled pass or a block of rows at a time (about
a block of :func:`~irtbench.responses.row_blocks`) by the other kernels: 1 byte per response plus a few float32
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import trange

from irtbench.estimators import options as option
from irtbench.estimators import _torch
from irtbench.kernels import closed_form, fused_epoch, graph_loop
from irtbench.kernels.closed_form import closed_form_step, fused_step, logit_step
from irtbench.kernels.device_responses import DeviceResponses, decode, fill_codes, stored_as
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
from irtbench.models import MODELS, Model, get_model
from irtbench.models.fitting import Objective, ops_for
from irtbench.responses import Responses, is_sparse, row_blocks

if TYPE_CHECKING:
    import torch

#: from this many responses a float32 matrix on a CPU gets the compiled kernel (a 512x512 one)
COMPILE_FROM = 2**18

__all__ = ["TorchAdam", "objective_loss", "reference_loss"]


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
                                 "'compiled' (torch.compile's fused pass), 'logit' (the "
                                 "Bernoulli residual chained through the model's logits), "
                                 "'fused' (a Triton pass over int8 codes, the epochs replayed "
                                 "as a CUDA graph) or 'auto' (auto_kernel); each where the "
                                 "model offers it (its fast_paths: 'closed' and 'compiled' the "
                                 "Rasch model, 'logit' the Rasch model, 2PL and M2PL, 'fused' "
                                 "the Rasch model and 2PL on CUDA)",
                                 "auto", "autograd", "closed", "compiled", "logit", "fused"),
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
        extra = 0.0 if "closed" in self.model.fast_paths else 16.0
        return (20.0 if missing else 16.0) * size + extra * size + 50e6

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> AdamState:
        base = super().setup(responses, options, n_observed)
        model = self.model
        objective = Objective(model, options, n_observed)
        kernel = str(options["kernel"])
        if kernel == "auto":
            kernel = self.auto_kernel(responses, base.torch_device.type, model)
        elif kernel == "fused" and not fused_epoch.supports(model, base.torch_device.type):
            takers = [m for m in MODELS if "fused" in get_model(m).fast_paths]
            raise ValueError(f"kernel='fused' needs Triton and a CUDA device and fits the "
                             f"{' and '.join(takers)} (their fast_paths); here: {model.name} "
                             f"on {base.device}"
                             f"{'' if fused_epoch.available() else ', no Triton'}")
        elif kernel in ("closed", "compiled") and "closed" not in model.fast_paths:
            takers = [get_model(m).title for m in MODELS if "closed" in get_model(m).fast_paths]
            raise ValueError(f"kernel={kernel!r} is written for the {' and '.join(takers)} "
                             f"model (its fast_paths); the {model.title} is fitted with "
                             "kernel='autograd' (or 'fused' on CUDA where it has one)")
        elif kernel == "logit" and "logit" not in model.fast_paths:
            raise ValueError(f"kernel='logit' needs a Bernoulli log-likelihood of the logits; "
                             f"the {model.title} is fitted with kernel='autograd'")
        if kernel in ("closed", "compiled"):
            closed_form.check(objective)
        if kernel == "logit":
            closed_form.check_logit(objective)
        if kernel in ("compiled", "fused") and is_sparse(responses):
            raise ValueError(f"kernel={kernel!r} reads a dense matrix; sparse triples are "
                             "fitted with kernel='closed' or 'autograd'")
        return AdamState(**vars(base), objective=objective, kernel=kernel)

    def auto_kernel(self, responses: Responses, device_type: str, model: Model) -> str:
        """For dense data on CUDA, ``"fused"`` where the model has a fused kernel and Triton is
        there (:func:`~irtbench.kernels.fused_epoch.supports`), else ``"compiled"`` (where the
        model offers the closed form: Rasch); on a CPU, with the closed form, ``"compiled"`` for
        float32 data from ``COMPILE_FROM`` responses (Inductor's C++ is about 2x the eager
        closed form there; its int8 decoding is not, and below that size its compile is not
        won back) and ``"closed"`` otherwise; without it, ``"logit"`` where the model's
        log-likelihood is the Bernoulli one of its logits (the 2PL, the M2PL), else
        ``"autograd"`` (the 3PL, 4PL)."""
        dense_cuda = device_type == "cuda" and not is_sparse(responses)
        if dense_cuda and fused_epoch.supports(model, device_type):
            return "fused"
        if "closed" not in model.fast_paths:
            return "logit" if "logit" in model.fast_paths else "autograd"
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
            paths = state.objective.model.fast_paths
            state.kernel = ("compiled" if "closed" in paths else
                            "logit" if "logit" in paths else "autograd")
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
        epoch = fused_epoch.FusedEpoch.for_objective(
            codes, state.objective, options, float(state.n_observed))
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
        fill_codes(state.codes, state.responses)
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
            elif state.kernel == "logit":
                losses[epoch] = logit_step(objective, raw, data)
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
            observed = (decode(data.codes[rows], torch.float64)[1]
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
