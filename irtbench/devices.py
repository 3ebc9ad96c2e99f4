"""Device names, one spelling for every backend: ``"cpu"`` or ``"cuda:N"``.

Users may write ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (``gpu`` and ``gpu:N`` are accepted as
synonyms of the CUDA ones, JAX's word). Each backend resolves the request against the GPUs *it*
sees (:func:`resolve`) and reports where a fit ran in the canonical spelling, so result tables,
the harness and the figures never parse backend-specific names.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHOICES", "normalize", "resolve", "is_cuda", "cuda_index", "free_memory",
           "cuda_device_count"]

CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def normalize(device: object) -> str:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for any accepted spelling of a device
    request; ``ValueError`` naming the choices otherwise."""
    name = str(device).strip().lower()
    kind, sep, index = name.partition(":")
    if kind == "gpu":
        kind = "cuda"
    if not sep and kind in ("auto", "cpu", "cuda"):
        return kind
    if kind == "cuda" and index.isdigit():
        return f"cuda:{int(index)}"
    raise ValueError(f"unknown device {device!r}; choose one of {', '.join(CHOICES)}")


def resolve(device: object, gpu_count: int, backend: str) -> str:
    """The canonical device a request means for a backend that sees ``gpu_count`` GPUs:
    ``auto`` -> ``cuda:0`` when there is one, else ``cpu``; ``cuda`` -> ``cuda:0``.

    Raises:
        ValueError: CUDA was asked for and the backend sees no (or too few) GPUs; the message
            is in words (the device as the user wrote it, the backend, the way out), the same
            from the command line and from Python.
    """
    name = normalize(device)
    if name == "auto":
        return "cuda:0" if gpu_count else "cpu"
    if name == "cpu":
        return name
    index = cuda_index(name)
    asked = f"the device {str(device).strip()} was asked for, but {backend} sees"
    if gpu_count == 0:
        raise ValueError(f"{asked} no CUDA GPU: use cpu or auto")
    if index >= gpu_count:
        raise ValueError(f"{asked} only {gpu_count} CUDA GPU(s), cuda:0 to cuda:{gpu_count - 1}")
    return f"cuda:{index}"


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def cuda_index(device: str) -> int:
    """N of ``cuda:N`` (0 for a bare ``cuda``)."""
    return int(device.partition(":")[2] or 0)


def cuda_device_count() -> int:
    """CUDA GPUs visible to torch (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_memory(device: str) -> float:
    """Bytes free for a fit on a canonical ``device``: the GPU's free memory (through torch),
    else the host's ``MemAvailable``; NaN when unknown."""
    if is_cuda(device):
        try:
            import torch

            if torch.cuda.is_available():
                return float(torch.cuda.mem_get_info(cuda_index(device))[0])
        except ImportError:
            pass
        return float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return float("nan")
