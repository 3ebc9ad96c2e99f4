"""The reference estimator: fidelity to the seed notebook, recovery, missing data, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import crb_ratio_limit

import irtbench
from irtbench.estimators.torch_adam import reference_loss
from irtbench.models import get_model
from irtbench.kernels.device_responses import DeviceResponses


class NotebookModel(torch.nn.Module):
    """The seed notebook's ResponseModel, verbatim but for the constructor's arguments."""

    def __init__(self, n_students, n_questions):
        super().__init__()
        self.skill = torch.nn.Parameter(torch.zeros(n_students), requires_grad=True)
        self.difficulty = torch.nn.Parameter(torch.zeros(n_questions), requires_grad=True)

    def forward(self):
        probs = torch.sigmoid(self.skill[:, None] - self.difficulty[None, :])
        return torch.distributions.Bernoulli(probs=probs)


def notebook_fit(responses: np.ndarray, epochs=1000, alpha=1e-2):
    """The notebook's fit_model loop (on the CPU), with missing responses masked out."""
    observed = torch.from_numpy(~np.isnan(responses))
    answers = torch.from_numpy(np.nan_to_num(responses))
    model = NotebookModel(*answers.shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        optimizer.zero_grad()
        log_prob = model().log_prob(answers)
        loss = -log_prob[observed].mean() + alpha * torch.pow(model.difficulty.mean(), 2)
        loss.backward()
        optimizer.step()
    return model.skill.detach().double().numpy(), model.difficulty.detach().double().numpy()


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_fidelity_to_the_notebook_loop(missing):
    data = irtbench.simulate(100, 100, seed=0, missing=missing)
    fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    skill, difficulty = notebook_fit(data.responses)
    assert np.max(np.abs(fit.skill - skill)) < 1e-4
    assert np.max(np.abs(fit.difficulty - difficulty)) < 1e-4


def test_defaults_are_the_notebooks():
    cls = irtbench.get_estimator("torch-adam")
    assert {k: cls.defaults[k] for k in ("epochs", "lr", "alpha")} == {
        "epochs": 1000, "lr": 0.01, "alpha": 1e-2,
    }


def test_recovery_within_the_cramer_rao_tolerance():
    data = irtbench.simulate(500, 100, seed=0)
    fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    metrics = irtbench.recovery(fit, data)
    # 100 difficulties: an efficient estimator stays below sqrt(chi2_100(.999)/100) = 1.22
    assert metrics["crb_ratio_difficulty"] < crb_ratio_limit(100)
    assert metrics["crb_ratio_difficulty"] < 1.2  # the bound
    assert metrics["crb_ratio_skill"] < crb_ratio_limit(500 - metrics["n_extreme"])
    assert metrics["corr_difficulty"] > 0.99


def test_result_fields():
    data = irtbench.simulate(60, 12, seed=1)
    fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu", epochs=25)
    assert fit.n_iter == 25 and fit.losses.shape == (25,)
    assert fit.device == "cpu" and fit.estimator == "torch-adam"
    assert fit.options["epochs"] == 25 and fit.options["lr"] == 0.01  # defaults recorded
    assert fit.seconds > 0 and fit.compile_seconds == 0.0
    assert np.all(np.diff(fit.losses) < 0)  # Adam from zero, small lr: descends steadily


def test_missing_entries_do_not_enter_the_objective():
    data = irtbench.simulate(40, 15, seed=2, missing=0.3)
    observed = ~np.isnan(data.responses)
    weight = torch.from_numpy(observed.astype(np.float32))
    skill = torch.randn(40, dtype=torch.float64, requires_grad=True)
    difficulty = torch.randn(15, dtype=torch.float64, requires_grad=True)
    losses, grads = [], []
    for fill in (0.0, 1.0):  # whatever lies under the mask
        y = torch.from_numpy(np.where(observed, data.responses, fill))
        dense = DeviceResponses(int(observed.sum()), y=y.double(), weight=weight.double())
        loss = reference_loss(skill, difficulty, dense, 1e-2)
        grads.append(torch.autograd.grad(loss, (skill, difficulty)))
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-14)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    # and it is the mean over the observed entries alone (+ the penalty), computed in numpy
    s, d = skill.detach().numpy(), difficulty.detach().numpy()
    logits = s[:, None] - d[None, :]
    nll = -(data.responses * logits - np.logaddexp(0, logits))[observed].mean()
    assert losses[0] == pytest.approx(nll + 1e-2 * d.mean() ** 2, rel=1e-12)


def test_missing_data_recovery_uses_the_observed_information():
    data = irtbench.simulate(500, 100, seed=3, missing=0.3)
    fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    metrics = irtbench.recovery(fit, data)
    assert metrics["crb_ratio_difficulty"] < crb_ratio_limit(100)


def test_standard_errors_are_inf_exactly_for_extreme_students():
    data = irtbench.simulate(200, 8, seed=4)
    fit = irtbench.fit(data.responses, estimator="torch-adam", device="cpu", epochs=50)
    extreme, _ = irtbench.models.extremes(data.responses)
    assert extreme.any()
    assert np.all(np.isinf(fit.skill_se[extreme]))
    assert np.all(np.isfinite(fit.skill_se[~extreme])) and np.all(fit.skill_se[~extreme] > 0)


def test_cuda_request():
    data = irtbench.simulate(50, 10, seed=5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            irtbench.fit(data.responses, estimator="torch-adam", device="cuda")
        return
    cpu = irtbench.fit(data.responses, estimator="torch-adam", device="cpu")
    gpu = irtbench.fit(data.responses, estimator="torch-adam", device="cuda")
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.difficulty, cpu.difficulty, atol=1e-4)


def test_auto_device_runs_where_torch_can():
    data = irtbench.simulate(50, 10, seed=6)
    fit = irtbench.fit(data.responses, estimator="torch-adam", epochs=5)
    assert fit.device == ("cuda:0" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs=0 must be a positive integer"),
        ({"lr": -1}, "lr=-1 must be a positive number"),
        ({"alpha": -0.1}, "alpha=-0.1 must be a non-negative number"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"learning_rate": 0.1}, "unknown option.*valid options: alpha, device, dims, epochs"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        irtbench.fit([[0, 1], [1, 0]], estimator="torch-adam", **options)


def test_unknown_estimator_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown estimator 'torch-sgd'.*torch-adam"):
        irtbench.fit([[0, 1], [1, 0]], estimator="torch-sgd")


@pytest.mark.parametrize(("missing", "storage"), [(0.0, "float32"), (0.25, "float32"),
                                                   (0.25, "int8")])
def test_the_compiled_fused_step_follows_the_autograd_path(missing, storage):
    """kernel='compiled' (torch.compile of the closed-form objective and gradient, one pass per
    epoch over float32 answers or int8 codes) against the notebook's autograd path on the same
    data: equal to 1e-5 after 300 Adam epochs (float32 summation order only); its compilation
    is timed apart."""
    data = irtbench.simulate(120, 30, seed=4, missing=missing)
    autograd = irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=300,
                            kernel="autograd")
    compiled = irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=300,
                            kernel="compiled", storage=storage)
    assert autograd.compile_seconds == 0.0 and compiled.compile_seconds > 0
    np.testing.assert_allclose(compiled.skill, autograd.skill, atol=1e-5)
    np.testing.assert_allclose(compiled.difficulty, autograd.difficulty, atol=1e-5)
    np.testing.assert_allclose(compiled.losses, autograd.losses, rtol=1e-5)


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_the_fused_gradient_is_the_autograd_gradient_of_the_reference_loss(storage):
    from irtbench.kernels.closed_form import fused_step

    data = irtbench.simulate(50, 12, seed=5, missing=0.2)
    n = int(np.isfinite(data.responses).sum())
    device_data = DeviceResponses.transfer(data.responses, n, torch.device("cpu"), storage)
    if storage == "float32":  # float64 throughout: the comparison is of formulas
        answers, weight = device_data.y.double(), device_data.weight.double()
        device_data.y, device_data.weight = answers, weight
    else:
        answers, weight = device_data.codes, None
    skill = torch.randn(50, dtype=torch.float64, requires_grad=True)
    difficulty = torch.randn(12, dtype=torch.float64, requires_grad=True)
    loss = reference_loss(skill, difficulty, device_data, 0.3)
    loss.backward()
    fused = fused_step(skill.detach(), difficulty.detach(), answers, weight, float(n), 0.3)
    assert float(fused[0]) == pytest.approx(float(loss.detach()), rel=1e-12)
    torch.testing.assert_close(fused[1], skill.grad)
    torch.testing.assert_close(fused[2], difficulty.grad)


def test_auto_chooses_the_compiled_kernel_only_where_it_pays():
    from irtbench.estimators.torch_adam import COMPILE_FROM, TorchAdam
    from irtbench.responses import to_sparse

    small, large = np.zeros((10, 10)), np.zeros((COMPILE_FROM // 100 + 1, 100))
    assert TorchAdam().auto_kernel(small, "cpu", get_model("rasch")) == "closed"
    assert TorchAdam().auto_kernel(large, "cpu", get_model("rasch")) == "compiled"
    assert TorchAdam(storage="int8").auto_kernel(large, "cpu", get_model("rasch")) == "closed"
    assert TorchAdam().auto_kernel(to_sparse(small), "cuda", get_model("rasch")) == "closed"
    assert TorchAdam().auto_kernel(small, "cpu", get_model("2pl")) == "logit"
    assert TorchAdam().auto_kernel(small, "cpu", get_model("m2pl")) == "logit"
    assert TorchAdam().auto_kernel(small, "cpu", get_model("3pl")) == "autograd"


def test_auto_chooses_the_fused_kernel_on_cuda_where_triton_is(monkeypatch):
    """On CUDA dense Rasch and 2PL data take the fused Triton kernel where Triton is, the 3PL
    autograd; without Triton the Rasch model takes torch.compile's kernel."""
    from irtbench.estimators.torch_adam import TorchAdam
    from irtbench.kernels import fused_epoch

    small = np.zeros((10, 10))
    monkeypatch.setattr(fused_epoch, "available", lambda: True)
    assert TorchAdam().auto_kernel(small, "cuda", get_model("rasch")) == "fused"
    assert TorchAdam().auto_kernel(small, "cuda", get_model("2pl")) == "fused"
    assert TorchAdam().auto_kernel(small, "cuda", get_model("3pl")) == "autograd"
    monkeypatch.setattr(fused_epoch, "available", lambda: False)
    assert TorchAdam().auto_kernel(small, "cuda", get_model("rasch")) == "compiled"
    assert TorchAdam().auto_kernel(small, "cuda", get_model("2pl")) == "logit"


def test_a_failed_compile_falls_back_to_the_closed_form_with_a_warning(monkeypatch):
    """kernel='auto' on data that would compile: a compiler failure costs a warning, not the
    fit; asked for by name, it is raised."""
    from irtbench.estimators import torch_adam

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch_adam, "COMPILE_FROM", 1)
    monkeypatch.setattr(torch, "compile", lambda function, **options: broken)
    data = irtbench.simulate(40, 10, seed=1)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*kernel='closed'"):
        fit = irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=20)
    assert np.all(np.isfinite(fit.difficulty))
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=20, kernel="compiled")


@pytest.mark.parametrize("layout", ["float32", "int8", "sparse"])
def test_the_closed_form_step_is_autograd_of_the_reference_loss(layout):
    """closed_form_step (the CPU default) against autograd of reference_loss, in float64, for
    each layout of the data: the same loss and the same gradients to rounding."""
    from irtbench.kernels.closed_form import closed_form_step
    from irtbench.responses import to_sparse

    data = irtbench.simulate(60, 14, seed=6, missing=0.2)
    responses = to_sparse(data.responses) if layout == "sparse" else data.responses
    n = int(np.isfinite(data.responses).sum())
    device_data = DeviceResponses.transfer(responses, n, torch.device("cpu"), layout)
    if device_data.y is not None:  # float64 throughout: the comparison is of formulas
        device_data.y = device_data.y.double()
        if device_data.weight is not None:
            device_data.weight = device_data.weight.double()
    skill = torch.randn(60, dtype=torch.float64, requires_grad=True)
    difficulty = torch.randn(14, dtype=torch.float64, requires_grad=True)
    loss = reference_loss(skill, difficulty, device_data, 0.3, backward=True)
    expected = skill.grad.clone(), difficulty.grad.clone()
    closed = closed_form_step(skill, difficulty, device_data, 0.3)
    assert float(closed) == pytest.approx(float(loss), rel=1e-12)
    torch.testing.assert_close(skill.grad, expected[0])
    torch.testing.assert_close(difficulty.grad, expected[1])


@pytest.mark.parametrize("storage", ["float32", "int8"])
def test_the_closed_kernel_follows_the_autograd_path(storage):
    """kernel='closed' (the default on a CPU) against the notebook's autograd path: equal to
    1e-5 after 300 Adam epochs, losses included (float32 summation order only)."""
    data = irtbench.simulate(120, 30, seed=4, missing=0.25)
    fits = [irtbench.fit(data.responses, "torch-adam", device="cpu", epochs=300, kernel=kernel,
                         storage=storage) for kernel in ("autograd", "closed")]
    np.testing.assert_allclose(fits[1].skill, fits[0].skill, atol=1e-5)
    np.testing.assert_allclose(fits[1].difficulty, fits[0].difficulty, atol=1e-5)
    np.testing.assert_allclose(fits[1].losses, fits[0].losses, rtol=1e-5)


@pytest.mark.parametrize("model", ["rasch", "2pl", "m2pl"])
@pytest.mark.parametrize("layout", ["float32", "int8", "sparse"])
def test_the_logit_step_is_autograd_of_the_models_objective(model, layout):
    """logit_step (the Bernoulli residual chained through the model's logits: the 2PL's and
    M2PL's default on a CPU) against autograd of the model's whole objective, priors and gauge
    penalty included, in float64, for each layout: the same loss and the same gradients."""
    from irtbench.estimators.torch_adam import objective_loss
    from irtbench.kernels.closed_form import logit_step
    from irtbench.models.fitting import Objective
    from irtbench.responses import to_sparse

    data = irtbench.simulate(60, 14, seed=6, missing=0.2, model=model)
    responses = to_sparse(data.responses) if layout == "sparse" else data.responses
    n = int(np.isfinite(data.responses).sum())
    device_data = DeviceResponses.transfer(responses, n, torch.device("cpu"), layout)
    if device_data.y is not None:  # float64 throughout: the comparison is of formulas
        device_data.y = device_data.y.double()
        if device_data.weight is not None:
            device_data.weight = device_data.weight.double()
    options = {**irtbench.get_estimator("torch-adam").defaults, "model": model, "alpha": 0.3,
               "prior_log_a_sd": 0.7 if model == "2pl" else None}
    objective = Objective(get_model(model), options, n)
    rng = np.random.default_rng(0)
    start = objective.start(data.responses.shape)
    raw = {name: torch.tensor(value + 0.3 * rng.standard_normal(value.shape),
                              dtype=torch.float64, requires_grad=True)
           for name, value in start.items()}
    loss = objective_loss(objective, raw, device_data, backward=True)
    expected = {name: value.grad.clone() for name, value in raw.items()}
    for value in raw.values():
        value.grad = None
    fast = logit_step(objective, raw, device_data)
    assert float(fast) == pytest.approx(float(loss), rel=1e-12)
    for name, value in raw.items():
        torch.testing.assert_close(value.grad, expected[name], msg=name)


def test_the_logit_path_refuses_a_model_with_its_own_log_likelihood():
    from irtbench.kernels.closed_form import check_logit
    from irtbench.models.fitting import Objective

    options = {**irtbench.get_estimator("torch-adam").defaults, "model": "3pl"}
    with pytest.raises(ValueError, match="the 3pl model writes its own log_prob"):
        check_logit(Objective(get_model("3pl"), options, 10))
    with pytest.raises(ValueError, match="kernel='logit' needs a Bernoulli log-likelihood"):
        irtbench.fit(irtbench.simulate(30, 6, seed=0, model="3pl").responses, "torch-adam",
                     model="3pl", kernel="logit", device="cpu", epochs=2)


@pytest.mark.parametrize("layout", ["float32", "int8", "sparse"])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_the_device_responses_of_some_questions_are_those_questions_in_every_layout(layout,
                                                                                     missing):
    """The one torch data layer, as the EM fits use it: the questions ``columns`` moved in
    each layout and read back (rows decoded a block or a gathered set at a time, the triples'
    compressed matrices) are exactly those columns of the host matrix, the observed mask None
    only when nothing among them is missing."""
    from irtbench.responses import to_sparse

    data = irtbench.simulate(70, 15, seed=7, missing=missing)
    columns = np.ones(15, dtype=bool)
    columns[[0, 6, 14]] = False
    kept = data.responses[:, columns]
    seen = ~np.isnan(kept)
    responses = to_sparse(data.responses) if layout == "sparse" else data.responses
    moved = DeviceResponses.transfer(responses, int(seen.sum()), torch.device("cpu"), layout,
                                     columns=columns, dtype=torch.float64)
    assert moved.shape == kept.shape and moved.complete == (missing == 0.0)
    answers = np.where(seen, kept, 0.0)
    if layout == "sparse":
        (y, observed), (y_t, observed_t) = moved.compressed()
        np.testing.assert_array_equal(y.to_dense().numpy(), answers)
        np.testing.assert_array_equal(observed.to_dense().numpy(), seen)
        np.testing.assert_array_equal(y_t.to_dense().numpy(), answers.T)
        np.testing.assert_array_equal(observed_t.to_dense().numpy(), seen.T)
        return
    blocks = list(moved.blocks(torch.float64, elements=15 * 8))
    assert [block.rows for block in blocks] == [slice(i, min(i + 10, 70)) for i in range(0, 70, 10)]
    order = torch.randperm(70, generator=torch.Generator().manual_seed(0))
    for block in [*blocks, moved.rows(order, torch.float64)]:
        assert block.y.dtype == torch.float64
        np.testing.assert_array_equal(block.y.numpy(), answers[block.rows])
        if missing == 0.0:
            assert block.weight is None
        else:
            np.testing.assert_array_equal(block.weight.numpy(), seen[block.rows])
