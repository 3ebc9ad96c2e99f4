r"""What the torch family's peers share: **irtorch** (0.5.6; ``irtorch-mml``, ``irtorch-vae``,
``irtorch-jml``) and **torch-measure** (0.1.0; ``torch-measure-mle``, ``torch-measure-jml``,
``torch-measure-em``, ``torch-measure-svi``), IRT packages built on PyTorch, each method a user
would choose as an estimator of its own, run by the interpreter of the package's own virtual
environment.

**Environments.** Each package lives in a virtual environment of its own, built by ``make``
from pinned versions with torch installed first as the pinned CPU build (an unpinned torch
would pull a CUDA build of several GB)::

    make irtorch-venv         # .venv-irtorch: torch==2.13.0, then irtorch==0.5.6
    make torch-measure-venv   # .venv-torch-measure: torch==2.13.0, then torch-measure==0.1.0

(:attr:`Package.install_command` spells them out). The interpreter: option ``python``; else
the environment variable (``$IRTBENCH_IRTORCH_PYTHON``, ``$IRTBENCH_TORCH_MEASURE_PYTHON``);
else ``VENV/bin/python`` in the repository root, then in the current directory
(:func:`~irtbench.estimators._child.venv_interpreter`). Without it the estimators are
unavailable and say how to make it; their tests skip with that command.

**A fit.** The kept questions' responses (float32, NaN missing; questions everybody got right
or wrong are left out and reported at -/+inf, :mod:`irtbench.estimators._peers`) go to
:mod:`irtbench.estimators._torch_family_runner` through a temporary ``.npz``
(:func:`~irtbench.estimators._child.run_runner`), with the package's class of the model
(:data:`IRTORCH_CLASSES`, :data:`TORCH_MEASURE_CLASSES`), the method in the package's own word,
and the options that are the package's own keyword arguments, under the package's own names and
with its own defaults (each estimator's docstring says which and why); an option left at None
is not passed (the package's default applies). The child fits with the package's own entry
point on the fit's device and returns its estimates *in the package's parameters*; they are
mapped onto the suite's here (:func:`irtorch_items`, :func:`torch_measure_items`), so the
mapping is tested against each package's probability function
(``tests/estimators/test_irtorch.py``, ``test_torch_measure.py``: the runner's
``probabilities`` task).

**Devices.** ``device="cpu"`` by default, like every estimator, and for ``"auto"`` too (the
environments ``make`` builds hold the CPU torch); ``"cuda"`` is resolved against the GPUs
irtbench's own torch sees and passed to the package's own ``device`` argument. The package's
environment must then hold a CUDA torch, or the child fails in one line; on a GPU machine
``benchmarks/torch_family_venvs.sh`` builds both environments from carried wheels over that
machine's CUDA torch (``benchmarks/gpu_check.sh``).

**Extremes.** Where an estimator's skills are maximum-likelihood (``infinite_extremes``: irtorch's
``latent_scores`` by ML, torch-measure's joint fits) a student who got everything right or wrong
has no finite estimate: the package's value, where its optimiser stopped, is kept as the
estimate and its SE is ``inf``, the suite's rule for the fixed-epoch Adam fits.

**Convergence.** ``diagnostics["stopped_by_rule"]`` is whether the package's own stopping rule
ended the fit before its cap (irtorch: its learning-rate schedule cut the rate the set number
of times; torch-measure's MLE and JML: the loss changed by less than ``convergence_tol``); a
method with no rule (torch-measure's EM and SVI run a fixed number of epochs) has no flag, and
``diagnostics["stopping_rule"]`` says so. ``diagnostics["converged"]`` starts as that flag and
is cleared by the suite where an item ran away (``Estimator.result_of``). A flag says the
package stopped by its rule, not that it reached its optimum: ``benchmarks/torch_family.py``
measures how far it stopped.

**Failures** are one line: an error inside the package (the child's last ``...Error: ...``
line, :func:`~irtbench.estimators._child.error_line`) becomes a
:class:`~irtbench.estimators._peers.PackageFailure` naming the estimator. A fit past the
caller's time limit is stopped by killing the child (``subprocess.run`` kills it when the
harness's ``FitTimeout`` interrupts it); a caller killed outright takes the child with it (the
runner asks Linux for ``PR_SET_PDEATHSIG``).

**Clock.** ``Fit.seconds`` times everything (the suite's one clock): the ``.npz`` files, the
interpreter's start and its imports (torch, the package: several seconds on 2 cores), the fit,
the skills' scoring and SEs, the results read back. ``diagnostics`` split it:
``PREFIX_process_seconds`` (the child, start to exit), ``PREFIX_startup_seconds`` (its start
and imports), ``PREFIX_fit_seconds`` (the package's fit call alone) and
``PREFIX_score_seconds`` (skills and SEs after it), ``PREFIX`` being ``irtorch`` or
``torch_measure``; also the versions and the child's thread count (the caller's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from irtbench import devices
from irtbench.estimators import options as option
from irtbench.estimators._child import caller_threads, importable_by, run_runner, \
    venv_interpreter
from irtbench.estimators._peers import PackageFailure, PeerEstimator, PeerFit
from irtbench.estimators.base import BackendNotInstalled, Option, estimators, get_estimator
from irtbench.models import find_extremes, get_model
from irtbench.models.m2pl import derived_items

RUNNER = Path(__file__).with_name("_torch_family_runner.py")
#: the torch build every package's environment installs first (the Makefile's TORCH)
TORCH = "torch==2.13.0"


@dataclass(frozen=True)
class Package:
    """A package of the torch family and its environment."""

    #: the distribution's name on PyPI and its pinned version
    distribution: str
    version: str
    #: its import name (also the prefix of its diagnostics)
    module: str
    #: its virtual environment's folder and the Makefile's target that builds it
    venv: str
    target: str
    #: the environment variable that names another interpreter
    variable: str

    @property
    def install_command(self) -> str:
        pip = f"{self.venv}/bin/python -m pip install"
        return (f"make {self.target} (python3 -m venv {self.venv} && {pip} {TORCH} && "
                f"{pip} {TORCH} {self.distribution}=={self.version})")

    def interpreter(self, python: Option = None) -> Path:
        return venv_interpreter(self.venv, self.variable, python)

    def problem(self, python: Path) -> str | None:
        """Why ``python`` cannot run the package (None when it can)."""
        found = importable_by(python, self.module)
        if found is not None and not python.exists():
            return (f"{self.distribution}'s interpreter {python} (not found; another can be "
                    f"named by ${self.variable} or option python)")
        return found and found.replace("the interpreter", f"{self.distribution}'s interpreter")


IRTORCH = Package("irtorch", "0.5.6", "irtorch", ".venv-irtorch", "irtorch-venv",
                  "IRTBENCH_IRTORCH_PYTHON")
TORCH_MEASURE = Package("torch-measure", "0.1.0", "torch_measure", ".venv-torch-measure",
                        "torch-measure-venv", "IRTBENCH_TORCH_MEASURE_PYTHON")
#: the family's packages, in the order they are listed
PACKAGES = (IRTORCH, TORCH_MEASURE)

#: irtorch's class of each of the suite's models (``irtorch.models``): its 1PL, 2PL (with
#: ``latent_variables`` D, the M2PL) and 3PL
IRTORCH_CLASSES = {"rasch": "OneParameterLogistic", "2pl": "TwoParameterLogistic",
                   "3pl": "ThreeParameterLogistic", "m2pl": "TwoParameterLogistic"}
#: torch-measure's class of each of the suite's models (``torch_measure.models``); its
#: ``LogisticFM`` is the multidimensional 2PL
TORCH_MEASURE_CLASSES = {"rasch": "Rasch", "2pl": "TwoPL", "3pl": "ThreePL",
                         "m2pl": "LogisticFM"}


def floats(raw: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of ``raw`` named in ``names`` (those it has), as float64."""
    return {name: np.asarray(raw[name], np.float64) for name in names if name in raw}


def irtorch_items(model: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    r"""irtorch's ``item_parameters()`` (slopes :math:`a_j`, intercepts :math:`d_j`, floors
    :math:`c_j`) as the suite's (:data:`IRTORCH_READ_BACK`). irtorch writes every binary model
    slope-intercept, :math:`P = c_j + (1 - c_j)\,\sigma(a_j^\top\theta + d_j)` (the 1PL:
    :math:`a_j = 1`, no :math:`c_j`), so :math:`b_j = -d_j / a_j` (the Rasch model: :math:`-d_j`)
    and the M2PL's loadings and intercepts are :math:`a_j` and :math:`d_j` themselves."""
    return IRTORCH_READ_BACK[model](floats(raw, ("a", "d", "c")))


def _irtorch_intercepts(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """irtorch's 1PL, :math:`\\sigma(\\theta + d)`: the Rasch model with :math:`b = -d`."""
    return {"difficulty": -raw["d"]}


def _irtorch_slopes(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """irtorch's one-dimensional 2PL: :math:`b = -d/a`."""
    a = raw["a"][:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"difficulty": -raw["d"] / a, "discrimination": a}


def _irtorch_floors(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """irtorch's 3PL: the 2PL's and its floors :math:`c`."""
    return {**_irtorch_slopes(raw), "guessing": raw["c"]}


def _irtorch_loadings(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """irtorch's D-dimensional 2PL: loadings :math:`a_j`, intercepts :math:`d_j`."""
    return derived_items(raw["a"], raw["d"])


#: how irtorch's item parameters of each model are read back
IRTORCH_READ_BACK = {"rasch": _irtorch_intercepts, "2pl": _irtorch_slopes,
                     "3pl": _irtorch_floors, "m2pl": _irtorch_loadings}


def torch_measure_items(model: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    r"""torch-measure's parameters as the suite's (:data:`TORCH_MEASURE_READ_BACK`). Its Rasch,
    2PL and 3PL are written as the suite's, :math:`P = c_j + (1 - c_j)\,\sigma(a_j(\theta -
    b_j))` (``ability``, ``difficulty``, ``discrimination``, ``guessing``), so they map one to
    one; its ``LogisticFM`` is :math:`\sigma(U_i \cdot V_j + Z_j)`, whose ``difficulty``
    property is :math:`-Z_j`: the M2PL's loadings :math:`V_j` and intercepts :math:`Z_j`."""
    raw = floats(raw, ("difficulty", "discrimination", "guessing", "loadings"))
    return TORCH_MEASURE_READ_BACK.get(model, _as_written)(model, raw)


def _as_written(model: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torch-measure's Rasch, 2PL and 3PL: the suite's parameters by the suite's names."""
    return {name: raw[name] for name in get_model(model).item_parameters}


def _factor_model(model: str, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torch-measure's ``LogisticFM``: loadings :math:`V`, intercepts :math:`Z = -`its
    ``difficulty``."""
    return derived_items(raw["loadings"], -raw["difficulty"])


#: how torch-measure's parameters of a model are read back where not as written
TORCH_MEASURE_READ_BACK = {"m2pl": _factor_model}


def skills(values: np.ndarray) -> np.ndarray:
    """A package's skills ``(n, 1)`` as ``(n,)``; ``(n, D)`` as they are."""
    values = np.asarray(values, np.float64)
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


class TorchFamilyPeer(PeerEstimator):
    """Base of the torch family's estimators (module docstring): a subclass declares its
    ``package``, its ``method`` in the package's word and, among its options, the package's
    keyword arguments of the fit (``fit_keywords``)."""

    package: ClassVar[Package]
    #: the package's class of each of the suite's models
    classes: ClassVar[dict[str, str]]
    #: the method, in the package's word (irtorch's algorithm class, torch-measure's ``method``)
    method: ClassVar[str]
    #: the options passed to the package's fit as keyword arguments (left out when None)
    fit_keywords: ClassVar[tuple[str, ...]] = ()
    extra = None
    requirements = ()
    reports_iterations = True
    #: the packages' SEs are a curvature at a joint or penalised estimate, or a mean-field
    #: posterior's scale, not meant to cover 95% of simulated truths
    calibrated_intervals = False
    #: what the method's iteration count counts and how it stops (``stopping_rule``)
    stopping_rule: ClassVar[str] = ""

    @classmethod
    def install_command(cls) -> str:
        return cls.package.install_command

    @classmethod
    def devices(cls) -> list[str]:
        return ["cpu", "cuda"] if devices.cuda_device_count() else ["cpu"]

    @classmethod
    def canonical_device(cls, requested: Option) -> str:
        """``"cpu"`` for ``"auto"``; ``"cuda"`` resolved against the GPUs irtbench's torch
        sees (module docstring, "Devices")."""
        if devices.normalize(requested) == "auto":
            return "cpu"
        return devices.resolve(requested, devices.cuda_device_count(), cls.package.distribution)

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """What the default interpreter lacks: itself, or the package."""
        found = cls.package.problem(cls.package.interpreter())
        return [] if found is None else [found]

    def require_backend(self) -> None:  # type: ignore[override]
        """The interpreter this fit will use (option ``python`` or the default) must run the
        package."""
        found = self.package.problem(self.package.interpreter(self.options.get("python")))
        if found is not None:
            raise BackendNotInstalled(f"estimator {self.name!r} needs {found}, which is not "
                                      f"installed; install it with: {self.install_command()}")

    def payload(self, responses: np.ndarray, options: dict) -> dict:
        """What the runner reads (its module docstring)."""
        model = str(options["model"])
        dims = get_model(model).skill_dims(options) or 0
        keywords = {f"kw_{name}": options[name] for name in self.fit_keywords
                    if options[name] is not None}
        return dict(package=self.package.module, method=self.method,
                    model_class=self.classes[model], dims=dims,
                    responses=responses.astype(np.float32), seed=int(options["seed"]),
                    device=str(options["device"]), threads=caller_threads(),
                    parent=os.getpid(), **self.scoring(options),
                    **keywords)

    def scoring(self, options: dict) -> dict:
        """More of the runner's settings (irtorch: how its skills are scored)."""
        return {}

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        python = self.package.interpreter(options["python"])
        try:
            result, process_seconds = run_runner(python, RUNNER, self.payload(responses, options),
                                                 what=self.package.distribution)
        except RuntimeError as error:  # the child's one error line
            raise PackageFailure(f"estimator {self.name!r}: {error}") from error
        prefix = self.package.module
        diagnostics = {
            f"{prefix}_process_seconds": process_seconds,
            f"{prefix}_startup_seconds": float(result["startup_seconds"]),
            f"{prefix}_fit_seconds": float(result["fit_seconds"]),
            f"{prefix}_score_seconds": float(result["score_seconds"]),
            f"{prefix}_threads": int(result["threads"]),
            f"{prefix}_version": str(result["package_version"]),
            f"{prefix}_torch_version": str(result["torch_version"]),
            "stopping_rule": self.stopping_rule,
        }
        if int(result["stopped_by_rule"]) >= 0:  # the package's own flag, kept apart from
            # "converged", which the suite also clears where an item ran away
            diagnostics["stopped_by_rule"] = bool(result["stopped_by_rule"])
            diagnostics["converged"] = bool(result["stopped_by_rule"])
        if "ability_epochs" in result:
            diagnostics["ability_epochs"] = int(result["ability_epochs"])
        fit = self.read_back(str(options["model"]), result, diagnostics, options)
        return self.with_infinite_extremes(fit, responses, options)

    def read_back(self, model: str, result: dict[str, np.ndarray], diagnostics: dict,
                  options: dict) -> PeerFit:
        """The package's estimates as a :class:`PeerFit` (the package's side)."""
        raise NotImplementedError

    def with_infinite_extremes(self, fit: PeerFit, responses: np.ndarray, options: dict
                               ) -> PeerFit:
        """SE ``inf`` for the students with no finite ML skill (module docstring), where the
        skills are ML (:meth:`ml_skills`)."""
        if fit.skill_se is None or not self.ml_skills(options):
            return fit
        students = find_extremes(responses).students
        skill_se = np.array(fit.skill_se, dtype=np.float64)
        skill_se[students] = np.inf
        return fit._replace(skill_se=skill_se)

    def ml_skills(self, options: dict) -> bool:
        """Whether this fit's skills are maximum-likelihood (default: ``infinite_extremes``)."""
        return self.infinite_extremes


class IrtorchPeer(TorchFamilyPeer):
    """irtorch's methods: skills by its ``latent_scores`` with SEs (``theta_estimation``, its
    default ``"ML"``), no item SEs (irtorch gives none)."""

    package = IRTORCH
    classes = IRTORCH_CLASSES
    backend = "irtorch"
    infinite_extremes = True

    def scoring(self, options: dict) -> dict:
        return {"theta_estimation": str(options["theta_estimation"])}

    def ml_skills(self, options: dict) -> bool:
        return options["theta_estimation"] == "ML"

    def read_back(self, model: str, result: dict[str, np.ndarray], diagnostics: dict,
                  options: dict) -> PeerFit:
        items = irtorch_items(model, result)
        return peer_fit(model, items, skills(result["theta"]), skills(result["theta_se"]), {},
                        result, diagnostics)


class TorchMeasurePeer(TorchFamilyPeer):
    """torch-measure's methods: skills and items as its model holds them after ``fit``; SEs by
    its ``metrics`` (Fisher, the Rasch model and the 2PL) or SVI's posterior scales."""

    package = TORCH_MEASURE
    classes = TORCH_MEASURE_CLASSES
    backend = "torch-measure"

    def read_back(self, model: str, result: dict[str, np.ndarray], diagnostics: dict,
                  options: dict) -> PeerFit:
        items = torch_measure_items(model, result)
        errors = torch_measure_errors(items, result)
        return peer_fit(model, items, skills(result["ability"]), errors.pop("skill", None),
                        errors, result, diagnostics)


def torch_measure_errors(items: dict[str, np.ndarray], result: dict[str, np.ndarray]
                         ) -> dict[str, np.ndarray]:
    r"""torch-measure's SEs by the suite's names: its Fisher SEs (``NAME_se``) as they are;
    SVI's posterior scales (``NAME_scale``) as they are for the skills and difficulties, and by
    the delta method for the parameters its guide moves in another space
    (:data:`SCALE_AS_SE`): :math:`a\,s` for the discrimination (a log-space scale :math:`s`),
    :math:`c(1 - c)\,s` for the floor (logit space)."""
    errors = {}
    for name, (suite, delta) in SCALE_AS_SE.items():
        if f"{name}_se" in result:
            errors[suite] = np.asarray(result[f"{name}_se"], np.float64)
        if f"{name}_scale" in result:
            errors[suite] = delta(items) * np.asarray(result[f"{name}_scale"], np.float64)
    return errors


#: torch-measure's name of each parameter: the suite's name, and the derivative of the
#: parameter in the space SVI's guide moves it in (the delta method's factor)
SCALE_AS_SE = {
    "ability": ("skill", lambda items: 1.0),
    "difficulty": ("difficulty", lambda items: 1.0),
    "discrimination": ("discrimination", lambda items: items["discrimination"]),
    "guessing": ("guessing", lambda items: items["guessing"] * (1 - items["guessing"])),
}


def peer_fit(model: str, items: dict[str, np.ndarray], skill: np.ndarray,
             skill_se: np.ndarray | None, item_se: dict[str, np.ndarray],
             result: dict[str, np.ndarray], diagnostics: dict) -> PeerFit:
    """A :class:`PeerFit` of the suite's items by name (the M2PL's intercepts and loadings as
    its extra items), SEs where given, the package's losses and iteration count."""
    extra = {name: items[name] for name in ("intercept", "loadings") if name in items}
    return PeerFit(skill, skill_se, items["difficulty"], item_se.get("difficulty"),
                   items.get("discrimination"), item_se.get("discrimination"),
                   int(result["n_iter"]), float("nan"), diagnostics,
                   losses=np.asarray(result["losses"], np.float64),
                   guessing=items.get("guessing"), guessing_se=item_se.get("guessing"),
                   items=extra or None)


def package_probabilities(package: Package, cases: list[dict], python: Option = None
                          ) -> list[dict[str, np.ndarray]]:
    """The package's own :math:`P(Y = 1)` for each case (``model_class``, ``dims``, ``theta``
    and the package's parameters ``set_NAME``: the runner's ``probabilities`` task), every case
    in one child: each case's ``probabilities`` and the parameters as the package's accessors
    read them back, for testing a mapping against the package's model."""
    payload = {"package": package.module, "method": "probabilities", "cases": len(cases),
               "threads": caller_threads(), "parent": os.getpid()}
    for k, case in enumerate(cases):
        payload.update({f"case{k}_{name}": value for name, value in case.items()})
    result, _ = run_runner(package.interpreter(python), RUNNER, payload,
                           what=package.distribution)
    return [{name[len(f"case{k}_"):]: value for name, value in result.items()
             if name.startswith(f"case{k}_")} for k in range(len(cases))]


#: the options every torch-family estimator takes besides the package's own
COMMON_SPEC = {
    "seed": option.SEED,
    **option.model_options("dims"),
}


def python_option(package: Package) -> option.Spec:
    """Option ``python``: the package's interpreter."""
    return option.unchecked(None, f"{package.distribution}'s interpreter (None: "
                                  f"${package.variable} or {package.venv}/bin/python)")


def members(model: str | None = None) -> list[str]:
    """The registered estimators of the family (those that fit ``model``, where given),
    irtorch's then torch-measure's (:data:`PACKAGES`), each package's by name: what the
    benchmarks run, read from the registry."""
    found = [name for name in estimators()
             if issubclass(cls := get_estimator(name), TorchFamilyPeer)
             and (model is None or model in cls.models)]
    return sorted(found, key=lambda name: (PACKAGES.index(get_estimator(name).package), name))
