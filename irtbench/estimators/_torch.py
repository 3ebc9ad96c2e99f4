"""Helpers shared by the torch estimators: device choice, synchronisation, data transfer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from irtbench.data import MISSING, observed_count, row_blocks, split_observed, to_compact

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when present, else the CPU; ``"cuda"`` without CUDA is a ValueError."""
    import torch

    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}, {build}); use device='cpu' or 'auto'"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (a no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    return f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"


def responses_to_device(
    responses: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """:func:`irtbench.data.split_observed`, moved to ``device`` as torch tensors."""
    import torch

    y, weight, n_observed = split_observed(responses)
    weight_tensor = None if weight is None else torch.from_numpy(weight).to(device)
    return torch.from_numpy(y).to(device), weight_tensor, n_observed


def codes_to_device(responses: np.ndarray, device: torch.device) -> tuple[torch.Tensor, int]:
    """The compact form (int8, -1 = missing) on ``device``, built a block of rows at a time (no
    float32 copy of the matrix on the host), and the observed count."""
    import torch

    codes = torch.empty(responses.shape, dtype=torch.int8, device=device)
    for rows in row_blocks(responses.shape):
        codes[rows] = torch.from_numpy(np.ascontiguousarray(to_compact(responses[rows]))).to(device)
    return codes, observed_count(responses)


def decode(codes: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, observed)`` of a block of compact codes: 0/1 answers (missing 0) and the 0/1 mask,
    both as ``dtype``."""
    return (codes == 1).to(dtype), (codes != MISSING).to(dtype)
