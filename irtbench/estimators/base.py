"""The common interface of all estimators: the :class:`Estimator` base class, the :class:`Fit`
result, and the registry behind :func:`irtbench.estimators` and :func:`irtbench.fit`.

Adding an estimator means adding one file under ``irtbench/estimators/`` with a subclass
decorated by :func:`register`, and importing it in ``irtbench/estimators/__init__.py``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from irtbench.data import is_sparse, validate_responses
from irtbench.model import asymptotic_se

__all__ = [
    "Fit",
    "RunResult",
    "Estimator",
    "BackendNotInstalled",
    "register",
    "estimators",
    "get_estimator",
    "fit",
]


class BackendNotInstalled(ImportError):
    """An estimator's backend (JAX, NumPyro, ...) is not installed."""


@dataclass
class Fit:
    """The result of fitting a Rasch model.

    Attributes:
        skill, difficulty: the estimates, float64, on the estimator's own origin (use
            :func:`irtbench.metrics.align` before comparing).
        skill_se, difficulty_se: asymptotic standard errors or posterior standard deviations,
            or None where the method has none; ``inf`` where no finite estimate exists.
        losses: the objective per epoch / iteration (as the method defines it).
        seconds: wall time of the fit alone, device synchronised; no data transfer, no compilation.
        compile_seconds: JIT compilation / warm-up time, kept out of ``seconds``.
        device: where it ran (``"cpu"``, ``"cuda:0"``, ...).
        estimator: the registry name.
        options: every option the fit used, defaults included.
        n_iter: iterations (epochs, Newton steps, samples) actually run.
        diagnostics: method-specific extras (convergence flags, r-hat, ...).
        trace: snapshots ``(iteration, skill, difficulty)`` taken along the fit (at checkpoints
            chosen by the estimator, for the time-to-accuracy figure); empty when it has none.
    """

    skill: np.ndarray
    difficulty: np.ndarray
    skill_se: np.ndarray | None
    difficulty_se: np.ndarray | None
    losses: np.ndarray
    seconds: float
    compile_seconds: float
    device: str
    estimator: str
    options: dict[str, Any]
    n_iter: int
    diagnostics: dict[str, Any] = field(default_factory=dict)
    trace: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else float("nan")


class RunResult(NamedTuple):
    """What :meth:`Estimator.run` returns: arrays may still live on the device (torch / JAX)."""

    skill: Any
    difficulty: Any
    losses: Any
    n_iter: int
    skill_se: Any = None
    difficulty_se: Any = None
    diagnostics: dict[str, Any] | None = None
    trace: list[tuple[int, Any, Any]] | None = None


def to_numpy(array: Any) -> np.ndarray:
    """A torch tensor (any device), JAX array or array-like as a float64 numpy array."""
    if hasattr(array, "detach"):
        array = array.detach().cpu()
    return np.asarray(array, dtype=np.float64)


class Estimator:
    """Base class of all estimators.

    Subclasses declare, as class attributes:

    * ``name``: the registry key (``"torch-adam"``);
    * ``backend``: ``"torch"``, ``"jax"``, ``"numpyro"``;
    * ``requirements``: importable modules the backend needs;
    * ``extra``: the pip extra that installs them (``pip install irtbench[extra]``);
    * ``defaults``: every option with its default value;

    and implement :meth:`prepare` (untimed set-up) and :meth:`run` (the timed fit), optionally
    :meth:`compile` (JIT, timed apart) and :meth:`device_of`. As in scikit-learn, ``__init__`` only stores options;
    they are validated in :meth:`fit`.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    defaults: ClassVar[dict[str, Any]] = {}
    summary: ClassVar[str] = ""
    #: whether :meth:`finish` adds 1/sqrt(information) SEs when :meth:`run` gives none
    asymptotic_standard_errors: ClassVar[bool] = False
    #: whether the estimator minimises the reference objective (the harness then records its
    #: gradient norm and its gap to the exact optimum)
    solves_reference_objective: ClassVar[bool] = False
    #: whether a sweep with no estimator named runs it (False for variants that duplicate
    #: another on a one-device machine)
    in_default_sweep: ClassVar[bool] = True
    #: whether :meth:`fit` takes :class:`~irtbench.data.SparseResponses` triples
    accepts_sparse: ClassVar[bool] = False
    #: memory model of a fit at peak: (bytes per response, more bytes per response when some are
    #: missing, fixed bytes); None when not stated
    memory_model: ClassVar[tuple[float, float, float] | None] = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    # -- what the harness asks before fitting -------------------------------------------
    @classmethod
    def available(cls) -> bool:
        """True when every module in ``requirements`` can be imported."""
        return not cls.missing_requirements()

    @classmethod
    def install_command(cls) -> str:
        """The pip command that installs this estimator's backend."""
        return f"pip install 'irtbench[{cls.extra}]'"

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """The modules of ``requirements`` that cannot be imported here."""
        return [module for module in cls.requirements if not _importable(module)]

    @classmethod
    def devices(cls) -> list[str]:
        """Devices this estimator can use here (``["cpu"]`` or ``["cpu", "cuda"]``)."""
        return ["cpu"]

    def memory_estimate(self, n_students: int, n_questions: int, missing: float) -> float:
        """Estimated peak memory of a fit in bytes (NaN when the estimator states no model), from
        ``memory_model``, a bound checked on the CPU by ``benchmarks/test_scale.py``. The data
        passed in are not counted."""
        if self.memory_model is None:
            return float("nan")
        per_response, per_missing, fixed = self.memory_model
        return (per_response + (per_missing if missing else 0.0)) * n_students * n_questions + fixed

    def skip(self, n_students: int, n_questions: int, device: str) -> tuple[bool, str]:
        """``(True, reason)`` when this estimator should not be run at that size / device."""
        return False, ""

    def warm_up(self) -> None:
        """Fit a tiny problem once, untimed, so that one-off start-up costs (thread pools, CUDA
        context, kernel caches) stay out of the first timed fit. Shape-specific compilation is
        not covered: :meth:`compile` times that for each fit."""
        from irtbench.data import simulate

        self.fit(simulate(20, 5, seed=0).responses)

    # -- fitting ----------------------------------------------------------------------------
    def minimises_reference_objective(self) -> bool:
        """True when this estimator, with its options, minimises the reference objective."""
        return self.solves_reference_objective

    def resolved_options(self) -> dict[str, Any]:
        """The defaults updated with the stored options; unknown names raise ``ValueError``."""
        unknown = sorted(set(self.options) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for estimator {self.name!r}; "
                f"valid options: {', '.join(sorted(self.defaults))}"
            )
        options = {**self.defaults, **self.options}
        self.check_options(options)
        return options

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise ``ValueError`` for an option value out of range (subclasses extend this)."""
        for key in ("epochs", "max_iter", "num_warmup", "num_samples", "num_chains"):
            if key in options:
                _require(options, key, lambda v: isinstance(v, (int, np.integer)) and v >= 1,
                         "a positive integer")
        for key in ("lr", "tol", "difficulty_scale", "sigma_prior_scale"):
            if key in options:
                _require(options, key, lambda v: isinstance(v, (int, float)) and v > 0,
                         "a positive number")
        if "alpha" in options:
            _require(options, "alpha", lambda v: isinstance(v, (int, float)) and v >= 0,
                     "a non-negative number")

    def fit(self, responses: Any) -> Fit:
        """Validate the options and the responses, then prepare, compile, run (timed) and finish.

        Only :meth:`run` is timed (``Fit.seconds``); :meth:`compile` is timed apart
        (``Fit.compile_seconds``); validation, transfers and standard errors are not timed.

        Args:
            responses: ``(n_students, n_questions)`` array-like of 0/1, NaN = missing.
        """
        self.require_backend()
        options = self.resolved_options()
        responses = validate_responses(responses)
        if is_sparse(responses) and not self.accepts_sparse:
            takers = ", ".join(n for n, c in _REGISTRY.items() if c.accepts_sparse)
            raise ValueError(
                f"estimator {self.name!r} needs a dense response matrix; sparse triples are "
                f"fitted by: {takers} (or convert with irtbench.data.to_dense)"
            )
        problem = self.prepare(responses, options)
        compile_seconds = self.compile(problem)
        start = time.perf_counter()
        result = self.run(problem)
        seconds = time.perf_counter() - start
        return self.finish(responses, options, problem, result, seconds, compile_seconds)

    # -- the four steps a subclass implements -------------------------------------------------
    def prepare(self, responses: np.ndarray, options: dict[str, Any]) -> Any:
        """Untimed set-up: move the data to the device, build what :meth:`run` needs."""
        raise NotImplementedError

    def compile(self, problem: Any) -> float:
        """JIT-compile for ``problem``'s shapes (untimed by :meth:`run`); returns its seconds."""
        return 0.0

    def run(self, problem: Any) -> RunResult:
        """The fit itself, the only timed step; must return with the device synchronised."""
        raise NotImplementedError

    def device_of(self, problem: Any) -> str:
        """Name of the device ``problem`` lives on (``"cpu"``, ``"cuda:0"``, ``"gpu:0"``)."""
        return "cpu"

    def finish(
        self,
        responses: np.ndarray,
        options: dict[str, Any],
        problem: Any,
        result: RunResult,
        seconds: float,
        compile_seconds: float,
    ) -> Fit:
        """Untimed: bring the estimates to the host as float64 and add standard errors."""
        skill, difficulty = to_numpy(result.skill), to_numpy(result.difficulty)
        skill_se, difficulty_se = result.skill_se, result.difficulty_se
        if skill_se is None and self.asymptotic_standard_errors:
            skill_se, difficulty_se = asymptotic_se(responses, skill, difficulty)
        return Fit(
            skill=skill,
            difficulty=difficulty,
            skill_se=None if skill_se is None else to_numpy(skill_se),
            difficulty_se=None if difficulty_se is None else to_numpy(difficulty_se),
            losses=to_numpy(result.losses),
            seconds=seconds,
            compile_seconds=compile_seconds,
            device=self.device_of(problem),
            estimator=self.name,
            options=options,
            n_iter=int(result.n_iter),
            diagnostics=dict(result.diagnostics or {}),
            trace=[(int(k), to_numpy(s), to_numpy(d)) for k, s, d in result.trace or ()],
        )

    @classmethod
    def require_backend(cls) -> None:
        missing = cls.missing_requirements()
        if missing:
            raise BackendNotInstalled(
                f"estimator {cls.name!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: {cls.install_command()}"
            )


def checkpoints(n_iter: int, count: int = 25) -> set[int]:
    """About ``count`` iteration numbers in 1..n_iter, spaced geometrically, n_iter included."""
    return {int(k) for k in np.unique(np.round(np.geomspace(1, n_iter, count)))}


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: import blocked on purpose
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _require(options: dict[str, Any], key: str, test: Any, what: str) -> None:
    value = options[key]
    if isinstance(value, bool) or not test(value):
        raise ValueError(f"option {key}={value!r} must be {what}")


def progress_enabled(progress: bool | None) -> bool:
    """An explicit choice, or (None) on exactly when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


_REGISTRY: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator adding an estimator to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"estimator {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def estimators(available_only: bool = False) -> list[str]:
    """Names of the registered estimators (all of them, or only those whose backend is installed)."""
    return [n for n, c in _REGISTRY.items() if c.available() or not available_only]


def get_estimator(name: str) -> type[Estimator]:
    """The estimator class registered as ``name``; ``ValueError`` listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown estimator {name!r}; valid estimators: {', '.join(_REGISTRY)}"
        ) from None


def fit(responses: Any, estimator: str = "torch-adam", **options: Any) -> Fit:
    """Fit the Rasch model to ``responses`` with the estimator registered as ``estimator``.

    Args:
        responses: ``(n_students, n_questions)`` array-like of 0/1 with NaN for missing,
            or a :class:`irtbench.Dataset`.
        estimator: a name from :func:`estimators`.
        **options: the estimator's options (e.g. ``device="cpu"``, ``epochs=1000``, ``seed=0``).

    Examples:
        >>> import irtbench
        >>> data = irtbench.simulate(200, 20, seed=0)
        >>> result = irtbench.fit(data.responses, estimator="torch-adam", device="cpu", epochs=50)
        >>> result.skill.shape, result.difficulty.shape, result.n_iter
        ((200,), (20,), 50)
    """
    return get_estimator(estimator)(**options).fit(responses)
