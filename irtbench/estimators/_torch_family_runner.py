"""The child side of the torch family's peers (:mod:`irtbench.estimators._torch_family`:
``irtorch-*`` and ``torch-measure-*``): a standalone script run by the interpreter of the
package's own virtual environment. It imports only the standard library, numpy, torch and the
package (irtorch or torch_measure; pyro for torch-measure's SVI), never irtbench.

    python -I _torch_family_runner.py IN.npz OUT.npz SPAWNED

``IN.npz`` holds ``package`` (``"irtorch"`` or ``"torch_measure"``), ``method`` (the package's
word for it: irtorch's ``"MML"``, ``"VAE"``, ``"JML"``; torch-measure's ``"mle"``, ``"jml"``,
``"em"``, ``"svi"``; or ``"probabilities"``, below), ``model_class`` (the package's class of the
model), ``dims`` (0: the class's own; else its latent dimensions), the response matrix
``responses`` (float32, NaN missing), ``seed``, ``threads``, ``parent`` (the caller's process
id), ``device`` (``"cpu"`` or ``"cuda:N"``: where the package fits), irtorch's
``theta_estimation`` (how its ``latent_scores`` scores the skills) and the package's keyword
arguments of the fit as ``kw_NAME`` (those left out take the package's defaults). It fits the
model with the package's own entry point (irtorch's ``model.fit(train_data, algorithm=...)``,
torch-measure's ``model.fit(data, method=...)``), on ``device`` (each package's own ``device``
argument), with whatever the fit prints sent to ``/dev/null``, and writes ``OUT.npz``: the
package's estimates in the package's own parameters (irtorch's ``item_parameters()`` columns
``a`` (J, D), ``d`` and ``c``; torch-measure's ``ability``, ``difficulty``, ``discrimination``,
``guessing``, or a factor model's ``loadings``), the skills' estimates and SEs as the package
gives them, the losses it records, its iteration count and whether its own stopping rule fired
(``stopped_by_rule``; -1 where it has none), the versions, and its own clocks:
``startup_seconds`` (the interpreter's start and imports, from ``SPAWNED``), ``fit_seconds``
(the package's fit call) and ``score_seconds`` (skills and SEs after it).

``method="probabilities"`` fits nothing: for each of ``cases`` cases, given as
``caseK_NAME`` (``model_class``, ``dims``, the skills ``theta`` (``(n,)`` or ``(n, D)``) and the
package's own parameters ``set_NAME``, as above), it sets the package's model to those
parameters and writes ``caseK_probabilities``, the package's :math:`P(Y = 1)` at ``theta``, and
the parameters as the package's public accessors read them back (``caseK_NAME``: what a fit's
read-back uses). The parameterisation tests compare them with the suite's models, every case
in one child.

**Killable.** The caller's time limit kills the interpreter it started (``subprocess.run``
kills its child on any exception, the harness's ``FitTimeout`` included); a caller killed
outright (a sweep's worker past its budget gets SIGKILL) cannot, so this script asks Linux to
kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) and exits at once if the
parent is already gone; elsewhere a thread watches the parent's id.
"""

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

# run as a script, its own folder (irtbench/estimators) comes first on sys.path on Python < 3.11
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

#: Linux's prctl option that sends a signal to this process when its parent dies
PR_SET_PDEATHSIG = 1


def monotonic() -> float:
    """The system-wide monotonic clock, comparable with the parent's."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux), else a thread that polls for it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            return
    except (OSError, AttributeError):
        pass
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def exit_if_orphaned(parent: int) -> None:
    """The parent may have died before :func:`die_with_parent` took hold."""
    if os.getppid() != parent:
        os._exit(1)


def keywords(settings) -> dict:
    """The package's keyword arguments given as ``kw_NAME`` (numpy 0-d arrays -> Python)."""
    return {key[3:]: settings[key].item() for key in settings if key.startswith("kw_")}


def device_of(settings) -> str:
    """Where to fit: ``device`` (``"cpu"`` when not given, as for the probabilities task)."""
    return str(settings["device"]) if "device" in settings else "cpu"


def host(tensor):
    """A tensor's values in host memory as float64 numpy."""
    import numpy as np

    return tensor.detach().cpu().numpy().astype(np.float64)


def given(settings, prefix: str) -> dict:
    """The arrays given as ``PREFIX_NAME``, by name."""
    return {key[len(prefix):]: settings[key] for key in settings if key.startswith(prefix)}


# -- irtorch -------------------------------------------------------------------------------------
def irtorch_model(settings, n_items: int):
    import irtorch.models

    cls = getattr(irtorch.models, str(settings["model_class"]))
    dims = int(settings["dims"])
    return cls(items=n_items, **({"latent_variables": dims} if dims else {}))


def irtorch_items(model) -> dict:
    """irtorch's ``item_parameters()``: slopes ``a`` (J, D) from its columns a1..aD, the
    intercepts ``d`` and (3PL) the floors ``c``, as it reports them."""
    import numpy as np

    table = model.item_parameters()
    slopes = [name for name in table.columns if name.startswith("a")]
    out = {"d": table["d"].to_numpy(np.float64)}
    if slopes:
        out["a"] = table[slopes].to_numpy(np.float64)
    if "c" in table.columns:
        out["c"] = table["c"].to_numpy(np.float64)
    return out


def irtorch_device(device: str) -> str:
    """irtorch's spelling of a device: it moves its model and data only for the exact word
    ``"cuda"`` (``latent_scores`` tests ``device == "cuda"``), so ``"cuda:N"`` is made the
    current device and named ``"cuda"``."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
        return "cuda"
    return device


def irtorch_fit(settings) -> dict:
    """irtorch's ``model.fit(train_data, algorithm=ALGORITHM(), device=DEVICE, **kw)``, then
    its ``latent_scores(data, standard_errors=True, device=DEVICE, theta_estimation=...)``
    (irtorch moves its model back to the CPU after each)."""
    import numpy as np
    import torch
    from irtorch import estimation_algorithms

    torch.manual_seed(int(settings["seed"]))
    data = torch.from_numpy(np.asarray(settings["responses"], dtype=np.float32))
    model = irtorch_model(settings, data.shape[1])
    algorithm = getattr(estimation_algorithms, str(settings["method"]))()
    options = keywords(settings)
    device = irtorch_device(device_of(settings))
    started = monotonic()
    model.fit(train_data=data, algorithm=algorithm, device=device, **options)
    fitted = monotonic()
    theta, theta_se = model.latent_scores(data, standard_errors=True, device=device,
                                          theta_estimation=str(settings["theta_estimation"]))
    scored = monotonic()
    losses = np.asarray(algorithm.training_history["train_loss"], dtype=np.float64)
    if hasattr(algorithm, "total_iterations"):  # the autoencoders count optimiser steps
        n_iter = int(algorithm.total_iterations)
        stopped = algorithm.lr_update_count >= int(options.get(
            "learning_rate_updates_before_stopping", 2))
    else:  # MML and JML: one full-batch step an epoch, one loss each
        n_iter = len(losses)
        stopped = n_iter < int(options.get("max_epochs", 1000))
    return {**irtorch_items(model), "theta": host(theta), "theta_se": host(theta_se),
            "losses": losses,
            "n_iter": n_iter, "stopped_by_rule": int(stopped),
            "fit_seconds": fitted - started, "score_seconds": scored - fitted}


def irtorch_probabilities(settings) -> dict:
    """irtorch's model with ``set_a``, ``set_d``, ``set_c`` (its ``item_parameters()`` units)
    put into its parameters (:data:`IRTORCH_SETTERS`); ``item_probabilities(theta)[:, :, 1]``."""
    import torch

    values = {name: torch.as_tensor(v, dtype=torch.float32)
              for name, v in given(settings, "set_").items()}
    model = irtorch_model(settings, len(values["d"]))
    with torch.no_grad():
        for name, value in values.items():
            IRTORCH_SETTERS[name](model, value)
        theta = torch.as_tensor(settings["theta"], dtype=torch.float32).reshape(
            len(settings["theta"]), -1)
        probabilities = model.item_probabilities(theta)[:, :, 1]
    return {**irtorch_items(model), "probabilities": host(probabilities)}


def _logit(value):
    import torch

    return torch.logit(value)


#: where each of irtorch's item_parameters() goes in its model: intercepts, slopes (its free
#: weights in row-major order), floors (the sigmoid of its guessing parameter)
IRTORCH_SETTERS = {
    "d": lambda model, value: model.bias_param.copy_(value),
    "a": lambda model, value: model.weight_param.copy_(value.reshape(-1)),
    "c": lambda model, value: model.guessing_param.copy_(_logit(value)),
}


# -- torch-measure -------------------------------------------------------------------------------
def torch_measure_model(settings, n_subjects: int, n_items: int):
    import torch_measure.models

    cls = getattr(torch_measure.models, str(settings["model_class"]))
    dims = int(settings["dims"])
    return cls(n_subjects=n_subjects, n_items=n_items, device=device_of(settings),
               **({"n_factors": dims} if dims else {}))


def torch_measure_items(model) -> dict:
    """The model's parameters as its public accessors give them (in host memory)."""
    out = {}
    for name in ("ability", "difficulty", "discrimination", "guessing", "loadings"):
        value = getattr(model, name, None)
        if value is not None:
            out[name] = host(value)
    return out


def torch_measure_errors(model, data, history: dict) -> dict:
    """SEs as the package gives them: SVI's posterior scales (``history["posterior"]``; the
    discrimination's and the floor's in the log and logit spaces its guide works in), else the
    Fisher SEs of ``torch_measure.metrics`` for the Rasch model and the 2PL (written for
    those, :data:`FISHER`: none for the 3PL and the factor model), on the model's device."""
    if "posterior" in history:
        return {f"{name}_scale": host(part["scale"])
                for name, part in history["posterior"].items()}
    errors = FISHER.get(type(model).__name__, lambda model, data: {})(model,
                                                                     data.to(model.device))
    return {name: host(value) for name, value in errors.items()}


def _rasch_fisher(model, data) -> dict:
    from torch_measure.metrics import ability_standard_errors, difficulty_standard_errors

    ability, difficulty = model.ability.detach(), model.difficulty.detach()
    return {"ability_se": ability_standard_errors(ability, difficulty),
            "difficulty_se": difficulty_standard_errors(ability, difficulty, data)}


def _twopl_fisher(model, data) -> dict:
    from torch_measure.metrics import (
        ability_standard_errors,
        difficulty_standard_errors,
        discrimination_standard_errors,
    )

    ability, difficulty = model.ability.detach(), model.difficulty.detach()
    slope = model.discrimination.detach()
    return {"ability_se": ability_standard_errors(ability, difficulty, slope),
            "difficulty_se": difficulty_standard_errors(ability, difficulty, data, slope),
            "discrimination_se": discrimination_standard_errors(ability, difficulty, slope,
                                                                data)}


#: the package's Fisher SEs of each of its models that has them
FISHER = {"Rasch": _rasch_fisher, "TwoPL": _twopl_fisher}


def torch_measure_fit(settings) -> dict:
    """torch-measure's ``model.fit(data, method=METHOD, verbose=False, **kw)`` from its random
    start (``torch.manual_seed(seed)``; SVI's draws by ``pyro.set_rng_seed(seed)``)."""
    import numpy as np
    import torch

    seed, method = int(settings["seed"]), str(settings["method"])
    torch.manual_seed(seed)
    if method == "svi":
        import pyro

        pyro.set_rng_seed(seed)
    data = torch.from_numpy(np.asarray(settings["responses"], dtype=np.float32))
    model = torch_measure_model(settings, *data.shape)
    options = keywords(settings)
    started = monotonic()
    history = model.fit(data, method=method, verbose=False, **options)
    fitted = monotonic()
    errors = torch_measure_errors(model, data, history)
    scored = monotonic()
    losses = history.get("losses", history.get("losses_item", []))
    n_iter = len(losses)
    rules = {"mle": 1, "jml": 1}  # stop when the loss changes by less than convergence_tol
    stopped = int(n_iter < int(options.get("max_epochs", 1000))) if method in rules else -1
    extra = ({"ability_epochs": len(history["losses_ability"])}
             if "losses_ability" in history else {})
    return {**torch_measure_items(model), **errors,
            "losses": np.asarray(losses, dtype=np.float64), "n_iter": n_iter,
            "stopped_by_rule": stopped, "fit_seconds": fitted - started,
            "score_seconds": scored - fitted, **extra}


def torch_measure_probabilities(settings) -> dict:
    """torch-measure's model with the skills ``theta`` and ``set_difficulty``,
    ``set_discrimination``, ``set_guessing`` (its public units) or ``set_loadings`` and
    ``set_intercept`` (a factor model's ``V`` and ``Z``) put into its parameters
    (:data:`TORCH_MEASURE_SETTERS`); ``predict_dense``."""
    import torch
    from torch_measure.models import predict_dense

    values = {name: torch.as_tensor(v, dtype=torch.float32)
              for name, v in given(settings, "set_").items()}
    theta = torch.as_tensor(settings["theta"], dtype=torch.float32)
    model = torch_measure_model(settings, len(theta), len(next(iter(values.values()))))
    skills = getattr(model, SKILLS.get(str(settings["model_class"]), "ability"))
    with torch.no_grad():
        skills.copy_(theta.reshape(skills.shape))
        for name, value in values.items():
            TORCH_MEASURE_SETTERS[name](model, value)
        probabilities = predict_dense(model)
    return {**torch_measure_items(model), "probabilities": host(probabilities)}


#: the parameter that holds the skills, where not ``ability`` (a factor model's ``U``)
SKILLS = {"LogisticFM": "U"}
#: where each of torch-measure's public parameters goes in its model: the raw parameters
#: behind its positive discriminations (their log) and its floors (their logit)
TORCH_MEASURE_SETTERS = {
    "difficulty": lambda model, value: model.difficulty.copy_(value),
    "discrimination": lambda model, value: model._discrimination_raw.copy_(value.log()),
    "guessing": lambda model, value: model._guessing_raw.copy_(_logit(value)),
    "loadings": lambda model, value: model.V.copy_(value),
    "intercept": lambda model, value: model.Z.copy_(value),
}


def every_case(settings, probabilities) -> dict:
    """``probabilities`` of each case given as ``caseK_NAME``, its outputs as ``caseK_NAME``."""
    out = {}
    for k in range(int(settings["cases"])):
        for name, value in probabilities(given(settings, f"case{k}_")).items():
            out[f"case{k}_{name}"] = value
    return out


#: what each (package, method) runs
TASKS = {"irtorch": (irtorch_fit, irtorch_probabilities),
         "torch_measure": (torch_measure_fit, torch_measure_probabilities)}


def version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(distribution)
    except PackageNotFoundError:
        return ""


def main(source: str, target: str, spawned: str) -> None:
    die_with_parent()
    import numpy as np

    settings = np.load(source)
    exit_if_orphaned(int(settings["parent"]))
    threads = int(settings["threads"])
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only possible before any inter-op work
        pass
    package = str(settings["package"])
    __import__(package)
    imported = monotonic()
    fit, probabilities = TASKS[package]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        out = (every_case(settings, probabilities) if str(settings["method"]) == "probabilities"
               else fit(settings))
    np.savez(target, **out, startup_seconds=imported - float(spawned),
             threads=torch.get_num_threads(), torch_version=torch.__version__,
             package_version=version(package.replace("_", "-")))


if __name__ == "__main__":
    main(*sys.argv[1:4])
