"""CUDA against the CPU: every estimator with a CUDA path gives the CPU's estimates on the GPU,
to a tolerance stated per estimator (float32 Adam fits: reductions in another order; float64
classical fits: rounding). Skipped where no CUDA GPU is visible (run by
``benchmarks/gpu_check.sh`` on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest

import irtbench
from irtbench import devices

pytestmark = pytest.mark.skipif(not devices.cuda_device_count(),
                                reason="no CUDA GPU visible to torch")

#: estimator -> (options, largest allowed |cuda - cpu| of an estimate)
CUDA_PATHS = {
    "torch-adam": ({}, 1e-4),
    "jml-newton": ({}, 1e-8),
    "cml": ({}, 1e-8),
    "mml-em": ({}, 1e-6),
    "jax-adam": ({}, 1e-4),
    "numpyro-map": ({}, 2e-3),
}


@pytest.mark.parametrize("name", sorted(CUDA_PATHS))
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_cuda_and_cpu_agree(name, missing):
    cls = irtbench.get_estimator(name)
    if not cls.available():
        pytest.skip(f"{name}: backend not installed")
    if name == "cml" and missing:
        pytest.skip("cml refuses responses missing at random")
    options, tolerance = CUDA_PATHS[name]
    data = irtbench.simulate(400, 40, seed=3, missing=missing)
    cpu = irtbench.fit(data.responses, name, device="cpu", **options)
    gpu = irtbench.fit(data.responses, name, device="cuda", **options)
    assert gpu.device.startswith("cuda") and cpu.device == "cpu"
    finite = np.isfinite(cpu.skill)
    np.testing.assert_array_equal(np.isfinite(gpu.skill), finite)
    np.testing.assert_allclose(gpu.skill[finite], cpu.skill[finite], atol=tolerance)
    np.testing.assert_allclose(gpu.difficulty, cpu.difficulty, atol=tolerance)
    assert gpu.seconds > 0 and gpu.compute_seconds <= gpu.seconds


def test_the_compiled_kernel_on_cuda_follows_autograd():
    data = irtbench.simulate(2000, 100, seed=1, missing=0.1)
    autograd = irtbench.fit(data.responses, "torch-adam", device="cuda", epochs=200,
                            storage="int8", kernel="autograd")
    compiled = irtbench.fit(data.responses, "torch-adam", device="cuda", epochs=200,
                            storage="int8", kernel="compiled")
    np.testing.assert_allclose(compiled.skill, autograd.skill, atol=1e-4)
    np.testing.assert_allclose(compiled.difficulty, autograd.difficulty, atol=1e-4)


@pytest.mark.parametrize("model", ["rasch", "2pl"])
def test_the_fused_kernel_on_cuda_follows_autograd(model):
    """kernel='fused' compiled by Triton, its epochs replayed as a CUDA graph, against the
    notebook's autograd path on the same GPU: 1e-4 after 200 epochs (float32 sums in another
    order), the losses to 1e-5 relative."""
    data = irtbench.simulate(3000, 200, seed=1, missing=0.1, model=model)
    options = dict(device="cuda", epochs=200, model=model)
    fused = irtbench.fit(data.responses, "torch-adam", kernel="fused", **options)
    plain = irtbench.fit(data.responses, "torch-adam", kernel="autograd", **options)
    assert fused.diagnostics["kernel"] == "fused"
    np.testing.assert_allclose(fused.losses, plain.losses, rtol=1e-5)
    np.testing.assert_allclose(fused.skill, plain.skill, atol=1e-4)
    for name, values in plain.items.items():
        np.testing.assert_allclose(fused.items[name], values, atol=1e-4)
