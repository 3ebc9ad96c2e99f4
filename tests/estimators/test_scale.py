"""Scale features: compact int8 storage, the blockwise reference objective, sparse triples,
sharding across devices, and the harness's memory estimates. Each new path must give the same
estimates as the plain dense one."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import irtbench
from irtbench import harness
from irtbench import responses as response_formats
from irtbench.models import extremes, information
from irtbench.responses import (
    SparseResponses,
    to_compact,
    to_dense,
    to_sparse,
    validate_responses,
)
from irtbench.simulate import simulate_sparse


def test_compact_simulation_holds_the_same_draws_in_a_quarter_of_the_memory():
    plain = irtbench.simulate(300, 40, seed=3, missing=0.2)
    compact = irtbench.simulate(300, 40, seed=3, missing=0.2, compact=True)
    assert compact.responses.dtype == np.int8
    assert compact.responses.nbytes * 4 == plain.responses.nbytes
    np.testing.assert_array_equal(compact.responses, to_compact(plain.responses))
    assert validate_responses(compact.responses) is compact.responses  # no copy
    for a, b in zip(extremes(plain.responses), extremes(compact.responses)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(information(plain.responses, plain.skill, plain.difficulty)[1],
                               information(compact.responses, plain.skill, plain.difficulty)[1])


def test_compact_responses_with_a_bad_code_get_a_clear_error():
    codes = irtbench.simulate(20, 5, seed=0, compact=True).responses.copy()
    codes[3, 2] = 7
    with pytest.raises(ValueError, match="0, 1 or -1 .*found 7 at row 3, column 2"):
        validate_responses(codes)


@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_blockwise_int8_objective_follows_the_autograd_reference(monkeypatch, missing):
    """Many blocks of 7 rows, int8 codes, analytic gradient: the same Adam path as autograd on
    float32 (float32 summation order only)."""
    data = irtbench.simulate(200, 30, seed=1, missing=missing)
    plain = irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=300)
    monkeypatch.setattr(response_formats, "BLOCK_ELEMENTS", 7 * 30)
    blocked = irtbench.fit(to_compact(data.responses), "torch-adam", device="cpu", epochs=300,
                           storage="int8")
    np.testing.assert_allclose(blocked.skill, plain.skill, atol=1e-5)
    np.testing.assert_allclose(blocked.difficulty, plain.difficulty, atol=1e-5)
    np.testing.assert_allclose(blocked.losses, plain.losses, rtol=1e-5)


def test_memory_model_grows_with_storage():
    adam = irtbench.get_estimator("torch-adam")
    assert adam(storage="int8").memory_estimate(10**5, 1000, 0.0) < 0.5e9
    assert adam(storage="float32").memory_estimate(10**5, 1000, 0.0) > 1.5e9
    assert adam().memory_estimate(10**5, 1000, 0.0) == adam(storage="int8").memory_estimate(
        10**5, 1000, 0.0)  # auto: compact above COMPACT_ABOVE responses
    assert np.isnan(irtbench.get_estimator("numpyro-nuts")().memory_estimate(100, 10, 0.0))


# -- sparse triples ----------------------------------------------------------------------------
SPARSE = simulate_sparse(1500, 80, 12000, seed=2)


def test_sparse_round_trip_and_metrics():
    dense = to_dense(SPARSE.responses)
    again = to_sparse(dense)
    np.testing.assert_array_equal(again.student, SPARSE.responses.student)
    np.testing.assert_array_equal(again.response, SPARSE.responses.response)
    for a, b in zip(extremes(dense), extremes(SPARSE.responses)):
        np.testing.assert_array_equal(a, b)
    fit = irtbench.fit(SPARSE.responses, "jml-newton", device="cpu")
    dense_data = irtbench.Dataset(dense, SPARSE.skill, SPARSE.difficulty)
    np.testing.assert_allclose(list(irtbench.recovery(fit, SPARSE).values()),
                               list(irtbench.recovery(fit, dense_data).values()), rtol=1e-9)


SPARSE_TAKERS = [name for name in irtbench.estimators()
                 if irtbench.get_estimator(name).accepts_sparse]


# every estimator that declares it takes sparse triples (its default model);
# float32 means over 12000 observed vs 120000 cells reduce in another order: 1e-4 for Adam
@pytest.mark.parametrize("name", SPARSE_TAKERS)
def test_sparse_fits_equal_dense_fits(name):
    cls = irtbench.get_estimator(name)
    if not cls.available():
        pytest.skip(f"{name}: backend not installed")
    iterative = "epochs" in cls.all_options()
    atol = 1e-4 if iterative else 1e-9
    options = {"epochs": 200} if iterative else {}
    sparse = irtbench.fit(SPARSE.responses, name, device="cpu", **options)
    dense = irtbench.fit(to_dense(SPARSE.responses), name, device="cpu", **options)
    np.testing.assert_array_equal(np.isfinite(sparse.skill), np.isfinite(dense.skill))
    finite = np.isfinite(dense.skill)
    np.testing.assert_allclose(sparse.skill[finite], dense.skill[finite], atol=atol)
    np.testing.assert_allclose(sparse.difficulty, dense.difficulty, atol=atol)


@pytest.mark.parametrize("change, message", [
    (lambda s, q, r: (s, q, np.where(np.arange(len(r)) == 5, 3, r).astype(np.int8)),
     "must be 0 or 1; found 3"),
    (lambda s, q, r: (np.append(s, s[0]), np.append(q, q[0]), np.append(r, r[0])),
     "appears more than once"),
    (lambda s, q, r: (np.where(s == 0, 1, s), q, r), r"student \(row\) 0 has no observed"),
    (lambda s, q, r: (s, np.where(q == 0, 80, q), r), "question index is outside 0..79"),
])
def test_bad_sparse_input_gets_a_clear_error(change, message):
    r = SPARSE.responses
    student, question, response = change(r.student, r.question, r.response)
    with pytest.raises(ValueError, match=message):
        validate_responses(SparseResponses(student, question, response, r.shape))


def test_dense_only_estimators_refuse_sparse_input_by_name():
    with pytest.raises(ValueError, match="'cml' needs a dense .*fitted by: jax-adam, jml-newton, mml-em, torch-adam"):
        irtbench.fit(SPARSE.responses, "cml", device="cpu")


# -- several devices -----------------------------------------------------------------------------
SHARDED = """
import numpy as np, irtbench
data = irtbench.simulate(203, 30, seed=0, missing=0.1)
sharded = irtbench.fit(data.responses, "jax-adam-sharded", device="cpu", epochs=300)
single = irtbench.fit(data.responses, "jax-adam", device="cpu", epochs=300)
print(sharded.diagnostics["n_devices"], sharded.device)
print(np.abs(sharded.skill - single.skill).max(), np.abs(sharded.difficulty - single.difficulty).max())
print(sharded.diagnostics["skill_sharding"])
"""


def test_sharded_jax_fit_on_four_devices_equals_one_device():
    if not irtbench.get_estimator("jax-adam-sharded").available():
        pytest.skip("jax-adam-sharded: jax not installed")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    devices, gaps, sharding = done.stdout.strip().splitlines()
    assert devices == "4 cpu x4"  # 203 students padded to 204 over 4 devices
    assert max(float(g) for g in gaps.split()) < 1e-5
    assert "'students': 4" in sharding


# -- the harness's memory estimates ---------------------------------------------------------------
def test_cells_that_will_not_fit_are_skipped_with_the_estimate(monkeypatch, tmp_path):
    monkeypatch.setattr(harness.devices, "free_memory", lambda device: 60e6)
    table = harness.sweep([(100, 20)], ["torch-adam", "jml-newton"], seeds=1, device="cpu",
                          out=tmp_path, progress=False, options={"epochs": 5}, models=("rasch",))
    rows = table.set_index("estimator")
    assert rows.loc["torch-adam", "status"] == "ok"  # 16 B x 2000 + 50 MB < 0.9 x 60 MB
    assert rows.loc["torch-adam", "memory_estimate_bytes"] == pytest.approx(50e6 + 16 * 2000)
    assert rows.loc["jml-newton", "status"] == "skipped"
    assert "memory model needs about 0.15 GB; 0.06 GB available" in rows.loc["jml-newton", "reason"]


def test_data_too_large_for_memory_skips_every_estimator_of_that_size(monkeypatch, tmp_path):
    monkeypatch.setattr(harness.devices, "free_memory", lambda device: 1e3)
    table = harness.sweep([(100, 20)], ["torch-adam", "jml-newton"], seeds=1, device="cpu",
                          out=tmp_path, progress=False, models=("rasch",))
    assert (table.status == "skipped").all()
    assert table.reason.str.contains("simulated responses alone need").all()
    assert len(irtbench.results.read_results(tmp_path)) == 2
