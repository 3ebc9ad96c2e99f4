"""Peak memory of a fit, measured inside the cell's worker (see :mod:`irtbench.harness`), and
the recognition of out-of-memory failures."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

from irtbench import devices

#: a cell is skipped when its estimated peak exceeds this share of the free memory
MEMORY_HEADROOM = 0.9


# -- peak memory --------------------------------------------------------------------------
def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    """Hand the heap's freed memory back to the OS (glibc's ``malloc_trim``), so that a fit
    reusing memory an earlier one freed shows as growth of the resident set, not as 0."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Measures the peak memory of one fit; see the module docstring for the three methods."""

    def __enter__(self) -> PeakMemory:
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        _trim_heap()
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        self.rss_before = _proc_status_bytes("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_peak = _proc_status_bytes("VmHWM")

    def measure(self, device: str, backend: str) -> tuple[float, str]:
        if devices.is_cuda(device) and backend == "torch" and self.cuda:
            import torch

            return float(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
        if devices.is_cuda(device):
            import jax

            stats = jax.devices("gpu")[devices.cuda_index(device)].memory_stats() or {}
            return float(stats.get("peak_bytes_in_use", math.nan)), "jax_peak_bytes_in_use"
        if self.rss_before is None or self.rss_peak is None:
            return math.nan, "unavailable"
        return float(max(self.rss_peak - self.rss_before, 0)), "rss_peak_growth"


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB"


def _is_out_of_memory(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}".lower()
    return isinstance(error, MemoryError) or "out of memory" in text or "resource_exhausted" in text
