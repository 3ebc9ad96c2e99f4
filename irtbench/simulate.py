"""Simulated response data from any of irtbench's models (:mod:`irtbench.models`):
:func:`simulate` (dense) and :func:`simulate_sparse` (observed triples only, Rasch), each
returning a :class:`Dataset` with the truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from irtbench.models import get_model, item_attribute, sigmoid
from irtbench.responses import MISSING, Responses, SparseResponses, is_compact, row_blocks

__all__ = ["DISTRIBUTIONS", "Dataset", "simulate", "simulate_sparse"]

DISTRIBUTIONS = ("uniform", "normal")


@dataclass(frozen=True)
class Dataset:
    """A simulated response matrix together with the parameters that generated it.

    Attributes:
        responses: ``(n_students, n_questions)`` float32, 1.0/0.0, NaN = missing.
        skill: true skills, float64, shape ``(n_students,)``; ``(n_students, D)`` under a
            multidimensional model (the M2PL).
        difficulty: true difficulties, float64, shape ``(n_questions,)``.
        seed: the seed that generated it.
        missing: the requested fraction of responses missing at random.
        model: a name of :data:`irtbench.models.MODELS` (``"rasch"``, ``"2pl"``, ``"3pl"``).
        extra_items: the model's other item parameters by name (``discrimination`` for the
            2PL; ``discrimination`` and ``guessing`` for the 3PL; ``discrimination``,
            ``intercept`` and ``loadings`` ``(n_questions, D)`` for the M2PL), each also an
            attribute (``data.discrimination``; None where the model has no such parameter).
    """

    responses: Responses
    skill: np.ndarray
    difficulty: np.ndarray
    seed: int | None = None
    missing: float = 0.0
    model: str = "rasch"
    extra_items: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.responses.shape  # type: ignore[return-value]

    @property
    def items(self) -> dict[str, np.ndarray]:
        """Every item parameter of the model by name, the difficulty first."""
        return {"difficulty": self.difficulty, **self.extra_items}

    def __getattr__(self, name: str) -> np.ndarray | None:
        return item_attribute(self, name)


def simulate_sparse(
    n_students: int,
    n_questions: int,
    n_observed: int,
    *,
    seed: int | None = 0,
    skill_scale: float = 3.0,
    difficulty_scale: float = 3.0,
) -> Dataset:
    """Simulate a sparse response matrix: about ``n_observed`` responses at (student, question)
    pairs drawn uniformly at random, skills and difficulties Uniform(-scale, scale).

    Every student and every question gets at least one response (one random pair each first),
    duplicate pairs are dropped, and the triples are sorted by student. Returns a
    :class:`Dataset` whose ``responses`` are :class:`SparseResponses`; no dense matrix is made.
    """
    for name, value in (("n_students", n_students), ("n_questions", n_questions),
                        ("n_observed", n_observed)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if n_observed > n_students * n_questions:
        raise ValueError(f"n_observed={n_observed} exceeds the {n_students * n_questions} cells")
    rng = np.random.default_rng(seed)
    skill = rng.uniform(-skill_scale, skill_scale, n_students)
    difficulty = rng.uniform(-difficulty_scale, difficulty_scale, n_questions)
    extra = max(0, n_observed - n_students - n_questions)
    student = np.concatenate([np.arange(n_students), rng.integers(n_students, size=n_questions),
                              rng.integers(n_students, size=extra)])
    question = np.concatenate([rng.integers(n_questions, size=n_students), np.arange(n_questions),
                               rng.integers(n_questions, size=extra)])
    cells = np.unique(student * np.int64(n_questions) + question)  # sorted, no duplicates
    student, question = np.divmod(cells, np.int64(n_questions))
    logits = skill[student] - difficulty[question]
    response = (rng.random(len(cells)) < sigmoid(logits)).astype(np.int8)
    return Dataset(SparseResponses(student, question, response, (n_students, n_questions)),
                   skill, difficulty, seed=seed, missing=1.0 - len(cells) / (n_students * n_questions))


def _draw(rng: np.random.Generator, distribution: str, scale: float,
          size: int | tuple[int, ...]) -> np.ndarray:
    if distribution == "uniform":
        return rng.uniform(-scale, scale, size)
    if distribution == "normal":
        return rng.normal(0.0, scale, size)
    raise ValueError(f"unknown distribution {distribution!r}; choose one of {DISTRIBUTIONS}")


def simulate(
    n_students: int,
    n_questions: int,
    *,
    seed: int | None = 0,
    missing: float = 0.0,
    skill_distribution: str | None = None,
    skill_scale: float | None = None,
    difficulty_distribution: str | None = None,
    difficulty_scale: float | None = None,
    compact: bool = False,
    model: str = "rasch",
    **item_settings: float,
) -> Dataset:
    r"""Simulate responses from the Rasch model, as the seed notebook does (with its bug fixed),
    or from another of :data:`irtbench.models.MODELS` (the 2PL, the 3PL).

    .. math::
        \theta_i \sim D_\theta,\quad b_j \sim D_b,\quad
        Y_{ij} \sim \mathrm{Bernoulli}\big(\sigma(\theta_i - b_j)\big)
        \quad\text{or, 2PL,}\quad
        a_j \sim \mathrm{LogNormal}(0, \sigma_a^2),\
        Y_{ij} \sim \mathrm{Bernoulli}\big(\sigma(a_j(\theta_i - b_j))\big)

    where ``"uniform"`` means Uniform(-scale, scale) and ``"normal"`` means Normal(0, scale^2).
    Defaults: the notebook's Uniform(-3, 3) for both under the Rasch model; under the 2PL
    skills N(0, 1) (the distribution that fixes the 2PL's scale), difficulties N(0, 1) and
    :math:`\sigma_a` = ``discrimination_sd`` = 0.3 (discriminations mostly 0.55–1.8). Each
    response is then hidden (NaN) independently
    with probability ``missing``. Whenever that leaves a student or a question with no observed
    response, one of its responses (chosen by the same generator) is kept, so the result is
    always a valid input for every estimator.

    Draws come from ``numpy.random.default_rng(seed)`` in a fixed order (skills, difficulties,
    responses row-chunk by row-chunk, missingness), so a seed gives the same data on every machine.

    Args:
        n_students: number of rows, >= 1.
        n_questions: number of columns, >= 1.
        seed: seed of the numpy Generator.
        missing: fraction in [0, 1) of responses missing completely at random.
        skill_distribution, difficulty_distribution: ``"uniform"`` or ``"normal"``.
        skill_scale, difficulty_scale: half-width (uniform) or standard deviation (normal).
        compact: return the responses as ``int8`` with ``-1`` for missing (the same draws),
            written a block at a time, so that no float32 matrix of that size ever exists.
        model: a name of :data:`~irtbench.models.MODELS`; the other item parameters are
            drawn after the difficulties (:meth:`~irtbench.models.base.Model.draw_items`), so
            the Rasch model's draws are the same as before the other models existed.
        **item_settings: the model's draws of its other item parameters, e.g.
            ``discrimination_sd`` (:math:`\sigma_a`, 0.3; 2PL, 3PL and M2PL), ``guessing_mean``
            and ``guessing_weight`` (3PL: the floors' Beta, :mod:`irtbench.models.threepl`),
            ``dims`` (M2PL: the skills' dimension D, default 2; skills N(0, I_D), the
            difficulty drawn is the multidimensional difficulty, :mod:`irtbench.models.m2pl`).

    Returns:
        A :class:`Dataset`.

    Examples:
        >>> data = simulate(1000, 100, seed=0)
        >>> data.responses.shape, data.responses.dtype
        ((1000, 100), dtype('float32'))
        >>> float(data.skill.min()) >= -3.0
        True
    """
    for name, value in (("n_students", n_students), ("n_questions", n_questions)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= missing < 1.0:
        raise ValueError(f"missing must be a fraction in [0, 1), got {missing!r}")
    spec = get_model(model)  # an unknown name: ValueError naming the models
    if not item_settings.get("discrimination_sd", 0.0) >= 0:
        raise ValueError(f"discrimination_sd must be >= 0, got {item_settings['discrimination_sd']!r}")
    skill_shape = spec.skill_shape(n_students, **item_settings)
    if "dims" in item_settings and len(skill_shape) == 1:
        raise ValueError(f"dims is a setting of the multidimensional models (m2pl), not of "
                         f"model={model!r}")
    default_distribution, default_scale = spec.skill_distribution
    rng = np.random.default_rng(seed)
    skill = _draw(rng, skill_distribution or default_distribution,
                  default_scale if skill_scale is None else skill_scale,
                  skill_shape if len(skill_shape) > 1 else n_students)
    difficulty = _draw(rng, difficulty_distribution or default_distribution,
                       default_scale if difficulty_scale is None else difficulty_scale,
                       n_questions)
    items = spec.complete_items({"difficulty": difficulty,
                                 **spec.draw_items(rng, n_questions, **item_settings)})
    extra_items = {name: values for name, values in items.items() if name != "difficulty"}
    responses = np.empty((n_students, n_questions), dtype=np.int8 if compact else np.float32)
    for rows in row_blocks(responses.shape):
        p = spec.probabilities(skill[rows], items)
        responses[rows] = rng.random(p.shape) < p
    if missing > 0:
        _hide_at_random(responses, missing, rng)
    return Dataset(responses, skill, items["difficulty"], seed=seed, missing=float(missing),
                   model=model, extra_items=extra_items)


def _hide_at_random(responses: np.ndarray, missing: float, rng: np.random.Generator) -> None:
    """Set a ``missing`` fraction of entries to missing (NaN or -1), keeping >= 1 observation per
    row and column."""
    n_students, n_questions = responses.shape
    hidden = rng.random(responses.shape) < missing
    for i in np.flatnonzero(hidden.all(axis=1)):
        hidden[i, rng.integers(n_questions)] = False
    for j in np.flatnonzero(hidden.all(axis=0)):
        hidden[rng.integers(n_students), j] = False
    responses[hidden] = MISSING if is_compact(responses) else np.nan


