r"""The common interface of all estimators: the :class:`Estimator` base class, the :class:`Fit`
result, the one clock that times every fit, and the registry behind :func:`irtbench.estimators`
and :func:`irtbench.fit`.

**The clock.** :meth:`Estimator.fit` is the only place where a fit is timed:

1. the options are resolved (untimed: no data touched); then, **timed**, the same for every
   estimator: one pass over the responses validates and counts them
   (:func:`~irtbench.responses.scan_responses`), the extremes come from its totals, and
   :meth:`Estimator.setup` turns them into the estimator's typed :class:`State` (device chosen,
   nothing moved or computed);
2. :meth:`Estimator.compile` (optional) does one-time, shape-specific compilation (JIT);
   timed apart as ``Fit.compile_seconds``;
3. :meth:`Estimator.run`, **timed**: from the validated matrix in host memory to every estimate
   (extremes at +/-inf included), standard error and diagnostic back in host memory as numpy
   arrays, the device synchronised. Transfers, grouping, expanding and standard errors are all
   inside. ``run`` measures the iterative part alone, with the data resident on the device, as
   ``Result.compute_seconds`` (throughput uses it).

``Fit.seconds`` is steps 1 (its timed part) and 3: what a user waits for, from the matrix in host
memory to every array back, less the compilation alone.

Nothing a plain fit does is outside the clock but the options' resolution (no data touched)
and the assembly of :class:`Fit` from the host arrays (``tests/estimators/test_clock.py``
holds ``Fit.seconds`` to at least 90% of the call's wall time). The curve snapshots
(``Fit.trace``, for the time-to-accuracy figure) are bookkeeping that a plain fit does not
need: ``run`` keeps cheap device copies inside the loop (timed), and turning them into
per-student host arrays (:class:`Snapshot`) happens after the clock, and only when the fit is
asked for them (``Estimator.fit(responses, trace=True)``, as a sweep does): it can take as long
as a fit (cml solves every student's skill again at each snapshot).

Adding an estimator means adding one file under ``irtbench/estimators/`` with a subclass
decorated by :func:`register` (``irtbench.estimators`` imports every module of the package).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Generic, NamedTuple, TypeVar, Union

import numpy as np

from irtbench import devices
from irtbench.estimators.options import (
    COMMON,
    Option,
    Spec,
    docstring_section,
    resolve,
    unchecked,
)
from irtbench.models import MODELS, Extremes, Model, find_extremes, get_model, item_attribute
from irtbench.responses import Responses, is_sparse
from irtbench.responses import Scan, scan_responses

__all__ = [
    "Fit",
    "Result",
    "Snapshot",
    "State",
    "Estimator",
    "BackendNotInstalled",
    "OBJECTIVES",
    "register",
    "estimators",
    "get_estimator",
    "fit",
]

#: a diagnostic's value (scalars only: they become result columns)
Diagnostic = Union[int, float, bool, str]


#: the options every estimator takes, with their defaults (an estimator's own override them)
COMMON_OPTIONS: dict[str, Option] = {name: spec.default for name, spec in COMMON.items()}


class BackendNotInstalled(ImportError):
    """An estimator's backend (JAX, NumPyro, ...) is not installed."""


@dataclass
class Fit:
    """The result of fitting a model of :data:`irtbench.models.MODELS`.

    Attributes:
        skill, difficulty: the estimates, float64 (skills ``(n, D)`` under the M2PL, whose
            difficulty is MDIFF), on the estimator's own origin (use
            :func:`irtbench.metrics.align` before comparing); extreme students and questions of
            maximum-likelihood estimators at +/-inf. Under the M2PL ``skill`` is
            ``(n_students, D)`` (and ``skill_se`` alike) and ``difficulty`` the
            multidimensional difficulty (:mod:`irtbench.models.m2pl`).
        skill_se, difficulty_se: asymptotic standard errors or posterior standard deviations,
            or None where the method has none; ``inf`` where no finite estimate exists.
        losses: the objective per epoch / iteration (as the method defines it).
        seconds: wall time of the whole fit: the validated matrix in host memory -> every
            estimate, SE and diagnostic back in host memory, device synchronised; JIT
            compilation excluded.
        compute_seconds: the iterative part alone, with the data resident on the device.
        compile_seconds: one-time JIT compilation for these shapes, kept out of ``seconds``.
        device: where it ran, ``"cpu"`` or ``"cuda:N"``.
        estimator: the registry name.
        options: every option the fit used, defaults included.
        n_iter: iterations (epochs, Newton steps, samples) actually run.
        diagnostics: method-specific scalars (convergence flags, r-hat, ...).
        extreme_students, extreme_questions: the students and questions whose responses are
            all right or all wrong (:func:`~irtbench.models.find_extremes`), flagged for every
            estimator: maximum-likelihood ones give them +/-inf or, for the fixed-epoch Adam
            fits, the iterate where they stopped, with SE ``inf``; posterior-based ones (EAP,
            MAP under a proper prior, VI, NUTS) their finite posterior summaries. Summaries and
            metrics leave them out.
        trace: snapshots ``(iteration, skill, difficulty)`` taken along the fit (at checkpoints
            chosen by the estimator, for the time-to-accuracy figure), with a fourth item, the
            model's other item parameters by name, from the estimators that consume the model's
            description (empty under the Rasch model); empty when it has none, and unless the
            fit was asked for them (``Estimator.fit(responses, trace=True)``).
        model: a name of :data:`irtbench.models.MODELS`.
        extra_items, extra_se: the model's other item parameters and their SEs by name
            (the 2PL's ``discrimination``; the 3PL's ``discrimination`` and ``guessing``; the
            M2PL's ``discrimination``, ``intercept`` and ``loadings`` ``(n_questions, D)``), NaN
            for questions with no finite estimate; each is also an attribute
            (``fit.discrimination``, ``fit.discrimination_se``; None where the model has no
            such parameter). :attr:`items` and :attr:`item_se` give them all, the difficulty
            first.
        runaway_questions: the questions whose estimates ran away
            (:meth:`~irtbench.models.base.Model.runaway`: under the 2PL, 3PL and 4PL a
            slope-intercept estimate that diverged, past the bound of
            :func:`~irtbench.models.twopl.runaway_items` or with an SE of the slope past it);
            a fit with any is not ``converged``. None under the Rasch model.
        flat_questions: the questions whose difficulty the data do not locate, at a finite
            optimum (:meth:`~irtbench.models.base.Model.flat`: under the 2PL, 3PL and 4PL a
            slope near 0, whose difficulty's 95% interval holds every student's skill,
            :func:`~irtbench.models.twopl.flat_items`); not runaways, and the fit may be
            ``converged``. None where the model has no such rule or the fit no SEs.
    """

    skill: np.ndarray
    difficulty: np.ndarray
    skill_se: np.ndarray | None
    difficulty_se: np.ndarray | None
    losses: np.ndarray
    seconds: float
    compute_seconds: float
    compile_seconds: float
    device: str
    estimator: str
    options: dict[str, Option]
    n_iter: int
    diagnostics: dict[str, Diagnostic] = field(default_factory=dict)
    trace: list[tuple] = field(default_factory=list)
    extreme_students: np.ndarray | None = None
    extreme_questions: np.ndarray | None = None
    model: str = "rasch"
    extra_items: dict[str, np.ndarray] = field(default_factory=dict)
    extra_se: dict[str, np.ndarray | None] = field(default_factory=dict)
    runaway_questions: np.ndarray | None = None
    flat_questions: np.ndarray | None = None

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1]) if len(self.losses) else float("nan")

    @property
    def items(self) -> dict[str, np.ndarray]:
        """Every item parameter's estimates by name, the difficulty first."""
        return {"difficulty": self.difficulty, **self.extra_items}

    @property
    def item_se(self) -> dict[str, np.ndarray | None]:
        """Every item parameter's SEs by name (None where the method has none)."""
        return {"difficulty": self.difficulty_se,
                **{name: self.extra_se.get(name) for name in self.extra_items}}

    def __getattr__(self, name: str) -> np.ndarray | None:
        return item_attribute(self, name)


class Snapshot(NamedTuple):
    """One point of a fit's trace: its iteration and a function that returns the per-student
    skills and per-question difficulties there as host arrays (called after the clock), and,
    for a model with more item parameters, a third item: those by name."""

    iteration: int
    values: Callable[[], tuple[np.ndarray, np.ndarray]]


class Result(NamedTuple):
    """What :meth:`Estimator.run` returns: every array final, per student and per question,
    float64, in host memory."""

    skill: np.ndarray
    difficulty: np.ndarray
    skill_se: np.ndarray | None
    difficulty_se: np.ndarray | None
    losses: np.ndarray
    n_iter: int
    compute_seconds: float
    diagnostics: Mapping[str, Diagnostic] = {}
    trace: Sequence[Snapshot] = ()
    #: the model's item parameters besides the difficulty, and their SEs, by name
    items: Mapping[str, np.ndarray] = {}
    item_se: Mapping[str, np.ndarray | None] = {}


@dataclass
class State:
    """What :meth:`Estimator.setup` gives :meth:`Estimator.run`: the validated responses (still
    in host memory), the resolved options, the observed count and the canonical device name;
    and, set by :meth:`Estimator.prepare` after the set-up, the responses'
    :class:`~irtbench.responses.Scan` (totals per student and question) and their
    :class:`~irtbench.models.Extremes`, so that no estimator walks the matrix again for them,
    and the :class:`~irtbench.models.base.Model` fitted.
    Backends extend it with their own typed fields (the torch device, a compiled function)."""

    responses: Responses
    options: dict[str, Option]
    n_observed: int
    device: str
    scan: Scan | None = field(default=None, kw_only=True)
    found: Extremes | None = field(default=None, kw_only=True)
    #: the model fitted (:attr:`Estimator.model`), set with the scan
    model: Model | None = field(default=None, kw_only=True)


StateT = TypeVar("StateT", bound=State)


class Prepared(NamedTuple):
    """What :meth:`Estimator.prepare` hands to the clock: the state, its compile time, the
    extremes the common entry point found (for ``Fit``'s flags), and the seconds the load took
    (the pass over the responses, the extremes, the set-up: part of ``Fit.seconds``)."""

    state: State
    compile_seconds: float
    found: Extremes
    load_seconds: float = 0.0


def host(array: object) -> np.ndarray:
    """A torch tensor (any device), JAX array or array-like as a float64 numpy array."""
    detach = getattr(array, "detach", None)
    if detach is not None:
        array = detach().cpu()
    return np.asarray(array, dtype=np.float64)


class Stopwatch:
    """Times a stretch of a fit (``compute_seconds``): started when made; ``stop()``, called
    after synchronising the device, returns the seconds since."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> float:
        return time.perf_counter() - self.started


class Estimator(ABC, Generic[StateT]):
    """Base class of all estimators.

    Subclasses declare, as class attributes:

    * ``name``: the registry key (``"torch-adam"``);
    * ``backend``: ``"torch"``, ``"jax"``, ``"numpyro"``;
    * ``requirements``: importable modules the backend needs;
    * ``extra``: the pip extra that installs them (``pip install irtbench[extra]``);
    * ``spec``: every option of its own, each a :class:`~irtbench.estimators.options.Spec`
      (default, constraint, one line of doc), declared once; ``defaults`` (name -> default)
      and the docstring's "Options" section are made from it;

    and implement :meth:`setup` (untimed: a typed state, nothing computed) and :meth:`run`
    (the timed fit, see the module docstring), optionally :meth:`compile` (JIT, timed apart).
    As in scikit-learn, ``__init__`` only stores options; they are validated in :meth:`fit`.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    requirements: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None
    spec: ClassVar[dict[str, Spec]] = {}
    defaults: ClassVar[dict[str, Option]] = {}
    summary: ClassVar[str] = ""
    # -- facts about the estimator, declared on it (scikit-learn's tags, benchopt's class
    # attributes): the harness, compare, the CLI and the tests read them, never a list of names
    #: which objective it maximises, one of :data:`OBJECTIVES`: ``"joint"`` (the likelihood of
    #: skills and items together: JML), ``"marginal"`` (skills integrated out: MML, which
    #: earns AIC, BIC and likelihood-ratio tests in ``compare``), ``"conditional"`` (given the
    #: raw scores: CML) or ``"posterior"`` (a posterior's mode, or its mean by VI or MCMC)
    objective: ClassVar[str]
    #: whether it gives standard errors (asymptotic SEs or posterior SDs); False: ``Fit``'s SEs
    #: are None
    gives_standard_errors: ClassVar[bool] = True
    #: whether it reports its iterations and its objective along them (``Fit.n_iter`` and
    #: ``Fit.losses``); False for a package that says neither
    reports_iterations: ClassVar[bool] = True
    #: whether its intervals, estimate +/- 1.96 SE, are meant to cover 95% of simulated truths
    #: (False where the SEs are a curvature at a shrunken mode, not a sampling distribution)
    calibrated_intervals: ClassVar[bool] = True
    #: whether the students (and questions) with no finite ML estimate get SE ``inf``
    #: (maximum-likelihood skills); False: finite posterior summaries (EAP, MAP, VI, NUTS)
    infinite_extremes: ClassVar[bool] = False
    #: whether its fit at a tight tolerance is the exact optimum of its objective for the
    #: models it fits: the reference every fit's log-likelihood gap is measured against
    #: (:mod:`irtbench.gaps`: mml-em's marginal ML)
    exact_optimum: ClassVar[bool] = False
    #: whether the estimator minimises the reference objective (the harness then records its
    #: gradient norm and its gap to the exact optimum)
    solves_reference_objective: ClassVar[bool] = False
    #: whether a sweep with no estimator named runs it (False for variants that duplicate
    #: another on a one-device machine, and for the peers)
    in_default_sweep: ClassVar[bool] = True
    #: whether ``irtbench run --quick`` keeps it among the default ones (False for the slowest)
    in_quick_sweep: ClassVar[bool] = True
    #: why ``irtbench compare`` leaves it out unless named ("": it joins when the sweep would)
    left_out_of_compare: ClassVar[str] = ""
    #: options ``irtbench compare`` gives it unless the user gives them
    compare_options: ClassVar[dict[str, Option]] = {}
    #: whether :meth:`fit` takes :class:`~irtbench.responses.SparseResponses` triples
    accepts_sparse: ClassVar[bool] = False
    #: memory model of a fit at peak: (bytes per response, more bytes per response when some are
    #: missing, fixed bytes); None when not stated
    memory_model: ClassVar[tuple[float, float, float] | None] = None
    #: options that make :meth:`warm_up` short (few iterations), applied over the fit's own
    warm_up_options: ClassVar[dict[str, Option]] = {}
    #: the models it fits (option ``model``, common to every estimator; the first, ``"rasch"``
    #: where it fits the Rasch model, is the default)
    models: ClassVar[tuple[str, ...]] = ("rasch",)
    #: its colour and marker in every figure (an index into the palette, so that a colour never
    #: changes between runs): the next free number for a new estimator
    colour: ClassVar[int]
    #: the models a sweep with no estimator named fits it to (None: all of ``models``)
    default_sweep_models: ClassVar[tuple[str, ...] | None] = None
    #: options that make a fit quick enough for the generic test battery (run over every
    #: model in ``models``) while its estimates still recover simulated parameters
    test_options: ClassVar[dict[str, Option]] = {}
    #: the models whose fits were measured to fall short of the battery's checks, each with
    #: the measurement (the battery keeps them as strict expected failures)
    shortfalls: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "defaults" in cls.__dict__ and "spec" not in cls.__dict__:  # a plain dict of
            # defaults (an estimator written before the declarations): each option unchecked
            cls.spec = {name: unchecked(value, "") for name, value in cls.defaults.items()}
        if "spec" in cls.__dict__:
            cls.defaults = {name: option.default for name, option in cls.spec.items()}
            if cls.__doc__:
                cls.__doc__ = cls.__doc__.rstrip() + "\n" + docstring_section(cls.all_options())

    @classmethod
    def all_options(cls) -> dict[str, Spec]:
        """The common options and the estimator's own (which override their defaults);
        ``model``'s default is the first of the estimator's ``models`` (``"rasch"``, or
        ``"2pl"`` for an estimator of the 2PL alone)."""
        model = unchecked(cls.models[0], COMMON["model"].doc)
        return {**COMMON, "model": model, **cls.spec}

    def __init__(self, **options: Option) -> None:
        self.options = options

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the cached :attr:`config` (a mapping proxy): a worker resolves it
        again, against its own devices."""
        return {key: value for key, value in vars(self).items() if key != "config"}

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

    @classmethod
    def canonical_device(cls, requested: Option) -> str:
        """The canonical device (``"cpu"``, ``"cuda:N"``) a request means for this estimator's
        backend; ``ValueError`` when it cannot be met here (here: a CPU-only estimator, which
        takes ``device`` ``"cpu"`` or ``"auto"``). Backends with GPUs override it."""
        return devices.resolve(requested, 0, f"{cls.name} (CPU only)")

    def resolve_device(self) -> str:
        """The canonical device a fit with these options would use (``config["device"]``)."""
        return str(self.config["device"])

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

    def warm_up(self, responses: Responses | None = None) -> None:
        """Fit once, untimed, so that one-off costs (thread pools, CUDA context, allocator
        growth, kernel caches for these shapes) stay out of the next timed fit.

        Given the responses of the fit to come, it fits them with ``warm_up_options`` (a few
        iterations): the same shapes and code paths. Without, a tiny simulated problem."""
        if responses is None:
            rng = np.random.default_rng(0)
            responses = (rng.random((20, 5)) < 0.5).astype(np.float32)
            responses[0, :2], responses[1, :2] = (1, 0), (0, 1)  # no extreme question
        type(self)(**{**self.options, **self.warm_up_options}).fit(responses)

    # -- fitting ----------------------------------------------------------------------------
    def minimises_reference_objective(self) -> bool:
        """True when this estimator, with its options, minimises the reference objective (the
        notebook's Rasch objective)."""
        model = self.config["model"]
        return self.solves_reference_objective and model == "rasch"

    @functools.cached_property
    def config(self) -> Mapping[str, Option]:
        """The fit's configuration, resolved once and frozen: the stored options over the
        defaults (:func:`~irtbench.estimators.options.resolve`: an unknown name is refused with
        the nearest valid ones, a value outside its constraint with the constraint), the model
        and the checks across options (:meth:`check_options`), and ``device`` resolved by the
        estimator's backend (:meth:`canonical_device`). The harness, the memory estimates and
        the fit read it; nothing merges the defaults again."""
        options = resolve(self.name, self.all_options(), self.options)
        self.check_model(options["model"])
        self.check_options(options)
        return MappingProxyType({**options,
                                 "device": self.canonical_device(options["device"])})

    @property
    def model(self) -> Model:
        """The model the options choose, as the :class:`~irtbench.models.base.Model` object the
        rest of a fit passes around (its name is ``config["model"]``)."""
        return get_model(str(self.config["model"]))

    def resolved_options(self) -> Mapping[str, Option]:
        """:attr:`config` (the name kept for callers that validate options)."""
        return self.config

    def check_model(self, model: Option) -> None:
        """``ValueError`` unless ``model`` is one this estimator fits, naming those that do."""
        if model not in MODELS:
            raise ValueError(f"option model={model!r} must be one of {', '.join(MODELS)}")
        if model not in self.models:
            takers = ", ".join(n for n, c in _REGISTRY.items() if model in c.models)
            raise ValueError(f"estimator {self.name!r} fits the {' and '.join(self.models)} "
                             f"model(s), not {model!r}; {model} estimators: {takers}")

    def check_options(self, options: Mapping[str, Option]) -> None:
        """Raise ``ValueError`` where options are inconsistent with each other or with the model
        (each value's own constraint is its :class:`Spec`'s); subclasses extend this. Here: an
        option of another model's (:attr:`~irtbench.models.base.Model.options`: a prior of
        parameters this model does not have, ``dims``) given a value other than its default."""
        model = get_model(str(options["model"]))
        for name in sorted(set(self.options) & MODEL_OPTIONS - set(model.options)):
            if options[name] != self.defaults.get(name):
                readers = [m for m in MODELS if name in get_model(m).options]
                raise ValueError(f"option {name} belongs to the {', '.join(readers)} "
                                 f"model(s), not to the {model.name} fitted here")

    def prepare(self, responses: object) -> Prepared:
        """Everything before :meth:`run`: the options resolved (untimed), then, timed as
        ``Prepared.load_seconds`` (part of ``Fit.seconds``), the one pass over the responses
        (:func:`~irtbench.responses.scan_responses`: validated and counted, the same for every
        estimator), the extremes from its totals and the state set up; then, timed apart,
        the compilation."""
        self.require_backend()
        options = self.config
        if is_sparse(responses) and not self.accepts_sparse:
            takers = ", ".join(n for n, c in _REGISTRY.items() if c.accepts_sparse)
            raise ValueError(
                f"estimator {self.name!r} needs a dense response matrix; sparse triples are "
                f"fitted by: {takers} (or convert with irtbench.responses.to_dense)"
            )
        start = time.perf_counter()
        responses, scan = scan_responses(responses)
        found = require_estimable(responses, scan)
        state = self.setup(responses, options, scan.n_observed)
        state.scan, state.found, state.model = scan, found, self.model
        load_seconds = time.perf_counter() - start
        compile_seconds = 0.0
        if self.compiles(state):  # nothing to compile: exactly 0
            start = time.perf_counter()
            self.compile(state)
            compile_seconds = time.perf_counter() - start
        return Prepared(state, compile_seconds, found, load_seconds)

    def fit(self, responses: object, *, trace: bool = False) -> Fit:
        """Fit the model to ``responses``: the one clock of irtbench (see the module docstring):
        :meth:`prepare` (its load timed, its compilation apart), then :meth:`run` timed, then
        :meth:`result_of`. ``Fit.seconds`` is the load plus the run. pytest-benchmark times
        the same :meth:`run` with ``pedantic(estimator.run, setup=...)`` and adds the load of
        its set-up.

        Args:
            responses: ``(n_students, n_questions)`` array-like of 0/1, NaN = missing, or
                sparse triples for the estimators that take them.
            trace: also turn the snapshots :meth:`run` kept into ``Fit.trace`` (per-student
                host arrays along the fit, for the time-to-accuracy curves of a sweep). That
                is bookkeeping after the clock, as long as a fit at some sizes (a Newton
                solve of every student's skill per snapshot), so a plain fit does not do it.
        """
        prepared = self.prepare(responses)
        start = time.perf_counter()
        result = self.run(prepared.state)
        seconds = prepared.load_seconds + time.perf_counter() - start
        return self.result_of(prepared, result, seconds, trace=trace)

    def result_of(self, prepared: Prepared, result: Result, seconds: float, *,
                  trace: bool = False) -> Fit:
        """The :class:`Fit` of a timed :meth:`run` that took ``seconds`` (with ``trace``, its
        snapshots' host arrays, untimed). A fit with items that ran away
        (:meth:`~irtbench.models.base.Model.runaway`) counts them in
        ``diagnostics["n_runaway"]`` and is not ``converged``."""
        diagnostics = dict(result.diagnostics)
        model = prepared.state.model
        items = {"difficulty": result.difficulty, **result.items}
        item_se = {"difficulty": result.difficulty_se, **result.item_se}
        runaway = model.runaway(items, item_se, prepared.found.questions)
        flat = model.flat(items, item_se, result.skill, prepared.found.questions)
        if runaway is not None:
            diagnostics["n_runaway"] = int(runaway.sum())
            if runaway.any():
                diagnostics["converged"] = False
        return Fit(
            skill=result.skill,
            difficulty=result.difficulty,
            skill_se=result.skill_se,
            difficulty_se=result.difficulty_se,
            losses=result.losses,
            seconds=seconds,
            compute_seconds=result.compute_seconds,
            compile_seconds=prepared.compile_seconds,
            device=prepared.state.device,
            estimator=self.name,
            options=prepared.state.options,
            n_iter=int(result.n_iter),
            diagnostics=diagnostics,
            trace=[(k, *values()) for k, values in result.trace] if trace else [],
            extreme_students=prepared.found.students,
            extreme_questions=prepared.found.questions,
            model=model.name,
            extra_items=dict(result.items),
            extra_se={name: result.item_se.get(name) for name in result.items},
            runaway_questions=runaway,
            flat_questions=flat,
        )

    # -- the steps a subclass implements -------------------------------------------------------
    @abstractmethod
    def setup(self, responses: Responses, options: dict[str, Option], n_observed: int) -> StateT:
        """Untimed: the typed state of a fit (device chosen; no data moved, nothing computed)."""

    def compiles(self, state: StateT) -> bool:
        """Whether :meth:`compile` has work for ``state`` (by default: whether it is defined)."""
        return type(self).compile is not Estimator.compile

    def compile(self, state: StateT) -> None:
        """One-time JIT compilation for ``state``'s shapes (timed apart, ``compile_seconds``)."""

    @abstractmethod
    def run(self, state: StateT) -> Result:
        """The timed fit: host matrix in, every final host array out (module docstring)."""

    @classmethod
    def require_backend(cls) -> None:
        missing = cls.missing_requirements()
        if missing:
            raise BackendNotInstalled(
                f"estimator {cls.name!r} needs {', '.join(missing)}, which is not installed; "
                f"install it with: {cls.install_command()}"
            )


def require_estimable(responses: Responses, scan: Scan | None = None) -> Extremes:
    """The one rule for hopeless data, the same for every estimator: ``ValueError`` when, once
    the students and questions whose responses are all right or all wrong are removed (again and
    again, :func:`~irtbench.models.find_extremes`), fewer than two students or two questions
    remain, so that no difference of skill or difficulty has a finite maximum-likelihood
    estimate (nor, for the marginal and Bayesian estimators, an estimate the data inform).

    The extremes come from the totals of ``scan`` (:func:`~irtbench.models.find_extremes`
    reads only the rows and columns it removes); the estimators find them in their state."""
    found = find_extremes(responses, scan=scan)
    kept_students, kept_questions = int((~found.students).sum()), int((~found.questions).sum())
    if kept_students < 2 or kept_questions < 2:
        raise ValueError(
            f"no finite estimate: after removing the {int(found.students.sum())} student(s) and "
            f"{int(found.questions.sum())} question(s) whose responses are all right or all "
            f"wrong, {kept_students} student(s) and {kept_questions} question(s) remain (at "
            "least two of each are needed)"
        )
    return found


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


def progress_enabled(progress: Option) -> bool:
    """An explicit choice, or (None) on exactly when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


_REGISTRY: dict[str, type[Estimator]] = {}

#: what an estimator may maximise (:attr:`Estimator.objective`)
OBJECTIVES = ("joint", "marginal", "conditional", "posterior")

#: the options only some models read (:attr:`~irtbench.models.base.Model.options`)
MODEL_OPTIONS = frozenset(name for m in MODELS for name in get_model(m).options)


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator adding an estimator to the registry under ``cls.name`` (kept in
    alphabetical order); its declared facts are checked here: ``objective`` one of
    :data:`OBJECTIVES`, ``colour`` not another's."""
    if cls.name in _REGISTRY:
        raise ValueError(f"estimator {cls.name!r} is registered twice")
    if getattr(cls, "objective", None) not in OBJECTIVES:
        raise ValueError(f"estimator {cls.name!r} declares objective = "
                         f"{getattr(cls, 'objective', None)!r}; one of {', '.join(OBJECTIVES)}")
    taken = {c.colour: n for n, c in _REGISTRY.items()}
    if cls.colour in taken:
        raise ValueError(f"estimator {cls.name!r} declares colour = {cls.colour}, the colour of "
                         f"{taken[cls.colour]!r}; take {max(taken) + 1}")
    _REGISTRY[cls.name] = cls
    ordered = sorted(_REGISTRY.items())
    _REGISTRY.clear()
    _REGISTRY.update(ordered)
    return cls


def estimators(available_only: bool = False) -> list[str]:
    """Names of the registered estimators in alphabetical order (all of them, or only those
    whose backend is installed)."""
    return [n for n, c in _REGISTRY.items() if c.available() or not available_only]


def get_estimator(name: str) -> type[Estimator]:
    """The estimator class registered as ``name``; ``ValueError`` listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, _REGISTRY, n=2)
        hint = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
        raise ValueError(
            f"unknown estimator {name!r}{hint} (valid estimators: {', '.join(_REGISTRY)})"
        ) from None


def fit(responses: object, estimator: str = "torch-adam", **options: Option) -> Fit:
    """Fit the Rasch model (or, with ``model=`` ``"2pl"``, ``"3pl"``, ``"4pl"`` or ``"m2pl"``,
    that model: :data:`irtbench.models.MODELS`) to ``responses``
    with the estimator registered as ``estimator``.

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
