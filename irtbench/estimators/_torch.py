"""The torch machinery every torch estimator shares: one base class with its typed state (the
torch device beside the canonical device name), device synchronisation, and the transfers of
the responses to the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from irtbench import devices
from irtbench.estimators.base import Estimator, Option, State
from irtbench.responses import (
    MISSING,
    Responses,
    SparseResponses,
    row_blocks,
    split_observed,
    to_compact,
)

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


def responses_to_device(responses: np.ndarray, device: torch.device
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`irtbench.responses.split_observed` on ``device``: float32 answers (missing 0) and
    a float32 0/1 weight of the observed entries (None when nothing is missing)."""
    import torch

    y, weight, _ = split_observed(responses)
    weight_tensor = None if weight is None else torch.from_numpy(weight).to(device)
    return torch.from_numpy(y).to(device), weight_tensor


def codes_to_device(responses: np.ndarray, device: torch.device) -> torch.Tensor:
    """The compact form (int8, -1 = missing) on ``device``, built a block of rows at a time (no
    float32 copy of the matrix on the host); a C-contiguous int8 matrix on the CPU is used in
    place (no copy at all)."""
    import torch

    if device.type == "cpu" and responses.dtype == np.int8 and responses.flags.c_contiguous:
        return torch.from_numpy(responses)  # read only: the fit never writes its data
    codes = torch.empty(responses.shape, dtype=torch.int8, device=device)
    return fill_codes(codes, responses)


def fill_codes(codes: torch.Tensor, responses: np.ndarray) -> torch.Tensor:
    """Write the compact form of ``responses`` into the int8 device tensor ``codes``: an int8
    matrix in one copy, a float32 one a block of rows at a time (no float32 copy of the
    matrix on the host)."""
    import torch

    if responses.dtype == np.int8 and responses.flags.c_contiguous:
        codes.copy_(torch.from_numpy(responses))
        return codes
    for rows in row_blocks(responses.shape):
        codes[rows] = torch.from_numpy(np.ascontiguousarray(to_compact(responses[rows]))).to(codes.device)
    return codes


def decode(codes: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, observed)`` of a block of compact codes: 0/1 answers (missing 0) and the 0/1 mask,
    both as ``dtype``."""
    return (codes == 1).to(dtype), (codes != MISSING).to(dtype)


def sparse_to_device(responses: SparseResponses, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(student, question, y)`` of sparse triples on ``device`` (long, long, float64)."""
    import torch

    return (torch.as_tensor(responses.student, dtype=torch.long, device=device),
            torch.as_tensor(responses.question, dtype=torch.long, device=device),
            torch.as_tensor(responses.response, dtype=torch.float64, device=device))
