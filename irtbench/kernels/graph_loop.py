r"""The loop driver of the fused Adam fits: every epoch is the same few kernels on the same
buffers, so on CUDA one epoch is captured once as a CUDA graph and replayed ``epochs`` times
(one launch an epoch instead of one per kernel: a small matrix's epoch costs what its kernels
take, not what launching them takes). Elsewhere (the CPU, Triton's interpreter) the same epoch
runs eagerly.

An epoch (:class:`GraphedEpochs`): ``gradients()`` writes the loss and every gradient into
static buffers, Adam (``torch.optim.Adam(fused=True, capturable=True)``, the notebook's update)
steps, and the loss goes to ``losses[epoch]`` through a device-side counter, so the captured
graph needs no argument. Capture follows PyTorch's recipe: a few warm-up epochs on a side stream
(Triton compiles its kernel then), the parameters, Adam's moments and step and the counter reset
to their start, then one epoch captured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["GraphedEpochs"]

#: warm-up epochs before capture (PyTorch's recipe uses a few on a side stream)
WARM_UP = 3

Gradients = Callable[[], "tuple[torch.Tensor, Sequence[torch.Tensor]]"]


@dataclass
class GraphedEpochs:
    """``epochs`` Adam steps of the ``parameters`` along ``gradients()`` (which returns the
    loss and one gradient per parameter), captured as a CUDA graph on a CUDA device.

    Attributes:
        parameters: the leaf tensors Adam moves (their ``.grad`` become static buffers).
        gradients: computes ``(loss, [gradient of each parameter])`` at the current values.
        lr: Adam's learning rate.
        starts: each parameter's start value (reset before every run).
    """

    parameters: list[torch.Tensor]
    gradients: Gradients
    lr: float
    starts: list[float]
    optimizer: torch.optim.Optimizer | None = None
    graph: torch.cuda.CUDAGraph | None = None
    counter: torch.Tensor | None = None
    losses: torch.Tensor | None = None
    epochs: int = 0
    _snapshots: list = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.parameters[0].device

    def prepare(self, epochs: int) -> None:
        """Make the optimizer and the buffers, and on CUDA warm up and capture one epoch."""
        import torch

        cuda = self.device.type == "cuda"
        for parameter in self.parameters:
            parameter.grad = torch.zeros_like(parameter)
        self.optimizer = torch.optim.Adam(self.parameters, lr=self.lr, fused=True,
                                          capturable=cuda)
        self.epochs = epochs
        self.losses = torch.zeros(epochs, device=self.device)
        self.counter = torch.zeros(1, dtype=torch.long, device=self.device)
        if not cuda:
            return
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(min(WARM_UP, epochs)):
                self.epoch()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.reset()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.epoch()
        self.reset()

    def epoch(self) -> None:
        """One epoch: gradients into ``.grad``, Adam's step, the loss into ``losses``."""
        loss, gradients = self.gradients()
        for parameter, gradient in zip(self.parameters, gradients):
            parameter.grad.copy_(gradient)
        self.optimizer.step()
        self.losses.index_copy_(0, self.counter, loss.reshape(1).to(self.losses.dtype))
        self.counter += 1

    def reset(self) -> None:
        """Parameters, Adam's state and the epoch counter back to their start."""
        import torch

        with torch.no_grad():
            for parameter, start in zip(self.parameters, self.starts):
                parameter.fill_(start)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if torch.is_tensor(value):
                        value.zero_()
            self.counter.zero_()
            self.losses.zero_()

    def run(self, snapshot_at: set[int], snapshot: Callable[[int], None]) -> torch.Tensor:
        """Every epoch from the start (replaying the graph on CUDA), ``snapshot(epoch)`` after
        the epochs in ``snapshot_at``; returns the losses (on the device)."""
        self.reset()
        for epoch in range(1, self.epochs + 1):
            if self.graph is not None:
                self.graph.replay()
            else:
                self.epoch()
            if epoch in snapshot_at:
                snapshot(epoch)
        return self.losses
