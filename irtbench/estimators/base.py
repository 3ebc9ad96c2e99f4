"""The common interface of all estimators: the :class:`Estimator` base class, the :class:`Fit`
result, and the registry behind :func:`irtbench.estimators` and :func:`irtbench.fit`.

Adding an estimator means adding one file under ``irtbench/estimators/`` with a subclass
decorated by :func:`register`, and importing it in ``irtbench/estimators/__init__.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from irtbench.data import validate_responses

__all__ = [
    "Fit",
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

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else float("nan")


class Estimator:
    """Base class of all estimators.

    Subclasses declare, as class attributes:

    * ``name``: the registry key (``"torch-adam"``);
    * ``backend``: ``"torch"``, ``"jax"``, ``"numpyro"``;
    * ``requirements``: importable modules the backend needs;
    * ``extra``: the pip extra that installs them (``pip install irtbench[extra]``);
    * ``defaults``: every option with its default value;

    and implement :meth:`_fit`. As in scikit-learn, ``__init__`` only stores options;
    they are validated in :meth:`fit`.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    defaults: ClassVar[dict[str, Any]] = {}
    summary: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

    # -- what the harness asks before fitting -------------------------------------------
    @classmethod
    def available(cls) -> bool:
        """True when every module in ``requirements`` can be imported."""
        return all(importlib.util.find_spec(module) is not None for module in cls.requirements)

    @classmethod
    def devices(cls) -> list[str]:
        """Devices this estimator can use here (``["cpu"]`` or ``["cpu", "cuda"]``)."""
        return ["cpu"]

    def skip(self, n_students: int, n_questions: int, device: str) -> tuple[bool, str]:
        """``(True, reason)`` when this estimator should not be run at that size / device."""
        return False, ""

    def warm_up(self, responses: np.ndarray) -> float:
        """Compile or otherwise prepare for ``responses``' shape; returns seconds spent."""
        return 0.0

    # -- fitting ----------------------------------------------------------------------------
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
        for key in ("lr", "tol"):
            if key in options:
                _require(options, key, lambda v: isinstance(v, (int, float)) and v > 0,
                         "a positive number")
        if "alpha" in options:
            _require(options, "alpha", lambda v: isinstance(v, (int, float)) and v >= 0,
                     "a non-negative number")

    def fit(self, responses: Any) -> Fit:
        """Validate the options and the responses, then fit.

        Args:
            responses: ``(n_students, n_questions)`` array-like of 0/1, NaN = missing.
        """
        self.require_backend()
        options = self.resolved_options()
        return self._fit(validate_responses(responses), options)

    def _fit(self, responses: np.ndarray, options: dict[str, Any]) -> Fit:
        raise NotImplementedError

    @classmethod
    def require_backend(cls) -> None:
        if not cls.available():
            missing = [m for m in cls.requirements if importlib.util.find_spec(m) is None]
            raise BackendNotInstalled(
                f"estimator {cls.name!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: pip install 'irtbench[{cls.extra}]'"
            )


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
