r"""Simulated data like a user's (``irtbench run --like DATA.csv``): the same shape, the same
pattern of missing cells, item parameters and a skill distribution from a fit of the chosen
model to the data, so that the sweep's recovery, Cramér–Rao ratios, coverage and time describe
the estimators in a design like the user's.

**The design** (:func:`design_like`). The model is fitted to the data by marginal ML
(``mml-em``: skills :math:`N(0, \sigma^2)`, :math:`\sigma` estimated under the Rasch model,
1 under the 2PL, 3PL and 4PL). Its item estimates become the truth after they are made usable as
generating values: an item with no finite estimate (answered all right or all wrong) gets the
difficulty :math:`\pm` :data:`DIFFICULTY_LIMIT`; difficulties are clipped to
:math:`\pm` :data:`DIFFICULTY_LIMIT`, discriminations to :data:`DISCRIMINATION_RANGE` (a
runaway or a negative slope of a badly keyed item becomes the bound: the suite's alignment and
bounds assume :math:`a > 0`), floors to [0, 0.5], ceilings to [0.5, 1]; :attr:`Design.adjusted`
counts the items changed.

**A draw** (:func:`simulate_like`, one per seed): skills :math:`\theta_i \sim N(0,
\sigma^2)`, answers :math:`Y_{ij} \sim \mathrm{Bernoulli}(P(\theta_i, \beta_j))` by the
model's probability function, then every cell that is missing in the user's data is made
missing (NaN). Every row and column of the user's data has an observed answer, so every draw
does too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from irtbench.models import get_model
from irtbench.responses import Responses, is_sparse, observed_of, to_dense, validate_responses
from irtbench.simulate import Dataset

__all__ = ["DIFFICULTY_LIMIT", "DISCRIMINATION_RANGE", "Design", "design_like", "simulate_like"]

#: generating difficulties are kept within +/- this many logits
DIFFICULTY_LIMIT = 5.0
#: generating discriminations are kept within this range
DISCRIMINATION_RANGE = (0.2, 4.0)
#: generating floors are kept within this range
GUESSING_RANGE = (0.0, 0.5)
#: generating ceilings are kept within this range
CEILING_RANGE = (0.5, 1.0)


@dataclass(frozen=True)
class Design:
    """What a draw like the user's data needs (picklable: it travels to the sweep's workers).

    Attributes:
        model: the model name.
        items: the generating item parameters by name.
        skill_sd: the SD of the normal skills.
        n_students: the rows of a draw.
        observed: the user's pattern of observed cells (None: every cell observed).
        source: where the data came from (for the record).
        adjusted: how many items' estimates were changed to be usable as truth.
        converged: whether the fit that gave them converged.
    """

    model: str
    items: dict[str, np.ndarray]
    skill_sd: float
    n_students: int
    observed: np.ndarray | None = None
    source: str = ""
    adjusted: int = 0
    converged: object = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_students, len(self.items["difficulty"])

    @property
    def missing(self) -> float:
        """The fraction of cells missing in the user's data."""
        return 0.0 if self.observed is None else float(1.0 - self.observed.mean())


def usable_truth(model: str, items: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """The item estimates made usable as generating values (module docstring) and the number of
    items changed."""
    b = np.asarray(items["difficulty"], np.float64)
    out = {"difficulty": np.clip(np.nan_to_num(b, nan=0.0, posinf=DIFFICULTY_LIMIT,
                                               neginf=-DIFFICULTY_LIMIT),
                                 -DIFFICULTY_LIMIT, DIFFICULTY_LIMIT)}
    changed = out["difficulty"] != b
    ranges = {"discrimination": DISCRIMINATION_RANGE, "guessing": GUESSING_RANGE,
              "ceiling": CEILING_RANGE}
    fills = {"discrimination": 1.0, "guessing": 0.0, "ceiling": 1.0}  # for a NaN estimate
    for name in get_model(model).item_parameters[1:]:
        values = np.asarray(items[name], np.float64)
        low, high = ranges[name]
        out[name] = np.clip(np.nan_to_num(values, nan=fills[name]), low, high)
        changed |= out[name] != values
    return out, int(changed.sum())


def design_like(responses: Responses, model: str = "2pl", *, source: str = "",
                estimator: str = "mml-em") -> Design:
    """The :class:`Design` of data like ``responses`` under ``model`` (module docstring)."""
    from irtbench.estimators import fit

    data = validate_responses(responses)
    dense = to_dense(data) if is_sparse(data) else data
    result = fit(dense, estimator, model=model, device="cpu")
    items, adjusted = usable_truth(model, result.items)
    sigma = result.diagnostics.get("sigma", 1.0) if model == "rasch" else 1.0
    observed = observed_of(dense)
    return Design(model, items, float(sigma), dense.shape[0],
                  None if observed.all() else observed, source, adjusted,
                  result.diagnostics.get("converged"))


def simulate_like(design: Design, seed: int = 0) -> Dataset:
    """One draw of data like the user's (module docstring), with its truth."""
    rng = np.random.default_rng(seed)
    n_students, n_questions = design.shape
    skill = rng.normal(0.0, design.skill_sd, n_students)
    p = get_model(design.model).probabilities(skill, design.items)
    responses = (rng.random(p.shape) < p).astype(np.float32)
    if design.observed is not None:
        responses[~design.observed] = np.nan
    extra = {k: v for k, v in design.items.items() if k != "difficulty"}
    return Dataset(responses, skill, np.asarray(design.items["difficulty"]), seed,
                   design.missing, design.model, extra)
