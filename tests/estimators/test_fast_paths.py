"""The suite's own passes and the fused kernels: the one pass over the responses
(:func:`irtbench.responses.scan_responses`), the extremes from its totals, the Rasch information
from the raw scores, the load inside ``Fit.seconds``, and the fused Triton epoch against autograd
(on the CPU through Triton's interpreter; the same kernel runs compiled on CUDA in
``tests/estimators/test_cuda.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import irtbench
from irtbench.extremes import find_extremes
from irtbench.models.rasch import complete_information, information
from irtbench.responses import (
    to_compact,
    scan_responses,
    to_sparse,
)

TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not TRITON, reason="triton not installed (pip install triton: "
                                  "its interpreter runs the fused kernel on the CPU)")


def random_matrix(rng: np.random.Generator, n: int, m: int, missing: float) -> np.ndarray:
    """0/1 float32 answers with about ``missing`` NaN, every row and column observed, and some
    all-right / all-wrong students and questions (so that the extremes take several rounds)."""
    y = (rng.random((n, m)) < rng.uniform(0.05, 0.95, size=(1, m))).astype(np.float32)
    y[rng.random((n, m)) < missing] = np.nan
    y[:, 0] = 1.0  # a question everybody got right ...
    y[0, 1:] = 0.0  # ... and a student who got every other one wrong: extreme once it goes
    y[np.isnan(y).all(axis=1), 0] = 1.0
    return y


@pytest.mark.parametrize("form", ["float32", "int8", "sparse"])
def test_the_scan_counts_what_a_direct_count_counts(form):
    rng = np.random.default_rng(0)
    y = random_matrix(rng, 700, 60, 0.2)
    data = {"float32": y, "int8": to_compact(y), "sparse": to_sparse(y)}[form]
    _, scan = scan_responses(data, workers=2)
    observed = ~np.isnan(y)
    right = np.nan_to_num(y) == 1
    assert scan.n_observed == observed.sum() and not scan.complete
    np.testing.assert_array_equal(scan.row_right, right.sum(axis=1))
    np.testing.assert_array_equal(scan.row_seen, observed.sum(axis=1))
    np.testing.assert_array_equal(scan.col_right, right.sum(axis=0))
    np.testing.assert_array_equal(scan.col_seen, observed.sum(axis=0))


def test_the_scan_names_the_first_bad_value_on_any_thread():
    y = np.zeros((3000, 100), dtype=np.int8)
    y[2500, 7] = 3
    with pytest.raises(ValueError, match="found 3 at row 2500, column 7"):
        scan_responses(y, workers=2)


def reference_extremes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rule written plainly: recount everything over what is kept, until nothing changes."""
    observed, right = ~np.isnan(y), np.nan_to_num(y) == 1
    students, questions = np.zeros(y.shape[0], bool), np.zeros(y.shape[1], bool)
    while True:
        kept_q = ~questions
        row_right, row_seen = right[:, kept_q].sum(1), observed[:, kept_q].sum(1)
        col_right, col_seen = right[~students].sum(0), observed[~students].sum(0)
        new_s = students | (row_right == 0) | (row_right == row_seen)
        new_q = questions | (col_right == 0) | (col_right == col_seen)
        if (new_s == students).all() and (new_q == questions).all():
            return students, questions
        students, questions = new_s, new_q


@pytest.mark.parametrize("seed", range(5))
def test_the_extremes_from_the_scan_follow_the_rule(seed):
    rng = np.random.default_rng(seed)
    y = random_matrix(rng, 40, 8, 0.3)
    students, questions = reference_extremes(y)
    assert students[0] and questions[0]
    for data in (y, to_compact(y), to_sparse(y)):
        found = find_extremes(data, scan=scan_responses(data)[1])
        np.testing.assert_array_equal(found.students, students)
        np.testing.assert_array_equal(found.questions, questions)


def test_the_complete_information_equals_the_direct_sum():
    """From the raw scores (score groups, first order within a group) against every cell: equal
    to rounding where skills are the group's, and within the stated Taylor bound for skills
    moved by up to 1e-4 from it; a skill far from its group or infinite computed exactly."""
    data = irtbench.simulate(2000, 80, seed=4)
    responses, scan = scan_responses(data.responses)
    scores = scan.row_right.astype(float)
    skill = np.log((scores + 0.5) / (80 - scores + 0.5))
    rng = np.random.default_rng(1)
    skill = skill + rng.uniform(-1e-4, 1e-4, skill.size) * (rng.random(skill.size) < 0.5)
    skill[:3] = [np.inf, 2.5, -np.inf]  # far from their groups
    direct = information(responses, skill, data.difficulty)
    grouped = complete_information(skill, data.difficulty, scan.row_right)
    np.testing.assert_allclose(grouped[0], direct[0], rtol=0, atol=1e-8 * 80)
    np.testing.assert_allclose(grouped[1], direct[1], rtol=1e-9)
    assert grouped[0][0] == 0.0 and grouped[0][2] == 0.0


def test_the_load_is_inside_fit_seconds(monkeypatch):
    """What a user waits for counts: a slow pass over the responses shows in ``Fit.seconds``."""
    from irtbench.estimators import base

    real = base.scan_responses

    def slow(responses):  # noqa: ANN001, ANN202
        time.sleep(0.3)
        return real(responses)

    monkeypatch.setattr(base, "scan_responses", slow)
    fit = irtbench.fit(irtbench.simulate(50, 10, seed=0).responses, "jml-newton", device="cpu")
    assert fit.seconds >= 0.3 > fit.compute_seconds


#: the comparison of the fused kernel with autograd, run in a fresh interpreter: Triton decides
#: at import whether its own library functions are interpreted, so ``TRITON_INTERPRET=1`` must be
#: set before anything (torch.compile's Inductor, say) imports Triton
FUSED_AGAINST_AUTOGRAD = """
import json, sys
import numpy as np
import irtbench
from irtbench.kernels import fused_epoch
model, missing, separable = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "True"
if not separable:
    fused_epoch.SEPARABLE_REACH = -1.0
data = irtbench.simulate(90, 70, seed=3, missing=missing, model=model)
options = dict(device="cpu", epochs=60, model=model,
               prior_log_a_sd=1.0 if model == "2pl" else None)
adam = irtbench.get_estimator("torch-adam")
fused = adam(kernel="fused", **options).fit(data.responses, trace=True)
plain = adam(kernel="autograd", **options).fit(data.responses, trace=True)
finite = np.isfinite(plain.difficulty_se)
print(json.dumps({
    "kernel": fused.diagnostics["kernel"],
    "loss": float(np.max(np.abs(fused.losses / plain.losses - 1))),
    "skill": float(np.max(np.abs(fused.skill - plain.skill))),
    "items": max(float(np.max(np.abs(fused.items[k] - v))) for k, v in plain.items.items()),
    "se": float(np.max(np.abs(fused.difficulty_se[finite] / plain.difficulty_se[finite] - 1))),
    "trace": [k for k, *_ in fused.trace] == [k for k, *_ in plain.trace],
}))
"""


@needs_triton
@pytest.mark.parametrize("model,missing,separable", [("rasch", 0.0, True), ("rasch", 0.2, True),
                                                     ("rasch", 0.0, False), ("2pl", 0.1, False)])
def test_the_fused_kernel_follows_autograd(model, missing, separable):
    """kernel='fused' (Triton's interpreter on the CPU, the loop eager) against the notebook's
    autograd path: the same losses, estimates and SEs to float32 rounding (1e-5 after 60 Adam
    steps), with the Rasch model's separable exponential and without it (as beyond its reach)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", FUSED_AGAINST_AUTOGRAD, model, str(missing),
                           str(separable)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["kernel"] == "fused" and found["trace"]
    assert found["loss"] < 1e-5 and found["skill"] < 1e-5 and found["items"] < 1e-5
    assert found["se"] < 1e-4


def test_the_fused_kernel_is_refused_where_it_cannot_run(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    data = irtbench.simulate(30, 10, seed=0)
    with pytest.raises(ValueError, match="kernel='fused' needs Triton and a CUDA device"):
        irtbench.fit(data.responses, "torch-adam", device="cpu", kernel="fused")


@pytest.mark.parametrize("name", irtbench.models.MODELS)
def test_every_declared_fast_path_exists_for_its_model(name):
    """A model's ``fast_paths`` is the only switch of the Adam fits' fast paths: each path it
    declares must have a kernel written for its objective (the closed form's check, the fused
    kernel's form), and a path it does not declare is refused by torch-adam."""
    from irtbench.kernels import closed_form, fused_epoch
    from irtbench.models.fitting import Objective

    model = irtbench.models.get_model(name)
    defaults = irtbench.get_estimator("torch-adam").defaults
    objective = Objective(model, {**defaults, "model": name}, 100)
    assert model.fast_paths <= {"closed", "fused", "logit"}
    if "closed" in model.fast_paths:
        closed_form.check(objective)
    else:
        with pytest.raises(ValueError, match="closed form fits theta - b"):
            closed_form.check(objective)
        with pytest.raises(ValueError, match="kernel='closed' is written for the Rasch model"):
            irtbench.fit(irtbench.simulate(30, 6, seed=0).responses, "torch-adam", model=name,
                         kernel="closed", device="cpu", epochs=2)
    if "fused" in model.fast_paths:
        fused_epoch.has_slope(objective)
    else:
        with pytest.raises(ValueError, match="the fused kernel fits"):
            fused_epoch.has_slope(objective)
    if "logit" in model.fast_paths:
        closed_form.check_logit(objective)
    else:
        with pytest.raises(ValueError, match="writes its own log_prob"):
            closed_form.check_logit(objective)
