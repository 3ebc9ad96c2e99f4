"""Shared fixtures and statistical tolerances for the tests."""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


# JAX: on the CPU where torch sees no GPU; where one is, JAX may use it too, so that the tests
# that need CUDA run wherever torch and JAX see a GPU. Never grab a GPU's memory.
if not _cuda_visible():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

DATA = Path(__file__).parent / "data"

#: standard-normal quantile of 0.999: the one-sided level every statistical tolerance uses.
Z999 = 3.090232306167813


def chi2_quantile(dof: int, z: float = Z999) -> float:
    """Wilson–Hilferty approximation of the chi-square quantile with ``dof`` degrees of freedom
    at the standard-normal quantile ``z`` (accurate to < 1% for dof >= 10)."""
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def crb_ratio_limit(n_parameters: int) -> float:
    """Largest RMSE / CRB an efficient, unbiased estimator reaches with probability 0.999.

    If every estimate errs by an independent N(0, CRB_k^2), then
    sum_k (err_k / CRB_k)^2 ~ chi2_K, so (RMSE / CRB)^2 is about chi2_K / K and the ratio
    stays below sqrt(chi2_K(0.999) / K) -- 1.22 for K = 100 questions, 1.41 for K = 30.
    """
    return math.sqrt(chi2_quantile(n_parameters) / n_parameters)


def binomial_band(n: int, p: float, z: float = Z999) -> float:
    """Half-width of a two-sided 0.998 normal band for a binomial proportion."""
    return z * math.sqrt(p * (1.0 - p) / n)


@pytest.fixture(scope="session")
def verbagg_path() -> Path:
    return DATA / "verbagg.csv"


# -- the estimators, for every folder's generic checks ------------------------------------------
import irtbench

#: every registered estimator: each declares the options that keep it fast enough for the
#: default test run (``test_options``, in its own file), so a new one gets these checks for free
NAMES = sorted(irtbench.estimators())


def fast_options(name: str) -> dict:
    """The estimator's declared ``test_options``, on the CPU where it has a device option."""
    cls = irtbench.get_estimator(name)
    on_cpu = {"device": "cpu"} if "device" in cls.defaults else {}
    return {**on_cpu, **cls.test_options}


def require(name: str) -> None:
    cls = irtbench.get_estimator(name)
    if not cls.available():
        pytest.skip(f"{name}: backend not installed ({cls.install_command()})")


def needs(name: str, what: str) -> pytest.MarkDecorator:
    """Skip unless estimator ``name`` is installed, saying ``what`` is missing and the command
    that makes it."""
    cls = irtbench.get_estimator(name)
    return pytest.mark.skipif(
        not cls.available(),
        reason=f"{what} is not here ({', '.join(cls.missing_requirements())}); make it with: "
               f"{cls.install_command()}")


def benchmark_script(name: str) -> ModuleType:
    """The module of ``benchmarks/NAME.py``, imported (its functions tested without running
    the measurement)."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)
