r"""What every model of irtbench is: the :class:`Model` protocol, the :class:`Alignment` that
removes a model's indeterminacy, and the logistic function.

A model is described once, in its own file (``rasch.py``, ``twopl.py``, ``threepl.py``,
``fourpl.py``, ``m2pl.py``; the 3PL and 4PL composed from the curve between asymptotes of
``asymptotic.py``), by a subclass of :class:`Model`: its item parameters by name, how each
moves when the latent scale moves, how to draw them, its probabilities and log-likelihood in
numpy, the alignment of an estimate onto the truth and the Cramér–Rao bounds of the aligned
errors, the limits past which an estimate has run away; and, for fitting, its parameters with
their transforms, starts and priors, its logits, its options (:attr:`Model.options`) and the
fast paths it offers (:attr:`Model.fast_paths`, the only switch of the Adam fits' kernels).
Simulation, :class:`~irtbench.estimators.base.Fit`, the metrics, the sweep's evaluation, the
result columns, the figures, the report and ``irtbench check`` loop over
:attr:`Model.item_parameters` instead of naming them; the estimators receive a model and
declare the models they fit.

**Indeterminacy.** Every model here is unchanged by a map of the latent scale,
:math:`\theta \to s\theta + t`, under which each parameter moves by its kind: a *location*
(skills, difficulties) :math:`x \to sx + t`, a *slope* (discriminations) :math:`x \to x/s`, and a
*fixed* parameter (the 3PL's guessing floor, a probability) does not move. The Rasch model fixes
:math:`s = 1` (only the shift is free). Estimates are compared with the truth only after the
:class:`Alignment` that maps them onto the truth's scale.

**Multidimensional skills.** A model whose skills are vectors, :math:`\theta_i \in R^D` (the
multidimensional 2PL, :mod:`~irtbench.models.m2pl`), is unchanged by any invertible affine map
:math:`\theta \to M\theta + t`, which no scalar pair :math:`(s, t)` describes: its parameters are
of the kinds :data:`VECTOR` (the skills, moved by the map), :data:`COVECTOR` (the loadings,
:math:`a \to M^{-\top}a`, so that :math:`\theta\cdot a` is kept up to a shift) and
:data:`DERIVED` (recomputed from those after the map: the intercept
:math:`d \to d - a'\cdot t`, and every summary of the loadings). Its :meth:`Model.alignment`
returns its own alignment object, whose :meth:`~Alignment.items` moves all the item
parameters at once; every caller goes through :meth:`~Alignment.skill`,
:meth:`~Alignment.items` and :meth:`~Alignment.se`, which :class:`Alignment` (the scalar map)
implements too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from irtbench.extremes import Extremes
    from irtbench.specs import Spec
    from irtbench.models.fitting import Ops, Parameter
    from irtbench.responses import Responses, Scan

__all__ = ["COVECTOR", "DERIVED", "FIXED", "LOCATION", "SLOPE", "VECTOR", "Aligner",
           "Alignment", "Items", "Model", "Truth", "Z95", "sigmoid"]

#: the kinds of parameter, by how they move under :math:`\theta \to s\theta + t`
LOCATION, SLOPE, FIXED = "location", "slope", "fixed"
#: the kinds of a multidimensional model's parameters under :math:`\theta \to M\theta + t`
#: (module docstring): skill vectors, loadings, and what is recomputed from them
VECTOR, COVECTOR, DERIVED = "vector", "covector", "derived"

#: item parameters by name, each ``(n_questions,)`` float64
Items = Mapping[str, np.ndarray]

#: z-value of a two-sided 95% normal interval (coverage; the flat-item rule)
Z95 = 1.959963984540054


class Truth(Protocol):
    """What a model's bounds read of simulated data (an :class:`irtbench.Dataset`): the
    responses, the true skills and the true item parameters, by name and as attributes."""

    responses: Any
    skill: np.ndarray
    difficulty: np.ndarray

    @property
    def shape(self) -> tuple[int, int]: ...

    @property
    def items(self) -> dict[str, np.ndarray]: ...

    def __getattr__(self, name: str) -> Any: ...


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, computed as ``(1 + tanh(x/2)) / 2`` (no overflow for any x)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


class Alignment(NamedTuple):
    r"""A map of the latent scale, :math:`\theta \to s\theta + t`: locations (skills,
    difficulties) :math:`x \to sx + t`, slopes :math:`a \to a/s`, fixed parameters unmoved; the
    SEs of each scaled alike (without the shift)."""

    scale: float
    shift: float

    def move(self, kind: str, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if kind == LOCATION:
            return self.scale * values + self.shift
        return values / self.scale if kind == SLOPE else values

    def se_factor(self, kind: str) -> float:
        """What the map multiplies an SE of a parameter of that kind by."""
        return {LOCATION: self.scale, SLOPE: 1.0 / self.scale}.get(kind, 1.0)

    def skill(self, skill: np.ndarray) -> np.ndarray:
        return self.move(LOCATION, skill)

    def difficulty(self, difficulty: np.ndarray) -> np.ndarray:
        return self.move(LOCATION, difficulty)

    def discrimination(self, discrimination: np.ndarray) -> np.ndarray:
        return self.move(SLOPE, discrimination)

    def items(self, items: Items, kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
        """Every item parameter of ``items`` moved by its kind in ``kinds`` (the model's)."""
        return {name: self.move(kinds[name], values) for name, values in items.items()}

    def se(self, kind: str, se: np.ndarray | None) -> np.ndarray | None:
        """SEs of a parameter of that kind moved with it (None stays None)."""
        return None if se is None else np.asarray(se, np.float64) * self.se_factor(kind)


class Aligner(Protocol):
    """What every alignment offers its callers (the metrics, ``compare``'s agreement): the
    scalar :class:`Alignment` and a multidimensional model's own (module docstring)."""

    @property
    def scale(self) -> float: ...

    @property
    def shift(self) -> float: ...

    def skill(self, skill: np.ndarray) -> np.ndarray: ...

    def items(self, items: Items, kinds: Mapping[str, str]) -> dict[str, np.ndarray]: ...

    def se(self, kind: str, se: np.ndarray | None) -> np.ndarray | None: ...


class Model(ABC):
    """One IRT model, described once (see the module docstring).

    Class attributes:
        name: the registry key (``"rasch"``, ``"2pl"``, ``"3pl"``), the value of every
            estimator's ``model`` option.
        title: how figures and reports name it.
        item_parameters: the item parameters by name, ``"difficulty"`` first.
        kinds: each item parameter's kind (:data:`LOCATION`, :data:`SLOPE`, :data:`FIXED`).
        units: each parameter's unit in figures (``"logits"``, ``""`` ...), skills included.
        skill_distribution: the default ``(distribution, scale)`` of simulated skills and
            difficulties.
        formula: the model in one line (help texts).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    item_parameters: ClassVar[tuple[str, ...]]
    kinds: ClassVar[dict[str, str]]
    units: ClassVar[dict[str, str]]
    skill_distribution: ClassVar[tuple[str, float]] = ("normal", 1.0)
    formula: ClassVar[str] = ""

    # -- simulation ---------------------------------------------------------------------------
    def skill_shape(self, n_students: int, **settings: float) -> tuple[int, ...]:
        """The shape of the skills :func:`irtbench.simulate` draws: ``(n_students,)``, or
        ``(n_students, D)`` for a multidimensional model."""
        return (n_students,)

    def complete_items(self, items: Items) -> dict[str, np.ndarray]:
        """The item parameters computed from the drawn ones (the difficulty and
        :meth:`draw_items`'), after the draws: none by default."""
        return dict(items)

    def draw_items(self, rng: np.random.Generator, n_questions: int,
                   **settings: float) -> dict[str, np.ndarray]:
        """The item parameters besides the difficulty, drawn after it (so that adding a model
        changes no other model's draws); none by default."""
        return {}

    @abstractmethod
    def probabilities(self, skill: np.ndarray, items: Items) -> np.ndarray:
        """:math:`P(Y_{ij} = 1)`, ``(n_students, n_questions)``, float64."""

    def linear_logits(self, items: Items) -> tuple[np.ndarray, np.ndarray] | None:
        r"""``(a, d)`` of a model whose probability is the logistic of a logit linear in the
        skill, :math:`P(Y_{ij} = 1) = \sigma(\theta_i\cdot a_j + d_j)` (the Rasch model, the
        2PL, the M2PL): the slopes, ``(J,)`` or ``(J, D)``, and the intercepts ``(J,)``;
        None for a model whose probability is not (the 3PL and 4PL). Scoring reads it
        (:mod:`irtbench.scoring`): a complete row's log-likelihood is then
        :math:`\theta\cdot\sum_j y_{ij}a_j` less a function of the skill common to every
        row."""
        return None

    def log_likelihood(self, responses: Responses, skill: np.ndarray, items: Items) -> float:
        """The log-likelihood of dense responses (NaN or -1 missing), a block of rows at a time."""
        from irtbench.responses import answers_of, observed_of, row_blocks

        total = 0.0
        for rows in row_blocks(responses.shape):
            block = responses[rows]
            p = self.probabilities(np.asarray(skill)[rows], items)
            y = answers_of(block, np.float64)
            with np.errstate(divide="ignore"):
                terms = y * np.log(p) + (1.0 - y) * np.log1p(-p)
            total += float(np.where(observed_of(block), terms, 0.0).sum())
        return total

    @abstractmethod
    def joint_errors(self, responses: Responses, skill: np.ndarray, items: Items
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Asymptotic SEs of a joint (JML) estimate, each parameter with the others known:
        ``(skill_se, {item parameter: se})``, ``inf`` where no finite estimate exists."""

    # -- evaluation ---------------------------------------------------------------------------
    def usable(self, items: Items) -> np.ndarray:
        """The questions whose estimates an alignment can use (finite, in range)."""
        keep = np.ones(len(items["difficulty"]), dtype=bool)
        for name in self.item_parameters:
            keep &= np.isfinite(np.asarray(items[name], dtype=np.float64))
        return keep

    @abstractmethod
    def align(self, estimate: Items, truth: Items, keep: np.ndarray) -> Alignment:
        """The :class:`Alignment` of an estimate onto the truth, fitted on the ``keep``
        questions."""

    def alignment(self, estimate: Items, truth: Items, keep: np.ndarray, *,
                  skill: np.ndarray | None = None, true_skill: np.ndarray | None = None,
                  students: np.ndarray | None = None) -> Aligner:
        """The alignment of an estimate onto the truth, what every caller asks: :meth:`align`
        of the items by default; a model whose alignment needs the skills (the
        multidimensional 2PL whitens them) reads ``skill`` and ``true_skill`` (over the
        ``students`` mask, default all)."""
        return self.align(estimate, truth, keep)

    #: the frame :meth:`common_frames` puts two fits in, in words (figures and reports say it)
    common_frame: ClassVar[str] = "each fit shifted to a mean difficulty of 0"

    def common_frames(self, first: Items, second: Items, keep: np.ndarray,
                      first_skill: np.ndarray, second_skill: np.ndarray
                      ) -> tuple[Aligner, Aligner]:
        """The maps of two fits of the same items into one frame where their parameters are
        compared (``compare``'s agreement), symmetric by construction: swapping the fits swaps
        the maps, so a distance between the moved parameters does not depend on which fit is
        first. By default each fit's scale kept and its locations shifted to a mean difficulty
        of 0 over the ``keep`` items (the Rasch model's only freedom)."""
        return tuple(Alignment(1.0, -float(np.mean(np.asarray(fit["difficulty"],
                                                               np.float64)[keep])))
                     for fit in (first, second))

    @abstractmethod
    def bounds(self, data: Truth, keep: np.ndarray) -> dict[str, float]:
        """Root-mean Cramér–Rao bounds of the aligned errors, by part (``"skill"`` and the item
        parameters) over the ``keep`` questions (and the students with finite estimates); a
        part left out has no bound here."""

    def runaway(self, items: Items, item_se: Mapping[str, np.ndarray | None],
                extreme: np.ndarray) -> np.ndarray | None:
        """The questions (outside ``extreme``) whose estimates ran away, or None for a model
        whose ML estimates run away only where the data are extreme (the Rasch model)."""
        return None

    def flat(self, items: Items, item_se: Mapping[str, np.ndarray | None], skill: np.ndarray,
             extreme: np.ndarray) -> np.ndarray | None:
        """The questions (outside ``extreme`` and the runaways) whose difficulty the data do
        not locate although the fit converged (a slope near 0: the 2PL family's
        :func:`~irtbench.models.twopl.flat_items`), or None for a model without slopes or
        without a rule (the Rasch model, the M2PL) and for a fit without SEs."""
        return None

    # -- fitting (irtbench.models.fitting: consumed by torch-adam, jax-adam and NumPyro) -----
    #: whether the skills' scale is a parameter of the Bayesian fits (the Rasch model's unit is
    #: the logit, so the skills' SD is free; a model with slopes fixes the skills' N(0, 1))
    learns_skill_scale: ClassVar[bool] = False
    #: the options this model's parameters read (its priors' settings, ``dims``), each declared
    #: once with its one meaning: an estimator lists in its ``spec`` those it implements
    #: (:func:`~irtbench.estimators.options.model_options`), and one given to a fit of another
    #: model is refused
    options: ClassVar[dict[str, Spec]] = {}
    #: the estimator options that shape this model's simulated data (the M2PL's ``dims``)
    simulation_options: ClassVar[tuple[str, ...]] = ()
    #: whether the joint fits start the skills at random (a start of zeros is a saddle)
    random_skill_start: ClassVar[bool] = False
    #: the fast paths a model offers the estimators besides the generic one, the only switch of
    #: the Adam fits' kernels: ``"closed"`` (the gradient written out, and ``torch.compile``'s
    #: fused pass of it), ``"logit"`` (a Bernoulli log-likelihood of the logits: the residual
    #: chained through them) (:mod:`irtbench.kernels.closed_form`) and ``"fused"``
    #: (:mod:`irtbench.kernels.fused_epoch`)
    fast_paths: ClassVar[frozenset[str]] = frozenset()
    #: the per-student and per-question information sums ``sums(xp, skill, *items, observed)``
    #: written once for numpy, torch and JAX, over the items :attr:`sums_parameters` (None:
    #: SEs from :meth:`joint_errors` on the host)
    information_sums: ClassVar[Any] = None
    sums_parameters: ClassVar[tuple[str, ...]] = ()

    def skill_dims(self, options: Mapping[str, Any]) -> int | None:
        """The skills' dimensions: None for one skill per student, D for ``(n, D)``."""
        return None

    @abstractmethod
    def fit_parameters(self, options: Mapping[str, Any]) -> tuple[Parameter, ...]:
        """The item parameters the fits move, with their transforms, starts and priors (those
        the ``options`` ask for), :attr:`item_parameters`' first first."""

    @staticmethod
    def at(values: Mapping[str, Any], question: Any | None) -> dict[str, Any]:
        """The item parameters laid out against the logits: a row of a dense block
        (``question`` None) or gathered per pair."""
        if question is None:
            return {name: value[None, ...] for name, value in values.items()}
        return {name: value[question] for name, value in values.items()}

    @staticmethod
    def skill_column(skill: Any, question: Any | None) -> Any:
        """One skill per row of the logits: a column against a dense block, else per pair."""
        return skill[:, None] if question is None else skill

    @abstractmethod
    def logits(self, ops: Ops, skill: Any, values: Mapping[str, Any], question: Any | None
               ) -> Any:
        """The logits of a dense block (``skill`` its rows', ``question`` None: ``(rows,
        J)``) or of gathered pairs (``skill`` and ``question`` per pair)."""

    def log_prob(self, ops: Ops, logits: Any, y: Any, at: Mapping[str, Any]) -> Any:
        r"""The log-probability of each answer ``y`` (0/1) from its logit and its item's
        parameters (:meth:`at`); the logistic models' :math:`yx - \log(1 + e^x)`."""
        return ops.bernoulli_log_prob(logits, y)

    @abstractmethod
    def gauge_penalty(self, ops: Ops, skill: Any, raw: Mapping[str, Any], alpha: float) -> Any:
        """The joint fits' penalty that pins the indeterminacy (weight ``alpha``): zero on a
        set of parameters that reaches every value of the likelihood, so it moves no optimum
        of the likelihood, only picks one point of its ridge."""

    def report(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The fit's item parameters from the fitted values, difficulty first (a model whose
        fitted parameters are not its reported ones, the M2PL's, derives them here)."""
        return {name: np.asarray(values[name], np.float64) for name in self.item_parameters}

    def report_errors(self, errors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray | None]:
        """The SEs of the reported item parameters from those of the fitted values (None
        where a reported parameter is derived and has none here)."""
        return {name: (None if errors.get(name) is None else np.asarray(errors[name], np.float64))
                for name in self.item_parameters}

    def fit_errors(self, responses: Responses, skill: np.ndarray, items: Items, *,
                   scan: Scan | None, found: Extremes | None, sums: tuple | None = None
                   ) -> tuple[np.ndarray | None, dict[str, np.ndarray | None]]:
        """The joint fits' SEs at their estimate: from ``sums`` (:attr:`information_sums`
        computed where the data are) when given, else :meth:`joint_errors` on the host."""
        return self.joint_errors(responses, skill, items)

    def needs_sums(self, scan: Scan | None) -> bool:
        """Whether :meth:`fit_errors` wants :attr:`information_sums` from a pass over the
        data (False where it has none, or, for the Rasch model, where nothing is missing)."""
        return self.information_sums is not None
