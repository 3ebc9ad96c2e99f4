"""The torch machinery every torch estimator shares: one base class with its typed state (the
torch device beside the canonical device name) and device synchronisation. The responses on
the device are :mod:`irtbench.kernels.device_responses`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from irtbench import devices
from irtbench.estimators.base import Estimator, Option, State
from irtbench.responses import Responses

if TYPE_CHECKING:
    import torch


@dataclass
class TorchState(State):
    """:class:`~irtbench.estimators.base.State` with the ``torch.device`` of ``device``."""

    torch_device: torch.device


class TorchEstimator(Estimator[TorchState]):
    """Base of the torch estimators: backend, devices, the state, synchronisation."""

    backend = "torch"
    requirements = ("torch",)

    @classmethod
    def install_command(cls) -> str:  # torch is irtbench's own requirement, not an extra
        return "pip install 'torch>=2.4'"

    @classmethod
    def devices(cls) -> list[str]:
        return ["cpu", "cuda"] if devices.cuda_device_count() else ["cpu"]

    @classmethod
    def canonical_device(cls, requested: Option) -> str:
        return devices.resolve(requested, devices.cuda_device_count(), "torch")

    def setup(self, responses: Responses, options: dict[str, Option],
              n_observed: int) -> TorchState:
        import torch

        device = str(options["device"])  # resolved against torch's GPUs in the config
        return TorchState(responses, options, n_observed, device, torch.device(device))


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (a no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


